"""What a suite ran, what it did not, and why — for the first screen of a report.

A grid point *did not run* when its attack does not apply to the (defended) mechanism
or threat model: the runner records it in ``summary.json`` (``not_applicable``, with
the reason the recipe gave) instead of a row. Listed one by one these are hundreds of
near-identical lines (the reason names the mechanism's parameters, which defenses
change), so :func:`not_run_groups` groups them by attack × mechanism × reason with the
parameters left out, and :func:`attack_coverage` says per attack at how many grid
points it ran. Both read plain ``summary.json`` data and the results table: no
registry is imported, so a report of a directory written with plugins needs none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: The mechanism's parameters in a reason (``mechanism 'agreements' (bounds=…)``).
_PARAMS = re.compile(r"(mechanism '[^']*') \([^()]*\)")
_CAPABILITY = re.compile(r"lacks capability '([^']+)'")


@dataclass
class NotRunGroup:
    """Grid points of one attack on one mechanism that did not apply, for one reason.

    Attributes
    ----------
    attack, mechanism : str
        Labels.
    problem : str
        Why (the recipe's reason without the mechanism's parameters).
    fix : str
        What would make it apply (the first suggestion of the reason).
    capability : str
        The mechanism capability it lacks ("" when the reason is another).
    points : int
        Grid points.
    datasets, defenses : list of str
        Where (labels, sorted).
    """

    attack: str
    mechanism: str
    problem: str
    fix: str
    capability: str
    points: int = 0
    datasets: list[str] = field(default_factory=list)
    defenses: list[str] = field(default_factory=list)


def split_reason(reason: str) -> tuple[str, str]:
    """``(problem, fix)`` of a stored reason ``"field: problem; fix"``, the problem
    without the mechanism's parameters and the fix cut at its first ``;``."""
    _, sep, rest = reason.partition(": ")
    text = rest if sep else reason
    problem, _, fix = text.partition("; ")
    return _PARAMS.sub(r"\1", problem).strip(), fix.split("; ")[0].strip()


def not_run_groups(not_applicable: Sequence[Mapping[str, Any]]) -> list[NotRunGroup]:
    """``summary.json``'s ``not_applicable`` entries grouped (module doc), largest first."""
    groups: dict[tuple[str, str, str], NotRunGroup] = {}
    for entry in not_applicable:
        problem, fix = split_reason(str(entry.get("reason", "")))
        attack, mechanism = str(entry.get("attack")), str(entry.get("mechanism"))
        key = (attack, mechanism, problem)
        if key not in groups:
            capability = _CAPABILITY.search(problem)
            groups[key] = NotRunGroup(attack, mechanism, problem, fix,
                                      capability.group(1) if capability else "")
        group = groups[key]
        group.points += 1
        for attr, label in (("datasets", "dataset"), ("defenses", "defense")):
            value = str(entry.get(label))
            if value not in getattr(group, attr):
                getattr(group, attr).append(value)
    out = list(groups.values())
    for group in out:
        group.datasets.sort()
        group.defenses.sort()
    return sorted(out, key=lambda g: (-g.points, g.attack, g.mechanism))


@dataclass(frozen=True)
class Coverage:
    """Where one attack ran: grid points with a row, not applicable, failed."""

    attack: str
    ran: int
    not_applicable: int
    failed: int


def attack_coverage(results: pd.DataFrame, summary: Mapping[str, Any]) -> list[Coverage]:
    """Per attack label (``none`` excluded): its grid points that ran, did not apply or
    failed, in the order of ``summary["grid_labels"]`` (else by name)."""
    ran = results.loc[results["attack"] != "none", "attack"].value_counts()
    counts: dict[str, list[int]] = {}
    for attack, n in ran.items():
        counts.setdefault(str(attack), [0, 0, 0])[0] = int(n)
    for index, name in ((1, "not_applicable"), (2, "failed")):
        for entry in summary.get(name) or []:
            if isinstance(entry, Mapping) and entry.get("attack") != "none":
                counts.setdefault(str(entry.get("attack")), [0, 0, 0])[index] += 1
    order = [a for a in (summary.get("grid_labels") or {}).get("attacks", {}) if a in counts]
    order += sorted(a for a in counts if a not in order)
    return [Coverage(a, *counts[a]) for a in order]
