"""Suites: datasets × mechanisms × attacks (× budgets) × defenses × seeds, as a grid.

A suite is a TOML file (or the same structure as JSON, e.g. the ``suite.resolved.json``
a run writes). Every list expands into the grid; the order of the grid, and so of
``results.csv``, is dataset → mechanism → defense → attack → budget → seed, each in
the order written. Example::

    name = "nightly"                     # optional; default the file's stem
    seeds = [0, 1]                       # default [0]
    datasets = [
        "evs2017",                               # a registered dataset
        {name = "pve_like", seed = 3},           # with loader parameters
        {file = "data/pop.csv", format = "auto", label = "mine"},  # relative to this file
    ]
    attacks = [
        "all",                                   # every registered recipe, default params
        {name = "sybil", label = "sybil-20", sybils = 20, budgets = [0.05, 0.2, inf]},
    ]
    defenses = ["bound_floor", "bound_floor+other",
                {name = "bound_floor", quantile = 0.25, label = "floor-q25"},
                {label = "both", chain = ["bound_floor", {name = "other", k = 3}]}]
    exclude = [{dataset = "pve_like", defense = "floor-q25", attack = "sybil-20"}]

    [[mechanisms]]
    name = "agreements"                  # the label in results.csv (default: the kind)
    kind = "agreements"
    bounds = "quantile:0.5"
    method = "exact"

    [[mechanisms]]
    name = "consensus-p2"
    kind = "consensus"
    p = 2

    [budgets]                # budgets of attacks that do not list their own: per recipe,
    sybil = [0.1]            # else `default`, else "curve"; a list, "single" (the
    default = "single"       # recipe's default_budget) or "curve" (its default_budgets)

    [params]                 # parameters per recipe (and `default` for every recipe),
    best_response = {queries = 20}   # under each entry's own; not part of the labels

    plugins = ["my_mechanism.py"]        # user code to load first (relative to this file)

    [tolerances]                         # CI gate (pluralguard check), per metric
    utility_loss_mean = 0.01

    [[limits]]                           # absolute limits of the CI gate
    attack = "sybil"
    metric = "capture"
    max = 0.1

Rules:

* **Baselines are automatic.** The ``none`` attack (budget 0, one row per dataset ×
  mechanism × defense × seed: the clean run, whose ``defense_cost`` is the defense's
  price) and the ``none`` defense come first in every suite; writing them explicitly
  is allowed and changes nothing.
* **Entries.** A string names a registered item (``"all"`` = every registered attack or
  defense with default parameters, read from the registries at load time, so new
  recipes join automatically; ``"a+b"`` = a defense chain). A table gives ``name`` and
  parameters (attack parameters mix the recipe's own, threat-model and goal fields, as
  :func:`~pluralguard.attacks.make_attack` does; lists become tuples), an optional
  ``label`` (the name in ``results.csv``, default ``name`` or ``name(k=v,...)``) and,
  for attacks, ``budgets``. Labels must be distinct within each list.
* **Budgets** of an attack: its entry's ``budgets``, else ``[budgets].<recipe>``, else
  ``[budgets].default``, else ``"curve"``. A value is a list of numbers (``inf``
  allowed), ``"single"`` (the recipe's ``default_budget``) or ``"curve"`` (its
  ``default_budgets``). ``[params]`` gives parameters per recipe (``default``: every
  recipe), under each entry's own.
* **exclude** drops the grid points whose labels match every key of one of its
  tables (keys ``dataset``, ``mechanism``, ``defense``, ``attack``; labels checked).
* **Datasets** without true bounds (e.g. ``evs2017``) get them from ``true_bounds``
  (a bound policy, default ``quantile:0.5``): attacks need every agent's true bounds.
* **Plugins** (:mod:`~pluralguard.eval.plugins`) load before anything else, so the
  suite can name the mechanisms, attacks and defenses they register.
* **Mechanisms** are run once on a probe — the first 40 agents of the suite's smallest
  dataset — so a misspelt parameter, a crash or an invalid outcome
  (:func:`~pluralguard.core.mechanism.check_outcome`) fails at load time, naming its key.
* **Agents** (``attackers``, ``victims``) are indices counted from 0 or agent names
  (``attackers = ["AT", 5]``; one agent alone needs no list). They, and the group
  ranks an attack names (``group``, ``groups``, ``count``, the shape of ``point``), are
  checked against every dataset the attack runs on: ``attacks[1].attackers: id 99999 is
  out of range for dataset 'evs2017' (34 agents); …``.
* **The gate** (``[gate]``, ``[tolerances]``, ``[[limits]]``):
  :mod:`~pluralguard.eval.criteria`.
* ``Suite.restrict`` (``--only KEY=VALUE[,…]``) runs a subset of the grid.
* Errors are :class:`~pluralguard.core.errors.InputError` naming the key, with list
  positions counted from 0: ``attacks[2].budgets: expected a list of numbers; …``.

Each entry is read by :mod:`~pluralguard.eval.entries`; this module holds the suite as
a whole: its grid, its filters and its file.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pluralguard.attacks import ATTACKS
from pluralguard.core.errors import InputError

from .criteria import Criteria, parse_criteria
from .entries import (
    AttackSpec,
    DatasetSpec,
    DefenseSpec,
    MechanismSpec,
    attack_entries,
    budget_spec,
    check_targets,
    defense_entries,
    expect_type,
    load_dataset,
    load_mechanism,
    probe_of,
    type_name,
)
from .jsonio import canonical_json
from .plugins import PluginRef, load_entry_points, load_plugins

#: File name of the embedded default suite (package data of ``pluralguard.eval``).
DEFAULT_SUITE = "default_suite.toml"

_TOP_KEYS = ("name", "seeds", "datasets", "mechanisms", "attacks", "defenses", "budgets",
             "params", "exclude", "plugins", "gate", "tolerances", "limits")
#: Grid keys ``--only`` filters on.
ONLY_KEYS = ("dataset", "mechanism", "attack", "defense")




@dataclass(frozen=True)
class GridPoint:
    """One run of the suite: a scenario (see :func:`~pluralguard.eval.scenario.run_scenario`)."""

    dataset: DatasetSpec
    mechanism: MechanismSpec
    defense: DefenseSpec
    attack: AttackSpec
    budget: float
    seed: int

    @property
    def identity(self) -> dict[str, Any]:
        """The identifying columns of its ``results.csv`` row."""
        return {"dataset": self.dataset.label, "mechanism": self.mechanism.label,
                "attack": self.attack.label, "budget": self.budget,
                "defense": self.defense.label, "seed": self.seed}

    @property
    def names(self) -> dict[str, set[Any]]:
        """Every name the point answers to per grid key (labels; an attack's recipe, a
        mechanism's kind; the budget), for ``--only`` and limit filters."""
        return {"dataset": {self.dataset.label},
                "mechanism": {self.mechanism.label, self.mechanism.mechanism.kind},
                "attack": {self.attack.label, self.attack.name},
                "defense": {self.defense.label}, "budget": {self.budget}}

    @property
    def budget_path(self) -> tuple[float, ...]:
        """The budgets of the attack's security curve below this one: the attack here
        also plans at them and keeps the strongest plan (``run_scenario``'s
        ``budget_path``), so the run computes from them too."""
        return tuple(sorted(b for b in set(self.attack.budgets) if b < self.budget))

    @property
    def curve(self) -> tuple[str, str, str, str, int]:
        """The security curve the point is on: its identity without the budget."""
        return (self.dataset.label, self.mechanism.label, self.defense.label,
                self.attack.label, self.seed)

    @property
    def content(self) -> str:
        """Canonical text of what the run computes (labels excluded)."""
        return canonical_json({
            "dataset": self.dataset.population.fingerprint(),
            "mechanism": self.mechanism.mechanism.key,
            "attack": [self.attack.name, self.attack.params],
            "budget": self.budget,
            "budget_path": list(self.budget_path),
            "defense": [[n, p] for n, p in self.defense.steps],
            "seed": self.seed})


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite (build it with :func:`load_suite` or :func:`parse_suite`).

    Attributes
    ----------
    name : str
    source : str
        The file it came from (``"<default>"`` for the embedded suite).
    datasets, mechanisms, defenses, attacks : tuple of specs
        In grid order; ``defenses`` and ``attacks`` start with ``none``.
    seeds : tuple of int
    criteria : Criteria
        What the gate checks: gated metrics, tolerances, limits
        (:mod:`~pluralguard.eval.criteria`).
    exclude : tuple of dict
        Label patterns (``dataset``, ``mechanism``, ``defense``, ``attack``) of grid
        points left out: a point matching every key of one pattern is dropped.
    plugins : tuple of PluginRef
        The plugins its runs need: its ``plugins`` key, and those the command line adds
        (:meth:`with_plugins`). Worker processes load them.
    only : tuple of (key, names)
        The subset :meth:`restrict` keeps (empty: the whole grid).
    """

    name: str
    source: str
    datasets: tuple[DatasetSpec, ...]
    mechanisms: tuple[MechanismSpec, ...]
    defenses: tuple[DefenseSpec, ...]
    attacks: tuple[AttackSpec, ...]
    seeds: tuple[int, ...]
    criteria: Criteria = field(default_factory=Criteria)
    exclude: tuple[dict[str, str], ...] = ()
    plugins: tuple[PluginRef, ...] = ()
    only: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def grid(self) -> list[GridPoint]:
        """Every run, in grid order (dataset → mechanism → defense → attack → budget → seed)."""
        points = [GridPoint(d, m, f, a, b, s)
                  for d in self.datasets for m in self.mechanisms for f in self.defenses
                  if not self._excluded(d=d.label, m=m.label, f=f.label)
                  for a in self.attacks
                  if not self._excluded(d=d.label, m=m.label, f=f.label, a=a.label)
                  for b in a.budgets for s in self.seeds]
        return [p for p in points if self.selects(p)]

    def with_plugins(self, refs: Sequence[PluginRef]) -> Suite:
        """The suite with more plugins for its workers to load (e.g. ``--plugin``)."""
        merged = {ref.name: ref for ref in (*refs, *self.plugins)}
        return replace(self, plugins=tuple(merged.values()))

    def selects(self, point: GridPoint) -> bool:
        """Whether a point is in the :meth:`restrict` subset (always, without one)."""
        names = point.names
        return all(names[key] & set(values) for key, values in self.only)

    def restrict(self, only: Mapping[str, Sequence[str]]) -> Suite:
        """The suite limited to the grid points whose ``dataset``, ``mechanism`` (label or
        kind), ``attack`` (label or recipe) and ``defense`` match: several values of one
        key are alternatives, several keys must all match.

        Raises
        ------
        InputError
            ``--only`` with an unknown key or a name that is not in the suite.
        """
        known = self._names()
        for key, values in only.items():
            if key not in ONLY_KEYS:
                raise InputError("--only", f"unknown key {key!r}",
                                 f"use {', '.join(ONLY_KEYS)}, e.g. --only attack=sybil")
            for value in values:
                if value not in known[key]:
                    raise InputError("--only", f"no {key} {value!r} in suite {self.name!r}",
                                     f"use one of {', '.join(sorted(known[key]))}")
        only_items = tuple((k, tuple(v)) for k, v in only.items())
        restricted = replace(self, only=self.only + only_items)
        if not restricted.grid():
            raise InputError("--only", "selects no grid point of the suite",
                             "loosen the filter")
        return restricted

    def _names(self) -> dict[str, set[Any]]:
        return {"dataset": {d.label for d in self.datasets},
                "mechanism": {m.label for m in self.mechanisms}
                | {m.mechanism.kind for m in self.mechanisms},
                "attack": {a.label for a in self.attacks} | {a.name for a in self.attacks},
                "defense": {f.label for f in self.defenses},
                "budget": {b for a in self.attacks for b in a.budgets}}

    def _excluded(self, d: str, m: str, f: str, a: str | None = None) -> bool:
        labels = {"dataset": d, "mechanism": m, "defense": f, "attack": a}
        return any(all(labels[k] == v for k, v in pattern.items())
                   for pattern in self.exclude
                   if a is not None or "attack" not in pattern)

    @property
    def digest(self) -> str:
        """Hash of the grid (labels and content of every point; not the tolerances)."""
        h = hashlib.sha256()
        for point in self.grid():
            h.update(canonical_json(point.identity).encode())
            h.update(point.content.encode())
        return h.hexdigest()[:16]

    def resolved(self) -> dict[str, Any]:
        """The suite with every suite-level default filled in; itself a valid suite."""
        out = {"name": self.name, "seeds": list(self.seeds),
               "plugins": [ref.path or ref.name for ref in self.plugins],
               "datasets": [d.resolved() for d in self.datasets],
               "mechanisms": [m.resolved() for m in self.mechanisms],
               "attacks": [a.resolved() for a in self.attacks],
               "defenses": [d.resolved() for d in self.defenses],
               "exclude": [dict(p) for p in self.exclude]}
        return out | self.criteria.resolved()


# ------------------------------------------------------------------- helpers
def _unique_labels(specs: Sequence[Any], key: str) -> None:
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.label in seen:
            raise InputError(f"{key}[{i}].label", f"duplicate label {spec.label!r} (also "
                             f"entry {seen[spec.label]})", "give each entry a distinct label")
        seen[spec.label] = i


# --------------------------------------------------------------------- suite
def _recipe_key(key: str, table: str) -> None:
    if key != "default" and key not in ATTACKS:
        raise InputError(f"{table}.{key}", "not an attack name",
                         f"use default or one of {', '.join(ATTACKS)}")


def parse_suite(data: Mapping[str, Any], *, name: str = "suite", source: str = "<memory>",
                base: Path | None = None) -> Suite:
    """Validate a suite given as a mapping (a parsed TOML/JSON document).

    Parameters
    ----------
    data : mapping
        The document (module doc for the keys).
    name : str
        Name when the document has none.
    source : str
        Where it came from (recorded in the summary).
    base : Path, optional
        Directory of relative population file and plugin paths (default: the current
        directory).
    """
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise InputError(unknown[0], "unknown key", f"use {', '.join(_TOP_KEYS)}")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(x, str) for x in plugins):
        raise InputError("plugins", "expected a list of module names or .py paths",
                         "write e.g. plugins = [\"my_mechanism.py\"]")
    load_entry_points()
    refs = load_plugins(plugins, base=base, key="plugins")
    for key in ("datasets", "mechanisms"):
        if key not in data:
            raise InputError(key, "missing", f"list at least one entry in {key}")
    for key in ("datasets", "mechanisms", "attacks", "defenses"):
        value = data.get(key, [])
        if not isinstance(value, list) or (key in ("datasets", "mechanisms") and not value):
            raise InputError(key, "expected a non-empty list" if isinstance(value, list)
                             else f"expected a list, got {type_name(value)}",
                             f"write {key} = [...] or [[{key}]] tables")
    suite_name = data.get("name", name)
    expect_type(suite_name, str, "name", "a string", "write e.g. name = \"nightly\"")

    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError("seeds", "expected a list of non-negative integers",
                         "write e.g. seeds = [0, 1]")
    if len(set(seeds)) != len(seeds):
        raise InputError("seeds", "a seed is listed twice", "list each seed once")

    table = data.get("budgets", {})
    expect_type(table, dict, "budgets", "a table", "write [budgets] default = [0.05, 0.2]")
    budgets: dict[str, str | tuple[float, ...]] = {}
    for key, value in table.items():
        _recipe_key(key, "budgets")
        budgets[key] = budget_spec(value, f"budgets.{key}")
    defaults = data.get("params", {})
    expect_type(defaults, dict, "params", "a table", "write [params] sybil = {sybils = 10}")
    for key, value in defaults.items():
        _recipe_key(key, "params")
        expect_type(value, dict, f"params.{key}", "a table of parameters",
                    f"write {key} = {{fraction = 0.05}}")

    dataset_specs = [load_dataset(e, f"datasets[{i}]", base)
                     for i, e in enumerate(data["datasets"])]
    probe = probe_of(dataset_specs)
    sets = (
        dataset_specs,
        [load_mechanism(e, f"mechanisms[{i}]", probe)
         for i, e in enumerate(data["mechanisms"])],
        defense_entries(data.get("defenses", []), "defenses"),
        attack_entries(data.get("attacks", []), "attacks", budgets, defaults),
    )
    for specs, key in zip(sets, ("datasets", "mechanisms", "defenses", "attacks"),
                          strict=True):
        _unique_labels(specs, key)
    exclude = _exclude(data.get("exclude", []), dict(zip(
        ("dataset", "mechanism", "defense", "attack"),
        ({spec.label for spec in specs} for specs in sets), strict=True)))
    suite = Suite(suite_name, source, *(tuple(s) for s in sets), tuple(seeds),
                  exclude=exclude, plugins=refs)
    for attack in suite.attacks:
        for dataset in suite.datasets:
            if any(not suite._excluded(dataset.label, m.label, f.label, attack.label)
                   for m in suite.mechanisms for f in suite.defenses):
                check_targets(attack, dataset)
    criteria = parse_criteria(data, suite._names())
    grid = suite.grid()
    if not grid:
        raise InputError("exclude", "leaves no grid point to run (every combination of "
                         "the suite's datasets, mechanisms and defenses is excluded)",
                         "remove or narrow the exclude patterns")
    for limit in criteria.limits:
        if not any(limit.matches(point.names) for point in grid):
            raise InputError(limit.key, "matches no grid point of the suite",
                             "check its filters (and the suite's exclude)")
    return replace(suite, criteria=criteria)


def _exclude(entries: Any, labels: Mapping[str, set[str]]) -> tuple[dict[str, str], ...]:
    """Check the ``exclude`` patterns against the suite's labels."""
    fix = "write e.g. exclude = [{dataset = \"pve_like\", defense = \"robust_mixing\"}]"
    if not isinstance(entries, list):
        raise InputError("exclude", f"expected a list, got {type_name(entries)}", fix)
    for i, pattern in enumerate(entries):
        expect_type(pattern, dict, f"exclude[{i}]", "a table of labels", fix)
        if not pattern:
            raise InputError(f"exclude[{i}]", "empty pattern (it would drop everything)", fix)
        for k, v in pattern.items():
            if k not in labels:
                raise InputError(f"exclude[{i}].{k}", "unknown key",
                                 f"use {', '.join(labels)}")
            if v not in labels[k]:
                raise InputError(f"exclude[{i}].{k}", f"no {k} labelled {v!r} in this suite",
                                 f"use one of {', '.join(sorted(labels[k]))}")
    return tuple(dict(p) for p in entries)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is an error (TOML says so itself)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(key, "is given twice in one table", "give each key once")
        out[key] = value
    return out


def load_suite(path: str | Path | None = None) -> Suite:
    """Read and validate a suite file (``.toml``, or ``.json`` of the same structure).

    Parameters
    ----------
    path : path, optional
        The file; None for the embedded default suite (``eval/default_suite.toml``:
        all registered attacks and defenses on ``evs2017`` and ``pve_like``).

    Raises
    ------
    InputError
        Naming the offending key (module doc).
    """
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_SUITE).read_text("utf-8")
        return parse_suite(tomllib.loads(text), name="default", source="<default>")
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such suite file", "give the path of a suite .toml file")
    try:
        text = path.read_text("utf-8")
        data = (json.loads(text, object_pairs_hook=_unique_keys) if path.suffix == ".json"
                else tomllib.loads(text))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(str(path), f"not a valid {path.suffix.lstrip('.') or 'TOML'} file "
                         f"({err})", "fix the syntax at that position") from None
    except OSError as err:
        raise InputError(str(path), f"cannot read the suite file ({err.strerror})",
                         "check that it is readable (its permissions)") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "not a table of suite keys", "see pluralguard run --help")
    return parse_suite(data, name=path.stem, source=str(path), base=path.parent)
