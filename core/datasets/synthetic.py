"""Seeded synthetic populations: ``pve_like``, ``blobs`` and ``polarized``.

Every generator draws from one ``numpy.random.default_rng(seed)`` stream in a fixed
order, so the same arguments give bit-identical populations on any machine with the
same numpy. Agent names encode the generating group (``c<j>-<i>`` for cluster j,
``out-<i>`` for outliers, ``b<j>-<i>`` for blob j, ``A-<i>``/``B-<i>``/``M-<i>`` for the
camps and moderates of :func:`polarized`), so that recovered groups can be compared
with the ground truth; agents are listed in a random order.

Judgements are kept in [−1, 1] and weights on the simplex Δ^m by construction:
``pve_like`` draws judgements in an unbounded latent space and maps them through tanh,
and weights from Dirichlet distributions; ``blobs`` and ``polarized`` add Gaussian
noise and project back (clipping X to [−1, 1], Euclidean projection of W onto Δ^m,
which sets some weights exactly to 0 when the noise is large).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from ..errors import InputError
from ..geometry import project_simplex
from ..model import Population

# ----------------------------------------------------------------------------- pve_like
#: Values of the PVE-shaped population (illustrative labels, see :func:`pve_like`).
PVE_VALUES = ("sustainability", "affordability", "local_autonomy", "landscape", "fairness")
#: Options (alternatives) of the PVE-shaped population (illustrative labels).
PVE_OPTIONS = ("solar_fields", "wind_turbines", "rooftop_solar", "energy_saving",
               "local_cooperatives", "heat_networks")
#: Shared "typical" judgement of each option (rows) on each value (columns) around
#: which the clusters' interpretations vary; hand-set to make the labels plausible.
PVE_BASE = np.array([
    [0.7, 0.3, -0.2, -0.6, -0.1],   # solar fields: clean, cheap, but outside owners, land use
    [0.8, 0.4, -0.3, -0.8, -0.2],   # wind turbines: clean, cheap, visible, unevenly shared
    [0.6, -0.1, 0.5, 0.4, -0.3],    # rooftop solar: home-owners benefit most
    [0.7, 0.5, 0.3, 0.5, 0.2],      # energy saving: insulation, lower bills
    [0.4, 0.0, 0.8, 0.1, 0.6],      # local energy cooperatives: ownership stays local
    [0.5, -0.3, -0.1, 0.2, 0.3],    # heat networks: costly, collective
])
#: Number of opinion clusters: drawn uniformly from this inclusive range.
PVE_CLUSTERS = (6, 8)
#: Share of outliers (uniform value systems, not in any cluster).
PVE_OUTLIER_SHARE = 0.02
#: Dirichlet concentration of the cluster shares (1 = uniform on the simplex;
#: small values give very unequal cluster sizes).
PVE_SIZE_CONCENTRATION = 1.5
#: Every cluster has at least this many members.
PVE_MIN_CLUSTER = 3
#: Latent standard deviation of a cluster's centre around atanh(PVE_BASE).
PVE_CENTRE_SCALE = 0.7
#: Latent within-cluster standard deviation, from the tightest to the most diffuse cluster.
PVE_SPREAD_RANGE = (0.08, 0.7)
#: Dirichlet concentration of W within a cluster, tightest to most diffuse.
PVE_CONCENTRATION_RANGE = (300.0, 8.0)
#: A cluster's typical concession, as a fraction of the median pairwise distance.
PVE_CONCESSION_RANGE = (0.3, 1.0)
#: Outliers' individual concession range (same unit).
PVE_OUTLIER_CONCESSION_RANGE = (0.1, 1.0)
#: Log-normal standard deviation of individual variation around the cluster's concession.
PVE_CONCESSION_JITTER = 0.3
#: The median pairwise distances are measured on at most this many agents.
PVE_MEDIAN_SAMPLE = 1000
#: Smallest n for which every cluster can have PVE_MIN_CLUSTER members.
PVE_MIN_N = 30

PVE_DESCRIPTION = (
    "SYNTHETIC population with the shape of the Súdwest-Fryslân Participatory Value "
    "Evaluation (876 participants, 5 values, 6 energy options; the real data is not "
    "public). Only the shape matches the PVE case: value systems, cluster structure, "
    "bounds and the value/option labels are invented for testing. {C} opinion clusters "
    "(sizes {sizes}) with tight to diffuse spreads plus {outliers} outliers; seed {seed}."
)


#: Largest population a generator builds, in stored numbers n·(k·m + m) (~400 MB of
#: float64 per copy): beyond it, say so instead of running out of memory.
MAX_ENTRIES = 50_000_000


def _check_size(n: int, k: int, m: int) -> None:
    entries = n * (k * m + m)
    if entries > MAX_ENTRIES:
        raise InputError("n", f"{n} agents × {k * m + m} numbers each would need "
                         f"{entries * 8 / 2**30:.1f} GiB per copy (more than "
                         f"{MAX_ENTRIES:,} numbers)", "generate fewer agents, alternatives "
                         "or values")


def _int_param(name: str, value: Any, minimum: int) -> int:
    fix = f"pass an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(name, f"expected an integer, got {value!r}", fix)
    if value < minimum:
        raise InputError(name, f"is {value}, below the minimum {minimum}", fix)
    return int(value)


def _float_param(name: str, value: Any, low: float, high: float = math.inf, *,
                 high_open: bool = False, allow_inf: bool = False) -> float:
    close = ")" if high_open or (high == math.inf and not allow_inf) else "]"
    fix = f"pass a number in [{low:g}, {high:g}{close}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(name, f"expected a number, got {value!r}", fix)
    x = float(value)
    if (math.isnan(x) or x < low or x > high or (high_open and x == high)
            or (math.isinf(x) and not allow_inf)):
        raise InputError(name, f"is {x:g}, outside the allowed range", fix)
    return x


def _bound_factor(value: Any) -> float | None:
    """The ``bounds`` factor: ≥ 0, ``inf`` meaning no limit, None for no bounds."""
    return None if value is None else _float_param("bounds", value, 0.0, allow_inf=True)


def _median_distances(X: np.ndarray, W: np.ndarray) -> tuple[float, float]:
    """Median pairwise ‖X_i − X_j‖_F and ‖W_i − W_j‖₂ among the first PVE_MEDIAN_SAMPLE rows.

    The rows are in random order, so for large n this is a random subsample (exact for
    n ≤ PVE_MEDIAN_SAMPLE) and the cost stays bounded.
    """
    s = min(X.shape[0], PVE_MEDIAN_SAMPLE)
    return (float(np.median(pdist(X[:s].reshape(s, -1)))), float(np.median(pdist(W[:s]))))


def pve_like(n: int = 876, seed: int = 0) -> Population:
    """A SYNTHETIC population shaped like the Súdwest-Fryslân PVE (876 × 6 options × 5 values).

    The Participatory Value Evaluation on the energy transition of the Dutch
    municipality Súdwest-Fryslân (the case of Hernández-Sánchez et al., AAMAS 2026)
    has 876 participants, 5 values and 6 options, but its data is not public. This
    generator reproduces only that *shape*, with heterogeneous opinion clusters, so
    that mechanisms and attacks can be exercised at the right size. Nothing in it is
    an empirical finding; the value and option labels are illustrative.

    Generative model (all draws from ``default_rng(seed)``):

    1. C ~ Uniform{6, 7, 8} clusters; ⌊0.02·n⌉ outliers; cluster shares
       p ~ Dirichlet(1.5·1_C) and sizes 3 + Multinomial(n − outliers − 3C, p), so
       cluster sizes are unequal (a few large, some small).
    2. Cohesion: the clusters get, in random order, the C points t_c of an even grid
       on [0, 1]; t = 0 is the tightest cluster, t = 1 the most diffuse. Latent spread
       s_c = 0.08·(0.7/0.08)^t_c and W concentration κ_c = 300·(8/300)^t_c (log-spaced).
    3. Judgements: the clusters share a typical interpretation ``PVE_BASE`` (how each
       option serves each value) and deviate from it in a latent space:
       Z_c = atanh(PVE_BASE) + 0.7·N(0, 1)^{6×5}; member i has
       X_i = tanh(Z_c + s_c·N(0, 1)^{6×5}) ∈ [−1, 1] (a bounded transform, no clipping).
    4. Weights: cluster mean μ_c ~ Dirichlet(1_5); member i has W_i ~ Dirichlet(κ_c μ_c)
       (E W_i = μ_c, variance shrinking with κ_c).
    5. Outliers: X_i ~ Uniform[−1, 1]^{6×5}, W_i ~ Dirichlet(1_5).
    6. Declared bounds, relative to the median pairwise distances d̃_X, d̃_W of the
       population: cluster c concedes u_c ~ Uniform[0.3, 1.0], outliers
       u_i ~ Uniform[0.1, 1.0] each, and agent i declares γᵢˣ = u·d̃_X·e^{0.3 ε}, γᵢʷ =
       u·d̃_W·e^{0.3 ε'} (ε, ε' ~ N(0, 1)). A typical agent thus concedes about two
       thirds of the median distance: at the default size and seed the median agent
       accepts 12% of the others and 97% of its own cluster, while members of diffuse
       clusters may accept nobody; bounds differ within a cluster.

    Parameters
    ----------
    n : int
        Number of agents (at least 30); 876 as in the PVE.
    seed : int
        Seed of the generator (non-negative).

    Returns
    -------
    Population
        ``name="pve_like"``, k = 6 options, m = 5 values, declared bounds, no weights.
        Agent names are ``c<cluster>-<i>`` and ``out-<i>``.
    """
    n = _int_param("n", n, PVE_MIN_N)
    seed = _int_param("seed", seed, 0)
    k, m = PVE_BASE.shape
    _check_size(n, k, m)
    rng = np.random.default_rng(seed)
    C = int(rng.integers(PVE_CLUSTERS[0], PVE_CLUSTERS[1] + 1))
    n_out = round(PVE_OUTLIER_SHARE * n)
    shares = rng.dirichlet(np.full(C, PVE_SIZE_CONCENTRATION))
    sizes = PVE_MIN_CLUSTER + rng.multinomial(n - n_out - PVE_MIN_CLUSTER * C, shares)

    t = rng.permutation(np.linspace(0.0, 1.0, C))
    (s_lo, s_hi), (k_lo, k_hi) = PVE_SPREAD_RANGE, PVE_CONCENTRATION_RANGE
    spread = s_lo * (s_hi / s_lo) ** t
    kappa = k_lo * (k_hi / k_lo) ** t
    Z = np.arctanh(PVE_BASE) + PVE_CENTRE_SCALE * rng.standard_normal((C, k, m))
    mu = rng.dirichlet(np.ones(m), size=C)

    Xs, Ws, names = [], [], []
    for c in range(C):
        size = int(sizes[c])
        Xs.append(np.tanh(Z[c] + spread[c] * rng.standard_normal((size, k, m))))
        Ws.append(rng.dirichlet(kappa[c] * mu[c], size=size))
        names += [f"c{c}-{i}" for i in range(size)]
    Xs.append(rng.uniform(-1.0, 1.0, (n_out, k, m)))
    Ws.append(rng.dirichlet(np.ones(m), size=n_out))
    names += [f"out-{i}" for i in range(n_out)]
    group = np.repeat(np.arange(C + 1), np.append(sizes, n_out))

    order = rng.permutation(n)
    X, W = np.concatenate(Xs)[order], np.concatenate(Ws)[order]
    W /= W.sum(axis=1, keepdims=True)
    group, agents = group[order], [names[i] for i in order]

    d_x, d_w = _median_distances(X, W)
    u_cluster = rng.uniform(*PVE_CONCESSION_RANGE, size=C)
    u = np.append(u_cluster, 0.0)[group]
    is_out = group == C
    u[is_out] = rng.uniform(*PVE_OUTLIER_CONCESSION_RANGE, size=int(is_out.sum()))
    jitter = np.exp(PVE_CONCESSION_JITTER * rng.standard_normal((2, n)))
    description = PVE_DESCRIPTION.format(C=C, sizes=", ".join(map(str, sorted(sizes)[::-1])),
                                         outliers=n_out, seed=seed)
    return Population(X=X, W=W, gamma_x=u * d_x * jitter[0], gamma_w=u * d_w * jitter[1],
                      agents=agents, values=PVE_VALUES, alternatives=PVE_OPTIONS,
                      name="pve_like", description=description)


# ------------------------------------------------------------------- blobs, polarized
def _scatter(rng: np.random.Generator, X_centres: np.ndarray, W_centres: np.ndarray,
             group: np.ndarray, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of each agent's group plus N(0, spread²) noise, projected back."""
    n, (k, m) = group.size, X_centres.shape[1:]
    X = np.clip(X_centres[group] + spread * rng.standard_normal((n, k, m)), -1.0, 1.0)
    W = project_simplex(W_centres[group] + spread * rng.standard_normal((n, m)))
    return X, W / W.sum(axis=1, keepdims=True)


def _group_names(group: np.ndarray, prefixes: list[str]) -> list[str]:
    """Names ``<prefix of the group>-<i>``, i counting the group's members in order."""
    counters = [0] * len(prefixes)
    names = []
    for g in group:
        names.append(f"{prefixes[g]}-{counters[g]}")
        counters[g] += 1
    return names


def _typical_bounds(factor: float | None, spread: float, n: int, k: int, m: int
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Bounds = factor × the RMS distance of two members of one group before projection.

    Two independent N(c, σ²I_d) points are σ√(2d) apart in root mean square; X has
    d = km coordinates, and W's noise moves it within the (m − 1)-dimensional simplex.
    """
    if factor is None:
        return None, None
    gx = factor * spread * math.sqrt(2 * k * m)
    gw = factor * spread * math.sqrt(2 * (m - 1))
    return np.full(n, gx), np.full(n, gw)


def blobs(n: int = 300, k: int = 3, m: int = 3, centers: int = 4, spread: float = 0.15,
          seed: int = 0, bounds: float | None = 1.0) -> Population:
    """Isotropic Gaussian blobs of value systems (a value-system ``make_blobs``).

    ``centers`` groups of (almost) equal size, as in scikit-learn's ``make_blobs``:
    group j has centre X_j ~ Uniform[−1, 1]^{k×m}, W_j ~ Dirichlet(1_m); member i has
    X_i = clip(X_j + spread·N(0, 1), −1, 1) and W_i = Π_Δ(W_j + spread·N(0, 1)).

    Parameters
    ----------
    n, k, m : int
        Agents, alternatives, values.
    centers : int
        Number of blobs (1 ≤ centers ≤ n); sizes differ by at most one.
    spread : float
        Standard deviation of the noise per coordinate (≥ 0).
    seed : int
        Seed of the generator (non-negative).
    bounds : float or None
        Declared bounds as a multiple of the typical within-blob distance:
        γˣ = bounds·spread·√(2km), γʷ = bounds·spread·√(2(m − 1)) for every agent (the
        root-mean-square distance of two members before clipping/projection). ``None``
        declares no bounds (use a ``quantile:q`` or ``fixed`` bound policy).

    Returns
    -------
    Population
        ``name="blobs"``; agents ``b<j>-<i>``, values ``value0…``, alternatives ``alt0…``.
    """
    n = _int_param("n", n, 1)
    k, m = _int_param("k", k, 1), _int_param("m", m, 1)
    centers = _int_param("centers", centers, 1)
    if centers > n:
        raise InputError("centers", f"is {centers}, more than the {n} agents",
                         "use at most one blob per agent")
    _check_size(n, k, m)
    spread = _float_param("spread", spread, 0.0)
    seed = _int_param("seed", seed, 0)
    factor = _bound_factor(bounds)
    rng = np.random.default_rng(seed)
    X_centres = rng.uniform(-1.0, 1.0, (centers, k, m))
    W_centres = rng.dirichlet(np.ones(m), size=centers)
    group = rng.permutation(np.arange(n) % centers)
    X, W = _scatter(rng, X_centres, W_centres, group, spread)
    agents = _group_names(group, [f"b{j}" for j in range(centers)])
    gx, gw = _typical_bounds(factor, spread, n, k, m)
    return Population(X=X, W=W, gamma_x=gx, gamma_w=gw, agents=agents, name="blobs",
                      description=f"synthetic: {centers} Gaussian blobs of value systems, "
                      f"spread {spread:g}, seed {seed}")


def polarized(n: int = 300, k: int = 3, m: int = 3, separation: float = 0.8,
              moderates: float = 0.2, spread: float = 0.1, seed: int = 0,
              bounds: float | None = 1.0) -> Population:
    """Two opposed camps and a moderate minority between them.

    The idea: a polarised society where two camps judge every alternative in opposite
    ways and stress opposite values, while a moderate minority sits halfway. With a
    random sign pattern S ∈ {−1, 1}^{k×m}, camp A is centred at X_A = separation·S,
    camp B at X_B = −separation·S and the moderates at X_M = 0, so
    ‖X_A − X_B‖_F = separation·D_X (D_X = 2√(km), the diameter of [−1, 1]^{k×m}).
    In W, the camps sit at W_A/B = 1/m ± separation·t·d along a random direction d in
    the simplex's plane (Σd = 0), t the largest step keeping both on Δ^m; the moderates
    are at the uniform weights 1/m. Members scatter around their centre as in
    :func:`blobs`.

    Parameters
    ----------
    n, k : int
        Agents, alternatives.
    m : int
        Values (at least 2, so that the camps can stress different values).
    separation : float
        In [0, 1]: 0 puts both camps at the centre, 1 on opposite corners of the cube
        and opposite faces of the simplex.
    moderates : float
        Share of moderates in [0, 1); the rest is split evenly between the camps (A
        gets the extra agent when odd).
    spread : float
        Noise standard deviation per coordinate (≥ 0).
    seed : int
        Seed of the generator (non-negative).
    bounds : float or None
        Declared bounds as a multiple of the typical within-camp distance, as in
        :func:`blobs`; ``None`` declares none.

    Returns
    -------
    Population
        ``name="polarized"``; agents ``A-<i>``, ``B-<i>``, ``M-<i>``.
    """
    n = _int_param("n", n, 2)
    k, m = _int_param("k", k, 1), _int_param("m", m, 2)
    _check_size(n, k, m)
    separation = _float_param("separation", separation, 0.0, 1.0)
    moderates = _float_param("moderates", moderates, 0.0, 1.0, high_open=True)
    spread = _float_param("spread", spread, 0.0)
    seed = _int_param("seed", seed, 0)
    factor = _bound_factor(bounds)
    rng = np.random.default_rng(seed)
    S = rng.choice([-1.0, 1.0], size=(k, m))
    d = rng.standard_normal(m)
    d -= d.mean()
    step = separation * (1.0 / m) / np.abs(d).max()
    X_centres = np.stack([separation * S, -separation * S, np.zeros((k, m))])
    W_centres = np.stack([1.0 / m + step * d, 1.0 / m - step * d, np.full(m, 1.0 / m)])
    n_mod = round(moderates * n)
    n_b = (n - n_mod) // 2
    sizes = np.array([n - n_mod - n_b, n_b, n_mod])
    group = rng.permutation(np.repeat(np.arange(3), sizes))
    X, W = _scatter(rng, X_centres, W_centres, group, spread)
    agents = _group_names(group, ["A", "B", "M"])
    gx, gw = _typical_bounds(factor, spread, n, k, m)
    return Population(X=X, W=W, gamma_x=gx, gamma_w=gw, agents=agents, name="polarized",
                      description=f"synthetic: two opposed camps of {sizes[0]} and "
                      f"{sizes[1]} agents plus {n_mod} moderates, separation "
                      f"{separation:g}, spread {spread:g}, seed {seed}")
