"""Benchmark rows for Algorithm 1 at large ``d`` with streamed samples (``reprjax bench``, harness
:mod:`reprjax.bench.harness`): one jitted ``algorithm.run`` at ``n = d^2``, width 1024, the giant-step target.

Each run is a fresh Python process (:func:`reprjax.bench.harness.run_subprocess`) so that its peak memory is its own:
the process's maximum resident set (``getrusage``), compilation included.  FLOPs are those the run performs in
matrix products (first step ``2 x 2 n m d``; features of every sample ``2 n m d``; Gram ``2 n_fit m^2``; ridge
solve; validation and test predictions), not counting the random draws (the stream draws the inputs about 3.2
times: label moments, first step, Gram matrix, validation rows).
"""

from __future__ import annotations

from typing import Any

from reprjax.solvers import ridge
from reprjax.bench.harness import result, run_subprocess

Row = dict[str, Any]

_RUN = """
import json, resource, time, jax
from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.problem import targets
d, n, m, samples, n_test = {d}, {n}, {m}, {samples!r}, {n_test}
t = targets.giant_step(jax.random.key(0), d).normalise()
cfg = algorithm.Algorithm1Config(n=n, network=network.NetworkConfig(width=m), n_test=n_test, samples=samples)
t0 = time.perf_counter()
compiled = jax.jit(algorithm.run).lower(jax.random.key(1), t, cfg).compile()
t1 = time.perf_counter()
out = jax.block_until_ready(compiled(jax.random.key(1), t, cfg))
t2 = time.perf_counter()
print(json.dumps(dict(compile_s=t1 - t0, run_s=t2 - t1, peak_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      * 1024, test_nmse=float(out.test_nmse), alignment=float(out.alignment))))
"""


def run_flops(n: int, d: int, m: int, strengths: int, n_test: int, val_fraction: float = 0.2) -> float:
    """Matrix-product FLOPs of one ``algorithm.run`` (shared samples, primal ridge, ``auto`` solver)."""
    n_val = max(1, round(val_fraction * n))
    n_fit = n - n_val
    solver = ridge.pick_solver(m, strengths)
    solve = 9.0 * m**3 + 4.0 * m * m + 2.0 * m * m * strengths if solver == "eigh" else \
        strengths * (m**3 / 3.0 + 2.0 * m * m)
    return (2 * 2.0 * n_fit * m * d + 2.0 * n * m * d + 2.0 * n_fit * m * m + solve + 2.0 * n_val * m * strengths
            + 2.0 * n_test * m * d)


def bench_streaming(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    """One run at ``n = d^2`` for ``d = 1024`` and ``d = 2048`` (quick: 128, 256), samples streamed; the
    ``d = 1024`` run also with ``samples="store"`` (inputs drawn once and held) for comparison."""
    m, n_test = 1024, 10_000
    cases = [(128, "stream"), (128, "store"), (256, "stream")] if quick else \
        [(1024, "stream"), (1024, "store"), (2048, "stream")]
    rows = []
    for d, samples in cases:
        n = d * d
        out = run_subprocess(_RUN.format(d=d, n=n, m=m, samples=samples, n_test=n_test), {}, timeout=4 * 3600)
        flops = run_flops(n, d, m, len(ridge.DEFAULT_LAMBDAS), n_test)
        row = result(f"algorithm1_{samples}_d{d}_n_d2", [out["run_s"]], flops, roofline, None, n=n, d=d, m=m,
                     samples=samples, compile_s=out["compile_s"], test_nmse=out["test_nmse"],
                     notes=f"one run in a fresh process; peak = max RSS with compilation; compile "
                           f"{out['compile_s']:.1f} s; test NMSE {out['test_nmse']:.3f}")
        row["peak_memory_gib"] = out["peak_bytes"] / 2**30
        rows.append(row)
    return rows
