"""Figures of the network-versus-kernel comparison at scale, drawn from summary tables (no study imported).

* :func:`families`: test error against ``n`` for both families in one figure (networks solid, kernels dashed, one
  colour per ``d``), with the degree-``k`` plateaus of rotation-invariant kernels (:mod:`reprjax.kernels.theory`) and
  the kernel learning curve predicted by theory (:mod:`reprjax.kernels.learning_curve`, :func:`draw_predicted`).
* :func:`collapse`: the same curves against ``n / d^power`` of their family (kernels ``d^p``, Algorithm 1 ``d^2``):
  if ``n* ~ d^power`` holds, the curves of all ``d`` fall on one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from reprjax.methods.registry import method_label
from reprjax.report.figures import _colors, _decorate, _save, plt


def _draw(ax: plt.Axes, curves: pd.DataFrame, methods: Sequence[str], colors: dict, style: str,
          power: float | None) -> None:
    for method in methods:
        for d, sub in curves[curves["method"] == method].groupby("d"):
            sub = sub.sort_values("n")
            x = sub["n"] / (float(d) ** power) if power is not None else sub["n"]
            ax.plot(x, sub["mean"], style, color=colors[d], ms=3, label=f"{method_label(method)}, d = {d}")


def draw_predicted(ax: plt.Axes, predicted: Mapping[int, tuple[Sequence[float], Sequence[float]]], colors: dict,
                   label: str = "kernel, predicted (eigenlearning)", power: float | None = None) -> None:
    """Overlay predicted learning curves ``{d: (n, error)}`` as thin dotted lines in each ``d``'s colour (against
    ``n / d^power`` when ``power`` is given)."""
    for d, (ns, errors) in sorted(predicted.items()):
        if d not in colors:
            continue
        x = np.asarray(ns, float) / (float(d) ** power if power is not None else 1.0)
        ax.plot(x, errors, ":", color=colors[d], lw=1.6, label=label)
        label = None


def families(curves: pd.DataFrame, path: str | Path, kernel_methods: Sequence[str], network_methods: Sequence[str],
             plateaus: Mapping[int, Sequence[Mapping[str, float]]] | None = None,
             thresholds: Mapping[str, float] | None = None, title: str = "",
             predicted: Mapping[int, tuple[Sequence[float], Sequence[float]]] | None = None) -> list[Path]:
    """Error against ``n`` (log-log) for network and kernel methods together, plateaus as thin segments.

    Args:
      curves: an ``error_curves`` table (columns ``method, d, n, mean``).
      path: output path without suffix.
      kernel_methods, network_methods: which methods draw dashed (kernels) and solid (networks).
      plateaus: ``{d: kernel_plateaus(target at d)}``; each plateau ``k`` is drawn from ``d^k`` to ``d^(k+1)``.
      thresholds: ``{label: value}`` horizontal reference lines (e.g. the n* thresholds of each family).
      predicted: ``{d: (n, error)}`` the kernel learning curve from theory, drawn dotted (:func:`draw_predicted`).
    """
    colors = _colors(curves["d"].unique())
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    _draw(ax, curves, network_methods, colors, "o-", None)
    _draw(ax, curves, kernel_methods, colors, "s--", None)
    if predicted:
        draw_predicted(ax, predicted, colors)
    n_lo, n_hi = curves["n"].min(), curves["n"].max()
    label = "kernel plateau: degrees <= k learned, d^k < n < d^(k+1)"
    for d, rows in (plateaus or {}).items():
        for row in rows:
            lo, hi = max(row["n_low"], n_lo / 2), min(row["n_high"], n_hi * 2)
            if lo < hi and row["error"] > 0:
                ax.hlines(row["error"], lo, hi, colors=[colors.get(d, "grey")], lw=4, alpha=0.25, label=label)
                label = None
    for i, (label, value) in enumerate((thresholds or {}).items()):
        ax.axhline(value, color="k", ls=(":", "-.")[i % 2], lw=1, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    _decorate(ax, "n (samples)", "normalised test MSE", title, legend_size=6)
    return _save(fig, path)


def collapse(curves: pd.DataFrame, path: str | Path, powers: Mapping[str, float], title: str = "",
             predicted: Mapping[int, tuple[Sequence[float], Sequence[float]]] | None = None,
             predicted_method: str = "ntk_infinite") -> list[Path]:
    """One panel per method: error against ``n / d^power`` (``powers[method]``), one curve per ``d``; ``predicted``
    (``{d: (n, error)}``) is overlaid dotted on the panel of ``predicted_method``."""
    methods = [m for m in powers if m in set(curves["method"])]
    colors = _colors(curves["d"].unique())
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(4.4 * max(1, len(methods)), 3.6), squeeze=False,
                             sharey=True)
    for ax, method in zip(axes[0], methods):
        for d, sub in curves[curves["method"] == method].groupby("d"):
            sub = sub.sort_values("n")
            ax.plot(sub["n"] / float(d) ** powers[method], sub["mean"], "o-", color=colors[d], ms=3,
                    label=f"d = {d}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # a narrow log range labels its minor ticks over each other
        power = powers[method]
        if predicted and method == predicted_method:
            draw_predicted(ax, predicted, colors, label="predicted", power=power)
        _decorate(ax, f"n / d^{power:g}", "normalised test MSE", method_label(method), legend_size=7)
    if title:
        fig.suptitle(title, y=1.03)
    return _save(fig, path)


__all__ = ["collapse", "draw_predicted", "families"]
