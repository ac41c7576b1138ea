"""The figure of the SGD exponents study (:mod:`reprjax.studies.sgd_exponents`): samples to weak recovery against
``d`` on log-log axes, one panel per target, one colour per protocol; each seed a faint point (censored seeds drawn
at their budget as open triangles), the median a line, and the theorem's slope drawn through the median at the
smallest ``d`` where at least half the seeds recovered.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reprjax.report.figures import _save  # noqa: E402


def samples_vs_d(runs: pd.DataFrame, exponents: pd.DataFrame, path: str | Path, level: float = 0.5,
                 reuse_level: float | None = None) -> list[Path]:
    """Draw ``runs`` (columns ``target, family, d, recovery_n, recovered``) and the ``theory_exponent`` of each
    ``(target, method)`` row of ``exponents``; returns the written files (PNG and PDF).  ``reuse_level``: the
    level of the ``reuse`` families where it differs from ``level`` (named in their legend entry)."""
    targets = list(dict.fromkeys(runs["target"]))
    families = list(dict.fromkeys(runs["family"]))
    colours = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.8), squeeze=False)
    for ax, target in zip(axes[0], targets):
        sub = runs[runs["target"] == target]
        for family, fam in sub.groupby("family", sort=False):
            c = colours[family]
            done = fam[fam["recovered"] > 0]
            cens = fam[fam["recovered"] <= 0]
            ax.scatter(done["d"], done["recovery_n"], s=6, color=c, alpha=0.25, lw=0)
            ax.scatter(cens["d"], cens["recovery_n"], s=14, color=c, alpha=0.4, marker="^", facecolors="none")
            med = fam.groupby("d").agg(n=("recovery_n", "median"), ok=("recovered", "mean")).reset_index()
            med = med[med["ok"] >= 0.5]
            own = reuse_level if family.startswith("reuse") and reuse_level not in (None, level) else None
            ax.plot(med["d"], med["n"], "-o", color=c, ms=3,
                    label=family + (f" (|<w,u>| >= {own:g})" if own is not None else ""))
            row = exponents[(exponents["target"] == target) & (exponents["method"] == family)]
            if len(med) and len(row):
                d0, n0 = float(med["d"].iloc[0]), float(med["n"].iloc[0])
                ds = np.array([d0, float(fam["d"].max())])
                slope = float(row["theory_exponent"].iloc[0])
                ax.plot(ds, n0 * (ds / d0) ** slope, ":", color=c, lw=1)
        ax.set(xscale="log", yscale="log", xlabel="d", title=target)
        ax.set_ylabel(f"samples to |<w,u>| >= {level:g}")
    axes[0][0].legend(fontsize=7, title="dotted: theory slope", title_fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
