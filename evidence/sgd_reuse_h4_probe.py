"""Batch reuse with the ReLU student on ``h_4`` at other steps and passes (docs/sgd_exponents.md, "The default run":
the default's 4 passes at ``eta_scale`` 0.2 stop recovering between ``d = 181`` and 512).

Batches of ``d``, weak recovery ``|m| >= 0.3``, budget ``32 d ln d``, 8 seeds; prints per (step, passes, d) the share
recovered, the median samples (over ``d ln d``) and the median final overlap.

Run: python evidence/sgd_reuse_h4_probe.py

Measured on 2 CPU cores (2026-12-02, 77 s): every setting recovers all seeds at d = 128 (medians 4224-4352, 6.8-7.0
d ln d), 50-75% at d = 256 (18-26 d ln d) and none at d = 512 (median final |m| 0.06-0.08), for eta_scale 0.2, 0.4,
0.8 with 4 passes and 0.2, 0.4 with 8 passes.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from reprjax.methods import sgd_runs
from reprjax.problem import targets

if __name__ == "__main__":
    for eta, passes in [(0.2, 4), (0.4, 4), (0.8, 4), (0.2, 8), (0.4, 8)]:
        for d in (128, 256, 512):
            target = targets.single_index(jax.random.key(0), d, 4)
            cfg = sgd_runs.SGDConfig(protocol="reuse", student="relu", batch_over_d=1.0, passes=passes,
                                     eta_scale=eta, level=0.3, budget=32.0, records=8)
            out = jax.jit(jax.vmap(lambda key, cfg=cfg, target=target: sgd_runs.simulate(key, target, cfg)))(
                jax.random.split(jax.random.key(11), 8))
            n, ok = np.asarray(out.recovery_n), np.asarray(out.recovered)
            med = float(np.median(n)) if ok.mean() >= 0.5 else float("nan")
            print(f"eta_scale {eta} passes {passes} d {d}: recovered {ok.mean():.2f}, median {med:.4g} "
                  f"({med / (d * math.log(d)):.3g} d ln d), median final |m| "
                  f"{np.median(np.asarray(out.final_overlap)):.3f}", flush=True)
