"""JSON as pluralguard writes it: Python values out of numpy, strict JSON, canonical text.

* :func:`plain` — a numpy scalar as the Python value it holds;
* :func:`json_ready` and :func:`write_json` — strict JSON (NaN → null, ±inf → the strings
  ``"inf"``/``"-inf"``), written atomically (:func:`~pluralguard.eval.store.atomic_write`);
* :func:`canonical_json` — deterministic text (sorted keys, floats by ``repr``) for
  hashing: run keys, the suite digest, code versions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .store import atomic_write


def plain(value: Any) -> Any:
    """A numpy scalar as a Python one (anything else unchanged)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_ready(value: Any) -> Any:
    """Strict-JSON form: NaN → None, ±inf → ``"inf"``/``"-inf"``, numpy scalars → Python."""
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, obj: Any, *, strict: bool = True) -> None:
    """Write JSON atomically (temporary file, then ``os.replace``).

    Strict JSON by default (:func:`json_ready`); ``strict=False`` keeps infinite floats as
    ``Infinity``, which Python's :mod:`json` reads back as numbers.
    """
    text = (json.dumps(json_ready(obj), indent=2, allow_nan=False) if strict
            else json.dumps(obj, indent=2))
    atomic_write(Path(path), text + "\n")


def canonical_json(value: Any) -> str:
    """Deterministic JSON text (sorted keys, tuples as lists, floats by ``repr``)."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            return v
        if isinstance(v, float):
            return {"float": repr(v)}
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return {"repr": repr(v)}
    return json.dumps(norm(value), sort_keys=True, separators=(",", ":"))
