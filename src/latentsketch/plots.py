"""Figures shared by the study stages: drawing grids, Fig. 2, map overlays, Fig. 4b.

Each function returns a matplotlib Figure; save it with `io.save_figure`, which
writes atomically and closes it. Drawings are shown as the paper shows them,
dark ink on white.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # stages run headless; never try to open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from latentsketch.grid import HUMAN, NONE, PIXEL  # noqa: E402

# Stable colors per regularizer, so a family looks the same in every figure.
FAMILY_COLORS = {"kl": "tab:blue", "vq": "tab:orange", "classif": "tab:green",
                 "proto": "tab:red", "simclr": "tab:purple", "barlow": "tab:brown"}
EXTRA_COLORS = ("tab:pink", "tab:olive", "tab:cyan", "tab:gray")
# Fig. 2's three panels; mixes and unknown families get a fourth.
PANELS = (("standard", ("kl", "vq")), ("supervised", ("classif", "proto")),
          ("contrastive", ("simclr", "barlow")))
FAMILY_LABELS = {"kl": "KL", "vq": "VQ", "classif": "Classif.", "proto": "Proto.",
                 "simclr": "SimCLR", "barlow": "Barlow", NONE: "No reg.",
                 PIXEL: "Pixel", HUMAN: "Human"}


def family_label(family: str) -> str:
    return "+".join(FAMILY_LABELS.get(part, part) for part in family.split("+"))


def family_color(family: str, families: Sequence[str] = ()) -> str:
    if family in FAMILY_COLORS:
        return FAMILY_COLORS[family]
    extras = sorted(f for f in families if f not in FAMILY_COLORS)
    index = extras.index(family) if family in extras else 0
    return EXTRA_COLORS[index % len(EXTRA_COLORS)]


# --- grids of drawings ----------------------------------------------------------------

def drawing_grid(rows: Sequence[np.ndarray], row_labels: Sequence[str] | None = None,
                 column_labels: Sequence[str] | None = None, title: str | None = None,
                 cell_inches: float = 0.7):
    """A grid of 48×48 uint8 drawings (ink high), one array of drawings per row.

    Rows may hold different numbers of drawings; missing cells stay blank.
    """
    n_rows, n_columns = len(rows), max((len(row) for row in rows), default=1)
    figure, axes = plt.subplots(n_rows, n_columns, squeeze=False,
                                figsize=(cell_inches * n_columns + 1.2,
                                         cell_inches * n_rows + 0.4))
    for r, drawings in enumerate(rows):
        for c in range(n_columns):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(drawings):
                ax.imshow(255 - np.asarray(drawings[c]), cmap="gray", vmin=0, vmax=255)
            else:
                ax.axis("off")
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center",
                                  fontsize=8)
    for ax, label in zip(axes[0], column_labels or []):
        ax.set_title(label, fontsize=6)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(wspace=0.05, hspace=0.05)
    return figure


# --- Fig. 2 -------------------------------------------------------------------------

def _panels(families: Sequence[str]) -> list[tuple[str, list[str]]]:
    panels = [(name, [f for f in members if f in families]) for name, members in PANELS]
    known = {f for _, members in PANELS for f in members}
    others = sorted(f for f in families if f not in known)
    panels = [(name, members) for name, members in panels if members]
    if others:
        panels.append(("combined" if any("+" in f for f in others) else "other", others))
    return panels or [("baselines", [])]


def _draw_fit(ax, fit, color: str) -> None:
    """The fitted curve, with a chevron at its middle pointing to increasing β."""
    _, originality, recognizability = fit.curve()
    ax.plot(originality, recognizability, color=color, linewidth=1.5, alpha=0.8)
    middle = len(originality) // 2
    ax.annotate("", xy=(originality[middle + 1], recognizability[middle + 1]),
                xytext=(originality[middle - 1], recognizability[middle - 1]),
                arrowprops=dict(arrowstyle="-|>,head_width=0.35,head_length=0.7",
                                color=color, linewidth=1.5))


def _draw_reference_points(ax, table: pd.DataFrame) -> None:
    """Human star, no-regularization hexagon and pixel-space cross."""
    styles = {HUMAN: dict(marker="*", color="grey", s=320, zorder=5),
              NONE: dict(marker="h", color="black", s=80, zorder=4),
              PIXEL: dict(marker="X", color="black", s=80, zorder=4)}
    for family, style in styles.items():
        rows = table[table["family"] == family]
        if len(rows):
            ax.scatter(rows["originality_norm"], rows["recognizability"],
                       label=family_label(family), edgecolors="white", linewidths=0.5,
                       **style)


def fig2_figure(table: pd.DataFrame, fits: dict, best: dict[str, str],
                focus_key: str | None = None):
    """Fig. 2: models in the (normalized originality, recognizability) plane.

    One panel per group of regularizers (standard, supervised, contrastive,
    mixes), each with the baselines and the human; the best model of each
    family is drawn larger; the model under study, if given, is ringed.
    """
    families = sorted(set(table["family"]) - {HUMAN, NONE, PIXEL})
    panels, best_keys = _panels(families), set(best.values())
    figure, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True,
                                figsize=(4.6 * len(panels), 4.4))
    low, high = table["recognizability"].min(), table["recognizability"].max()
    margin = 0.1 * max(high - low, 0.05)
    for ax, (name, members) in zip(axes[0], panels):
        for family in members:
            _draw_family(ax, table[table["family"] == family], fits.get(family),
                         family_color(family, families), best_keys)
        _draw_reference_points(ax, table)
        focus = table[table["key"] == focus_key]
        if len(focus) and focus["family"].iloc[0] in members:
            _ring_focus(ax, focus)
        ax.set_title(name, fontsize=10)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(low - margin, high + margin)
        ax.set_xlabel("originality (normalized)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", framealpha=0.8, markerscale=0.8)
    axes[0, 0].set_ylabel("recognizability")
    figure.tight_layout()
    return figure


def _draw_family(ax, rows: pd.DataFrame, fit, color: str, best_keys: set[str]) -> None:
    """The family's models (the best one larger, with its β) and its fitted curve."""
    best = rows[rows["key"].isin(best_keys)]
    others = rows[~rows["key"].isin(best_keys)]
    ax.scatter(others["originality_norm"], others["recognizability"], color=color, s=30,
               edgecolors="white", linewidths=0.5, zorder=3,
               label=family_label(rows["family"].iloc[0]))
    ax.scatter(best["originality_norm"], best["recognizability"], color=color, s=150,
               edgecolors="black", linewidths=0.8, zorder=4)
    for _, row in best.iterrows():
        # a mix sweeps one of its βs: name the model rather than guess which
        text = row["model"] if "+" in row["family"] else f"β={row['beta']:g}"
        ax.annotate(text, (row["originality_norm"], row["recognizability"]),
                    xytext=(7, -10), textcoords="offset points", fontsize=7, color=color)
    if fit is not None:
        _draw_fit(ax, fit, color)


def _ring_focus(ax, focus: pd.DataFrame) -> None:
    ax.scatter(focus["originality_norm"], focus["recognizability"], s=300,
               facecolors="none", edgecolors="black", linestyles="--", linewidths=1.0,
               zorder=6, label="model under study")


# --- Fig. 4 ---------------------------------------------------------------------------

def _unit(image: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] for display; a constant map shows as zeros."""
    image = np.asarray(image, dtype=float)
    span = image.max() - image.min()
    return (image - image.min()) / span if span > 0 else np.zeros_like(image)


def overlay_figure(exemplars: np.ndarray, rows: Sequence[tuple[str, np.ndarray]],
                   column_labels: Sequence[str] | None = None, cell_inches: float = 0.8):
    """Fig. 4a: each row's maps (C×48×48) over the C exemplars, hot = important.

    Each map is min-max scaled on its own, as only its ranking matters to the
    Spearman comparison.
    """
    n_columns = len(exemplars)
    figure, axes = plt.subplots(len(rows), n_columns, squeeze=False,
                                figsize=(cell_inches * n_columns + 1.6,
                                         cell_inches * len(rows) + 0.4))
    for r, (label, maps) in enumerate(rows):
        for c in range(n_columns):
            ax = axes[r, c]
            ax.imshow(255 - exemplars[c], cmap="gray", vmin=0, vmax=255)
            ax.imshow(_unit(maps[c]), cmap="jet", alpha=0.55, vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    for ax, label in zip(axes[0], column_labels or []):
        ax.set_title(label, fontsize=5)
    figure.subplots_adjust(wspace=0.04, hspace=0.04)
    return figure


def significance_stars(p_value: float) -> str:
    """The paper's marks: *** for p < 1e-3, * for p < 0.05."""
    if not np.isfinite(p_value):
        return ""
    return "***" if p_value < 1e-3 else "*" if p_value < 0.05 else ""


def spearman_bars(summary: pd.DataFrame, reference_label: str,
                  baseline: float | None = None, consistency: float | None = None):
    """Fig. 4b: mean Spearman ρ per model with its std over categories.

    `summary` has columns label, mean, std and stars (marks of the test against
    the no-regularization model); `baseline` is that model's mean ρ (black
    line), `consistency` the human split-half consistency (dashed line).
    """
    figure, ax = plt.subplots(figsize=(max(3.5, 1.2 + 0.7 * len(summary)), 3.8))
    positions = np.arange(len(summary))
    ax.bar(positions, summary["mean"], yerr=summary["std"], capsize=3,
           color=[family_color(f) for f in summary["family"]], alpha=0.85)
    for x, (mean, std, stars) in enumerate(zip(summary["mean"], summary["std"],
                                               summary["stars"])):
        ax.text(x, mean + std + 0.01, stars, ha="center", va="bottom", fontsize=9)
    if baseline is not None:
        ax.axhline(baseline, color="black", linewidth=1.5, label="No reg.")
        ax.set_xlabel("one-sided Wilcoxon, model > No reg.: *** p < 1e-3, * p < 0.05",
                      fontsize=7)
    if consistency is not None:
        ax.axhline(consistency, color="grey", linestyle="--", label="human consistency")
    ax.set_xticks(positions, summary["label"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"Spearman ρ with {reference_label}", fontsize=8)
    ax.axhline(0.0, color="grey", linewidth=0.5)
    tops = [*(summary["mean"] + summary["std"].fillna(0)), baseline or 0.0,
            consistency or 0.0, 0.0]
    ax.set_ylim(top=max(tops) + 0.1)
    if baseline is not None or consistency is not None:
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                  frameon=False)
    figure.tight_layout()
    return figure
