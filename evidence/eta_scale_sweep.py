"""Choose Algorithm 1's step-size constant: eta_1 = eta_scale * sqrt(d) (paper init, a = +-1).

Sweeps eta_scale over a grid for the paper target (r = 2, p = 4) at d in {16, 32} and n in {8 d^2, 32 d^2},
m = 1024, seeds vmapped, and prints the mean normalised test MSE of each cell.  The constant in
``reprjax.methods.algorithm1.DEFAULT_ETA_SCALE`` is the grid value with the lowest error averaged over the cells.

Run: python evidence/eta_scale_sweep.py [--seeds 4]

Measured on 2 CPU cores (2026-11-25, 5 minutes), mean normalised test MSE over 4 seeds:

    d             16            32
    n_over_d2     8      32     8      32
    eta_scale
    0.25       0.356  0.138  0.203  0.117
    0.50       0.278  0.073  0.149  0.064
    1.00       0.254  0.065  0.162  0.062
    2.00       0.357  0.102  0.283  0.124
    4.00       0.500  0.231  0.419  0.278
    mean over cells: 0.204, 0.141, 0.136, 0.217, 0.357  ->  eta_scale = 1
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import pandas as pd

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.problem import targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--grid", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 32])
    args = parser.parse_args()
    rows = []
    run = jax.jit(jax.vmap(algorithm.run, in_axes=(0, 0, None)))
    for d in args.dims:
        for mult in (8, 32):
            n = mult * d * d
            keys = jax.random.split(jax.random.key(d * 1000 + mult), args.seeds)
            tgt = jax.vmap(lambda k: targets.paper_target(k, d))(jax.random.split(jax.random.key(7), args.seeds))
            for eta in args.grid:
                cfg = algorithm.Algorithm1Config(n=n, network=network.NetworkConfig(width=1024), eta_scale=eta)
                t0 = time.perf_counter()
                out = jax.block_until_ready(run(keys, tgt, cfg))
                rows.append(dict(d=d, n=n, n_over_d2=mult, eta_scale=eta, nmse=float(np.mean(out.test_nmse)),
                                 nmse_sd=float(np.std(out.test_nmse)), seconds=time.perf_counter() - t0))
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.pivot_table(index="eta_scale", columns=["d", "n_over_d2"], values="nmse").round(3))
    best = table.groupby("eta_scale").nmse.mean()
    print("mean over cells:\n", best.round(4))
    print("best eta_scale:", best.idxmin())


if __name__ == "__main__":
    main()
