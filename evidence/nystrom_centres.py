"""Nystrom against exact kernel ridge, and the error against the number of centres M (the evidence behind
``reprjax.methods.kernel_ridge.DEFAULT_CENTRES``; results in docs/kernels_at_scale.md, "Nystrom centres").

    python evidence/nystrom_centres.py --d 16 --n 8192 --centres 1024 2048 4096 6553 --seeds 2

Paper target, infinite NTK (bias variance 1) and the empirical NTK of a width-1024 network (same biases), the
default kernel strength grid chosen on the 20% validation split, 10,000 test samples.  Prints one line per run.
"""

from __future__ import annotations

import argparse
import time

import jax

from reprjax import network
from reprjax.methods import kernel_ridge as baselines
from reprjax.problem import targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--centres", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["ntk_infinite", "entk"])
    parser.add_argument("--no-exact", action="store_true")
    args = parser.parse_args()
    target = targets.paper_target(jax.random.key(0), args.d)
    runs = {"ntk_infinite": baselines.ntk_infinite_ridge, "entk": baselines.ntk_empirical}
    solvers = ([("exact", None)] if not args.no_exact else []) + [("nystrom", m) for m in args.centres]
    for method in args.methods:
        for solver, m in solvers:
            config = baselines.KernelConfig(
                n=args.n, network=network.NetworkConfig(width=1024, init_bias_scale=1.0), kernel_solver=solver,
                centres=m or baselines.DEFAULT_CENTRES, exact_n_max=args.n)
            fn = jax.jit(runs[method])
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                out = jax.block_until_ready(fn(jax.random.key(100 + seed), target, config))
                print(f"method={method} d={args.d} n={args.n} solver={solver} centres={m} seed={seed} "
                      f"test_nmse={float(out.test_nmse):.4f} lam={float(out.lam):.3g} "
                      f"seconds={time.perf_counter() - t0:.1f}", flush=True)


if __name__ == "__main__":
    main()
