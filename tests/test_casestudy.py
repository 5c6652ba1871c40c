"""Case studies: numbers on the EVS table and byte-for-byte reproducible documents."""

from __future__ import annotations

import pytest

from pluralguard.core import datasets
from pluralguard.eval.casestudy import casestudy, run_casestudy
from pluralguard.eval.cli import main


def test_evs_numbers_follow_the_bounds():
    study = run_casestudy(datasets.load("evs2017"))
    t = study.table.set_index("setting")
    groups = [t.loc[f"agreements {q}", "n_groups"] for q in ("Q1", "Q2", "Q3", "max")]
    assert groups == sorted(groups, reverse=True) and groups[-1] == 1
    # at the maximum bound every declaration lies in every set: one group at the mean,
    # which is exactly the ℓ2 consensus
    assert t.loc["agreements max", "utility_mean"] == pytest.approx(
        t.loc["consensus p=2", "utility_mean"], abs=1e-9)
    assert study.curve["n_groups"].is_monotonic_decreasing
    assert set(study.transition) == {"X", "W"}


def test_documents_are_byte_reproducible(tmp_path):
    a = casestudy(["evs2017"], tmp_path / "a", robustness=False)
    b = casestudy(["evs2017"], tmp_path / "b", robustness=False)
    assert a.read_bytes() == b.read_bytes()
    figs = sorted(p.name for p in (tmp_path / "a" / "figures").glob("*.png"))
    assert figs == ["evs2017_embedding.png", "evs2017_groups.png", "evs2017_utilities.png"]
    for name in figs:
        assert (tmp_path / "a" / "figures" / name).read_bytes() == \
            (tmp_path / "b" / "figures" / name).read_bytes()


@pytest.mark.slow
def test_robustness_part_is_reproducible(tmp_path):
    a = casestudy(["evs2017"], tmp_path / "a", jobs=1)
    b = casestudy(["evs2017"], tmp_path / "b", jobs=2)
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert "robustness at Q2" in text and "breakdown" in text


def test_cli_needs_the_ess8_table(capsys, tmp_path):
    assert main(["casestudy", "ess8", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--population" in err
    assert main(["casestudy", "nope", "--out", str(tmp_path)]) == 2
