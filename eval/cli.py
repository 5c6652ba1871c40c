"""The ``pluralguard`` command line: a thin layer over the public API.

Every command has ``--help`` with an example. Bad input prints one line on stderr
naming the problem and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from pluralguard.core import datasets
from pluralguard.core.consensus import lp_consensus
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import UTILITIES
from pluralguard.core.linking import LINK_RULES
from pluralguard.core.message_passing import METHODS
from pluralguard.core.solver import solve_agreements

from .sources import load_source

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage errors exit 2, as argparse's do)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_source(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("population (one of)")
    src.add_argument("--dataset", metavar="NAME",
                     help=f"registered dataset: {', '.join(datasets.available())}")
    src.add_argument("--population", metavar="FILE.csv", help="population file")
    src.add_argument("--format", default="auto", choices=["auto", "pluralguard", "lera"],
                     help="format of --population (default: from its columns)")
    src.add_argument("--weights", choices=["none", "respondents", "population"],
                     help="weighting mode of the EVS table or a Lera-Leri file")
    src.add_argument("--seed", type=int, help="seed of a synthetic dataset")


def _source(args: argparse.Namespace):
    return load_source(args.dataset, args.population, file_format=args.format,
                       weights=args.weights, seed=args.seed)


def _dump(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def _top_values(W: np.ndarray, names: Sequence[str], top: int = 3) -> str:
    order = np.argsort(-W)[:top]
    return ", ".join(f"{names[v]} {W[v]:.2f}" for v in order)


# ---------------------------------------------------------------------- solve
def cmd_solve(args: argparse.Namespace) -> int:
    pop = _source(args)
    res = solve_agreements(pop, bounds=args.bounds, method=args.method, utility=args.utility,
                           link_rule=args.link_rule)
    if args.json:
        _dump(res.to_dict(pop.agents))
        return 0
    sizes = res.group_sizes
    mean_u = np.bincount(res.labels, res.utilities) / sizes
    order = np.argsort(-sizes, kind="stable")
    shown = order[: args.top]
    table = pd.DataFrame({
        "group": shown,
        "size": sizes[shown],
        "consensus": res.consensus[shown],
        "mean utility": mean_u[shown].round(4),
        "value weights (top 3)": [_top_values(res.W[g], pop.values) for g in shown],
    })
    print(f"{pop!r}")
    print(f"bounds {res.bounds} (γx={np.median(res.gamma_x):.4g}, "
          f"γw={np.median(res.gamma_w):.4g} median), method {res.method}, "
          f"link rule {res.link_rule}: {res.message}")
    print(f"links: {res.links.candidate_edges} candidate, {res.links.merges} merged, "
          f"{res.links.rejected} cut; agents left alone: {int((sizes == 1).sum())}; "
          f"utility mean {res.utilities.mean():.4f}, min {res.utilities.min():.4f}")
    print(table.to_string(index=False))
    if order.size > shown.size:
        print(f"… and {order.size - shown.size} smaller groups (use --top N or --json)")
    return 0


# ------------------------------------------------------------------ consensus
def cmd_consensus(args: argparse.Namespace) -> int:
    pop = _source(args)
    res = lp_consensus(pop, p=args.p, utility=args.utility)
    if args.json:
        _dump(res.to_dict())
        return 0
    print(f"{pop!r}")
    print(res.message)
    print(f"U_p: X {res.U_p_X:.6g}, W {res.U_p_W:.6g}; utility mean "
          f"{res.utilities.mean():.4f}, min {res.utilities.min():.4f}")
    print("W: " + ", ".join(f"{v} {w:.4f}" for v, w in zip(pop.values, res.W[0], strict=True)))
    frame = pd.DataFrame(res.X[0], index=list(pop.alternatives), columns=list(pop.values))
    print("X (alternatives × values):")
    print(frame.round(4).to_string())
    return 0


# ------------------------------------------------------------------- datasets
def cmd_datasets(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name, text in datasets.list_datasets():
            print(f"{name:<10} {text}")
        return 0
    if not args.name:
        raise InputError("name", "missing dataset name", "use: pluralguard datasets export "
                         "NAME --out FILE.csv")
    if not args.out:
        raise InputError("--out", "missing output file", "pass --out FILE.csv")
    kwargs = {"seed": args.seed} if args.seed is not None else {}
    pop = datasets.load(args.name, **kwargs)
    path = datasets.write_population(pop, args.out)
    print(f"wrote {pop.n} agents to {path}")
    return 0


# --------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pluralguard", formatter_class=_formatter,
                     description="Stress-test value-agreement mechanisms against strategic "
                     "agents.",
                     epilog="example:\n  pluralguard solve --dataset pve_like "
                     "--bounds quantile:0.5")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("solve", formatter_class=_formatter,
                       help="form value agreements (the agreement mechanism)",
                       description="Form value agreements by homophily and decentralised "
                       "optimisation (arXiv:2603.25811).",
                       epilog="examples:\n  pluralguard solve --dataset pve_like "
                       "--bounds quantile:0.5\n  pluralguard solve --population pop.csv "
                       "--bounds declared --method dual --json")
    _add_source(p)
    p.add_argument("--bounds", default="quantile:0.5",
                   help="declared | quantile:Q | fixed:GX,GW (default: quantile:0.5)")
    p.add_argument("--method", default="exact", choices=METHODS,
                   help="exact (fast path) | dual | dgd (default: exact)")
    p.add_argument("--utility", default="quadratic", choices=UTILITIES)
    p.add_argument("--link-rule", default="merge", choices=LINK_RULES)
    p.add_argument("--top", type=int, default=20, help="groups to list (default 20)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("consensus", formatter_class=_formatter,
                       help="single ℓp consensus (Lera-Leri et al.)",
                       description="One agreement for the whole population by ℓp "
                       "regression (Lera-Leri et al. 2022/2024).",
                       epilog="example:\n  pluralguard consensus --dataset evs2017 --p 1 "
                       "--weights respondents")
    _add_source(p)
    p.add_argument("--p", default="2", help="exponent in [1, inf] (default 2)")
    p.add_argument("--utility", default="quadratic", choices=UTILITIES)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_consensus)

    p = sub.add_parser("datasets", formatter_class=_formatter, help="list or export datasets",
                       description="List the registered datasets or export one as a "
                       "population CSV.",
                       epilog="examples:\n  pluralguard datasets list\n  pluralguard "
                       "datasets export pve_like --out pve_like.csv")
    p.add_argument("action", choices=["list", "export"])
    p.add_argument("name", nargs="?", help="dataset to export")
    p.add_argument("--out", metavar="FILE.csv", help="output file for export")
    p.add_argument("--seed", type=int, help="seed of a synthetic dataset")
    p.set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pluralguard`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputError as err:
        print(f"pluralguard {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
