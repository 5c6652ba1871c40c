"""Suite runner: result files, determinism, resume after a kill, executors, sanity flags."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pluralguard.eval import sanity
from pluralguard.eval.provenance import run_key
from pluralguard.eval.runner import run_suite
from pluralguard.eval.store import RunStore
from pluralguard.eval.suite import load_suite

#: Columns results.csv must have (issue 3).
REQUIRED = ["dataset", "mechanism", "attack", "budget", "defense", "seed",
            "honest_utility_mean", "utility_loss_mean", "utility_loss_p90", "utility_loss_max",
            "attacker_gain", "capture", "join_success", "exclusion_rate", "partition_change",
            "n_groups_clean", "n_groups_attacked", "defense_cost", "attack_success", "queries",
            "converged"]

SMALL = """\
name = "small"
seeds = [0, 1]
datasets = ["evs2017"]
attacks = [{name = "sybil", budgets = [0.1, 0.3]}]
defenses = ["bound_floor"]

[[mechanisms]]
name = "agreements"
kind = "agreements"
bounds = "quantile:0.5"
method = "exact"

[[mechanisms]]
name = "consensus-p2"
kind = "consensus"
p = 2
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def cli(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pluralguard.eval.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory):
    """The small suite run once into a directory, for the tests that only read it."""
    root = tmp_path_factory.mktemp("ran")
    (root / "small.toml").write_text(SMALL)
    suite = load_suite(root / "small.toml")
    res = run_suite(suite, root / "out", jobs=1, progress=False, report=False)
    return suite, res, root / "out"


def test_a_run_writes_its_files(ran):
    _, _, out = ran
    assert {p.name for p in out.iterdir()} >= {"results.csv", "timings.csv", "summary.json",
                                               "suite.resolved.json", "runs.jsonl"}
    table = pd.read_csv(out / "results.csv")
    timings = pd.read_csv(out / "timings.csv")
    assert len(timings) == len(table) and (timings["total"] >= 0).all()


def test_results_have_the_columns_and_one_row_per_run_in_grid_order(ran):
    suite, res, out = ran
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[:6]) == REQUIRED[:6]
    assert set(REQUIRED) <= set(table.columns)
    assert not {"clean", "plan", "attacked", "total", "worker"} & set(table.columns)
    grid = [p.identity for p in suite.grid()]
    skipped = [{k: s[k] for k in grid[0]} for s in res.summary["not_applicable"]]
    assert table[list(grid[0])].to_dict("records") == [g for g in grid if g not in skipped]


def test_the_summary_counts_the_grid_and_clears_every_flag(ran):
    suite, res, out = ran
    summary = json.loads((out / "summary.json").read_text())
    grid = len(suite.grid())
    skipped = len(res.summary["not_applicable"])
    assert summary["counts"] == {
        "grid": grid, "finished": grid, "rows": grid - skipped,
        "not_applicable": skipped, "failed": 0, "computed": grid, "reused": 0,
        "datasets": 1, "mechanisms": 2, "defenses": 2, "attacks": 2, "seeds": 2}
    assert summary["suite"]["digest"] == suite.digest
    assert set(summary["sanity"]) == set(sanity.CHECKS)
    assert not any(flag["raised"] for flag in summary["sanity"].values())
    nondeterminism = summary["sanity"]["nondeterminism"]
    assert (nondeterminism["count"], nondeterminism["details"], nondeterminism["checked"]) \
        == (0, [], 2)
    assert set(summary["by_mechanism"]) == {"agreements", "consensus-p2"}
    assert set(summary["by_defense"]) == {"none", "bound_floor"}


def test_a_rerun_reuses_every_run_and_writes_the_same_bytes(ran, tmp_path):
    suite, _, out = ran
    again_dir = tmp_path / "again"
    shutil.copytree(out, again_dir)
    again = run_suite(suite, again_dir, jobs=1, progress=False, report=False)
    assert (again.summary["counts"]["computed"], again.summary["counts"]["reused"]) == \
        (0, len(suite.grid()))
    assert (again_dir / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_a_fresh_directory_gives_a_bit_identical_table(ran, tmp_path):
    suite, _, out = ran
    run_suite(suite, tmp_path / "b", jobs=1, progress=False, report=False)
    assert (tmp_path / "b" / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_floats_are_written_exactly(small, tmp_path):
    res = run_suite(load_suite(small), tmp_path, jobs=1, progress=False, report=False)
    back = pd.read_csv(tmp_path / "results.csv")
    got = back["utility_loss_mean"].to_numpy()
    want = res.results["utility_loss_mean"].to_numpy(dtype=float)
    assert np.array_equal(got, want, equal_nan=True)


def test_store_tolerates_a_torn_last_line(small, tmp_path):
    suite = load_suite(small)
    run_suite(suite, tmp_path, jobs=1, progress=False, report=False)
    first = (tmp_path / "results.csv").read_bytes()
    store = tmp_path / "runs.jsonl"
    lines = store.read_text().splitlines(keepends=True)
    store.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])  # torn write
    assert len(RunStore(store).load()) == len(lines) - 3
    assert store.read_text().endswith("\n")  # the torn tail was cut off
    res = run_suite(suite, tmp_path, jobs=1, progress=False, report=False)
    assert res.summary["counts"]["computed"] == 3
    assert (tmp_path / "results.csv").read_bytes() == first
    assert len(store.read_text().splitlines()) == len(lines)


def test_fresh_forgets_the_store(small, tmp_path):
    suite = load_suite(small)
    run_suite(suite, tmp_path, jobs=1, progress=False, report=False)
    res = run_suite(suite, tmp_path, jobs=1, progress=False, report=False, fresh=True)
    assert res.summary["counts"]["computed"] == len(suite.grid())


def test_run_keys_are_content_addresses(small):
    suite = load_suite(small)
    keys = [run_key(p) for p in suite.grid()]
    assert len(set(keys)) == len(keys)
    assert keys == [run_key(p) for p in load_suite(small).grid()]


#: ``pluralguard ...`` with the store's fault-injection point set: the process kills
#: itself (SIGKILL: no cleanup, as a crash or an out-of-memory kill) right after its
#: second durable append.
KILLED_AFTER_TWO_APPENDS = """
import os, signal, sys
from pluralguard.eval.cli import main
from pluralguard.eval.store import RunStore
appends = []
def crash(store):
    appends.append(store)
    if len(appends) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
RunStore.after_append = crash
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill(tmp_path):
    """SIGKILL a run after its second batch, rerun: the same table as an uninterrupted
    run, no duplicates, only the missing runs computed."""
    path = tmp_path / "resume.toml"
    path.write_text(SMALL.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]")
                    .replace("[0.1, 0.3]", "[0.05, 0.1, 0.2, 0.3]"))
    total = len(load_suite(path).grid())
    run_suite(load_suite(path), tmp_path / "whole", jobs=1, progress=False, report=False)

    out = tmp_path / "killed"
    argv = ("run", str(path), "--out", str(out), "--jobs", "1", "--batch", "2", "--quiet",
            "--no-report")
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_TWO_APPENDS, *argv],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "runs.jsonl").read_text().count("\n") == 4  # two batches of two
    assert json.loads((out / "summary.json").read_text())["complete"] is False

    rerun = cli(*argv)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert (counts["computed"], counts["reused"]) == (total - 4, 4)
    assert (out / "results.csv").read_bytes() == (tmp_path / "whole" / "results.csv").read_bytes()
    table = pd.read_csv(out / "results.csv")
    identity = ["dataset", "mechanism", "attack", "budget", "defense", "seed"]
    assert not table.duplicated(identity).any()


def test_local_and_dask_executors_agree(small, tmp_path):
    pytest.importorskip("distributed")
    suite = load_suite(small)
    run_suite(suite, tmp_path / "one", jobs=1, progress=False, report=False)
    local = run_suite(suite, tmp_path / "local", jobs=2, progress=False, report=False)
    dask = run_suite(suite, tmp_path / "dask", executor="dask", jobs=2, progress=False,
                     report=False)
    one = (tmp_path / "one" / "results.csv").read_bytes()
    assert (tmp_path / "local" / "results.csv").read_bytes() == one
    assert (tmp_path / "dask" / "results.csv").read_bytes() == one
    workers = {w for w in pd.read_csv(tmp_path / "dask" / "timings.csv")["worker"]}
    assert str(os.getpid()) not in {w.split(":")[1] for w in workers}  # ran in workers
    assert local.summary["executor"] == {"kind": "local", "jobs": 2, "scheduler": None}
    assert dask.summary["sanity"]["nondeterminism"]["raised"] is False


def test_bad_run_options(small, tmp_path, monkeypatch):
    from pluralguard.core.errors import InputError

    suite = load_suite(small)
    for kwargs, field in [({"executor": "spark"}, "executor"),
                          ({"scheduler": "tcp://x:1"}, "scheduler"),
                          ({"jobs": 0}, "jobs"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(InputError, match=field):
            run_suite(suite, tmp_path, progress=False, **kwargs)
    monkeypatch.setitem(sys.modules, "distributed", None)  # dask not installed
    with pytest.raises(InputError, match=r"pluralguard\[dask\]"):
        run_suite(suite, tmp_path, executor="dask", progress=False)


def _row(attack: str, goal: str = "selfish", gain: float = 0.0, **extra) -> dict:
    return {"dataset": "d", "mechanism": "m", "attack": attack, "budget": 0.1,
            "defense": "none", "seed": 0, "goal": goal, "attacker_gain": gain,
            "capture": math.nan, "converged": 1, **extra}


def test_sanity_flags():
    rows = pd.DataFrame([_row("none", "none", math.nan), _row("a", gain=0.0),
                         _row("b", gain=-0.1), _row("best_response", gain=-0.05)])
    flags = {f.name: f for f in sanity.check(rows)}
    assert flags["zero_gain"].raised
    assert flags["adaptive_beaten"].raised  # fixed "a" (0.0) beat it (-0.05)
    assert flags["adaptive_beaten"].rows["beaten by"].tolist() == ["a"]
    assert flags["below_truth"].raised  # "b" and the search did worse than the truth
    assert sorted(flags["below_truth"].rows["attack"]) == ["b", "best_response"]
    assert not flags["non_convergence"].raised

    rows = pd.DataFrame([_row("a", gain=0.2, converged=0), _row("best_response", gain=0.3),
                         _row("c", goal="capture", gain=0.5, capture=0.9)])
    flags = {f.name: f for f in sanity.check(rows)}
    assert not flags["zero_gain"].raised
    assert not flags["adaptive_beaten"].raised  # "c" pursues another goal
    assert flags["non_convergence"].raised and len(flags["non_convergence"].rows) == 1
    summary = flags["non_convergence"].to_summary()
    assert summary["raised"] is True and summary["count"] == 1
    assert summary["details"][0]["attack"] == "a"


def test_a_curve_that_falls_with_the_budget_is_flagged():
    curve = [_row("sybil", gain=g, budget=b) for b, g in ((0.05, 0.1), (0.1, 0.3), (0.2, 0.2))]
    flags = {f.name: f for f in sanity.check(pd.DataFrame(curve))}
    assert flags["non_monotone"].raised
    assert flags["non_monotone"].rows[["budget", "smaller budget"]].values.tolist() == \
        [[0.2, 0.1]]


def test_a_black_box_search_beating_a_white_box_one_is_flagged():
    modes = [_row("best_response", gain=0.2, knowledge="black"),
             _row("best_response(w)", gain=0.1, knowledge="white", recipe="best_response")]
    flag = {f.name: f for f in sanity.check(pd.DataFrame(modes))}["black_box_beaten"]
    assert flag.raised and flag.rows[["black", "white"]].values.tolist() == [[0.2, 0.1]]


def test_a_search_below_95_percent_of_the_exhaustive_optimum_is_flagged():
    gap = [_row("best_response", gain=0.9, exhaustive_optimum=1.0),
           _row("overshoot", gain=0.5, exhaustive_optimum=1.0)]
    flag = {f.name: f for f in sanity.check(pd.DataFrame(gap))}["exhaustive_gap"]
    assert flag.raised and flag.rows["attack"].tolist() == ["best_response"]
    assert "1 runs of fixed recipes" in flag.finding  # overshoot, at 0.5 of 1.0
    gap[0]["attacker_gain"] = 0.96  # within 95 % of the optimum
    flag = {f.name: f for f in sanity.check(pd.DataFrame(gap))}["exhaustive_gap"]
    assert not flag.raised


def test_nondeterminism_is_flagged(tmp_path):
    from pluralguard.core.consensus import lp_consensus
    from pluralguard.core.mechanism import register_mechanism

    rng = np.random.default_rng()

    def noisy(population, **params):  # an unseeded mechanism: never the same twice
        jitter = rng.uniform(0.5, 1.5, population.n)
        return lp_consensus(population, weights=population.weight * jitter, **params)

    register_mechanism("noisy_test_mechanism", noisy, description="test: unseeded")
    path = tmp_path / "noisy.toml"
    path.write_text('datasets = ["evs2017"]\nmechanisms = ["noisy_test_mechanism"]\n'
                    'attacks = [{name = "sybil", budgets = [0.1]}]\n')
    res = run_suite(load_suite(path), tmp_path / "out", jobs=1, progress=False, report=False)
    flag = res.summary["sanity"]["nondeterminism"]
    assert flag["raised"] is True and flag["checked"] == 1
    assert flag["details"][0]["attack"] == "sybil"
    assert "utility_loss_mean" in flag["details"][0]["columns"]


def test_randomized_rows_are_judged_within_their_sampling_noise():
    """Against a randomized defense the attack plans on other draws than the
    evaluation's: a mean below 0 by less than two standard errors is noise."""
    noisy = _row("sybil", goal="capture", capture=-0.01, draws=8,
                 goal_measure_draw_sd=0.05)
    flags = {f.name: f for f in sanity.check(pd.DataFrame([noisy]))}
    assert not flags["below_truth"].raised
    assert "1 runs against randomized defenses sit below 0" in flags["below_truth"].finding
    far = dict(noisy, capture=-0.2)  # 0.2 > 2 · 0.05 / √8
    assert {f.name: f for f in sanity.check(pd.DataFrame([far]))}["below_truth"].raised


def test_sessions_shared_between_runs_change_no_result():
    """A worker's cache hands the same attack-query session to every run on one
    population and mechanism; the rows are those of runs with a cache of their own."""
    from pluralguard.attacks import make_attack
    from pluralguard.eval.run_cache import RunCache
    from pluralguard.eval.scenario import run_scenario
    from populations import bounded

    pop = bounded(n=40, seed=5)
    mech = {"kind": "agreements", "bounds": "quantile:0.5"}
    runs = [(name, budget) for name in ("overshoot", "sybil", "best_response")
            for budget in (0.05, 0.2)]
    shared = RunCache()

    def row(name: str, budget: float, cache: RunCache) -> dict:
        attack = make_attack(name, queries=40) if name == "best_response" else name
        return run_scenario(pop, mech, attack, defense="kcore", budget=budget, seed=0,
                            cache=cache).row

    together = [row(name, budget, shared) for name, budget in runs]
    assert len(shared._sessions) == 1
    apart = [row(name, budget, RunCache()) for name, budget in runs]
    pd.testing.assert_frame_equal(pd.DataFrame(together), pd.DataFrame(apart))
