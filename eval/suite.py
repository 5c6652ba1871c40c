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
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pluralguard.attacks import ATTACKS, Attack, make_attack
from pluralguard.core import datasets
from pluralguard.core.bounds import BoundPolicy, resolve_bounds
from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import Mechanism, check_outcome, mechanism_kinds
from pluralguard.core.model import Population
from pluralguard.core.params import AgentIds, check
from pluralguard.defenses import DEFENSES, DefenseChain, make_defense

from .criteria import Criteria, parse_criteria
from .plugins import PluginRef, load_entry_points, load_plugins
from .sources import load_source

#: True bound policy for populations that declare no bounds.
DEFAULT_TRUE_BOUNDS = "quantile:0.5"
#: File name of the embedded default suite (package data of ``pluralguard.eval``).
DEFAULT_SUITE = "default_suite.toml"

_TOP_KEYS = ("name", "seeds", "datasets", "mechanisms", "attacks", "defenses", "budgets",
             "params", "exclude", "plugins", "gate", "tolerances", "limits")
#: Grid keys ``--only`` filters on.
ONLY_KEYS = ("dataset", "mechanism", "attack", "defense")
#: Agents of the probe each mechanism runs on when a suite loads.
PROBE_AGENTS = 40
_NONE = "none"
_ALL = "all"
#: Attack parameters that list agent ids (a single id is accepted too).
_ID_LISTS = ("attackers", "victims")


# ------------------------------------------------------------------ the specs
@dataclass(frozen=True)
class DatasetSpec:
    """One population of the suite.

    Attributes
    ----------
    label : str
        Name in ``results.csv``.
    source : dict
        ``{"name": ..., **loader params}`` or ``{"file": absolute path, "format": ...}``.
    true_bounds : str
        Bound policy giving true bounds to a population without any.
    population : Population
        The loaded TRUE population (bounds filled).
    """

    label: str
    source: dict[str, Any]
    true_bounds: str
    population: Population = field(repr=False, compare=False)

    def resolved(self) -> dict[str, Any]:
        return {"label": self.label, **self.source, "true_bounds": self.true_bounds}


@dataclass(frozen=True)
class MechanismSpec:
    """One mechanism of the suite: a label and a :class:`Mechanism`."""

    label: str
    mechanism: Mechanism

    def resolved(self) -> dict[str, Any]:
        return {"name": self.label, "kind": self.mechanism.kind, **self.mechanism.params}


@dataclass(frozen=True)
class AttackSpec:
    """One attack recipe of the suite, with its parameters and budgets."""

    label: str
    name: str
    params: dict[str, Any]
    budgets: tuple[float, ...]
    key: str = field(default="attack", compare=False)

    def build(self) -> Attack | None:
        """The recipe object (None for the ``none`` attack)."""
        return None if self.name == _NONE else make_attack(self.name, **self.params)

    def resolved(self) -> dict[str, Any] | str:
        if self.name == _NONE:
            return _NONE
        return {"name": self.name, "label": self.label, "budgets": list(self.budgets),
                **self.params}


@dataclass(frozen=True)
class DefenseSpec:
    """One defense chain of the suite: ``(name, params)`` steps, empty for ``none``."""

    label: str
    steps: tuple[tuple[str, dict[str, Any]], ...]

    def build(self) -> DefenseChain:
        return DefenseChain(tuple(make_defense(n, **p) for n, p in self.steps))

    def resolved(self) -> dict[str, Any] | str:
        if not self.steps:
            return _NONE
        return {"label": self.label, "chain": [{"name": n, **p} for n, p in self.steps]}


NO_ATTACK = AttackSpec(_NONE, _NONE, {}, (0.0,))
NO_DEFENSE = DefenseSpec(_NONE, ())


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
    def content(self) -> str:
        """Canonical text of what the run computes (labels excluded)."""
        return canonical_json({
            "dataset": self.dataset.population.fingerprint(),
            "mechanism": self.mechanism.mechanism.key,
            "attack": [self.attack.name, self.attack.params],
            "budget": self.budget,
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
def canonical_json(value: Any) -> str:
    """Deterministic JSON text (sorted keys, tuples as lists, floats by ``repr``)."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            return v
        if isinstance(v, float):
            return {"float": repr(v)}
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return {"repr": repr(v)}
    return json.dumps(norm(value), sort_keys=True, separators=(",", ":"))


def _tuples(value: Any) -> Any:
    """TOML/JSON arrays → tuples, recursively (parameters must be hashable)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _param_text(value: Any) -> str:
    """A parameter value in a label: tuples joined by ``+``, floats by ``repr``."""
    if isinstance(value, tuple):
        return "+".join(_param_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def auto_label(name: str, params: Mapping[str, Any]) -> str:
    """``name`` or ``name(k=v,...)``: the default label of an entry."""
    if not params:
        return name
    return f"{name}({','.join(f'{k}={_param_text(v)}' for k, v in params.items())})"


def _try_build(factory: Callable[..., object], what: str, name: str, params: Mapping[str, Any],
               key: str) -> None:
    """Build the attack or defense once, so a bad parameter fails when the suite loads."""
    try:
        factory(name, **params)
    except InputError as err:
        raise _rekey(err, key) from None
    except TypeError as err:
        raise InputError(key, f"{what} {name!r} rejects its parameters ({err})",
                         f"check the parameter values (see the {what}'s docstring)") from None


def _rekey(err: InputError, key: str) -> InputError:
    """The same error with its field prefixed by the suite key it came from."""
    return InputError(f"{key}.{err.field}", err.problem, err.fix)


def _expect(value: Any, kind: type | tuple[type, ...], key: str, what: str, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(key, f"expected {what}, got {_type_name(value)}", fix)


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _unique_labels(specs: Sequence[Any], key: str) -> None:
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.label in seen:
            raise InputError(f"{key}[{i}].label", f"duplicate label {spec.label!r} (also "
                             f"entry {seen[spec.label]})", "give each entry a distinct label")
        seen[spec.label] = i


# ------------------------------------------------------------------ datasets
def load_dataset(entry: str | Mapping[str, Any], key: str = "dataset",
                 base: Path | None = None) -> DatasetSpec:
    """A dataset entry (a registered name, ``{name, **params}`` or ``{file, ...}``).

    Parameters
    ----------
    entry : str or mapping
        See the module doc. ``label`` and ``true_bounds`` are optional keys.
    key : str
        The entry's key, for error messages.
    base : Path, optional
        Directory relative file paths are read from (the suite file's).
    """
    if isinstance(entry, str):
        entry = {"name": entry}
    _expect(entry, dict, key, "a dataset name or a table",
            "write \"evs2017\" or {name = \"pve_like\", seed = 1} or {file = \"pop.csv\"}")
    params = dict(entry)
    label = params.pop("label", None)
    true_bounds = params.pop("true_bounds", DEFAULT_TRUE_BOUNDS)
    _expect(true_bounds, str, f"{key}.true_bounds", "a bound policy",
            "write e.g. true_bounds = \"quantile:0.5\"")
    try:
        BoundPolicy.parse(true_bounds)
    except InputError as err:
        raise InputError(f"{key}.true_bounds", err.problem, err.fix) from None
    if ("name" in params) == ("file" in params):
        raise InputError(key, "give exactly one of name and file",
                         "write {name = \"pve_like\"} or {file = \"pop.csv\"}")
    try:
        if "name" in params:
            name = params.pop("name")
            _expect(name, str, f"{key}.name", "a dataset name", "write e.g. name = \"pve_like\"")
            if name.strip().lower() not in datasets.available():
                raise InputError("name", f"unknown dataset {name!r}",
                                 f"use one of {', '.join(datasets.available())}")
            params = {k: _tuples(v) for k, v in params.items()}
            population = datasets.load(name, **params)
            source = {"name": name.strip().lower(), **params}
            default_label = auto_label(source["name"], params)
        else:
            file = params.pop("file")
            _expect(file, str, f"{key}.file", "a path", "write e.g. file = \"pop.csv\"")
            fmt = params.pop("format", "auto")
            weights = params.pop("weights", None)
            if params:
                bad = sorted(params)[0]
                raise InputError(bad, "unknown key of a population file entry",
                                 "use file, format, weights, label, true_bounds")
            path = Path(file) if base is None else base / file
            population = load_source(population=path, file_format=fmt, weights=weights)
            source = {"file": str(path.resolve()), "format": fmt}
            if weights is not None:
                source["weights"] = weights
            default_label = Path(file).stem
    except InputError as err:
        raise _rekey(err, key) from None
    if not population.has_bounds:
        population = population.with_bounds(*resolve_bounds(population, true_bounds))
    label = _checked_label(label, default_label, f"{key}.label")
    return DatasetSpec(label, source, true_bounds, population)


def _checked_label(label: Any, default: str, key: str) -> str:
    """``label`` (checked; ``key`` is its own key) or the default."""
    if label is None:
        return default
    _expect(label, str, key, "a string", "write e.g. label = \"mine\"")
    if not label or label != label.strip():
        raise InputError(key, f"{label!r} is not a usable label",
                         "use a non-empty label without surrounding spaces")
    return label


# ---------------------------------------------------------------- mechanisms
_PROBE: Population | None = None


def _tiny_probe() -> Population:
    """A tiny bounded population, the probe when no dataset is given."""
    global _PROBE
    if _PROBE is None:
        _PROBE = datasets.load("blobs", n=8, k=2, m=2, centers=2, seed=0)
    return _PROBE


def probe_of(specs: Sequence[DatasetSpec]) -> tuple[Population, str]:
    """The probe of a suite: the first :data:`PROBE_AGENTS` agents of its smallest
    dataset, and a description of it for messages."""
    smallest = min(specs, key=lambda d: d.population.n)
    pop = smallest.population
    if pop.n > PROBE_AGENTS:
        return (pop.subset(range(PROBE_AGENTS)),
                f"the first {PROBE_AGENTS} agents of dataset {smallest.label!r}")
    return pop, f"dataset {smallest.label!r}"


def load_mechanism(entry: str | Mapping[str, Any], key: str = "mechanism",
                   probe: tuple[Population, str] | None = None) -> MechanismSpec:
    """A mechanism entry: a kind, or ``{name = label, kind = ..., **params}``.

    The mechanism is run once on a probe (default a tiny synthetic population; a suite
    gives :func:`probe_of` its datasets) and its outcome checked
    (:func:`~pluralguard.core.mechanism.check_outcome`), so a misspelt parameter, a crash
    or a malformed outcome fails here, naming ``key``.
    """
    if isinstance(entry, str):
        entry = {"kind": entry}
    _expect(entry, dict, key, "a mechanism kind or a table",
            "write {name = \"agreements\", kind = \"agreements\", bounds = \"quantile:0.5\"}")
    params = {k: _tuples(v) for k, v in entry.items()}
    label = params.pop("name", None)
    kind = params.pop("kind", None)
    if kind is None:
        raise InputError(f"{key}.kind", "missing", "give kind = \"agreements\" or "
                         "\"consensus\" (see pluralguard list mechanisms)")
    _expect(kind, str, f"{key}.kind", "a mechanism kind", "write e.g. kind = \"consensus\"")
    kinds = [k for k, _ in mechanism_kinds()]
    if kind not in kinds:
        raise InputError(f"{key}.kind", f"unknown mechanism {kind!r}",
                         f"use one of {', '.join(kinds)}, register_mechanism() in a plugin "
                         "(--plugin FILE.py or plugins = [...]), or install one")
    population, where = probe if probe is not None else (_tiny_probe(), "a tiny probe")
    try:
        mechanism = Mechanism(kind, params)
        check_outcome(mechanism(population), population, f"mechanism {kind!r}")
    except InputError as err:
        raise _rekey(err, key) from None
    except TypeError as err:
        raise InputError(key, f"mechanism {kind!r} rejects its parameters ({err})",
                         "check the parameter names (see pluralguard list mechanisms)"
                         ) from None
    except Exception as err:
        raise InputError(key, f"mechanism {kind!r} raised {type(err).__name__} on {where}: "
                         f"{err}", "fix the mechanism or its parameters (the suite checks "
                         "every mechanism once when it loads)") from None
    return MechanismSpec(_checked_label(label, auto_label(kind, params), f"{key}.name"), mechanism)


# ------------------------------------------------------------------- attacks
def _attack_entries(entries: list[Any], key: str,
                    budgets: Mapping[str, str | tuple[float, ...]],
                    defaults: Mapping[str, Mapping[str, Any]]) -> list[AttackSpec]:
    specs = [NO_ATTACK]
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        if entry == _ALL:
            specs.extend(load_attack(name, k, budgets, defaults) for name in ATTACKS)
        elif entry != _NONE:
            specs.append(load_attack(entry, k, budgets, defaults))
    return specs


_BUDGET_FIX = ("write e.g. budgets = [0.05, 0.2] (normalised distance; inf allowed), "
               "\"single\" (the recipe's default_budget) or \"curve\" (its default_budgets)")


def _budget_spec(spec: Any, key: str) -> str | tuple[float, ...]:
    """Check a budgets value: a list of numbers, ``"single"`` or ``"curve"``."""
    if spec in ("single", "curve"):
        return spec
    if not isinstance(spec, list) or not spec or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
        raise InputError(key, "expected a list of numbers, \"single\" or \"curve\"",
                         _BUDGET_FIX)
    own = tuple(float(b) for b in spec)
    for b in own:
        if not b >= 0:
            raise InputError(key, f"budget {b!r} is negative or NaN", _BUDGET_FIX)
    if len(set(own)) != len(own):
        raise InputError(key, "a budget is listed twice", "list each budget once")
    return own


def _budgets(spec: str | tuple[float, ...], name: str) -> tuple[float, ...]:
    """The budgets of recipe ``name`` under a checked budgets value."""
    if spec == "single":
        return (float(ATTACKS[name].default_budget),)
    if spec == "curve":
        return tuple(float(b) for b in ATTACKS[name].default_budgets)
    return spec


def load_attack(entry: str | Mapping[str, Any], key: str = "attack",
                budgets: Mapping[str, str | tuple[float, ...]] | None = None,
                defaults: Mapping[str, Mapping[str, Any]] | None = None) -> AttackSpec:
    """An attack entry: a recipe name, or ``{name, label?, budgets?, **params}``.

    Parameters
    ----------
    entry : str or mapping
        See the module doc; the recipe is built once to check the parameters.
    key : str
        The entry's key, for error messages.
    budgets : mapping, optional
        The suite's ``[budgets]`` table, used when the entry lists none (then
        ``"curve"``: the recipe's ``default_budgets``).
    defaults : mapping, optional
        The suite's ``[params]`` table: parameters per recipe name (and ``default`` for
        all), under the entry's own. They do not enter the default label.
    """
    if isinstance(entry, str):
        entry = {"name": entry}
    _expect(entry, dict, key, "an attack name or a table",
            "write \"sybil\" or {name = \"sybil\", budgets = [0.1], sybils = 10}")
    params = dict(entry)
    name = params.pop("name", None)
    if name is None:
        raise InputError(f"{key}.name", "missing", "give the recipe's name "
                         "(see pluralguard list attacks)")
    _expect(name, str, f"{key}.name", "an attack name", "write e.g. name = \"sybil\"")
    if name not in ATTACKS:
        raise InputError(f"{key}.name", f"unknown attack {name!r}",
                         f"use one of {', '.join(ATTACKS)} (see pluralguard list attacks)")
    label = params.pop("label", None)
    if "budgets" in params:
        own = _budgets(_budget_spec(params.pop("budgets"), f"{key}.budgets"), name)
    else:
        table = budgets or {}
        own = _budgets(table.get(name, table.get("default", "curve")), name)
    label = _checked_label(label, auto_label(name, {k: _tuples(v) for k, v in params.items()}),
                   f"{key}.label")
    defaults = defaults or {}
    params = {k: _tuples(v) for k, v in
              {**defaults.get("default", {}), **defaults.get(name, {}), **params}.items()}
    for ids in _ID_LISTS:  # one agent: attackers = 3 means (3,); names are agents too
        if params.get(ids) is not None:
            params[ids] = check(f"{key}.{ids}", params[ids], AgentIds())
    _try_build(make_attack, "attack", name, params, key)
    return AttackSpec(label, name, params, own, key)


# ------------------------------------------------------------------ defenses
def _defense_entries(entries: list[Any], key: str) -> list[DefenseSpec]:
    specs = [NO_DEFENSE]
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        if entry == _ALL:
            specs.extend(load_defense(name, k) for name in DEFENSES)
        elif entry != _NONE:
            specs.append(load_defense(entry, k))
    return specs


def _defense_step(entry: Any, key: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        entry, name_key = {"name": entry.strip()}, key
    else:
        name_key = f"{key}.name"
    _expect(entry, dict, key, "a defense name or a table",
            "write \"bound_floor\" or {name = \"bound_floor\", quantile = 0.2}")
    params = {k: _tuples(v) for k, v in entry.items()}
    name = params.pop("name", None)
    if name is None:
        raise InputError(name_key, "missing", "give the defense's name "
                         "(see pluralguard list defenses)")
    _expect(name, str, name_key, "a defense name", "write e.g. name = \"bound_floor\"")
    if name not in DEFENSES:
        raise InputError(name_key, f"unknown defense {name!r}",
                         f"use one of {', '.join(DEFENSES)} (see pluralguard list defenses)")
    _try_build(make_defense, "defense", name, params, key)
    return name, params


def load_defense(entry: str | Mapping[str, Any], key: str = "defense") -> DefenseSpec:
    """A defense entry: ``"name"``, ``"a+b"``, ``{name, label?, **params}`` or
    ``{label?, chain = [entries]}`` (module doc); each step is built once to check it."""
    if isinstance(entry, str):
        steps = tuple(_defense_step(name, key) for name in entry.split("+"))
        return DefenseSpec("+".join(n for n, _ in steps), steps)
    _expect(entry, dict, key, "a defense name or a table",
            "write \"bound_floor\", \"a+b\", {name = \"bound_floor\", quantile = 0.2} or "
            "{label = \"x\", chain = [\"a\", \"b\"]}")
    if "chain" not in entry:
        params = dict(entry)
        label = params.pop("label", None)
        name, params = _defense_step(params, key)
        return DefenseSpec(_checked_label(label, auto_label(name, params), f"{key}.label"),
                           ((name, params),))
    extra = sorted(set(entry) - {"chain", "label"})
    if extra:
        raise InputError(f"{key}.{extra[0]}", "unknown key of a defense chain",
                         "a chain table has only chain and label")
    chain = entry["chain"]
    if not isinstance(chain, list) or not chain:
        raise InputError(f"{key}.chain", "expected a non-empty list of defenses",
                         "write chain = [\"bound_floor\", {name = \"other\", k = 3}]")
    steps = tuple(_defense_step(s, f"{key}.chain[{j}]") for j, s in enumerate(chain))
    default = "+".join(auto_label(n, p) for n, p in steps)
    return DefenseSpec(_checked_label(entry.get("label"), default, f"{key}.label"), steps)


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
                             else f"expected a list, got {_type_name(value)}",
                             f"write {key} = [...] or [[{key}]] tables")
    suite_name = data.get("name", name)
    _expect(suite_name, str, "name", "a string", "write e.g. name = \"nightly\"")

    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError("seeds", "expected a list of non-negative integers",
                         "write e.g. seeds = [0, 1]")
    if len(set(seeds)) != len(seeds):
        raise InputError("seeds", "a seed is listed twice", "list each seed once")

    table = data.get("budgets", {})
    _expect(table, dict, "budgets", "a table", "write [budgets] default = [0.05, 0.2]")
    budgets: dict[str, str | tuple[float, ...]] = {}
    for key, value in table.items():
        _recipe_key(key, "budgets")
        budgets[key] = _budget_spec(value, f"budgets.{key}")
    defaults = data.get("params", {})
    _expect(defaults, dict, "params", "a table", "write [params] sybil = {sybils = 10}")
    for key, value in defaults.items():
        _recipe_key(key, "params")
        _expect(value, dict, f"params.{key}", "a table of parameters",
                f"write {key} = {{fraction = 0.05}}")

    dataset_specs = [load_dataset(e, f"datasets[{i}]", base)
                     for i, e in enumerate(data["datasets"])]
    probe = probe_of(dataset_specs)
    sets = (
        dataset_specs,
        [load_mechanism(e, f"mechanisms[{i}]", probe)
         for i, e in enumerate(data["mechanisms"])],
        _defense_entries(data.get("defenses", []), "defenses"),
        _attack_entries(data.get("attacks", []), "attacks", budgets, defaults),
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


def check_targets(attack: AttackSpec, dataset: DatasetSpec) -> None:
    """Check the agent ids and group ranks an attack names against a dataset it runs on.

    Raises
    ------
    InputError
        Naming the attack's key and the parameter: ``attacks[1].attackers: id 99999 is
        out of range for dataset 'evs2017' (34 agents); …`` — a typo is a usage error,
        never a grid point that silently does not apply.
    """
    pop = dataset.population
    n, params = pop.n, attack.params
    where = f"for dataset {dataset.label!r} ({n} agents)"
    skip = ("choose others" if attack.key.startswith("--") else
            f"exclude the pair (exclude = [{{dataset = \"{dataset.label}\", attack = "
            f"\"{attack.label}\"}}])")
    for name in _ID_LISTS:
        for i in params.get(name) or ():
            if isinstance(i, str) and i not in pop.agents:
                raise InputError(f"{attack.key}.{name}", f"no agent is named {i!r} {where}",
                                 f"pass agent names of the dataset or indices 0–{n - 1}, "
                                 f"or {skip}")
            if isinstance(i, int) and not 0 <= i < n:
                raise InputError(f"{attack.key}.{name}", f"id {i} is out of range {where}",
                                 f"pass agent indices 0–{n - 1} or agent names, or {skip}")
    ranks = [("group", params.get("group"))] + [("groups", g) for g in
                                                params.get("groups") or ()]
    for name, rank in ranks:
        if rank is not None and rank >= n:
            raise InputError(f"{attack.key}.{name}", f"group rank {rank} is out of range "
                             f"{where}: it has at most {n} groups",
                             f"pass a size rank 0–{n - 1} (0 = the largest group), or {skip}")
    count = params.get("count")
    if isinstance(count, int) and count >= n:
        raise InputError(f"{attack.key}.count", f"{count} attackers {where}",
                         f"pass count below {n} (or a fraction), or {skip}")
    point = params.get("point")
    if point is not None:
        try:
            ok = (len(point) == 2 and _shape(point[0]) == (pop.k, pop.m)
                  and _shape(point[1]) == (pop.m,))
        except TypeError:
            ok = False
        if not ok:
            raise InputError(f"{attack.key}.point", f"is not a value system {where} (X of "
                             f"shape ({pop.k}, {pop.m}), W of shape ({pop.m},))",
                             f"write point = [X, W] with {pop.k} rows of {pop.m} judgements "
                             f"and {pop.m} weights")


def _shape(value: Any) -> tuple[int, ...]:
    """Shape of nested tuples (TOML arrays)."""
    if isinstance(value, tuple):
        inner = {_shape(v) for v in value}
        if len(inner) != 1:
            return (len(value), -1) if value else (0,)
        return (len(value), *inner.pop())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ()
    raise TypeError(value)


def _exclude(entries: Any, labels: Mapping[str, set[str]]) -> tuple[dict[str, str], ...]:
    """Check the ``exclude`` patterns against the suite's labels."""
    fix = "write e.g. exclude = [{dataset = \"pve_like\", defense = \"robust_mixing\"}]"
    if not isinstance(entries, list):
        raise InputError("exclude", f"expected a list, got {_type_name(entries)}", fix)
    for i, pattern in enumerate(entries):
        _expect(pattern, dict, f"exclude[{i}]", "a table of labels", fix)
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
