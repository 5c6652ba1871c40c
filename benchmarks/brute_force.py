"""Attacks against the exhaustive best response on tiny populations: the table that
sets ``best_response``'s default query budget.

For every case of tests/brute_force_cases.py: the exhaustive optimum of the goal's
measure (:func:`pluralguard.attacks.exhaustive_search`), and what ``best_response``
finds in white-box and black-box mode with a given query budget, as a ratio of the
optimum; with ``--recipes`` also every applicable fixed recipe. Prints a markdown table
and the mean and minimum ratios.

Usage::

    python benchmarks/brute_force.py [--queries 300] [--cases NAME,...] [--recipes]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from brute_force_cases import CASES  # noqa: E402
from harness import machine, table  # noqa: E402

from pluralguard.attacks import ATTACKS, exhaustive_search  # noqa: E402
from pluralguard.core.errors import InputError  # noqa: E402

TOL = 1e-12


def ratio(found: float, optimum: float) -> float:
    """found / optimum; 1 when both are 0 (nothing to find), NaN when only the optimum is."""
    if optimum <= TOL:
        return 1.0 if found >= -TOL else float("nan")
    return found / optimum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=None,
                        help="best_response query budget (default: its default)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--recipes", action="store_true", help="also every fixed recipe")
    args = parser.parse_args(argv)
    wanted = set(args.cases.split(",")) if args.cases else None
    rows, ratios = [], {"white": [], "black": []}
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        start = time.perf_counter()
        ref = exhaustive_search(case.population, case.mechanism, case.threat_model(),
                                case.budget)
        seconds = time.perf_counter() - start
        row = {"case": case.name, "optimum": f"{ref.value:.6g}",
               "exhaustive": f"{ref.queries} q, {seconds:.1f} s"}
        for knowledge in ("white", "black"):
            queries = args.queries or ATTACKS["best_response"]().threat.queries
            attack = ATTACKS["best_response"](threat=case.threat_model(knowledge, queries))
            plan = attack.plan(case.population, case.mechanism, case.budget)
            found = plan.info["score"]
            r = ratio(found, ref.value)
            ratios[knowledge].append(r)
            row[knowledge] = f"{found:.6g} ({r:.3f}, {plan.queries} q)"
        if args.recipes:
            for name, cls in ATTACKS.items():
                if name == "best_response":
                    continue
                try:
                    plan = cls(threat=case.threat_model()).plan(
                        case.population, case.mechanism, case.budget)
                except InputError:
                    continue
                found = plan.measure(case.population, case.mechanism(case.population),
                                     case.mechanism(plan.declared))[0]
                row[name] = f"{ratio(found, ref.value):.3f}"
        rows.append(row)
        print(f"{case.name}: {row}", file=sys.stderr, flush=True)
    columns = list(dict.fromkeys(c for r in rows for c in r))
    print(f"Measured on {machine()}.\n")
    print("\n".join(table(columns, [[r.get(c, "—") for c in columns] for r in rows])))
    for knowledge, values in ratios.items():
        valid = [v for v in values if v == v]
        if valid:
            print(f"\n{knowledge}-box: mean ratio {statistics.fmean(valid):.4f}, "
                  f"min {min(valid):.4f} over {len(valid)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
