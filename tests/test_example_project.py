"""The example project (tests/example_project): pluralguard used only as an outside user
would — a plugin mechanism, its own CSV population, limits, a baseline, the pytest
plugin — run in a copy of the folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pluralguard.eval.cli import main

EXAMPLE = Path(__file__).parent / "example_project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_gate_passes_then_catches_a_more_manipulable_mechanism(project, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(project)
    store = ["--out", "store", "--quiet", "--jobs", "1"]
    assert main(["check", "robustness.toml", "--baseline", "baseline.json", *store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: no regression, every limit holds (exit 0)")
    assert "bridge × median-clusters (8 grid points)" in out  # listed, not hidden

    plugin = project / "median_clusters.py"
    plugin.write_text(plugin.read_text().replace('AGGREGATE = "median"',
                                                 'AGGREGATE = "mean"'))
    code = main(["check", "robustness.toml", "--baseline", "baseline.json", *store,
                 "--junit", "gate.xml"])
    out = capsys.readouterr().out
    assert code == 1  # the stored runs of the old code are not reused
    first = out.splitlines()[0]
    assert first.startswith("FAIL: ") and "1 limits violated" in first
    assert "VIOLATED limits[0] attacker_gain <= 0.0001 (attack=overshoot)" in out
    summary = out.split("\ndetails:\n")[0]
    assert "overshoot     attacker_gain    4 of 4" in summary
    assert (project / "gate.xml").read_text().count("<testcase ") == 18 + 2


@pytest.mark.slow
def test_the_example_projects_own_tests_pass(project):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--pluralguard-jobs", "2"],
                          cwd=project, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


@pytest.mark.slow
def test_the_example_runs_from_the_command_line_with_workers(project):
    proc = subprocess.run([sys.executable, "-m", "pluralguard.eval.cli", "attack", "--plugin",
                           "median_clusters.py", "--population", "population.csv",
                           "--mechanism", "median_clusters,k=3", "--attack", "overshoot",
                           "--json"], cwd=project, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '"mechanism": "median_clusters(k=3)"' in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "pluralguard.eval.cli", "check",
                           "robustness.toml", "--baseline", "baseline.json", "--jobs", "2",
                           "--quiet", "--strict"], cwd=project, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # bridge does not apply
    assert "8 grid points not applicable (--strict)" in proc.stdout.splitlines()[0]
