"""The robustness report: sections, determinism, sanity flags, ranking, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from pluralguard.core.errors import InputError
from pluralguard.eval.aggregates import curve_table, mechanism_kind, rank_defenses, worst_case
from pluralguard.eval.metrics import METRICS
from pluralguard.eval.report import FIGURES, write_report
from pluralguard.eval.results import load_mechanism_kinds, load_results
from pluralguard.eval.sanity import CHECKS, with_recorded

AGREE = "agreements(bounds='quantile:0.5')"
CONS = "consensus(p=2)"
INF = math.inf


def _row(dataset: str = "toy", mechanism: str = AGREE, attack: str = "sybil",
         budget: float = 0.1, defense: str = "none", seed: int = 0, **metrics: float
         ) -> dict:
    """One results row: zeros/NaN by default, a clean no-attack row when attack is none."""
    row = {"dataset": dataset, "mechanism": mechanism, "attack": attack, "budget": budget,
           "defense": defense, "seed": seed, "goal": "none" if attack == "none" else "capture",
           "n_agents": 50, "n_attackers": 0 if attack == "none" else 1,
           "n_sybils": 0 if attack == "none" else 5}
    row |= {m: 0.0 for m in METRICS}
    row["goal_measure"] = np.nan  # recomputed from the goal's column
    row |= {"honest_utility_mean": 0.9, "honest_utility_p10": 0.8, "honest_utility_min": 0.7,
            "n_groups_clean": 3.0, "n_groups_attacked": 3.0, "converged": 1.0,
            "queries": 0.0 if attack == "none" else 1.0}
    if attack == "none":
        row |= {"attacker_gain": np.nan, "capture": np.nan, "attack_success": np.nan}
    row |= metrics
    return row


def synthetic() -> pd.DataFrame:
    """A small, realistic grid: 2 mechanisms × 2 attacks × 3 defenses × 3 budgets × 2 seeds.

    Losses grow with the budget (∞ the largest), shrink under ``clip`` (which costs
    0.01 clean) and are unchanged under ``noop``; every run has some effect.
    """
    rows = []
    for mech, scale in ((AGREE, 1.0), (CONS, 2.0)):
        for defense, factor, cost in (("none", 1.0, 0.0), ("clip", 0.5, 0.01),
                                      ("noop", 1.0, 0.0)):
            for seed in (0, 1):
                rows.append(_row("toy", mech, "none", 0.0, defense, seed, defense_cost=cost))
                for attack, base in (("sybil", 0.01), ("stubborn", 0.02)):
                    for budget, level in ((0.05, 1.0), (0.2, 2.0), (INF, 3.0)):
                        loss = base * scale * factor * level * (1 + 0.1 * seed)
                        rows.append(_row(
                            "toy", mech, attack, budget, defense, seed,
                            utility_loss_mean=loss / 4, utility_loss_p90=loss,
                            utility_loss_max=2 * loss, attacker_gain=loss / 2,
                            capture=0.1 * level * factor if attack == "sybil" else np.nan,
                            partition_change=0.05 * level, defense_cost=cost,
                            attack_success=float(level > 2)))
    return pd.DataFrame(rows)


def _write(tmp: Path, frame: pd.DataFrame, summary: dict | None = None) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    frame.to_csv(tmp / "results.csv", index=False)
    if summary is not None:
        (tmp / "summary.json").write_text(json.dumps(summary))
    return tmp


def _flags(frame: pd.DataFrame, summary: dict | None = None) -> dict:
    return {f.name: f for f in with_recorded(frame, summary)}


# ------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synthetic() written and reported once for the tests that only read the report."""
    root = _write(tmp_path_factory.mktemp("report"), synthetic())
    write_report(root, title="Toy suite")
    return root


def test_report_has_every_section_and_figure(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Toy suite\n")
    headings = ["## 1. Sanity flags", "## 2. Security curves",
                "## 3. Worst-case loss: attack × defense",
                "## 4. Defenses: worst case over attacks and clean cost",
                "## 5. Agreement solver vs single consensus", "## 6. Attack summary"]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "**None raised.**" in text
    pngs = sorted(p.name for p in (report_dir / FIGURES).glob("*.png"))
    # 2 curve figures (one per mechanism), 1 heatmap, 1 defense chart, 1 comparison
    assert len(pngs) == 5
    for name in pngs:
        assert f"]({FIGURES}/{name})" in text
        assert (report_dir / FIGURES / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # pipe tables: heatmap values with "none" first; ∞ among the budgets
    assert "| attack | none | clip | noop |" in text
    assert "* budgets: 0.05, 0.2, ∞" in text
    assert "| stubborn | none | 0.05, 0.2, ∞ |" in text
    # the mechanism comparison: clean utilities side by side, per-attack worst cases
    assert f"| measure | {AGREE} | {CONS} |" in text
    assert "| worst-case loss: stubborn, best defense | 0.033 (clip) | 0.066 (clip) |" in text


def test_report_is_deterministic_and_prunes_stale_figures(report_dir: Path,
                                                          tmp_path: Path) -> None:
    """Same results, another directory, a user's own matplotlib settings: byte-identical
    markdown and PNGs, and the user's settings and backend left alone."""
    _write(tmp_path, synthetic())
    (tmp_path / FIGURES).mkdir()
    (tmp_path / FIGURES / "heatmap_old-dataset.png").write_bytes(b"stale")
    (tmp_path / FIGURES / "mine.png").write_bytes(b"a user's file")
    backend = matplotlib.get_backend()
    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 5, "axes.grid": False}):
        before = dict(matplotlib.rcParams)
        write_report(tmp_path, title="Toy suite")
        assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend
    assert (tmp_path / "report.md").read_bytes() == (report_dir / "report.md").read_bytes()
    assert not (tmp_path / FIGURES / "heatmap_old-dataset.png").exists()
    assert (tmp_path / FIGURES / "mine.png").exists()
    names = sorted(p.name for p in (report_dir / FIGURES).glob("*.png"))
    assert sorted(p.name for p in (tmp_path / FIGURES).glob("*.png")) == sorted(
        [*names, "mine.png"])
    for name in names:
        png = (report_dir / FIGURES / name).read_bytes()
        assert png == (tmp_path / FIGURES / name).read_bytes()
        assert b"matplotlib" not in png.lower()  # no Software/version stamp


def test_missing_results_csv_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"results\.csv") as err:
        write_report(tmp_path)
    assert err.value.field == "results_dir"
    assert "pluralguard run" in err.value.fix


def test_bad_results_are_named(tmp_path: Path) -> None:
    frame = synthetic().drop(columns=["defense"])
    with pytest.raises(InputError, match="defense"):
        load_results(_write(tmp_path / "a", frame))
    frame = synthetic().astype({"utility_loss_p90": object})
    frame.loc[3, "utility_loss_p90"] = "oops"
    with pytest.raises(InputError, match="utility_loss_p90") as err:
        load_results(_write(tmp_path / "b", frame))
    assert "line 5" in err.value.problem
    with pytest.raises(InputError, match="loss"):
        write_report(_write(tmp_path / "c", synthetic()), loss="honest_utility_mean")
    _write(tmp_path / "d", synthetic())
    (tmp_path / "d" / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match=r"summary\.json"):
        write_report(tmp_path / "d")


def test_infinite_budgets_survive_the_csv_and_count_in_the_worst_case(
        tmp_path: Path) -> None:
    frame = load_results(_write(tmp_path, synthetic()))
    assert np.isinf(frame["budget"]).sum() == 2 * 3 * 2 * 2  # mechanisms·defenses·seeds·attacks
    worst = worst_case(frame).set_index(["mechanism", "attack", "defense"])["worst_case_loss"]
    # the ∞ budget (level 3) at seed 1 is the worst: 0.02 · 3 · 1.1 for stubborn, undefended
    assert worst[(AGREE, "stubborn", "none")] == pytest.approx(0.02 * 3 * 1.1)
    # only infinite budgets (one mechanism, to stay fast): nothing dropped, and with one
    # budget per attack the report draws no curves and says so
    only_inf = synthetic()
    only_inf = only_inf[(only_inf["mechanism"] == AGREE)
                        & ((only_inf["attack"] == "none") | np.isinf(only_inf["budget"]))]
    text = write_report(_write(tmp_path, only_inf)).read_text(encoding="utf-8")
    assert "* budgets: ∞ (one per attack, so no security curves)" in text
    assert "maximum over budgets (∞ included)" in text
    assert "| sybil | none | ∞ |" in text
    assert "Every attack ran at a single budget here" in text
    assert not list((tmp_path / FIGURES).glob("curves_*.png"))


def test_mechanism_kinds_from_the_resolved_suite(tmp_path: Path) -> None:
    frame = synthetic().replace({"mechanism": {AGREE: "mine", CONS: "baseline"}})
    _write(tmp_path, frame)
    assert load_mechanism_kinds(tmp_path) == {}
    assert mechanism_kind("mine") is None
    (tmp_path / "suite.resolved.json").write_text(json.dumps({"mechanisms": [
        {"name": "mine", "kind": "agreements", "bounds": "quantile:0.5"},
        {"name": "baseline", "kind": "consensus", "p": 2}]}))
    kinds = load_mechanism_kinds(tmp_path)
    assert kinds == {"mine": "agreements", "baseline": "consensus"}
    assert [mechanism_kind(m, kinds) for m in ("mine", "baseline", AGREE)] == \
        ["agreements", "consensus", "agreements"]


def test_no_mechanism_pair_and_no_attacks(tmp_path: Path) -> None:
    frame = synthetic()
    text = write_report(_write(tmp_path / "a", frame[frame["mechanism"] == AGREE])).read_text(
        encoding="utf-8")
    assert "No dataset has both an agreement-solver and a single-consensus" in text
    clean = frame[frame["attack"] == "none"]
    text = write_report(_write(tmp_path / "b", clean)).read_text(encoding="utf-8")
    assert text.count("No attacked runs") == 4
    assert "zero gain everywhere | clear | Not checked: no attacked runs." in text


# ------------------------------------------------------------------ sanity flags
def test_clean_data_raises_no_flag() -> None:
    flags = _flags(synthetic())
    assert list(flags) == ["non_convergence", "nondeterminism", "below_truth",
                           "non_monotone", "adaptive_beaten", "black_box_beaten",
                           "exhaustive_gap", "certificate_exceeded", "uncertified",
                           "zero_gain", "randomized"]
    assert not any(f.raised for f in flags.values())


def test_non_convergence_is_flagged_with_its_row() -> None:
    frame = synthetic()
    frame.loc[5, "converged"] = 0.0
    flag = _flags(frame)["non_convergence"]
    assert flag.raised
    assert flag.finding.startswith(f"1 of {len(frame)} runs did not converge")
    assert flag.rows[["attack", "defense", "budget"]].iloc[0].tolist() == \
        frame.loc[5, ["attack", "defense", "budget"]].tolist()


def test_best_response_beaten_by_a_fixed_recipe_is_flagged() -> None:
    rows = []
    for seed in (0, 1):
        rows += [_row(attack="sybil", seed=seed, goal="selfish", attacker_gain=0.05),
                 _row(attack="stubborn", seed=seed, goal="selfish", attacker_gain=0.02),
                 _row(attack="best_response", seed=seed, goal="selfish",
                      attacker_gain=0.04 if seed == 0 else 0.06, queries=120.0)]
    flag = _flags(pd.DataFrame(rows))["adaptive_beaten"]
    assert flag.raised
    assert flag.finding.startswith("In 1 of 2 comparable `best_response` runs")
    assert flag.rows[["seed", "beaten by", "their goal_measure"]].values.tolist() == \
        [[0.0, "sybil", 0.05]]
    # a capture-goal search is compared on capture, not on the attackers' gain
    rows = [_row(attack="sybil", capture=0.3, attacker_gain=0.5),
            _row(attack="best_response", capture=0.4, attacker_gain=0.1)]
    assert not _flags(pd.DataFrame(rows))["adaptive_beaten"].raised
    # recipes with another goal, or another budget, are not compared
    rows = [_row(attack="sybil", goal="selfish", capture=0.9),
            _row(attack="stubborn", budget=0.5, capture=0.9),
            _row(attack="best_response", budget=0.1, capture=0.4)]
    flag = _flags(pd.DataFrame(rows))["adaptive_beaten"]
    assert not flag.raised and flag.finding.startswith("Not checked: no fixed recipe")
    # a search that reached nothing measurable while a recipe did is beaten
    rows = [_row(attack="sybil", capture=0.1),
            _row(attack="best_response(queries=20)", capture=np.nan)]
    flag = _flags(pd.DataFrame(rows))["adaptive_beaten"]
    assert flag.raised and flag.rows["best_response"].tolist() == ["best_response(queries=20)"]


def test_zero_gain_everywhere_is_flagged() -> None:
    frame = synthetic()
    attacked = frame["attack"] != "none"
    frame.loc[attacked, "attacker_gain"] = np.where(frame.loc[attacked, "seed"] == 0, 0.0,
                                                    np.nan)
    flag = _flags(frame)["zero_gain"]
    assert flag.raised
    assert "`attacker_gain`" in flag.finding and f"{int(attacked.sum())}" in flag.finding
    assert len(flag.rows) == attacked.sum()
    # one attack idle, the other working: not raised, but the idle attack is named
    frame = synthetic()
    idle = frame["attack"] == "stubborn"
    frame.loc[idle, ["attacker_gain", "utility_loss_mean", "utility_loss_p90",
                     "utility_loss_max", "partition_change"]] = 0.0
    flag = _flags(frame)["zero_gain"]
    assert not flag.raised
    assert "no effect at all in any run: `stubborn`" in flag.finding


def test_nondeterminism_from_repeats_and_from_summary() -> None:
    frame = synthetic()
    same = pd.concat([frame, frame.iloc[[7]]], ignore_index=True)
    assert not _flags(same)["nondeterminism"].raised
    repeat = frame.iloc[[7]].copy()
    repeat["utility_loss_p90"] += 1e-6
    flag = _flags(pd.concat([frame, repeat], ignore_index=True))["nondeterminism"]
    assert flag.raised
    assert flag.rows["differing metrics"].tolist() == ["utility_loss_p90"]
    summary = {"sanity": {"nondeterminism": {"raised": True, "details": "seed 1 differs"},
                          "non_convergence": False, "slow_runs": {"raised": False}},
               "wall_time_s": 12.5}
    flags = _flags(frame, summary)
    assert list(flags)[-1] == "slow_runs" and not flags["slow_runs"].raised
    assert flags["nondeterminism"].raised
    assert "Details: seed 1 differs" in flags["nondeterminism"].finding
    assert not flags["non_convergence"].raised
    assert "reports it clear" in flags["non_convergence"].finding
    # the runner's format: description, count and the runs as records
    runner = {"raised": 1, "description": "a rerun differs", "count": 1, "checked": 4,
              "details": [{"dataset": "toy", "mechanism": AGREE, "attack": "sybil",
                           "budget": 0.2, "defense": "none", "seed": 1,
                           "columns": ["utility_loss_p90", "capture"]}]}
    flag = _flags(frame, {"sanity": {"nondeterminism": runner}})["nondeterminism"]
    assert flag.raised
    assert "a rerun differs" in flag.finding  # the runner's own words, passed on
    assert "4 runs" in flag.finding  # how many it recomputed
    assert flag.rows["columns"].tolist() == ["utility_loss_p90, capture"]


def test_raised_flags_open_the_report(tmp_path: Path) -> None:
    frame = synthetic()
    frame = frame[frame["mechanism"] == CONS].reset_index(drop=True)
    frame.loc[5, "converged"] = 0.0
    summary = {"sanity": {"nondeterminism": {"flag": True, "details": ["run 3"]}}}
    text = write_report(_write(tmp_path, frame, summary)).read_text(encoding="utf-8")
    flags = text[text.index("## 1."):text.index("## 2.")]
    assert "**2 raised:** non-convergence, nondeterminism." in flags
    assert "| non-convergence | **RAISED** | 1 of 42 runs did not converge" in flags
    assert '["run 3"]' in flags
    assert ("### Non-convergence\n\n*What it means:* "
            f"{CHECKS['non_convergence'].meaning}.") in flags


# ------------------------------------------------------------------ ranking
def test_ranking_by_worst_case_over_attacks() -> None:
    """Hand-built worst cases (utility_loss_p90, max over budgets and seeds):

    ============  ====  =====  =====  =====  ======
    attack        none  floor  cap    knn    random
    ============  ====  =====  =====  =====  ======
    a             0.30  0.10   0.30   0.35   0.30
    b             0.20  0.25   0.20   0.10   0.20
    worst         0.30  0.25   0.30   0.35   0.30
    clean cost    0     0.02   0.01   0.05   0
    ============  ====  =====  =====  =====  ======

    floor ranks first (0.25); none, cap and random tie at 0.30 (listed by clean
    cost, none first); knn is last even though it helps against b. cap and
    random never help; knn helps against one attack of two.
    """
    table = {"none": (0.30, 0.20, 0.0), "floor": (0.10, 0.25, 0.02),
             "cap": (0.30, 0.20, 0.01), "knn": (0.35, 0.10, 0.05),
             "random": (0.30, 0.20, 0.0)}
    rows = []
    for defense, (a, b, cost) in table.items():
        rows.append(_row(attack="none", defense=defense, defense_cost=cost))
        for attack, worst in (("a", a), ("b", b)):
            for budget, part in ((0.1, 0.5), (INF, 1.0)):
                for seed, share in ((0, 1.0), (1, 0.9)):
                    rows.append(_row(attack=attack, budget=budget, defense=defense, seed=seed,
                                     utility_loss_p90=worst * part * share,
                                     utility_loss_max=1.0, defense_cost=cost))
    ranking = rank_defenses(pd.DataFrame(rows))
    assert ranking["defense"].tolist() == ["floor", "none", "random", "cap", "knn"]
    assert ranking["rank"].tolist() == [1, 2, 2, 2, 5]
    assert ranking["worst_case_loss"].tolist() == pytest.approx([0.25, 0.30, 0.30, 0.30, 0.35])
    assert ranking["worst_attack"].tolist() == ["b", "a", "a", "a", "a"]
    assert ranking["clean_cost"].tolist() == pytest.approx([0.02, 0.0, 0.0, 0.01, 0.05])
    assert ranking["attacks_helped"].tolist() == [1, 0, 0, 0, 1]
    helps = ranking.set_index("defense")["never_helps"]
    assert sorted(d for d, v in helps.items() if not pd.isna(v) and v) == ["cap", "random"]
    assert pd.isna(helps["none"])
    # by utility_loss_max every defense ties at 1.0; none first, then by clean cost
    ranking = rank_defenses(pd.DataFrame(rows), loss="utility_loss_max")
    assert ranking["defense"].tolist() == ["none", "random", "cap", "floor", "knn"]
    assert set(ranking["rank"]) == {1}
    # a defense with failed runs was not attacked in full: ranked after the others,
    # however low the worst case of the runs that did finish
    failed = [{"dataset": "toy", "mechanism": AGREE, "attack": "b", "budget": INF,
               "defense": "floor", "seed": 0, "error": "MemoryError: "}]
    ranking = rank_defenses(pd.DataFrame(rows), failed=failed)
    assert ranking["defense"].tolist() == ["none", "random", "cap", "knn", "floor"]
    assert ranking["rank"].tolist() == [1, 1, 1, 4, 5]
    assert ranking.set_index("defense")["runs_failed"].to_dict() == {
        "none": 0, "random": 0, "cap": 0, "knn": 0, "floor": 1}


def test_ranking_section_names_defenses_that_never_help(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    section = text[text.index("## 4."):text.index("## 5.")]
    # noop's runs equal the undefended ones: it has no effect (rather than "never helps")
    assert section.count("No effect on this mechanism (every run equals the undefended "
                         "one): `noop`.") == 2
    assert "No effect in any of the 2 dataset × mechanism combinations: `noop`." in section
    assert "Never helps" not in section
    # clip halves every loss: ranked first, clean cost 0.01 beside it, helps 2/2
    assert "| 1 | clip | 0.033 | stubborn | 0.01 | 2/2 |" in section
    assert "| 2 | none | 0.066 | stubborn | 0 | — |" in section


def test_worst_case_uses_the_chosen_metric_and_skips_baselines() -> None:
    frame = synthetic()
    by_p90 = worst_case(frame)
    by_max = worst_case(frame, loss="utility_loss_max")
    assert set(by_p90["attack"]) == {"sybil", "stubborn"}
    assert np.allclose(by_max["worst_case_loss"], 2 * by_p90["worst_case_loss"])


def test_report_copes_with_a_minimal_results_file(tmp_path: Path) -> None:
    """Only the identity columns and three metrics: the report still renders."""
    frame = synthetic()
    frame = frame[(frame["attack"] != "sybil") & (frame["defense"] != "noop")]
    frame = frame[["dataset", "mechanism", "attack", "budget", "defense", "seed",
                   "utility_loss_p90", "attacker_gain", "converged"]]
    text = write_report(_write(tmp_path, frame)).read_text(encoding="utf-8")
    assert "**None raised.**" in text
    assert "| worst-case loss: stubborn, undefended | 0.066 | 0.132 |" in text
    assert "honest utility mean (clean) | — | — |" in text


def test_security_curves_are_the_envelope_over_smaller_budgets() -> None:
    """A raw curve that dips (the attack missed its own better answer at a larger
    budget) is shown as its running maximum; results.csv keeps the dip."""
    rows = [_row(attack="sybil", budget=b, seed=s, utility_loss_p90=v, capture=c)
            for s in (0, 1)
            for b, v, c in ((0.05, 0.02, 0.3), (0.1, 0.05, 0.1), (0.2, 0.01, 0.4))]
    table = curve_table(pd.DataFrame(rows), ["utility_loss_p90", "capture"])
    assert table["utility_loss_p90_mean"].tolist() == [0.02, 0.05, 0.05]
    assert table["capture_mean"].tolist() == [0.3, 0.3, 0.4]
    assert _flags(pd.DataFrame(rows))["non_monotone"].raised


def test_never_helps_is_judged_on_the_attacks_a_defense_targets() -> None:
    """``aimed`` targets attack a and lowers only b's worst case: it never helps (against
    what it is for). ``elsewhere`` targets a recipe that did not run: not judged."""
    losses = {"none": {"a": 0.3, "b": 0.3}, "aimed": {"a": 0.3, "b": 0.1},
              "elsewhere": {"a": 0.1, "b": 0.1}}
    rows = [_row(attack=attack, defense=defense, utility_loss_p90=loss, recipe=attack)
            for defense, per in losses.items() for attack, loss in per.items()]
    targets = {"none": [], "aimed": ["a"], "elsewhere": ["stubborn"]}
    ranking = rank_defenses(pd.DataFrame(rows), targets=targets).set_index("defense")
    assert bool(ranking.loc["aimed", "never_helps"]) is True
    assert ranking.loc["aimed", ["attacks_helped", "targeted_compared"]].tolist() == [1, 1]
    assert pd.isna(ranking.loc["elsewhere", "never_helps"])
    assert ranking.loc["elsewhere", "targeted_compared"] == 0
    # without targets every attack judges: both help against something
    plain = rank_defenses(pd.DataFrame(rows)).set_index("defense")
    assert not plain.loc["aimed", "never_helps"] and not plain.loc["elsewhere", "never_helps"]
