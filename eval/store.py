"""The run store of a results directory: checked JSON lines, a lock, atomic file writes.

``DIR/runs.jsonl`` holds one JSON line per finished run (:class:`RunStore`). Each line
is ``{"key", "row", "timing", "sum"}`` (a run with a row), ``{"key", "skipped",
"sum"}`` (not applicable, with the reason) or ``{"key", "failed", "sum"}`` (the
exception); ``sum`` is a SHA-256 checksum (16 hex digits) of the rest of the line in
canonical form (sorted keys; floats round-trip exactly), so an edited metric is
detected, never served. A later line for a key replaces an earlier one.

**Faults recover with nothing lost.** Reading the store never fails on its content: a
line that is not valid UTF-8, not JSON, JSON of the wrong shape, or whose checksum
does not match is *rejected* — kept in ``runs.jsonl.rejected`` for inspection,
dropped from the store (rewritten atomically), and named in a warning — so its run
counts as missing and is computed again. A line cut mid-way by a crash is the same
case. A directory where the store should be is moved aside
(``runs.jsonl.moved-<n>``) with a warning. The runs in good lines are always kept.

**Concurrency.** :func:`directory_lock` holds ``DIR/.pluralguard.lock``
(``fcntl.flock``, released by the operating system when its process ends, so a killed
run never leaves a stale lock): a second ``pluralguard run``, ``check`` or
``baseline`` on the same directory says that it waits, then resumes from what the
first stored. Files other processes may read (``results.csv``, ``summary.json``, …)
are written by :func:`atomic_write`: a unique temporary file in the same directory,
then ``os.replace``, so a reader never sees half a file and two writers never share a
temporary file. On platforms without ``fcntl`` (Windows) there is no lock; the writes
stay atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Name of the lock file in a results directory.
LOCK = ".pluralguard.lock"
#: Where rejected store lines are kept (appended, as they were).
REJECTED_SUFFIX = ".rejected"
#: Outcome keys a store record has exactly one of.
_OUTCOMES = ("row", "skipped", "failed")


def checksum(record: dict[str, Any]) -> str:
    """SHA-256 (16 hex digits) of a record (without ``sum``) in canonical JSON."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shape_problem(record: Any) -> str | None:
    """What is wrong with the shape of a parsed store line, or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if not isinstance(record.get("key"), str):
        return "no run key"
    present = [k for k in _OUTCOMES if k in record]
    if len(present) != 1:
        return "not exactly one of row, skipped, failed"
    if "row" in record and not (isinstance(record["row"], dict)
                                and isinstance(record.get("timing"), dict)):
        return "a row or timing that is not an object"
    if "skipped" in record and not isinstance(record["skipped"], str):
        return "a reason that is not text"
    if "failed" in record and not (isinstance(record["failed"], dict) and all(
            isinstance(record["failed"].get(k), str) for k in ("type", "message"))):
        return "a failure without type and message"
    if not isinstance(record.get("sum"), str):
        return "no checksum"
    return None


class RunStore:
    """The append-only, checked JSON-lines store of finished runs (module doc).

    Attributes
    ----------
    path : Path
    warnings : list of str
        What the last :meth:`load` or :meth:`clear` recovered from, one sentence each.
    after_append : callable or None
        Class-wide fault-injection point: called with the store after every durable
        :meth:`append` (None, the default, in every real run). The tests stop a process
        there, at a known point, to check that a killed run resumes.
    """

    after_append: ClassVar[Callable[[RunStore], None] | None] = None

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []

    def load(self, *, repair: bool = True) -> dict[str, dict[str, Any]]:
        """Finished runs by key (without ``key`` and ``sum``).

        With ``repair`` (the caller holds the directory's lock), rejected lines are set
        aside and dropped from the store (module doc); without, they are only skipped
        and the files are left as they are (to read a store another process uses).
        """
        self.warnings = []
        if self.path.is_dir():
            if repair:
                self._move_aside()
            return {}
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        records: dict[str, dict[str, Any]] = {}
        rejected: list[tuple[int, bytes, str]] = []
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            problem, record = self._parse(line, torn=number == len(lines))
            if problem is not None:
                rejected.append((number, line, problem))
                continue
            records[record.pop("key")] = record
        if rejected and repair:
            self._reject(rejected, records)
        return records

    @staticmethod
    def _parse(line: bytes, torn: bool) -> tuple[str | None, dict[str, Any]]:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return "not valid UTF-8", {}
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return ("cut off (a write interrupted by a crash)" if torn
                    else "not valid JSON"), {}
        problem = _shape_problem(record)
        if problem is not None:
            return problem, {}
        stated = record.pop("sum")
        if checksum(record) != stated:
            return "its checksum does not match (the line was edited)", {}
        return None, record

    def _reject(self, rejected: list[tuple[int, bytes, str]],
                records: dict[str, dict[str, Any]]) -> None:
        aside = self.path.with_name(self.path.name + REJECTED_SUFFIX)
        with open(aside, "ab") as fh:
            fh.write(b"".join(line + b"\n" for _, line, _ in rejected))
        self._rewrite(records)
        problems: dict[str, list[int]] = {}
        for number, _, problem in rejected:
            problems.setdefault(problem, []).append(number)
        said = "; ".join(f"line{'s' if len(n) > 1 else ''} "
                         f"{', '.join(map(str, n[:5]))}{'…' if len(n) > 5 else ''}: {p}"
                         for p, n in problems.items())
        self.warnings.append(
            f"{self.path}: {len(rejected)} stored runs rejected ({said}); they are kept "
            f"in {aside.name} and will be computed again")

    def _rewrite(self, records: dict[str, dict[str, Any]]) -> None:
        atomic_write(self.path, "".join(_line(k, r) for k, r in records.items()))

    def _move_aside(self) -> None:
        k = 1
        while self.path.with_name(f"{self.path.name}.moved-{k}").exists():
            k += 1
        target = self.path.with_name(f"{self.path.name}.moved-{k}")
        self.path.rename(target)
        self.warnings.append(f"{self.path} was a directory, not a store: moved it to "
                             f"{target.name}; every run will be computed again")

    def append(self, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append finished runs durably (one write, flush, fsync), each with its sum."""
        text = "".join(_line(k, r) for k, r in records)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if RunStore.after_append is not None:
            RunStore.after_append(self)

    def clear(self) -> None:
        """Forget every stored run."""
        self.warnings = []
        if self.path.is_dir():
            self._move_aside()
        self.path.unlink(missing_ok=True)


def _line(key: str, record: dict[str, Any]) -> str:
    full = {"key": key, **record}
    return json.dumps({**full, "sum": checksum(full)}, separators=(",", ":")) + "\n"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def directory_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.pluralguard.lock`` (module doc); say so on stderr while waiting."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(Path(out) / LOCK, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another pluralguard process is using {out}; waiting for it to finish "
                  "(its stored runs will be reused)", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
