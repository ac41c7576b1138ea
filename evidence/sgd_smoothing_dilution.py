"""The smoothed protocol's step (docs/sgd_exponents.md, "The smoothed step"): samples to weak recovery under online
SGD, smoothed SGD at its step ``s = d^(-k/2) lambda^(2k-2)`` (``k >= 2``; ``lambda / d`` at ``k = 1``) and smoothed
SGD at ``lambda^-k`` times that step (``s = 1/d`` for ``k <= 2``, ``d^(-k/2) lambda^(2k-4)`` above: the step
reprjax used before), on ``tanh`` (k = 1), ``h_2``, ``h_3``, ``h_4``.

To leading order in ``m = <w, u>`` the smoothed correlation loss of a link with information exponent ``k`` is
``-c_k^2 E[((m + lambda z_u) / kappa)^k]`` (``kappa = sqrt(1 + lambda^2)``, ``z_u ~ N(0, 1/d)``): its drift is
``c_1^2 / kappa`` (``k = 1``), ``2 c_2^2 m / kappa^2`` (``k = 2``), ``k c_k^2 (lambda^2 / d)^((k-1)/2) / kappa^k``
(odd ``k >= 3``, small ``m``; ``k (k-1) c_k^2 m (lambda^2 / d)^((k-2)/2) / kappa^k`` for even ``k``), while the
per-sample gradient's squared norm falls as ``d / kappa^(2k)``.  At the smaller
step the smoothed run should need ``kappa^k`` times the online samples for ``k <= 2`` (its drift divided by
``kappa^k`` at the same step) and ``n ~ d^2`` on ``h_3``; at the protocol's step, the online count for ``k <= 2`` and
``d^(3/2)`` for ``h_3`` (Damian et al. 2023).

Prints per (target, d): the three medians over seeds (``nan`` where fewer than half recovered within the budget of
64 ``n_th`` and 200,000 batches), the ratio of the smaller-step run to the online one over ``kappa^k`` (``k <= 2``)
and ``n / n_th`` of each.

Run: python evidence/sgd_smoothing_dilution.py [--seeds 8] [--dims 64,256,1024]

Measured on 2 CPU cores (2026-12-02, 905 s at the lowest priority beside the default study's run; roofline 85.2
GFLOP/s before, 84.8 after), median samples at d = 64, 256, 1024 (online / smoothed / smoothed at the old step):
tanh 72.5, 339, 1250 / 83.5, 358, 1300 / 215, 1289, 7022 (old step over online per kappa: 0.99, 0.92, 0.98);
h_2 196, 1072, 3840 / 227, 1170, 4000 / 1541, 11,962, 106,592 (per kappa^2: 0.88, 0.66, 0.84);
h_3 4568, 40,832, 690,176 / 779, 5736, 30,880 (n / d^(3/2) = 1.52, 1.40, 0.94) / 4583, 60,248, 826,912;
h_4 140,288, 3,653,632, 268,009,472 / 2184, 33,184, 572,960 (n / d^2 = 0.53, 0.51, 0.55) / 22,272, 375,680, censored.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import pandas as pd

from reprjax.bench.harness import matmul_roofline
from reprjax.methods import sgd_protocols, sgd_runs
from reprjax.studies import sgd_exponents


def medians(name: str, d: int, seeds: int) -> dict[str, float]:
    """Median samples to ``|m| >= 0.5`` for online, smoothed and smoothed at ``lambda^-k`` times its step."""
    target = sgd_exponents.spec(name).build(jax.random.key(0), d)
    k, _ = sgd_runs.target_exponents(target)
    lam = d**0.25
    keys = jax.random.split(jax.random.key(7), seeds)
    out = {}
    for label, protocol, shrink in (("online", "online", 1.0), ("smoothed", "smoothed", 1.0),
                                    ("smoothed_small_step", "smoothed", lam ** -min(k, 2))):
        cfg = sgd_runs.SGDConfig(protocol=protocol, eta_scale=0.5 * shrink, budget=64.0,
                                 max_batch=8192 if protocol == "online" else 64, max_batches=200_000, records=8)
        run = jax.jit(jax.vmap(lambda key, cfg=cfg: sgd_runs.simulate(key, target, cfg)))(keys)
        n, ok = np.asarray(run.recovery_n), np.asarray(run.recovered)
        out[label] = float(np.median(n)) if ok.mean() >= 0.5 else float("nan")
    n_th = sgd_protocols.theory_samples("smoothed", k, k, d)[0]
    kappa_k = (1.0 + lam**2) ** (min(k, 2) / 2)
    return dict(target=name, k=k, d=d, **out,
                small_step_over_online_per_kappa_k=out["smoothed_small_step"] / out["online"] / kappa_k,
                **{f"{key}_per_n_th": out[key] / n_th for key in ("online", "smoothed", "smoothed_small_step")})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--dims", default="64,256,1024")
    args = parser.parse_args()
    print(f"roofline before: {matmul_roofline()['gflops']:.1f} GFLOP/s float32 matmul")
    t0 = time.perf_counter()
    rows = [medians(name, int(d), args.seeds) for name in ("tanh", "he2", "he3", "he4")
            for d in args.dims.split(",")]
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print(f"{time.perf_counter() - t0:.0f} s; roofline after: {matmul_roofline()['gflops']:.1f} GFLOP/s")
