"""The evaluation commands: list, attack, run, report, and their bad input (exit 2)."""

from __future__ import annotations

import json

import pytest
from cli_run import run

from pluralguard.attacks import list_attacks
from pluralguard.core import datasets
from pluralguard.core.mechanism import mechanism_kinds
from pluralguard.defenses import list_defenses
from pluralguard.eval.cli import main
from pluralguard.eval.metrics import METRICS

ROW = ["dataset", "mechanism", "attack", "budget", "defense", "seed", "honest_utility_mean",
       "utility_loss_mean", "utility_loss_p90", "utility_loss_max", "attacker_gain", "capture",
       "join_success", "exclusion_rate", "partition_change", "n_groups_clean",
       "n_groups_attacked", "defense_cost", "attack_success", "queries", "converged"]



@pytest.mark.parametrize("what, items", [
    ("attacks", list_attacks), ("defenses", list_defenses),
    ("datasets", datasets.list_datasets), ("mechanisms", mechanism_kinds),
    ("metrics", lambda: [(m, "") for m in METRICS]),
])
def test_list_one_line_each(capsys, what, items):
    code, out, _ = run(capsys, "list", what)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [name for name, _ in items()]


def test_list_metrics_has_direction_and_formula(capsys):
    _, out, _ = run(capsys, "list", "metrics")
    line = next(x for x in out.splitlines() if x.startswith("utility_loss_mean "))
    assert "(higher is worse)" in line and METRICS["utility_loss_mean"].formula in line
    assert "sybil" in run(capsys, "list", "attacks")[1]


def test_attack_json(capsys):
    code, out, _ = run(capsys, "attack", "--dataset", "evs2017", "--mechanism", "agreements",
                       "--attack", "sybil,sybils=4,goal=capture,attackers=3+7",
                       "--defense", "bound_floor,quantile=0.2", "--budget", "0.2", "--seed",
                       "1", "--json")
    assert code == 0
    obj = json.loads(out)
    assert set(ROW) <= set(obj)
    assert obj["attack"] == "sybil(sybils=4,goal=capture,attackers=3+7)"
    assert obj["defense"] == "bound_floor(quantile=0.2)"
    assert (obj["budget"], obj["seed"], obj["n_attackers"], obj["n_sybils"]) == (0.2, 1, 2, 4)
    for key in ("clean_agreements", "attacked_agreements"):
        assert obj[key] and set(obj[key][0]) == {"group", "X", "W", "members"}
        assert len(obj[key][0]["X"]) == 2 and len(obj[key][0]["W"]) == 2  # k = m = 2
    clean = sorted(a for g in obj["clean_agreements"] for a in g["members"])
    attacked = sorted(a for g in obj["attacked_agreements"] for a in g["members"])
    assert len(clean) == 34 and len(attacked) == 38
    assert {f"sybil{i}" for i in range(4)} <= set(attacked)


def test_attack_single_attacker_id(capsys):
    code, out, _ = run(capsys, "attack", "--dataset", "evs2017", "--mechanism", "consensus",
                       "--attack", "sybil,attackers=3,goal=selfish", "--json")
    assert code == 0
    assert json.loads(out)["n_attackers"] == 1


def test_attack_consensus_text(capsys, tmp_path):
    target = tmp_path / "pop.csv"
    datasets.write_population(datasets.load("blobs", n=20, seed=1), target)
    code, out, _ = run(capsys, "attack", "--population", str(target), "--mechanism",
                       "consensus", "--p", "inf", "--attack", "sybil", "--defense",
                       "bound_floor+bound_floor")
    assert code == 0
    assert "utility_loss_mean" in out and "bound_floor+bound_floor" in out


def test_run_prints_a_summary(capsys, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
                     'attacks = [{name = "sybil", budgets = [0.2]}]\n'
                     'defenses = ["bound_floor"]\n')
    code, out, _ = run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--jobs", "1",
                       "--quiet")
    assert code == 0
    assert "worst honest utility loss" in out and "defense cost" in out
    assert "sanity: non_convergence ok" in out
    assert (tmp_path / "r" / "report.md").is_file()
    code, out, _ = run(capsys, "report", str(tmp_path / "r"))
    assert code == 0 and "report.md" in out


@pytest.mark.parametrize("argv, needle", [
    (["run", "SUITE", "--out", "OUT"], "attacks[0].budgets"),
    (["run", "MALFORMED", "--out", "OUT"], "not a valid toml"),
    (["run", "MISSING", "--out", "OUT"], "no such suite file"),
    (["run", "--out", "OUT", "--scheduler", "tcp://127.0.0.1:1"], "scheduler"),
    (["report", "MISSING"], "does not exist"),
    (["attack", "--dataset", "evs2017", "--mechanism", "consensus", "--attack", "nope"],
     "--attack.name: unknown attack"),
    (["attack", "--dataset", "evs2017", "--mechanism", "consensus", "--attack", "sybil,frob=1"],
     "--attack.frob"),
    (["attack", "--dataset", "evs2017", "--mechanism", "consensus", "--attack", "sybil,x"],
     "--attack"),
    (["attack", "--dataset", "evs2017", "--mechanism", "consensus", "--attack", "sybil",
      "--defense", "nope"], "--defense"),
    (["attack", "--dataset", "nope", "--mechanism", "consensus", "--attack", "sybil"],
     "--dataset.name: unknown dataset"),
    (["attack", "--mechanism", "consensus", "--attack", "sybil"], "--dataset"),
    (["attack", "--dataset", "evs2017", "--mechanism", "nope", "--attack", "sybil"],
     "--mechanism.kind"),
    (["attack", "--dataset", "evs2017", "--mechanism", "agreements", "--p", "2", "--attack",
      "sybil"], "--mechanism"),
    (["attack", "--dataset", "evs2017", "--mechanism", "consensus", "--attack", "sybil",
      "--budget", "-1"], "budget"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, needle):
    (tmp_path / "suite.toml").write_text(
        'datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
        'attacks = [{name = "sybil", budgets = "lots"}]\n')
    (tmp_path / "bad.toml").write_text("datasets = [\n")
    paths = {"SUITE": "suite.toml", "MALFORMED": "bad.toml", "MISSING": "none.toml",
             "OUT": "out"}
    argv = [str(tmp_path / paths[a]) if a in paths else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle.lower() in err.lower()


@pytest.mark.parametrize("command", ["run", "report", "baseline", "check", "list", "attack"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "example" in capsys.readouterr().out


def test_attack_uses_the_mechanism_settings_a_recipe_needs(capsys):
    # protocol needs message passing, stubborn declared bounds: unset options follow
    code, out, err = run(capsys, "attack", "--dataset", "evs2017", "--mechanism",
                         "agreements", "--attack", "stubborn", "--json")
    assert code == 0 and "bounds 'declared'" in err
    assert json.loads(out)["attack"] == "stubborn"
    # an explicit choice is kept, and the recipe then says why it does not apply
    code, _, err = run(capsys, "attack", "--dataset", "evs2017", "--mechanism", "agreements",
                       "--attack", "protocol", "--method", "exact")
    assert code == 2 and "method" in err and "note:" not in err
