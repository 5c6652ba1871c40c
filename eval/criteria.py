"""What the CI gate checks: gated metrics, tolerances and absolute limits of a suite.

In a suite file::

    [gate]                            # optional: the metrics compared with the baseline
    metrics = ["utility_loss_mean", "utility_loss_max", "capture"]

    [tolerances]                      # how much worse than the baseline a metric may get
    utility_loss_mean = 0.01                        # absolute
    capture = {absolute = 0.01, relative = 0.1}     # max(0.01, 0.1 · |baseline|)

    [tolerances.attacks.sybil]        # per attack (its label or recipe name); replaces the
    capture = {relative = 0.25}       # metric's suite-wide tolerance for that attack

    [[limits]]                        # absolute limits, checked with or without a baseline
    attack = "sybil"                  # optional filters: dataset, mechanism, attack,
    metric = "capture"                #   defense, budget
    max = 0.1                         # and/or min = ...

**Regression.** A gated metric regresses at a grid point when it got worse than its
baseline value b by more than the allowed amount max(absolute, relative · |b|) — worse
meaning higher or lower as :data:`~pluralguard.eval.metrics.METRICS` says (the pytest
``approx`` rule) — or when it became, or stopped being, undefined (NaN). It improved when
it got better by more than that amount. Default: every metric with a direction is gated,
with the absolute tolerances of :data:`DEFAULT_TOLERANCES` (results are bit-identical
for identical code, so they only absorb negligible numerical changes; 0/1 metrics
tolerate no flip).

**Limits.** A limit is violated at a grid point it matches whose value lies outside
[min, max]. A point where the metric is undefined (NaN, e.g. ``capture`` of an attack
without a target group) does not measure it; a limit measured at no grid point fails,
since it would otherwise pass unseen. Filters match labels (an attack also by recipe
name, a mechanism also by kind); each must name something in the suite, and a limit must
match at least one grid point, so a typo fails when the suite loads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pluralguard.core.errors import InputError

from .metrics import METRICS

_TOLERANCE = {
    "honest_utility_mean": 1e-4, "honest_utility_p10": 1e-4, "honest_utility_min": 1e-4,
    "utility_loss_mean": 1e-4, "utility_loss_p90": 1e-4, "utility_loss_max": 1e-4,
    "attacker_gain": 1e-4, "defense_cost": 1e-4, "capture": 0.01, "exclusion_rate": 0.01,
    "partition_change": 0.01, "comembership_flips": 0.01, "defense_partition_change": 0.01,
    # the goal's own measure is one of the columns above (times ±1): the finest of theirs
    "goal_measure": 1e-4,
}
#: Metrics the gate can compare with a baseline: those with a direction.
GATEABLE = tuple(name for name, info in METRICS.items() if info.worse != "none")
#: Default absolute tolerance of every gateable metric (0 where none is listed).
DEFAULT_TOLERANCES: dict[str, float] = {name: _TOLERANCE.get(name, 0.0) for name in GATEABLE}
#: Grid-point keys a limit may filter on.
LIMIT_FILTERS = ("dataset", "mechanism", "attack", "defense", "budget")


@dataclass(frozen=True)
class Tolerance:
    """How much worse than its baseline value b a metric may get:
    max(``absolute``, ``relative`` · |b|)."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, baseline: float) -> float:
        """The allowed worsening from ``baseline``."""
        rel = self.relative * abs(baseline) if math.isfinite(baseline) else 0.0
        return max(self.absolute, rel)

    def __str__(self) -> str:
        parts = [f"{self.absolute:g}"] if self.absolute or not self.relative else []
        if self.relative:
            parts.append(f"{self.relative:g}·|b|")
        return " or ".join(parts)


@dataclass(frozen=True)
class Limit:
    """One ``[[limits]]`` entry: ``metric`` within [``min``, ``max``] where it matches.

    Attributes
    ----------
    key : str
        Its suite key (``limits[0]``), for messages.
    metric : str
    min, max : float or None
    filters : dict
        ``dataset``, ``mechanism``, ``attack``, ``defense`` (str) and ``budget`` (float).
    """

    key: str
    metric: str
    min: float | None
    max: float | None
    filters: dict[str, Any] = field(default_factory=dict)

    def matches(self, names: Mapping[str, Iterable[Any]]) -> bool:
        """Whether a grid point matches; ``names`` maps each filter key to the names the
        point answers to (its label, and for attacks the recipe, for mechanisms the kind)."""
        return all(value in set(names[key]) for key, value in self.filters.items())

    def violated(self, value: float) -> bool:
        """Whether a defined value lies outside the limit."""
        return ((self.min is not None and value < self.min)
                or (self.max is not None and value > self.max))

    @property
    def title(self) -> str:
        """``limits[0] capture <= 0.1 (attack=sybil)``."""
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        where = ", ".join(f"{k}={_show(v)}" for k, v in self.filters.items())
        return (f"{self.key} {self.metric} {' and '.join(bounds)}"
                + (f" ({where})" if where else ""))

    def resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, **self.filters}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Criteria:
    """The gate settings of a suite (module doc)."""

    metrics: tuple[str, ...] = GATEABLE
    tolerances: dict[str, Tolerance] = field(default_factory=lambda: {
        m: Tolerance(t) for m, t in DEFAULT_TOLERANCES.items()})
    attack_tolerances: dict[str, dict[str, Tolerance]] = field(default_factory=dict)
    limits: tuple[Limit, ...] = ()

    def tolerance(self, metric: str, attack: Iterable[str] = ()) -> Tolerance:
        """The tolerance of ``metric`` at a point of an attack (its label, recipe name)."""
        for name in attack:
            if metric in self.attack_tolerances.get(name, {}):
                return self.attack_tolerances[name][metric]
        return self.tolerances.get(metric, Tolerance())

    def resolved(self) -> dict[str, Any]:
        """``gate``, ``tolerances`` and ``limits`` keys of a resolved suite."""
        def table(t: Tolerance) -> dict[str, float]:
            return {"absolute": t.absolute, "relative": t.relative}

        tolerances: dict[str, Any] = {m: table(t) for m, t in self.tolerances.items()}
        if self.attack_tolerances:
            tolerances["attacks"] = {a: {m: table(t) for m, t in per.items()}
                                     for a, per in self.attack_tolerances.items()}
        return {"gate": {"metrics": list(self.metrics)}, "tolerances": tolerances,
                "limits": [limit.resolved() for limit in self.limits]}


# ------------------------------------------------------------------ parsing
def _number(value: Any, key: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InputError(key, f"expected a number, got {value!r}", fix)
    return float(value)


def _tolerance(value: Any, key: str) -> Tolerance:
    fix = ("write a number (absolute) or a table such as {absolute = 0.01, relative = 0.1} "
           "(non-negative)")
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"absolute", "relative"})
        if extra or not value:
            raise InputError(f"{key}.{extra[0]}" if extra else key,
                             "unknown key of a tolerance" if extra else "empty tolerance", fix)
        parts = {k: _number(v, f"{key}.{k}", fix) for k, v in value.items()}
    else:
        parts = {"absolute": _number(value, key, fix)}
    for k, v in parts.items():
        if not v >= 0:
            raise InputError(f"{key}.{k}" if isinstance(value, Mapping) else key,
                             "expected a non-negative number", fix)
    return Tolerance(**parts)


def _metric_table(table: Any, key: str, metrics: tuple[str, ...]
                  ) -> dict[str, Tolerance]:
    if not isinstance(table, Mapping):
        raise InputError(key, "expected a table of metric = tolerance",
                         "write e.g. [tolerances] utility_loss_mean = 0.01")
    out = {}
    for metric, value in table.items():
        if metric not in GATEABLE:
            raise InputError(f"{key}.{metric}", "not a gated metric",
                             f"use one of {', '.join(GATEABLE)}")
        if metric not in metrics:
            raise InputError(f"{key}.{metric}", "not among the metrics of [gate]",
                             "add it to [gate] metrics, or drop its tolerance")
        out[metric] = _tolerance(value, f"{key}.{metric}")
    return out


def parse_criteria(data: Mapping[str, Any], names: Mapping[str, set[str]]) -> Criteria:
    """The ``gate``, ``tolerances`` and ``limits`` keys of a suite document.

    Parameters
    ----------
    data : mapping
        The suite document.
    names : mapping
        For each of ``dataset``, ``mechanism``, ``attack``, ``defense``: every name a grid
        point may answer to (labels, recipe names, kinds), to check filters against.
    """
    gate = data.get("gate", {})
    if not isinstance(gate, Mapping):
        raise InputError("gate", "expected a table", "write [gate] metrics = [\"capture\"]")
    extra = sorted(set(gate) - {"metrics"})
    if extra:
        raise InputError(f"gate.{extra[0]}", "unknown key", "[gate] has only metrics")
    metrics = gate.get("metrics", list(GATEABLE))
    if (not isinstance(metrics, list) or not metrics
            or not all(isinstance(m, str) for m in metrics)):
        raise InputError("gate.metrics", "expected a non-empty list of metric names",
                         "write e.g. metrics = [\"utility_loss_mean\", \"capture\"]")
    for i, metric in enumerate(metrics):
        if metric not in GATEABLE:
            raise InputError(f"gate.metrics[{i}]", f"{metric!r} is not a metric with a "
                             "direction", f"use some of {', '.join(GATEABLE)}")
    metrics = tuple(dict.fromkeys(metrics))

    table = data.get("tolerances", {})
    if not isinstance(table, Mapping):
        raise InputError("tolerances", "expected a table",
                         "write [tolerances] utility_loss_mean = 0.01")
    table = dict(table)
    per_attack = table.pop("attacks", {})
    tolerances = {m: Tolerance(DEFAULT_TOLERANCES[m]) for m in metrics}
    tolerances |= _metric_table(table, "tolerances", metrics)
    if not isinstance(per_attack, Mapping):
        raise InputError("tolerances.attacks", "expected a table of attacks",
                         "write [tolerances.attacks.sybil] capture = 0.05")
    attack_tolerances = {}
    for attack, entries in per_attack.items():
        key = f"tolerances.attacks.{attack}"
        if attack not in names["attack"]:
            raise InputError(key, f"no attack {attack!r} in this suite",
                             f"use one of {', '.join(sorted(names['attack']))}")
        attack_tolerances[attack] = _metric_table(entries, key, metrics)

    entries = data.get("limits", [])
    if not isinstance(entries, list):
        raise InputError("limits", "expected a list of tables",
                         "write [[limits]] tables: metric = \"capture\", max = 0.1")
    limits = tuple(_limit(entry, f"limits[{i}]", names) for i, entry in enumerate(entries))
    return Criteria(metrics, tolerances, attack_tolerances, limits)


def _limit(entry: Any, key: str, names: Mapping[str, set[str]]) -> Limit:
    fix = "write e.g. [[limits]] attack = \"sybil\", metric = \"capture\", max = 0.1"
    if not isinstance(entry, Mapping):
        raise InputError(key, "expected a table", fix)
    extra = sorted(set(entry) - {"metric", "min", "max", *LIMIT_FILTERS})
    if extra:
        raise InputError(f"{key}.{extra[0]}", "unknown key of a limit",
                         f"use metric, min, max and the filters {', '.join(LIMIT_FILTERS)}")
    metric = entry.get("metric")
    if metric is None:
        raise InputError(f"{key}.metric", "missing", fix)
    if metric not in METRICS:
        raise InputError(f"{key}.metric", f"unknown metric {metric!r}",
                         "see pluralguard list metrics")
    lo = None if "min" not in entry else _number(entry["min"], f"{key}.min", fix)
    hi = None if "max" not in entry else _number(entry["max"], f"{key}.max", fix)
    if lo is None and hi is None:
        raise InputError(key, "gives neither min nor max", fix)
    if lo is not None and hi is not None and lo > hi:
        raise InputError(key, f"min {lo:g} is above max {hi:g}", "swap them")
    filters: dict[str, Any] = {}
    for name in LIMIT_FILTERS:
        if name not in entry:
            continue
        value = entry[name]
        if name == "budget":
            if value in ("inf", "Infinity"):
                value = math.inf
            value = _number(value, f"{key}.budget", "write a budget such as 0.1 or inf")
        elif not isinstance(value, str):
            raise InputError(f"{key}.{name}", f"expected a {name} name, got {value!r}", fix)
        if value not in names[name]:
            known = ", ".join(_show(v) for v in sorted(names[name], key=str))
            raise InputError(f"{key}.{name}", f"no {name} {_show(value)!r} in this suite",
                             f"use one of {known}")
        filters[name] = value
    return Limit(key, metric, lo, hi, filters)
