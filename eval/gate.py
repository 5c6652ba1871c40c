"""CI gate: store a suite's metrics as a baseline; rerun and fail on what got worse.

``pluralguard baseline SUITE.toml -o BASELINE.json`` runs the suite and stores, for
every grid point, its gated metrics (:mod:`~pluralguard.eval.criteria`), keyed by the
point's identity (dataset, mechanism, attack, budget, defense, seed labels), and the
points that did not apply, with the reason. ``pluralguard check SUITE.toml [--baseline
BASELINE.json]`` reruns the suite and judges every grid point:

* **compared** — a baseline point with a row now: every gated metric is compared
  (regressed / improved / ok, :mod:`~pluralguard.eval.criteria`);
* **not in baseline** — a new grid point (a defense was added): reported, not a failure;
  adding points never invalidates the others;
* **lost coverage** — a baseline point with a row that has none now (it did not apply,
  or it left the grid): a failure, never silence;
* **not applicable** — listed with the reason; a failure under ``--strict``;
* **failed** — its run raised: exit 3, naming the grid point;
* **limits** — every ``[[limits]]`` entry, with or without a baseline.

A baseline must be whole: an empty ``points`` list, a point without a gated metric, or a
point count that disagrees with the grid it was made from is a usage error, as is a
baseline that does not gate a metric the suite gates. ``--only`` (:meth:`Suite.restrict
<pluralguard.eval.suite.Suite.restrict>`) checks a subset: baseline points outside it
are not expected; ``baseline --only`` updates just those points of an existing baseline.

Exit codes (:attr:`GateResult.exit_code`): 0 pass; 1 a regression, a limit violated or
measured nowhere, lost coverage (or a point not applicable, under ``--strict``); 2 usage
error (before anything runs: missing or invalid files, unwritable outputs); 3 a run
failed. Writing the baseline (:func:`make_baseline`) checks its output path before
running, refuses to overwrite a file that is not a baseline, does not write when a run
failed, and reports what changed (:class:`BaselineUpdate`).

It is one piece above ~500 lines because the baseline's format and the comparison
against it change together: a field read from a baseline is a field the evaluation
judges, and both check the same identities.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralguard.core.errors import InputError

from .columns import IDENTITY
from .criteria import Limit, Tolerance
from .jsonio import json_ready, write_json
from .metrics import METRICS
from .runner import RunResult, run_suite
from .suite import Suite

#: Format tag of baseline files.
FORMAT = "pluralguard-baseline/2"
_OLD_FORMATS = ("pluralguard-baseline/1",)

#: Exit codes of the gate (usage errors, 2, are the command line's).
EXIT_PASS, EXIT_FAIL, EXIT_RUN_FAILED = 0, 1, 3

Identity = dict[str, Any]


def point_key(identity: Identity) -> tuple[str, ...]:
    """A grid point's key: its identity labels (budget by value)."""
    return tuple(repr(_number(identity[c])) if c == "budget" else str(identity[c])
                 for c in IDENTITY)


def point_text(identity: Identity) -> str:
    """``dataset/mechanism/attack@budget/defense/seed s``."""
    return (f"{identity['dataset']}/{identity['mechanism']}/{identity['attack']}@"
            f"{_number(identity['budget']):g}/{identity['defense']}/seed {identity['seed']}")


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str) and value in ("inf", "Infinity", "-inf", "-Infinity"):
        return float(value.replace("inity", ""))
    return float(value)


def _identity(record: dict[str, Any]) -> Identity:
    return {c: record[c] for c in IDENTITY}


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class Comparison:
    """One gated metric of one grid point against its baseline value."""

    point: Identity
    metric: str
    baseline: float
    now: float
    tolerance: Tolerance
    verdict: str  # "ok", "regressed" or "improved"

    @property
    def allowed(self) -> float:
        """The allowed worsening from the baseline value."""
        return self.tolerance.allowed(self.baseline)

    @property
    def delta(self) -> float:
        """now − baseline."""
        return self.now - self.baseline

    @property
    def worse_by(self) -> float:
        """How much worse than the baseline (negative: better); inf when it became or
        stopped being undefined."""
        if math.isnan(self.baseline) != math.isnan(self.now):
            return math.inf
        return self.delta if METRICS[self.metric].worse == "higher" else -self.delta


@dataclass(frozen=True)
class LimitCheck:
    """One limit at one grid point it matches: ``ok``, ``violated``, ``undefined`` (NaN),
    ``not applicable`` or ``failed``."""

    limit: Limit
    point: Identity
    value: float
    verdict: str


@dataclass(frozen=True)
class Skipped:
    """A grid point without a row: why (``reason``)."""

    point: Identity
    reason: str


@dataclass(frozen=True)
class GateResult:
    """Everything :func:`check` judged (module doc).

    Attributes
    ----------
    suite : Suite
    run : RunResult
    baseline : str or None
        The baseline file (None: limits only).
    comparisons : list of Comparison
        Every gated metric of every compared grid point, in grid order.
    limit_checks : list of LimitCheck
    lost : list of Skipped
        Baseline points with a row that have none now.
    new : list of dict
        Grid points not in the baseline.
    not_applicable : list of Skipped
    failed : list of Skipped
        ``reason`` = ``Type: message`` of the exception.
    strict : bool
        Whether not applicable points fail.
    """

    suite: Suite
    run: RunResult
    baseline: str | None
    comparisons: list[Comparison] = field(default_factory=list)
    limit_checks: list[LimitCheck] = field(default_factory=list)
    lost: list[Skipped] = field(default_factory=list)
    new: list[Identity] = field(default_factory=list)
    not_applicable: list[Skipped] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)
    strict: bool = False

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "regressed"]

    @property
    def improvements(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "improved"]

    @property
    def violations(self) -> list[LimitCheck]:
        return [c for c in self.limit_checks if c.verdict == "violated"]

    @property
    def unmeasured_limits(self) -> list[Limit]:
        """Limits that match grid points but are measured (a defined value) at none.
        (A limit matching no point of an ``--only`` subset is not judged.)"""
        matched = {c.limit.key for c in self.limit_checks}
        measured = {c.limit.key for c in self.limit_checks if c.verdict in ("ok", "violated")}
        return [limit for limit in self.suite.criteria.limits
                if limit.key in matched and limit.key not in measured]

    @property
    def exit_code(self) -> int:
        """0 pass, 1 failure, 3 a run failed (module doc)."""
        if self.failed:
            return EXIT_RUN_FAILED
        if (self.regressions or self.violations or self.unmeasured_limits or self.lost
                or (self.strict and self.not_applicable)):
            return EXIT_FAIL
        return EXIT_PASS

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_PASS


# ---------------------------------------------------------------- baselines
def check_output_path(path: str | Path, key: str) -> Path:
    """Check that a file can be written at ``path`` (before anything runs).

    Raises
    ------
    InputError
        ``key``: the path is a directory, its directory is missing, or not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(key, f"{str(path)!r} is a directory", "give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(key, f"directory {str(parent)!r} does not exist",
                         f"create it first (mkdir -p {parent})")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(key, f"{str(path)!r} is not writable", "choose a writable path")
    return path


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError("baseline", f"{str(path)!r} is not valid JSON ({err})",
                         "rebuild it with pluralguard baseline") from None
    except OSError as err:
        raise InputError("baseline", f"cannot read {str(path)!r} ({err.strerror})",
                         "check the path") from None


def _fix(suite: Suite, path: Path) -> str:
    return f"rebuild it: pluralguard baseline {suite.source} -o {path}"


def validate_baseline(doc: Any, path: Path, suite: Suite) -> dict[str, Any]:
    """Check a parsed baseline document is whole and fits the suite's gate (module doc)."""
    fix = _fix(suite, path)
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, *_OLD_FORMATS):
        raise InputError("baseline", f"{str(path)!r} is not a pluralguard baseline", fix)
    if doc["format"] in _OLD_FORMATS:
        raise InputError("baseline", f"{str(path)!r} has the old format {doc['format']!r} "
                         "(one digest for the whole suite)", fix)
    points, na = doc.get("points"), doc.get("not_applicable", [])
    metrics = doc.get("metrics")
    if not isinstance(points, list) or not isinstance(na, list) or not isinstance(
            metrics, list):
        raise InputError("baseline", f"{str(path)!r} lacks its points, not_applicable or "
                         "metrics list", fix)
    if not points:
        raise InputError("baseline", f"{str(path)!r} has no measured grid point (an empty "
                         "baseline gates nothing)", fix)
    seen: set[tuple[str, ...]] = set()
    for i, point in enumerate([*points, *na]):
        where = f"{str(path)!r} entry {i}"
        try:
            key = point_key(point)
        except (KeyError, TypeError, ValueError):
            raise InputError("baseline", f"{where} is not a grid point (it needs "
                             f"{', '.join(IDENTITY)})", fix) from None
        if key in seen:
            raise InputError("baseline", f"{where} ({point_text(point)}) is listed twice",
                             fix)
        seen.add(key)
        if i >= len(points):
            continue
        values = point.get("metrics")
        if not isinstance(values, dict):
            raise InputError("baseline", f"{where} ({point_text(point)}) has no metrics", fix)
        lacking = [m for m in metrics if m not in values]
        if lacking:
            raise InputError("baseline", f"is partial: {point_text(point)} lacks "
                             f"{', '.join(lacking)}", fix)
        bad = [m for m, v in values.items() if not (
            v is None or v in ("inf", "-inf")
            or (isinstance(v, (int, float)) and not isinstance(v, bool)))]
        if bad:
            raise InputError("baseline", f"{point_text(point)} has a non-numeric "
                             f"{bad[0]}", fix)
    if doc.get("grid") != len(points) + len(na):
        raise InputError("baseline", f"is partial: it lists {len(points) + len(na)} grid "
                         f"points, and was made from {doc.get('grid')}", fix)
    missing = [m for m in suite.criteria.metrics if m not in metrics]
    if missing:
        raise InputError("baseline", f"{str(path)!r} does not gate {', '.join(missing)}, "
                         "which the suite gates", fix)
    return doc


def read_baseline(path: str | Path, suite: Suite) -> dict[str, Any]:
    """Read a baseline file and check it (:func:`validate_baseline`).

    Raises
    ------
    InputError
        ``baseline``: missing, unreadable, not a baseline, old format, empty or partial.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("baseline", f"no such file {str(path)!r}",
                         f"create it with: pluralguard baseline {suite.source} -o {path}")
    return validate_baseline(_load_json(path), path, suite)


def baseline_document(suite: Suite, run: RunResult,
                      keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The baseline of a run (JSON-ready). ``keep``: a previous baseline whose points
    outside the suite's ``--only`` subset are carried over."""
    metrics = list(suite.criteria.metrics)
    points = [{**_identity(row), "metrics": {m: row.get(m, math.nan) for m in metrics}}
              for row in run.results.to_dict("records")]
    na = [{**_identity(s), "reason": s["reason"]} for s in run.not_applicable]
    if keep is not None:
        points = [p for p in keep["points"] if not selected(suite, p)] + points
        na = [s for s in keep.get("not_applicable", []) if not selected(suite, s)] + na
    return json_ready({"format": FORMAT, "suite": {"name": suite.name}, "metrics": metrics,
                       "grid": len(points) + len(na), "points": points,
                       "not_applicable": na})


def selected(suite: Suite, identity: Identity) -> bool:
    """Whether a (baseline) point is in the suite's ``--only`` subset."""
    names: dict[str, set[Any]] = {k: {identity[k]} for k in
                                  ("dataset", "mechanism", "attack", "defense")}
    for spec in suite.mechanisms:
        if spec.label == identity["mechanism"]:
            names["mechanism"].add(spec.mechanism.kind)
    for attack in suite.attacks:
        if attack.label == identity["attack"]:
            names["attack"].add(attack.name)
    return all(names[key] & set(values) for key, values in suite.only)


@dataclass(frozen=True)
class BaselineChanges:
    """What writing a baseline changed: grid points added and removed, metric values
    changed (``(point, metric, old, new)``)."""

    created: bool
    added: list[Identity] = field(default_factory=list)
    removed: list[Identity] = field(default_factory=list)
    changed: list[tuple[Identity, str, float, float]] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return self.created or bool(self.added or self.removed or self.changed)


def baseline_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> BaselineChanges:
    """Compare two baseline documents (``old`` None: created)."""
    if old is None:
        return BaselineChanges(True, [_identity(p) for p in new["points"]])
    before = {point_key(p): p for p in old["points"]}
    after = {point_key(p): p for p in new["points"]}
    changed = []
    for key, point in after.items():
        if key not in before:
            continue
        for metric, value in point["metrics"].items():
            a, b = _number(before[key]["metrics"].get(metric)), _number(value)
            if not (a == b or (math.isnan(a) and math.isnan(b))):
                changed.append((_identity(point), metric, a, b))
    return BaselineChanges(
        False, [_identity(p) for k, p in after.items() if k not in before],
        [_identity(p) for k, p in before.items() if k not in after], changed)


@dataclass(frozen=True)
class BaselineUpdate:
    """What :func:`make_baseline` did.

    Attributes
    ----------
    path : Path
    written : bool
        False when a run failed (then nothing is written).
    changes : BaselineChanges
    gate : GateResult
        The run judged without a baseline: its failed runs, not applicable points and
        limits.
    """

    path: Path
    written: bool
    changes: BaselineChanges
    gate: GateResult


@contextmanager
def _results_dir(out: str | Path | None) -> Iterator[Path]:
    if out is not None:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="pluralguard-gate-") as tmp:
        yield Path(tmp)


def _run(suite: Suite, out: str | Path | None, run_options: dict[str, Any]) -> RunResult:
    with _results_dir(out) as directory:
        return run_suite(suite, directory, report=False, **run_options)


def make_baseline(suite: Suite, path: str | Path, *, out: str | Path | None = None,
                  **run_options: Any) -> BaselineUpdate:
    """Run a suite and write its baseline to ``path`` (module doc).

    Parameters
    ----------
    suite : Suite
        A restricted suite (``--only``) updates only its points of an existing baseline.
    path : path
        The baseline file; checked before anything runs.
    out : path, optional
        Keep the run's results there (default a temporary directory).
    **run_options
        Passed to :func:`~pluralguard.eval.runner.run_suite` (``executor``, ``jobs``, …).

    Raises
    ------
    InputError
        The path cannot be written, holds a file that is not a baseline, or no grid point
        produced a row.
    """
    path = check_output_path(path, "--output")
    previous = None
    if path.exists():
        doc = _load_json(path) if path.stat().st_size else None
        if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, *_OLD_FORMATS):
            raise InputError("--output", f"{str(path)!r} exists and is not a pluralguard "
                             "baseline; refusing to overwrite it",
                             "remove it or choose another path")
        try:
            previous = validate_baseline(doc, path, suite)
        except InputError:
            if suite.only:
                raise
            previous = None  # an old or broken baseline is replaced whole
    if suite.only and previous is None:
        raise InputError("--only", "updates part of an existing baseline, and there is none "
                         f"at {str(path)!r}", "write the whole baseline first (without --only)")
    run = _run(suite, out, run_options)
    gate = evaluate(suite, run, None)
    if gate.failed:
        return BaselineUpdate(path, False, BaselineChanges(previous is None), gate)
    doc = baseline_document(suite, run, previous if suite.only else None)
    if not doc["points"]:
        raise InputError("suite", f"no grid point of suite {suite.name!r} produced a row "
                         f"({len(run.not_applicable)} not applicable): there is nothing to "
                         "gate", "add attacks or mechanisms that apply to each other")
    write_json(path, doc)
    return BaselineUpdate(path, True, baseline_changes(previous, doc), gate)


# ---------------------------------------------------------------- evaluation
def _compare(point: Identity, metric: str, base: Any, now: Any,
             tolerance: Tolerance) -> Comparison:
    b, v = _number(base), _number(now)
    c = Comparison(point, metric, b, v, tolerance, "ok")
    if math.isnan(b) or math.isnan(v):
        verdict = "regressed" if math.isnan(b) != math.isnan(v) else "ok"
    elif c.worse_by > c.allowed:
        verdict = "regressed"
    elif -c.worse_by > c.allowed:
        verdict = "improved"
    else:
        verdict = "ok"
    return Comparison(point, metric, b, v, tolerance, verdict)


def evaluate(suite: Suite, run: RunResult, baseline: dict[str, Any] | None, *,
             baseline_path: str | None = None, strict: bool = False) -> GateResult:
    """Judge a run of ``suite`` against a baseline document (or None) and its limits."""
    rows = {point_key(r): r for r in run.results.to_dict("records")}
    na_now = {point_key(s): s["reason"] for s in run.not_applicable}
    failed_now = {point_key(s): s["error"] for s in run.failed}
    base = {point_key(p): p for p in baseline["points"]} if baseline else {}
    criteria = suite.criteria
    result = GateResult(suite, run, baseline_path, strict=strict)
    grid = suite.grid()
    for p in grid:
        identity, key = p.identity, point_key(p.identity)
        if key in failed_now:
            result.failed.append(Skipped(identity, failed_now[key]))
        elif key in na_now:
            if key in base:
                result.lost.append(Skipped(identity, f"did not apply: {na_now[key]}"))
            else:
                result.not_applicable.append(Skipped(identity, na_now[key]))
        elif baseline is not None and key not in base:
            result.new.append(identity)
        elif baseline is not None:
            row, values = rows[key], base[key]["metrics"]
            names = (p.attack.label, p.attack.name)
            result.comparisons.extend(
                _compare(identity, m, values[m], row.get(m), criteria.tolerance(m, names))
                for m in criteria.metrics)
    in_grid = {point_key(p.identity) for p in grid}
    for key, point in base.items():
        if key not in in_grid and selected(suite, point):
            result.lost.append(Skipped(_identity(point), "not in the suite's grid any "
                                       "more (removed, relabelled or excluded)"))
    for limit in criteria.limits:
        for p in grid:
            if not limit.matches(p.names):
                continue
            key = point_key(p.identity)
            if key in failed_now:
                verdict, value = "failed", math.nan
            elif key in na_now:
                verdict, value = "not applicable", math.nan
            else:
                value = _number(rows[key].get(limit.metric))
                verdict = ("undefined" if math.isnan(value)
                           else "violated" if limit.violated(value) else "ok")
            result.limit_checks.append(LimitCheck(limit, p.identity, value, verdict))
    return result


def check(suite: Suite, baseline: str | Path | None = None, *,
          out: str | Path | None = None, strict: bool = False,
          **run_options: Any) -> GateResult:
    """Rerun a suite and judge it against a baseline and its limits (module doc).

    The baseline is read and checked before anything runs.

    Raises
    ------
    InputError
        A bad baseline, or nothing to check (no baseline and no limits).
    """
    if baseline is None and not suite.criteria.limits:
        raise InputError("--baseline", f"nothing to check: suite {suite.name!r} has no "
                         "[[limits]] and no baseline was given",
                         "pass --baseline BASELINE.json or add [[limits]] to the suite")
    doc = read_baseline(baseline, suite) if baseline is not None else None
    run = _run(suite, out, run_options)
    return evaluate(suite, run, doc, strict=strict,
                    baseline_path=None if baseline is None else str(baseline))
