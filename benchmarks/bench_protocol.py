"""Issue 14's benchmark: the decentralised protocol and the attacker's queries.

One run, on ``pve_like`` at Q2 unless stated, each case in a fresh process
(:func:`harness.isolated`) after one warm-up call (compiled kernels loaded), ratios
taken against peers measured in the same run:

* ``exact`` against ``dual`` and ``nids``: honest solves (no hook: they start at the
  fast path's fixed point and confirm it by message passing) and cold solves (the
  protocol from its real start, as a protocol attack faces it); time, iterations,
  distance to the oracle;
* plain ``dgd`` as the paper runs it (converged or not);
* a ``pluralguard attack`` scenario (:func:`pluralguard.eval.scenario.run_scenario`)
  with ``robust_mixing`` against the same scenario undefended (attacks ``protocol``
  and ``sybil``, same seed and budget);
* attack queries through :meth:`~pluralguard.core.mechanism.Mechanism.session`
  (one agent moved; three Sybils appended) against full solves of the same
  populations, with a check that the answers are identical;
* 100,000 ``blobs`` agents, declared bounds, ``max_links=16``.

The machine line and the load averages before and after say how loaded the machine
was (the ratios are fair either way; absolute times are not).

Usage::

    python benchmarks/bench_protocol.py [--repeat 3] [--skip-dgd] [--skip-100k]
"""

from __future__ import annotations

import argparse
import os
import sys

from harness import isolated, machine, repeat, seconds, table

BOUNDS = "quantile:0.5"


def method_case(spec: dict) -> dict:
    """Solves of pve_like with a method (after a warm-up); distance to the oracle."""
    from pluralguard.core import datasets, solve_agreements, solve_oracle
    from pluralguard.core.geometry import normalised_distance

    pop = datasets.load("pve_like")
    kwargs = spec.get("kwargs", {})
    t, res = repeat(lambda: solve_agreements(pop, BOUNDS, method=spec["method"], **kwargs),
                    spec["repeat"], warmup=spec.get("warmup", 1))
    oracle = solve_oracle(pop, BOUNDS, labels=res.labels)
    gap = float(normalised_distance(res.X, res.W, oracle.X, oracle.W)[oracle.feasible].max())
    return {"time": t, "n_iter": res.n_iter, "converged": res.converged,
            "groups": res.n_groups, "oracle": gap, "timings": res.timings}


def scenario_case(spec: dict) -> dict:
    """One run_scenario (fresh cache) after a warm-up run, timed."""
    import time

    from pluralguard.core import datasets
    from pluralguard.eval.run_cache import RunCache
    from pluralguard.eval.scenario import run_scenario

    pop = datasets.load("pve_like")
    mech = {"kind": "agreements", "bounds": BOUNDS, **spec.get("mechanism", {})}

    def run() -> object:
        return run_scenario(pop, mech, attack=spec["attack"], defense=spec["defense"],
                            budget=0.1, seed=0, cache=RunCache())

    run()
    t0 = time.perf_counter()
    out = run()
    return {"time": time.perf_counter() - t0, "n_iter": out.row["solver_iterations"],
            "converged": bool(out.row["converged"])}


def query_case(spec: dict) -> dict:
    """Attack queries near a base population through a session, against full solves."""
    import numpy as np

    from pluralguard.core import Population, datasets
    from pluralguard.core.mechanism import Mechanism

    pop = datasets.load("pve_like") if spec["population"] == "pve_like" else \
        datasets.load("blobs", n=2_000, k=2, m=3, centers=8, seed=0)
    mech = Mechanism("agreements", {"bounds": spec["bounds"]})
    rng = np.random.default_rng(0)
    queries = []
    for _ in range(spec["queries"]):
        if spec["change"] == "move":
            a = int(rng.integers(pop.n))
            X = pop.X.copy()
            X[a] = np.clip(X[a] + rng.normal(0, 0.2, X[a].shape), -1, 1)
            queries.append(pop.replace(X=X))
        else:  # three Sybils copying a declaration, nudged
            who = rng.integers(0, pop.n, 3)
            queries.append(pop.append(Population(
                np.clip(pop.X[who] + rng.normal(0, 0.05, pop.X[who].shape), -1, 1),
                pop.W[who], gamma_x=pop.gamma_x[who], gamma_w=pop.gamma_w[who],
                agents=[f"sybil{s}" for s in range(3)])))
    ask = mech.session(pop)
    ask(pop)  # the base solve, once per session
    X = pop.X.copy()
    X[0] = X[1]  # a query not timed: both paths warmed up (kernels loaded)
    warm = pop.replace(X=X)
    mech(warm), ask(warm)
    t_full, full = repeat(lambda: [mech(p) for p in queries], 1)
    t_query, answers = repeat(lambda: [ask(p) for p in queries], 1)
    same = all(np.array_equal(a.labels, b.labels) and np.array_equal(a.X, b.X)
               and np.array_equal(a.W, b.W) and (a.membership != b.membership).nnz == 0
               for a, b in zip(answers, full, strict=True))
    return {"full": t_full / len(queries), "query": t_query / len(queries), "same": same}


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


HEADER = ["case", "time", "iterations", "ratio", "δ to oracle", "outcome"]


def protocol_rows(repeat_: int, skip_dgd: bool = False, skip_100k: bool = False) -> list[list]:
    """Every case of the module doc, printed as it is measured; the table's rows."""
    rows = []
    exact = isolated(method_case, {"method": "exact", "repeat": repeat_})
    rows.append(["pve_like Q2 exact", seconds(exact["time"]), 0, "1.0×",
                 f"{exact['oracle']:.1e}", f"{exact['groups']} groups"])
    print(rows[-1], flush=True)
    methods = [("dual", "honest (starts at the fixed point)", {}, repeat_),
               ("dual", "cold (the protocol from its real start)", {"warm_start": False}, 1),
               ("nids", "honest", {}, repeat_),
               ("nids", "cold", {"warm_start": False}, 1),
               ("nids", "cold, tol 1e-4", {"warm_start": False, "tol": 1e-4}, 1)]
    if not skip_dgd:
        methods.append(("dgd", "as the paper runs it", {}, 1))
    for method, label, kwargs, times in methods:
        r = isolated(method_case, {"method": method, "kwargs": kwargs, "repeat": times,
                                   "warmup": 1 if method != "dgd" else 0})
        rows.append([f"pve_like Q2 {method}, {label}", seconds(r["time"]), r["n_iter"],
                     f"{r['time'] / exact['time']:.1f}×", f"{r['oracle']:.1e}",
                     f"{r['groups']} groups, " + ("converged" if r["converged"]
                                                  else "NOT converged")])
        print(rows[-1], flush=True)
    for attack, mech in (("protocol", {"method": "dual"}), ("sybil", {})):
        plain = isolated(scenario_case, {"attack": attack, "defense": None,
                                         "mechanism": mech})
        robust = isolated(scenario_case, {"attack": attack, "defense": "robust_mixing",
                                          "mechanism": mech})
        rows.append([f"scenario {attack} on pve_like Q2, robust_mixing vs undefended",
                     f"{seconds(robust['time'])} vs {seconds(plain['time'])}",
                     robust["n_iter"], f"{robust['time'] / plain['time']:.1f}×", "—",
                     "converged" if robust["converged"] else "NOT converged (attacked)"])
        print(rows[-1], flush=True)
    for population, bounds, change in (("pve_like", BOUNDS, "move"),
                                       ("pve_like", BOUNDS, "sybils"),
                                       ("pve_like", "declared", "move"),
                                       ("blobs", "declared", "move")):
        r = isolated(query_case, {"population": population, "bounds": bounds,
                                  "change": change, "queries": 20})
        what = "one agent moved" if change == "move" else "three Sybils appended"
        rows.append([f"session query, {what}, {population} {bounds}",
                     f"{seconds(r['query'])} vs full {seconds(r['full'])}", "—",
                     f"{r['query'] / r['full']:.0%}", "—",
                     "identical" if r["same"] else "DIFFERENT"])
        print(rows[-1], flush=True)
    if not skip_100k:
        from bench_core import solve_case

        r = isolated(solve_case, {"population": "blobs", "bounds": "declared",
                                  "method": "exact", "solver": {"max_links": 16},
                                  "params": {"n": 100_000, "k": 2, "m": 3, "centers": 8,
                                             "seed": 0}, "repeat": 1})
        t = r["timings"]
        rows.append(["blobs 100,000 declared exact (max_links=16)", seconds(r["time"]), 0,
                     "—", "—", f"{r['groups']} groups; network {seconds(t['network'])}, "
                     f"linking {seconds(t['linking'])}, readout {seconds(t['readout'])}"])
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-dgd", action="store_true")
    parser.add_argument("--skip-100k", action="store_true")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}", flush=True)
    print(f"Before: {load_line()}\n", flush=True)
    rows = protocol_rows(args.repeat, args.skip_dgd, args.skip_100k)
    print(f"\nAfter: {load_line()}\n")
    print("\n".join(table(HEADER, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
