"""Shared benchmark harness: isolated cases, peak memory, machine facts, tables
(:func:`pluralguard.eval.markdown.pipe_table`, the project's one markdown table)."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pluralguard.eval.markdown import pipe_table as table  # noqa: F401 (the benchmarks' tables)

HERE = Path(__file__).resolve().parent
#: Tables that may not be redistributed (tests/data/README.md): the folder named by
#: $PLURALGUARD_SHARED_DATA, else a folder shared/data beside the checkout. Cases whose
#: table is missing are left out of the results.
DEFAULT_DATA = Path(os.environ.get("PLURALGUARD_SHARED_DATA")
                    or HERE.parent.parent / "shared" / "data")
ESS8 = "trevorrow_ess8/ess8_all_individual_value_systems.csv"


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(target: Callable[[dict], dict], spec: dict, queue: mp.Queue) -> None:
    base = rss_mb()
    out = target(spec)
    out |= {"peak_mb": rss_mb(), "base_mb": base}
    queue.put(out)


def isolated(target: Callable[[dict], dict], spec: dict) -> dict:
    """Run ``target(spec)`` in a fresh spawned process: its peak RSS is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, spec, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def repeat(run: Callable[[], Any], times: int, warmup: int = 0) -> tuple[float, Any]:
    """Median wall time of ``times`` runs after ``warmup`` runs, and the last result."""
    out = None
    for _ in range(warmup):
        out = run()
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        out = run()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), out


def machine() -> str:
    """One line: CPU, cores, memory, Python, OS."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}")


def seconds(t: float) -> str:
    """Human-readable duration."""
    if t != t:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"
