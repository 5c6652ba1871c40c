"""The attackers' declaration space, as coordinates a search can move in.

A coalition declares, for each attacker a, a value system v̂_a within its budget,
δ(v̂_a, v_a) ≤ ε, and — when the mechanism reads declared bounds — bounds in the legal
range; each Sybil identity (which has no truth to stay near) declares any valid value
system and bounds. :class:`DeclarationSpace` maps a coordinate vector z to such a
declared population, so that every z is a legal attack and every legal attack has a z.

Coordinates of one identity (a *block*), chosen so that δ is the Euclidean norm:

* judgements: X = Π_box(c_X + √2 D_X z_X), z_X ∈ R^{k·m};
* value weights: W = Π_Δ(c_W + √2 D_W U z_W), z_W ∈ R^{m−1}, U an orthonormal basis
  of the simplex's tangent space {w : Σw = 0} (Helmert's);
* bounds (only under a bound policy that reads declarations): γ̂ = clip(2^β γ_ref)
  per part, β ∈ [:data:`LOG2_BOUNDS`] (one part only when m = 1: every W is then the
  same point, and γ̂ʷ cannot matter).

For an attacker the centre c is its truth and the value-system coordinates are kept
in the ball ‖z‖ ≤ ε (points outside are scaled back radially); the projections onto
the box and the simplex never move a point farther from the truth, which is itself
valid, so δ(v̂, v) ≤ ‖z‖ ≤ ε. For a Sybil the centre is the middle of the valid set
(X = 0, W uniform) and z ranges over a box covering it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pluralguard.core.geometry import (
    D_W,
    diameter_x,
    project_box,
    project_simplex,
    scaled_diameters,
)
from pluralguard.core.model import Population

from .base import bound_policy_kind, clip_bounds
from .context import AttackContext
from .geometry import make_identities

#: Range of the searched log2 bound factor β (γ̂ = 2^β γ_ref): from "almost nothing"
#: (2^-20 of the reference, which links with no other declaration) to twice it.
LOG2_BOUNDS = (-20.0, 1.0)
#: Largest δ between valid value systems (the δ-diameter of the valid set).
DIAMETER = 1.0


def simplex_basis(m: int) -> np.ndarray:
    """Orthonormal basis (m × (m − 1)) of {w ∈ R^m : Σw = 0} (Helmert's submatrix)."""
    U = np.zeros((m, max(m - 1, 0)))
    for j in range(1, m):
        U[:j, j - 1] = 1.0
        U[j, j - 1] = -float(j)
        U[:, j - 1] /= math.sqrt(j * (j + 1))
    return U


@dataclass(frozen=True)
class Block:
    """Coordinates of one declaring identity.

    Attributes
    ----------
    kind : {"attacker", "sybil"}
    start : int
        Offset of the block in z.
    centre_X, centre_W : ndarray
        c of the value-system coordinates.
    radius : float or ndarray
        Attackers: the ball radius of the value-system coordinates (the budget, at most
        the δ-diameter 1). Sybils: the half-widths of their box, per coordinate.
    bound_ref : (float, float) or None
        γ_ref of the searched bounds; None when bounds are not searched.
    """

    kind: str
    start: int
    centre_X: np.ndarray
    centre_W: np.ndarray
    radius: float | np.ndarray
    bound_ref: tuple[float, float] | None


class DeclarationSpace:
    """Coordinates z ↦ declared population for a coalition and its Sybils.

    Parameters
    ----------
    ctx : AttackContext
        Supplies the truth, the attackers, the threat model and the mechanism.
    budget : float
        ε on δ(v̂_a, v_a) per attacker (``inf``: anywhere valid).
    sybils : int, optional
        Sybil identities to declare (default the threat model's).
    """

    def __init__(self, ctx: AttackContext, budget: float, sybils: int | None = None) -> None:
        truth = ctx.truth
        self.ctx = ctx
        self.k, self.m = truth.k, truth.m
        self.km = truth.k * truth.m
        self.n_value = self.km + self.m - 1
        self.scale_X, self.scale_W = scaled_diameters(truth.k, truth.m)
        self.U = simplex_basis(self.m)
        self.budget = budget
        self.sybils = ctx.threat.sybils if sybils is None else sybils
        self.with_bounds = (bound_policy_kind(ctx.mechanism) in ("declared", "custom")
                            and truth.has_bounds)
        self.n_bounds = (1 if truth.m == 1 else 2) if self.with_bounds else 0
        width = self.n_value + self.n_bounds
        blocks = []
        radius = min(float(budget), DIAMETER)
        for r, a in enumerate(ctx.attackers):
            ref = None
            if self.with_bounds:
                ref = (_reference(truth.gamma_x[a], diameter_x(truth.k, truth.m)),
                       _reference(truth.gamma_w[a], D_W))
            blocks.append(Block("attacker", r * width, truth.X[a], truth.W[a], radius, ref))
        sybil_ref = None
        if self.with_bounds:
            sybil_ref = (_reference(float(np.median(truth.gamma_x)),
                                    diameter_x(truth.k, truth.m)),
                         _reference(float(np.median(truth.gamma_w)), D_W))
        middle_X = np.zeros((truth.k, truth.m))
        middle_W = np.full(truth.m, 1.0 / truth.m)
        half = np.concatenate([np.full(self.km, 1.0 / self.scale_X),
                               np.full(self.m - 1, 1.0 / self.scale_W)])
        for s in range(self.sybils):
            blocks.append(Block("sybil", (len(ctx.attackers) + s) * width, middle_X,
                                middle_W, half, sybil_ref))
        self.blocks = tuple(blocks)
        self.width = width
        self.dim = width * len(blocks)

    # ---------------------------------------------------------------- mapping
    def value_slice(self, block: Block) -> slice:
        return slice(block.start, block.start + self.n_value)

    def bound_slice(self, block: Block) -> slice:
        return slice(block.start + self.n_value, block.start + self.width)

    def clamp(self, z: np.ndarray) -> np.ndarray:
        """The point of the coordinate domain nearest z (ball or box per block;
        bound coordinates clipped to :data:`LOG2_BOUNDS`)."""
        z = np.array(z, dtype=float)
        for b in self.blocks:
            v = z[self.value_slice(b)]
            if b.kind == "attacker":
                norm = float(np.linalg.norm(v))
                if norm > b.radius:
                    v *= b.radius / norm
            else:
                np.clip(v, -b.radius, b.radius, out=v)
            z[self.value_slice(b)] = v
            if self.with_bounds:
                z[self.bound_slice(b)] = np.clip(z[self.bound_slice(b)], *LOG2_BOUNDS)
        return z

    def unit(self) -> np.ndarray:
        """Natural step unit of every coordinate: the block's radius for value-system
        coordinates, the width of :data:`LOG2_BOUNDS` for bound coordinates."""
        unit = np.empty(self.dim)
        for b in self.blocks:
            unit[self.value_slice(b)] = b.radius
            unit[self.bound_slice(b)] = LOG2_BOUNDS[1] - LOG2_BOUNDS[0]
        return unit

    def value_system(self, block: Block, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X, W) of one block's coordinates (assumed clamped)."""
        v = z[self.value_slice(block)]
        X = project_box(block.centre_X + self.scale_X * v[: self.km].reshape(self.k, self.m))
        dW = v[self.km:]
        # an unmoved W is the centre itself (projecting it again could round it off)
        W = (np.array(block.centre_W) if not dW.any()
             else project_simplex(block.centre_W + self.scale_W * (self.U @ dW)))
        return X, W

    def bounds(self, block: Block, z: np.ndarray) -> tuple[float, float]:
        """Declared (γ̂ˣ, γ̂ʷ) of one block (bounds searched only)."""
        beta = z[self.bound_slice(block)]
        factor = 2.0 ** np.resize(beta, 2)  # m = 1: the one factor serves both
        gx, gw = clip_bounds(self.ctx.threat, block.bound_ref[0] * factor[0],
                             block.bound_ref[1] * factor[1])
        return float(gx), float(gw)

    def declare(self, z: np.ndarray) -> Population:
        """The declared population of coordinates z (clamped first)."""
        z = self.clamp(z)
        A = self.ctx.attackers
        attackers = [b for b in self.blocks if b.kind == "attacker"]
        X = np.empty((A.size, self.k, self.m))
        W = np.empty((A.size, self.m))
        gx = np.empty(A.size)
        gw = np.empty(A.size)
        for r, b in enumerate(attackers):
            X[r], W[r] = self.value_system(b, z)
            if self.with_bounds:
                gx[r], gw[r] = self.bounds(b, z)
        declared = (self.ctx.with_declarations(X, W, gx, gw) if self.with_bounds
                    else self.ctx.with_declarations(X, W))
        sybils = [b for b in self.blocks if b.kind == "sybil"]
        if not sybils:
            return declared
        SX = np.stack([self.value_system(b, z)[0] for b in sybils])
        SW = np.stack([self.value_system(b, z)[1] for b in sybils])
        if self.with_bounds:
            sb = np.array([self.bounds(b, z) for b in sybils])
            sgx, sgw = sb[:, 0], sb[:, 1]
        else:
            sgx = sgw = np.full(len(sybils), np.inf)
        return declared.append(make_identities(self.ctx.truth, SX, SW, sgx, sgw, "sybil"))

    # ------------------------------------------------------------ inverse map
    def coordinates(self, declared: Population) -> np.ndarray | None:
        """z of a declared population of this space's shape (None when it has another
        number of identities). Exact up to the box and simplex faces: a declaration
        on a face maps back to a point that declares it."""
        n = self.ctx.truth.n
        if declared.n != n + self.sybils:
            return None
        z = np.zeros(self.dim)
        identities = [*self.ctx.attackers, *range(n, n + self.sybils)]
        for b, i in zip(self.blocks, identities, strict=True):
            dX = (declared.X[i] - b.centre_X).ravel() / self.scale_X
            dW = self.U.T @ (declared.W[i] - b.centre_W) / self.scale_W
            z[self.value_slice(b)] = np.concatenate([dX, dW])
            if self.with_bounds and declared.has_bounds:
                with np.errstate(divide="ignore"):
                    beta = np.log2(np.array([declared.gamma_x[i], declared.gamma_w[i]])
                                   / np.array(b.bound_ref))
                z[self.bound_slice(b)] = np.nan_to_num(beta, neginf=LOG2_BOUNDS[0],
                                                       posinf=LOG2_BOUNDS[1])[:self.n_bounds]
        return self.clamp(z)

    def truth_coordinates(self) -> np.ndarray:
        """z of telling the truth (attackers' own declarations and bounds; Sybils at the
        middle of the valid set)."""
        return np.zeros(self.dim)

    # -------------------------------------------------------------- sampling
    def random(self, rng: np.random.Generator, count: int, boundary: float = 0.5
               ) -> np.ndarray:
        """``count`` random coordinate vectors: attackers uniform in their ball (a
        share ``boundary`` of them on its sphere, where budget-limited optima lie),
        Sybils uniform in their box, bounds uniform in :data:`LOG2_BOUNDS`."""
        Z = np.zeros((count, self.dim))
        on_sphere = rng.random(count) < boundary
        for b in self.blocks:
            s = self.value_slice(b)
            d = self.n_value
            if b.kind == "attacker":
                direction = rng.standard_normal((count, d))
                direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True),
                                        1e-300)
                radius = b.radius * np.where(on_sphere, 1.0, rng.random(count) ** (1.0 / d))
                Z[:, s] = direction * radius[:, None]
            else:
                Z[:, s] = rng.uniform(-b.radius, b.radius, (count, d))
            if self.with_bounds:
                Z[:, self.bound_slice(b)] = rng.uniform(*LOG2_BOUNDS, (count, self.n_bounds))
        return Z

    def toward(self, X: np.ndarray, W: np.ndarray, fraction: float = 1.0) -> np.ndarray:
        """Every attacker moves toward the value system (X, W): the point at
        ``fraction`` of its budget along the straight line (in z) toward it, or the
        point itself when nearer. Sybils sit at it; bounds stay the truth's."""
        z = np.zeros(self.dim)
        for b in self.blocks:
            dX = (np.asarray(X) - b.centre_X).ravel() / self.scale_X
            dW = self.U.T @ (np.asarray(W) - b.centre_W) / self.scale_W
            v = np.concatenate([dX, dW])
            if b.kind == "attacker":
                norm = float(np.linalg.norm(v))
                reach = fraction * b.radius
                if norm > reach:
                    v *= reach / norm
            z[self.value_slice(b)] = v
        return self.clamp(z)

    def along(self, direction: np.ndarray, fraction: float = 1.0) -> np.ndarray:
        """Every attacker moves by ``fraction`` of its budget along one unit direction
        of the value-system coordinates (length ``n_value``); Sybils stay put."""
        u = np.asarray(direction, float)
        u = u / max(float(np.linalg.norm(u)), 1e-300)
        z = np.zeros(self.dim)
        for b in self.blocks:
            if b.kind == "attacker":
                z[self.value_slice(b)] = fraction * b.radius * u
        return self.clamp(z)


def _reference(bound: float, diameter: float) -> float:
    """γ_ref of a block: the true bound when finite and positive, else the diameter."""
    return float(bound) if math.isfinite(bound) and bound > 0 else float(diameter)
