"""pytest plugin: gate your own test suite on robustness regressions.

Registered as the ``pluralguard`` pytest11 entry point, so it is active wherever
pluralguard is installed (or load it with ``-p pluralguard.eval.pytest_plugin``). It
imports nothing heavy until a test uses it. The fixture ``pluralguard_check`` runs a
suite and compares it with a baseline, as ``pluralguard check`` does::

    def test_no_robustness_regression(pluralguard_check):
        pluralguard_check("ci/suite.toml", "ci/baseline.json")

The test fails with the table of regressions when a metric got worse than its
tolerance, and errors (:class:`~pluralguard.core.errors.InputError`) on usage problems
(a missing baseline, a baseline of another suite). Options:

``--pluralguard-update``
    Write the baselines instead of checking them (after an intended change).
``--pluralguard-jobs N``
    Worker processes for the suites (default 1: runs in the test process, so
    mechanisms, attacks and defenses registered by the tests are visible).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pluralguard", "pluralguard robustness gate")
    group.addoption("--pluralguard-update", action="store_true", default=False,
                    help="write pluralguard baselines instead of checking them")
    group.addoption("--pluralguard-jobs", type=int, default=1, metavar="N",
                    help="worker processes for pluralguard suites (default 1)")


@pytest.fixture
def pluralguard_check(request: pytest.FixtureRequest, tmp_path: Path
                      ) -> Callable[..., Any]:
    """``check(suite, baseline, **run_options)``: fail the test on robustness regressions.

    ``suite`` is a path (relative paths from pytest's root directory) or a
    :class:`~pluralguard.eval.suite.Suite`; ``run_options`` go to
    :func:`~pluralguard.eval.runner.run_suite` (e.g. ``executor="dask"``). Returns the
    :class:`~pluralguard.eval.gate.GateResult` (None when the baseline was written).
    """
    config = request.config

    def check(suite: Any, baseline: str | Path, **run_options: Any) -> Any:
        from pluralguard.eval import gate
        from pluralguard.eval.suite import Suite, load_suite

        root = Path(config.rootpath)
        if not isinstance(suite, Suite):
            suite = load_suite(root / suite)
        baseline = root / baseline
        options = {"jobs": config.getoption("pluralguard_jobs"), "progress": False,
                   **run_options}
        if config.getoption("pluralguard_update"):
            gate.make_baseline(suite, baseline, out=tmp_path / "baseline", **options)
            return None
        result = gate.check(suite, baseline, out=tmp_path / "check", **options)
        if not result.ok:
            pytest.fail(f"{len(result.regressions)} robustness regressions of suite "
                        f"{suite.name!r} against {baseline}:\n"
                        f"{gate.regression_table(result.regressions)}", pytrace=False)
        return result

    return check
