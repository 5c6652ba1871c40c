"""Numbers from user input: plain decimal text and arrays of real numbers, nothing coerced.

Python and numpy accept far more as a number than a table cell or a command-line value
should be: ``float("0_1") == 1.0`` (digit grouping), ``float("١") == 1.0`` (any Unicode
decimal digit), ``float(" 1\\n")``, ``float("nan")``, ``float("infinity")``; and
``np.array(["0.5"], dtype=float)``, ``np.array([True], dtype=float)`` silently become
numbers. Here

* text is a number only in **plain decimal notation**: an optional sign, ASCII digits
  with an optional decimal point, an optional exponent — ``-0.25``, ``3``, ``.5``,
  ``2.``, ``1e-3``, ``+4E2`` — with surrounding spaces or tabs; ``inf`` (any case,
  optional sign) only where the caller says infinity is meaningful (a bound meaning
  "no limit", the exponent p of the minimax consensus); never ``nan``;
* an array is numeric only if it holds real numbers (integers or floats; not text,
  booleans or complex numbers).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np

from .errors import InputError

#: Plain decimal notation (ASCII only; ``[0-9]``, not ``\d``, which matches every script).
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: An integer in plain decimal notation (ASCII digits, an optional sign).
INTEGER = re.compile(r"[+-]?[0-9]+")
#: Infinity, where the caller allows it.
INFINITY = re.compile(r"[+-]?inf", re.IGNORECASE)
#: What surrounds a number in a cell and is ignored.
_SPACE = " \t"


def parse_decimal(text: str, *, allow_inf: bool = False) -> float | None:
    """``float(text)`` if ``text`` is in plain decimal notation (module doc), else None.

    Parameters
    ----------
    text : str
        The text; surrounding spaces and tabs are ignored.
    allow_inf : bool
        Whether ``inf`` / ``-inf`` (any case) are numbers here.
    """
    core = text.strip(_SPACE)
    if DECIMAL.fullmatch(core) or (allow_inf and INFINITY.fullmatch(core)):
        return float(core)
    return None


def parse_integer(text: str) -> int | None:
    """``int(text)`` if ``text`` is an integer in plain decimal notation (surrounding
    spaces and tabs ignored; no ``0_1``, no other scripts' digits), else None."""
    core = text.strip(_SPACE)
    return int(core) if INTEGER.fullmatch(core) else None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def real_number(name: str, value: Any, fix: str, *, allow_inf: bool = False) -> float:
    """A real number given as a number or as plain decimal text, else :class:`InputError`.

    NaN is never a number here; ±infinity only with ``allow_inf``.

    Parameters
    ----------
    name : str
        The field named in the error.
    value : Any
        An int or float (numpy scalars included; not bool), or text (module doc).
    fix : str
        What the user should give instead.
    allow_inf : bool
        Whether ±infinity is meaningful for this field.
    """
    if isinstance(value, str):
        number = parse_decimal(value, allow_inf=allow_inf)
        if number is None:
            raise InputError(name, f"{value!r} is not a number in plain decimal notation",
                             fix)
    elif _is_real(value):
        try:
            number = float(value)
        except OverflowError:
            raise InputError(name, f"{value!r} is too large for a float", fix) from None
    else:
        raise InputError(name, f"{value!r} is not a number", fix)
    if math.isnan(number):
        raise InputError(name, "is NaN", fix)
    if math.isinf(number) and not allow_inf:
        raise InputError(name, f"is {number}", fix)
    return number


def real_array(name: str, value: Any, fix: str) -> np.ndarray:
    """``value`` as a new float array if it holds real numbers only, else :class:`InputError`.

    Integers and floats (any precision) are accepted; text, booleans, complex numbers,
    ``None`` and ragged nestings are not (NaN and infinity are left to the caller).
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise InputError(name, "is not a regular array of numbers (rows of different "
                         "lengths?)", fix) from None
    kind = arr.dtype.kind
    if kind == "O":
        for v in arr.flat:
            if not _is_real(v):
                raise InputError(name, f"holds {v!r}, not a number", fix)
    elif kind not in "iuf":
        what = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes"}.get(
            kind, f"values of type {arr.dtype}")
        raise InputError(name, f"holds {what}, not real numbers", fix)
    try:
        return arr.astype(float)
    except OverflowError:
        raise InputError(name, "holds an integer too large for a float", fix) from None
