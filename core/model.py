"""The population model: n agents' value systems, confidence bounds and weights.

A *value system* is a pair v = (X, W) (DESIGN §2):

* X ∈ [−1, 1]^{k×m}: X[a, v] is how alternative a is judged with respect to value v
  (the *interpretation* of the values; Lera-Leri et al.'s action judgements);
* W ∈ Δ^m: the relative importance of the m values, a point of the probability
  simplex.

Each agent may also declare confidence bounds γ = (γˣ, γʷ): how far it concedes in
X (Frobenius norm) and in W (Euclidean norm). Its *acceptable set* is

    F_i = {(X, W): ‖X − X_i‖_F ≤ γᵢˣ, X ∈ [−1, 1]^{k×m}, ‖W − W_i‖₂ ≤ γᵢʷ, W ∈ Δ^m}.

Agents may carry utility weights w_i > 0 (a country weighted by its respondents). Only
their ratios matter: every sum over agents uses the *relative* weights
:attr:`Population.weight`, the given weights divided by a power of two so that the
largest lies in [1, 2). That division is exact, so ratios are kept bit for bit, and a
sum of n relative weights stays below 2n: weights of 1e308 each describe the same
population as weights of 1 instead of overflowing.

Mechanisms only ever see declarations; metrics use the agents' true value systems,
which are simply another :class:`Population` with the same agents.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .memo import BoundedMemo
from .numbers import real_array

#: Numerical slack when validating X ∈ [−1, 1] and W ∈ Δ^m (rounding in source data).
RANGE_TOL = 1e-9
#: Slack on ΣW = 1: survey shares are ratios of counts printed with finite digits.
SIMPLEX_SUM_TOL = 1e-6
#: Smallest ratio w_i / max_j w_j: products and reciprocals of relative weights stay
#: normal floats (an agent this light counts for nothing anyway).
MIN_RELATIVE_WEIGHT = 1e-150


def relative_weights(weights: np.ndarray) -> np.ndarray:
    """``weights`` divided by the power of two that puts their maximum in [1, 2).

    Dividing by a power of two is exact, so every ratio w_i / w_j is kept bit for bit
    and any sum of n results is below 2n (no overflow, whatever the scale).
    """
    exponent = np.frexp(np.max(weights))[1] - 1
    return np.ldexp(weights, -exponent)


def check_weights(value: Any, n: int, field: str = "weights") -> np.ndarray:
    """Agent weights as a new float array, or :class:`InputError` naming ``field``.

    One positive, finite weight per agent (a scalar is every agent's weight), none
    lighter than :data:`MIN_RELATIVE_WEIGHT` times the heaviest.
    """
    fix = f"pass one positive, finite weight per agent ({n})"
    wts = real_array(field, value, fix)
    if wts.ndim == 0:
        wts = np.full(n, float(wts))
    if wts.shape != (n,):
        raise InputError(field, f"expected {n} weights, got shape {wts.shape}", fix)
    _check_finite(field, wts)
    if (wts <= 0).any():
        i = int(np.argmax(wts <= 0))
        raise InputError(field, f"entry {i} is not positive ({wts[i]:.6g})",
                         "weights must be > 0 (drop agents instead of zero-weighting)")
    light = wts < MIN_RELATIVE_WEIGHT * wts.max()
    if light.any():
        i = int(np.argmax(light))
        raise InputError(field, f"entry {i} ({wts[i]:.3g}) is less than "
                         f"{MIN_RELATIVE_WEIGHT:g} times the largest weight ({wts.max():.3g})",
                         "drop agents that light instead of weighting them (only ratios of "
                         "weights matter)")
    return wts


def _float_array(name: str, value: Any, ndim: int, fix: str) -> np.ndarray:
    arr = real_array(name, value, fix)
    if arr.ndim != ndim:
        raise InputError(name, f"expected {ndim} dimensions, got shape {arr.shape}", fix)
    return arr


def _check_finite(name: str, arr: np.ndarray, allow_inf: bool = False) -> None:
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN" if allow_inf else "NaN or infinite"
        raise InputError(name, f"contains {what} (first at index {where})",
                         "remove or impute the missing entries before building the population")


#: Name tuples already checked, by identity (each kept alive here, so its id is not
#: reused): a population copied with new declarations — an attacker's every query —
#: hands its names on unchanged, and checking 40,000 names costs ~7 ms each time.
_CHECKED_NAMES: BoundedMemo[tuple[str, ...]] = BoundedMemo(64)


def _names(name: str, value: Sequence[str] | None, length: int, prefix: str) -> tuple[str, ...]:
    if value is None:
        return tuple(f"{prefix}{i}" for i in range(length))
    if _CHECKED_NAMES.peek(id(value)) is value and len(value) == length:
        return value  # type: ignore[return-value]
    fix = f"give a sequence of {length} unique, non-empty names (text)"
    if isinstance(value, str | bytes | Set | Mapping) or not isinstance(value, Iterable):
        raise InputError(name, f"expected a sequence of names, got {type(value).__name__}",
                         fix)
    names = tuple(value)
    for i, v in enumerate(names):
        if not isinstance(v, str):
            raise InputError(name, f"entry {i} is {v!r}, not text", fix)
        if not v.strip():
            raise InputError(name, f"entry {i} is an empty name", fix)
    if len(names) != length:
        raise InputError(name, f"has {len(names)} names for {length} entries",
                         f"give exactly {length} names")
    if len(set(names)) != len(names):
        dup = next(v for v in names if names.count(v) > 1)
        raise InputError(name, f"name {dup!r} appears more than once", "make the names unique")
    return _CHECKED_NAMES.get(id(names), lambda: names)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False, repr=False)
class Population:
    """Declared (or true) value systems of n agents over k alternatives and m values.

    Parameters
    ----------
    X : array_like, shape (n, k, m)
        Judgements in [−1, 1]: ``X[i, a, v]`` is how agent i judges alternative a with
        respect to value v.
    W : array_like, shape (n, m)
        Value weights on the simplex Δ^m (non-negative, rows sum to 1).
    gamma_x, gamma_w : array_like, shape (n,) or scalar, optional
        Confidence bounds in X (Frobenius) and W (Euclidean). ``np.inf`` means the
        agent accepts anything in that part. Give both or neither.
    weights : array_like, shape (n,), optional
        Positive utility weights w_i (e.g. a country's respondents). Default 1.
    agents, values, alternatives : sequence of str, optional
        Names; default ``agent0…``, ``value0…``, ``alt0…``.
    name : str
        Short identifier of the population (dataset name).
    description : str
        Free text: provenance, citation, "synthetic".

    Raises
    ------
    InputError
        On any malformed field; the message names the field and the fix.

    Notes
    -----
    Instances are immutable (arrays are read-only); derive new ones with
    :meth:`replace`, :meth:`subset`, :meth:`with_bounds` or :meth:`append`.
    """

    X: np.ndarray
    W: np.ndarray
    gamma_x: np.ndarray | None = None
    gamma_w: np.ndarray | None = None
    weights: np.ndarray | None = None
    agents: tuple[str, ...] = field(default=None)  # type: ignore[assignment]
    values: tuple[str, ...] = field(default=None)  # type: ignore[assignment]
    alternatives: tuple[str, ...] = field(default=None)  # type: ignore[assignment]
    name: str = "population"
    description: str = ""

    def __post_init__(self) -> None:
        X = _float_array("X", self.X, 3, "pass an array of shape (n_agents, k_alternatives, "
                         "m_values)")
        n, k, m = X.shape
        if n == 0 or k == 0 or m == 0:
            raise InputError("X", f"has an empty dimension, shape {X.shape}",
                             "give at least one agent, one alternative and one value")
        _check_finite("X", X)
        if (np.abs(X) > 1 + RANGE_TOL).any():
            i = tuple(int(t) for t in np.argwhere(np.abs(X) > 1 + RANGE_TOL)[0])
            raise InputError("X", f"judgement {X[i]:.6g} at index {i} is outside [-1, 1]",
                             "rescale judgements to [-1, 1]")
        np.clip(X, -1.0, 1.0, out=X)

        W = _float_array("W", self.W, 2, f"pass an array of shape (n_agents={n}, m_values={m})")
        if W.shape != (n, m):
            raise InputError("W", f"expected shape ({n}, {m}) to match X, got {W.shape}",
                             "give one weight vector over the m values per agent")
        _check_finite("W", W)
        if (W < -RANGE_TOL).any():
            i = int(np.argwhere(W < -RANGE_TOL)[0, 0])
            raise InputError("W", f"row {i} has a negative weight", "weights must be >= 0")
        sums = W.sum(axis=1)
        off = np.abs(sums - 1) > SIMPLEX_SUM_TOL
        if off.any():
            i = int(np.argmax(off))
            raise InputError("W", f"row {i} sums to {sums[i]:.6g}, not 1 (W must lie on "
                             "the simplex)",
                             "normalise each row, e.g. W / W.sum(axis=1, keepdims=True)")
        np.clip(W, 0.0, None, out=W)

        gx, gw = self.gamma_x, self.gamma_w
        if (gx is None) != (gw is None):
            missing = "gamma_w" if gw is None else "gamma_x"
            raise InputError(missing, "missing while the other bound is given",
                             "pass both gamma_x and gamma_w (np.inf means no limit)")
        if gx is not None:
            gx = self._bound("gamma_x", gx, n)
            gw = self._bound("gamma_w", gw, n)

        wts = None if self.weights is None else check_weights(self.weights, n)
        for attr in ("name", "description"):
            if not isinstance(getattr(self, attr), str):
                raise InputError(attr, f"expected text, got {type(getattr(self, attr)).__name__}",
                                 f"pass {attr} as a string")

        set_ = object.__setattr__
        set_(self, "X", _readonly(X))
        set_(self, "W", _readonly(W))
        set_(self, "gamma_x", None if gx is None else _readonly(gx))
        set_(self, "gamma_w", None if gw is None else _readonly(gw))
        set_(self, "weights", None if wts is None else _readonly(wts))
        set_(self, "agents", _names("agents", self.agents, n, "agent"))
        set_(self, "values", _names("values", self.values, m, "value"))
        set_(self, "alternatives", _names("alternatives", self.alternatives, k, "alt"))

    @staticmethod
    def _bound(name: str, value: Any, n: int) -> np.ndarray:
        fix = f"pass a non-negative scalar or one bound per agent ({n}); np.inf means no limit"
        arr = real_array(name, value, fix)
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        arr = _float_array(name, arr, 1, fix)
        if arr.shape != (n,):
            raise InputError(name, f"expected {n} entries, got {arr.shape[0]}", fix)
        _check_finite(name, arr, allow_inf=True)
        if (arr < 0).any():
            i = int(np.argmax(arr < 0))
            raise InputError(name, f"entry {i} is negative ({arr[i]:.6g})", fix)
        return arr

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        """Number of agents."""
        return self.X.shape[0]

    @property
    def k(self) -> int:
        """Number of alternatives."""
        return self.X.shape[1]

    @property
    def m(self) -> int:
        """Number of values."""
        return self.X.shape[2]

    @property
    def has_bounds(self) -> bool:
        """Whether the agents declared confidence bounds."""
        return self.gamma_x is not None

    @property
    def weight(self) -> np.ndarray:
        """Relative utility weights (module doc), ones when none were given.

        The given :attr:`weights` divided by the power of two that puts the largest in
        [1, 2) (:func:`relative_weights`): the same ratios, bit for bit, and sums that
        cannot overflow. Every sum over agents uses these, so multiplying all weights by
        any c > 0 changes no agreement.
        """
        return np.ones(self.n) if self.weights is None else relative_weights(self.weights)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        extra = ", bounded" if self.has_bounds else ""
        extra += ", weighted" if self.weights is not None else ""
        return (f"Population({self.name!r}: n={self.n} agents, k={self.k} alternatives, "
                f"m={self.m} values{extra})")

    # ------------------------------------------------------------ derivation
    def replace(self, **changes: Any) -> Population:
        """Return a copy with some fields replaced (re-validated)."""
        known = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in known:
                raise InputError(key, "is not a field of a Population",
                                 f"replace one of {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)

    def with_bounds(self, gamma_x: Any, gamma_w: Any) -> Population:
        """Return a copy with new confidence bounds."""
        return self.replace(gamma_x=gamma_x, gamma_w=gamma_w)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Population:
        """Return the sub-population of the given agents, in the given order."""
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        fix = f"pass agent indices in [0, {self.n}) or a boolean mask of {self.n} entries"
        if idx.dtype == bool:
            if idx.shape != (self.n,):
                raise InputError("indices", f"boolean mask of shape {idx.shape} for "
                                 f"{self.n} agents", fix)
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise InputError("indices", "is not a one-dimensional sequence of integer "
                             "indices", fix)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise InputError("indices", f"out of range for {self.n} agents",
                             f"use indices in [0, {self.n})")

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return self.replace(X=self.X[idx], W=self.W[idx], gamma_x=pick(self.gamma_x),
                            gamma_w=pick(self.gamma_w), weights=pick(self.weights),
                            agents=[self.agents[i] for i in idx])

    def append(self, other: Population) -> Population:
        """Concatenate another population with the same alternatives and values.

        Bounds and weights are kept when both sides have them (missing weights count
        as 1); names must stay unique.
        """
        if not isinstance(other, Population):
            raise InputError("other", f"expected a Population, got {type(other).__name__}",
                             "append a Population over the same alternatives and values")
        if (other.k, other.m) != (self.k, self.m):
            raise InputError("other", f"has shape k={other.k}, m={other.m}, expected "
                             f"k={self.k}, m={self.m}", "append agents over the same "
                             "alternatives and values")
        if self.has_bounds != other.has_bounds:
            raise InputError("other", "one side declares bounds and the other does not",
                             "give both populations bounds (np.inf means no limit)")
        weights = None
        if self.weights is not None or other.weights is not None:
            weights = np.concatenate([np.ones(p.n) if p.weights is None else p.weights
                                      for p in (self, other)])
        cat = np.concatenate
        return self.replace(
            X=cat([self.X, other.X]), W=cat([self.W, other.W]),
            gamma_x=cat([self.gamma_x, other.gamma_x]) if self.has_bounds else None,
            gamma_w=cat([self.gamma_w, other.gamma_w]) if self.has_bounds else None,
            weights=weights, agents=self.agents + other.agents)

    # -------------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """SHA-256 of the content (arrays, names), for content-addressed caching."""
        h = hashlib.sha256()
        for arr in (self.X, self.W, self.gamma_x, self.gamma_w, self.weights):
            if arr is None:
                h.update(b"none")
            else:
                h.update(repr(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        for names in (self.agents, self.values, self.alternatives):
            h.update("\x1f".join(names).encode())
            h.update(b"\x1e")
        return h.hexdigest()

    def flat(self) -> np.ndarray:
        """Concatenated coordinates ``[vec(X_i), W_i]``, shape (n, k·m + m)."""
        return np.concatenate([self.X.reshape(self.n, -1), self.W], axis=1)
