"""CI gate: baseline and check (0 unchanged, 1 more manipulable, 2 usage), pytest plugin."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pytest

from pluralguard.core.consensus import lp_consensus
from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import register_mechanism
from pluralguard.eval import gate
from pluralguard.eval.cli import main
from pluralguard.eval.suite import load_suite

#: A test mechanism whose implementation the tests swap, as a code change would.
KIND = "gate_test_mechanism"

SUITE = f"""\
name = "gate"
datasets = ["evs2017"]
mechanisms = [{{name = "mech", kind = "{KIND}"}}]
attacks = [{{name = "sybil", budgets = [0.1, 0.3]}}]
"""


def implement(p: float) -> None:
    """(Re)register the test mechanism as the ℓp consensus: p = 2 (the mean) resists the
    Sybil stuffing here better than p = 1 (the median, moved by a few identities)."""
    def mechanism(population, **params):
        return lp_consensus(population, p=p, **params)

    register_mechanism(KIND, mechanism, description="test: swappable ℓp consensus")


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    implement(2)
    path = tmp_path / "gate.toml"
    path.write_text(SUITE)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_passes_unchanged_and_fails_when_more_manipulable(suite_file, tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    code, out, _ = run(capsys, "baseline", str(suite_file), "-o", str(baseline), "--jobs",
                       "1", "--quiet")
    assert code == 0 and "wrote the baseline" in out
    doc = json.loads(baseline.read_text())
    assert doc["suite"]["digest"] == load_suite(suite_file).digest
    assert len(doc["points"]) == 3  # none + two budgets
    assert "utility_loss_mean" in doc["metrics"] and "queries" not in doc["metrics"]

    code, out, _ = run(capsys, "check", str(suite_file), "--baseline", str(baseline),
                       "--jobs", "1", "--quiet")
    assert code == 0, out
    assert out.startswith("ok:")

    implement(1)  # the mechanism became easier to manipulate
    code, out, _ = run(capsys, "check", str(suite_file), "--baseline", str(baseline),
                       "--jobs", "1", "--quiet")
    assert code == 1
    assert "regressions against" in out
    for column in ("grid point", "metric", "baseline", "now", "tolerance"):
        assert column in out
    assert "utility_loss_mean" in out and "evs2017/mech/sybil@0.1/none/seed 0" in out

    # a generous tolerance from the suite lets the same change pass
    loose = suite_file.read_text() + "\n[tolerances]\n" + "\n".join(
        f"{m} = 10.0" for m in gate.METRICS if gate.METRICS[m].worse != "none")
    suite_file.write_text(loose)
    code, out, _ = run(capsys, "check", str(suite_file), "--baseline", str(baseline),
                       "--jobs", "1", "--quiet")
    assert code == 0, out


def test_usage_errors_exit_2(suite_file, tmp_path, capsys):
    code, out, err = run(capsys, "check", str(suite_file), "--baseline",
                         str(tmp_path / "missing.json"), "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and "baseline" in err

    other = tmp_path / "other.toml"
    other.write_text(SUITE.replace("[0.1, 0.3]", "[0.2]"))
    baseline = tmp_path / "b.json"
    gate.make_baseline(load_suite(other), baseline, jobs=1, progress=False)
    code, out, err = run(capsys, "check", str(suite_file), "--baseline", str(baseline),
                         "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "different suite" in err and "pluralguard baseline" in err

    baseline.write_text("{not json")
    code, _, err = run(capsys, "check", str(suite_file), "--baseline", str(baseline))
    assert code == 2 and "not valid JSON" in err
    code, _, err = run(capsys, "baseline", str(tmp_path / "nope.toml"), "-o", str(baseline))
    assert code == 2 and "no such suite file" in err


def test_compare_directions_nan_and_improvements(suite_file):
    suite = load_suite(suite_file)
    ident = {"dataset": "d", "mechanism": "m", "attack": "a", "budget": math.inf,
             "defense": "none", "seed": 0}
    baseline = {"points": [{**ident, "budget": "inf", "metrics": {
        "utility_loss_mean": 0.1, "honest_utility_mean": 0.9, "capture": None,
        "attacker_gain": 0.5, "converged": 1}}]}

    def compare(**now):
        row = {**ident, "utility_loss_mean": 0.1, "honest_utility_mean": 0.9,
               "capture": math.nan, "attacker_gain": 0.5, "converged": 1, **now}
        regs, improved, compared = gate.compare(suite, baseline, pd.DataFrame([row]))
        return [r.metric for r in regs], improved, compared

    assert compare() == ([], 0, 5)
    assert compare(utility_loss_mean=0.1 + 5e-5) == ([], 0, 5)  # within tolerance 1e-4
    assert compare(utility_loss_mean=0.2)[0] == ["utility_loss_mean"]  # higher is worse
    assert compare(utility_loss_mean=0.0) == ([], 1, 5)  # an improvement
    assert compare(honest_utility_mean=0.5)[0] == ["honest_utility_mean"]  # lower is worse
    assert compare(capture=0.3)[0] == ["capture"]  # became defined
    assert compare(converged=0)[0] == ["converged"]
    regs, _, _ = gate.compare(suite, baseline, pd.DataFrame(
        [{**ident, "attack": "b", "utility_loss_mean": 0.0}]))
    assert [r.metric for r in regs] == ["(row)"]  # the grid point lost its row


def test_pytest_plugin(tmp_path):
    (tmp_path / "suite.toml").write_text(SUITE.replace(KIND, "consensus"))
    (tmp_path / "test_robust.py").write_text(
        "def test_gate(pluralguard_check):\n"
        "    pluralguard_check('suite.toml', 'baseline.json')\n")
    # load the plugin module explicitly, whether or not its entry point is installed
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:pluralguard", "-p",
            "pluralguard.eval.pytest_plugin", "-p", "no:cacheprovider", "--rootdir",
            str(tmp_path), str(tmp_path / "test_robust.py")]

    def pytest_run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*argv, *extra], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)

    proc = pytest_run()
    assert proc.returncode == 1 and "no such file" in proc.stdout  # no baseline yet
    proc = pytest_run("--pluralguard-update")
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "baseline.json").is_file()
    proc = pytest_run()
    assert proc.returncode == 0, proc.stdout

    doc = json.loads((tmp_path / "baseline.json").read_text())
    for point in doc["points"]:  # pretend the mechanism used to be much more robust
        point["metrics"]["utility_loss_max"] = -1.0
    (tmp_path / "baseline.json").write_text(json.dumps(doc))
    proc = pytest_run()
    assert proc.returncode == 1
    assert "robustness regressions of suite 'gate'" in proc.stdout
    assert "utility_loss_max" in proc.stdout


def test_plugin_is_registered_and_light():
    assert any(ep.value == "pluralguard.eval.pytest_plugin"
               for ep in entry_points(group="pytest11"))
    code = ("import sys, pluralguard.eval.pytest_plugin; "
            "heavy = {'numpy', 'pandas', 'pluralguard.core'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_read_baseline_rejects_other_files(suite_file, tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="not a pluralguard baseline"):
        gate.read_baseline(path, load_suite(suite_file))
