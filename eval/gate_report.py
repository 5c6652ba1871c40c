"""What the CI gate says: the terminal summary and details, JUnit XML, JSON evidence.

* :func:`summary_text` — first what decides: the verdict and exit code, the worst
  regression per attack × metric (baseline, now, delta, allowed, where; improvements
  alongside), limits, lost coverage, failed runs, points not applicable and points not in
  the baseline;
* :func:`details_text` — then every regression and limit violation;
* :func:`junit_xml` — one test case per grid point judged (plus baseline points that
  left the grid) and one per limit: a regression, lost coverage or violation is a
  ``<failure>``, a failed run an ``<error>``, a point not applicable (without
  ``--strict``) or not in the baseline ``<skipped>``;
* :func:`evidence` — the canonical record (``--json``): every comparison with its
  baseline value, new value, tolerance and verdict, every limit check, every point not
  compared and why;
* :func:`update_text` — what ``baseline`` changed (like pytest-regressions'
  ``--force-regen``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import pandas as pd

from .gate import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_RUN_FAILED,
    BaselineUpdate,
    Comparison,
    GateResult,
    point_key,
    point_text,
)
from .jsonio import json_ready
from .metrics import METRICS

#: Most entries listed per section of the summary (the details and --json have all).
LISTED = 10


def _number(value: float, signed: bool = False) -> str:
    """4 significant digits (with a sign when ``signed``), ``nan`` for NaN."""
    if math.isnan(value):
        return "nan"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def verdict_line(result: GateResult) -> str:
    """One line: the verdict, what decided it, and the exit code."""
    parts = []
    if result.failed:
        parts.append(f"{len(result.failed)} runs failed")
    if result.regressions:
        points = {point_key(c.point) for c in result.regressions}
        parts.append(f"{len(result.regressions)} regressions at {len(points)} grid points")
    violated = {c.limit.key for c in result.violations}
    if violated:
        parts.append(f"{len(violated)} limits violated")
    if result.unmeasured_limits:
        parts.append(f"{len(result.unmeasured_limits)} limits measured nowhere")
    if result.lost:
        parts.append(f"{len(result.lost)} baseline points lost coverage")
    if result.strict and result.not_applicable:
        parts.append(f"{len(result.not_applicable)} grid points not applicable (--strict)")
    code = result.exit_code
    if code == EXIT_PASS:
        head = "ok"
    else:
        head = "ERROR" if code == EXIT_RUN_FAILED else "FAIL"
    held = ["no regression"] if result.baseline is not None else []
    if result.suite.criteria.limits:
        held.append("every limit holds")
    what = ", ".join(parts or held)
    return f"{head}: {what} (exit {code})"


def _scope(result: GateResult) -> str:
    grid = len(result.suite.grid())
    compared = len({point_key(c.point) for c in result.comparisons})
    text = f"suite {result.suite.name!r}: {grid} grid points"
    if result.baseline is not None:
        text += (f"; {len(result.comparisons)} metric values at {compared} points compared "
                 f"with {result.baseline}")
    if result.suite.criteria.limits:
        text += f"; {len(result.suite.criteria.limits)} limits"
    extra = []
    if result.not_applicable:
        extra.append(f"{len(result.not_applicable)} not applicable")
    if result.new:
        extra.append(f"{len(result.new)} not in baseline")
    if result.improvements:
        extra.append(f"{len(result.improvements)} metric values improved beyond tolerance")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _worst_table(result: GateResult) -> str:
    """Worst regression per attack × metric, improvements alongside."""
    groups: dict[tuple[str, str], list[Comparison]] = defaultdict(list)
    for c in result.comparisons:
        groups[(c.point["attack"], c.metric)].append(c)
    rows = []
    for (attack, metric), items in groups.items():
        bad = [c for c in items if c.verdict == "regressed"]
        good = [c for c in items if c.verdict == "improved"]
        if not bad and not good:
            continue
        row: dict[str, Any] = {"attack": attack, "metric": metric,
                               "regressed": f"{len(bad)} of {len(items)}"}
        if bad:
            worst = max(bad, key=lambda c: c.worse_by)
            row |= {"baseline": _number(worst.baseline), "now": _number(worst.now),
                    "delta": _number(worst.delta, True), "allowed": _number(worst.allowed),
                    "worst at": point_text(worst.point)}
        else:
            row |= dict.fromkeys(("baseline", "now", "delta", "allowed", "worst at"), "")
        row["improved"] = str(len(good))
        row["best delta"] = (_number(max(good, key=lambda c: -c.worse_by).delta, True)
                             if good else "")
        row["_order"] = -max((c.worse_by for c in bad), default=-math.inf)
        rows.append(row)
    if not rows:
        return ""
    table = pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order")
    return table.to_string(index=False)


def _listing(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    lines = [f"{title}:"] + [f"  {item}" for item in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"  … and {len(items) - LISTED} more (see --json)")
    return lines


def _grouped(skipped: list[Any]) -> list[str]:
    """Points without a row, one line per attack × mechanism × reason."""
    groups: dict[tuple[str, str, str], int] = defaultdict(int)
    for s in skipped:
        groups[(s.point["attack"], s.point["mechanism"], s.reason)] += 1
    return [f"{attack} × {mechanism} ({count} grid points): {reason}"
            for (attack, mechanism, reason), count in groups.items()]


def _limit_lines(result: GateResult) -> list[str]:
    lines = []
    for limit in result.suite.criteria.limits:
        checks = [c for c in result.limit_checks if c.limit.key == limit.key]
        measured = [c for c in checks if c.verdict in ("ok", "violated")]
        bad = [c for c in checks if c.verdict == "violated"]
        if bad:
            worst = max(bad, key=lambda c: c.value if limit.max is not None
                        and c.value > limit.max else -c.value)
            lines.append(f"  VIOLATED {limit.title}: at {len(bad)} of {len(measured)} points,"
                         f" worst {_number(worst.value)} at {point_text(worst.point)}")
        elif not checks:
            lines.append(f"  not judged {limit.title}: no grid point of this --only subset")
        elif not measured:
            lines.append(f"  NOT MEASURED {limit.title}: no matching grid point has a value "
                         f"({len(checks)} matched; undefined, not applicable or failed)")
        else:
            lines.append(f"  ok {limit.title}: {len(measured)} points")
    return ["limits:", *lines] if lines else []


def summary_text(result: GateResult) -> str:
    """The summary (module doc)."""
    lines = [verdict_line(result), _scope(result)]
    table = _worst_table(result)
    if table:
        lines += ["", "worst regression per attack × metric (improvements alongside):", table]
    strict = "failures under --strict" if result.strict else "--strict makes them failures"
    sections = [
        _limit_lines(result),
        _listing("failed runs (exit 3)", [f"{point_text(s.point)}: {s.reason}"
                                          for s in result.failed]),
        _listing("lost coverage (in the baseline, no row now)",
                 [f"{point_text(s.point)}: {s.reason}" for s in result.lost]),
        _listing(f"not applicable ({strict})", _grouped(result.not_applicable)),
        _listing("not in baseline (refresh it with pluralguard baseline)",
                 [point_text(p) for p in result.new]),
    ]
    for section in sections:
        if section:
            lines += ["", *section]
    return "\n".join(lines)


def details_text(result: GateResult) -> str:
    """Every regression and limit violation, in grid order ("" when there is none)."""
    parts = []
    if result.regressions:
        table = pd.DataFrame([{
            "grid point": point_text(c.point), "metric": c.metric,
            "worse": METRICS[c.metric].worse, "baseline": _number(c.baseline),
            "now": _number(c.now),
            "delta": _number(c.delta, True), "allowed": _number(c.allowed),
            "tolerance": str(c.tolerance)} for c in result.regressions])
        parts.append(f"regressions ({len(result.regressions)}):\n"
                     f"{table.to_string(index=False)}")
    if result.violations:
        table = pd.DataFrame([{"limit": c.limit.title, "grid point": point_text(c.point),
                               "value": _number(c.value)} for c in result.violations])
        parts.append(f"limit violations ({len(result.violations)}):\n"
                     f"{table.to_string(index=False)}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------- JUnit
def junit_xml(result: GateResult) -> str:
    """JUnit XML: one test case per grid point judged or lost, and per limit."""
    suite_name = f"pluralguard.{result.suite.name}"
    root = ET.Element("testsuites", name="pluralguard check")
    ts = ET.SubElement(root, "testsuite", name=suite_name)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(classname: str, name: str) -> ET.Element:
        counts["tests"] += 1
        return ET.SubElement(ts, "testcase", classname=classname, name=name)

    def mark(element: ET.Element, tag: str, message: str, text: str = "",
             kind: str = "") -> None:
        counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
        child = ET.SubElement(element, tag, message=message[:500])
        if kind:
            child.set("type", kind)
        if text:
            child.text = text

    def point_case(identity: dict[str, Any]) -> ET.Element:
        return case(f"{suite_name}.{identity['dataset']}.{identity['mechanism']}",
                    f"{identity['attack']}@{float(identity['budget']):g}/"
                    f"{identity['defense']}/seed {identity['seed']}")

    regressions: dict[tuple[str, ...], list[Comparison]] = defaultdict(list)
    for c in result.regressions:
        regressions[point_key(c.point)].append(c)
    failed = {point_key(s.point): s for s in result.failed}
    lost = {point_key(s.point): s for s in result.lost}
    na = {point_key(s.point): s for s in result.not_applicable}
    new = {point_key(p) for p in result.new}
    traces = {point_key(f): f.get("traceback", "") for f in result.run.failed}
    for point in result.suite.grid():
        identity, key = point.identity, point_key(point.identity)
        element = point_case(identity)
        if key in failed:
            mark(element, "error", failed[key].reason, traces.get(key, ""),
                 failed[key].reason.split(":")[0])
        elif key in lost:
            mark(element, "failure", f"lost coverage: {lost[key].reason}", kind="lost")
        elif key in na:
            if result.strict:
                mark(element, "failure", f"not applicable: {na[key].reason}",
                     kind="not applicable")
            else:
                mark(element, "skipped", f"not applicable: {na[key].reason}")
        elif key in new:
            mark(element, "skipped", "not in baseline")
        elif key in regressions:
            items = regressions[key]
            mark(element, "failure", f"{len(items)} metrics regressed: "
                 + ", ".join(c.metric for c in items),
                 "\n".join(f"{c.metric} ({METRICS[c.metric].worse} is worse): baseline "
                           f"{_number(c.baseline)}, now {_number(c.now)}, "
                           f"delta {_number(c.delta, True)}, "
                           f"allowed {_number(c.allowed)}" for c in items), "regression")
    in_grid = {point_key(p.identity) for p in result.suite.grid()}
    for key, skipped in lost.items():
        if key not in in_grid:
            mark(point_case(skipped.point), "failure", f"lost coverage: {skipped.reason}",
                 kind="lost")
    unmeasured = {limit.key for limit in result.unmeasured_limits}
    for limit in result.suite.criteria.limits:
        element = case(f"{suite_name}.limits", limit.title)
        bad = [c for c in result.violations if c.limit.key == limit.key]
        if bad:
            mark(element, "failure", f"violated at {len(bad)} grid points",
                 "\n".join(f"{point_text(c.point)}: {_number(c.value)}" for c in bad), "limit")
        elif limit.key in unmeasured:
            mark(element, "failure", "measured at no grid point (undefined, not applicable "
                 "or failed everywhere it matches)", kind="limit")
        elif not any(c.limit.key == limit.key for c in result.limit_checks):
            mark(element, "skipped", "no grid point of the --only subset")
    for k, v in counts.items():
        ts.set(k, str(v))
        root.set(k, str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ---------------------------------------------------------------------- JSON
def evidence(result: GateResult) -> dict[str, Any]:
    """The canonical record of a check (JSON-ready; module doc)."""
    code = result.exit_code
    verdict = {EXIT_PASS: "pass", EXIT_FAIL: "fail"}.get(code, "error")
    limits = []
    for limit in result.suite.criteria.limits:
        checks = [c for c in result.limit_checks if c.limit.key == limit.key]
        state = ("violated" if any(c.verdict == "violated" for c in checks)
                 else "unmeasured" if limit in result.unmeasured_limits
                 else "not judged" if not checks else "ok")
        limits.append({"key": limit.key, "title": limit.title, **limit.resolved(),
                       "verdict": state,
                       "checks": [{**c.point, "value": c.value, "verdict": c.verdict}
                                  for c in checks]})
    return json_ready({
        "format": "pluralguard-check/1",
        "suite": {"name": result.suite.name, "source": result.suite.source,
                  "only": {k: list(v) for k, v in result.suite.only}},
        "baseline": result.baseline, "strict": result.strict,
        "verdict": verdict, "exit_code": code, "summary": verdict_line(result),
        "counts": {"grid": len(result.suite.grid()), "compared": len(result.comparisons),
                   "regressions": len(result.regressions),
                   "improvements": len(result.improvements),
                   "limit_violations": len(result.violations), "lost": len(result.lost),
                   "not_in_baseline": len(result.new),
                   "not_applicable": len(result.not_applicable),
                   "failed": len(result.failed)},
        "comparisons": [{**c.point, "metric": c.metric, "worse": METRICS[c.metric].worse,
                         "baseline": c.baseline, "now": c.now, "delta": c.delta,
                         "tolerance": {"absolute": c.tolerance.absolute,
                                       "relative": c.tolerance.relative},
                         "allowed": c.allowed, "verdict": c.verdict}
                        for c in result.comparisons],
        "limits": limits,
        "lost": [{**s.point, "reason": s.reason} for s in result.lost],
        "not_in_baseline": result.new,
        "not_applicable": [{**s.point, "reason": s.reason} for s in result.not_applicable],
        "failed": [{**f} for f in result.run.failed],
    })


# ------------------------------------------------------------------ baseline
def update_text(update: BaselineUpdate) -> str:
    """What writing a baseline did (or why it did not)."""
    changes, path = update.changes, update.path
    if not update.written:
        return (f"did not write {path}: {len(update.gate.failed)} runs failed (a baseline "
                "must cover every grid point)")
    na = len(update.gate.not_applicable)
    if changes.created:
        return (f"wrote the baseline of suite {update.gate.suite.name!r} to {path}: "
                f"{len(changes.added)} grid points" + (f" ({na} not applicable)" if na else ""))
    if not changes.any:
        return f"{path} unchanged ({update.gate.suite.name!r}, same values)"
    points = {point_key(p) for p, *_ in changes.changed}
    lines = [f"updated {path}: {len(changes.changed)} metric values changed at "
             f"{len(points)} grid points, {len(changes.added)} points added, "
             f"{len(changes.removed)} removed"]
    lines += [f"  {point_text(p)}  {m}: {a:.6g} -> {b:.6g} ({b - a:+.3g})"
              for p, m, a, b in changes.changed[:20]]
    if len(changes.changed) > 20:
        lines.append(f"  … and {len(changes.changed) - 20} more")
    lines += [f"  added {point_text(p)}" for p in changes.added[:LISTED]]
    lines += [f"  removed {point_text(p)}" for p in changes.removed[:LISTED]]
    return "\n".join(lines)
