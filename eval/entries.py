"""Suite entries: one dataset, mechanism, attack or defense entry of a suite, checked and
resolved into a spec.

:func:`load_dataset`, :func:`load_mechanism`, :func:`load_attack` and
:func:`load_defense` read one entry (a name or a table, the suite file's syntax:
:mod:`~pluralguard.eval.suite`) and return its spec, or raise an
:class:`~pluralguard.core.errors.InputError` naming the entry's key. Each builds what it
describes once — a population is loaded, a mechanism run on a probe, a recipe or
defense constructed — so a bad entry fails when the suite loads, never in a run.
:func:`check_targets` checks the agents and groups an attack names against a dataset.
The command line's ``attack`` command reads its options through the same functions.

It is one piece (a little over 500 lines) because the four kinds of entry share one
grammar (a name, or a table with ``name``, ``label`` and parameters), one labelling
rule and one error style, and the command line reads its options through the same
functions; each loader is short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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

from .sources import load_source

#: True bound policy for populations that declare no bounds.
DEFAULT_TRUE_BOUNDS = "quantile:0.5"
#: Agents of the probe each mechanism runs on when a suite loads.
PROBE_AGENTS = 40
#: The ``none`` attack and defense, and ``all`` registered ones.
NONE = "none"
ALL = "all"
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
        return None if self.name == NONE else make_attack(self.name, **self.params)

    def resolved(self) -> dict[str, Any] | str:
        if self.name == NONE:
            return NONE
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
            return NONE
        return {"label": self.label, "chain": [{"name": n, **p} for n, p in self.steps]}


NO_ATTACK = AttackSpec(NONE, NONE, {}, (0.0,))
NO_DEFENSE = DefenseSpec(NONE, ())


# ------------------------------------------------------------------- helpers
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


def expect_type(value: Any, kind: type | tuple[type, ...], key: str, what: str, fix: str
                ) -> None:
    """Raise an :class:`InputError` naming ``key`` unless ``value`` is of ``kind`` (a
    boolean is never a number)."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(key, f"expected {what}, got {type_name(value)}", fix)


def type_name(value: Any) -> str:
    """What a TOML/JSON value is, in the words of an error message."""
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


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
    params = _table(entry, "name", key, "a dataset name or a table",
                    "write \"evs2017\" or {name = \"pve_like\", seed = 1} or "
                    "{file = \"pop.csv\"}")
    label = params.pop("label", None)
    true_bounds = params.pop("true_bounds", DEFAULT_TRUE_BOUNDS)
    expect_type(true_bounds, str, f"{key}.true_bounds", "a bound policy",
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
            expect_type(name, str, f"{key}.name", "a dataset name",
                        "write e.g. name = \"pve_like\"")
            if name.strip().lower() not in datasets.available():
                raise InputError("name", f"unknown dataset {name!r}",
                                 f"use one of {', '.join(datasets.available())}")
            params = {k: _tuples(v) for k, v in params.items()}
            population = datasets.load(name, **params)
            source = {"name": name.strip().lower(), **params}
            default_label = auto_label(source["name"], params)
        else:
            file = params.pop("file")
            expect_type(file, str, f"{key}.file", "a path", "write e.g. file = \"pop.csv\"")
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


def _table(entry: Any, name_key: str, key: str, what: str, fix: str) -> dict[str, Any]:
    """An entry as a new table: a string stands for ``{name_key: entry}``; anything else
    must be a table (else an error naming ``key``, saying ``what`` it should be and the
    ``fix``)."""
    if isinstance(entry, str):
        entry = {name_key: entry}
    expect_type(entry, dict, key, what, fix)
    return dict(entry)


def _checked_label(label: Any, default: str, key: str) -> str:
    """``label`` (checked; ``key`` is its own key) or the default."""
    if label is None:
        return default
    expect_type(label, str, key, "a string", "write e.g. label = \"mine\"")
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
    params = {k: _tuples(v) for k, v in _table(
        entry, "kind", key, "a mechanism kind or a table",
        "write {name = \"agreements\", kind = \"agreements\", bounds = \"quantile:0.5\"}"
    ).items()}
    label = params.pop("name", None)
    kind = params.pop("kind", None)
    if kind is None:
        raise InputError(f"{key}.kind", "missing", "give kind = \"agreements\" or "
                         "\"consensus\" (see pluralguard list mechanisms)")
    expect_type(kind, str, f"{key}.kind", "a mechanism kind", "write e.g. kind = \"consensus\"")
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
def attack_entries(entries: list[Any], key: str,
                    budgets: Mapping[str, str | tuple[float, ...]],
                    defaults: Mapping[str, Mapping[str, Any]]) -> list[AttackSpec]:
    specs = [NO_ATTACK]
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        if entry == ALL:
            specs.extend(load_attack(name, k, budgets, defaults) for name in ATTACKS)
        elif entry != NONE:
            specs.append(load_attack(entry, k, budgets, defaults))
    return specs


_BUDGET_FIX = ("write e.g. budgets = [0.05, 0.2] (normalised distance; inf allowed), "
               "\"single\" (the recipe's default_budget) or \"curve\" (its default_budgets)")


def budget_spec(spec: Any, key: str) -> str | tuple[float, ...]:
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
    params = _table(entry, "name", key, "an attack name or a table",
                    "write \"sybil\" or {name = \"sybil\", budgets = [0.1], sybils = 10}")
    name = params.pop("name", None)
    if name is None:
        raise InputError(f"{key}.name", "missing", "give the recipe's name "
                         "(see pluralguard list attacks)")
    expect_type(name, str, f"{key}.name", "an attack name", "write e.g. name = \"sybil\"")
    if name not in ATTACKS:
        raise InputError(f"{key}.name", f"unknown attack {name!r}",
                         f"use one of {', '.join(ATTACKS)} (see pluralguard list attacks)")
    label = params.pop("label", None)
    if "budgets" in params:
        own = _budgets(budget_spec(params.pop("budgets"), f"{key}.budgets"), name)
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
def defense_entries(entries: list[Any], key: str) -> list[DefenseSpec]:
    specs = [NO_DEFENSE]
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        if entry == ALL:
            specs.extend(load_defense(name, k) for name in DEFENSES)
        elif entry != NONE:
            specs.append(load_defense(entry, k))
    return specs


def _defense_step(entry: Any, key: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        entry, name_key = {"name": entry.strip()}, key
    else:
        name_key = f"{key}.name"
    expect_type(entry, dict, key, "a defense name or a table",
                "write \"bound_floor\" or {name = \"bound_floor\", quantile = 0.2}")
    params = {k: _tuples(v) for k, v in entry.items()}
    name = params.pop("name", None)
    if name is None:
        raise InputError(name_key, "missing", "give the defense's name "
                         "(see pluralguard list defenses)")
    expect_type(name, str, name_key, "a defense name", "write e.g. name = \"bound_floor\"")
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
    expect_type(entry, dict, key, "a defense name or a table",
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
