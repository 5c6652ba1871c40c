"""CI gate: each false pass and wall of issue 12 reproduced, and shown fixed.

False passes: stored runs reused after a plugin changed; a closed pipe turning exit 1
into 0; attacks that do not apply vanishing; empty or partial baselines passing. Walls:
user code from the command line and in worker processes, ``--mechanism KIND,k=v``,
limits, per-point baselines, exit codes, JUnit and JSON output, safe baseline writes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from cli_run import run

from pluralguard.eval import gate
from pluralguard.eval.criteria import Tolerance
from pluralguard.eval.runner import RunResult
from pluralguard.eval.suite import load_suite

_COUNTER = itertools.count()

#: A plugin mechanism: the ℓp consensus, p set by the file (p = 2, the mean, resists
#: Sybil stuffing here better than p = 1, the median, moved by a few identities);
#: optionally raising when it sees more agents than the population has (Sybils).
PLUGIN = """\
from pluralguard.core import lp_consensus, make_outcome, register_mechanism

P = {p}
LIMIT = {limit}


def mechanism(population, **params):
    if LIMIT is not None and population.n > LIMIT:
        raise RuntimeError(f"cannot handle {{population.n}} agents")
    res = lp_consensus(population, p=P)
    return make_outcome(population, res.labels, res.X, res.W)


register_mechanism("{kind}", mechanism, description="test: a plugin consensus")
"""

SUITE = """\
name = "gate"
plugins = ["{plugin}"]
datasets = ["evs2017"]
attacks = [{{name = "sybil", budgets = [0.1, 0.3]}}]
{extra}

[[mechanisms]]
name = "mech"
kind = "{kind}"

[[mechanisms]]
name = "p2"
kind = "consensus"
p = 2
"""


class Project:
    """A user's project in a temporary directory: a plugin file and a suite using it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stem = f"gate_plugin_{next(_COUNTER)}"
        self.kind = f"{self.stem}_kind"
        self.plugin = root / f"{self.stem}.py"
        self.suite = root / "suite.toml"
        self.baseline = root / "baseline.json"
        self.write_plugin(2)
        self.write_suite()

    def write_plugin(self, p: float, limit: int | None = None) -> None:
        self.plugin.write_text(PLUGIN.format(p=p, limit=limit, kind=self.kind))

    def write_suite(self, extra: str = "") -> None:
        self.suite.write_text(SUITE.format(plugin=self.plugin.name, kind=self.kind,
                                           extra=extra))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)



def cli(project: Project, capsys, command: str, *extra: str,
        baseline: bool = True) -> tuple[int, str, str]:
    """``pluralguard COMMAND SUITE`` on the project (its baseline; one job unless given)."""
    args = [command, str(project.suite), "--quiet"]
    if command == "baseline":
        args += ["-o", str(project.baseline)]
    elif command == "check" and baseline:
        args += ["--baseline", str(project.baseline)]
    if "--jobs" not in extra:
        args += ["--jobs", "1"]
    return run(capsys, *args, *extra)


# ------------------------------------------------------------ false passes
def test_edited_plugin_with_reused_out_fails_and_recomputes_only_its_runs(project, capsys):
    """False pass 1: the run key now covers the plugin's source (and --jobs 2 loads the
    plugin in every worker, reloading it when it changed)."""
    code, out, _ = cli(project, capsys, "baseline", "--jobs", "2")
    assert code == 0 and "wrote the baseline of suite 'gate'" in out
    store = project.root / "results"
    code, out, _ = cli(project, capsys, "check", "--out", str(store), "--jobs", "2")
    assert code == 0, out
    assert out.startswith("ok: no regression")
    summary = json.loads((store / "summary.json").read_text())
    assert summary["counts"]["computed"] == 6 and summary["counts"]["failed"] == 0
    workers = set(pd.read_csv(store / "timings.csv")["worker"])
    assert not any(w.endswith(f":{os.getpid()}") for w in workers)  # ran in the workers

    project.write_plugin(1)  # the user's mechanism became easier to manipulate
    code, out, _ = cli(project, capsys, "check", "--out", str(store), "--jobs", "2")
    assert code == 1, out
    summary = json.loads((store / "summary.json").read_text())
    # exactly the plugin mechanism's runs were recomputed; the built-in consensus reused
    assert summary["counts"]["computed"] == 3 and summary["counts"]["reused"] == 3
    assert out.startswith("FAIL: ")
    head, details = out.split("\ndetails:\n")
    assert "worst regression per attack × metric" in head
    assert "utility_loss_mean" in details and "evs2017/mech/sybil@0.1/none/seed 0" in details
    assert "evs2017/p2/" not in details


def _pipe(project: Project, reader: str) -> int:
    command = (f"set -o pipefail; '{sys.executable}' -m pluralguard.eval.cli check "
               f"'{project.suite}' --baseline '{project.baseline}' --quiet --jobs 1 "
               f"| {reader}")
    proc = subprocess.run(["bash", "-c", command], cwd=project.root, capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    return proc.returncode


@pytest.mark.slow
def test_a_closed_pipe_keeps_the_exit_code(project, capsys):
    """False pass 2: `check … | head -1` used to exit 0 with regressions."""
    assert cli(project, capsys, "baseline")[0] == 0
    project.write_plugin(1)
    assert _pipe(project, "head -1") == 1
    assert _pipe(project, "true") == 1  # the reader is gone before anything is written


def test_not_applicable_points_are_listed_and_fail_under_strict(project, capsys):
    """False pass 3: refused attacks used to vanish from the baseline and the check."""
    project.suite.write_text(project.suite.read_text().replace(
        'attacks = [{name = "sybil", budgets = [0.1, 0.3]}]',
        'attacks = ["bridge", "stubborn", "threshold_shift", "infiltrate"]'))
    code, out, _ = cli(project, capsys, "baseline")
    assert code == 0 and "not applicable" in out
    doc = json.loads(project.baseline.read_text())
    assert len(doc["points"]) == 2 and len(doc["not_applicable"]) == doc["grid"] - 2
    code, out, _ = cli(project, capsys, "check")
    assert code == 0
    assert "not applicable (--strict makes them failures)" in out
    assert "bridge × mech" in out and "lacks capability 'groups'" in out
    code, out, _ = cli(project, capsys, "check", "--strict")
    assert code == 1 and out.startswith("FAIL: ") and "not applicable (--strict)" in out


def test_a_point_that_stops_applying_is_lost_coverage(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    text = ('datasets = ["evs2017"]\nattacks = [{{name = "stubborn", budgets = [0.9]}}]\n'
            '[[mechanisms]]\nname = "agreements"\nkind = "agreements"\nbounds = "{bounds}"\n')
    suite.write_text(text.format(bounds="declared"))
    baseline = tmp_path / "b.json"
    assert run(capsys, "baseline", str(suite), "-o", str(baseline), "--quiet")[0] == 0
    suite.write_text(text.format(bounds="quantile:0.5"))  # stubborn no longer applies
    code, out, _ = run(capsys, "check", str(suite), "--baseline", str(baseline), "--quiet")
    assert code == 1
    assert "1 baseline points lost coverage" in out.splitlines()[0]
    assert "did not apply: mechanism: attack 'stubborn'" in out
    suite.write_text(text.format(bounds="declared").replace('"stubborn"', '"sybil"'))
    code, out, _ = run(capsys, "check", str(suite), "--baseline", str(baseline), "--quiet")
    assert code == 1 and "not in the suite's grid any more" in out
    assert "not in baseline" in out  # the sybil point is new


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d.update(points=[], not_applicable=[], grid=0), "no measured grid point"),
    (lambda d: d["points"].pop(), "is partial: it lists 5 grid points"),
    (lambda d: d["points"][1]["metrics"].pop("capture"), "lacks capture"),
    (lambda d: d["points"].append(d["points"][0]), "listed twice"),
    (lambda d: d.update(format="pluralguard-baseline/1"), "old format"),
    (lambda d: d["metrics"].remove("utility_loss_mean"), "does not gate utility_loss_mean"),
])
def test_empty_or_partial_baselines_are_usage_errors(project, capsys, edit, needle):
    """False pass 4: a valid JSON file with an empty or partial points list passed."""
    assert cli(project, capsys, "baseline")[0] == 0
    doc = json.loads(project.baseline.read_text())
    edit(doc)
    project.baseline.write_text(json.dumps(doc))
    code, out, err = cli(project, capsys, "check")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert needle in err and "pluralguard baseline" in err


# --------------------------------------------------------------- the gate
def test_limits_with_and_without_a_baseline(project, capsys):
    limits = ('[[limits]]\nattack = "sybil"\nmechanism = "mech"\nmetric = "utility_loss_mean"'
              '\nmax = {max}\n')
    project.write_suite(limits.format(max=1.0))
    code, out, _ = cli(project, capsys, "check", baseline=False)
    assert code == 0 and "ok limits[0] utility_loss_mean <= 1" in out
    project.write_suite(limits.format(max=-1.0))
    code, out, _ = cli(project, capsys, "check", baseline=False)
    assert code == 1 and out.startswith("FAIL: 1 limits violated")
    assert "VIOLATED limits[0] utility_loss_mean <= -1 (mechanism=mech, attack=sybil): at 2 " \
           "of 2 points" in out
    # a limit on a metric the attack leaves undefined is measured nowhere: a failure
    project.write_suite('[[limits]]\nattack = "sybil"\nmetric = "exclusion_rate"\nmax = 0.5\n')
    code, out, _ = cli(project, capsys, "check", baseline=False)
    assert code == 1 and "NOT MEASURED limits[0] exclusion_rate <= 0.5" in out
    # a subset without the limit's points does not judge it
    project.write_suite(limits.format(max=-1.0))
    code, out, _ = cli(project, capsys, "check", "--only", "mechanism=p2", baseline=False)
    assert code == 0 and "not judged limits[0]" in out
    # nothing to check is a usage error, not a pass
    project.write_suite()
    code, _, err = cli(project, capsys, "check", baseline=False)
    assert code == 2 and "nothing to check" in err


def test_a_raising_mechanism_exits_3_naming_the_grid_point(project, capsys):
    project.write_plugin(2, limit=34)  # raises on Sybils (more than evs2017's 34 agents)
    project.write_suite('[[limits]]\nmetric = "honest_utility_mean"\nmin = 0\n')
    code, out, _ = cli(project, capsys, "check", baseline=False)
    assert code == 3
    assert out.startswith("ERROR: 2 runs failed")
    assert ("evs2017/mech/sybil@0.1/none/seed 0: RuntimeError: cannot handle 39 agents"
            in out)
    code, out, _ = run(capsys, "run", str(project.suite), "--out", str(project.root / "r"),
                       "--quiet", "--jobs", "1", "--no-report")
    assert code == 3 and "2 runs failed" in out and "evs2017/p2/" not in out
    summary = json.loads((project.root / "r" / "summary.json").read_text())
    assert summary["counts"]["failed"] == 2
    assert summary["failed"][0]["error"].startswith("RuntimeError: cannot handle")
    assert "Traceback" in summary["failed"][0]["traceback"]
    # failed runs are not finished: a rerun computes them again
    argv = ("run", str(project.suite), "--out", str(project.root / "r"), "--quiet", "--jobs",
            "1", "--no-report")
    code, out, _ = run(capsys, *argv)
    assert code == 3 and "2 failed; 2 computed, 4 reused" in out
    project.write_plugin(2)  # fixed (the plugin's 3 runs have new keys)
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "0 failed; 3 computed, 3 reused" in out
    # a baseline is not written while runs fail
    project.write_plugin(2, limit=34)
    code, out, _ = cli(project, capsys, "baseline")
    assert code == 3 and not project.baseline.exists() and "did not write" in out


def test_junit_and_json_have_one_entry_per_check(project, capsys):
    project.write_suite('[[limits]]\nattack = "sybil"\nmetric = "utility_loss_max"\nmax = 1\n'
                        '[[limits]]\nmetric = "honest_utility_min"\nmin = 2\n')
    assert cli(project, capsys, "baseline")[0] == 0
    project.write_plugin(1)
    junit, record = project.root / "gate.xml", project.root / "gate.json"
    code, _, _ = cli(project, capsys, "check", "--junit", str(junit), "--json", str(record))
    assert code == 1
    suite = load_suite(project.suite)
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(suite.grid()) + 2 == int(root.get("tests"))
    failures = [c for c in cases if c.find("failure") is not None]
    limit_cases = [c for c in cases if c.get("classname").endswith(".limits")]
    assert [c.get("name") for c in limit_cases] == [
        "limits[0] utility_loss_max <= 1 (attack=sybil)", "limits[1] honest_utility_min >= 2"]
    assert limit_cases[1].find("failure") is not None and limit_cases[0].find("failure") is None
    evidence = json.loads(record.read_text())
    regressed = {(c["mechanism"], c["attack"], c["budget"], c["defense"])
                 for c in evidence["comparisons"] if c["verdict"] == "regressed"}
    point_failures = [c for c in failures if not c.get("classname").endswith(".limits")]
    assert len(point_failures) == len(regressed) > 0
    assert all(c.get("classname") == "pluralguard.gate.evs2017.mech" for c in point_failures)
    assert evidence["exit_code"] == 1 and evidence["verdict"] == "fail"
    assert len(evidence["comparisons"]) == len(suite.grid()) * len(suite.criteria.metrics)
    first = evidence["comparisons"][0]
    assert {"baseline", "now", "delta", "tolerance", "allowed", "verdict"} <= set(first)
    assert [lim["verdict"] for lim in evidence["limits"]] == ["ok", "violated"]


def test_new_points_do_not_invalidate_the_baseline_and_only_updates_part(project, capsys):
    assert cli(project, capsys, "baseline")[0] == 0
    project.write_suite('defenses = ["sybil_cap"]')  # adding a defense
    code, out, _ = cli(project, capsys, "check")
    assert code == 0, out
    assert "6 not in baseline" in out.splitlines()[1]
    # the subset: only the new defense's points, written into the existing baseline
    code, out, _ = cli(project, capsys, "baseline", "--only", "defense=sybil_cap")
    assert code == 0 and "0 metric values changed at 0 grid points, 6 points added" in out
    assert json.loads(project.baseline.read_text())["grid"] == 12
    code, out, _ = cli(project, capsys, "check", "--only", "attack=sybil,mechanism=p2")
    assert code == 0 and "4 grid points" in out.splitlines()[1]
    code, _, err = cli(project, capsys, "check", "--only", "attack=sibyl")
    assert code == 2 and "no attack 'sibyl'" in err


def test_baseline_checks_its_path_first_and_says_what_changed(project, capsys, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError("the suite ran before the output path was checked")

    with monkeypatch.context() as m:
        m.setattr(gate, "_run", no_run)
        code, out, err = run(capsys, "baseline", str(project.suite), "-o",
                             str(project.root / "missing" / "dir" / "b.json"))
        assert code == 2 and "directory" in err and "does not exist" in err
        notes = project.root / "notes.json"
        notes.write_text('{"mine": 1}')
        code, _, err = run(capsys, "baseline", str(project.suite), "-o", str(notes))
        assert code == 2 and "refusing to overwrite" in err
    assert cli(project, capsys, "baseline")[0] == 0
    code, out, _ = cli(project, capsys, "baseline")
    assert code == 0 and "unchanged" in out
    project.write_plugin(1)
    code, out, _ = cli(project, capsys, "baseline")
    assert code == 0 and out.startswith("updated ") and "metric values changed at" in out
    assert "evs2017/mech/sybil@0.1/none/seed 0  utility_loss_mean:" in out


def _result(rows: list[dict]) -> RunResult:
    summary = {"not_applicable": [], "failed": []}
    return RunResult(Path("."), pd.DataFrame(rows), summary, None)


def test_tolerances_absolute_relative_and_per_attack(project):
    project.write_suite('[tolerances]\nutility_loss_mean = {absolute = 0.001, relative = 0.5}'
                        '\n[tolerances.attacks.sybil]\nutility_loss_max = {relative = 1.0}\n'
                        '[gate]\nmetrics = ["utility_loss_mean", "utility_loss_max", '
                        '"honest_utility_mean", "capture"]')
    suite = load_suite(project.suite)
    assert suite.criteria.tolerance("utility_loss_mean") == Tolerance(0.001, 0.5)
    assert suite.criteria.tolerance("utility_loss_max", ["sybil"]) == Tolerance(0, 1.0)
    assert suite.criteria.tolerance("utility_loss_max", ["none"]) == Tolerance(1e-4)
    points = [p.identity for p in suite.grid()]
    base = {"utility_loss_mean": 0.1, "utility_loss_max": 0.2, "honest_utility_mean": 0.9,
            "capture": None}
    doc = {"points": [{**p, "metrics": base} for p in points]}

    def verdicts(**now):
        rows = [{**p, **{k: (math.nan if v is None else v) for k, v in base.items()}, **now}
                for p in points]
        res = gate.evaluate(suite, _result(rows), doc)
        return {(c.point["attack"], c.metric): c.verdict for c in res.comparisons
                if c.verdict != "ok"}

    assert verdicts() == {}
    assert verdicts(utility_loss_mean=0.149) == {}  # within 0.5 × 0.1
    assert set(verdicts(utility_loss_mean=0.151).values()) == {"regressed"}
    assert verdicts(utility_loss_mean=0.0)[("sybil", "utility_loss_mean")] == "improved"
    # per attack: sybil may double utility_loss_max, the clean rows may not move
    assert verdicts(utility_loss_max=0.39) == {("none", "utility_loss_max"): "regressed"}
    assert verdicts(honest_utility_mean=0.8)[("none", "honest_utility_mean")] == "regressed"
    assert verdicts(capture=0.3)[("sybil", "capture")] == "regressed"  # became defined
    # the gated metrics are selectable: others are not compared
    assert {c.metric for c in gate.evaluate(suite, _result(
        [{**p, **base} for p in points]), doc).comparisons} == {
        "utility_loss_mean", "utility_loss_max", "honest_utility_mean", "capture"}


# ---------------------------------------------------- user code, typos, walls
def test_attack_command_takes_plugin_mechanism_parameters(project, capsys):
    code, out, err = run(capsys, "attack", "--plugin", str(project.plugin), "--dataset",
                         "evs2017", "--mechanism", f"{project.kind}", "--attack",
                         "sybil,sybils=3", "--json")
    assert code == 0, err
    assert json.loads(out)["mechanism"] == project.kind
    code, out, err = run(capsys, "attack", "--dataset", "evs2017", "--mechanism",
                         "consensus,p=1", "--attack", "sybil")
    assert code == 0, err
    assert "consensus(p=1)" in out
    code, _, err = run(capsys, "attack", "--dataset", "evs2017", "--mechanism",
                       "consensus,p=1", "--p", "2", "--attack", "sybil")
    assert code == 2 and "--p: given twice" in err
    code, _, err = run(capsys, "attack", "--dataset", "evs2017", "--mechanism",
                       "agreements", "--attack", "exclude,attackers=3+99999")
    assert code == 2 and "--attack.attackers: id 99999 is out of range for dataset " \
                         "'evs2017' (34 agents)" in err
    code, _, err = run(capsys, "list", "mechanisms", "--plugin", "no_such_plugin_module")
    assert code == 2 and "no module named 'no_such_plugin_module'" in err


@pytest.mark.parametrize(("attack", "needle"), [
    ('{name = "exclude", attackers = [99999]}',
     "attacks[0].attackers: id 99999 is out of range for dataset 'evs2017' (34 agents); "
     "pass agent indices 0–33"),
    ('{name = "exclude", victims = [0, 40]}', "attacks[0].victims: id 40 is out of range"),
    ('{name = "sybil", goal = "capture", group = 99}',
     "attacks[0].group: group rank 99 is out of range for dataset 'evs2017'"),
    ('{name = "bridge", groups = [0, 34]}', "attacks[0].groups: group rank 34"),
    ('{name = "sybil", count = 34}', "attacks[0].count: 34 attackers"),
    ('{name = "sybil", goal = "capture", point = [[1, 2], [0.5, 0.5]]}',
     "attacks[0].point: is not a value system"),
    ('{name = "exclude", attackers = ["a5"]}',
     "attacks[0].attackers: no agent is named 'a5' for dataset 'evs2017'"),
])
def test_typos_in_agent_ids_are_usage_errors_at_load(tmp_path, capsys, attack, needle):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'datasets = ["evs2017"]\nmechanisms = ["agreements"]\n'
                     f'attacks = [{attack}]\n')
    code, out, err = run(capsys, "run", str(suite), "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert needle in err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_a_mechanism_returning_a_bad_outcome_fails_at_load(tmp_path, capsys):
    plugin = tmp_path / f"bad_outcome_{next(_COUNTER)}.py"
    plugin.write_text(
        "from types import SimpleNamespace\n"
        "import numpy as np\n"
        "from pluralguard.core import register_mechanism\n"
        "def mechanism(population):\n"
        "    n = population.n\n"
        "    return SimpleNamespace(labels=np.zeros(n, int), X=population.X[:1],\n"
        "                           W=population.W[:1], converged=True, n_iter=0)\n"
        f"register_mechanism('{plugin.stem}', mechanism)\n")
    suite = tmp_path / "suite.toml"
    suite.write_text(f'plugins = ["{plugin.name}"]\ndatasets = ["evs2017"]\n'
                     f'mechanisms = ["{plugin.stem}"]\n')
    code, _, err = run(capsys, "run", str(suite), "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "mechanisms[0].mechanism" in err
    assert "an outcome without membership, consensus, utilities, n_groups" in err
    assert "pluralguard.core.make_outcome(population, labels, X, W)" in err


@pytest.mark.slow
def test_pytest_plugin_checks_and_fails_after_regenerating(project):
    (project.root / "test_robust.py").write_text(
        "def test_gate(pluralguard_check):\n"
        "    pluralguard_check('suite.toml', 'baseline.json')\n")
    # load the plugin module explicitly, whether or not its entry point is installed
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:pluralguard", "-p",
            "pluralguard.eval.pytest_plugin", "-p", "no:cacheprovider", "--rootdir",
            str(project.root), str(project.root / "test_robust.py")]

    def pytest_run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*argv, *extra], cwd=project.root, capture_output=True,
                              text=True, timeout=300)

    proc = pytest_run()
    assert proc.returncode == 1 and "no such file" in proc.stdout  # no baseline yet
    proc = pytest_run("--pluralguard-update")  # created: fails, like --force-regen
    assert proc.returncode == 1 and "the baseline was regenerated" in proc.stdout
    assert project.baseline.is_file()
    assert pytest_run("--pluralguard-update", "--pluralguard-jobs", "2").returncode == 0

    project.write_plugin(1)
    proc = pytest_run()
    assert proc.returncode == 1
    assert "FAIL: " in proc.stdout and "worst regression per attack × metric" in proc.stdout
    assert "every comparison: " in proc.stdout
    proc = pytest_run("--pluralguard-update")
    assert proc.returncode == 1 and "metric values changed" in proc.stdout
    assert pytest_run().returncode == 0


def test_plugin_is_registered_and_light():
    from importlib.metadata import entry_points

    assert any(ep.value == "pluralguard.eval.pytest_plugin"
               for ep in entry_points(group="pytest11"))
    code = ("import sys, pluralguard.eval.pytest_plugin; "
            "heavy = {'numpy', 'pandas', 'pluralguard.core'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
