"""Reading a results directory: ``results.csv`` checked, ``summary.json`` and
``suite.resolved.json`` when present, and the cross-check of the first against the second.

A directory written by ``pluralguard run --out DIR`` (:mod:`~pluralguard.eval.runner`)
holds ``results.csv`` (one row per run, :mod:`~pluralguard.eval.columns`),
``summary.json`` (counts, the sanity flags, the grid's labels, the checksum of
``results.csv``) and ``suite.resolved.json`` (the suite with its defaults filled in).
Every reader here raises :class:`~pluralguard.core.errors.InputError` naming the file
and the fix, never a traceback from pandas or json.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pluralguard.core.errors import InputError

from .columns import IDENTITY, NONE
from .metrics import METRICS

RESULTS = "results.csv"
SUMMARY = "summary.json"
RESOLVED = "suite.resolved.json"


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Read ``DIR/results.csv`` and check it.

    Parameters
    ----------
    results_dir : path
        A directory written by ``pluralguard run --out DIR``.

    Returns
    -------
    DataFrame
        One row per run. ``attack``/``defense`` are strings (empty → ``"none"``),
        ``budget`` is float (``inf`` allowed), every metric of
        :data:`~pluralguard.eval.metrics.METRICS` is a float column (NaN when absent).

    Raises
    ------
    InputError
        When the file is missing or unreadable, lacks an identity column, has no rows,
        or holds a non-numeric metric.
    """
    path = Path(results_dir) / RESULTS
    if not path.is_file():
        if (path.parent / "runs.jsonl").is_file():
            raise InputError("results_dir", f"{path} does not exist yet: the run stopped "
                             "before its first batch finished",
                             "rerun the same `pluralguard run` command to resume it")
        raise InputError("results_dir", f"{path} does not exist",
                         "pass the directory written by `pluralguard run --out DIR`, "
                         f"which holds {RESULTS}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(RESULTS, f"{path} is not a readable CSV ({exc})",
                         "rerun the suite to rewrite it") from None
    missing = [c for c in IDENTITY if c not in frame.columns]
    if missing:
        raise InputError(f"{RESULTS}:{missing[0]}", f"column {missing[0]!r} is missing",
                         f"results.csv needs the columns {', '.join(IDENTITY)}")
    if frame.empty:
        raise InputError(RESULTS, f"{path} has no rows", "run a suite first")
    for col in ("dataset", "mechanism"):
        frame[col] = frame[col].astype(str)
    for col in ("attack", "defense"):
        frame[col] = frame[col].fillna(NONE).astype(str)
    frame["goal"] = frame["goal"].fillna("").astype(str) if "goal" in frame else ""
    for col in ("budget", "seed", *METRICS):
        if col not in frame:
            frame[col] = np.nan
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{RESULTS}:{col}",
                             f"non-numeric value {frame[col].iloc[i]!r} on line {i + 2}",
                             "metrics must be numbers (NaN when they do not apply)")
        frame[col] = values.astype(float)
    return frame


def _read_json(results_dir: str | Path, name: str) -> dict[str, Any]:
    """Read ``DIR/name`` as a JSON object (``{}`` when absent)."""
    path = Path(results_dir) / name
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(name, f"{path} is not valid JSON ({exc})",
                         "rerun the suite to rewrite it, or delete the file") from None
    if not isinstance(data, dict):
        raise InputError(name, f"{path} holds a {type(data).__name__}, not an object",
                         "rerun the suite to rewrite it, or delete the file")
    return data


def load_summary(results_dir: str | Path) -> dict[str, Any]:
    """Read ``DIR/summary.json`` (``{}`` when absent)."""
    return _read_json(results_dir, SUMMARY)


def load_mechanism_kinds(results_dir: str | Path) -> dict[str, str]:
    """Mechanism label → kind from ``DIR/suite.resolved.json`` (``{}`` when absent)."""
    mechanisms = _read_json(results_dir, RESOLVED).get("mechanisms")
    return {str(m["name"]): str(m["kind"]) for m in mechanisms or []
            if isinstance(m, Mapping) and "name" in m and "kind" in m}


def defense_targets(summary: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """Defense label → the recipes it targets, from ``summary.json`` (None when the
    summary predates it: then every attack judges a defense)."""
    defenses = (summary.get("grid_labels") or {}).get("defenses")
    if not isinstance(defenses, Mapping):
        return None
    return {str(label): [str(t) for t in entry.get("targets", [])]
            for label, entry in defenses.items() if isinstance(entry, Mapping)}


def check_results(results_dir: str | Path, results: pd.DataFrame,
                  summary: Mapping[str, Any]) -> list[str]:
    """Cross-check ``results.csv`` against ``summary.json``; return warnings.

    Raises
    ------
    InputError
        ``results.csv`` ends mid-row, or holds another number of rows than the
        summary counts (cut, or written by another run): the fix reruns the suite,
        which rebuilds it from the store without recomputing.
    """
    path = Path(results_dir) / RESULTS
    fix = ("rerun the same `pluralguard run` command with this --out: it rebuilds "
           f"{RESULTS} from the stored runs without computing them again")
    with open(path, "rb") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n":
            raise InputError(RESULTS, f"{path} ends mid-row (cut off)", fix)
    files = (summary.get("files") or {}).get(RESULTS) or {}
    expected = files.get("rows", (summary.get("counts") or {}).get("rows"))
    if expected is not None and expected != len(results):
        raise InputError(RESULTS, f"{path} has {len(results):,} rows but {SUMMARY} counts "
                         f"{expected:,} (one of them was cut, edited or replaced)", fix)
    stated = files.get("sha256")
    if stated and hashlib.sha256(path.read_bytes()).hexdigest() != stated:
        return [f"`{RESULTS}` differs from the file the run wrote (its checksum in "
                f"`{SUMMARY}` does not match): it was edited after the run; this report "
                "shows it as it is now."]
    return []
