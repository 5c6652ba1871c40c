"""Core benchmark: agreement solves and the ℓp baseline; prints a table.

Each case runs in a fresh subprocess, so the peak resident memory (ru_maxrss) is the
case's own; the interpreter-plus-imports baseline is reported alongside. Times are the
median of ``--repeat`` runs (wall clock, after one warm-up for the fast cases).

Usage::

    python benchmarks/bench_core.py [--repeat 3] [--data ../shared/data] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"
ESS8 = "trevorrow_ess8/ess8_all_individual_value_systems.csv"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(spec: dict, queue: mp.Queue) -> None:
    """Run one case in this (fresh) process; report times, memory and a summary."""
    import numpy as np

    from pluralguard.core import datasets, limit_p, lp_consensus, solve_agreements
    from pluralguard.core.datasets import read_lera_csv

    base = _rss_mb()
    if spec["kind"] == "solve":
        if spec["population"] == "ess8":
            pop = read_lera_csv(Path(spec["data"]) / ESS8)
        else:
            pop = datasets.load(spec["population"])

        def run():
            return solve_agreements(pop, spec["bounds"], method=spec["method"])
    elif spec["kind"] == "lp":
        pop = datasets.load("evs2017")

        def run():
            return lp_consensus(pop, spec["p"])
    else:
        pop = datasets.load("evs2017")

        def run():
            return limit_p(pop, "W")
    times, out = [], None
    for _ in range(spec["repeat"] + spec.get("warmup", 0)):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    times = times[spec.get("warmup", 0):]
    if spec["kind"] == "solve":
        note = (f"{out.n_groups} groups, n_iter {out.n_iter}, "
                f"{'converged' if out.converged else 'NOT converged'}")
    elif spec["kind"] == "lp":
        note = f"U_p X {out.U_p_X:.4g}, W {out.U_p_W:.4g}"
    else:
        note = f"limit p = {out}"
    queue.put({"median_s": statistics.median(times), "min_s": min(times),
               "peak_mb": _rss_mb(), "base_mb": base, "n": int(pop.n), "note": note,
               "numpy": np.__version__})


def run_case(spec: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(spec, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def machine() -> str:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=os.environ.get("PLURALGUARD_SHARED_DATA",
                                                         str(DEFAULT_DATA)))
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    cases = []
    for method in ("exact", "dual", "dgd"):
        for q in ("0.25", "0.5"):
            cases.append({"label": f"solve pve_like (876) quantile:{q} {method}",
                          "kind": "solve", "population": "pve_like",
                          "bounds": f"quantile:{q}", "method": method,
                          "repeat": 1 if method != "exact" else args.repeat})
    if (Path(args.data) / ESS8).is_file():
        for method in ("exact", "dual"):
            for q in ("0.25", "0.5"):
                cases.append({"label": f"solve ESS-8 (39,939) quantile:{q} {method}",
                              "kind": "solve", "population": "ess8", "data": args.data,
                              "bounds": f"quantile:{q}", "method": method,
                              "repeat": args.repeat})
    else:
        print(f"note: {Path(args.data) / ESS8} not found; ESS-8 cases skipped",
              file=sys.stderr)
    for p in ("1", "2", "inf", "3"):
        cases.append({"label": f"lp_consensus evs2017 p={p}", "kind": "lp", "p": p,
                      "repeat": max(args.repeat, 20), "warmup": 1})
    cases.append({"label": "limit_p evs2017 (W)", "kind": "limit", "repeat": args.repeat,
                  "warmup": 1})

    lines = [f"Machine: {machine()}", "",
             "| case | n | median time | peak RSS (baseline) | result |",
             "|---|---:|---:|---:|---|"]
    print(lines[0])
    for spec in cases:
        r = run_case(spec)
        t = r["median_s"]
        shown = f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"
        row = (f"| {spec['label']} | {r['n']} | {shown} | {r['peak_mb']:.0f} MB "
               f"({r['base_mb']:.0f} MB) | {r['note']} |")
        lines.append(row)
        print(row, flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    print(json.dumps({"cases": len(cases)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
