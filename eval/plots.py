"""Figures of the robustness report, drawn with matplotlib's Agg canvas.

Every function returns a :class:`matplotlib.figure.Figure` bound to a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`; nothing touches pyplot's
global state or the user's backend, so reports can be written from a notebook with
an interactive backend. Figures are drawn under a fixed style (matplotlib's defaults
plus :data:`STYLE`), whatever the user's rcParams, and :func:`save_png` writes PNGs
without the version/software metadata, so the same data give the same bytes.

The functions take tables already aggregated by :mod:`pluralguard.eval.aggregates`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .markdown import budget_text

#: rcParams the report's figures are drawn with (on top of matplotlib's defaults).
STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 10,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.formatter.limits": (-3, 4),
}

#: Resolution of the PNGs (dots per inch).
DPI = 110
#: Widest figure, in inches (≈ 1760 px at :data:`DPI`).
MAX_WIDTH = 16.0

#: Most defenses per panel drawn with min–max bands (error bars beyond).
MAX_BANDS = 4

#: Colour of the undefended mechanism (defense "none") in every figure.
NONE_COLOUR = "black"

_MARKERS = ("s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
_BAD = "#d9d9d9"


@contextmanager
def _style() -> Iterator[None]:
    with mpl.style.context(["default", STYLE]):
        yield


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG with fixed metadata (no software/version stamp).

    Parameters
    ----------
    fig : Figure
        A figure made by this module.
    path : path
        Target file (its directory must exist).

    Returns
    -------
    Path
    """
    path = Path(path)
    with _style():
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def finish_axes(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """The case studies' axes: labels at 11 pt, the title at 12 pt, the legend at 9 pt
    where it fits best, a light grid."""
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.legend(fontsize=9, loc="best")
    ax.grid(alpha=0.3)


def defense_styles(defenses: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Colour and marker of every defense, the same in every figure of a report.

    ``"none"`` (undefended) comes first, black with round markers; the others take
    the ``tab10`` (or ``tab20`` beyond ten) colours in the given order.
    """
    others = [d for d in defenses if d != "none"]
    cmap = mpl.colormaps["tab10" if len(others) <= 10 else "tab20"]
    styles = {"none": {"color": NONE_COLOUR, "marker": "o"}} if "none" in defenses else {}
    styles |= {d: {"color": cmap(i % cmap.N), "marker": _MARKERS[i % len(_MARKERS)]}
               for i, d in enumerate(others)}
    return styles


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="0.4", fontsize=9.5)
    ax.set_axis_off()


def security_curves(data: pd.DataFrame, metrics: Mapping[str, str],
                    styles: Mapping[str, Mapping[str, Any]], title: str) -> Figure:
    """Security curves: one row of panels per attack, one column per metric.

    Parameters
    ----------
    data : DataFrame
        Columns ``attack``, ``defense``, ``budget`` and, for every metric ``c``,
        ``c_mean``, ``c_min``, ``c_max`` (over seeds).
    metrics : mapping
        Metric column → panel label.
    styles : mapping
        :func:`defense_styles`.
    title : str

    Returns
    -------
    Figure
        Lines are seed means, bands span min–max over seeds. Each attack's budgets sit
        at evenly spaced positions; an infinite budget gets the last one, labelled ``∞``,
        behind a dashed separator and joined by a dotted segment. Defenses are dodged
        sideways a little so that identical curves stay visible; with more than
        :data:`MAX_BANDS` defenses the min–max spread is drawn as error bars instead
        of bands, which would hide each other.
    """
    attacks = sorted(data["attack"].unique())
    defenses = [d for d in styles if d in set(data["defense"])]
    with _style():
        fig = _figure(4.1 * len(metrics) + 0.4, 2.5 * len(attacks) + 1.3)
        axes = fig.subplots(len(attacks), len(metrics), squeeze=False)
        for r, attack in enumerate(attacks):
            rows = data[data["attack"] == attack]
            budgets = sorted(rows["budget"].unique())
            pos = {b: i for i, b in enumerate(budgets)}
            for c, (metric, label) in enumerate(metrics.items()):
                ax = axes[r, c]
                ax.set_title(f"{attack} · {label}")
                if rows[f"{metric}_mean"].isna().all():
                    why = "\n(the attack has no target)" if metric == "capture" else ""
                    _no_data(ax, f"{label}: not measured{why}")
                    continue
                _curves(ax, rows, metric, pos, defenses, styles)
                ax.set_xticks(range(len(budgets)), [budget_text(b) for b in budgets])
                ax.set_xlim(-0.5, len(budgets) - 0.5)
                if r == len(attacks) - 1:
                    ax.set_xlabel("budget ε")
        handles = [Line2D([], [], color=styles[d]["color"], marker=styles[d]["marker"],
                          label=d) for d in defenses]
        fig.legend(handles=handles, loc="outside right upper", title="defense",
                   frameon=False)
        fig.suptitle(title)
    return fig


def _curves(ax: Axes, rows: pd.DataFrame, metric: str, pos: Mapping[float, int],
            defenses: Sequence[str], styles: Mapping[str, Mapping[str, Any]]) -> None:
    ax.axhline(0.0, color="0.5", lw=0.8, zorder=1)
    step = min(0.06, 0.5 / len(defenses))
    bands = len(defenses) <= MAX_BANDS
    for i, defense in enumerate(defenses):
        d = rows[rows["defense"] == defense].sort_values("budget")
        d = d[d[f"{metric}_mean"].notna()]
        if d.empty:
            continue
        x = d["budget"].map(pos).to_numpy(dtype=float) + (i - (len(defenses) - 1) / 2) * step
        mean = d[f"{metric}_mean"].to_numpy(dtype=float)
        style = styles[defense]
        lo = d[f"{metric}_min"].to_numpy(dtype=float)
        hi = d[f"{metric}_max"].to_numpy(dtype=float)
        if bands:
            ax.fill_between(x, lo, hi, color=style["color"], alpha=0.13, lw=0, zorder=2)
        else:
            ax.errorbar(x, mean, yerr=(mean - lo, hi - mean), fmt="none",
                        ecolor=style["color"], elinewidth=0.9, alpha=0.7, zorder=2)
        finite = np.isfinite(d["budget"].to_numpy(dtype=float))
        ax.plot(x[finite], mean[finite], color=style["color"], marker=style["marker"],
                ms=5, lw=1.6, zorder=3)
        if not finite.all():
            ax.plot(x[~finite], mean[~finite], color=style["color"],
                    marker=style["marker"], ms=5, lw=0, zorder=3)
            if finite.any():
                ax.plot([x[finite][-1], x[~finite][0]], [mean[finite][-1], mean[~finite][0]],
                        color=style["color"], ls=":", lw=1.4, zorder=3)
    if any(math.isinf(b) for b in pos) and len(pos) > 1:
        ax.axvline(len(pos) - 1.5, color="0.6", ls="--", lw=0.8, zorder=1)


def _scale(values: np.ndarray) -> tuple[float, str]:
    """A power of 10³ that brings the largest |value| into [0.1, 100), and its label."""
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    power = 0
    while 0 < top * 10.0**power < 0.1 and power < 12:
        power += 3
    return 10.0**power, (f" (×10⁻{_superscript(power)})" if power else "")


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def heatmaps(tables: Mapping[str, pd.DataFrame], title: str, label: str) -> Figure:
    """Annotated attack × defense heatmaps, one panel per mechanism, one colour scale.

    Parameters
    ----------
    tables : mapping
        Mechanism → DataFrame indexed by attack, columns the defenses (NaN = not run).
    title : str
    label : str
        Colour-bar label (what the values are).

    Returns
    -------
    Figure
        Sequential colours (white → red) when no value is negative; otherwise a
        diverging scale centred on 0 (blue: honest agents gained). Values are printed
        in every cell, scaled by a power of 10³ stated on the colour bar. Panels sit
        side by side, or stacked when that would be wider than :data:`MAX_WIDTH`.
    """
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
    factor, unit = _scale(values)
    finite = values[np.isfinite(values)] * factor
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if lo < 0:
        bound = max(-lo, hi, 1e-12)
        cmap, norm = mpl.colormaps["RdBu_r"], TwoSlopeNorm(0.0, -bound, bound)
    else:
        cmap, norm = mpl.colormaps["Reds"], Normalize(0.0, max(hi, 1e-12))
    cmap = cmap.with_extremes(bad=_BAD)
    n_att = max(t.shape[0] for t in tables.values())
    n_def = max(t.shape[1] for t in tables.values())
    cell_w, cell_h = 0.78, 0.44
    panel_w, panel_h = n_def * cell_w + 1.9, n_att * cell_h + 2.0
    side = len(tables) * panel_w <= MAX_WIDTH  # else stack the panels
    width = (len(tables) * panel_w if side else panel_w) + 1.2
    height = (panel_h if side else len(tables) * panel_h) + 0.6
    with _style():
        fig = _figure(max(width, 6.0), max(height, 3.2))
        axes = fig.subplots(*((1, len(tables)) if side else (len(tables), 1)),
                            squeeze=False).ravel()
        image = None
        for ax, (mechanism, table) in zip(axes, tables.items(), strict=True):
            grid = table.to_numpy(dtype=float) * factor
            image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm,
                              aspect="auto", interpolation="nearest")
            ax.grid(False)
            ax.set_xticks(range(table.shape[1]), list(table.columns), rotation=35,
                          ha="right", rotation_mode="anchor")
            ax.set_yticks(range(table.shape[0]), list(table.index))
            ax.set_xlabel("defense")
            ax.set_ylabel("attack")
            ax.set_title(mechanism)
            for spine in ax.spines.values():
                spine.set_visible(False)
            for (i, j), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    r, g, b, _ = cmap(norm(v))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=9,
                            color="white" if dark else "black")
                else:
                    ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="0.35")
        bar = fig.colorbar(image, ax=list(axes), shrink=0.9, pad=0.02)
        bar.set_label(label + unit)
        fig.suptitle(title)
    return fig


def defense_bars(rankings: Mapping[str, pd.DataFrame], title: str, loss_label: str) -> Figure:
    """Worst case over attacks beside clean cost, one panel per mechanism.

    Parameters
    ----------
    rankings : mapping
        Mechanism → ranking table (columns ``defense``, ``rank``, ``worst_case_loss``,
        ``clean_cost``) in rank order; drawn best on top.
    title : str
    loss_label : str
        What the worst-case loss is.

    Returns
    -------
    Figure
        Horizontal bars; the dashed line is the undefended worst case.
    """
    n_def = max(len(r) for r in rankings.values())
    with _style():
        fig = _figure(max(5.2 * len(rankings), 6.0), 0.55 * n_def + 2.2)
        axes = fig.subplots(1, len(rankings), squeeze=False)[0]
        for ax, (mechanism, ranking) in zip(axes, rankings.items(), strict=True):
            y = np.arange(len(ranking))
            worst = ranking["worst_case_loss"].to_numpy(dtype=float)
            cost = ranking["clean_cost"].to_numpy(dtype=float)
            for shift, vals, colour, label in ((-0.19, worst, "#c0392b", loss_label),
                                               (0.19, cost, "0.55", "clean cost")):
                bars = ax.barh(y + shift, np.nan_to_num(vals), height=0.38, color=colour,
                               label=label)
                ax.bar_label(bars, labels=[f"{v:.3g}" if np.isfinite(v) else "n/a"
                                           for v in vals], padding=2, fontsize=8)
            ax.set_yticks(y, [f"{int(k)}. {d}" for k, d in
                              zip(ranking["rank"], ranking["defense"], strict=True)])
            ax.invert_yaxis()
            base = ranking.loc[ranking["defense"] == "none", "worst_case_loss"]
            if not base.empty and np.isfinite(base.iloc[0]):
                ax.axvline(float(base.iloc[0]), color=NONE_COLOUR, ls="--", lw=1,
                           label="undefended worst case")
            ax.axvline(0.0, color="0.4", lw=0.8)
            ax.set_xlabel("honest utility loss")
            ax.set_title(mechanism)
            ax.grid(axis="y", visible=False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
        fig.suptitle(title)
    return fig


def mechanism_comparison(pairs: Sequence[tuple[str, str, pd.DataFrame, pd.DataFrame]],
                         title: str, loss_label: str) -> Figure:
    """Agreement solver vs single consensus: one row of two panels per pair.

    Parameters
    ----------
    pairs : sequence of (agreements, consensus, utility, loss)
        ``utility``: index ``mean``, ``p10``, ``min`` (clean honest utility), one
        column per mechanism; ``loss``: index attacks, one column per mechanism
        (worst-case loss).
    title : str
    loss_label : str

    Returns
    -------
    Figure
        Every mechanism keeps one colour across rows (one legend).
    """
    n_att = max(len(p[3]) for p in pairs)
    row_h = max(2.6, 0.5 * n_att + 1.2)
    mechanisms = list(dict.fromkeys(m for p in pairs for m in p[:2]))
    colours = {m: mpl.colormaps["tab10"](i % 10) for i, m in enumerate(mechanisms)}
    with _style():
        fig = _figure(12.0, row_h * len(pairs) + 1.4)
        axes = fig.subplots(len(pairs), 2, squeeze=False,
                            gridspec_kw={"width_ratios": (1, 1.4)})
        for (a_ax, l_ax), (agree, cons, util, loss) in zip(axes, pairs, strict=True):
            for ax, table, xlabel in ((a_ax, util, "honest utility (clean, undefended)"),
                                      (l_ax, loss, loss_label)):
                y = np.arange(len(table))
                for k, mech in enumerate((agree, cons)):
                    vals = table[mech].to_numpy(dtype=float)
                    bars = ax.barh(y + (k - 0.5) * 0.38, np.nan_to_num(vals), height=0.38,
                                   color=colours[mech], label=mech)
                    ax.bar_label(bars, labels=[f"{v:.3g}" if np.isfinite(v) else "n/a"
                                               for v in vals], padding=2, fontsize=8)
                ax.set_yticks(y, list(table.index))
                ax.invert_yaxis()
                ax.set_xlabel(xlabel)
                ax.grid(axis="y", visible=False)
            lo = float(np.nanmin(util.to_numpy(dtype=float))) if util.notna().any().any() \
                else 0.0
            a_ax.set_xlim(max(0.0, lo - 0.05), 1.04)
            a_ax.set_title("clean honest utility")
            l_ax.set_title("worst-case loss per attack")
        handles = [Patch(color=colours[m], label=m) for m in mechanisms]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3),
                   frameon=False)
        fig.suptitle(title)
    return fig
