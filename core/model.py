"""The population model: n agents' value systems, confidence bounds and weights.

A *value system* is a pair v = (X, W) (DESIGN §2):

* X ∈ [−1, 1]^{k×m}: X[a, v] is how alternative a is judged with respect to value v
  (the *interpretation* of the values; Lera-Leri et al.'s action judgements);
* W ∈ Δ^m: the relative importance of the m values, a point of the probability
  simplex.

Each agent may also declare confidence bounds γ = (γˣ, γʷ): how far it concedes in
X (Frobenius norm) and in W (Euclidean norm). Its *acceptable set* is

    F_i = {(X, W): ‖X − X_i‖_F ≤ γᵢˣ, X ∈ [−1, 1]^{k×m}, ‖W − W_i‖₂ ≤ γᵢʷ, W ∈ Δ^m}.

Mechanisms only ever see declarations; metrics use the agents' true value systems,
which are simply another :class:`Population` with the same agents.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError

#: Numerical slack when validating X ∈ [−1, 1] and W ∈ Δ^m (rounding in source data).
RANGE_TOL = 1e-9
#: Slack on ΣW = 1: survey shares are ratios of counts printed with finite digits.
SIMPLEX_SUM_TOL = 1e-6


def _float_array(name: str, value: Any, ndim: int, fix: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(name, "is not numeric", fix) from None
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


def _names(name: str, value: Sequence[str] | None, length: int, prefix: str) -> tuple[str, ...]:
    if value is None:
        return tuple(f"{prefix}{i}" for i in range(length))
    names = tuple(str(v) for v in value)
    if len(names) != length:
        raise InputError(name, f"has {len(names)} names for {length} entries",
                         f"give exactly {length} names")
    if len(set(names)) != len(names):
        dup = next(v for v in names if names.count(v) > 1)
        raise InputError(name, f"name {dup!r} appears more than once", "make the names unique")
    return names


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

        wts = self.weights
        if wts is not None:
            wts = _float_array("weights", np.broadcast_to(wts, (n,)) if np.ndim(wts) == 0
                               else wts, 1, f"pass one positive weight per agent ({n})")
            if wts.shape != (n,):
                raise InputError("weights", f"expected {n} entries, got {wts.shape[0]}",
                                 "pass one positive weight per agent")
            _check_finite("weights", wts)
            if (wts <= 0).any():
                raise InputError("weights", f"entry {int(np.argmax(wts <= 0))} is not positive",
                                 "weights must be > 0 (drop agents instead of zero-weighting)")

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
        arr = np.array(value, dtype=float) if np.ndim(value) else np.full(n, float(value))
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
        """Utility weights, ones when none were given."""
        return np.ones(self.n) if self.weights is None else self.weights

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
        return dataclasses.replace(self, **changes)

    def with_bounds(self, gamma_x: Any, gamma_w: Any) -> Population:
        """Return a copy with new confidence bounds."""
        return self.replace(gamma_x=gamma_x, gamma_w=gamma_w)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Population:
        """Return the sub-population of the given agents, in the given order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
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
        if (other.k, other.m) != (self.k, self.m):
            raise InputError("other", f"has shape k={other.k}, m={other.m}, expected "
                             f"k={self.k}, m={self.m}", "append agents over the same "
                             "alternatives and values")
        if self.has_bounds != other.has_bounds:
            raise InputError("other", "one side declares bounds and the other does not",
                             "give both populations bounds (np.inf means no limit)")
        weights = None
        if self.weights is not None or other.weights is not None:
            weights = np.concatenate([self.weight, other.weight])
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
