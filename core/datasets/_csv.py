"""CSV reading shared by the table readers: file errors and cell parsing as InputError."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Turn a missing, empty or malformed CSV file into :class:`InputError`."""
    if not path.is_file():
        raise InputError("path", f"no such file: {path}", "check the path")
    try:
        yield
    except pd.errors.EmptyDataError:
        raise InputError("path", f"{path.name} is empty",
                         "give a CSV file with a header row and one row per agent") from None
    except UnicodeDecodeError as exc:
        raise InputError("path", f"{path.name} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})", "save the file as UTF-8 CSV") from None
    except pd.errors.ParserError as exc:
        problem = str(exc).strip().splitlines()[-1]
        raise InputError("path", f"{path.name} is not a well-formed CSV file ({problem})",
                         "close every quoted cell and give every row as many cells as the "
                         "header") from None


def read_csv(path: str | Path, *, raw: bool = False) -> pd.DataFrame:
    """Read a CSV file; missing, empty and malformed files raise :class:`InputError`.

    Parameters
    ----------
    path : str or Path
        The file.
    raw : bool
        If true, read every cell as text, keep empty cells as ``""`` (no NA guessing)
        and return the header as the first row (``header=None``), so that duplicated
        column names stay visible and numbers can be parsed exactly by the caller.
    """
    path = Path(path)
    with _file_errors(path):
        if raw:
            return pd.read_csv(path, dtype=str, header=None, keep_default_na=False)
        return pd.read_csv(path)


def read_header(path: str | Path) -> list[str]:
    """The column names of a CSV file (errors as in :func:`read_csv`)."""
    path = Path(path)
    with _file_errors(path):
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def parse_floats(column: str, cells: Sequence[Any], agents: Sequence[str] | None,
                 fix: str) -> np.ndarray:
    """Parse text cells exactly (Python's correctly rounded ``float``), naming bad cells.

    NaN and infinite values are returned as such; the caller decides whether they are
    allowed. A missing cell (a short row) arrives as a float NaN and is reported as
    missing.
    """
    out = np.empty(len(cells))
    for r, cell in enumerate(cells):
        where = f"row {r + 1}" + (f" (agent {agents[r]!r})" if agents is not None else "")
        if not isinstance(cell, str) or cell.strip() == "":
            raise InputError(column, f"{where} is empty", fix)
        try:
            out[r] = float(cell)
        except ValueError:
            raise InputError(column, f"{where} holds {cell!r}, not a number", fix) from None
    return out


def numeric_columns(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The given columns of a pandas-typed table as a float array, shape (rows, len(columns)).

    Raises :class:`InputError` naming the column on text cells or missing values.
    """
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            r = int(np.argmax(bad))
            cell = df[col].iloc[r]
            what = "is empty" if pd.isna(cell) else f"holds {cell!r}, not a number"
            raise InputError(col, f"row {r + 1} {what}",
                             "give a number in every cell of this column")
    return df[list(columns)].to_numpy(dtype=float)
