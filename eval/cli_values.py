"""Typed command-line values: what a word on the command line means, checked.

* :func:`parse_value` — a value after ``key=``: an integer, a number in plain decimal
  notation (``inf`` too), ``true``/``false``, ``a+b`` for several, else text;
* :func:`parse_named` — ``NAME[,key=value...]`` (``--attack sybil,sybils=10``);
* :func:`parse_only` — ``--only KEY=VALUE[,...]``;
* :func:`integer_at_least`, :func:`real_above` — argparse types for numeric options.

Numbers follow :mod:`~pluralguard.core.numbers` (plain decimal notation only), so
``0_1``, ``1e`` or ``nan`` are never numbers here. Suite files are TOML, typed by TOML
itself; only the command line goes through this module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from pluralguard.core.errors import InputError
from pluralguard.core.numbers import parse_decimal, parse_integer


def parse_value(text: str) -> Any:
    """A command-line value: an integer, a number in plain decimal notation (``inf``
    too; :mod:`~pluralguard.core.numbers`), a boolean (``true``/``false``), an ``a+b``
    tuple, or else text (``0_1``, ``nan`` or ``maybe`` stay text, which a numeric or
    boolean parameter then rejects, naming itself)."""
    core = text.strip()
    if "+" in core.strip("+-") and parse_decimal(core, allow_inf=True) is None:
        return tuple(parse_value(part) for part in core.split("+"))
    low = core.lower()
    if low in ("true", "false"):
        return low == "true"
    integer = parse_integer(core)
    if integer is not None:
        return integer
    number = parse_decimal(core, allow_inf=True)
    return core if number is None else number


def parse_named(text: str, key: str) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME[,key=value...]`` (as ``--attack sybil,sybils=10,attackers=3+7``);
    a key given twice is an error (never the last one silently)."""
    name, *pairs = [part.strip() for part in text.split(",")]
    if not name:
        raise InputError(key, f"no name in {text!r}", "write NAME[,key=value...]")
    params: dict[str, Any] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise InputError(key, f"{pair!r} is not key=value", "write NAME[,key=value...], "
                             "e.g. sybil,sybils=10,goal=capture")
        if k.strip() in params:
            raise InputError(key, f"{k.strip()!r} is given twice in {text!r}",
                             "give each key once")
        params[k.strip()] = parse_value(v.strip())
    return name, params


def parse_only(texts: Sequence[str]) -> dict[str, list[str]]:
    """``--only attack=sybil,defense=none`` (repeatable): key → names."""
    only: dict[str, list[str]] = {}
    for text in texts:
        for pair in text.split(","):
            key, sep, value = (part.strip() for part in pair.partition("="))
            if not sep or not key or not value:
                raise InputError("--only", f"{pair.strip()!r} is not KEY=VALUE",
                                 "write e.g. --only attack=sybil,defense=none (keys "
                                 "dataset, mechanism, attack, defense)")
            only.setdefault(key, []).append(value)
    return only


def integer_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``low`` in plain decimal notation."""
    def parse(text: str) -> int:
        value = parse_integer(text)
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {low}")
        return value
    return parse


def real_above(low: float, *, inclusive: bool, inf: bool = False) -> Callable[[str], float]:
    """argparse type: a number in plain decimal notation above ``low``."""
    def parse(text: str) -> float:
        value = parse_decimal(text, allow_inf=inf)
        if value is None or value < low or (value == low and not inclusive):
            bound = f"{'>=' if inclusive else '>'} {low:g}"
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number {bound} in plain decimal notation"
                + (" (inf allowed)" if inf else ""))
        return value
    return parse
