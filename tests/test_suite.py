"""Suite files: grid expansion (counts, order, defaults) and invalid files naming the key."""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path

import pytest

from pluralguard.attacks import ATTACKS
from pluralguard.core import datasets
from pluralguard.core.errors import InputError
from pluralguard.defenses import DEFENSES
from pluralguard.eval.cli_values import parse_named, parse_value
from pluralguard.eval.criteria import DEFAULT_TOLERANCES, Tolerance
from pluralguard.eval.jsonio import write_json
from pluralguard.eval.metrics import METRICS
from pluralguard.eval.suite import load_suite, parse_suite

MECHANISMS = [{"name": "p1", "kind": "consensus", "p": 1},
              {"name": "p2", "kind": "consensus", "p": 2}]


def suite(**keys):
    return parse_suite({"datasets": ["evs2017"], "mechanisms": MECHANISMS, **keys})


def test_grid_counts_and_order():
    s = suite(seeds=[0, 1, 2], defenses=["bound_floor"],
              attacks=[{"name": "sybil", "budgets": [0.1, 0.2]},
                       {"name": "sybil", "label": "sybil-s3", "sybils": 3, "budgets": [0.3]}])
    grid = s.grid()
    # 1 dataset × 2 mechanisms × (none + bound_floor) × (none + 2 + 1 budgets) × 3 seeds
    expected = [("evs2017", m, d, a, b, seed)
                for m in ("p1", "p2") for d in ("none", "bound_floor")
                for a, b in (("none", 0.0), ("sybil", 0.1), ("sybil", 0.2), ("sybil-s3", 0.3))
                for seed in (0, 1, 2)]
    assert [(p.dataset.label, p.mechanism.label, p.defense.label, p.attack.label, p.budget,
             p.seed) for p in grid] == expected
    assert grid[0].identity == {"dataset": "evs2017", "mechanism": "p1", "attack": "none",
                                "budget": 0.0, "defense": "none", "seed": 0}
    assert len({p.content for p in grid}) == len(grid)


def test_none_baselines_are_automatic_and_not_duplicated():
    implicit = suite(attacks=["sybil"], defenses=["bound_floor"])
    explicit = suite(attacks=["none", "sybil"], defenses=["none", "bound_floor"])
    assert [a.label for a in implicit.attacks] == [a.label for a in explicit.attacks] == [
        "none", "sybil"]
    assert [d.label for d in explicit.defenses] == ["none", "bound_floor"]
    assert implicit.digest == explicit.digest
    assert suite().grid()[0].attack.label == "none"
    assert len(suite().grid()) == 2  # the clean run of each mechanism


def test_all_reads_the_registries(monkeypatch):
    class Extra(DEFENSES["bound_floor"]):
        name = "extra_floor"

    monkeypatch.setitem(DEFENSES, "extra_floor", Extra)
    s = suite(attacks=["all"], defenses=["all"])
    assert [a.label for a in s.attacks] == ["none", *ATTACKS]
    assert [d.label for d in s.defenses] == ["none", *DEFENSES]  # extra_floor included


def test_budget_precedence_and_params_table():
    sybil = ATTACKS["sybil"]
    s = suite(attacks=["sybil", {"name": "sybil", "label": "own", "budgets": [0.5]}])
    assert s.attacks[1].budgets == tuple(sybil.default_budgets)  # "curve" by default
    assert s.attacks[2].budgets == (0.5,)
    s = suite(attacks=["sybil"], budgets={"default": [0.1, math.inf]})
    assert s.attacks[1].budgets == (0.1, math.inf)
    s = suite(attacks=["sybil"], budgets={"default": [0.1], "sybil": "single"})
    assert s.attacks[1].budgets == (sybil.default_budget,)
    s = suite(attacks=["sybil"], params={"sybil": {"sybils": 7}, "default": {"count": 2}})
    assert s.attacks[1].params == {"count": 2, "sybils": 7}
    assert s.attacks[1].label == "sybil"  # [params] does not enter the label
    assert s.attacks[1].build().threat.sybils == 7
    labelled = suite(attacks=[{"name": "sybil", "sybils": 3, "attackers": [1, 2]}])
    assert labelled.attacks[1].label == "sybil(sybils=3,attackers=1+2)"
    assert labelled.attacks[1].params["attackers"] == (1, 2)


def test_defense_chains_and_labels():
    s = suite(defenses=["bound_floor+bound_floor", {"name": "bound_floor", "quantile": 0.3},
                        {"label": "both", "chain": ["bound_floor",
                                                    {"name": "bound_floor", "quantile": 0.2}]}])
    labels = [d.label for d in s.defenses]
    assert labels == ["none", "bound_floor+bound_floor", "bound_floor(quantile=0.3)", "both"]
    assert [len(d.build().defenses) for d in s.defenses] == [0, 2, 1, 2]


def test_exclude_drops_matching_points():
    s = suite(attacks=["sybil"], budgets={"default": [0.1]}, defenses=["bound_floor"],
              exclude=[{"mechanism": "p1", "defense": "bound_floor"},
                       {"mechanism": "p2", "attack": "sybil"}])
    got = {(p.mechanism.label, p.defense.label, p.attack.label) for p in s.grid()}
    assert got == {("p1", "none", "none"), ("p1", "none", "sybil"),
                   ("p2", "none", "none"), ("p2", "bound_floor", "none")}


def test_datasets_params_files_and_true_bounds(tmp_path):
    pop = datasets.load("blobs", n=12, seed=2, bounds=None)
    (tmp_path / "data").mkdir()
    datasets.write_population(pop, tmp_path / "data" / "mine.csv")
    (tmp_path / "s.toml").write_text(
        'datasets = ["evs2017", {name = "blobs", n = 10, seed = 3},\n'
        '            {file = "data/mine.csv", true_bounds = "fixed:0.5,0.1"}]\n'
        'mechanisms = ["consensus"]\n')
    s = load_suite(tmp_path / "s.toml")
    assert [d.label for d in s.datasets] == ["evs2017", "blobs(n=10,seed=3)", "mine"]
    assert [d.population.n for d in s.datasets] == [34, 10, 12]
    assert all(d.population.has_bounds for d in s.datasets)  # evs2017 and the file had none
    assert s.datasets[2].population.gamma_x[0] == 0.5
    assert s.datasets[2].source["file"] == str((tmp_path / "data" / "mine.csv").resolve())
    assert s.name == "s" and s.mechanisms[0].label == "consensus"


def test_resolved_config_is_a_suite_with_the_same_grid(tmp_path):
    s = suite(seeds=[0, 4], attacks=["sybil", {"name": "sybil", "label": "ranged",
                                                "bound_range": [0.0, math.inf]}],
              defenses=["bound_floor"],
              budgets={"default": [0.1, math.inf]}, tolerances={"capture": 0.2},
              exclude=[{"mechanism": "p2", "defense": "bound_floor"}])
    path = tmp_path / "suite.resolved.json"
    write_json(path, s.resolved(), strict=False)
    again = load_suite(path)
    assert again.digest == s.digest
    assert again.criteria == s.criteria
    assert again.criteria.tolerances["capture"] == Tolerance(0.2)
    assert set(again.criteria.tolerances) == set(DEFAULT_TOLERANCES)


def test_default_tolerances_cover_every_gated_metric():
    assert set(DEFAULT_TOLERANCES) == {m for m, i in METRICS.items() if i.worse != "none"}
    assert all(t >= 0 for t in DEFAULT_TOLERANCES.values())


def test_default_suite_loads():
    s = load_suite()
    assert s.name == "default" and s.source == "<default>"
    assert [d.label for d in s.datasets] == ["evs2017", "pve_like"]
    assert [m.label for m in s.mechanisms] == [
        "agreements", "consensus-p2", "agreements-declared", "agreements-protocol"]
    assert [m.mechanism.params.get("method") for m in s.mechanisms] == [
        "exact", None, "exact", "dual"]
    assert [a.label for a in s.attacks] == ["none", *ATTACKS]
    assert [d.label for d in s.defenses] == ["none", *DEFENSES]
    assert s.seeds == (0,)
    # security curves: every attack at three budgets, with its own default parameters
    assert all(len(a.budgets) == 3 for a in s.attacks[1:])
    assert all(a.params == {} for a in s.attacks)


@pytest.mark.parametrize("text, needle", [
    ('datasets = ["evs2017"\nmechanisms = ["consensus"]', "not a valid toml"),
    ('frobnicate = 1\ndatasets = ["evs2017"]\nmechanisms = ["consensus"]',
     "frobnicate: unknown key"),
    ('mechanisms = ["consensus"]', "datasets: missing"),
    ('datasets = "evs2017"\nmechanisms = ["consensus"]', "datasets: expected a list"),
    ('datasets = ["nope"]\nmechanisms = ["consensus"]', "datasets[0].name: unknown dataset"),
    ('datasets = [{name = "pve_like", sd = 1}]\nmechanisms = ["consensus"]',
     "datasets[0].sd"),
    ('datasets = [{name = "evs2017", true_bounds = "median"}]\nmechanisms = ["consensus"]',
     "datasets[0].true_bounds"),
    ('datasets = [{file = "missing.csv"}]\nmechanisms = ["consensus"]', "datasets[0]"),
    ('datasets = ["evs2017"]\nmechanisms = [{kind = "nope"}]',
     "mechanisms[0].kind: unknown mechanism"),
    ('datasets = ["evs2017"]\nmechanisms = [{name = "x"}]', "mechanisms[0].kind: missing"),
    ('datasets = ["evs2017"]\nmechanisms = [{kind = "agreements", bound = "declared"}]',
     "mechanisms[0]: mechanism 'agreements' rejects its parameters"),
    ('datasets = ["evs2017"]\nmechanisms = [{kind = "consensus", p = 0.5}]',
     "mechanisms[0].p"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus", "consensus"]',
     "mechanisms[1].label: duplicate label"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\nattacks = ["nope"]',
     "attacks[0].name: unknown attack"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'attacks = ["sybil", {name = "sybil", budgets = [0.1, "x"]}]',
     "attacks[1].budgets: expected a list of numbers"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'attacks = [{name = "sybil", budgets = [-0.1]}]', "attacks[0].budgets: budget -0.1"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'attacks = [{name = "sybil", frob = 1}]', "attacks[0].frob"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'attacks = [{name = "sybil", fraction = 2.0}]', "attacks[0].fraction"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\ndefenses = ["bound_floor+nope"]',
     "defenses[0]: unknown defense 'nope'"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'defenses = [{name = "bound_floor", quantile = 3}]', "defenses[0].quantile"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n'
     'defenses = [{chain = ["bound_floor", {quantile = 0.1}]}]',
     "defenses[0].chain[1].name: missing"),
    ('seeds = "0"\ndatasets = ["evs2017"]\nmechanisms = ["consensus"]', "seeds: expected a list"),
    ('seeds = [0, 0]\ndatasets = ["evs2017"]\nmechanisms = ["consensus"]', "seeds: a seed"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n[budgets]\nnope = [0.1]',
     "budgets.nope: not an attack name"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n[budgets]\ndefault = "many"',
     "budgets.default: expected a list of numbers"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n[params]\nsybil = 3',
     "params.sybil: expected a table"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n[tolerances]\nfoo = 0.1',
     "tolerances.foo: not a gated metric"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\n[tolerances]\ncapture = -1',
     "tolerances.capture: expected a non-negative number"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\nexclude = [{defense = "nope"}]',
     "exclude[0].defense: no defense labelled 'nope'"),
    ('datasets = ["evs2017"]\nmechanisms = ["consensus"]\nexclude = [{seed = 1}]',
     "exclude[0].seed: unknown key"),
])
def test_invalid_suites_name_the_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_suite(path)
    assert needle.lower() in str(err.value).lower()


def test_missing_suite_file(tmp_path):
    with pytest.raises(InputError, match="no such suite file"):
        load_suite(tmp_path / "nope.toml")


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 1e-3), ("inf", math.inf),
    ("true", True), ("False", False), ("3+7", (3, 7)), ("0+inf", (0, math.inf)),
    ("capture", "capture"), ("quantile:0.5", "quantile:0.5"), ("a+b", ("a", "b")),
])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_parse_named():
    assert parse_named("sybil,sybils=10,goal=capture,attackers=3+7", "--attack") == (
        "sybil", {"sybils": 10, "goal": "capture", "attackers": (3, 7)})
    assert parse_named("bound_floor", "--defense") == ("bound_floor", {})
    for bad in ("sybil,sybils", "sybil,=3", ",x=1"):
        with pytest.raises(InputError, match="--attack"):
            parse_named(bad, "--attack")


def test_cli_help_example_is_a_valid_suite():
    from pluralguard.eval.cli_parser import _SUITE_HELP

    text = _SUITE_HELP.split("\n\n", 1)[1].split("\n\nFull reference")[0]
    data = tomllib.loads("\n".join(line[2:] for line in text.splitlines()))
    assert {"datasets", "mechanisms", "attacks", "defenses", "budgets", "tolerances"} <= set(
        data)


def test_grid_is_a_product(tmp_path):
    s = suite(seeds=[0, 1], attacks=[{"name": "sybil", "budgets": [0.1, 0.2, 0.3]}],
              defenses=["bound_floor"])
    axes = [s.datasets, s.mechanisms, s.defenses,
            [(a, b) for a in s.attacks for b in a.budgets], s.seeds]
    assert len(s.grid()) == math.prod(len(a) for a in axes)
    assert [p.identity for p in s.grid()] == [
        {"dataset": d.label, "mechanism": m.label, "attack": a.label, "budget": b,
         "defense": f.label, "seed": seed}
        for d, m, f, (a, b), seed in itertools.product(*axes)]


def test_population_path_is_relative_to_the_suite(tmp_path):
    pop = datasets.load("blobs", n=6, seed=0)
    datasets.write_population(pop, tmp_path / "p.csv")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "s.toml").write_text('datasets = [{file = "../p.csv", label = "p"}]\n'
                                'mechanisms = ["consensus"]\n')
    assert load_suite(Path(sub / "s.toml")).datasets[0].population.n == 6
