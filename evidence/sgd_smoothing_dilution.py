"""Smoothing where the information exponent k <= 2 (docs/sgd_exponents.md, "Smoothing where k <= 2"): the ratio of
the smoothed to the online median samples to recovery, against ``lambda^k``.

To leading order in ``m = <w, u>`` the smoothed correlation loss of a link with information exponent ``k`` is
``-c_k^2 E[((m + lambda z_u) / kappa)^k]`` (``kappa = sqrt(1 + lambda^2)``, ``z_u ~ N(0, 1/d)`` the tangent
perturbation's component on ``u``): for ``k = 1`` the drift of ``m`` is ``c_1^2 / kappa``, for ``k = 2`` it is
``2 c_2^2 m / kappa^2`` (the ``lambda^2 / d`` term is constant in ``m``). The step is the online one (``1/d`` per
sample at ``lambda = d^(1/4)``), so the smoothed run needs ``kappa^k`` times the online samples: ``d^(5/4)`` for
``tanh``, ``d^(3/2) log d`` for ``h_2``.

Reads a sgd-exponents results directory that ran ``online`` and ``smoothed`` on ``tanh`` and ``he2``; prints per
``d`` the two medians, their ratio and the ratio over ``kappa^k``.

Run: python evidence/sgd_smoothing_dilution.py [RESULTS_DIR]   (default runs/sgd-exponents)
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from reprjax import sweep
from reprjax.studies import sgd_exponents


def dilution_table(df: pd.DataFrame, lam_scale: float = 1.0) -> pd.DataFrame:
    """Per (target, d): the online and smoothed medians (where every seed recovered), their ratio and
    ``ratio / kappa^k``."""
    ok = df[(df["status"] == "ok") & df["method"].isin(["sgd_online", "sgd_smoothed"])]
    rows = []
    for name in ("tanh", "he2"):
        k, _ = sgd_exponents.exponents_of(name)
        sub = ok[ok["target"] == sgd_exponents.spec(name).label()]
        for d, at_d in sub.groupby("d"):
            med = {m: g["recovery_n"].median() if g["recovered"].mean() == 1.0 else np.nan
                   for m, g in at_d.groupby("method")}
            kappa = float(np.sqrt(1.0 + (lam_scale * d**0.25) ** 2))
            ratio = med.get("sgd_smoothed", np.nan) / med.get("sgd_online", np.nan)
            rows.append(dict(target=name, k=k, d=int(d), online=med.get("sgd_online"),
                             smoothed=med.get("sgd_smoothed"), ratio=ratio, kappa_k=kappa**k,
                             ratio_over_kappa_k=ratio / kappa**k))
    return pd.DataFrame(rows)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/sgd-exponents"
    print(dilution_table(sweep.load_results(out)).round(3).to_string(index=False))
