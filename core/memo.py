"""A bounded memo for pure computations keyed by content.

Attack queries re-solve populations that differ from each other in a few rows, so the
same pieces — a group's geometric median, a block's largest eigenvalue, a population's
sorted pairwise distances — come back again and again, and a suite's worker meets the
same clean runs, sessions and plans at every budget (``eval/run_cache.py``).
:class:`BoundedMemo` keeps the most recently used results of one such computation,
keyed by :func:`content_key` (or by what else names the inputs in full), and drops the
least recently used beyond its size, so memory stays bounded whatever a session asks.
Only pure functions of the key's content may be memoised: a hit returns what a fresh
computation would.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


def content_key(*arrays: np.ndarray) -> bytes:
    """SHA-256 of the arrays' shapes, dtypes and bytes (C order)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.digest()


class BoundedMemo(Generic[T]):
    """Results by key, the ``size`` most recently used kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._store: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The stored result for ``key``, or ``compute()`` stored under it."""
        if key in self._store:
            self._store.move_to_end(key)
            return self._store[key]
        value = compute()
        self._store[key] = value
        if len(self._store) > self.size:
            self._store.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> T | None:
        """The stored result for ``key``, or None (never computes; recency unchanged)."""
        return self._store.get(key)

    def __len__(self) -> int:
        return len(self._store)
