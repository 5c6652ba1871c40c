"""Certificates in results tables: the sanity checks, the report section, the case-study
text, and an end-to-end suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pluralguard.eval import certificate_table as certs
from pluralguard.eval import sanity
from pluralguard.eval.aggregates import certified_worst_case, rank_defenses_certified
from pluralguard.eval.casestudy_robustness import certification_lines
from pluralguard.eval.report import write_report
from pluralguard.eval.results import load_results
from pluralguard.eval.runner import run_suite
from pluralguard.eval.suite import parse_suite

AGREE, CONS = "agreements", "consensus-p2"


def _row(attack: str = "overshoot", defense: str = "none", mechanism: str = CONS,
         seed: int = 0, goal: str = "selfish", found: float = 0.1,
         certified: float | None = 0.2, basis: str = "ℓ2 mean", **extra: float) -> dict:
    """One attacked results row whose four certified metrics all have the same found and
    certified values (None: undecided)."""
    row = {"dataset": "toy", "mechanism": mechanism, "attack": attack, "budget": 0.1,
           "defense": defense, "seed": seed, "goal": goal, "converged": 1.0,
           "certificate_basis": basis if certified is not None else f"undecided: {basis}"}
    for m in certs.CERTIFIED:
        row[m] = found
        row[f"certified_{m}"] = np.nan if certified is None else certified
        row[f"gap_{m}"] = np.nan if certified is None else certified - found
    return row | extra


def _flags(rows: list[dict]) -> dict[str, sanity.Flag]:
    return {f.name: f for f in sanity.check(pd.DataFrame(rows))}


def test_a_found_value_above_its_certificate_is_flagged():
    flags = _flags([_row(), _row(seed=1, found=0.3, certified=0.2)])
    flag = flags["certificate_exceeded"]
    assert flag.raised and "exceed their certificate" in flag.finding
    assert set(flag.rows["metric"]) == set(certs.CERTIFIED)
    assert (flag.rows["seed"] == 1).all() and "bug" in flag.meaning


def test_the_exhaustive_optimum_above_the_certificate_is_flagged():
    flag = _flags([_row(exhaustive_optimum=0.25)])["certificate_exceeded"]
    assert flag.raised and flag.rows["metric"].tolist() == ["exhaustive_optimum "
                                                            "(attacker_gain)"]


def test_runs_that_did_not_converge_are_not_held_to_their_certificate():
    flag = _flags([_row(found=0.3, certified=0.2, converged=0.0)])["certificate_exceeded"]
    assert not flag.raised and "1 runs that did not converge" in flag.finding


def test_tables_without_certificates_are_not_checked():
    frame = pd.DataFrame([_row()]).drop(columns="certificate_basis")
    flags = {f.name: f for f in sanity.check(frame)}
    assert not flags["certificate_exceeded"].raised
    assert not flags["uncertified"].raised
    assert flags["uncertified"].finding.startswith("Not checked")


def test_coverage_and_undecided_runs_per_mechanism():
    rows = [_row(), _row(seed=1, certified=0.15),
            _row(attack="protocol", mechanism=AGREE, goal="capture", certified=None,
                 basis="protocol deviation"),
            _row(mechanism=AGREE, certified=0.5, basis="valid set only: defense 'x'")]
    table = certs.coverage(pd.DataFrame(rows)).set_index("mechanism")
    assert table.loc[CONS, "share"] == 1.0 and table.loc[AGREE, "share"] == 0.5
    assert table.loc[AGREE, "valid_set_only"] == 1 and table.loc[AGREE, "undecided"] == 1
    assert table.loc[CONS, "median_gap_attacker_gain"] == pytest.approx(0.075)
    flag = _flags(rows)["uncertified"]
    assert flag.raised and "1 protocol deviation" in flag.finding
    assert f"`{CONS}` 2/2 (100%" in flag.finding and f"`{AGREE}` 1/2 (50%" in flag.finding
    summary = flag.to_summary()
    assert {d["mechanism"] for d in summary["details"]} == {AGREE, CONS}


def test_verdicts_say_tight_gap_or_undecided():
    rows = [_row(found=0.2, certified=0.2), _row(seed=1, found=0.1, certified=0.1),
            _row(defense="sybil_cap", found=0.1, certified=0.3),
            _row(attack="protocol", goal="capture", certified=None,
                 basis="protocol deviation"),
            _row(attack="bridge", goal="merge", found=0.0, certified=0.4)]
    table = certs.verdicts(pd.DataFrame(rows)).set_index(["attack", "defense"])
    assert table.loc[("overshoot", "none"), "verdict"] == "tight"
    assert table.loc[("overshoot", "sybil_cap"), "verdict"] == "gap"
    assert table.loc[("protocol", "none"), "verdict"] == "undecided"
    assert table.loc[("protocol", "none"), "reason"] == "protocol deviation"
    assert table.loc[("bridge", "none"), "metric"] == "utility_loss_p90"
    counts = certs.verdict_counts(table.reset_index()).set_index("attack")
    assert counts.loc["overshoot", "tight_under"] == "none"
    assert (counts.loc["overshoot", "tight"], counts.loc["overshoot", "gap"]) == (1, 1)
    text = "\n".join(certification_lines(pd.DataFrame(rows)))
    tight = text[text.index("Certified tight"):text.index("Leave a gap")]
    gaps = text[text.index("Leave a gap"):text.index("Undecided")]
    undecided = text[text.index("Undecided"):]
    assert "`overshoot` on attacker_gain, undefended" in tight and "`bridge`" not in tight
    assert "`bridge` utility_loss_p90 0.4" in gaps
    assert "`protocol`, protocol deviation" in undecided


def test_defenses_are_ranked_by_their_certified_worst_case():
    rows = [_row(attack=a, defense=d, certified=c, found=f, goal="selfish")
            for a, d, f, c in (("overshoot", "none", 0.1, 0.2), ("sybil", "none", 0.1, 0.6),
                               ("overshoot", "clip", 0.05, 0.3), ("sybil", "clip", 0.0, 0.3),
                               ("overshoot", "open", 0.0, 0.1))]
    rows.append(_row(attack="sybil", defense="open", certified=None, basis="why"))
    frame = pd.DataFrame(rows)
    worst = certified_worst_case(frame, "utility_loss_p90")
    assert np.isnan(worst.set_index(["attack", "defense"]).loc[("sybil", "open"), "certified"])
    ranking = rank_defenses_certified(frame, "utility_loss_p90")
    assert ranking["defense"].tolist() == ["clip", "none", "open"]
    assert ranking["rank"].tolist()[:2] == [1, 2] and pd.isna(ranking["rank"].iloc[2])
    assert ranking["worst_attack"].tolist()[1:] == ["sybil", "undecided: sybil"]


def _suite(tmp_path: Path) -> Path:
    data = {"name": "certified", "seeds": [0], "datasets": ["evs2017"],
            "attacks": ["overshoot", {"name": "sybil", "sybils": 3}],
            "defenses": ["sybil_cap"],
            "mechanisms": [{"name": AGREE, "kind": "agreements", "bounds": "quantile:0.5"},
                           {"name": CONS, "kind": "consensus", "p": 2}]}
    suite = parse_suite(data, name="certified", source="<test>")
    out = tmp_path / "out"
    run_suite(suite, out, jobs=1, progress=False)
    return out


def test_a_suite_reports_certificates_everywhere(tmp_path: Path):
    """results.csv carries the certificates, summary.json their coverage per mechanism,
    the report its section 7, and nothing exceeds its certificate."""
    out = _suite(tmp_path)
    results = load_results(out)
    attacked = results[results["attack"] != "none"]
    assert attacked["certified_utility_loss_max"].notna().all()
    assert (attacked["gap_utility_loss_max"] >= -1e-9).all()
    assert (results.loc[results["attack"] == "none", "certified_utility_loss_max"]
            .isna().all())
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["sanity"]["certificate_exceeded"]["raised"]
    coverage = {d["mechanism"]: d for d in summary["sanity"]["uncertified"]["details"]}
    assert coverage[CONS]["share"] == coverage[AGREE]["share"] == 1.0
    text = (out / "report.md").read_text(encoding="utf-8")
    section = text[text.index("## 7. Certified bounds"):]
    assert "found / certified" in section and "ranked by their certified worst case" in section
    assert f"### evs2017 · {CONS}" in section and "| overshoot | attacker_gain | tight" in section


def test_the_report_says_when_results_carry_no_certificates(tmp_path: Path):
    out = tmp_path / "old"
    out.mkdir()
    frame = pd.DataFrame([_row()]).drop(columns=["certificate_basis"])
    frame.to_csv(out / "results.csv", index=False)
    text = write_report(out).read_text(encoding="utf-8")
    assert "## 7. Certified bounds\n\nNo certificates in these results" in text


def test_the_report_brackets_the_worst_case_on_small_populations(tmp_path: Path):
    """Where the exhaustive reference ran, the report states the goal metric's worst case
    between the exhaustive optimum and the certificate (width 0: exact)."""
    out = tmp_path / "small"
    out.mkdir()
    rows = [_row(found=0.1, certified=0.1, exhaustive_optimum=0.1, gap_exhaustive=0.0),
            _row(seed=1, found=0.05, certified=0.2, exhaustive_optimum=0.08,
                 gap_exhaustive=0.12)]
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    text = write_report(out).read_text(encoding="utf-8")
    section = text[text.index("### Small populations"):]
    assert "| selfish | attacker_gain | 0.1 | 0.1 | 0 |" in section
    assert "| selfish | attacker_gain | 0.08 | 0.2 | 0.12 |" in section
