"""The three Section 2 figures (matplotlib, Agg, imported lazily so analysis starts fast).

Figure 2 (prediction vs target histograms per λ), training curves (val R² and variance
ratio per epoch, one line per λ), and the R²-vs-variance-ratio trade-off with theory.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cloudml.analysis.tradeoff import theoretical_r2
from cloudml.atomic import atomic_write

LEGEND_MAX = 12  # more λ values than this get a colour bar instead of a legend
R2_FLOOR = -3.0  # R² axes stop here: a diverging run must not squash every other line


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    _pyplot().close(fig)


def _r2_axis(ax, values) -> None:
    """R² axis from just below the data (but not below R2_FLOOR) to 1; says what it hides."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    low = min(0.0, float(values.min()) if values.size else 0.0) - 0.05
    ax.set_ylim(max(low, R2_FLOOR), 1.0)
    hidden = int((values < R2_FLOOR).sum())
    if hidden:
        ax.text(0.01, 0.01, f"{hidden} value(s) below R² = {R2_FLOOR:g} not shown", fontsize=7,
                transform=ax.transAxes)


def lambda_colors(lams) -> dict[float, tuple]:
    """A distinct colour per λ: tab10 for few values, viridis by rank for many."""
    plt = _pyplot()
    lams = sorted(set(lams))
    cmap = plt.get_cmap("tab10") if len(lams) <= 10 else plt.get_cmap("viridis")
    return {lam: cmap(i if len(lams) <= 10 else i / max(1, len(lams) - 1)) for i, lam in enumerate(lams)}


def level_text(level, name: str = "λ") -> str:
    """'λ = 0.5' for a number, the level itself (e.g. a model name) otherwise."""
    return f"{name} = {level:g}" if isinstance(level, (int, float)) else str(level)


def _lambda_label(lam, colors: dict, name: str = "λ") -> str | None:
    """Legend label for a level, or None when there are too many levels for a legend."""
    return level_text(lam, name) if len(colors) <= LEGEND_MAX else None


def _colorbar(fig, ax, colors: dict) -> None:
    """Stands in for the legend when there are more than LEGEND_MAX λ values."""
    if len(colors) <= LEGEND_MAX:
        return
    plt = _pyplot()
    lams = sorted(colors)
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, len(lams) - 1))
    bar = fig.colorbar(sm, ax=ax, ticks=[0, len(lams) - 1])
    bar.ax.set_yticklabels([f"{lams[0]:g}", f"{lams[-1]:g}"])
    bar.set_label("λ (by rank)")


def distributions(panels: list[dict], path, max_panels: int = 16) -> None:
    """Figure 2: per level (λ), the prediction histogram over the target histogram (same bins).

    ``panels``: dicts with ``label`` (e.g. "λ = 0.5"), ``pred`` and ``target`` (km, pooled over
    seeds, or None), ``r2``, ``variance_ratio``, ``n_seeds``, ``status``.
    """
    plt = _pyplot()
    shown = panels[:max_panels]
    ncols = min(3, max(1, len(shown)))
    nrows = max(1, math.ceil(len(shown) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, p in zip(axes.flat, shown):
        title = p["label"]
        if p["pred"] is None:
            ax.text(0.5, 0.5, f"[{p['status']}]", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
            continue
        bins = np.histogram_bin_edges(np.concatenate([p["target"], p["pred"]]), bins=40)
        ax.hist(p["target"], bins=bins, density=True, color="0.75", label="target")
        ax.hist(p["pred"], bins=bins, density=True, histtype="stepfilled", alpha=0.55,
                color="tab:blue", edgecolor="tab:blue", label="prediction")
        seeds = f", {p['n_seeds']} seeds" if p["n_seeds"] > 1 else ""
        ax.set_title(f"{title}: R² = {p['r2']:.3f}, var ratio = {100 * p['variance_ratio']:.0f} %{seeds}",
                     fontsize=9)
        ax.set_xlabel("cloud base height (km)")
        ax.set_ylabel("density")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    note = f" (first {len(shown)} of {len(panels)})" if len(panels) > len(shown) else ""
    fig.suptitle(f"Validation predictions vs targets{note}")
    fig.tight_layout()
    _save(fig, path)


def training_curves(histories: pd.DataFrame, path, column: str = "variance_lambda", name: str = "λ") -> None:
    """Validation R² and variance ratio per epoch: one line per level of `column` (mean over
    seeds and folds, shaded min–max where there are several)."""
    plt = _pyplot()
    fig, (ax_r2, ax_v) = plt.subplots(1, 2, figsize=(11, 4))
    colors = lambda_colors(histories[column]) if len(histories) else {}
    data = histories.assign(val_variance_ratio_pct=100 * histories["val_variance_ratio"])
    for ax, col in ((ax_r2, "val_r2"), (ax_v, "val_variance_ratio_pct")):
        stats = data.groupby([column, "epoch"])[col].agg(["mean", "min", "max", "count"])
        for lam, s in stats.groupby(level=column):
            epochs = s.index.get_level_values("epoch")
            ax.plot(epochs, s["mean"], color=colors[lam], marker=".", label=_lambda_label(lam, colors, name))
            if s["count"].max() > 1:
                ax.fill_between(epochs, s["min"], s["max"], color=colors[lam], alpha=0.15, lw=0)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_r2.axhline(0, color="0.3", lw=0.8)
    ax_r2.set_ylabel("validation R²")
    _r2_axis(ax_r2, histories["val_r2"])
    ax_v.axhline(100, color="0.3", lw=0.8, ls="--")
    ax_v.set_ylabel("validation variance ratio var(pred)/var(y) (%)")
    ax_v.set_ylim(bottom=0, top=min(max(ax_v.get_ylim()[1], 120), 300))
    if colors:
        _colorbar(fig, ax_v, colors)
        if len(colors) <= LEGEND_MAX:
            ax_v.legend(fontsize=8)
    else:
        ax_r2.text(0.5, 0.5, "no history.csv found", ha="center", transform=ax_r2.transAxes)
    several = len(histories) and histories.groupby(column).size().max() > histories["epoch"].nunique()
    fig.suptitle("Training curves (validation set)" + ("; line: mean over seeds and folds, band: min–max" if several else ""))
    fig.tight_layout()
    _save(fig, path)


def tradeoff(runs: pd.DataFrame, reference: dict | None, path) -> None:
    """R² against variance ratio, a point per run; the theoretical curve R² = 2ρ√v − v − β² for
    the selected λ's seed-mean ρ and β, the line R² = v of calibrated predictors, and the
    selected λ rescaled to v = 1 (seed mean)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    pts = runs.dropna(subset=["tradeoff_r2", "tradeoff_variance_ratio"])
    colors = lambda_colors(pts["variance_lambda"]) if len(pts) else {}
    for lam, g in pts.groupby("variance_lambda"):
        ax.scatter(g["tradeoff_variance_ratio"], g["tradeoff_r2"], color=colors[lam],
                   s=28 if len(pts) <= 60 else 8,
                   label=_lambda_label(lam, colors), zorder=3)
    v_max = max(1.5, float(pts["tradeoff_variance_ratio"].max()) if len(pts) else 0)
    v = np.linspace(0, v_max, 300)
    ax.plot(v[v <= 1], v[v <= 1], color="0.4", ls=":", label="R² = v (calibrated)")
    if reference is not None and np.isfinite(reference["rho"]):
        rho, bias = reference["rho"], reference["bias"]
        ax.plot(v, theoretical_r2(rho, v) - bias**2, color="k", ls="--",
                label=f"2ρ√v − v − β², λ = {reference['variance_lambda']:g}: ρ = {rho:.2f}, β = {bias:.2f}")
        ax.scatter([1.0], [reference["r2_at_unit_variance"]], marker="x", color="k", s=60,
                   zorder=4, label=f"λ = {reference['variance_lambda']:g} rescaled to v = 1 (seed mean)")
    ax.axvline(1, color="0.6", lw=0.8)
    ax.axhline(0, color="0.6", lw=0.8)
    _r2_axis(ax, pts["tradeoff_r2"])
    ax.set_xlabel("variance ratio v = var(pred)/var(y)")
    ax.set_ylabel("validation R²")
    ax.set_title("Skill vs variance preservation (points: runs, colour: λ)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _colorbar(fig, ax, colors)
    fig.tight_layout()
    _save(fig, path)


def levels_figure(per_level: pd.DataFrame, column: str, baselines: dict, path, title: str) -> None:
    """R² per level with its interval (and the within-flight R²), beside the ridge baseline and
    the Bayes reference on the same validation samples."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(per_level)), 4.5))
    x = np.arange(len(per_level))
    for i, s in enumerate(per_level.to_dict("records")):
        if s["n_seeds"] == 0:
            ax.text(i, 0.02, f"[{s['status']}]", ha="center", fontsize=8, rotation=90, va="bottom")
            continue
        lo, hi = s["val_r2_ci"] if s["val_r2_ci"] and s["val_r2_ci"][0] is not None else (s["val_r2"], s["val_r2"])
        ax.errorbar([i], [s["val_r2"]], yerr=[[s["val_r2"] - lo], [hi - s["val_r2"]]], fmt="o", color="tab:blue",
                    capsize=4, label="R² [interval]" if i == 0 else None)
        if s["diagnosis"]:
            ax.scatter([i], [s["diagnosis"]["r2_within_flight"]], marker="s", facecolors="none", edgecolors="tab:orange",
                       label="within-flight R²" if i == 0 else None)
    for key, style, text in (("ridge", "--", "ridge baseline"), ("oracle", ":", "Bayes reference")):
        if baselines.get(key):
            ax.axhline(baselines[key]["val_r2"], color="0.35", ls=style, lw=1, label=f"{text} R² {baselines[key]['val_r2']:.3f}")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xticks(x, [level_text(v, column) if isinstance(v, (int, float)) else str(v) for v in per_level[column]],
                  rotation=20, ha="right")
    values = [v for v in per_level["val_r2"] if np.isfinite(v)]
    _r2_axis(ax, values)
    ax.set_ylabel("validation R²")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)
