"""All benchmarks, with peers measured in the same run; writes benchmarks/RESULTS.md.

Sections:

1. ℓp single consensus (``lp_consensus``) per solve at p ∈ {1, 2, ∞, 3}, and limit p /
   transition p on ``evs2017``, against CVXPY solving the same ℓp problems (both
   targets, X and W; ECOS for the LPs at p = 1, ∞, CVXPY's default conic solver
   otherwise) — the toolchain of Lera-Leri et al.'s pipeline;
2. ``solve_agreements`` (fast path ``exact``, message passing ``dual`` and ``dgd``) on
   ``pve_like`` at Q1/Q2/Q3/max, the 39,939-agent ESS-8 table, and seeded synthetic
   populations of 1k, 10k and 100k agents: time, iterations, time per iteration, peak
   memory, and the share of time per phase (network, linking, optimisation; for
   message passing, mixing and projection);
3. the centralised oracle on the 876-agent problem;
4. the default suite: wall time, and the share spent in clean runs, attacked runs and
   adaptive search;
5. the same suite on a Dask local cluster with 1 and 2 workers: identical results?
   speed-up;
6. the decentralised protocol and attack queries (``bench_protocol.py``): message
   passing against the fast path, robust mixing against no defense, session queries
   against full solves, 100,000 agents — each ratio against its peer in the same run.

Usage::

    python benchmarks/run.py [--sections 1,2,3,4,5,6] [--repeat 3] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import gc
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_core import lp_case, solve_case
from harness import DEFAULT_DATA, ESS8, HERE, isolated, machine, repeat, seconds, table

PS = ("1", "2", "inf", "3")


# ------------------------------------------------------------------ 1. ℓp vs CVXPY
def _cvxpy_solver(p: float) -> str | None:
    return "ECOS" if p in (1.0, math.inf) else None


def cvxpy_solve(pop) -> Callable[[float], dict[str, tuple[np.ndarray, float]]]:
    """The same ℓp problems in CVXPY: min ‖A x − b‖_p, A = stacked w^{1/p} I (per target).

    Each call builds both targets' problems anew (X and W), as a pipeline would.
    """
    import cvxpy as cp

    n = pop.n
    targets = {"X": pop.X.reshape(n, -1), "W": pop.W}

    def solve(p: float) -> dict[str, tuple[np.ndarray, float]]:
        out = {}
        for name, B in targets.items():
            d = B.shape[1]
            x = cp.Variable(d)
            A = np.kron(np.ones((n, 1)), np.eye(d))
            prob = cp.Problem(cp.Minimize(cp.norm(A @ x - B.ravel(), p)))
            prob.solve(solver=_cvxpy_solver(p))
            out[name] = (np.asarray(x.value), float(prob.value))
        return out

    return solve


def paired_case(spec: dict) -> dict:
    """``lp_consensus`` and CVXPY on the same problem, interleaved round by round.

    Each round times ``batch`` calls of ours (per call) and one CVXPY solve of both
    targets, so drifts of the machine's speed hit both alike; the ratio is the median
    of the per-round ratios. The garbage collector is paused inside each round, as
    ``timeit`` does, so the objects CVXPY leaves behind do not bill their collection
    to whichever call happens to trigger it.
    """
    from pluralguard.core import datasets, lp_consensus

    pop = datasets.load("evs2017")
    solve = cvxpy_solve(pop)
    p = math.inf if spec["p"] == "inf" else float(spec["p"])
    ours, out = lp_consensus(pop, spec["p"]), solve(p)  # warm-up
    batch, t_ours, t_peer = spec["batch"], [], []
    for _ in range(spec["rounds"]):
        gc.collect()  # as timeit does: no collector pauses inside a timing, for both
        gc.disable()
        t0 = time.perf_counter()
        for _ in range(batch):
            ours = lp_consensus(pop, spec["p"])
        t_ours.append((time.perf_counter() - t0) / batch)
        t0 = time.perf_counter()
        out = solve(p)
        t_peer.append(time.perf_counter() - t0)
        gc.enable()
    gap = max(abs(out["X"][1] - ours.U_p_X), abs(out["W"][1] - ours.U_p_W))
    unique = p not in (1.0, math.inf)
    dx = (max(np.abs(out["X"][0] - ours.X[0].ravel()).max(),
              np.abs(out["W"][0] - ours.W[0]).max()) if unique else float("nan"))
    return {"ours": statistics.median(t_ours), "peer": statistics.median(t_peer),
            "ratio": statistics.median(b / a for a, b in zip(t_ours, t_peer, strict=True)),
            "note": f"|ΔU_p| {gap:.1e}" + (f", |Δx| {dx:.1e}" if unique else
                                           " (minimiser not unique)")}


def sweep_case(spec: dict) -> dict:
    """Lera-Leri et al.'s limit/transition sweep in CVXPY: one solve per grid point."""
    from pluralguard.core import datasets

    solve = cvxpy_solve(datasets.load("evs2017"))
    grid = np.round(1 + 0.1 * np.arange(1, 991), 10)
    x1 = solve(1.0)["W"][0]
    xinf = solve(math.inf)["W"][0]
    t0 = time.perf_counter()
    answer = float("nan")
    best = math.inf
    for p in grid[grid < (100.0 if spec["p"] == "limit" else 10.0)]:
        xp = solve(float(p))["W"][0]
        if spec["p"] == "limit":
            ratio = np.linalg.norm(xp - xinf, p) / max(np.linalg.norm(x1 - xinf, 1), 1e-300)
            if ratio < 1e-4:
                answer = float(p)
                break
        else:
            gap = abs(np.linalg.norm(x1 - xp, p) - np.linalg.norm(xinf - xp, p))
            if gap < best:
                best, answer = gap, float(p)
            if gap < 1e-4:
                break
    return {"time": time.perf_counter() - t0, "note": f"{spec['p']} p (W) = {answer:g} "
            "(CVXPY ties broken by the solver)"}


def transition_case(spec: dict) -> dict:
    from pluralguard.core import datasets, transition_p

    pop = datasets.load("evs2017")
    t, out = repeat(lambda: transition_p(pop, "W"), spec["repeat"], warmup=1)
    return {"time": t, "n": pop.n, "note": f"transition p (W) = {out}"}


def section_lp(rep: int) -> list[str]:
    rows = []
    for p in PS:
        r = isolated(paired_case, {"p": p, "rounds": max(rep, 30), "batch": 20})
        rows.append([f"p = {'∞' if p == 'inf' else p}", seconds(r["ours"]),
                     seconds(r["peer"]), f"{r['ratio']:.0f}×", r["note"]])
        print(rows[-1], flush=True)
    for which, case in (("limit", {"p": "limit"}), ("transition", {})):
        ours = isolated(lp_case if which == "limit" else transition_case,
                        {"repeat": rep, **case})
        peer = isolated(sweep_case, {"p": which})
        rows.append([f"{which} p (W)", seconds(ours["time"]), seconds(peer["time"]),
                     f"{peer['time'] / ours['time']:.0f}×",
                     f"ours: {ours['note']}; CVXPY sweep: {peer['note']}"])
        print(rows[-1], flush=True)
    return ["## 1. ℓp single consensus vs CVXPY (evs2017, 34 agents)", "",
            "Per call; CVXPY solves both targets (X and W) as `lp_consensus` does, "
            "building each problem anew as a pipeline would. The p rows interleave the "
            "two in one process (30 rounds of 20 calls of ours and one CVXPY solve, "
            "garbage collector paused within a round as `timeit` does): medians, and "
            "the median of the per-round ratios. The limit/transition rows "
            "time Lera-Leri et al.'s sweep over the p-grid.", "",
            *table(["case", "pluralguard", "CVXPY", "ratio", "agreement"], rows), ""]


# ------------------------------------------------------------- 2. agreement solves
def solve_cases(data: Path, rep: int) -> list[dict]:
    cases = []
    for q in ("0.25", "0.5", "0.75", "1.0"):
        for method in ("exact", "dual"):
            cases.append({"label": f"pve_like Q{q} {method}", "population": "pve_like",
                          "bounds": f"quantile:{q}", "method": method,
                          "repeat": rep if method == "exact" else 1})
    cases.append({"label": "pve_like Q0.5 dgd", "population": "pve_like",
                  "bounds": "quantile:0.5", "method": "dgd", "repeat": 1})
    if (data / ESS8).is_file():
        for method in ("exact", "dual", "dgd"):
            cases.append({"label": f"ESS-8 (39,939) Q0.5 {method}", "population": "ess8",
                          "data": str(data), "bounds": "quantile:0.5", "method": method,
                          "repeat": rep if method == "exact" else 1})
    for n, methods in ((1_000, ("exact", "dual")), (10_000, ("exact", "dual")),
                       (100_000, ("exact",))):
        for method in methods:
            solver = {"max_links": 16} if n > 1_000 else {}
            cases.append({"label": f"blobs {n:,} declared {method}"
                                   + (" (max_links=16)" if solver else ""),
                          "population": "blobs",
                          "params": {"n": n, "k": 2, "m": 3, "centers": 8, "seed": 0},
                          "bounds": "declared", "method": method, "solver": solver,
                          "repeat": 1})
    return cases


def _shares(timings: dict[str, float]) -> str:
    total = sum(timings.get(k, 0.0) for k in ("bounds", "network", "linking",
                                              "optimisation", "readout"))
    parts = [f"{k} {timings[k] / total:.0%}" for k in ("network", "linking", "optimisation")
             if k in timings]
    if "mixing" in timings:
        parts.append(f"(mixing {timings['mixing'] / total:.0%}, projection "
                     f"{timings['projection'] / total:.0%})")
    return ", ".join(parts)


def section_solve(data: Path, rep: int) -> tuple[list[str], dict[str, float]]:
    rows, measured = [], {}
    for spec in solve_cases(data, rep):
        r = isolated(solve_case, spec)
        per_iter = r["time"] / r["n_iter"] if r["n_iter"] else float("nan")
        rows.append([spec["label"], f"{r['n']:,}", seconds(r["time"]), r["n_iter"],
                     seconds(per_iter), f"{r['peak_mb']:.0f} MB", _shares(r["timings"]),
                     f"{r['groups']} groups{'' if r['converged'] else ', NOT converged'}"])
        measured[spec["label"]] = r["time"]
        measured[spec["label"] + " memory"] = r["peak_mb"]
        print(rows[-1], flush=True)
    return (["## 2. Agreement solves", "",
             "Median of repeated runs for `exact`, one run for message passing; peak RSS of "
             "the whole process (Python and libraries included, about 120 MB); phase shares "
             "from the result's `timings`.", "",
             *table(["case", "agents", "time", "iterations", "per iteration", "peak RSS",
                     "where the time goes", "outcome"], rows), ""], measured)


def oracle_case(spec: dict) -> dict:
    from pluralguard.core import datasets, solve_agreements, solve_oracle

    pop = datasets.load("pve_like")
    labels = solve_agreements(pop, "quantile:0.5").labels
    t, out = repeat(lambda: solve_oracle(pop, "quantile:0.5", labels=labels), spec["repeat"])
    return {"time": t, "note": f"{out.n_groups} groups, all feasible: {bool(out.feasible.all())}"}


def section_oracle(rep: int) -> list[str]:
    r = isolated(oracle_case, {"repeat": rep})
    return ["## 3. Centralised oracle", "",
            f"`solve_oracle` (one interior-point conic solve per group, polished) on "
            f"pve_like at Q2 with the partition given: {seconds(r['time'])}, peak "
            f"{r['peak_mb']:.0f} MB ({r['note']}).", ""]


# ------------------------------------------------------------------ 4–5. suites
def _run_suite(out: Path, executor: str, jobs: int) -> float:
    from pluralguard.eval.runner import run_suite
    from pluralguard.eval.suite import load_suite

    t0 = time.perf_counter()
    run_suite(load_suite(None), out, executor=executor, jobs=jobs, progress=False,
              fresh=True, report=False)
    return time.perf_counter() - t0


def section_suite(tmp: Path, dask: bool) -> tuple[list[str], dict[str, float]]:
    import pandas as pd

    lines, measured = ["## 4. The default suite", ""], {}
    wall = _run_suite(tmp / "local", "local", 2)
    measured["suite"] = wall
    t = pd.read_csv(tmp / "local" / "timings.csv")
    rows = len(pd.read_csv(tmp / "local" / "results.csv"))
    total = float(t["total"].sum())
    adaptive = float(t.loc[t["attack"] == "best_response", "plan"].sum())
    planning = float(t["plan"].sum()) - adaptive
    lines += [f"`pluralguard run` (no report), local executor with 2 processes: "
              f"**{seconds(wall)}** wall for {rows} rows. Of {seconds(total)} of run time "
              f"(summed over workers): clean runs {t['clean'].sum() / total:.0%}, attacked "
              f"runs {t['attacked'].sum() / total:.0%}, adaptive search (best_response "
              f"planning) {adaptive / total:.0%}, other attack planning "
              f"{planning / total:.0%}.", ""]
    if dask:
        w1 = _run_suite(tmp / "dask1", "dask", 1)
        w2 = _run_suite(tmp / "dask2", "dask", 2)
        same = all(filecmp.cmp(tmp / "local" / "results.csv", tmp / d / "results.csv",
                               shallow=False) for d in ("dask1", "dask2"))
        measured |= {"dask1": w1, "dask2": w2}
        lines += ["## 5. The default suite on a Dask local cluster", "",
                  *table(["executor", "workers", "wall time", "results.csv"],
                         [["local (joblib)", 2, seconds(wall), "reference"],
                          ["dask LocalCluster", 1, seconds(w1),
                           "identical" if same else "DIFFERENT"],
                          ["dask LocalCluster", 2, seconds(w2),
                           "identical" if same else "DIFFERENT"]]),
                  "", f"Speed-up from 1 to 2 Dask workers: {w1 / w2:.2f}×.", ""]
    return lines, measured


# ------------------------------------------------------------------------ main
def targets(measured: dict[str, float]) -> list[str]:
    def row(name: str, key: str, limit: float, unit: str = "s") -> list[str]:
        value = measured.get(key)
        if value is None:
            return [name, "not measured", f"≤ {limit:g} {unit}", "—"]
        return [name, f"{value:.2f} {unit}", f"≤ {limit:g} {unit}",
                "met" if value <= limit else "NOT met"]

    rows = [row("876-agent solve, fast path", "pve_like Q0.5 exact", 1),
            row("876-agent solve, dual", "pve_like Q0.5 dual", 10),
            row("39,939-agent ESS-8 solve, fast path", "ESS-8 (39,939) Q0.5 exact", 30),
            row("ESS-8 peak memory", "ESS-8 (39,939) Q0.5 exact memory", 2048, "MB"),
            row("default suite, 2 cores", "suite", 180)]
    return ["## Targets", "", *table(["target", "measured", "bound", "status"], rows), ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="1,2,3,4,5,6")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    sections = {int(s) for s in args.sections.split(",")}
    lines = ["# pluralguard benchmarks", "",
             f"Measured on {dt.date.today().isoformat()} by `python benchmarks/run.py "
             f"--sections {args.sections}`.", "", f"Machine: {machine()}.", ""]
    measured: dict[str, float] = {}
    body: list[str] = []
    if 1 in sections:
        body += section_lp(args.repeat)
    if 2 in sections:
        part, m = section_solve(args.data, args.repeat)
        body += part
        measured |= m
    if 3 in sections:
        body += section_oracle(args.repeat)
    if sections & {4, 5}:
        with tempfile.TemporaryDirectory() as tmp:
            part, m = section_suite(Path(tmp), dask=5 in sections)
        body += part
        measured |= m
    if 6 in sections:
        from bench_protocol import HEADER, load_line, protocol_rows

        before = load_line()
        rows = protocol_rows(args.repeat)
        body += ["## 6. The decentralised protocol and attack queries", "",
                 f"`bench_protocol.py`; {before} before, {load_line()} after.", "",
                 *table(HEADER, rows), ""]
    text = "\n".join(lines + targets(measured) + body).rstrip() + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
