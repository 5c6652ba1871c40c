"""Case studies: the paper's experiments on real and PVE-shaped data (issue 7, part 1).

For a population, the agreement mechanism runs with everyone's bound set to the Q1,
Q2, Q3 and maximum of the pairwise declared distances (the paper's settings,
Hernández-Sánchez et al. 2026), next to Lera-Leri et al.'s single consensus at
p = 1, 2, ∞ and at the transition p. Reported per setting: the number of groups and
their sizes, the intra-group distance (mean δ between a member and its agreement),
the agents left alone (groups of one), and the distribution of individual utilities
u_i = 1 − δ(agreement, v_i)². Figures: utility densities per setting, groups against
the quantile, and a 2-D PCA embedding of the declared value systems coloured by group
at Q2 with the agreements marked.

Everything is deterministic: the same population gives byte-identical markdown and
figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde
from sklearn.decomposition import PCA

from pluralguard.core.consensus import lp_consensus, transition_p
from pluralguard.core.geometry import normalised_distance, utility
from pluralguard.core.model import Population
from pluralguard.core.solver import solve_agreements

QUANTILES = (0.25, 0.5, 0.75, 1.0)
#: Quantile grid of the groups-vs-quantile curve.
CURVE = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2))
_Q_NAMES = {0.25: "Q1", 0.5: "Q2", 0.75: "Q3", 1.0: "max"}


@dataclass
class CaseStudy:
    """Numbers of one case study.

    Attributes
    ----------
    name : str
    population : Population
    table : pandas.DataFrame
        One row per setting (agreements at Q1–max, consensus at p = 1, 2, ∞ and the
        transition p).
    utilities : dict
        Setting → per-agent utilities.
    curve : pandas.DataFrame
        Groups and agents left alone against the quantile level.
    embedding : dict
        PCA coordinates of agents and of the Q2 agreements, and the Q2 labels.
    transition : dict
        Transition p per target (``X``, ``W``).
    """

    name: str
    population: Population
    table: pd.DataFrame
    utilities: dict[str, np.ndarray]
    curve: pd.DataFrame
    embedding: dict[str, np.ndarray]
    transition: dict[str, float] = field(default_factory=dict)


def _utilities_row(setting: str, kind: str, u: np.ndarray) -> dict[str, float | str]:
    return {"setting": setting, "mechanism": kind, "utility_mean": float(u.mean()),
            "utility_p10": float(np.percentile(u, 10)), "utility_median": float(np.median(u)),
            "utility_min": float(u.min()), "utility_std": float(u.std())}


def run_casestudy(population: Population, name: str | None = None) -> CaseStudy:
    """Compute a case study's numbers (module doc)."""
    pop = population
    name = name or pop.name
    rows: list[dict] = []
    utilities: dict[str, np.ndarray] = {}
    q2 = None
    for q in QUANTILES:
        res = solve_agreements(pop, f"quantile:{q}")
        setting = f"agreements {_Q_NAMES[q]}"
        u = res.utilities
        sizes = res.group_sizes
        intra = normalised_distance(res.agent_X, res.agent_W, pop.X, pop.W)
        row = _utilities_row(setting, "agreements", u)
        row |= {"bound_x": float(res.gamma_x[0]), "bound_w": float(res.gamma_w[0]),
                "n_groups": res.n_groups, "largest_group": int(sizes.max()),
                "median_group": float(np.median(sizes)), "alone": int((sizes == 1).sum()),
                "intra_distance": float(intra.mean()), "converged": bool(res.converged)}
        rows.append(row)
        utilities[setting] = u
        if q == 0.5:
            q2 = res
    transition = {t: transition_p(pop, t) for t in ("X", "W")}
    for p in (1.0, 2.0, math.inf, "transition"):
        if p == "transition":
            X = lp_consensus(pop, transition["X"]).X[0]
            W = lp_consensus(pop, transition["W"]).W[0]
            setting = f"consensus p=t (X {transition['X']:g}, W {transition['W']:g})"
        else:
            c = lp_consensus(pop, p)
            X, W = c.X[0], c.W[0]
            setting = f"consensus p={'∞' if math.isinf(p) else f'{p:g}'}"
        u = utility(X, W, pop.X, pop.W)
        intra = normalised_distance(X, W, pop.X, pop.W)
        row = _utilities_row(setting, "consensus", u)
        row |= {"n_groups": 1, "largest_group": pop.n, "median_group": float(pop.n),
                "alone": 0, "intra_distance": float(intra.mean()), "converged": True}
        rows.append(row)
        utilities[setting] = u
    curve = []
    for q in CURVE:
        res = solve_agreements(pop, f"quantile:{q}")
        curve.append({"quantile": float(q), "n_groups": res.n_groups,
                      "alone": int((res.group_sizes == 1).sum()),
                      "utility_mean": float(res.utilities.mean())})
    flat = pop.flat()
    pca = PCA(n_components=2, svd_solver="full", random_state=0).fit(flat)
    agreements = np.concatenate([q2.X.reshape(q2.n_groups, -1), q2.W], axis=1)
    embedding = {"agents": pca.transform(flat), "agreements": pca.transform(agreements),
                 "labels": q2.labels, "sizes": q2.group_sizes,
                 "explained": pca.explained_variance_ratio_}
    return CaseStudy(name=name, population=pop, table=pd.DataFrame(rows),
                     utilities=utilities, curve=pd.DataFrame(curve), embedding=embedding,
                     transition=transition)


# --------------------------------------------------------------------- figures
def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, metadata={"Software": None})


def plot_utilities(study: CaseStudy, path: Path) -> None:
    """Utility densities per setting, agreements and consensus side by side."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=False)
    lo = min(float(u.min()) for u in study.utilities.values())
    grid = np.linspace(max(0.0, lo - 0.02), 1.0, 400)
    for ax, kind in zip(axes, ("agreements", "consensus"), strict=True):
        for setting, u in study.utilities.items():
            if not setting.startswith(kind):
                continue
            if np.ptp(u) < 1e-9:
                ax.axvline(float(u[0]), label=setting.removeprefix(kind + " "))
                continue
            density = gaussian_kde(u, bw_method="scott")(grid)
            ax.plot(grid, density, label=setting.removeprefix(kind + " "), lw=1.8)
        ax.set_title(f"{study.name}: {kind}", fontsize=12)
        ax.set_xlabel("individual utility 1 − δ²", fontsize=11)
        ax.set_ylabel("density", fontsize=11)
        ax.legend(fontsize=9, loc="upper left")
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_groups(study: CaseStudy, path: Path) -> None:
    """Number of groups and agents left alone against the quantile level."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    c = study.curve
    ax.plot(c["quantile"], c["n_groups"], marker="o", label="groups")
    ax.plot(c["quantile"], c["alone"], marker="s", label="agents left alone")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    for q, label in _Q_NAMES.items():
        ax.axvline(q, color="grey", lw=0.8, ls=":")
        ax.text(q, 0.97, label, ha="right", va="top", fontsize=9,
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("bound = quantile of pairwise declared distances", fontsize=11)
    ax.set_ylabel("count", fontsize=11)
    ax.set_title(f"{study.name}: how the threshold fragments the population", fontsize=12)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_embedding(study: CaseStudy, path: Path) -> None:
    """PCA of declared value systems, coloured by Q2 group, agreements marked."""
    e = study.embedding
    fig = Figure(figsize=(6.5, 5.2), layout="constrained")
    ax = fig.subplots()
    labels, sizes = e["labels"], e["sizes"]
    big = np.argsort(-sizes, kind="stable")[:10]
    big = big[sizes[big] > 1]
    colour = np.full(labels.size, -1)
    for rank, g in enumerate(big):
        colour[labels == g] = rank
    pts = e["agents"]
    # identical declarations overlap; draw each distinct point once, sized by count
    uniq, inverse, counts = np.unique(np.round(pts, 9), axis=0, return_inverse=True,
                                      return_counts=True)
    first = np.zeros(uniq.shape[0], dtype=int)
    first[inverse.ravel()[::-1]] = np.arange(inverse.size)[::-1]
    palette = colormaps["tab10"]
    colours = [palette(c) if c >= 0 else (0.7, 0.7, 0.7, 0.6) for c in colour[first]]
    ax.scatter(uniq[:, 0], uniq[:, 1], s=8 + 40 * np.sqrt(counts / counts.max()),
               c=colours, linewidths=0)
    A = e["agreements"][big]
    ax.scatter(A[:, 0], A[:, 1], marker="X", s=140, c=[palette(r) for r in range(big.size)],
               edgecolors="black", linewidths=1.2,
               label="agreement of a group (10 largest; grey: smaller groups)")
    ev = e["explained"]
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)", fontsize=11)
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)", fontsize=11)
    ax.set_title(f"{study.name}: declared value systems, groups at Q2", fontsize=12)
    ax.legend(fontsize=9, loc="best")
    ax.grid(alpha=0.3)
    _save(fig, path)


# -------------------------------------------------------------------- markdown
def _fmt(v: object) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for _, r in df.iterrows()]
    return "\n".join([head, sep, *body])


def write_casestudy(study: CaseStudy, out_dir: Path, figures: str = "figures") -> str:
    """Figures into ``out_dir/figures`` and the markdown section of one case (returned)."""
    fig_dir = out_dir / figures
    fig_dir.mkdir(parents=True, exist_ok=True)
    stem = study.name.replace(" ", "_")
    plot_utilities(study, fig_dir / f"{stem}_utilities.png")
    plot_groups(study, fig_dir / f"{stem}_groups.png")
    plot_embedding(study, fig_dir / f"{stem}_embedding.png")
    t = study.table
    pop = study.population
    cols = ["setting", "n_groups", "largest_group", "alone", "intra_distance", "utility_mean",
            "utility_p10", "utility_min", "utility_std"]
    lines = [
        f"## {study.name}",
        "",
        f"{pop.n} agents, {pop.k} alternatives × {pop.m} values. {pop.description}",
        "",
        _table(t, cols),
        "",
        f"Transition p (Lera-Leri et al.): X {study.transition['X']:g}, "
        f"W {study.transition['W']:g}.",
        "",
        f"![utilities]({figures}/{stem}_utilities.png)",
        f"![groups]({figures}/{stem}_groups.png)",
        f"![embedding]({figures}/{stem}_embedding.png)",
        "",
    ]
    return "\n".join(lines)
