"""The ``pluralguard`` command line's grammar: every command, its options and its help.

:func:`build_parser` builds the argparse parser; each command's name is
``args.command``, and :mod:`~pluralguard.eval.cli` runs the handler of that name.
Usage errors print one line and exit 2, as argparse's do. Numeric options are typed
by :mod:`~pluralguard.eval.cli_values` (plain decimal notation only).
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from pluralguard.core import datasets
from pluralguard.core.geometry import UTILITIES
from pluralguard.core.linking import LINK_RULES
from pluralguard.core.solver import METHODS

from .cli_values import integer_at_least, real_above
from .estimate import LARGE_GRID

EXIT_USAGE = 2
#: Mechanism settings of ``solve`` and ``attack`` when the command line leaves them unset
#: (per mechanism kind; an attack's own needs come first, ``Attack.mechanism_settings``).
COMMAND_DEFAULTS = {"agreements": {"bounds": "quantile:0.5", "method": "exact"}}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage errors exit 2, as argparse's do)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _version() -> str:
    from importlib.metadata import version

    return f"pluralguard {version('pluralguard')}"


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_population(p: argparse.ArgumentParser, dataset: tuple[str, str],
                    weights: str) -> argparse._ArgumentGroup:
    """The options naming a population: ``--dataset`` (metavar and help given), or
    ``--population`` with its ``--format``; ``--weights`` (help given)."""
    src = p.add_argument_group("population (one of)")
    src.add_argument("--dataset", metavar=dataset[0], help=dataset[1])
    src.add_argument("--population", metavar="FILE.csv", help="population file")
    src.add_argument("--format", default="auto", choices=["auto", "pluralguard", "lera"],
                     help="format of --population (default: from its columns)")
    src.add_argument("--weights", choices=["none", "respondents", "population"], help=weights)
    return src


def _add_source(p: argparse.ArgumentParser) -> None:
    src = _add_population(p, ("NAME", f"registered dataset: {', '.join(datasets.available())}"),
                          "weighting mode of the EVS table or a Lera-Leri file")
    src.add_argument("--seed", type=integer_at_least(0), help="seed of a synthetic dataset")


def _add_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", metavar="KEY=VALUE[,...]",
                   help="run a subset of the grid: keys dataset, mechanism (label or kind), "
                   "attack (label or recipe), defense; values of one key are alternatives "
                   "(repeatable)")
    g = p.add_argument_group("execution")
    g.add_argument("--executor", default="local", choices=["local", "dask"],
                   help="local: joblib worker processes (default); dask: a dask.distributed "
                   "cluster (pip install 'pluralguard[dask]')")
    g.add_argument("--jobs", type=integer_at_least(1), metavar="N",
                   help="worker processes (local, or a local dask cluster; default: CPUs)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask scheduler address (default: start a local cluster)")
    g.add_argument("--batch", type=integer_at_least(1), default=8, metavar="N",
                   help="most runs per task (default 8)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--yes", action="store_true",
                   help=f"run even when more than {LARGE_GRID:,} runs are to be computed "
                   "(see --dry-run for the estimate)")


def _add_iterations(p: Any) -> None:
    p.add_argument("--max-iter", type=integer_at_least(1), metavar="N",
                   help="message passing (dual, dgd): iteration cap (default 20,000)")
    p.add_argument("--tol", type=real_above(0, inclusive=False), metavar="TOL",
                   help="message passing: consensus tolerance on δ (default 1e-7 dual, "
                   "1e-4 dgd)")


_SUITE_HELP = """A suite is a TOML file; every list expands into a grid (the `none` attack and
defense baselines are always included):

  name = "nightly"
  seeds = [0, 1]
  datasets = ["evs2017", {name = "pve_like", seed = 3}, {file = "pop.csv"}]
  attacks = ["all",
             {name = "sybil", label = "sybil-20", sybils = 20, budgets = [0.05, inf]}]
  defenses = ["all", "bound_floor+other", {name = "bound_floor", quantile = 0.25}]

  [[mechanisms]]
  name = "agreements"          # the label in results.csv
  kind = "agreements"
  bounds = "quantile:0.5"
  method = "exact"

  [[mechanisms]]
  name = "consensus-p2"
  kind = "consensus"
  p = 2

  [budgets]                    # attacks without their own budgets
  default = [0.05, 0.2]

  plugins = ["my_mechanism.py"] # user code (relative to the suite file)

  [tolerances]                 # CI gate (pluralguard check): absolute, or
  utility_loss_mean = 0.01     #   {absolute = A, relative = R}

  [[limits]]                   # CI gate: absolute limits
  attack = "sybil"
  metric = "capture"
  max = 0.1

Full reference: the docstring of pluralguard.eval.suite.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pluralguard", formatter_class=_formatter,
                     description="Stress-test value-agreement mechanisms against strategic "
                     "agents.",
                     epilog="example:\n  pluralguard solve --dataset pve_like "
                     "--bounds quantile:0.5")
    parser.add_argument("--version", action="version", version=_version())
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                        help="load user code first: a module importable from the current "
                        "directory or a .py file that registers mechanisms, attacks or "
                        "defenses (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], formatter_class=_formatter, **kwargs)

    p = command("solve",
                       help="form value agreements (the agreement mechanism)",
                       description="Form value agreements by homophily and decentralised "
                       "optimisation (arXiv:2603.25811).",
                       epilog="examples:\n  pluralguard solve --dataset pve_like "
                       "--bounds quantile:0.5\n  pluralguard solve --population pop.csv "
                       "--bounds declared --method dual --json")
    _add_source(p)
    p.add_argument("--bounds", default=COMMAND_DEFAULTS["agreements"]["bounds"],
                   help="declared | quantile:Q | fixed:GX,GW (default: quantile:0.5)")
    p.add_argument("--method", default=COMMAND_DEFAULTS["agreements"]["method"],
                   choices=METHODS,
                   help="exact (fast path) | dual | dgd (default: exact)")
    p.add_argument("--utility", default="quadratic", choices=UTILITIES)
    p.add_argument("--link-rule", default="merge", choices=LINK_RULES)
    _add_iterations(p)
    p.add_argument("--top", type=integer_at_least(1), default=20,
                   help="groups to list (default 20)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("consensus",
                       help="single ℓp consensus (Lera-Leri et al.)",
                       description="One agreement for the whole population by ℓp "
                       "regression (Lera-Leri et al. 2022/2024).",
                       epilog="example:\n  pluralguard consensus --dataset evs2017 --p 1 "
                       "--weights respondents")
    _add_source(p)
    p.add_argument("--p", default="2", help="exponent in [1, inf] (default 2)")
    p.add_argument("--utility", default="quadratic", choices=UTILITIES)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("datasets", help="list or export datasets",
                       description="List the registered datasets or export one as a "
                       "population CSV.",
                       epilog="examples:\n  pluralguard datasets list\n  pluralguard "
                       "datasets export pve_like --out pve_like.csv")
    p.add_argument("action", choices=["list", "export"])
    p.add_argument("name", nargs="?", help="dataset to export")
    p.add_argument("--out", metavar="FILE.csv", help="output file for export")
    p.add_argument("--seed", type=integer_at_least(0), help="seed of a synthetic dataset")

    p = command("run", help="run an attack suite",
                       description="Run every grid point of a suite, resuming from DIR, and "
                       "write DIR/results.csv, timings.csv,\nsummary.json, "
                       "suite.resolved.json and report.md. Without SUITE.toml: the embedded "
                       "suite\n(all registered attacks, three budgets each, against all registered "
                       "defenses on evs2017\nand pve_like; the agreement solver, the p = 2 "
                       "consensus, and for the attacks that\nneed them declared bounds and "
                       "the message-passing protocol; one seed).\n\n"
                       + _SUITE_HELP,
                       epilog="examples:\n  pluralguard run --out results/demo\n  "
                       "pluralguard run ci/suite.toml --out results/ci --jobs 2\n  "
                       "pluralguard run suite.toml --out results/x --executor dask "
                       "--scheduler tcp://10.0.0.5:8786")
    p.add_argument("suite", nargs="?", metavar="SUITE.toml",
                   help="suite file (default: the embedded default suite)")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory")
    p.add_argument("--fresh", action="store_true",
                   help="recompute everything (forget the runs stored in DIR)")
    p.add_argument("--no-report", action="store_true", help="do not write report.md")
    p.add_argument("--dry-run", action="store_true",
                   help="print the grid's size, what DIR stores and an estimated time; run "
                   "nothing")
    _add_executor(p)

    p = command("report",
                       help="write the report of a results directory",
                       description="Write DIR/report.md and DIR/figures/*.png from "
                       "DIR/results.csv and DIR/summary.json.",
                       epilog="example:\n  pluralguard report results/demo")
    p.add_argument("dir", metavar="DIR", help="results directory of pluralguard run")

    p = command("baseline",
                       help="store a suite's metrics as a CI baseline",
                       description="Run a suite and store every gated metric of every grid "
                       "point (and the points that did not apply) for pluralguard check. "
                       "The output path is checked before anything runs; a file that is not "
                       "a baseline is never overwritten. Updating a baseline prints what "
                       "changed. With --only, only those points of the existing baseline are "
                       "updated. Exit 0 written; 2 bad input; 3 a run failed (nothing "
                       "written).",
                       epilog="examples:\n  pluralguard baseline ci/suite.toml -o "
                       "ci/baseline.json\n  pluralguard baseline ci/suite.toml -o "
                       "ci/baseline.json --only attack=sybil --plugin my_mechanism.py")
    p.add_argument("suite", metavar="SUITE.toml")
    p.add_argument("-o", "--output", required=True, metavar="BASELINE.json",
                   help="baseline file to write")
    p.add_argument("--out", metavar="DIR", help="keep the run's results there "
                   "(default: a temporary directory)")
    _add_executor(p)

    p = command("check",
                       help="rerun a suite and fail on robustness regressions or limits",
                       description="Rerun a suite and judge it against a baseline (every "
                       "gated metric within its tolerance; baseline points still covered) "
                       "and against the suite's [[limits]]. Prints a summary first (worst "
                       "regression per attack × metric), then the details.\n\nexit codes:\n"
                       "  0  pass\n  1  a regression, a limit violated or measured nowhere, "
                       "lost coverage\n     (or a grid point not applicable, with --strict)\n"
                       "  2  bad input (missing or invalid files), before anything runs\n"
                       "  3  a run failed (a mechanism or attack raised); the grid point is "
                       "named",
                       epilog="examples:\n  pluralguard check ci/suite.toml --baseline "
                       "ci/baseline.json\n  pluralguard check ci/suite.toml --baseline "
                       "ci/baseline.json --junit gate.xml --json gate.json --strict\n"
                       "  pluralguard check suite.toml --plugin my_mechanism.py --only "
                       "attack=sybil  # limits only")
    p.add_argument("suite", metavar="SUITE.toml")
    p.add_argument("--baseline", metavar="BASELINE.json",
                   help="baseline to compare with (without it, only the limits are checked)")
    p.add_argument("--strict", action="store_true",
                   help="grid points that do not apply are failures")
    p.add_argument("--junit", metavar="FILE.xml",
                   help="write JUnit XML: one test case per grid point and per limit")
    p.add_argument("--json", metavar="FILE.json",
                   help="write every comparison (baseline, now, tolerance, verdict) as JSON")
    p.add_argument("--out", metavar="DIR", help="keep the run's results there, and reuse "
                   "them next time (default: a temporary directory)")
    _add_executor(p)

    p = command("list",
                       help="list attacks, defenses, datasets, metrics or mechanisms",
                       description="One line per registered item (metrics with their "
                       "direction and formula).",
                       epilog="examples:\n  pluralguard list attacks\n  pluralguard list "
                       "metrics")
    p.add_argument("what", choices=["attacks", "defenses", "datasets", "metrics",
                                    "mechanisms"])

    p = command("attack", help="run one attack scenario",
                       description="Run one scenario (clean, defended, attacked) and print "
                       "its metrics row; with --json also the clean and attacked agreements. "
                       "Recipes take threat-model keys too: attackers=ID[+ID...] or "
                       "fraction=F, sybils=S, goal=KIND, knowledge=white|black, ...; values "
                       "are typed (ints, floats, inf, true/false, a+b tuples).",
                       epilog="examples:\n  pluralguard attack --dataset evs2017 --mechanism "
                       "consensus --p 2 --attack sybil,sybils=10,goal=capture --budget 0.2\n"
                       "  pluralguard attack --dataset pve_like,seed=1 --mechanism agreements "
                       "--attack sybil,attackers=3+7 --defense bound_floor,quantile=0.2 --json")
    src = _add_population(p, ("NAME[,key=value...]", f"registered dataset "
                              f"({', '.join(datasets.available())}) and loader parameters, "
                              "e.g. pve_like,seed=3"), "weighting mode of a Lera-Leri file")
    src.add_argument("--true-bounds", default="quantile:0.5", metavar="POLICY",
                     help="true bounds of a population without any (default quantile:0.5)")
    mech = p.add_argument_group("mechanism")
    mech.add_argument("--mechanism", required=True, metavar="KIND[,key=value...]",
                      help="agreements | consensus | a registered kind (e.g. from --plugin), "
                      "with parameters: median_clusters,k=5")
    mech.add_argument("--bounds", help="agreements: declared | quantile:Q | fixed:GX,GW "
                      "(default quantile:0.5; declared for stubborn)")
    mech.add_argument("--method", choices=METHODS,
                      help="agreements: default exact (dual for protocol)")
    mech.add_argument("--utility", choices=UTILITIES)
    mech.add_argument("--link-rule", choices=LINK_RULES)
    mech.add_argument("--p", help="consensus: exponent in [1, inf] (default 2)")
    _add_iterations(mech)
    p.add_argument("--attack", required=True, metavar="NAME[,key=value...]")
    p.add_argument("--defense", action="append", metavar="NAME[,key=value...]",
                   help="a defense, or a+b chain; repeat to chain defenses with parameters")
    p.add_argument("--budget", type=real_above(0, inclusive=True, inf=True),
                   help="attack budget, >= 0 (inf allowed; default: the recipe's)")
    p.add_argument("--seed", type=integer_at_least(0), default=0, help="scenario seed (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print the row and the clean and attacked agreements as JSON")

    p = command("casestudy",
                       help="reproduce the paper's case studies and measure their robustness",
                       description="Case studies: groups, utilities and embeddings at the "
                       "Q1/Q2/Q3/max bounds next to the single consensus (part 1), then the "
                       "default attack suite at Q2 and a breakdown sweep (part 2). Writes "
                       "OUT/case-studies.md and OUT/figures/*.png, byte-reproducible.",
                       epilog="examples:\n  pluralguard casestudy evs2017 --out "
                       "results/casestudy\n  pluralguard casestudy all --out docs --force "
                       "--population ess8_all_individual_value_systems.csv  # the committed "
                       "docs")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="evs2017, pve_like, ess8 (needs --population), or all")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--population", metavar="FILE.csv",
                   help="the ESS-8 individual table, for the ess8 case")
    p.add_argument("--no-robustness", action="store_true",
                   help="only part 1 (no attack suite, no breakdown sweep)")
    p.add_argument("--force", action="store_true",
                   help="overwrite output files tracked by git (e.g. the committed "
                   "docs/case-studies.md)")
    p.add_argument("--jobs", type=integer_at_least(1), help="worker processes for the suites")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep the suites' run directories here; rerunning after an "
                        "interruption resumes them (default: a temporary directory)")
    return parser
