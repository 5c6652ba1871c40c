"""Case studies: the paper's experiments on real and PVE-shaped data, then their robustness.

For a population, the agreement mechanism runs with everyone's bound set to the Q1,
Q2, Q3 and maximum of the pairwise declared distances (the paper's settings,
Hernández-Sánchez et al. 2026), next to Lera-Leri et al.'s single consensus at
p = 1, 2, ∞ and at the transition p. Reported per setting: the number of groups and
their sizes, the intra-group distance (mean δ between a member and its agreement),
the agents left alone (groups of one), and the distribution of individual utilities
u_i = 1 − δ(agreement, v_i)². Figures: utility densities per setting, groups against
the quantile, and a 2-D PCA embedding of the declared value systems coloured by group
at Q2 with the agreements marked.

Part 2 (:mod:`~pluralguard.eval.casestudy_robustness`) runs the default attack suite
(every registered attack and defense) on the population with bounds at Q2, for the
agreement mechanism and the p = 2 single consensus side by side, and sweeps the attacker
fraction of a capture attack to find the *breakdown fraction*: the smallest share of
agents that drags the target group's agreement at least halfway to a chosen point.
This module holds part 1, the inputs and the document that puts both together.

Everything is deterministic: the same population gives byte-identical markdown and
figures (no timings are written).

It is one piece (a little over 500 lines) because part 1's computation, its three
figures and the document that joins both parts share one :class:`CaseStudy` record and
one output folder layout; part 2 is already its own module.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde
from sklearn.decomposition import PCA

from pluralguard.core.consensus import lp_consensus, transition_p
from pluralguard.core.geometry import normalised_distance, utility
from pluralguard.core.model import Population
from pluralguard.core.params import Boolean, Instance, Integer, OrNone, validate_params
from pluralguard.core.solver import solve_agreements

from .casestudy_robustness import (
    FRACTIONS,
    DatasetEntry,
    Robustness,
    run_robustness,
    write_robustness,
)
from .markdown import fixed, frame_table
from .plots import finish_axes, save_png

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
def plot_utilities(study: CaseStudy, path: Path) -> None:
    """Utility densities per setting, agreements and consensus side by side.

    One logarithmic density axis for both panels: concentrated settings (peaks in the
    hundreds) and spread ones (peaks near ten) stay readable and comparable.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    peak = 0.0
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
            peak = max(peak, float(density.max()))
            ax.plot(grid, density, label=setting.removeprefix(kind + " "), lw=1.8)
        ax.set_title(f"{study.name}: {kind}", fontsize=12)
        ax.set_xlabel("individual utility 1 − δ²", fontsize=11)
        ax.legend(fontsize=9, loc="upper left")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("density (log scale)", fontsize=11)
    axes[0].set_yscale("log")
    axes[0].set_ylim(1e-2, 2.0 * peak if peak > 0 else 10.0)
    save_png(fig, path)


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
    finish_axes(ax, "bound = quantile of pairwise declared distances", "count",
                f"{study.name}: how the threshold fragments the population")
    save_png(fig, path)


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
    finish_axes(ax, f"PC1 ({ev[0]:.0%} of variance)", f"PC2 ({ev[1]:.0%} of variance)",
                f"{study.name}: declared value systems, groups at Q2")
    save_png(fig, path)


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
        frame_table(t[cols], cell=fixed),
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


# --------------------------------------------------------------------- documents
CASE_NAMES = ("evs2017", "pve_like", "ess8")
ESS8_DESCRIPTION = (
    "ESS Round 8 respondents of 23 countries as individual agents, as prepared by "
    "Trevorrow's fork of Lera-Leri et al.'s pipeline: values = shares of two portrait "
    "values (ESS imptrad, ipgdtim), one action (a basic-income scheme, ESS basinc) "
    "judged in [-1, 1]. Adapted from ESS Round 8, edition 2.3 (CC BY-NC-SA 4.0); given "
    "as a file, not shipped with the toolkit.")


def load_case(name: str, ess8: str | Path | None = None) -> tuple[Population, DatasetEntry]:
    """The population of a case and its suite entry (``ess8`` needs the table's path)."""
    from pluralguard.core import datasets
    from pluralguard.core.datasets.lera import read_lera_csv
    from pluralguard.core.errors import InputError

    if name == "ess8":
        if ess8 is None:
            raise InputError("--population", "the ess8 case needs the 39,939-respondent "
                             "ESS-8 table", "pass --population ess8_all_individual_value_"
                             "systems.csv (in ../shared/data/trevorrow_ess8)")
        pop = read_lera_csv(ess8, name="ess8").replace(description=ESS8_DESCRIPTION)
        return pop, {"file": str(Path(ess8).resolve()), "format": "lera", "label": "ess8"}
    if name not in CASE_NAMES:
        raise InputError("case", f"unknown case study {name!r}",
                         f"use one of {', '.join(CASE_NAMES)} or all")
    return datasets.load(name), name


def _claims(studies: list[CaseStudy]) -> list[str]:
    """The paper's qualitative claims, checked against these numbers."""
    out = []
    for s in studies:
        t = s.table.set_index("setting")
        q1, q2 = t.loc["agreements Q1"], t.loc["agreements Q2"]
        c2 = t.loc["consensus p=2"]
        out.append(
            f"* **{s.name}** — Q1 gives {q1['n_groups']} groups and Q2 {q2['n_groups']} "
            f"({'fewer' if q2['n_groups'] < q1['n_groups'] else 'not fewer'} with the "
            f"larger bound, as in the paper); mean utility at Q2 {q2['utility_mean']:.4f} "
            f"against {c2['utility_mean']:.4f} for the ℓ2 consensus "
            f"({'higher' if q2['utility_mean'] > c2['utility_mean'] else 'not higher'}), "
            f"spread (std) {q2['utility_std']:.4f} against {c2['utility_std']:.4f} "
            f"({'more' if q2['utility_std'] < c2['utility_std'] else 'less'} "
            f"concentrated); worst-off agent {q2['utility_min']:.4f} against "
            f"{c2['utility_min']:.4f}.")
    return out


def _power(studies: list[CaseStudy], robs: dict[str, Robustness]) -> list[str]:
    """How much power the threshold setter and a strategic minority hold."""
    out = []
    for s in studies:
        c = s.curve
        t = s.table.set_index("setting")
        means = [t.loc[f"agreements {q}", "utility_mean"] for q in ("Q1", "Q2", "Q3", "max")]
        text = (f"* **{s.name}** — the threshold setter alone takes the population from "
                f"{int(c['n_groups'].max())} groups (bound at the {c['quantile'].min():g} "
                f"quantile) to {int(c['n_groups'].min())} (at the maximum), and the mean "
                f"honest utility from {max(means):.4f} to {min(means):.4f} between Q1 and "
                f"the maximum.")
        rob = robs.get(s.name)
        if rob is not None:
            for _, h in rob.headline.iterrows():
                frac = h["breakdown_fraction"]
                frac_text = (f"{frac:.0%} of the agents capture the largest group"
                             if frac == frac else
                             f"no share up to {max(FRACTIONS):.0%} captures the largest "
                             f"group (best capture {h['max_capture']:.2f})")
                text += (f" Under {h['mechanism']}: the most harmful attack is "
                         f"`{h['worst_attack']}` (worst p90 loss {h['worst_loss_p90']:.4f}); "
                         f"{frac_text}; the best defense is `{h['best_defense']}` (worst "
                         f"case {h['best_defense_worst_case']:.4f} against "
                         f"{h['undefended_worst_case']:.4f} undefended, clean cost "
                         f"{h['best_defense_clean_cost']:.4f}, reshaping the clean "
                         f"partition by {h['best_defense_reshape']:.2f}).")
            shifts = rob.threshold
            if len(shifts):
                text += (" A 5% minority shifting the quantile (threshold_shift) changes "
                         "the number of honest groups by " + ", ".join(
                             f"{int(d):+d} (goal {g}, budget {b:g})" for g, d, b in
                             zip(shifts["goal"], shifts["delta_groups"], shifts["budget"],
                                 strict=True)) + ".")
        out.append(text)
    fenced = [name for name, rob in robs.items()
              if _breakdown(rob, "agreements") != _breakdown(rob, "agreements")
              and _breakdown(rob, "consensus-p2") == _breakdown(rob, "consensus-p2")]
    if fenced:
        out += ["", f"Why capture stays small under the agreement mechanism on "
                f"{', '.join(fenced)}: a group's agreement must lie in every honest "
                "member's acceptable set F_i, so attackers who join the group (as they must "
                "to weigh in) can pull its agreement at most to the edge of the group's "
                "acceptance region, however many they are; the ℓ2 consensus has no such "
                "fence and moves in proportion to the attackers' weight. The agreement "
                "mechanism's exposure lies elsewhere: in who sets the threshold, and in "
                "the most harmful attacks named above, which move honest agents between "
                "groups or drag an agreement within its region rather than capture it."]
    return out


def _breakdown(rob: Robustness, mechanism: str) -> float:
    h = rob.headline[rob.headline["mechanism"] == mechanism]
    return float(h["breakdown_fraction"].iloc[0]) if len(h) else float("nan")


def _tracked(paths: list[Path]) -> list[Path]:
    """Those of ``paths`` that exist and are tracked by git (none when git is missing or
    their directory is not in a repository)."""
    import subprocess

    existing = [p for p in paths if p.is_file()]
    tracked = []
    for parent in sorted({p.parent for p in existing}):
        names = [p.name for p in existing if p.parent == parent]
        try:
            done = subprocess.run(["git", "ls-files", "--", *names], cwd=parent,
                                  capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return []
        listed = set(done.stdout.splitlines()) if done.returncode == 0 else set()
        tracked += [parent / n for n in names if n in listed]
    return tracked


def outputs(names: list[str], out: Path, robustness: bool = True) -> list[Path]:
    """The files ``casestudy`` writes for these cases (the document first)."""
    kinds = ["utilities", "groups", "embedding"] + (["breakdown"] if robustness else [])
    return [out / "case-studies.md"] + [out / "figures" / f"{name}_{kind}.png"
                                        for name in names for kind in kinds]


def check_inputs(names: list[str], out: str | Path, *, ess8: str | Path | None = None,
                 jobs: int | None = None, workdir: str | Path | None = None,
                 robustness: bool = True, force: bool = False
                 ) -> list[tuple[str, Population, DatasetEntry]]:
    """Check every input of :func:`casestudy` before anything is computed, and load
    the cases' populations (``(name, population, suite entry)``).

    Raises
    ------
    InputError
        An unknown case, ``all`` with others, ``ess8`` without a readable table, an
        output or work directory that is a file, or outputs tracked by git that would be
        overwritten without ``force``.
    """
    from pluralguard.core.errors import InputError

    names = list(dict.fromkeys(names))
    if "all" in names and len(names) > 1:
        raise InputError("names", "'all' already names every case", "give 'all' alone")
    if names == ["all"]:
        names = list(CASE_NAMES)
    if not names:
        raise InputError("names", "no case given", f"name {', '.join(CASE_NAMES)} or all")
    for name in names:
        if name not in CASE_NAMES:
            raise InputError("case", f"unknown case study {name!r}",
                             f"use one of {', '.join(CASE_NAMES)} or all")
    for key, directory in (("--out", out), ("--workdir", workdir)):
        if directory is not None and Path(directory).exists() and not Path(
                directory).is_dir():
            raise InputError(key, f"{str(directory)!r} is a file, not a directory",
                             "give a directory")
    out = Path(out)
    if not force:
        tracked = _tracked(outputs(names, out, robustness))
        if tracked:
            raise InputError("--out", f"would overwrite {len(tracked)} files tracked by git "
                             f"({', '.join(str(p) for p in tracked[:3])}"
                             f"{', …' if len(tracked) > 3 else ''})",
                             "write elsewhere (e.g. --out results/casestudy), or pass "
                             "--force to regenerate the committed case studies")
    return [(name, *load_case(name, ess8)) for name in names]


_PATH = Instance((str, os.PathLike), "a path", "'results/casestudy'")


@validate_params({"names": Instance((list, tuple), "a list of case names", "['evs2017']"),
                  "out": _PATH, "ess8": OrNone(_PATH), "robustness": Boolean(),
                  "jobs": OrNone(Integer(1, sample=2)), "workdir": OrNone(_PATH),
                  "force": Boolean()})
def casestudy(names: list[str], out: str | Path, *, ess8: str | Path | None = None,
              robustness: bool = True, jobs: int | None = None,
              workdir: str | Path | None = None, force: bool = False) -> Path:
    """Write ``out/case-studies.md`` and its figures for the named cases (module doc).

    Every input is checked, and every population loaded, before anything is computed
    (:func:`check_inputs`); files tracked by git are overwritten only with ``force``.

    Parameters
    ----------
    names : list of str
        Cases among ``evs2017``, ``pve_like``, ``ess8`` (``all`` for the three).
    out : path
        Output directory (figures in ``out/figures``).
    ess8 : path, optional
        The ESS-8 individual table (39,939 respondents), required for ``ess8``.
    robustness : bool
        Also run part 2 (the default attack suite at Q2 and the breakdown sweep).
    jobs : int, optional
        Worker processes for the suites.
    workdir : path, optional
        Where the suites' result directories go (default: a temporary directory).
    force : bool
        Overwrite outputs tracked by git (the committed case studies).
    """
    import tempfile

    cases = check_inputs(names, out, ess8=ess8, jobs=jobs, workdir=workdir,
                         robustness=robustness, force=force)
    names = [name for name, _, _ in cases]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    studies: list[CaseStudy] = []
    robs: dict[str, Robustness] = {}
    sections: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        for name, pop, entry in cases:
            study = run_casestudy(pop, name)
            studies.append(study)
            sections.append(write_casestudy(study, out))
            if robustness:
                rob = run_robustness(pop, entry, work / name, jobs)
                robs[name] = rob
                sections.append(write_robustness(name, rob, out))
    lines = [
        "# Case studies",
        "",
        "Generated by `pluralguard casestudy " + " ".join(names) + "` (deterministic: "
        "rerunning reproduces this file and its figures byte for byte). The agreement "
        "mechanism (Hernández-Sánchez et al., AAMAS 2026) runs with every agent's bound "
        "at the Q1, Q2, Q3 and maximum of the pairwise declared distances, as in the "
        "paper, next to Lera-Leri et al.'s single consensus at p = 1, 2, ∞ and at the "
        "transition p. `pve_like` is SYNTHETIC (the Súdwest-Fryslân PVE data is not "
        "public): only its shape matches, so the paper's group counts (45 at Q1, 8 at Q2) "
        "are not expected, only the direction. Utilities are u_i = 1 − δ(agreement, v_i)²; "
        "*intra_distance* is the mean δ between an agent and its agreement; *alone* counts "
        "groups of one.",
        "",
        "## What the paper claims, and what these populations show",
        "",
        *_claims(studies),
        "",
        "## How much power the threshold setter and a strategic minority hold",
        "",
        *_power(studies, robs),
        "",
        *sections,
    ]
    path = out / "case-studies.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
