"""Core benchmark: agreement solves and the ℓp baseline; prints a markdown table.

Each case runs in a fresh process (:func:`harness.isolated`), so its peak resident
memory is its own (the interpreter-plus-imports baseline is shown beside it). Times
are medians of ``--repeat`` runs; the ℓp cases take a warm-up run first.

Usage::

    python benchmarks/bench_core.py [--repeat 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import DEFAULT_DATA, ESS8, isolated, machine, repeat, seconds, table


def load(spec: dict):
    from pluralguard.core import datasets
    from pluralguard.core.datasets import read_lera_csv

    name = spec["population"]
    if name == "ess8":
        return read_lera_csv(Path(spec["data"]) / ESS8, name="ess8")
    return datasets.load(name, **spec.get("params", {}))


def solve_case(spec: dict) -> dict:
    """One agreement solve: time, iterations, phase shares."""
    from pluralguard.core import solve_agreements

    pop = load(spec)
    kwargs = spec.get("solver", {})
    t, out = repeat(lambda: solve_agreements(pop, spec["bounds"], method=spec["method"],
                                             **kwargs), spec["repeat"])
    return {"time": t, "n": pop.n, "n_iter": out.n_iter, "groups": out.n_groups,
            "converged": out.converged, "timings": out.timings}


def lp_case(spec: dict) -> dict:
    from pluralguard.core import datasets, limit_p, lp_consensus

    pop = datasets.load("evs2017")
    if spec["p"] == "limit":
        t, out = repeat(lambda: limit_p(pop, "W"), spec["repeat"], warmup=1)
        return {"time": t, "n": pop.n, "note": f"limit p (W) = {out}"}
    t, out = repeat(lambda: lp_consensus(pop, spec["p"]), spec["repeat"], warmup=1)
    return {"time": t, "n": pop.n, "note": f"U_p X {out.U_p_X:.4g}, W {out.U_p_W:.4g}"}


def core_cases(data: Path, repeat_: int) -> list[dict]:
    """The cases of the core issue: pve_like at Q1/Q2, ESS-8, and the ℓp baseline."""
    cases = []
    for method in ("exact", "dual"):
        for q in ("0.25", "0.5"):
            cases.append({"label": f"pve_like (876) quantile:{q} {method}",
                          "population": "pve_like", "bounds": f"quantile:{q}",
                          "method": method, "repeat": repeat_ if method == "exact" else 1})
    if (data / ESS8).is_file():
        for method in ("exact", "dual"):
            cases.append({"label": f"ESS-8 (39,939) quantile:0.5 {method}",
                          "population": "ess8", "data": str(data), "bounds": "quantile:0.5",
                          "method": method, "repeat": repeat_})
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\n")
    rows = []
    for spec in core_cases(args.data, args.repeat):
        r = isolated(solve_case, spec)
        rows.append([spec["label"], r["n"], seconds(r["time"]), r["n_iter"],
                     f"{r['peak_mb']:.0f} MB ({r['base_mb']:.0f})",
                     f"{r['groups']} groups, {'converged' if r['converged'] else 'NOT'}"])
        print(rows[-1], flush=True)
    for p in ("1", "2", "inf", "3", "limit"):
        r = isolated(lp_case, {"p": p, "repeat": max(args.repeat, 20)})
        rows.append([f"lp_consensus evs2017 p={p}", r["n"], seconds(r["time"]), "—",
                     f"{r['peak_mb']:.0f} MB ({r['base_mb']:.0f})", r["note"]])
        print(rows[-1], flush=True)
    print()
    print("\n".join(table(["case", "n", "median time", "iterations",
                           "peak RSS (baseline)", "result"], rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
