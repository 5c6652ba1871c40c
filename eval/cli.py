"""The ``pluralguard`` command line: a thin layer over the public API.

Every command has ``--help`` with an example and takes ``--plugin MODULE_OR_FILE.py``
(repeatable) to load user code first (:mod:`~pluralguard.eval.plugins`; installed
``pluralguard.plugins`` entry points load by themselves). Exit codes: 0 success; 1 the
gate failed (a regression, a limit violated, lost coverage); 2 bad input, printed as one
line on stderr naming the problem, no traceback; 3 a run failed (a mechanism or attack
raised), naming the grid point; 130 interrupted. A closed pipe (``… | head -1``) never
changes the exit code: output to it is dropped and the command finishes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pandas as pd

from pluralguard.core import datasets
from pluralguard.core.consensus import lp_consensus
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import UTILITIES
from pluralguard.core.linking import LINK_RULES
from pluralguard.core.message_passing import METHODS
from pluralguard.core.solver import solve_agreements

from .cli_values import integer_at_least, parse_named, parse_only, parse_value, real_above
from .estimate import LARGE_GRID
from .sources import load_source

if TYPE_CHECKING:
    from pluralguard.core.mechanism import Outcome
    from pluralguard.core.model import Population
    from pluralguard.core.result import AgreementResult

    from .suite import Suite

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Mechanism settings of ``solve`` and ``attack`` when the command line leaves them unset
#: (per mechanism kind; an attack's own needs come first, ``Attack.mechanism_settings``).
COMMAND_DEFAULTS = {"agreements": {"bounds": "quantile:0.5", "method": "exact"}}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage errors exit 2, as argparse's do)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _PipeGuard(io.TextIOBase):
    """Standard output that survives a closed pipe: once the reader is gone, output is
    dropped (the descriptor is pointed at ``os.devnull``, as the Python documentation on
    SIGPIPE advises), so the command finishes and returns its own exit code."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


@contextmanager
def _guarded_stdout() -> Iterator[None]:
    stdout = sys.stdout
    guard = _PipeGuard(stdout)
    sys.stdout = guard
    try:
        yield
    finally:
        guard.flush()
        sys.stdout = stdout


def _version() -> str:
    from importlib.metadata import version

    return f"pluralguard {version('pluralguard')}"


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
    src.add_argument("--seed", type=integer_at_least(0), help="seed of a synthetic dataset")


def _source(args: argparse.Namespace) -> Population:
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
                           link_rule=args.link_rule, max_iter=args.max_iter, tol=args.tol)
    if not res.converged:
        _convergence_warning(res)
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


def _convergence_warning(res: AgreementResult) -> None:
    """One line on stderr: which groups did not reach consensus, and what to do."""
    bad = int((~res.consensus).sum())
    print(f"warning: {bad} of {res.n_groups} groups did not reach consensus after "
          f"{res.n_iter:,} iterations of method {res.method!r} (largest residual "
          f"{float(res.residual.max()):.3g}): their agreements are the mean of the "
          "members' estimates, not the mechanism's fixed point; raise --max-iter, loosen "
          "--tol, or use --method exact", file=sys.stderr)


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


# ------------------------------------------------------------ run, baseline, check
def _suite(args: argparse.Namespace) -> Suite:
    from .suite import load_suite

    suite = load_suite(args.suite).with_plugins(args.plugin_refs)
    only = parse_only(getattr(args, "only", None) or [])
    return suite.restrict(only) if only else suite


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    from .estimate import LARGE_GRID

    return {"executor": args.executor, "jobs": args.jobs, "scheduler": args.scheduler,
            "batch_size": args.batch, "progress": not args.quiet,
            "max_runs": None if args.yes else LARGE_GRID}


def _sanity_lines(summary: dict[str, Any]) -> list[str]:
    """The sanity checks: one line of their states, then every raised flag with its
    finding and what it means for the reader (:mod:`~.sanity`)."""
    from .sanity import CHECKS

    flags = summary["sanity"]
    lines = ["sanity: " + ", ".join(f"{name} {'RAISED' if flag['raised'] else 'ok'}"
                                    for name, flag in flags.items())]
    for name, flag in flags.items():
        if flag["raised"]:
            check = CHECKS.get(name)
            title = check.title if check else name
            meaning = f" What it means: {check.meaning}." if check else ""
            lines.append(f"  {title}: {flag.get('finding') or flag.get('description')}"
                         f"{meaning}")
    return lines


def _not_run_lines(summary: dict[str, Any]) -> list[str]:
    """Why grid points did not apply, grouped (:mod:`~.coverage`)."""
    from .coverage import not_run_groups

    groups = not_run_groups(summary["not_applicable"])
    if not groups:
        return []
    lines = [f"{summary['counts']['not_applicable']} grid points did not apply (the attack "
             "needs something the mechanism lacks; details in report.md):"]
    lines += [f"  {g.attack} × {g.mechanism}: {g.points} points"
              + (f", lacks capability {g.capability!r}" if g.capability else
                 f": {g.problem}") for g in groups]
    return lines


def _failed_lines(failed: Sequence[dict[str, Any]]) -> list[str]:
    from .gate import point_text

    return [f"  {point_text(f)}: {f['error']}" for f in failed]


def cmd_run(args: argparse.Namespace) -> int:
    from .gate import EXIT_RUN_FAILED
    from .runner import plan, run_suite, summary_table

    suite = _suite(args)
    if args.dry_run:
        print(plan(suite, None if args.fresh else args.out, jobs=args.jobs).text())
        print("dry run: nothing was run")
        return 0

    def announce() -> None:  # inputs checked, executor ready: say what will run
        print(plan(suite, None if args.fresh else args.out, jobs=args.jobs).text(),
              flush=True)

    res = run_suite(suite, args.out, fresh=args.fresh, report=not args.no_report,
                    on_start=announce, **_run_options(args))
    summary = res.summary
    counts, executor = summary["counts"], summary["executor"]
    print(summary_table(res.results))
    print()
    print(f"{counts['grid']} runs ({counts['rows']} rows, {counts['not_applicable']} not "
          f"applicable, {counts['failed']} failed; {counts['computed']} computed, "
          f"{counts['reused']} reused) in {summary['wall_time_s']:.1f} s, "
          f"{executor['kind']} executor × {executor['jobs']}")
    print("\n".join(_not_run_lines(summary) + _sanity_lines(summary)))
    written = ["results.csv", "timings.csv", "summary.json", "suite.resolved.json"]
    if res.report is not None:
        written.append(res.report.name)
    print(f"wrote {', '.join(written)} in {res.out}")
    if res.failed:
        print(f"{len(res.failed)} runs failed (details in {res.out / 'summary.json'}; "
              "a rerun computes them again):")
        print("\n".join(_failed_lines(res.failed)))
        return EXIT_RUN_FAILED
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    from .results import check_results, load_results, load_summary

    summary = load_summary(args.dir)
    for note in check_results(args.dir, load_results(args.dir), summary):
        print(f"warning: {note.replace('`', '')}", file=sys.stderr)
    path = write_report(args.dir)
    if summary and not summary.get("complete", True):
        counts = summary["counts"]
        print(f"note: partial results, {counts.get('finished', 0):,} of "
              f"{counts['grid']:,} grid points finished (rerun the suite to finish it)",
              file=sys.stderr)
    print(f"wrote {path}")
    return 0


def cmd_casestudy(args: argparse.Namespace) -> int:
    from .casestudy import casestudy

    path = casestudy(args.names, args.out, ess8=args.population,
                     robustness=not args.no_robustness, jobs=args.jobs,
                     workdir=args.workdir, force=args.force)
    print(f"wrote {path}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from .gate import EXIT_RUN_FAILED, make_baseline
    from .gate_report import update_text

    update = make_baseline(_suite(args), args.output, out=args.out, **_run_options(args))
    print(update_text(update))
    if not update.written:
        print("\n".join(_failed_lines(update.gate.run.failed)))
        return EXIT_RUN_FAILED
    violated = {c.limit.title for c in update.gate.violations}
    if violated:
        print(f"note: {len(violated)} limits are violated now (pluralguard check will fail): "
              + "; ".join(sorted(violated)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .gate import check, check_output_path
    from .gate_report import details_text, evidence, junit_xml, summary_text
    from .runner import write_json

    suite = _suite(args)
    junit = check_output_path(args.junit, "--junit") if args.junit else None
    record = check_output_path(args.json, "--json") if args.json else None
    result = check(suite, args.baseline, out=args.out, strict=args.strict,
                   **_run_options(args))
    if junit is not None:
        junit.write_text(junit_xml(result), "utf-8")
    if record is not None:
        write_json(record, evidence(result))
    print(summary_text(result))
    details = details_text(result)
    if details:
        print()
        print(f"details:\n{details}")
    return result.exit_code


# ----------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "attacks":
        from pluralguard.attacks import list_attacks

        items = list_attacks()
    elif args.what == "defenses":
        from pluralguard.defenses import list_defenses

        items = list_defenses()
    elif args.what == "datasets":
        items = datasets.list_datasets()
    elif args.what == "mechanisms":
        from pluralguard.core.mechanism import Mechanism, mechanism_kinds

        items = []
        for kind, text in mechanism_kinds():
            try:
                caps = ", ".join(sorted(Mechanism(kind).capabilities)) or "none"
            except InputError:
                caps = "depends on the parameters"
            items.append((kind, f"{text} [capabilities with default parameters: {caps}]"))
    else:
        from .metrics import METRICS

        items = [(m.name, (f"({m.worse} is worse) " if m.worse != "none" else "") + m.formula)
                 for m in METRICS.values()]
    width = max(len(name) for name, _ in items)
    for name, text in items:
        print(f"{name:<{width}}  {text}")
    return 0


# --------------------------------------------------------------------- attack
def _agreements(outcome: Outcome, names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"group": g, "X": outcome.X[g].tolist(), "W": outcome.W[g].tolist(),
             "members": [names[i] for i in np.flatnonzero(outcome.labels == g)]}
            for g in range(outcome.n_groups)]


def cmd_attack(args: argparse.Namespace) -> int:
    from pluralguard.attacks import ATTACKS

    from .entries import (
        NO_DEFENSE,
        check_targets,
        load_attack,
        load_dataset,
        load_defense,
        load_mechanism,
        probe_of,
    )
    from .gate import EXIT_RUN_FAILED
    from .runner import json_ready
    from .scenario import run_scenario
    from .suite import GridPoint

    if (args.dataset is None) == (args.population is None):
        raise InputError("--dataset", "give exactly one of --dataset and --population",
                         "use --dataset NAME[,key=value...] or --population FILE.csv")
    if args.dataset is not None:
        name, params = parse_named(args.dataset, "--dataset")
        entry, key = {"name": name, **params}, "--dataset"
    else:
        entry, key = {"file": args.population, "format": args.format}, "--population"
        if args.weights is not None:
            entry["weights"] = args.weights
    dataset = load_dataset({**entry, "true_bounds": args.true_bounds}, key)

    name, params = parse_named(args.attack, "--attack")
    kind, inline = parse_named(args.mechanism, "--mechanism")
    flags = {"bounds": args.bounds, "method": args.method, "utility": args.utility,
             "link_rule": args.link_rule, "p": None if args.p is None else parse_value(args.p),
             "max_iter": args.max_iter, "tol": args.tol}
    twice = sorted(set(inline) & {k for k, v in flags.items() if v is not None})
    if twice:
        raise InputError(f"--{twice[0].replace('_', '-')}", f"given twice (also in "
                         f"--mechanism {args.mechanism})", "give it once")
    given = inline | {k: v for k, v in flags.items() if v is not None}
    needed = ATTACKS[name].mechanism_settings(kind, given) if name in ATTACKS else {}
    notes = [f"note: attack {name!r} needs {key} {value!r}; using it (give --{key} to "
             "choose)" for key, value in needed.items()]
    given = COMMAND_DEFAULTS.get(kind, {}) | needed | given
    mechanism = load_mechanism({"kind": kind, **given}, "--mechanism",
                               probe_of([dataset]))

    budget = args.budget
    if budget is None:
        budget = ATTACKS[name].default_budget if name in ATTACKS else 0.0
    attack = load_attack({"name": name, **params, "budgets": [budget]}, "--attack")
    check_targets(attack, dataset)
    steps: list[Any] = []
    for text in args.defense or []:
        if "," in text:
            step, step_params = parse_named(text, "--defense")
            steps.append({"name": step, **step_params})
        else:
            steps.extend(text.split("+"))
    defense = load_defense({"chain": steps}, "--defense") if steps else NO_DEFENSE
    for note in notes:  # once the input is known to be valid
        print(note, file=sys.stderr)

    point = GridPoint(dataset, mechanism, defense, attack, float(budget), args.seed)
    try:
        res = run_scenario(dataset.population, mechanism.mechanism, attack.build(),
                           defense.build(), budget=point.budget, seed=point.seed,
                           labels=point.identity)
    except InputError:
        raise
    except Exception as err:  # the mechanism, attack or defense raised: a failed run
        print(f"pluralguard attack: the run failed: {type(err).__name__}: {err}",
              file=sys.stderr)
        return EXIT_RUN_FAILED
    if args.json:
        declared = res.plan.declared if res.plan is not None else dataset.population
        plan = None if res.plan is None else res.plan.to_dict(dataset.population, res.clean)
        _dump(json_ready({**res.row, "plan": plan,
                          "clean_agreements": _agreements(res.clean, dataset.population.agents),
                          "attacked_agreements": _agreements(res.attacked, declared.agents)}))
        return 0
    width = max(len(k) for k in res.row)
    for k, v in res.row.items():
        print(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


# --------------------------------------------------------------------- parser
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
    p.set_defaults(func=cmd_solve)

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
    p.set_defaults(func=cmd_consensus)

    p = command("datasets", help="list or export datasets",
                       description="List the registered datasets or export one as a "
                       "population CSV.",
                       epilog="examples:\n  pluralguard datasets list\n  pluralguard "
                       "datasets export pve_like --out pve_like.csv")
    p.add_argument("action", choices=["list", "export"])
    p.add_argument("name", nargs="?", help="dataset to export")
    p.add_argument("--out", metavar="FILE.csv", help="output file for export")
    p.add_argument("--seed", type=integer_at_least(0), help="seed of a synthetic dataset")
    p.set_defaults(func=cmd_datasets)

    p = command("run", help="run an attack suite",
                       description="Run every grid point of a suite, resuming from DIR, and "
                       "write DIR/results.csv, timings.csv,\nsummary.json, "
                       "suite.resolved.json and report.md. Without SUITE.toml: the embedded "
                       "suite\n(all registered attacks and defenses on evs2017 and pve_like, "
                       "the agreement solver and\nthe p = 2 consensus, two seeds).\n\n"
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
    p.set_defaults(func=cmd_run)

    p = command("report",
                       help="write the report of a results directory",
                       description="Write DIR/report.md and DIR/figures/*.png from "
                       "DIR/results.csv and DIR/summary.json.",
                       epilog="example:\n  pluralguard report results/demo")
    p.add_argument("dir", metavar="DIR", help="results directory of pluralguard run")
    p.set_defaults(func=cmd_report)

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
    p.set_defaults(func=cmd_baseline)

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
    p.set_defaults(func=cmd_check)

    p = command("list",
                       help="list attacks, defenses, datasets, metrics or mechanisms",
                       description="One line per registered item (metrics with their "
                       "direction and formula).",
                       epilog="examples:\n  pluralguard list attacks\n  pluralguard list "
                       "metrics")
    p.add_argument("what", choices=["attacks", "defenses", "datasets", "metrics",
                                    "mechanisms"])
    p.set_defaults(func=cmd_list)

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
    src = p.add_argument_group("population (one of)")
    src.add_argument("--dataset", metavar="NAME[,key=value...]",
                     help=f"registered dataset ({', '.join(datasets.available())}) and "
                     "loader parameters, e.g. pve_like,seed=3")
    src.add_argument("--population", metavar="FILE.csv", help="population file")
    src.add_argument("--format", default="auto", choices=["auto", "pluralguard", "lera"],
                     help="format of --population (default: from its columns)")
    src.add_argument("--weights", choices=["none", "respondents", "population"],
                     help="weighting mode of a Lera-Leri file")
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
    p.set_defaults(func=cmd_attack)

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
    p.set_defaults(func=cmd_casestudy)
    return parser


def _os_error(err: OSError) -> str:
    """An operating-system error on one line: the file, what went wrong, the fix."""
    where = err.filename if err.filename is not None else "a file"
    what = err.strerror or str(err) or type(err).__name__
    return (f"{where}: {what} ({type(err).__name__}); check that the path exists and that "
            "you may read it (inputs) or write there (outputs), or choose another path")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pluralguard`` console script (exit codes: module doc)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a usage error (printed on one line): its exit code
        if stop.code in (0, None):  # --help, --version
            raise
        return int(stop.code)
    func: Callable[[argparse.Namespace], int] = args.func
    with _guarded_stdout():
        try:
            from .plugins import load_entry_points, load_plugins

            load_entry_points()
            args.plugin_refs = load_plugins(args.plugin)
            return func(args)
        except InputError as err:
            print(f"pluralguard {args.command}: error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as err:  # a file that cannot be read or written (permissions, …)
            print(f"pluralguard {args.command}: error: {_os_error(err)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            more = (f"; `pluralguard report {args.out}` reports the finished ones"
                    if args.command == "run" else "")
            print(f"pluralguard {args.command}: interrupted (finished runs are stored; "
                  f"rerun the same command to resume{more})", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
