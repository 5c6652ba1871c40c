"""The ``pluralguard`` command line: a thin layer over the public API.

Every command has ``--help`` with an example and takes ``--plugin MODULE_OR_FILE.py``
(repeatable) to load user code first (:mod:`~pluralguard.eval.plugins`; installed
``pluralguard.plugins`` entry points load by themselves). Exit codes: 0 success; 1 the
gate failed (a regression, a limit violated, lost coverage); 2 bad input, printed as one
line on stderr naming the problem, no traceback; 3 a run failed (a mechanism or attack
raised), naming the grid point; 130 interrupted. A closed pipe (``… | head -1``) never
changes the exit code: output to it is dropped and the command finishes.

It is one piece (a little over 500 lines) because it is one ``cmd_*`` function per
command plus the shared output helpers (pipe guard, exit codes); the parser is
:mod:`~pluralguard.eval.cli_parser` and the values' syntax
:mod:`~pluralguard.eval.cli_values`, so what remains is the dispatch a reader expects in
one place.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pluralguard.core import datasets
from pluralguard.core.consensus import lp_consensus
from pluralguard.core.errors import InputError
from pluralguard.core.solver import solve_agreements

from . import estimate
from .cli_parser import COMMAND_DEFAULTS, EXIT_USAGE, build_parser
from .cli_values import parse_named, parse_only, parse_value
from .sources import load_source

if TYPE_CHECKING:
    from pluralguard.core.mechanism import Outcome
    from pluralguard.core.model import Population
    from pluralguard.core.result import AgreementResult

    from .suite import Suite

EXIT_INTERRUPTED = 130


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
    return {"executor": args.executor, "jobs": args.jobs, "scheduler": args.scheduler,
            "batch_size": args.batch, "progress": not args.quiet,
            "max_runs": None if args.yes else estimate.LARGE_GRID}


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
    from .run_files import summary_table
    from .runner import plan, run_suite

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
    from .jsonio import write_json

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
    from .jsonio import json_ready
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


#: Command name → its handler (the grammar is :mod:`~pluralguard.eval.cli_parser`).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "solve": cmd_solve, "consensus": cmd_consensus, "datasets": cmd_datasets,
    "run": cmd_run, "report": cmd_report, "baseline": cmd_baseline, "check": cmd_check,
    "list": cmd_list, "attack": cmd_attack, "casestudy": cmd_casestudy}


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
    func: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
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
