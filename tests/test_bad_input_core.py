"""Bad input to the core: one InputError naming the field, never a coercion or a traceback.

Every class of bad input found by trying the core as a stranger would: numbers that
Python's ``float`` accepts but a table should not (``0_1``, ``١``), empty names, weights
whose sums overflow, malformed arrays, bound policies, consensus parameters, generator
parameters and files. Each case asserts the InputError's field; the CLI cases assert
one line on stderr and exit status 2. Weights: the agreements depend only on their
ratios (hypothesis, factors up to 1e300).
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pluralguard.core import InputError, Population, datasets, lp_consensus, solve_agreements
from pluralguard.core.bounds import BoundPolicy
from pluralguard.core.consensus import limit_p, transition_p
from pluralguard.core.numbers import parse_decimal, real_array, real_number
from pluralguard.eval.cli import main
from populations import clustered

X2 = np.zeros((2, 1, 2))
W2 = np.full((2, 2), 0.5)


def field_of(call) -> str:
    with pytest.raises(InputError) as err:
        call()
    assert str(err.value).startswith(f"{err.value.field}: ")
    assert "\n" not in str(err.value)
    return err.value.field


# ------------------------------------------------------------------ plain decimals
@pytest.mark.parametrize("text, value", [
    ("0", 0.0), ("-0.25", -0.25), ("+3", 3.0), (".5", 0.5), ("2.", 2.0), ("1e-3", 1e-3),
    ("-4E+2", -400.0), (" 0.5\t", 0.5), ("0.1000000000000000055511151231257827", 0.1)])
def test_plain_decimal_notation_is_read_exactly(text: str, value: float) -> None:
    assert parse_decimal(text) == value == float(text)


@pytest.mark.parametrize("text", [
    "0_1",      # digit grouping: float() reads 1.0
    "١",        # ARABIC-INDIC DIGIT ONE: float() reads 1.0
    "１",       # FULLWIDTH DIGIT ONE
    "٠.٥",      # Arabic-Indic 0.5
    "nan", "NaN", "infinity", "inf", "-inf", "1e", "e5", ".", "", " ", "0x1", "1,5",
    "1.5.", "--1", "1 2", "½", "1\n", "\u20071",
])
def test_other_notations_are_not_numbers(text: str) -> None:
    assert parse_decimal(text) is None


def test_inf_only_where_allowed() -> None:
    assert parse_decimal("inf", allow_inf=True) == math.inf
    assert parse_decimal("-INF", allow_inf=True) == -math.inf
    assert parse_decimal("nan", allow_inf=True) is None
    assert field_of(lambda: real_number("q", "inf", "fix")) == "q"
    assert real_number("p", " inf", "fix", allow_inf=True) == math.inf
    assert field_of(lambda: real_number("p", float("nan"), "fix", allow_inf=True)) == "p"


@pytest.mark.parametrize("value", [["0.5"], [True, False], [1 + 2j], [[1.0], [1.0, 2.0]],
                                   [None], [10**400], "abc", {"a": 1}])
def test_real_array_rejects_non_numbers(value) -> None:
    assert field_of(lambda: real_array("X", value, "pass numbers")) == "X"


def test_real_array_accepts_every_real_dtype() -> None:
    for dtype in (np.int8, np.uint64, np.float32, np.float64):
        np.testing.assert_array_equal(real_array("X", np.ones(3, dtype=dtype), ""), 1.0)
    np.testing.assert_array_equal(real_array("X", [1, 2.5, np.float32(3)], ""), [1, 2.5, 3])


# ------------------------------------------------------------------ Population
POPULATION_CASES = {
    "X text": (lambda: Population(np.full((2, 1, 2), "0.5"), W2), "X"),
    "X booleans": (lambda: Population(np.ones((2, 1, 2), dtype=bool), W2), "X"),
    "X complex": (lambda: Population(X2 + 0j, W2), "X"),
    "X ragged": (lambda: Population([[[0.0, 0.0]], [[0.0]]], W2), "X"),
    "X None": (lambda: Population(None, W2), "X"),
    "W text": (lambda: Population(X2, [["0.5", "0.5"]] * 2), "W"),
    "empty agent name": (lambda: Population(X2, W2, agents=["a", ""]), "agents"),
    "blank agent name": (lambda: Population(X2, W2, agents=["a", " \t"]), "agents"),
    "agent name not text": (lambda: Population(X2, W2, agents=["a", 7]), "agents"),
    "agents one string": (lambda: Population(X2, W2, agents="ab"), "agents"),
    "agents a number": (lambda: Population(X2, W2, agents=5), "agents"),
    "empty value name": (lambda: Population(X2, W2, values=["v", ""]), "values"),
    "empty alternative name": (lambda: Population(X2, W2, alternatives=[""]), "alternatives"),
    "weights text": (lambda: Population(X2, W2, weights=["1", "2"]), "weights"),
    "weights booleans": (lambda: Population(X2, W2, weights=[True, True]), "weights"),
    "weights scalar text": (lambda: Population(X2, W2, weights="heavy"), "weights"),
    "weights zero": (lambda: Population(X2, W2, weights=[1.0, 0.0]), "weights"),
    "weights infinite": (lambda: Population(X2, W2, weights=[1.0, math.inf]), "weights"),
    "weights ratio beyond 1e-150": (lambda: Population(X2, W2, weights=[1e-200, 1e100]),
                                    "weights"),
    "gamma_x text": (lambda: Population(X2, W2, gamma_x="abc", gamma_w=1.0), "gamma_x"),
    "gamma_w numeric text": (lambda: Population(X2, W2, gamma_x=1.0, gamma_w="0.5"),
                             "gamma_w"),
    "gamma_x NaN": (lambda: Population(X2, W2, gamma_x=math.nan, gamma_w=1.0), "gamma_x"),
    "name not text": (lambda: Population(X2, W2, name=None), "name"),
    "replace unknown field": (lambda: Population(X2, W2).replace(weight=[1, 2]), "weight"),
    "subset float indices": (lambda: Population(X2, W2).subset([0.0, 1.0]), "indices"),
    "subset text indices": (lambda: Population(X2, W2).subset(["a"]), "indices"),
    "subset short mask": (lambda: Population(X2, W2).subset([True]), "indices"),
    "append a non-population": (lambda: Population(X2, W2).append(X2), "other"),
}


@pytest.mark.parametrize("case", list(POPULATION_CASES))
def test_population_rejects(case: str) -> None:
    call, field = POPULATION_CASES[case]
    assert field_of(call) == field


def test_appending_an_unweighted_population_counts_it_as_weight_one() -> None:
    a = Population(X2, W2, weights=[2.0, 4.0], agents=["a", "b"])
    both = a.append(Population(X2[:1], W2[:1], agents=["c"]))
    np.testing.assert_array_equal(both.weights, [2.0, 4.0, 1.0])


# ------------------------------------------------------------------ weights: only ratios
def test_relative_weights_keep_ratios_exactly_and_cannot_overflow() -> None:
    for w in ([1.0, 3.0, 0.1], [1e308, 1e308, 5e307], [2.0**-1000, 3 * 2.0**-1000, 2.0**-1001]):
        pop = Population(np.zeros((3, 1, 1)), np.ones((3, 1)), weights=w)
        rel = pop.weight
        assert 1.0 <= rel.max() < 2.0 and np.isfinite(rel.sum())
        np.testing.assert_array_equal(rel / rel[0], np.asarray(w) / w[0])  # exact


def test_weight_1e308_for_every_agent_is_weight_1() -> None:
    pop = datasets.load("pve_like")
    big = pop.replace(weights=np.full(pop.n, 1e308))
    for p in (1, 2, 3.5, math.inf):
        a, b = lp_consensus(pop, p=p), lp_consensus(big, p=p)
        assert np.isfinite(b.X).all() and np.isfinite(b.W).all()
        np.testing.assert_allclose(b.X, a.X, atol=1e-15)
        np.testing.assert_allclose(b.W, a.W, atol=1e-15)
    a, b = solve_agreements(pop, "quantile:0.5"), solve_agreements(big, "quantile:0.5")
    np.testing.assert_array_equal(b.labels, a.labels)
    np.testing.assert_allclose(b.X, a.X, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, atol=1e-12)


FACTORS = st.one_of(st.sampled_from([1e-300, 1e-150, 1e150, 1e300, 2.0**1000]),
                    st.floats(1e-300, 1e300))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), FACTORS, st.sampled_from(["quantile:0.3", "quantile:0.6"]))
def test_scaling_every_weight_changes_no_agreement(seed: int, c: float, bounds: str) -> None:
    pop = clustered(n=24, seed=seed, weights=True)
    scaled = pop.replace(weights=c * pop.weights)
    a, b = solve_agreements(pop, bounds), solve_agreements(scaled, bounds)
    np.testing.assert_array_equal(b.labels, a.labels)
    np.testing.assert_allclose(b.X, a.X, atol=1e-9)
    np.testing.assert_allclose(b.W, a.W, atol=1e-9)
    for p in (1, 2, 3.5, math.inf):
        ca, cb = lp_consensus(pop, p=p), lp_consensus(scaled, p=p)
        np.testing.assert_allclose(cb.X, ca.X, atol=1e-12)
        np.testing.assert_allclose(cb.W, ca.W, atol=1e-12)
        if math.isfinite(p):  # U_p is reported with the weights as given
            factor = c ** (1 / p)
            assert cb.U_p_X == pytest.approx(factor * ca.U_p_X, rel=1e-9)


# ------------------------------------------------------------------ bound policies
@pytest.mark.parametrize("spec", ["abc", "quantile:٠.5", "quantile:0_5", "fixed:0_1,0.2",
                                  "quantile:nan", "quantile:2", "fixed:-1,0", "fixed:1",
                                  "quantile:", 123, None])
def test_bound_policy_rejects(spec) -> None:
    assert field_of(lambda: BoundPolicy.parse(spec)) == "bounds"


def test_bound_policy_inf_means_no_limit() -> None:
    assert BoundPolicy.parse("fixed:inf,1e-3").gamma_x == math.inf


# ------------------------------------------------------------------ consensus
EVS = datasets.evs2017()
CONSENSUS_CASES = {
    "p digit grouping": (lambda: lp_consensus(EVS, p="1_0"), "p"),
    "p Arabic-Indic digit": (lambda: lp_consensus(EVS, p="٢"), "p"),
    "p nan text": (lambda: lp_consensus(EVS, p="nan"), "p"),
    "p list": (lambda: lp_consensus(EVS, p=[2]), "p"),
    "weights text": (lambda: lp_consensus(EVS, weights=["1"] * EVS.n), "weights"),
    "weights booleans": (lambda: lp_consensus(EVS, weights=[True] * EVS.n), "weights"),
    "epsilon text": (lambda: limit_p(EVS, epsilon="1e_4"), "epsilon"),
    "step infinite": (lambda: transition_p(EVS, step=math.inf), "step"),
    "target array": (lambda: limit_p(EVS, target=np.array(["W", "X"])), "target"),
    "utility array": (lambda: lp_consensus(EVS, utility=np.array(["linear"])), "utility"),
}


@pytest.mark.parametrize("case", list(CONSENSUS_CASES))
def test_consensus_rejects(case: str) -> None:
    call, field = CONSENSUS_CASES[case]
    assert field_of(call) == field


def test_consensus_reads_p_as_plain_decimal_text() -> None:
    assert lp_consensus(EVS, p=" 2.5 ").p == 2.5
    assert lp_consensus(EVS, p="INF").p == math.inf


# ------------------------------------------------------------------ datasets
DATASET_CASES = {
    "spread infinite": (lambda: datasets.load("blobs", spread=math.inf), "spread"),
    "spread text": (lambda: datasets.load("blobs", spread="0.1"), "spread"),
    "seed negative": (lambda: datasets.load("pve_like", seed=-1), "seed"),
    "seed fractional": (lambda: datasets.load("pve_like", seed=1.5), "seed"),
    "n beyond memory": (lambda: datasets.load("blobs", n=10**9), "n"),
    "pve_like n beyond memory": (lambda: datasets.pve_like(n=10**8), "n"),
    "polarized k beyond memory": (lambda: datasets.polarized(k=10**6, m=1000), "n"),
    "evs weights array": (lambda: datasets.evs2017(weights=np.array(["none"])), "weights"),
    "lera table not a DataFrame": (lambda: datasets.from_lera_table([[1, 2]]), "df"),
    "file format array": (lambda: datasets.load_population_file("x.csv", np.array(["a"])),
                          "format"),
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_datasets_reject(case: str) -> None:
    call, field = DATASET_CASES[case]
    assert field_of(call) == field


def test_bounds_factor_inf_means_no_limit() -> None:
    assert np.isinf(datasets.blobs(n=4, bounds=math.inf).gamma_x).all()


# ------------------------------------------------------------------ files
GOOD = {"agent": ["a", "b"], "w:v": ["0.4", "0.6"], "w:u": ["0.6", "0.4"],
        "x:o:v": ["0.5", "-0.5"], "x:o:u": ["0", "1"], "gamma_x": ["1", "inf"],
        "gamma_w": ["0.5", "0.5"], "weight": ["1", "2"]}


def ours(tmp_path: Path, **changes: list[str]) -> Path:
    table = {**GOOD, **changes}
    path = tmp_path / "pop.csv"
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def test_the_good_file_reads(tmp_path: Path) -> None:
    pop = datasets.read_population(ours(tmp_path))
    assert pop.agents == ("a", "b") and pop.gamma_x[1] == math.inf


FILE_CASES = {
    "cell 0_1": ({"x:o:v": ["0_1", "0"]}, "x:o:v"),
    "cell Arabic-Indic one": ({"x:o:u": ["١", "0"]}, "x:o:u"),
    "cell fullwidth one": ({"w:v": ["１", "0"]}, "w:v"),
    "cell nan": ({"x:o:v": ["nan", "0"]}, "x:o:v"),
    "cell inf in X": ({"x:o:v": ["inf", "0"]}, "x:o:v"),
    "cell overflowing": ({"weight": ["1e999", "1"]}, "weight"),
    "bound nan": ({"gamma_w": ["nan", "1"]}, "gamma_w"),
    "weight 0_1": ({"weight": ["0_1", "1"]}, "weight"),
    "empty agent name": ({"agent": ["a", ""]}, "agent"),
    "blank agent name": ({"agent": ["a", "  "]}, "agent"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_population_file_rejects(case: str, tmp_path: Path) -> None:
    changes, field = FILE_CASES[case]
    path = ours(tmp_path, **changes)
    assert field_of(lambda: datasets.read_population(path)) == field
    assert field_of(lambda: datasets.load_population_file(path)) == field


RAW_FILE_CASES = {
    "empty value name": ("agent,w:,x:o:\na,1,0\n", "w:"),
    "empty alternative name": ("agent,w:v,x::v\na,1,0\n", "x::v"),
    "duplicated column": ("agent,w:v,x:o:v,x:o:v\na,1,0,0\n", "x:o:v"),
    "row longer than the header": ("agent,w:v,x:o:v\na,1,0,7\n", "path"),
    "header only": ("agent,w:v,x:o:v\n", "path"),
}


@pytest.mark.parametrize("case", list(RAW_FILE_CASES))
def test_malformed_population_file(case: str, tmp_path: Path) -> None:
    text, field = RAW_FILE_CASES[case]
    path = tmp_path / "pop.csv"
    path.write_text(text, encoding="utf-8")
    assert field_of(lambda: datasets.read_population(path)) == field


LERA_GOOD = {"country": ["AL", "NA"], "rel": ["3", "1"], "nonrel": ["1", "1"],
             "a_div_rel": ["0.5", "-0.5"], "a_div_nonrel": ["0", "1"],
             "population": ["10", "20"]}


def lera(tmp_path: Path, **changes: list[str]) -> Path:
    path = tmp_path / "lera.csv"
    pd.DataFrame({**LERA_GOOD, **changes}).to_csv(path, index=False)
    return path


def test_lera_file_keeps_names_as_written(tmp_path: Path) -> None:
    pop = datasets.read_lera_csv(lera(tmp_path))
    assert pop.agents == ("AL", "NA")  # Namibia, not a missing value
    np.testing.assert_array_equal(pop.W[0], [0.75, 0.25])
    ids = datasets.read_lera_csv(lera(tmp_path, country=["1.0", "2.0"]))
    assert ids.agents == ("1", "2")


LERA_CASES = {
    "judgement 0_1": ({"a_div_rel": ["0_1", "0"]}, {}, "a_div_rel"),
    "count Arabic-Indic": ({"rel": ["١", "1"]}, {}, "rel"),
    "count negative": ({"nonrel": ["-1", "1"]}, {}, "nonrel"),
    "judgement outside [-1, 1]": ({"a_div_nonrel": ["1.5", "0"]}, {}, "a_div_nonrel"),
    "judgement nan": ({"a_div_nonrel": ["nan", "0"]}, {}, "a_div_nonrel"),
    "empty country": ({"country": ["AL", ""]}, {}, "country"),
    "population zero": ({"population": ["0", "1"]}, {"weights": "population"},
                        "population"),
    "population text": ({"population": ["many", "1"]}, {"weights": "population"},
                        "population"),
    "unknown weighting": ({}, {"weights": "people"}, "weights"),
}


@pytest.mark.parametrize("case", list(LERA_CASES))
def test_lera_file_rejects(case: str, tmp_path: Path) -> None:
    changes, kwargs, field = LERA_CASES[case]
    path = lera(tmp_path, **changes)
    assert field_of(lambda: datasets.read_lera_csv(path, **kwargs)) == field


def test_lera_counts_of_1e308_respondents(tmp_path: Path) -> None:
    path = lera(tmp_path, rel=["1e308", "1e308"], nonrel=["1e308", "1.5e308"])
    pop = datasets.read_lera_csv(path, weights="respondents")
    np.testing.assert_allclose(pop.W, [[0.5, 0.5], [0.4, 0.6]], rtol=1e-15)
    np.testing.assert_allclose(pop.weights, [2 / 4.5, 2.5 / 4.5], rtol=1e-15)


@pytest.mark.parametrize("reader", [datasets.read_population, datasets.read_lera_csv,
                                    datasets.load_population_file, datasets.detect_format])
@pytest.mark.parametrize("path", [None, 3, b"pop.csv", ["pop.csv"]])
def test_a_path_must_be_a_path(reader, path) -> None:
    assert field_of(lambda: reader(path)) == "path"


def test_write_population_needs_a_population_and_a_path(tmp_path: Path) -> None:
    assert field_of(lambda: datasets.write_population(X2, tmp_path / "p.csv")) == "population"
    assert field_of(lambda: datasets.write_population(datasets.blobs(n=4), None)) == "path"


def test_large_p_does_not_overflow() -> None:
    ref = lp_consensus(EVS, p=math.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in (1e30, 1e300):
            np.testing.assert_allclose(lp_consensus(EVS, p=p).X, ref.X, atol=1e-12)


def test_paths_that_are_not_readable_files(tmp_path: Path, monkeypatch) -> None:
    assert field_of(lambda: datasets.read_population(tmp_path)) == "path"  # a directory
    assert field_of(lambda: datasets.read_population(tmp_path / "none.csv")) == "path"
    path = ours(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pd, "read_csv", denied)  # root reads anything: simulate it
    assert field_of(lambda: datasets.read_population(path)) == "path"


def test_paths_that_cannot_be_written(tmp_path: Path, monkeypatch) -> None:
    pop = datasets.blobs(n=4)
    assert field_of(lambda: datasets.write_population(pop, tmp_path)) == "path"
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert field_of(lambda: datasets.write_population(pop, tmp_path / "p.csv")) == "path"
    assert not (tmp_path / "p.csv").exists()


# ------------------------------------------------------------------ CLI
CLI_CASES = {
    "solve, cell 0_1": (["solve"], {"x:o:v": ["0_1", "0"]}, "x:o:v"),
    "solve, empty agent name": (["solve"], {"agent": ["a", ""]}, "agent"),
    "consensus, Arabic-Indic digit": (["consensus"], {"w:v": ["٠.٤", "0.6"]}, "w:v"),
    "consensus, weight 1e999": (["consensus"], {"weight": ["1e999", "1"]}, "weight"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_population_file(case: str, tmp_path: Path, capsys) -> None:
    command, changes, field = CLI_CASES[case]
    path = ours(tmp_path, **changes)
    assert main([*command, "--population", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {field}: " in err and "Traceback" not in err


def test_cli_weights_of_1e308(tmp_path: Path, capsys) -> None:
    path = ours(tmp_path, weight=["1e308", "1e308"])
    assert main(["consensus", "--population", str(path), "--p", "2", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert all(math.isfinite(v) for v in out["W"])
    assert main(["consensus", "--population", str(ours(tmp_path)), "--p", "2", "--json"]) == 0


def test_cli_datasets_export(tmp_path: Path, capsys) -> None:
    for argv, field in ((["blobs", "--out", str(tmp_path)], "path"),
                        (["blobs", "--out", str(tmp_path / "no" / "p.csv")], "path"),
                        (["pve_like", "--seed", "-1", "--out", str(tmp_path / "p.csv")],
                         "argument --seed")):
        assert main(["datasets", "export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"error: {field}: " in err


def test_cli_process_exit_status_and_one_line(tmp_path: Path) -> None:
    path = ours(tmp_path, **{"x:o:v": ["١", "0"]})
    proc = subprocess.run([sys.executable, "-m", "pluralguard.eval.cli", "solve",
                           "--population", str(path)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "x:o:v" in proc.stderr
    assert "Traceback" not in proc.stderr
