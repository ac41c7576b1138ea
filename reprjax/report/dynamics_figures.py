"""Figures of multi-step training (matplotlib, Agg): overlap trajectories against the step, and the Hermite energy a
trained network learned per degree against ``n``.

* :func:`trajectories_vs_step`: a ``traj_*`` field (list-valued rows, :mod:`reprjax.methods.first_layer_presets`)
  against ``traj_steps``, mean over seeds with a min-max band, one line per value of ``by``.
* :func:`energy_vs_n`: ``energy_0 .. energy_K`` and ``energy_perp`` against ``n``, one panel per value of ``by``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reprjax.report.figures import _save  # noqa: E402


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df.columns else df


def trajectories_vs_step(df: pd.DataFrame, path: str | Path, field: str = "traj_alignment", by: str = "method",
                         title: str = "") -> list[Path]:
    """``field`` against the training step, one line per value of ``by`` (mean over rows, min-max band).

    Args:
      df: rows holding list-valued ``traj_steps`` and ``field`` (vector entries per record, e.g. ``traj_best_cosine``,
        are averaged over directions).
      path: output path without suffix (PNG and PDF are written).
      field: the trajectory field.
      by: column naming the lines.
      title: figure title.

    Returns:
      The files written.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, sub in _ok(df).groupby(by, sort=True):
        steps = np.asarray(sub["traj_steps"].iloc[0], float)
        values = np.stack([np.asarray(v, float).reshape(len(steps), -1).mean(axis=1) for v in sub[field]])
        ax.plot(np.maximum(steps, 0.5), values.mean(0), marker="o", ms=3, label=str(label))
        ax.fill_between(np.maximum(steps, 0.5), values.min(0), values.max(0), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("step (0 drawn at 0.5)")
    ax.set_ylabel(field.removeprefix("traj_").replace("_", " "))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def energy_vs_n(df: pd.DataFrame, path: str | Path, by: str = "method", degrees: int = 4,
                title: str = "") -> list[Path]:
    """Energy of the trained predictor per Hermite degree of ``U x`` (and outside ``span(U)``) against ``n``.

    Args:
      df: rows with ``n``, ``energy_0 .. energy_<degrees>`` and ``energy_perp``.
      path: output path without suffix.
      by: column naming the panels.
      degrees: largest degree drawn.
      title: figure title.

    Returns:
      The files written.
    """
    good = _ok(df)
    panels = sorted(good[by].unique()) if len(good) else []
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.6), squeeze=False)
    cmap = plt.get_cmap("viridis")
    fields = [f"energy_{k}" for k in range(degrees + 1)] + ["energy_perp"]
    for ax, panel in zip(axes[0], panels):
        mean = good[good[by] == panel].groupby("n")[fields].mean().sort_index()
        for i, f in enumerate(fields):
            style = dict(color="k", ls="--") if f == "energy_perp" else dict(color=cmap(i / max(1, degrees)))
            ax.plot(mean.index, mean[f].clip(lower=1e-4), marker="o", ms=3, label=f.replace("energy_", "deg "),
                    **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("energy of the predictor")
        ax.set_title(f"{panel}" if not title else f"{title}: {panel}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)
