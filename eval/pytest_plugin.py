"""pytest plugin: gate your own test suite on robustness regressions.

Registered as the ``pluralguard`` pytest11 entry point, so it is active wherever
pluralguard is installed (or load it with ``-p pluralguard.eval.pytest_plugin``). It
imports nothing heavy until a test uses it. The fixture ``pluralguard_check`` runs a
suite and judges it as ``pluralguard check`` does (baseline, tolerances, limits,
coverage; :mod:`pluralguard.eval.gate`)::

    def test_no_robustness_regression(pluralguard_check):
        pluralguard_check("robustness.toml", "robustness-baseline.json")

The test fails with the gate's summary (worst regression per attack × metric, limits,
lost coverage, failed runs) and its details when ``pluralguard check`` would exit
non-zero; the whole evidence (every comparison) is written next to the test's temporary
files and named in the message. Usage problems (a missing baseline, a bad suite) raise
:class:`~pluralguard.core.errors.InputError`. Options:

``--pluralguard-update``
    Regenerate the baselines instead of checking them. Like pytest-regressions'
    ``--force-regen``, a test whose baseline changed (or was created) then *fails*,
    saying what changed, so a regeneration is never mistaken for a pass; rerun without
    the option to check.
``--pluralguard-jobs N``
    Worker processes for the suites (default 1: runs in the test process). Plugins the
    suite names (``plugins = [...]``) load in every worker; a mechanism registered only
    by a ``conftest.py`` is visible with 1 job only.
``--pluralguard-strict``
    Grid points that do not apply fail the test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

#: Most lines of details in a failure message (the JSON evidence has everything).
DETAIL_LINES = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pluralguard", "pluralguard robustness gate")
    group.addoption("--pluralguard-update", action="store_true", default=False,
                    help="regenerate pluralguard baselines (tests whose baseline changed "
                    "then fail)")
    group.addoption("--pluralguard-jobs", type=int, default=1, metavar="N",
                    help="worker processes for pluralguard suites (default 1)")
    group.addoption("--pluralguard-strict", action="store_true", default=False,
                    help="grid points that do not apply fail the test")


def _message(text: str, details: str, evidence: Path | None) -> str:
    lines = details.splitlines()
    if len(lines) > DETAIL_LINES:
        lines = [*lines[:DETAIL_LINES], f"… {len(lines) - DETAIL_LINES} more lines"]
    parts = [text, "details:\n" + "\n".join(lines) if lines else ""]
    if evidence is not None:
        parts.append(f"every comparison: {evidence}")
    return "\n\n".join(p for p in parts if p)


@pytest.fixture
def pluralguard_check(request: pytest.FixtureRequest, tmp_path: Path
                      ) -> Callable[..., Any]:
    """``check(suite, baseline=None, *, only=None, strict=None, **run_options)``: fail
    the test when the gate fails.

    ``suite`` is a path (relative paths from pytest's root directory) or a
    :class:`~pluralguard.eval.suite.Suite`; ``baseline`` a path (None: the suite's
    limits only); ``only`` a mapping such as ``{"attack": ["sybil"]}``
    (:meth:`~pluralguard.eval.suite.Suite.restrict`); ``run_options`` go to
    :func:`~pluralguard.eval.runner.run_suite` (e.g. ``executor="dask"``). Returns the
    :class:`~pluralguard.eval.gate.GateResult`, or the
    :class:`~pluralguard.eval.gate.BaselineUpdate` under ``--pluralguard-update``.
    """
    config = request.config

    def check(suite: Any, baseline: str | Path | None = None, *,
              only: Mapping[str, Sequence[str]] | None = None, strict: bool | None = None,
              **run_options: Any) -> Any:
        from pluralguard.eval import gate, gate_report
        from pluralguard.eval.jsonio import write_json
        from pluralguard.eval.suite import Suite, load_suite

        root = Path(config.rootpath)
        if not isinstance(suite, Suite):
            suite = load_suite(root / suite)
        if only:
            suite = suite.restrict(only)
        if strict is None:
            strict = config.getoption("pluralguard_strict")
        options = {"jobs": config.getoption("pluralguard_jobs"), "progress": False,
                   **run_options}
        if baseline is not None and config.getoption("pluralguard_update"):
            update = gate.make_baseline(suite, root / baseline, out=tmp_path / "baseline",
                                        **options)
            text = gate_report.update_text(update)
            if not update.written:
                pytest.fail(_message(text, gate_report.summary_text(update.gate), None),
                            pytrace=False)
            if update.changes.any:
                pytest.fail(f"{text}\n\nthe baseline was regenerated: check the changes, "
                            "then rerun without --pluralguard-update", pytrace=False)
            return update
        result = gate.check(suite, None if baseline is None else root / baseline,
                            out=tmp_path / "check", strict=strict, **options)
        if not result.ok:
            evidence = tmp_path / "pluralguard-check.json"
            write_json(evidence, gate_report.evidence(result))
            pytest.fail(_message(gate_report.summary_text(result),
                                 gate_report.details_text(result), evidence), pytrace=False)
        return result

    return check
