"""Markdown pipe tables: the one renderer of the report, the case studies and the benchmarks.

A table is a header row, a rule row and one row per record (GitHub-flavoured markdown).
Every cell — header cells too — has ``|`` escaped as ``\\|``: an unescaped pipe ends a
cell even inside a code span, so a label such as ``a|b`` would shift every column after
it. How a value becomes text is the caller's choice (``cell``); the two formats the
project's documents use live here too:

* :func:`significant` — 4 significant digits, ``—`` for a missing value, ``∞``, ``yes``
  / ``no`` (the report);
* :func:`fixed` — 4 decimals below 1000, whole numbers above, ``yes`` / ``no`` (the case
  studies);

and :func:`budget_text`, an attack budget as the documents and figures write it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: A cell's formatter: value → text (escaping is the table's job).
Formatter = Callable[[Any], str]


def escape(text: str) -> str:
    """``text`` with every ``|`` escaped, safe inside a table cell."""
    return text.replace("|", "\\|")


def pipe_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *,
               cell: Formatter = str, right: Sequence[bool] | None = None) -> list[str]:
    """A markdown pipe table as lines.

    Parameters
    ----------
    header : sequence
        Column names.
    rows : iterable of sequences
        One sequence of values per row, as long as ``header``.
    cell : callable
        Value → text of the body and header cells (default ``str``).
    right : sequence of bool, optional
        Per column, whether it is right-aligned (``---:``); default none.
    """
    aligned = right if right is not None else [False] * len(header)
    lines = ["| " + " | ".join(escape(cell(c)) for c in header) + " |",
             "|" + "|".join("---:" if r else "---" for r in aligned) + "|"]
    lines += ["| " + " | ".join(escape(cell(v)) for v in row) + " |" for row in rows]
    return lines


def frame_table(frame: pd.DataFrame, *, cell: Formatter = str,
                align_numbers: bool = False) -> str:
    """A data frame's columns and rows (not its index) as a pipe table.

    ``align_numbers`` right-aligns the numeric columns (booleans excepted).
    """
    right = ([pd.api.types.is_numeric_dtype(frame[c])
              and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns]
             if align_numbers else None)
    return "\n".join(pipe_table(list(frame.columns), frame.itertuples(index=False),
                                cell=cell, right=right))


def significant(value: Any) -> str:
    """A value in 4 significant digits; ``—`` for None, NA and NaN; ``∞``/``−∞``; booleans
    as ``yes``/``no``; integers whole; anything else as ``str``."""
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v + 0.0:.4g}"
    return str(value)


def fixed(value: Any) -> str:
    """A float with 4 decimals (whole above 1000), booleans as ``yes``/``no``, anything
    else as ``str``."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def budget_text(budget: float) -> str:
    """An attack budget: ``∞`` for an infinite one, else its shortest form."""
    return "∞" if math.isinf(budget) else f"{budget:g}"
