"""Bad input to the commands and the evaluation API, and faults of a results directory.

Every class of bad input issue 13 lists: a value on the command line, a suite, a file
that cannot be read or written, a baseline, the Python API. Each ends in one line on
stderr naming the field and the fix, exit status 2, no traceback. Faults of a results
directory (a store line of the wrong shape, invalid UTF-8, cut mid-way or edited; a
directory in the store's place; a cut ``results.csv``; concurrent runs; an interrupted
run) recover with nothing lost: the results equal those of an undisturbed run.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_run import run

from pluralguard.core import datasets
from pluralguard.core.errors import InputError
from pluralguard.eval import estimate, runner
from pluralguard.eval.cli import main
from pluralguard.eval.cli_values import parse_value
from pluralguard.eval.report import write_report
from pluralguard.eval.scenario import run_scenario
from pluralguard.eval.store import LOCK, RunStore, directory_lock
from pluralguard.eval.suite import load_suite

TINY = """\
name = "tiny"
seeds = [0, 1]
datasets = ["evs2017"]
attacks = [{name = "sybil", budgets = [0.1, 0.2]}]

[[mechanisms]]
name = "consensus"
kind = "consensus"
"""
ATTACK = ["attack", "--dataset", "evs2017", "--mechanism", "consensus"]



def one_line_exit_2(capsys, *argv: str) -> str:
    """Run a command that must fail as bad input; return its one stderr line."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


# ----------------------------------------------------------- command-line values
CLI_CASES = {
    "negative seed": ([*ATTACK, "--attack", "overshoot", "--seed", "-1"], "--seed"),
    "agent name unknown": ([*ATTACK, "--attack", "overshoot,attackers=a5"],
                           "--attack.attackers: no agent is named 'a5'"),
    "agent index out of range": ([*ATTACK, "--attack", "overshoot,attackers=99999"],
                                 "--attack.attackers: id 99999 is out of range"),
    "fractional Sybils": ([*ATTACK, "--attack", "sybil,sybils=2.5"], "--attack.sybils"),
    "a billion Sybils": ([*ATTACK, "--attack", "sybil,sybils=1000000000"],
                         "--attack.sybils: 1000000000 is not an integer in [0, 100000]"),
    "bound not a number": ([*ATTACK, "--attack", "sybil,bound=abc"], "--attack.bound"),
    "digit grouping": ([*ATTACK, "--attack", "overshoot,factor=0_1"], "--attack.factor"),
    "Arabic-Indic digit": ([*ATTACK, "--attack", "overshoot,factor=١"], "--attack.factor"),
    "NaN factor": ([*ATTACK, "--attack", "overshoot,factor=nan"], "--attack.factor"),
    "budget digit grouping": ([*ATTACK, "--attack", "overshoot", "--budget", "0_1"],
                              "--budget"),
    "negative defense seed": (["attack", "--dataset", "evs2017", "--mechanism", "agreements",
                               "--attack", "overshoot", "--defense",
                               "randomized_threshold,seed=-1"], "seed"),
    "boolean maybe": (["attack", "--dataset", "evs2017", "--mechanism", "agreements",
                       "--attack", "protocol,protocol=maybe"], "--attack.protocol"),
    "repeated key": ([*ATTACK, "--attack", "sybil,sybils=2,sybils=3"], "given twice"),
    "repeated dataset key": (["attack", "--dataset", "pve_like,seed=1,seed=2", "--mechanism",
                              "consensus", "--attack", "sybil"], "given twice"),
    "unknown seed recipe": ([*ATTACK, "--attack", "best_response,recipes=sybl"],
                            "--attack.recipes: 'sybl' is not a registered attack recipe"),
    "jobs zero": (["run", "--out", "OUT", "--jobs", "0"], "--jobs"),
    "batch text": (["run", "--out", "OUT", "--batch", "x"], "--batch"),
    "max-iter zero": (["solve", "--dataset", "evs2017", "--max-iter", "0"], "--max-iter"),
    "tol negative": (["solve", "--dataset", "evs2017", "--tol", "-1"], "--tol"),
    "top zero": (["solve", "--dataset", "evs2017", "--top", "0"], "--top"),
    "dataset seed negative": (["datasets", "export", "pve_like", "--out", "OUT/x.csv",
                               "--seed", "-1"], "--seed"),
    "export into a directory": (["datasets", "export", "evs2017", "--out", "DIR"],
                                "is a directory"),
    "scheduler not an address": (["run", "--out", "OUT", "--executor", "dask",
                                  "--scheduler", "not an address"], "scheduler"),
    "scheduler without dask": (["run", "--out", "OUT", "--scheduler", "tcp://h:1"],
                               "scheduler"),
    "casestudy unknown case after a good one": (["casestudy", "evs2017", "nope", "--out",
                                                 "OUT"], "unknown case study 'nope'"),
    "casestudy jobs zero": (["casestudy", "evs2017", "--out", "OUT", "--jobs", "0"],
                            "--jobs"),
    "casestudy ess8 table missing": (["casestudy", "evs2017", "ess8", "--out", "OUT",
                                      "--population", "MISSING"], "MISSING"),
}


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e3", 1000.0), ("-inf", -math.inf),
    ("true", True), ("False", False), ("3+7", (3, 7)), ("AT+5", ("AT", 5)),
    ("0_1", "0_1"), ("١", "١"), ("nan", "nan"), ("maybe", "maybe"), ("1e+3", 1000.0)])
def test_command_line_values_are_typed_in_plain_decimal_notation(text, value) -> None:
    got = parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_command_line_value(case: str, tmp_path: Path, capsys) -> None:
    argv, needle = CLI_CASES[case]
    (tmp_path / "DIR").mkdir()
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("DIR", str(tmp_path / "DIR"))
            .replace("MISSING", str(tmp_path / "missing.csv")) for a in argv]
    err = one_line_exit_2(capsys, *argv)
    assert needle.replace("MISSING", "missing.csv") in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --------------------------------------------------------------------- suites
SUITE_CASES = {
    "agent id out of range": ('attacks = [{name = "sybil", attackers = [99999]}]',
                              "attacks[0].attackers: id 99999 is out of range"),
    "agent name unknown": ('attacks = [{name = "sybil", attackers = ["XX"]}]',
                           "attacks[0].attackers: no agent is named 'XX'"),
    "group rank out of range": ('attacks = [{name = "sybil", group = 99}]',
                                "attacks[0].group"),
    "fractional Sybils": ('attacks = [{name = "sybil", sybils = 2.5}]', "attacks[0].sybils"),
    "boolean as text": ('attacks = [{name = "protocol", protocol = "maybe"}]',
                        "attacks[0].protocol"),
    "number as text": ('attacks = [{name = "sybil", bound = "0.5"}]', "attacks[0].bound"),
    "defense seed negative": ('defenses = [{name = "randomized_threshold", seed = -1}]',
                              "defenses[0].seed"),
    "exclude empties the grid": ('exclude = [{dataset = "evs2017"}]', "exclude: leaves no "
                                                                      "grid point"),
}


@pytest.mark.parametrize("case", list(SUITE_CASES))
def test_suite_entry(case: str, tmp_path: Path, capsys) -> None:
    line, needle = SUITE_CASES[case]
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["evs2017"]\n' + line + '\n[[mechanisms]]\nkind = "consensus"\n')
    err = one_line_exit_2(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert needle in err


def test_agents_by_name_in_a_suite(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["evs2017"]\nattacks = [{name = "overshoot", attackers = '
                    '["AT", 3], budgets = [0.1]}]\n[[mechanisms]]\nkind = "consensus"\n')
    spec = load_suite(path).attacks[1]
    assert spec.params["attackers"] == ("AT", 3)
    row = run_scenario(datasets.load("evs2017"), "consensus", spec.build(), budget=0.1).row
    assert row["n_attackers"] == 2


def test_a_json_suite_with_a_key_given_twice(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"datasets": ["evs2017"], "datasets": ["pve_like"], '
                    '"mechanisms": ["consensus"]}')
    assert "datasets: is given twice" in one_line_exit_2(
        capsys, "run", str(path), "--out", str(tmp_path / "out"))


# ----------------------------------------------------- files that cannot be used
def test_unreadable_suite_file(tiny: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    read_text = Path.read_text

    def denied(self, *args, **kwargs):  # only the suite file (root may read anything)
        if self == tiny:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    err = one_line_exit_2(capsys, "run", str(tiny), "--out", str(tmp_path / "out"))
    assert "cannot read the suite file (Permission denied)" in err


def test_output_directory_that_cannot_be_written(tiny: Path, tmp_path: Path, capsys,
                                                 monkeypatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runner.tempfile, "TemporaryFile", denied)
    err = one_line_exit_2(capsys, "run", str(tiny), "--out", str(tmp_path / "out"))
    assert "out: cannot write in" in err and "Permission denied" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.undo()
    err = one_line_exit_2(capsys, "run", str(tiny), "--out", str(blocker / "out"))
    assert "out: cannot create" in err


def test_report_into_a_read_only_directory(tiny: Path, tmp_path: Path, capsys,
                                           monkeypatch) -> None:
    out = tmp_path / "out"
    runner.run_suite(load_suite(tiny), out, jobs=1, progress=False, report=False)

    def denied(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("pluralguard.eval.report.atomic_write", denied)
    err = one_line_exit_2(capsys, "report", str(out))
    assert "report.md: Permission denied" in err


@pytest.mark.parametrize("mutate, needle", [
    (lambda doc: doc.pop("points"), "lacks its points"),
    (lambda doc: doc["points"][0].pop("seed"), "is not a grid point"),
    (lambda doc: doc["points"][0].pop("metrics"), "has no metrics"),
    (lambda doc: doc["points"][0]["metrics"].pop("capture"), "is partial"),
    (lambda doc: doc.pop("grid"), "is partial"),
    (lambda doc: doc.pop("format"), "is not a pluralguard baseline"),
])
def test_baseline_with_missing_keys(mutate, needle, tiny: Path, tmp_path: Path,
                                    capsys) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(tiny), "-o", str(baseline), "--jobs", "1", "--quiet"]) == 0
    doc = json.loads(baseline.read_text())
    mutate(doc)
    baseline.write_text(json.dumps(doc))
    capsys.readouterr()
    err = one_line_exit_2(capsys, "check", str(tiny), "--baseline", str(baseline))
    assert needle in err


# ------------------------------------------------------------------ the Python API
API_CASES = {
    "population a list": (lambda: run_scenario([1, 2], "consensus"), "population"),
    "mechanism None": (lambda: run_scenario(datasets.load("evs2017"), None), "mechanism"),
    "seed 1.5": (lambda: run_scenario(datasets.load("evs2017"), "consensus", seed=1.5),
                 "seed"),
    "seed -1": (lambda: run_scenario(datasets.load("evs2017"), "consensus", seed=-1), "seed"),
    "budget text": (lambda: run_scenario(datasets.load("evs2017"), "consensus", "overshoot",
                                         budget="0.1"), "budget"),
    "draws 0": (lambda: run_scenario(datasets.load("evs2017"), "consensus", draws=0),
                "draws"),
    "attack a number": (lambda: run_scenario(datasets.load("evs2017"), "consensus", 5),
                        "attack"),
    "solver tol text": (lambda: __import__("pluralguard.core", fromlist=["x"])
                        .solve_agreements(datasets.load("evs2017"), tol="a"), "tol"),
    "run_suite jobs 0": (lambda: runner.run_suite(load_suite(), "unused", jobs=0), "jobs"),
    "write_report loss": (lambda: write_report("unused", loss="nope"), "loss"),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_python_api(case: str) -> None:
    call, field = API_CASES[case]
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field and "\n" not in str(err.value)


# --------------------------------------------------------------- store faults
@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, Path, bytes]:
    """A finished tiny run: (suite, results directory, results.csv bytes)."""
    root = tmp_path_factory.mktemp("stored")
    suite = root / "tiny.toml"
    suite.write_text(TINY)
    out = root / "out"
    runner.run_suite(load_suite(suite), out, jobs=1, progress=False, report=False)
    return suite, out, (out / "results.csv").read_bytes()


def _copy(stored, tmp_path: Path) -> tuple[Path, Path, list[bytes]]:
    suite, out, _ = stored
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return suite, copy, (copy / "runs.jsonl").read_bytes().splitlines(keepends=True)


def _edit_metric(line: bytes) -> bytes:
    record = json.loads(line)
    record["row"]["utility_loss_mean"] += 0.5
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


FAULTS = {
    "wrong shape (a list)": lambda lines: [lines[0], b"[1, 2, 3]\n", *lines[2:]],
    "wrong shape (no outcome)": lambda lines: [lines[0], b'{"key": "x", "sum": "y"}\n',
                                               *lines[2:]],
    "invalid UTF-8": lambda lines: [lines[0], b"\xff\xfe\xfa garbage\n", *lines[2:]],
    "cut mid-way, then appended to": lambda lines: [lines[0], lines[1][:40] + b"\n",
                                                    *lines[2:]],
    "cut at the end": lambda lines: [*lines[:-1], lines[-1][:-20]],
    "an edited metric": lambda lines: [lines[0], _edit_metric(lines[1]), *lines[2:]],
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_corrupt_store_line_is_recomputed_with_nothing_lost(fault: str, stored,
                                                              tmp_path: Path, capsys) -> None:
    suite, out, lines = _copy(stored, tmp_path)
    (out / "runs.jsonl").write_bytes(b"".join(FAULTS[fault](lines)))
    res = runner.run_suite(load_suite(suite), out, jobs=1, progress=False, report=False)
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "1 stored runs rejected" in err
    assert res.summary["counts"]["computed"] == 1
    assert res.summary["counts"]["reused"] == len(lines) - 1
    assert (out / "results.csv").read_bytes() == stored[2]  # the edited value is not served
    assert (out / "runs.jsonl.rejected").is_file()
    again = runner.run_suite(load_suite(suite), out, jobs=1, progress=False, report=False)
    assert again.summary["counts"]["computed"] == 0 and "warning" not in capsys.readouterr().err


def test_a_directory_in_place_of_the_store(stored, tmp_path: Path, capsys) -> None:
    suite, out, _ = _copy(stored, tmp_path)
    (out / "runs.jsonl").unlink()
    (out / "runs.jsonl").mkdir()
    code, _, err = run(capsys, "run", str(suite), "--out", str(out), "--jobs", "1", "--quiet",
                       "--no-report")
    assert code == 0 and "was a directory, not a store: moved it to runs.jsonl.moved-1" in err
    assert (out / "results.csv").read_bytes() == stored[2]
    assert (out / "runs.jsonl.moved-1").is_dir()
    assert run(capsys, "run", str(suite), "--out", str(out), "--jobs", "1", "--quiet",
               "--fresh", "--no-report")[0] == 0


def test_results_csv_is_cross_checked_with_the_summary(stored, tmp_path: Path,
                                                       capsys) -> None:
    _, out, _ = _copy(stored, tmp_path)
    text = (out / "results.csv").read_text()
    rows = text.splitlines(keepends=True)
    (out / "results.csv").write_text("".join(rows[:3]))  # cut at a row boundary
    err = one_line_exit_2(capsys, "report", str(out))
    assert f"has 2 rows but summary.json counts {len(rows) - 1}" in err
    (out / "results.csv").write_text(text[: len(text) // 2])  # cut mid-row
    assert "ends mid-row" in one_line_exit_2(capsys, "report", str(out))
    edited = text.replace("consensus,none", "consensus,none ", 1)
    (out / "results.csv").write_text(edited)  # edited after the run: a warning
    code, _, err = run(capsys, "report", str(out))
    assert code == 0 and err.count("warning:") == 1 and "was edited" in err
    assert "> **Warning**: `results.csv` differs" in (out / "report.md").read_text()


def test_an_interrupted_run_can_be_reported_and_resumed(tiny: Path, tmp_path: Path,
                                                        capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    execute = runner._execute

    def interrupted(tasks, jobs, client):
        iterator = execute(tasks, jobs, client)
        yield next(iterator)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_execute", interrupted)
    code, _, err = run(capsys, "run", str(tiny), "--out", str(out), "--jobs", "1", "--quiet",
                       "--batch", "2")
    assert code == 130 and f"pluralguard report {out}" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["counts"]["finished"] == 2
    code, _, err = run(capsys, "report", str(out))
    assert code == 0 and "partial results, 2 of 6 grid points finished" in err
    assert "**Partial results**: 2 of 6 grid points finished" in (out / "report.md").read_text()
    monkeypatch.undo()
    res = runner.run_suite(load_suite(tiny), out, jobs=1, progress=False)
    assert res.summary["complete"] and res.summary["counts"]["reused"] == 2
    assert "Partial results" not in (out / "report.md").read_text()


def test_the_lock_makes_a_second_run_wait(tmp_path: Path, capsys) -> None:
    order = []
    with directory_lock(tmp_path):
        def second():
            with directory_lock(tmp_path):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
    assert "another pluralguard process is using" in capsys.readouterr().err
    assert (tmp_path / LOCK).is_file()


@pytest.mark.slow
def test_four_concurrent_runs_on_one_directory(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pluralguard.eval.cli", "run", str(tiny), "--out", str(out),
            "--jobs", "1", "--quiet", "--no-report"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    computed = sum(int(o.split(" computed")[0].split()[-1]) for o, _ in outputs)
    assert computed == 6  # each run once, the others reused them
    reference = tmp_path / "ref"
    runner.run_suite(load_suite(tiny), reference, jobs=1, progress=False, report=False)
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert len(RunStore(out / "runs.jsonl").load()) == 6
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


# --------------------------------------------------------------- size and estimate
def test_dry_run_prints_the_size_and_an_estimate(tiny: Path, tmp_path: Path,
                                                 capsys) -> None:
    code, out, _ = run(capsys, "run", str(tiny), "--out", str(tmp_path / "o"), "--dry-run")
    assert code == 0
    assert "suite 'tiny': 6 runs (1 dataset × 1 mechanism × 1 defense × 2 attacks" in out
    assert "0 stored, 6 to compute; estimated ~" in out and "nothing was run" in out
    assert not (tmp_path / "o" / "runs.jsonl").exists()


def test_large_grids_need_yes(tiny: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(estimate, "LARGE_GRID", 5)
    err = one_line_exit_2(capsys, "run", str(tiny), "--out", str(tmp_path / "o"), "--jobs",
                          "1")
    assert "6 runs to compute, more than 5 (estimated ~" in err and "--yes" in err
    code, out, _ = run(capsys, "run", str(tiny), "--out", str(tmp_path / "o"), "--jobs", "1",
                       "--quiet", "--no-report", "--yes")
    assert code == 0 and "suite 'tiny': 6 runs" in out


# ----------------------------------------------------------------- the rest
def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("pluralguard ")


def test_message_passing_that_does_not_converge_warns(capsys) -> None:
    # dgd always runs from the protocol's real start (honest dual solves start at
    # their fixed point and settle after one iteration)
    code, out, err = run(capsys, "solve", "--dataset", "evs2017", "--method", "dgd",
                         "--max-iter", "5")
    assert code == 0 and "did not reach consensus" in out
    assert err.count("\n") == 1 and err.startswith("warning: ") and "--max-iter" in err
    code, _, err = run(capsys, "solve", "--dataset", "evs2017", "--method", "dual")
    assert code == 0 and err == ""


def test_casestudy_keeps_tracked_files(tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "case-studies.md").write_text("committed\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "docs"], cwd=tmp_path, check=True)
    err = one_line_exit_2(capsys, "casestudy", "evs2017", "--no-robustness", "--out",
                          str(docs))
    assert "would overwrite 1 files tracked by git" in err and "--force" in err
    assert (docs / "case-studies.md").read_text() == "committed\n"
    assert run(capsys, "casestudy", "evs2017", "--no-robustness", "--out", str(docs),
               "--force")[0] == 0
    assert (docs / "case-studies.md").read_text() != "committed\n"


def test_the_run_summary_explains_raised_flags_and_what_did_not_run(tmp_path: Path,
                                                                    capsys) -> None:
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["evs2017"]\nattacks = [{name = "bridge", budgets = [0.1]}, '
                    '{name = "overshoot", budgets = [0.1]}]\n'
                    '[[mechanisms]]\nkind = "consensus"\n')
    code, out, _ = run(capsys, "run", str(path), "--out", str(tmp_path / "o"), "--jobs", "1",
                       "--quiet")
    assert code == 0
    assert "bridge × consensus: 1 points, lacks capability 'groups'" in out
    report = (tmp_path / "o" / "report.md").read_text()
    first = report[:report.index("## 1.")]
    assert "| bridge | 0 | **no** | 1 | 0 |" in first and "Never ran: `bridge`." in first
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    raised = [n for n, f in summary["sanity"].items() if f["raised"]]
    for name in raised:
        assert f"{name} RAISED" in out
    assert out.count("What it means:") == len(raised)
    assert pd.read_csv(tmp_path / "o" / "results.csv")["attack"].tolist() == [
        "none", "overshoot"]
