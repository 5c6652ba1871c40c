"""Running a suite: executors, the resumable result store, result files, sanity checks.

:func:`run_suite` runs every grid point of a :class:`~pluralguard.eval.suite.Suite`
with :func:`~pluralguard.eval.scenario.run_scenario` and writes, into ``out``:

=======================  ==============================================================
``runs.jsonl``           the store: one JSON line per finished run (below)
``results.csv``          one row per grid point, in grid order, rebuilt from the store;
                         columns = the scenario row (floats written with ``repr``, so
                         exact; NaN as an empty cell)
``timings.csv``          wall-clock seconds per run and phase, and the worker that ran
                         it (kept out of ``results.csv``, which is reproducible)
``summary.json``         counts, wall time, per-mechanism and per-defense aggregates,
                         the grid points that did not apply (``not_applicable``, with
                         the reason) and those whose run failed (``failed``, with the
                         exception), the sanity flags (:mod:`.sanity`; each
                         ``{"raised", "description", "count", "finding", "details"}``,
                         details = up to 10 offending grid points), ``complete``
                         (false in a snapshot of a run not finished), ``files``
                         (rows and SHA-256 of ``results.csv``, which the report
                         cross-checks), ``grid_labels`` (each attack label's recipe and
                         budgets, each defense label's steps and the recipes they
                         target) and ``store_warnings`` (what the store recovered from)
``suite.resolved.json``  the suite with every default filled in (itself a valid suite;
                         an infinite budget is written ``Infinity``, as Python does)
``report.md``            the report and its figures in ``figures/``
                         (:func:`pluralguard.eval.report.write_report`)
=======================  ==============================================================

**Store and resume.** A run is content-addressed: its key hashes what it computes (the
true population's fingerprint, the mechanism key, the attack's name and parameters, the
budget and the curve's smaller budgets — the attack at a budget keeps the strongest plan
of its curve up to it —, the defense chain, the seed) together with the package version,
a digest of the package's source code and the code version of every user callable the
run uses
(:mod:`~pluralguard.eval.provenance`: a plugin's source or declared version), so a store
never serves results computed by other code, and editing a plugin invalidates exactly
its runs. A finished run is appended to ``runs.jsonl`` (:mod:`~pluralguard.eval.store`:
checksummed lines; corrupt, edited or cut lines are set aside with a warning and
computed again) as soon as its batch returns, with flush and fsync. A rerun into the
same directory reads the store, computes only the missing keys, and rebuilds
``results.csv`` from the store (atomically), so a killed and resumed suite ends with the
same table as an uninterrupted one, and runs shared by several grid points (same
content, other labels) are computed once. One run at a time uses a directory (a lock;
another waits). While a run goes on, and when it is interrupted, ``results.csv`` and
``summary.json`` are snapshots of the finished runs (``complete`` false), so
``pluralguard report DIR`` reports them, saying they are partial.

**Not applicable, failed.** A run whose attack or defense refuses the mechanism or the
threat model (:class:`~pluralguard.core.errors.NotApplicable`, e.g. a protocol
deviation against a mechanism without message passing) is stored as not applicable,
with the reason, and has no row. Any other exception during a run — the user's
mechanism raising, an attack crashing, an :class:`InputError` deep inside — is a
*failed run*: stored with the exception's type, message and traceback, listed in
``summary.json`` and never silently dropped; ``pluralguard run`` and ``check`` exit 3
naming the grid points. Failed runs are not "finished": a rerun computes them again.

**Executors.** ``local`` runs batches in joblib worker processes (``jobs`` of them);
``dask`` submits the same batches to a ``distributed`` scheduler (``scheduler`` address)
or to a ``LocalCluster`` of ``jobs`` single-threaded worker processes. Batches group
runs of one (dataset, mechanism, defense), at most ``batch_size`` each, every security
curve whole and in ascending budget, so a worker reuses the clean runs and the plans of
a curve's smaller budgets (a per-worker :class:`RunCache`, renewed for every
:func:`run_suite` call so that long-lived workers never serve stale runs). Every task
carries the suite's plugins (:attr:`Suite.plugins
<pluralguard.eval.suite.Suite.plugins>`: its ``plugins`` key and ``--plugin``), which
the worker loads — or reloads, if their source changed — before it runs anything, so
user mechanisms, attacks and defenses work with any number of workers. Every run limits
BLAS to one thread, so rows are bit-identical on any executor.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pluralguard.attacks import ATTACKS
from pluralguard.core.errors import InputError, NotApplicable
from pluralguard.core.mechanism import mechanism_kinds
from pluralguard.core.params import Boolean, Instance, Integer, Options, OrNone, validate_params
from pluralguard.defenses import DEFENSES

from . import plugins
from .estimate import Plan, calls, duration, plan_suite
from .jsonio import plain, write_json
from .provenance import run_key
from .run_cache import RunCache
from .run_files import write_files
from .scenario import run_scenario
from .store import RunStore, directory_lock
from .suite import GridPoint, Suite

EXECUTORS = ("local", "dask")
#: Seconds between the snapshots of ``results.csv`` and ``summary.json`` a run writes
#: after its first batch (so an interrupted run can be reported).
SNAPSHOT_SECONDS = 30.0


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_suite` produced.

    Attributes
    ----------
    out : Path
        The results directory.
    results : pandas.DataFrame
        ``results.csv`` as a table.
    summary : dict
        ``summary.json``.
    report : Path or None
        ``report.md`` (None when ``report=False``).
    """

    out: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    report: Path | None

    @property
    def not_applicable(self) -> list[dict[str, Any]]:
        """Grid points that did not apply: identity and ``reason``."""
        return self.summary["not_applicable"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Grid points whose run failed: identity, ``error`` (type: message), ``traceback``."""
        return self.summary["failed"]


# ------------------------------------------------------------------ workers
@dataclass(frozen=True)
class _Task:
    session: str
    points: tuple[tuple[str, GridPoint], ...]
    sanity: bool = False
    plugins: tuple[plugins.PluginRef, ...] = ()


_SESSION: tuple[str, RunCache] | None = None


def _session_cache(session: str) -> RunCache:
    """This worker's cache for one :func:`run_suite` call (a new call starts empty)."""
    global _SESSION
    if _SESSION is None or _SESSION[0] != session:
        _SESSION = (session, RunCache())
    return _SESSION[1]


def _failure(err: BaseException) -> dict[str, Any]:
    """A failed-run record: the exception's type, message and traceback."""
    trace = "".join(traceback.format_exception(err))
    return {"failed": {"type": type(err).__name__, "message": str(err),
                       "traceback": trace[-4000:]}}


def _unregistered(point: GridPoint) -> str | None:
    """What the point uses that this process has not registered (a plugin this worker
    did not load), or None."""
    kind = point.mechanism.mechanism.kind
    if kind not in {k for k, _ in mechanism_kinds()}:
        return f"mechanism kind {kind!r}"
    if point.attack.name != "none" and point.attack.name not in ATTACKS:
        return f"attack {point.attack.name!r}"
    for name, _ in point.defense.steps:
        if name not in DEFENSES:
            return f"defense {name!r}"
    return None


def run_point(point: GridPoint, cache: RunCache) -> dict[str, Any]:
    """One grid point as a store record: ``{"row", "timing"}``, ``{"skipped": reason}``
    (not applicable) or ``{"failed": {...}}`` (module doc)."""
    start = time.perf_counter()
    missing = _unregistered(point)
    if missing is not None:
        return {"failed": {"type": "NotRegistered", "traceback": "", "message":
                           f"{missing} is not registered in worker process {os.getpid()}: "
                           "register it in a plugin (--plugin FILE.py, plugins = [...] in "
                           "the suite, or a pluralguard.plugins entry point) so that every "
                           "worker loads it, or run with --jobs 1"}}
    try:
        res = run_scenario(point.dataset.population, point.mechanism.mechanism,
                           point.attack.build(), point.defense.build(), budget=point.budget,
                           seed=point.seed, cache=cache, labels=point.identity,
                           budget_path=point.budget_path)
    except NotApplicable as err:
        return {"skipped": str(err)}
    except Exception as err:
        return _failure(err)
    timing = {**res.timing, "total": time.perf_counter() - start,
              "worker": f"{socket.gethostname()}:{os.getpid()}"}
    return {"row": {k: plain(v) for k, v in res.row.items()}, "timing": timing}


def _run_task(task: _Task) -> tuple[bool, list[tuple[str, dict[str, Any]]]]:
    """Run a batch (after loading the plugins); a sanity task (fresh cache) stops at its
    first run that has a row."""
    from threadpoolctl import threadpool_limits

    try:
        plugins.ensure(task.plugins)
    except InputError as err:  # every run of the batch failed, and says why
        return task.sanity, [(key, _failure(err)) for key, _ in task.points]
    cache = RunCache() if task.sanity else _session_cache(task.session)
    records = []
    with threadpool_limits(1):
        for key, point in task.points:
            records.append((key, run_point(point, cache)))
            if task.sanity and "row" in records[-1][1]:
                break
    return task.sanity, records


# ---------------------------------------------------------------- executors
def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use."""
    import joblib

    return joblib.cpu_count()


def _local(tasks: list[_Task], jobs: int) -> Iterator[tuple[bool, list]]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
    with warnings.catch_warnings():
        # joblib replaces a worker whose memory grew by 300 MB since its first task (the
        # caches of a large population do) and says so; the worker finishes its batch
        # first and a fresh one takes the next, so no result is lost and the message
        # would only alarm
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs",
                                category=UserWarning)
        yield from parallel(delayed(_run_task)(t) for t in tasks)


def _dask_client(stack: ExitStack, jobs: int, scheduler: str | None) -> Any:
    """A connected ``distributed`` client (a local cluster without ``scheduler``)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("executor", "dask is not installed",
                         "pip install 'pluralguard[dask]', or use --executor local") from None
    import logging

    if scheduler is None:
        target: Any = stack.enter_context(LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR))
    else:
        target = scheduler
    try:
        return stack.enter_context(Client(target, timeout="20s"))
    except (OSError, TimeoutError) as err:
        raise InputError("scheduler", f"cannot connect to {scheduler!r} ({err})",
                         "start a scheduler there, or omit --scheduler for a local "
                         "cluster") from None


def _execute(tasks: list[_Task], jobs: int, client: Any) -> Iterator[tuple[bool, list]]:
    """Run the tasks in joblib processes, or on a dask client when one is given."""
    if client is None:
        yield from _local(tasks, jobs)
        return
    from distributed import as_completed

    for future in as_completed(client.map(_run_task, tasks, pure=False)):
        yield future.result()


def _batches(pending: dict[str, GridPoint], size: int, session: str,
             refs: tuple[plugins.PluginRef, ...]) -> list[_Task]:
    """Tasks of at most ``size`` runs of one (dataset, mechanism, defense), each security
    curve whole and in ascending budget (a curve longer than ``size`` is a task of its
    own), so a worker plans each budget of a curve once (``RunCache.plan``).

    The groups come largest first by estimated work (mechanism calls × agents,
    :func:`~.estimate.calls`), each group's tasks together (a worker keeps the group's
    clean runs and session): so that no large group is dispatched last while the
    other workers idle. Order changes no result."""
    curves: dict[tuple, list[tuple[str, GridPoint]]] = {}
    for key, p in pending.items():
        curves.setdefault(p.curve, []).append((key, p))
    groups: dict[tuple[str, str, str], list[list[tuple[str, GridPoint]]]] = {}
    for curve, points in curves.items():
        groups.setdefault(curve[:3], []).append(sorted(points, key=lambda kp: kp[1].budget))
    batched = []
    for group in groups.values():
        tasks, batch = [], []
        for points in group:
            if batch and len(batch) + len(points) > size:
                tasks.append(_Task(session, tuple(batch), plugins=refs))
                batch = []
            batch.extend(points)
        tasks.append(_Task(session, tuple(batch), plugins=refs))
        batched.append(tasks)
    batched.sort(key=lambda tasks: sum(map(_work, tasks)), reverse=True)
    return [task for tasks in batched for task in tasks]


def _work(task: _Task) -> float:
    """A task's estimated work: mechanism calls × agents over its runs."""
    return sum(calls(p) * p.dataset.population.n for _, p in task.points)


def _sanity_tasks(grid: list[GridPoint], keys: list[str], session: str,
                  refs: tuple[plugins.PluginRef, ...]) -> list[_Task]:
    """One recomputation per (dataset, mechanism): its first attacked run that applies
    (the task walks the attacked points in grid order, the clean run last)."""
    points: dict[tuple[str, str], list[tuple[str, GridPoint]]] = {}
    for key, p in sorted(zip(keys, grid, strict=True), key=lambda kp: kp[1].attack.name
                         == "none"):
        points.setdefault((p.dataset.label, p.mechanism.label), []).append((key, p))
    return [_Task(session, tuple(group), sanity=True, plugins=refs)
            for group in points.values()]


def _write_report(out: Path) -> Path:
    from .report import write_report  # matplotlib: imported only when a report is written

    return write_report(out)



# ---------------------------------------------------------------------- run
_PATH = Instance((str, os.PathLike), "a directory path", "'results/demo'")


def _check_scheduler(executor: str, scheduler: str | None) -> None:
    if scheduler is None:
        return
    if executor != "dask":
        raise InputError("scheduler", "only used by the dask executor", "add --executor dask")
    if not re.fullmatch(r"(tcp|tls|inproc|ws|wss|ucx)://\S+|\S+:[0-9]+", scheduler):
        raise InputError("scheduler", f"{scheduler!r} is not a scheduler address",
                         "give the address the dask scheduler prints, e.g. "
                         "tcp://10.0.0.5:8786")


def _results_dir(out: str | Path) -> Path:
    """``out``, created, once a file could be written there (before anything runs)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError("out", f"cannot create {str(out)!r} ({err.strerror})",
                         "choose a writable directory") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise InputError("out", f"cannot write in {str(out)!r} ({err.strerror})",
                         "choose a writable directory") from None
    return out


@validate_params({"suite": Instance((Suite,), "a Suite", "load_suite('suite.toml')"),
                  "out": OrNone(_PATH), "jobs": OrNone(Integer(1, sample=2)),
                  "time_solves": Boolean()})
def plan(suite: Suite, out: str | Path | None = None, *, jobs: int | None = None,
         time_solves: bool = True) -> Plan:
    """The grid's size, what ``out`` already stores and an estimated time, without
    running anything (``pluralguard run --dry-run``; :mod:`~.estimate`)."""
    done = RunStore(Path(out) / "runs.jsonl").load(repair=False) if out is not None else {}
    return plan_suite(suite, done, run_key, jobs=jobs or default_jobs(),
                      time_solves=time_solves)


# ---------------------------------------------------------------------- run
@validate_params({"suite": Instance((Suite,), "a Suite", "load_suite('suite.toml')"),
                  "out": _PATH, "executor": Options(EXECUTORS),
                  "jobs": OrNone(Integer(1, sample=2)),
                  "scheduler": OrNone(Instance((str,), "a dask scheduler address",
                                               "tcp://10.0.0.5:8786")),
                  "batch_size": Integer(1, sample=8), "progress": Boolean(),
                  "fresh": Boolean(), "report": Boolean(),
                  "max_runs": OrNone(Integer(0, sample=5000)),
                  "on_start": OrNone(Instance((Callable,), "a function of no arguments",
                                              "lambda: print('starting')"))})
def run_suite(suite: Suite, out: str | Path, *, executor: str = "local",
              jobs: int | None = None, scheduler: str | None = None, batch_size: int = 8,
              progress: bool = True, fresh: bool = False, report: bool = True,
              max_runs: int | None = None,
              on_start: Callable[[], None] | None = None) -> RunResult:
    """Run every grid point of a suite (resuming from ``out``) and write the result files.

    Parameters
    ----------
    suite : Suite
        From :func:`~pluralguard.eval.suite.load_suite`.
    out : path
        Results directory (created; a store found there is resumed). One run at a time
        uses it (:func:`~.store.directory_lock`: another waits, then resumes).
    executor : {"local", "dask"}
        joblib processes, or a dask ``distributed`` cluster (module doc).
    jobs : int, optional
        Worker processes (local, or the workers of a local dask cluster); default the
        number of CPUs.
    scheduler : str, optional
        Address of a dask scheduler (``executor="dask"`` only); default a local cluster.
    batch_size : int
        Most runs per task.
    progress : bool
        Show a progress bar on stderr (only when stderr is a terminal).
    fresh : bool
        Forget the store first (recompute everything).
    report : bool
        Write ``report.md`` and its figures.
    max_runs : int, optional
        Refuse (InputError, before anything runs) when more runs than this are to be
        computed; the command line passes :data:`~.estimate.LARGE_GRID` unless
        ``--yes``. Default: no limit.
    on_start : callable, optional
        Called once every input is checked and the executor is ready, just before the
        first run (the command line prints the plan there).

    Returns
    -------
    RunResult

    Notes
    -----
    While it runs, and when it is interrupted, ``results.csv`` and ``summary.json`` are
    rewritten every :data:`SNAPSHOT_SECONDS` with the runs finished so far
    (``summary["complete"]`` false), so an interrupted run can be reported
    (``pluralguard report DIR`` says it is partial); rerunning resumes it.

    Examples
    --------
    >>> from pluralguard.eval.suite import load_suite
    >>> result = run_suite(load_suite("ci/suite.toml"), "results/ci")  # doctest: +SKIP
    >>> result.results[["attack", "defense", "utility_loss_mean"]]  # doctest: +SKIP
    """
    from tqdm import tqdm

    _check_scheduler(executor, scheduler)
    jobs = default_jobs() if jobs is None else jobs
    start = time.perf_counter()
    out = _results_dir(out)
    with directory_lock(out):
        store = RunStore(out / "runs.jsonl")
        if fresh:
            store.clear()
        done = store.load()
        warnings = list(store.warnings)
        for text in warnings:
            print(f"warning: {text}", file=sys.stderr)
        grid = suite.grid()
        keys = [run_key(p) for p in grid]
        pending = {k: p for k, p in zip(keys, grid, strict=True)
                   if k not in done or "failed" in done[k]}
        if max_runs is not None and len(pending) > max_runs:
            estimate = plan_suite(suite, done, run_key, jobs=jobs)
            raise InputError("--yes", f"suite {suite.name!r} has {len(pending):,} runs to "
                             f"compute, more than {max_runs:,} (estimated "
                             f"{duration(estimate.seconds)} with {jobs} workers)",
                             "pass --yes to run them, or run a part with --only "
                             "(--dry-run prints the plan)")
        write_json(out / "suite.resolved.json", suite.resolved(), strict=False)
        session = uuid.uuid4().hex
        tasks = (_batches(pending, batch_size, session, suite.plugins)
                 + _sanity_tasks(grid, keys, session, suite.plugins))
        run = {"start": start, "computed": 0, "reused": len(grid) - len(pending),
               "executor": {"kind": executor, "jobs": jobs, "scheduler": scheduler},
               "warnings": warnings}

        reruns: dict[str, dict[str, Any]] = {}
        snapshot = -math.inf  # the first batch is snapshot at once, then every interval
        try:
            with ExitStack() as stack:
                client = _dask_client(stack, jobs, scheduler) if executor == "dask" else None
                if on_start is not None:
                    on_start()
                bar = stack.enter_context(tqdm(
                    total=len(pending), unit="run", desc=suite.name, file=sys.stderr,
                    disable=None if progress else True, dynamic_ncols=True))
                for is_rerun, records in _execute(tasks, jobs, client):
                    if is_rerun:
                        reruns.update(records)
                        continue
                    store.append(records)
                    done.update(records)
                    run["computed"] += len(records)
                    bar.update(len(records))
                    if time.monotonic() - snapshot > SNAPSHOT_SECONDS:
                        write_files(out, suite, grid, keys, done, run, None)
                        snapshot = time.monotonic()
        except BaseException:
            with suppress(Exception):  # keep the finished runs reportable, then stop
                write_files(out, suite, grid, keys, done, run, None)
            raise
        results, summary = write_files(out, suite, grid, keys, done, run, reruns)
        report_path = _write_report(out) if report else None
    return RunResult(out, results, summary, report_path)
