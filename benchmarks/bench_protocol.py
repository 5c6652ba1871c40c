"""Issue 14's benchmark: the decentralised protocol and the attacker's queries.

One run, on ``pve_like`` at Q2 unless stated, each case in a fresh process
(:func:`harness.isolated`), ratios taken against peers measured in the same run:

* ``exact`` against ``dual`` and ``nids`` (time, iterations, distance to the oracle);
* plain ``dgd`` as the paper runs it (converged or not);
* a ``pluralguard attack`` scenario (:func:`pluralguard.eval.scenario.run_scenario`)
  with ``robust_mixing`` against the same scenario undefended (attacks ``protocol``
  and ``sybil``, same seed and budget);
* an attack query after one agent changed its declaration, through
  :meth:`~pluralguard.core.mechanism.Mechanism.session`, against a full solve;
* 100,000 ``blobs`` agents, declared bounds, ``max_links=16``.

Usage::

    python benchmarks/bench_protocol.py [--repeat 3] [--skip-dgd] [--skip-100k]
"""

from __future__ import annotations

import argparse
import sys

from harness import isolated, machine, repeat, seconds, table

BOUNDS = "quantile:0.5"


def method_case(spec: dict) -> dict:
    """One solve of pve_like with a method; its distance to the oracle's optimum."""
    from pluralguard.core import datasets, solve_agreements, solve_oracle
    from pluralguard.core.geometry import normalised_distance

    pop = datasets.load("pve_like")
    t, res = repeat(lambda: solve_agreements(pop, BOUNDS, method=spec["method"]),
                    spec["repeat"])
    oracle = solve_oracle(pop, BOUNDS, labels=res.labels)
    gap = float(normalised_distance(res.X, res.W, oracle.X, oracle.W)[oracle.feasible].max())
    return {"time": t, "n_iter": res.n_iter, "converged": res.converged,
            "groups": res.n_groups, "oracle": gap, "timings": res.timings}


def scenario_case(spec: dict) -> dict:
    """One run_scenario (fresh cache), timed."""
    import time

    from pluralguard.core import datasets
    from pluralguard.eval.scenario import RunCache, run_scenario

    pop = datasets.load("pve_like")
    mech = {"kind": "agreements", "bounds": BOUNDS, **spec.get("mechanism", {})}
    t0 = time.perf_counter()
    out = run_scenario(pop, mech, attack=spec["attack"], defense=spec["defense"],
                       budget=0.1, seed=0, cache=RunCache())
    return {"time": time.perf_counter() - t0, "n_iter": out.row["solver_iterations"],
            "converged": bool(out.row["converged"])}


def query_case(spec: dict) -> dict:
    """An attack query (one agent moved) through a session, against a full solve."""
    import numpy as np

    from pluralguard.core import datasets
    from pluralguard.core.mechanism import Mechanism

    pop = datasets.load("pve_like") if spec["population"] == "pve_like" else \
        datasets.load("blobs", n=2_000, k=2, m=3, centers=8, seed=0)
    mech = Mechanism("agreements", {"bounds": spec["bounds"]})
    rng = np.random.default_rng(0)
    moved = []
    for _ in range(spec["queries"]):
        a = int(rng.integers(pop.n))
        X = pop.X.copy()
        X[a] = np.clip(X[a] + rng.normal(0, 0.2, X[a].shape), -1, 1)
        moved.append(pop.replace(X=X))
    ask = mech.session(pop)
    ask(pop)  # the base answer, computed once per session
    t_full, _ = repeat(lambda: [mech(p) for p in moved], 1)
    t_query, answers = repeat(lambda: [ask(p) for p in moved], 1)
    same = all(np.array_equal(a.labels, mech(p).labels) and np.array_equal(a.X, mech(p).X)
               for a, p in zip(answers[:3], moved[:3], strict=True))
    return {"full": t_full / len(moved), "query": t_query / len(moved), "same": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-dgd", action="store_true")
    parser.add_argument("--skip-100k", action="store_true")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\n", flush=True)
    rows = []
    exact = isolated(method_case, {"method": "exact", "repeat": args.repeat})
    rows.append(["pve_like Q2 exact", seconds(exact["time"]), 0, "1.0×",
                 f"{exact['oracle']:.1e}", f"{exact['groups']} groups"])
    print(rows[-1], flush=True)
    methods = ["dual", "nids"] + ([] if args.skip_dgd else ["dgd"])
    for method in methods:
        r = isolated(method_case, {"method": method, "repeat": 1})
        rows.append([f"pve_like Q2 {method}", seconds(r["time"]), r["n_iter"],
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
    for population, bounds in (("pve_like", BOUNDS), ("pve_like", "declared"),
                               ("blobs", "declared")):
        if population == "pve_like" and bounds == "declared":
            continue
        r = isolated(query_case, {"population": population, "bounds": bounds,
                                  "queries": 10})
        rows.append([f"query after one agent moved, {population} {bounds}",
                     f"{seconds(r['query'])} vs full {seconds(r['full'])}", "—",
                     f"{r['query'] / r['full']:.0%}", "—",
                     "identical" if r["same"] else "DIFFERENT"])
        print(rows[-1], flush=True)
    if not args.skip_100k:
        from bench_core import solve_case

        r = isolated(solve_case, {"population": "blobs", "bounds": "declared",
                                  "method": "exact", "solver": {"max_links": 16},
                                  "params": {"n": 100_000, "k": 2, "m": 3, "centers": 8,
                                             "seed": 0}, "repeat": 1})
        t = r["timings"]
        rows.append(["blobs 100,000 declared exact (max_links=16)", seconds(r["time"]), 0,
                     "—", "—", f"{r['groups']} groups; network {seconds(t['network'])}, "
                     f"linking {seconds(t['linking'])}"])
        print(rows[-1], flush=True)
    print()
    print("\n".join(table(["case", "time", "iterations", "ratio", "δ to oracle",
                           "outcome"], rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
