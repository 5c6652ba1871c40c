"""The command line: outputs, JSON objects, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_run import run

from pluralguard.eval.cli import main


def test_solve_json_object(capsys):
    code, out, _ = run(capsys, "solve", "--dataset", "evs2017", "--bounds", "quantile:0.5",
                       "--json")
    assert code == 0
    obj = json.loads(out)
    for key in ("n_groups", "labels", "agreements", "membership", "utilities", "converged",
                "n_iter"):
        assert key in obj
    assert len(obj["labels"]) == 34
    assert obj["n_groups"] == len(obj["agreements"])
    members = sorted(a for g in obj["agreements"] for a in g["members"])
    assert members == sorted(obj["labels"])
    assert all(len(g["X"]) == 2 and len(g["W"]) == 2 for g in obj["agreements"])


def test_solve_text_lists_groups(capsys):
    code, out, _ = run(capsys, "solve", "--dataset", "blobs", "--seed", "1", "--bounds",
                       "quantile:0.3")
    assert code == 0
    assert "groups, all reached consensus" in out
    assert "value weights" in out


def test_consensus_json_object(capsys):
    code, out, _ = run(capsys, "consensus", "--dataset", "evs2017", "--p", "inf", "--json")
    assert code == 0
    obj = json.loads(out)
    assert {"X", "W", "U_p", "utilities"} <= set(obj)
    assert set(obj["U_p"]) == {"X", "W"}
    assert len(obj["utilities"]) == 34


def test_datasets_list_and_export(capsys, tmp_path):
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0 and "pve_like" in out and "evs2017" in out
    target = tmp_path / "evs.csv"
    code, out, _ = run(capsys, "datasets", "export", "evs2017", "--out", str(target))
    assert code == 0 and target.is_file()
    code, out, _ = run(capsys, "consensus", "--population", str(target), "--json")
    assert code == 0 and len(json.loads(out)["utilities"]) == 34


@pytest.mark.parametrize("argv, needle", [
    (["solve", "--dataset", "nope"], "dataset"),
    (["solve"], "dataset"),
    (["solve", "--dataset", "evs2017", "--population", "x.csv"], "dataset"),
    (["solve", "--dataset", "evs2017", "--bounds", "quantile:2"], "bounds"),
    (["solve", "--dataset", "evs2017", "--bounds", "declared"], "bounds"),
    (["solve", "--dataset", "pve_like", "--weights", "respondents"], "weights"),
    (["solve", "--dataset", "evs2017", "--seed", "3"], "seed"),
    (["solve", "--population", "/nonexistent.csv"], "nonexistent"),
    (["consensus", "--dataset", "evs2017", "--p", "0.5"], "p"),
    (["consensus", "--dataset", "evs2017", "--p", "abc"], "p"),
    (["datasets", "export", "evs2017"], "--out"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle in err


def test_bad_csv_is_one_line_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("agent,w:a,w:b,x:o:a,x:o:b\nx,0.5,0.7,0,0\n")  # W sums to 1.2
    code, _, err = run(capsys, "solve", "--population", str(bad))
    assert code == 2 and err.count("\n") == 1 and "sum" in err


@pytest.mark.parametrize("argv", [["solve", "--bogus"], ["solve", "--method", "newton"],
                                  ["frobnicate"]])
def test_usage_errors_exit_2(argv):
    proc = subprocess.run([sys.executable, "-m", "pluralguard.eval.cli", *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["solve", "consensus", "datasets"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "example" in capsys.readouterr().out
