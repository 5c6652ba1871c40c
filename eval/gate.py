"""CI gate: store a suite's metrics as a baseline; rerun and fail on regressions.

``pluralguard baseline SUITE.toml -o BASELINE.json`` runs the suite and stores, for every
grid point, every gated metric (those with a direction in
:data:`~pluralguard.eval.metrics.METRICS`), with the suite's digest (a hash of its grid,
:attr:`~pluralguard.eval.suite.Suite.digest`). ``pluralguard check SUITE.toml --baseline
BASELINE.json`` reruns the suite and compares: a metric *regresses* when it got worse
than the baseline by more than its tolerance — an increase for ``worse = "higher"``, a
decrease for ``worse = "lower"`` — or when it became (or stopped being) undefined (NaN),
or when a grid point that had a row has none (its run became not applicable).
Tolerances are absolute, per metric
(:data:`~pluralguard.eval.suite.DEFAULT_TOLERANCES`, overridable in the suite's
``[tolerances]``). A baseline from another suite is a usage error.

Exit codes of ``check``: 0 no regression, 1 regressions (printed as a table), 2 usage
error (missing or unreadable files, a baseline from another suite).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pluralguard.core.errors import InputError

from .metrics import METRICS
from .runner import RunResult, json_ready, run_suite, write_json
from .scenario import IDENTITY
from .suite import Suite

#: Format tag of baseline files.
FORMAT = "pluralguard-baseline/1"


@dataclass(frozen=True)
class Regression:
    """One metric of one grid point that got worse than its baseline beyond tolerance."""

    point: dict[str, Any]
    metric: str
    baseline: float
    now: float
    tolerance: float


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`check`.

    Attributes
    ----------
    regressions : list of Regression
    improved : int
        Metric values better than the baseline beyond tolerance (refresh the baseline).
    compared : int
        Metric values compared.
    run : RunResult
    """

    regressions: list[Regression]
    improved: int
    compared: int
    run: RunResult

    @property
    def ok(self) -> bool:
        return not self.regressions


def _point_key(identity: dict[str, Any]) -> tuple:
    return tuple(repr(float(identity[c])) if c == "budget" else str(identity[c])
                 for c in IDENTITY)


def _metrics(results: pd.DataFrame) -> list[str]:
    return [m for m in results.columns if m in METRICS and METRICS[m].worse != "none"]


def baseline_document(suite: Suite, results: pd.DataFrame) -> dict[str, Any]:
    """The baseline of a suite's results (JSON-ready; see the module doc)."""
    metrics = _metrics(results)
    points = [{**{c: row[c] for c in IDENTITY}, "metrics": {m: row[m] for m in metrics}}
              for row in results.to_dict("records")]
    return json_ready({"format": FORMAT, "suite": {"name": suite.name, "digest": suite.digest},
                       "metrics": metrics, "points": points})


def read_baseline(path: str | Path, suite: Suite) -> dict[str, Any]:
    """Read a baseline file and check it was made from ``suite``.

    Raises
    ------
    InputError
        ``baseline`` when the file is missing, unreadable, not a baseline, or made from
        another suite.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("baseline", f"no such file {str(path)!r}",
                         f"create it with: pluralguard baseline {suite.source} -o {path}")
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError("baseline", f"{str(path)!r} is not valid JSON ({err})",
                         "rebuild it with pluralguard baseline") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError("baseline", f"{str(path)!r} is not a pluralguard baseline",
                         "rebuild it with pluralguard baseline")
    made = doc.get("suite") or {}
    if made.get("digest") != suite.digest:
        raise InputError("baseline", f"{str(path)!r} was made from a different suite "
                         f"({made.get('name')!r}, digest {made.get('digest')}; this suite's "
                         f"grid has digest {suite.digest})",
                         f"rebuild it: pluralguard baseline {suite.source} -o {path}")
    return doc


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def compare(suite: Suite, baseline: dict[str, Any], results: pd.DataFrame
            ) -> tuple[list[Regression], int, int]:
    """Regressions, improvements and comparisons of ``results`` against a baseline."""
    now = {_point_key(row): row for row in results.to_dict("records")}
    regressions, improved, compared = [], 0, 0
    for point in baseline["points"]:
        identity = {c: point[c] for c in IDENTITY}
        row = now.get(_point_key(identity))
        if row is None:
            regressions.append(Regression(identity, "(row)", math.nan, math.nan, 0.0))
            continue
        for metric, base in point["metrics"].items():
            if metric not in METRICS or METRICS[metric].worse == "none":
                continue
            b, v = _number(base), float(row.get(metric, math.nan))
            tol = suite.tolerances.get(metric, 0.0)
            compared += 1
            if math.isnan(b) or math.isnan(v):
                if math.isnan(b) != math.isnan(v):
                    regressions.append(Regression(identity, metric, b, v, tol))
                continue
            worse = v - b if METRICS[metric].worse == "higher" else b - v
            if worse > tol:
                regressions.append(Regression(identity, metric, b, v, tol))
            elif -worse > tol:
                improved += 1
    return regressions, improved, compared


def regression_table(regressions: list[Regression]) -> str:
    """The regressions as a text table (grid point, metric, baseline, now, tolerance)."""
    def point(p: dict[str, Any]) -> str:
        return (f"{p['dataset']}/{p['mechanism']}/{p['attack']}@{_number(p['budget']):g}/"
                f"{p['defense']}/seed {p['seed']}")

    table = pd.DataFrame(
        [{"grid point": point(r.point), "metric": r.metric,
          "worse": METRICS[r.metric].worse if r.metric in METRICS else "missing",
          "baseline": f"{r.baseline:.6g}", "now": f"{r.now:.6g}",
          "tolerance": f"{r.tolerance:g}"} for r in regressions])
    return table.to_string(index=False)


@contextmanager
def _results_dir(out: str | Path | None) -> Iterator[Path]:
    if out is not None:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="pluralguard-gate-") as tmp:
        yield Path(tmp)


def make_baseline(suite: Suite, path: str | Path, *, out: str | Path | None = None,
                  **run_options: Any) -> Path:
    """Run a suite and write its baseline to ``path``.

    Parameters
    ----------
    suite : Suite
    path : path
        The baseline file to write.
    out : path, optional
        Keep the run's results there (default a temporary directory).
    **run_options
        Passed to :func:`~pluralguard.eval.runner.run_suite` (``executor``, ``jobs``, …).
    """
    path = Path(path)
    with _results_dir(out) as directory:
        run = run_suite(suite, directory, report=False, **run_options)
    write_json(path, baseline_document(suite, run.results))
    return path


def check(suite: Suite, baseline: str | Path, *, out: str | Path | None = None,
          **run_options: Any) -> GateResult:
    """Rerun a suite and compare it with a baseline (module doc).

    The baseline is read (and matched to the suite) before anything runs.
    """
    doc = read_baseline(baseline, suite)
    with _results_dir(out) as directory:
        run = run_suite(suite, directory, report=False, **run_options)
    regressions, improved, compared = compare(suite, doc, run.results)
    return GateResult(regressions, improved, compared, run)
