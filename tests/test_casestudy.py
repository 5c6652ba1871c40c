"""Case studies: numbers on the EVS table and byte-for-byte reproducible documents."""

from __future__ import annotations

import pandas as pd
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


def test_grid_points_without_a_result_are_named_with_their_reason():
    from pluralguard.eval.casestudy_robustness import missing_lines

    missing = pd.DataFrame([
        {"mechanism": "consensus-p2", "attack": "bridge", "defense": "none",
         "outcome": "not applicable", "reason": "mechanism: it forms no groups", "runs": 3},
        {"mechanism": "agreements", "attack": "sybil", "defense": "randomized_threshold",
         "outcome": "failed", "reason": "InputError: max_links: too many links", "runs": 3},
        {"mechanism": "agreements", "attack": "exclude", "defense": "randomized_threshold",
         "outcome": "failed", "reason": "InputError: max_links: too many links", "runs": 3}])
    lines = missing_lines(missing)
    assert "`bridge` against consensus-p2 (3 runs): it forms no groups" in lines[2]
    assert lines[3].startswith("* **failed** — agreements, 6 runs (`exclude` × "
                               "`randomized_threshold`, `sybil` × `randomized_threshold`)")
    assert missing_lines(missing.iloc[:0]) == ["Every grid point ran.", ""]
