"""Tests of pluralguard.core.datasets: shipped EVS table, generators, registry, files."""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import InputError, Population, datasets
from pluralguard.core.datasets import files
from populations import shared_file

#: The EVS table shipped in the package: LERA's data.csv, byte for byte.
EVS_CSV = Path(str(resources.files("pluralguard.core.datasets").joinpath("evs2017.csv")))
#: SHA-256 of LERA's data.csv at commit ab6d0b2 (tests/data/README.md).
LERA_DATA_SHA256 = "fd416ef6ad11cc88be35ba3947ac17d5453f90c1662e369851fbe37cdf523244"
#: Read from $PLURALGUARD_SHARED_DATA: the shared copy of LERA's table (compared byte for
#: byte with the shipped one) and the ESS-8 respondents (CC BY-NC-SA, not redistributed).
EVS_SHARED = "lera_evs2017/evs2017_country_value_systems.csv"
ESS_ALL = "trevorrow_ess8/ess8_all_individual_value_systems.csv"


def same_population(a: Population, b: Population) -> bool:
    """Bit-identical arrays and identical names."""
    return a.fingerprint() == b.fingerprint()


# ------------------------------------------------------------------------ evs2017
def test_evs2017_shape_and_names():
    pop = datasets.evs2017()
    assert (pop.n, pop.k, pop.m) == (34, 2, 2)
    assert pop.values == ("rel", "nonrel")
    assert pop.alternatives == ("adp", "div")
    assert pop.agents[:3] == ("AL", "AZ", "AT") and pop.agents[-1] == "GB"
    assert len(set(pop.agents)) == 34
    assert not pop.has_bounds and pop.weights is None
    assert pop.name == "evs2017"
    for cite in ("EVS 2017", "ZA7500", "10.4232/1.13560", "Lera-Leri"):
        assert cite in pop.description


def test_evs2017_first_row_matches_csv():
    pop = datasets.evs2017()
    assert pop.W[0, 0] == 1029 / 1429 and pop.W[0, 1] == 400 / 1429
    assert pop.X[0, 0, 0] == -0.6411378555798687  # a_adp_rel
    assert pop.X[0, 0, 1] == -0.5758513931888545  # a_adp_nonrel
    assert pop.X[0, 1, 0] == -0.3300813008130075  # a_div_rel
    assert pop.X[0, 1, 1] == -0.17676767676767724  # a_div_nonrel


def test_evs2017_all_rows_match_csv():
    df = pd.read_csv(EVS_CSV)
    pop = datasets.evs2017()
    assert list(pop.agents) == df["country"].tolist()
    counts = df[["rel", "nonrel"]].to_numpy(dtype=float)
    np.testing.assert_array_equal(pop.W, counts / counts.sum(axis=1, keepdims=True))
    for a, action in enumerate(("adp", "div")):
        for v, value in enumerate(("rel", "nonrel")):
            np.testing.assert_array_equal(pop.X[:, a, v], df[f"a_{action}_{value}"])


@pytest.mark.parametrize("mode", ["respondents", "population"])
def test_evs2017_weight_modes_sum_to_one(mode):
    pop = datasets.load("evs2017", weights=mode)
    assert pop.weights is not None and (pop.weights > 0).all()
    assert pop.weights.sum() == pytest.approx(1.0, abs=1e-12)
    with resources.files("pluralguard.core.datasets").joinpath("evs2017.csv").open("rb") as fh:
        df = pd.read_csv(fh)
    raw = (df["rel"] + df["nonrel"] if mode == "respondents" else df["population"])
    raw = raw.to_numpy(dtype=float)
    np.testing.assert_array_equal(pop.weights, raw / raw.sum())


def test_evs2017_bad_weights():
    with pytest.raises(InputError) as err:
        datasets.evs2017(weights="people")
    assert err.value.field == "weights"


def test_shipped_csv_is_lera_data_csv():
    assert hashlib.sha256(EVS_CSV.read_bytes()).hexdigest() == LERA_DATA_SHA256


def test_shipped_csv_is_byte_identical_to_the_shared_copy():
    assert EVS_CSV.read_bytes() == shared_file(EVS_SHARED).read_bytes()


# ----------------------------------------------------------------------- pve_like
def cluster_of(pop: Population) -> np.ndarray:
    """Generating group of each agent, from the documented name prefix."""
    return np.array([a.rsplit("-", 1)[0] for a in pop.agents])


def test_pve_like_shape_labels_and_description():
    pop = datasets.pve_like()
    assert pop.X.shape == (876, 6, 5) and pop.W.shape == (876, 5)
    assert pop.name == "pve_like"
    assert "SYNTHETIC" in pop.description and "not public" in pop.description
    assert "sustainability" in pop.values and "wind_turbines" in pop.alternatives
    assert len(set(pop.values)) == 5 and len(set(pop.alternatives)) == 6
    assert np.abs(pop.X).max() < 1.0
    np.testing.assert_allclose(pop.W.sum(axis=1), 1.0, atol=1e-12)


def test_pve_like_deterministic_per_seed():
    a, b, c = datasets.pve_like(seed=0), datasets.pve_like(seed=0), datasets.pve_like(seed=1)
    assert same_population(a, b)
    assert not np.array_equal(a.X, c.X)
    assert not np.array_equal(a.gamma_x, c.gamma_x)


def test_pve_like_clusters_are_unequal_with_outliers():
    pop = datasets.pve_like()
    labels, sizes = np.unique(cluster_of(pop), return_counts=True)
    clusters = sizes[labels != "out"]
    assert 6 <= clusters.size <= 8
    assert clusters.min() >= 3
    assert clusters.max() >= 2 * clusters.min()  # unequal sizes
    assert 0 < sizes[labels == "out"][0] < 0.05 * pop.n


def test_pve_like_spreads_differ_between_clusters():
    pop = datasets.pve_like()
    group = cluster_of(pop)
    spreads = [pop.X[group == g].std(axis=0).mean() for g in np.unique(group) if g != "out"]
    assert max(spreads) > 3 * min(spreads)  # some tight, some diffuse


def test_pve_like_declared_bounds():
    pop = datasets.pve_like()
    assert pop.has_bounds
    assert (pop.gamma_x > 0).all() and (pop.gamma_w > 0).all()
    assert np.isfinite(pop.gamma_x).all() and np.isfinite(pop.gamma_w).all()
    # heterogeneous, and on the scale of the population's pairwise distances
    assert pop.gamma_x.std() > 0.1 * pop.gamma_x.mean()
    flat = pop.X.reshape(pop.n, -1)
    d = np.linalg.norm(flat[:200, None] - flat[None, :200], axis=-1)
    assert 0.2 < np.median(pop.gamma_x) / np.median(d[np.triu_indices(200, 1)]) < 1.5


def test_pve_like_other_sizes_and_bad_arguments():
    assert datasets.pve_like(n=100, seed=3).n == 100
    with pytest.raises(InputError) as err:
        datasets.pve_like(n=10)
    assert err.value.field == "n"
    with pytest.raises(InputError) as err:
        datasets.pve_like(seed=-1)
    assert err.value.field == "seed"


# --------------------------------------------------------------- blobs, polarized
@pytest.mark.parametrize("name", ["blobs", "polarized"])
def test_generators_deterministic_and_shaped(name):
    a = datasets.load(name, n=50, k=2, m=4, seed=5)
    b = datasets.load(name, n=50, k=2, m=4, seed=5)
    c = datasets.load(name, n=50, k=2, m=4, seed=6)
    assert (a.n, a.k, a.m) == (50, 2, 4)
    assert same_population(a, b) and not np.array_equal(a.X, c.X)
    assert a.has_bounds and (a.gamma_x > 0).all() and (a.gamma_w > 0).all()
    assert not datasets.load(name, n=50, bounds=None).has_bounds
    np.testing.assert_allclose(a.W.sum(axis=1), 1.0, atol=1e-12)
    assert "synthetic" in a.description


def test_blobs_groups_and_bounds_formula():
    pop = datasets.blobs(n=103, k=3, m=3, centers=4, spread=0.1, bounds=2.0)
    _, sizes = np.unique(cluster_of(pop), return_counts=True)
    assert sorted(sizes) == [25, 26, 26, 26]
    np.testing.assert_allclose(pop.gamma_x, 2.0 * 0.1 * np.sqrt(18))
    np.testing.assert_allclose(pop.gamma_w, 2.0 * 0.1 * np.sqrt(4))


def test_polarized_camps_are_opposed():
    pop = datasets.polarized(n=200, k=3, m=3, separation=0.8, moderates=0.2, spread=0.05)
    group = cluster_of(pop)
    assert [int((group == g).sum()) for g in "ABM"] == [80, 80, 40]
    xa, xb, xm = (pop.X[group == g].mean(axis=0) for g in "ABM")
    np.testing.assert_allclose(xa, -xb, atol=0.05)
    np.testing.assert_allclose(np.abs(xa), 0.8, atol=0.05)
    np.testing.assert_allclose(xm, 0.0, atol=0.05)
    wa, wb = pop.W[group == "A"].mean(axis=0), pop.W[group == "B"].mean(axis=0)
    assert np.linalg.norm(wa - wb) > 0.2


@pytest.mark.parametrize("kwargs,field", [
    ({"centers": 0}, "centers"), ({"centers": 11, "n": 10}, "centers"),
    ({"spread": -0.1}, "spread"), ({"bounds": -1.0}, "bounds"), ({"k": 1.5}, "k"),
])
def test_blobs_bad_arguments(kwargs, field):
    with pytest.raises(InputError) as err:
        datasets.blobs(**kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("kwargs,field", [
    ({"separation": 1.5}, "separation"), ({"moderates": 1.0}, "moderates"),
    ({"m": 1}, "m"), ({"spread": float("nan")}, "spread"),
])
def test_polarized_bad_arguments(kwargs, field):
    with pytest.raises(InputError) as err:
        datasets.polarized(**kwargs)
    assert err.value.field == field


# ---------------------------------------------------------------------- registry
def test_registry_lists_and_loads_every_dataset():
    names = datasets.available()
    assert set(names) == {"evs2017", "pve_like", "blobs", "polarized"}
    listed = datasets.list_datasets()
    assert [n for n, _ in listed] == list(names)
    assert all(isinstance(text, str) and text and "\n" not in text for _, text in listed)
    for name in names:
        assert isinstance(datasets.load(name), Population)
    assert same_population(datasets.load("PVE_like", seed=2), datasets.pve_like(seed=2))


def test_unknown_dataset_names_the_field_and_known_names():
    with pytest.raises(InputError) as err:
        datasets.load("ess9")
    assert err.value.field == "dataset"
    for name in datasets.available():
        assert name in err.value.fix


def test_unknown_keyword_is_named():
    with pytest.raises(InputError) as err:
        datasets.load("blobs", sigma=0.2)
    assert err.value.field == "sigma" and "spread" in err.value.fix
    with pytest.raises(InputError) as err:
        datasets.load("evs2017", seed=1)
    assert err.value.field == "seed"
    with pytest.raises(InputError) as err:
        datasets.load("blobs", name="mine")
    assert err.value.field == "name"


# ---------------------------------------------------------------- population files
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6).filter(
    str.strip)  # a name is non-empty text
finite_unit = st.floats(-1.0, 1.0, allow_nan=False)


@st.composite
def populations(draw: st.DrawFn) -> Population:
    n, k, m = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    X = np.array(draw(st.lists(finite_unit, min_size=n * k * m, max_size=n * k * m)))
    raw = np.array(draw(st.lists(st.floats(1e-3, 1e3), min_size=n * m, max_size=n * m)))
    W = raw.reshape(n, m) / raw.reshape(n, m).sum(axis=1, keepdims=True)
    bound = st.one_of(st.floats(0.0, 10.0), st.just(float("inf")))
    gx = gw = None
    if draw(st.booleans()):
        gx = draw(st.lists(bound, min_size=n, max_size=n))
        gw = draw(st.lists(bound, min_size=n, max_size=n))
    weights = None
    if draw(st.booleans()):
        # any magnitude, within the allowed ratio of lightest to heaviest (1e-150)
        scale = draw(st.floats(1e-300, 1e150))
        weights = [scale * f for f in draw(st.lists(st.floats(1.0, 1e140), min_size=n,
                                                    max_size=n))]
    agents = draw(st.lists(names, min_size=n, max_size=n, unique=True))
    values = draw(st.lists(names.filter(lambda s: ":" not in s), min_size=m, max_size=m,
                           unique=True))
    alternatives = draw(st.lists(names, min_size=k, max_size=k, unique=True))
    return Population(X=X.reshape(n, k, m), W=W, gamma_x=gx, gamma_w=gw, weights=weights,
                      agents=agents, values=values, alternatives=alternatives)


@settings(max_examples=60, deadline=None)
@given(populations())
def test_csv_round_trip_is_exact(pop):
    with tempfile.TemporaryDirectory() as tmp:
        path = datasets.write_population(pop, Path(tmp) / "pop.csv")
        back = datasets.read_population(path)
        assert same_population(back, pop)
        assert back.has_bounds == pop.has_bounds
        assert (back.weights is None) == (pop.weights is None)
        assert same_population(datasets.load_population_file(path), pop)
        assert os.listdir(tmp) == ["pop.csv"]


def test_round_trip_of_datasets(tmp_path):
    for name in ("evs2017", "pve_like"):
        pop = datasets.load(name)
        back = datasets.read_population(datasets.write_population(pop, tmp_path / "p.csv"))
        assert same_population(back, pop) and back.name == "p"


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "pop.csv"
    target.write_text("previous content")

    def broken_to_csv(self, fh, **kwargs):
        fh.write("agent,w:value0\n")  # half a file, then failure
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        datasets.write_population(datasets.blobs(n=5), target)
    assert target.read_text() == "previous content"
    assert os.listdir(tmp_path) == ["pop.csv"]


def test_write_rejects_colon_in_value_names(tmp_path):
    pop = datasets.blobs(n=4).replace(values=["a:b", "c", "d"])
    with pytest.raises(InputError) as err:
        datasets.write_population(pop, tmp_path / "p.csv")
    assert err.value.field == "values"
    assert not (tmp_path / "p.csv").exists()


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(InputError) as err:
        datasets.write_population(datasets.blobs(n=4), tmp_path / "no" / "p.csv")
    assert err.value.field == "path"


GOOD = {
    "agent": ["a", "b"],
    "w:v1": ["0.25", "0.5"], "w:v2": ["0.75", "0.5"],
    "x:o1:v1": ["0.1", "-0.2"], "x:o1:v2": ["0.3", "1"],
    "x:o2:v1": ["-1", "0"], "x:o2:v2": ["0.5", "0.5"],
    "gamma_x": ["1.5", "inf"], "gamma_w": ["0.2", "0.3"], "weight": ["1", "2"],
}


def write_table(path: Path, columns: dict[str, list[str]]) -> Path:
    header = ",".join(columns)
    rows = [",".join(cells) for cells in zip(*columns.values(), strict=True)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def edited(**changes: list[str] | None) -> dict[str, list[str]]:
    table = {k.replace("__", ":"): v for k, v in GOOD.items()}
    for key, cells in changes.items():
        col = key.replace("__", ":")
        if cells is None:
            del table[col]
        else:
            table[col] = cells
    return table


def test_hand_written_file_reads(tmp_path):
    pop = datasets.read_population(write_table(tmp_path / "good.csv", GOOD))
    assert pop.values == ("v1", "v2") and pop.alternatives == ("o1", "o2")
    assert pop.X[1, 0, 1] == 1.0 and pop.W[0, 1] == 0.75
    assert pop.gamma_x[1] == np.inf and list(pop.weights) == [1.0, 2.0]
    assert pop.name == "good"


@pytest.mark.parametrize("changes,field", [
    ({"agent": None}, "agent"),
    ({"w__v1": None, "w__v2": None}, "w:<value>"),
    ({"x__o1__v1": None, "x__o1__v2": None, "x__o2__v1": None, "x__o2__v2": None},
     "x:<alternative>:<value>"),
    ({"x__o2__v2": None}, "x:o2:v2"),                          # grid not full
    ({"x__o3__v1": ["0", "0"]}, "x:o3:v2"),                    # new alternative, half a row
    ({"x__o1__v3": ["0", "0"]}, "x:o1:v3"),                    # value without w: column
    ({"x__o1": ["0", "0"]}, "x:o1"),                           # no value part
    ({"w__v1": ["0.25", "abc"]}, "w:v1"),                      # non-numeric
    ({"x__o1__v1": ["0.1", ""]}, "x:o1:v1"),                   # empty cell
    ({"x__o2__v1": ["nan", "0"]}, "x:o2:v1"),                  # NaN
    ({"x__o2__v1": ["inf", "0"]}, "x:o2:v1"),                  # infinite judgement
    ({"x__o1__v2": ["0.3", "1.5"]}, "x:o1:v2"),                # outside [-1, 1]
    ({"w__v1": ["0.3", "0.5"]}, "w:*"),                        # row sums to 1.05
    ({"w__v1": ["-0.25", "0.5"], "w__v2": ["1.25", "0.5"]}, "w:v1"),
    ({"gamma_w": None}, "gamma_w"),                            # only one bound column
    ({"gamma_x": None}, "gamma_x"),
    ({"gamma_x": ["-1", "1"]}, "gamma_x"),
    ({"gamma_w": ["nan", "1"]}, "gamma_w"),
    ({"weight": ["0", "1"]}, "weight"),
    ({"weight": ["1", "inf"]}, "weight"),
    ({"gama_x": ["1", "1"]}, "gama_x"),                        # unknown column
    ({"agent": ["a", "a"]}, "agent"),                          # duplicate agent
])
def test_malformed_files_name_the_column(tmp_path, changes, field):
    path = write_table(tmp_path / "bad.csv", edited(**changes))
    with pytest.raises(InputError) as err:
        datasets.read_population(path)
    assert err.value.field == field, str(err.value)
    assert err.value.fix


def test_malformed_file_structure(tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("agent,w:v,w:v,x:o:v\na,1,1,0\n")
    with pytest.raises(InputError) as err:
        datasets.read_population(dup)
    assert err.value.field == "w:v" and "twice" in err.value.problem

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("agent,w:v,x:o:v\na,1,0,7\n")
    with pytest.raises(InputError) as err:
        datasets.read_population(ragged)
    assert err.value.field == "path"

    short = tmp_path / "short.csv"
    short.write_text("agent,w:v,x:o:v\na,1\n")
    with pytest.raises(InputError) as err:
        datasets.read_population(short)
    assert err.value.field == "x:o:v" and "empty" in err.value.problem

    header_only = tmp_path / "header.csv"
    header_only.write_text("agent,w:v,x:o:v\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for path in (header_only, empty, tmp_path / "missing.csv"):
        with pytest.raises(InputError) as err:
            datasets.read_population(path)
        assert err.value.field == "path"


# ------------------------------------------------------------- format detection
def test_load_population_file_detects_formats(tmp_path):
    lera = datasets.load_population_file(EVS_CSV)
    assert files.detect_format(EVS_CSV) == "lera"
    np.testing.assert_array_equal(lera.X, datasets.evs2017().X)
    weighted = datasets.load_population_file(EVS_CSV, weights="respondents")
    assert weighted.weights is not None
    ours = datasets.write_population(lera, tmp_path / "evs.csv")
    assert files.detect_format(ours) == "pluralguard"
    assert same_population(datasets.load_population_file(ours, format="pluralguard"), lera)
    with pytest.raises(InputError) as err:
        datasets.load_population_file(ours, weights="respondents")
    assert err.value.field == "weights"


def test_load_population_file_bad_format(tmp_path):
    path = write_table(tmp_path / "other.csv", {"id": ["1"], "score": ["2"]})
    with pytest.raises(InputError) as err:
        datasets.load_population_file(path)
    assert err.value.field == "format"
    with pytest.raises(InputError) as err:
        datasets.load_population_file(path, format="excel")
    assert err.value.field == "format"


def test_lera_reader_names_bad_columns(tmp_path):
    path = write_table(tmp_path / "lera.csv", {"country": ["X", "Y"], "rel": ["1", "2"],
                                               "nonrel": ["1", "oops"],
                                               "a_div_rel": ["0", "0"],
                                               "a_div_nonrel": ["0", "0"]})
    with pytest.raises(InputError) as err:
        datasets.read_lera_csv(path)
    assert err.value.field == "nonrel"


def test_ess8_individual_table_reads():
    pop = datasets.read_lera_csv(shared_file(ESS_ALL))
    assert (pop.n, pop.k, pop.m) == (39939, 1, 2)
    assert len(set(pop.agents)) == pop.n
    assert pop.values == ("rel", "nonrel") and pop.alternatives == ("div",)
