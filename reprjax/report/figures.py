"""Figures from result tables (matplotlib, Agg backend): the plots a paper shows, written as PNG and PDF.

* :func:`error_vs_n`: test error against ``n`` for each ``d``, one panel per method, seed bands (mean +- std).
* :func:`n_star_vs_d`: ``n*`` against ``d`` on log-log axes with fitted slopes and reference lines ``d^2``, ``d^p``.
* :func:`alignment_vs_scaled_n`: alignment with ``span(U)`` against ``n / d^2``.
* :func:`transfer_curves`: target-task error against ``N`` per method and ``d``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reprjax.methods.registry import method_label  # noqa: E402
from reprjax.report.tables import error_curves  # noqa: E402

FORMATS = ("png", "pdf")

def _save(fig: plt.Figure, path: str | Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in FORMATS:
        target = path.with_suffix("." + ext)
        fig.savefig(target, dpi=130, bbox_inches="tight")
        out.append(target)
    plt.close(fig)
    return out


def _colors(values) -> dict:
    cmap = plt.get_cmap("viridis")
    values = sorted(values)
    return {v: cmap(0.1 + 0.75 * i / max(1, len(values) - 1)) for i, v in enumerate(values)}


def _decorate(ax: plt.Axes, xlabel: str, ylabel: str, title: str, legend_size: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=legend_size)
    if title:
        ax.set_title(title)


def _band(ax: plt.Axes, sub: pd.DataFrame, x: str, color: Any, label: str, log_axis: bool = False) -> None:
    """Mean line and a mean +- std band of an ``error_curves`` table."""
    sub = sub.sort_values(x)
    std = sub["std"].fillna(0.0)
    low = sub["mean"] - std
    ax.plot(sub[x], sub["mean"], "o-", color=color, label=label, ms=3)
    # on a log axis a band below zero (or far below the mean) says nothing: keep it within a decade of the mean
    ax.fill_between(sub[x], low.clip(lower=sub["mean"] / 10) if log_axis else low, sub["mean"] + std, color=color,
                    alpha=0.2, lw=0)


def error_vs_n(df: pd.DataFrame, path: str | Path, metric: str = "test_nmse", threshold: float | None = None,
               x: str = "n", title: str = "", labels: dict[str, str] | None = None,
               xlabel: str | None = None) -> list[Path]:
    """One panel per method: mean error against ``x`` (log axis) per ``d``, band = mean +- std over seeds."""
    labels = labels or {}  # study-specific names over the registry's labels
    curves = error_curves(df, metric, by=("method", "d", x))
    methods = list(dict.fromkeys(curves["method"]))
    colors = _colors(curves["d"].unique())
    ncols = min(3, len(methods))  # wrap rows: six panels in one row were unreadable
    nrows = math.ceil(len(methods) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax, method in zip(axes.flat, methods):
        for d, sub in curves[curves["method"] == method].groupby("d"):
            _band(ax, sub, x, colors[d], f"d = {d}", log_axis=True)
        if threshold is not None:
            ax.axhline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a narrow log range overlap
        ax.set_title(labels.get(method) or method_label(method))
        ax.set_xlabel(xlabel or x)
        ax.grid(alpha=0.3, which="both")
    for row in axes:
        row[0].set_ylabel({"test_nmse": "normalised test MSE", "test_mae": "test absolute error"}.get(metric, metric))
    axes.flat[len(methods) - 1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def n_star_vs_d(table: pd.DataFrame, path: str | Path, p: int, exponents: dict[str, float] | None = None,
                title: str = "", predicted: dict[str, tuple[Any, Any]] | None = None) -> list[Path]:
    """``n*`` against ``d`` (log-log) per method with its fitted slope; dashed references ``d^2`` and ``d^p``.

    Each ``n*`` carries its 95% interval where the table has ``log_n_star_se`` (seeds and test estimates).  Methods
    that never reach the threshold at some ``d`` are drawn at the top of the axis as open up-triangles; ``d`` already
    below it at the grid's first ``n`` (``censored = "below"``: ``n* <= n_min``) as open down-triangles at ``n_min``.
    ``predicted`` maps a label to ``(d, n*)`` of a theory's prediction, drawn as a dashed line (e.g. the kernel
    learning curve of :mod:`reprjax.kernels.learning_curve` past the simulated dims).
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    finite = table[np.isfinite(table["n_star"])]
    all_d = sorted(table["d"].unique())
    top = (table["n_max"].max() if len(table) else 1) * 1.5
    for i, (method, sub) in enumerate(table.groupby("method")):
        sub = sub.sort_values("d")
        color = f"C{i}"
        ok = np.isfinite(sub["n_star"])
        slope = (exponents or {}).get(method, math.nan)
        label = method_label(method) + (f" (slope {slope:.2f})" if math.isfinite(slope) else "")
        if ok.any():
            d_ok, n_ok = sub["d"][ok].to_numpy(float), sub["n_star"][ok].to_numpy(float)
            se = sub["log_n_star_se"][ok].to_numpy(float) if "log_n_star_se" in sub else np.zeros_like(n_ok)
            se = np.nan_to_num(se, nan=0.0)
            yerr = np.stack([n_ok - n_ok * np.exp(-1.96 * se), n_ok * np.exp(1.96 * se) - n_ok])
            ax.errorbar(d_ok, n_ok, yerr=yerr, fmt="o-", color=color, capsize=2, label=label)
        low = ~ok & (sub["censored"] == "below") if "censored" in sub else ~ok & False
        high = ~ok & ~low
        if high.any():
            ax.plot(sub["d"][high], np.full(high.sum(), top), "^", mfc="none", color=color,
                    label=f"{method_label(method)}: not reached by n = max")
        if low.any():
            ax.plot(sub["d"][low], sub["n_min"][low], "v", mfc="none", color=color,
                    label=f"{method_label(method)}: below at n = min")
    for j, (label, (d_pred, n_pred)) in enumerate((predicted or {}).items()):
        d_pred, n_pred = np.asarray(d_pred, float), np.asarray(n_pred, float)
        keep = np.isfinite(n_pred)
        ax.plot(d_pred[keep], n_pred[keep], "--", color=f"C{table['method'].nunique() + j}", lw=1.5, label=label)
        all_d = sorted(set(all_d) | {float(d) for d in d_pred[keep]})
    all_d = np.asarray(all_d, float)
    lowest = finite.loc[finite["n_star"].idxmin()] if len(finite) else None  # the references start at the lowest n*
    anchor = float(lowest["n_star"]) if lowest is not None else 1.0
    d0 = float(lowest["d"]) if lowest is not None else (all_d[0] if len(all_d) else 1.0)
    for power, style in ((2, "--"), (p, ":")):
        ax.plot(all_d, anchor * (all_d / d0) ** power, style, color="gray", lw=1, label=f"d^{power}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(all_d, [f"{int(d)}" for d in all_d], fontsize=7)
    ax.minorticks_off()
    _decorate(ax, "d", "n* (samples to reach the threshold)", title, 7)
    return _save(fig, path)


def alignment_vs_scaled_n(df: pd.DataFrame, path: str | Path, title: str = "") -> list[Path]:
    """Alignment ``||W U^T||^2 / ||W||^2`` against ``n / d^2`` for each ``d`` (seed bands)."""
    df = df.assign(n_over_d2=df["n"] / df["d"] ** 2)
    curves = error_curves(df, "alignment", by=("d", "n_over_d2"))
    colors = _colors(curves["d"].unique())
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for d, sub in curves.groupby("d"):
        _band(ax, sub, "n_over_d2", colors[d], f"d = {d}")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    _decorate(ax, "n / d^2", "alignment of W_1 with span(U)", title, 8)
    return _save(fig, path)


def transfer_curves(df: pd.DataFrame, path: str | Path, threshold: float | None = None, title: str = "") -> list[Path]:
    """Target-task error against the number of target samples ``N``: one panel per method, lines per ``d``."""
    return error_vs_n(df, path, threshold=threshold, title=title or "transfer: error on the new head",
                      labels={"algorithm1": "Algorithm 1 from scratch"}, xlabel="N (samples of the new head)")
