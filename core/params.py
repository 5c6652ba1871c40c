"""Declared parameter constraints: every parameter says once what it accepts.

A public function, an attack recipe or a defense declares, per parameter, a
:class:`Constraint` — ``Integer(0)``, ``Real(0, 1)``, ``Options("lof", "iforest")``,
``Boolean()``, ``AgentIds()``, … — and one checker enforces them all with one error
style, :class:`~.errors.InputError` naming the parameter::

    sybils: 2.5 is not an integer in [0, 100000]; pass e.g. sybils=5

The idea is scikit-learn's ``_param_validation`` (``Interval``, ``StrOptions``,
``validate_params``; Pedregosa et al., *Scikit-learn: machine learning in Python*,
JMLR 2011): constraints are data, so a test can enumerate every declared parameter and
feed it a value its constraint rejects (:meth:`Constraint.invalid`).

* Dataclasses (recipes, defenses, the threat model) declare a class attribute
  ``PARAMS: ClassVar[dict[str, Constraint]]`` and call :func:`check_fields` in
  ``__post_init__``; declarations of base classes are inherited (:func:`params_of`).
* Functions are decorated with :func:`validate_params`.

Nothing is coerced silently: an integer parameter rejects ``2.0`` and ``True``, a real
one rejects text (``"0.5"``; the command line and suite files parse text first, in
plain decimal notation, :mod:`~.numbers`), NaN and, unless declared, infinity. The only
conversions are the harmless normalisations a constraint states: numpy scalars become
Python numbers, a single agent id or name becomes a one-element tuple, lists become
tuples (parameters must be hashable).

The module is a little over 500 lines on purpose: the constraint kinds are the
vocabulary of every declaration, and reading them beside the one checker is what makes
a declaration's message predictable.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from .errors import InputError
from .numbers import parse_decimal


class Invalid(Exception):
    """A value a constraint rejects (internal: :func:`check` turns it into InputError)."""


class Constraint:
    """What one parameter accepts.

    Subclasses set :attr:`what` (a noun phrase: "an integer >= 0") and
    :attr:`example` (text after ``name=``), and implement :meth:`convert` and
    :meth:`invalid`.
    """

    what: str = "a valid value"
    example: str = ""

    def convert(self, value: Any) -> Any:
        """The value, normalised (numpy scalars → Python, lists → tuples); raise
        :class:`Invalid` if rejected — empty for the default problem ("<value> is not
        <what>"), else a problem that names the offending value."""
        raise NotImplementedError

    def invalid(self) -> Any:
        """A value this constraint rejects (for tests)."""
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _quoted(value: Any, what: str) -> None:
    """Reject a number written as text (``bound = "0.5"`` in a suite) with that problem."""
    if isinstance(value, str) and parse_decimal(value, allow_inf=True) is not None:
        raise Invalid(f"{value!r} is text, not {what} (write it without quotes)")


def _span(low: float | None, high: float | None, left: bool, right: bool) -> str:
    if low is not None and high is not None:
        return f"in {'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"
    if low is not None:
        return f"{'>=' if left else '>'} {low:g}"
    if high is not None:
        return f"{'<=' if right else '<'} {high:g}"
    return ""


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool, not a float such as 2.0) in [low, high]."""

    low: int | None = None
    high: int | None = None
    sample: int | None = None

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"an integer {_span(self.low, self.high, True, True)}".rstrip()

    @property
    def example(self) -> str:  # type: ignore[override]
        if self.sample is not None:
            return str(self.sample)
        return str(self.low if self.low is not None else 0)

    def convert(self, value: Any) -> int:
        _quoted(value, "an integer")
        if not _is_int(value):
            raise Invalid("")
        value = int(value)
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            raise Invalid("")
        return value

    def invalid(self) -> Any:
        return 1.5


@dataclass(frozen=True)
class Real(Constraint):
    """A real number (int or float, not bool or text; never NaN) in an interval.

    ``closed`` says which ends belong to it: ``both``, ``left``, ``right``,
    ``neither``. Infinity only with ``inf=True`` (e.g. a bound meaning "no limit").
    """

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    inf: bool = False
    sample: float | None = None

    @property
    def what(self) -> str:  # type: ignore[override]
        span = _span(self.low, self.high, self.closed in ("both", "left"),
                     self.closed in ("both", "right"))
        return " ".join(p for p in ("a number", span, "(inf allowed)" if self.inf else "")
                        if p)

    @property
    def example(self) -> str:  # type: ignore[override]
        if self.sample is not None:
            return f"{self.sample:g}"
        if self.low is not None and self.high is not None:
            return f"{(self.low + self.high) / 2:g}"
        if self.low is not None:
            return f"{self.low + 1:g}"
        return "0"

    def convert(self, value: Any) -> float:
        _quoted(value, "a number")
        if not _is_real(value):
            raise Invalid("")
        try:
            number = float(value)
        except OverflowError:
            raise Invalid(f"{value!r} is too large for a float") from None
        if math.isnan(number) or (math.isinf(number) and not self.inf):
            raise Invalid("")
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (number < self.low or (number == self.low and not left)):
            raise Invalid("")
        if self.high is not None and (number > self.high or (number == self.high
                                                              and not right)):
            raise Invalid("")
        return number

    def invalid(self) -> Any:
        return "abc"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of strings (or of a registry's names, read when checked)."""

    values: tuple[str, ...] | Callable[[], Iterable[str]]

    def names(self) -> tuple[str, ...]:
        return tuple(self.values() if callable(self.values) else self.values)

    @property
    def what(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.names())

    @property
    def example(self) -> str:  # type: ignore[override]
        return self.names()[0]

    def convert(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.names():
            raise Invalid("")
        return value

    def invalid(self) -> Any:
        return "no-such-option"


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or False (not 1, not ``"yes"``: ``protocol=maybe`` is an error)."""

    what = "true or false"
    example = "true"

    def convert(self, value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise Invalid("")
        return bool(value)

    def invalid(self) -> Any:
        return "maybe"


@dataclass(frozen=True)
class Instance(Constraint):
    """An instance of one of ``types`` (described by ``what``)."""

    types: tuple[type, ...]
    what: str = "an object of the right type"  # type: ignore[misc]
    example: str = ""  # type: ignore[misc]

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool) and bool not in self.types:
            raise Invalid("")
        if not isinstance(value, self.types):
            raise Invalid("")
        return value

    def invalid(self) -> Any:
        return 1.5 if float not in self.types else object()


@dataclass(frozen=True)
class OrNone(Constraint):
    """None, or what ``inner`` accepts."""

    inner: Constraint

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.inner.what

    @property
    def example(self) -> str:  # type: ignore[override]
        return self.inner.example

    def convert(self, value: Any) -> Any:
        return None if value is None else self.inner.convert(value)

    def invalid(self) -> Any:
        return self.inner.invalid()


def _items(value: Any) -> tuple[Any, ...]:
    """A single item or a list/tuple of items as a tuple."""
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return tuple(value.tolist())
    return (value,)


@dataclass(frozen=True)
class Each(Constraint):
    """Zero or more values, each accepted by ``inner`` (a single one is a one-element
    tuple)."""

    inner: Constraint

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a list of values, each {self.inner.what}"

    @property
    def example(self) -> str:  # type: ignore[override]
        return f"[{self.inner.example}]"

    def convert(self, value: Any) -> tuple[Any, ...]:
        out = []
        for item in _items(value):
            try:
                out.append(self.inner.convert(item))
            except Invalid as err:
                raise Invalid(f"{item!r} is not {self.inner.what}" + (
                    f" ({err})" if str(err) else "")) from None
        return tuple(out)

    def invalid(self) -> Any:
        return (self.inner.invalid(),)


@dataclass(frozen=True)
class AgentIds(Constraint):
    """One or more agents: indices (integers >= 0, counted from 0) or names (text).

    Indices and names may be mixed; a single one is a one-element tuple. Whether they
    exist is checked against a population (:func:`agent_indices`).
    """

    what = "one or more agent indices (from 0) or agent names"
    example = "3 (several: 3+7 on the command line, [3, 7] in a suite)"

    def convert(self, value: Any) -> tuple[int | str, ...]:
        items = _items(value)
        if not items:
            raise Invalid(f"{value!r} lists no agent")
        out: list[int | str] = []
        for item in items:
            if _is_int(item) and int(item) >= 0:
                out.append(int(item))
            elif isinstance(item, str) and item.strip():
                out.append(item.strip())
            else:
                raise Invalid(f"{item!r} is neither an agent index (an integer >= 0) nor "
                              "an agent name")
        return tuple(out)

    def invalid(self) -> Any:
        return 1.5


def agent_indices(ids: Sequence[int | str], agents: Sequence[str], name: str) -> np.ndarray:
    """Sorted unique indices of agents given by index or name.

    Parameters
    ----------
    ids : sequence of int or str
        Indices (counted from 0) or agent names, as :class:`AgentIds` accepts them.
    agents : sequence of str
        The population's agent names.
    name : str
        The parameter, named in the error.

    Raises
    ------
    InputError
        An index out of range or a name that is not an agent's.
    """
    n = len(agents)
    position = {a: i for i, a in enumerate(agents)}
    out = []
    for item in ids:
        if isinstance(item, str):
            if item not in position:
                close = [a for a in agents if a.lower() == item.lower()]
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(name, f"no agent is named {item!r}{hint}",
                                 f"pass agent names of the population or indices 0–{n - 1}")
            out.append(position[item])
        else:
            if not 0 <= int(item) < n:
                raise InputError(name, f"id {item} is out of range ({n} agents)",
                                 f"pass agent indices 0–{n - 1} or agent names")
            out.append(int(item))
    return np.unique(np.asarray(out, dtype=int))


@dataclass(frozen=True)
class Names(Constraint):
    """One or more names from a registry (read when checked); a single name is a
    one-element tuple."""

    values: Callable[[], Iterable[str]]
    kind: str = "name"

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"one or more {self.kind}s among " + ", ".join(self.values())

    @property
    def example(self) -> str:  # type: ignore[override]
        first = list(self.values())[:2]
        return f"{first[0]} (several: {'+'.join(first)} on the command line)"

    def convert(self, value: Any) -> tuple[str, ...]:
        items = _items(value)
        known = set(self.values())
        if not items:
            raise Invalid(f"{value!r} lists no {self.kind}")
        for item in items:
            if not isinstance(item, str) or item not in known:
                raise Invalid(f"{item!r} is not a registered {self.kind}")
        return items

    def invalid(self) -> Any:
        return ("no-such-name",)


@dataclass(frozen=True)
class Pair(Constraint):
    """Two values, each accepted by its constraint (a list becomes a tuple)."""

    first: Constraint
    second: Constraint
    what: str = "a pair of values"  # type: ignore[misc]
    example: str = ""  # type: ignore[misc]

    def convert(self, value: Any) -> tuple[Any, Any]:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise Invalid("")
        return (self.first.convert(value[0]), self.second.convert(value[1]))

    def invalid(self) -> Any:
        return (1.0,)


@dataclass(frozen=True)
class ValueSystem(Constraint):
    """A value system (X, W): two nested sequences of real numbers (their shapes are
    checked against the population where it is known)."""

    what = "a value system (X, W) of real numbers"
    example = "[X, W] (X: k rows of m judgements, W: m weights)"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, list | tuple | np.ndarray) or len(value) != 2:
            raise Invalid("")
        for part in value:
            try:
                arr = np.asarray(part)
            except (ValueError, TypeError):
                raise Invalid("") from None
            if arr.dtype.kind not in "iuf" or arr.size == 0 or not np.isfinite(arr).all():
                raise Invalid("")
        return value

    def invalid(self) -> Any:
        return "abc"


@dataclass(frozen=True)
class Parsed(Constraint):
    """Text that ``parse`` accepts (``parse`` raises InputError otherwise)."""

    parse: Callable[[str], Any]
    what: str = "a valid specification"  # type: ignore[misc]
    example: str = ""  # type: ignore[misc]

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise Invalid("")
        try:
            self.parse(value)
        except InputError as err:
            raise Invalid(err.problem) from None
        return value

    def invalid(self) -> Any:
        return 1.5


# ----------------------------------------------------------------- the checker
def check(name: str, value: Any, constraint: Constraint) -> Any:
    """``value`` normalised by ``constraint``, else :class:`InputError` naming ``name``.

    The message reads ``name: <value> is not <what>; pass e.g. name=<example>``, or,
    when the constraint found a more specific problem, ``name: <problem>; pass <what>,
    e.g. name=<example>``.
    """
    try:
        return constraint.convert(value)
    except Invalid as err:
        example = f"e.g. {name}={constraint.example}" if constraint.example else ""
        if str(err):  # a specific problem: say what is expected in the fix
            fix = f"pass {constraint.what}" + (f", {example}" if example else "")
            raise InputError(name, str(err), fix) from None
        raise InputError(name, f"{value!r} is not {constraint.what}",
                         f"pass {example}" if example else f"pass {constraint.what}"
                         ) from None


def params_of(cls: type) -> dict[str, Constraint]:
    """The constraints a class declares in ``PARAMS``, its bases' first."""
    out: dict[str, Constraint] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get("PARAMS", {}))
    return out


def check_fields(obj: Any) -> None:
    """Check (and normalise) every declared field of a frozen dataclass instance.

    Fields without a declaration are left as they are (a user's plugin class may
    declare none). A class attribute ``PARAM_LABELS`` (field → name) names a field as
    users write it, when that differs.
    """
    declared = params_of(type(obj))
    labels = getattr(type(obj), "PARAM_LABELS", {})
    for f in fields(obj):
        constraint = declared.get(f.name)
        if constraint is not None:
            value = check(labels.get(f.name, f.name), getattr(obj, f.name), constraint)
            object.__setattr__(obj, f.name, value)


class Validated:
    """Mixin of dataclasses whose fields are declared in ``PARAMS``.

    ``__post_init__`` checks them (:func:`check_fields`), then calls
    :meth:`_check_together` for the rules that join several fields.
    """

    PARAMS: ClassVar[dict[str, Constraint]] = {}

    def __post_init__(self) -> None:
        check_fields(self)
        self._check_together()

    def _check_together(self) -> None:
        """Rules over several fields (raise InputError naming one of them)."""


def validate_params(constraints: Mapping[str, Constraint]) -> Callable:
    """Decorator: check a function's declared parameters before it runs.

    The declarations are kept on the function as ``__param_constraints__`` (so a test
    can enumerate them); normalised values are passed on.
    """
    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{func.__qualname__} has no parameter {sorted(unknown)[0]}")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as err:
                raise InputError(func.__name__, str(err),
                                 f"see help({func.__name__})") from None
            for name, constraint in constraints.items():
                if name in bound.arguments:
                    bound.arguments[name] = check(name, bound.arguments[name], constraint)
            return func(*bound.args, **bound.kwargs)

        wrapper.__param_constraints__ = dict(constraints)  # type: ignore[attr-defined]
        return wrapper
    return decorate
