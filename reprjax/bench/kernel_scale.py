"""Benchmarks of kernel ridge at scale (:mod:`reprjax.solvers.nystrom`): the float64 normal equations against the matmul
rooflines, and infinite-NTK ridge end to end at ``d = 16`` with ``n = 262,144`` (4 strengths) and ``n = 1,048,576``
(one strength).  Registered in :data:`reprjax.bench.suite.BENCHMARKS` as ``kernel_scale``.

FLOP counts: the normal equations perform ``2 n M^2`` (``H``, a float64 product) ``+ 2 n M`` (``b``) ``+ 2 n M d``
(the kernel's inner products; its elementwise arc-cosine work is not counted); the solve two ``M x M`` eigh
(``9 M^3`` each) and ``T^T H T`` (``4 M^3``).  ``H`` is float64 work, so its row gives the fraction of both the
float32 roofline of the harness and a float64 matmul roofline measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp

from reprjax import network
from reprjax.methods import kernel_ridge as baselines
from reprjax.kernels import empirical as kernels
from reprjax.solvers import nystrom
from reprjax.problem import targets
from reprjax.bench.harness import PeakMemory, result, time_call

Row = dict[str, Any]
D = 16


def float64_roofline(size: int = 2048, repeats: int = 3) -> dict[str, Any]:
    """Dense float64 matmul FLOP/s (median over ``repeats`` jitted ``size^3`` products, inside ``enable_x64``)."""
    with jax.enable_x64(True):
        a = jax.random.normal(jax.random.key(0), (size, size), jnp.float64)
        b = jax.random.normal(jax.random.key(1), (size, size), jnp.float64)
        times = time_call(jax.jit(jnp.matmul), a, b, repeats=repeats)
    t = statistics.median(times)
    return dict(name="matmul_roofline_float64", size=size, seconds=t, times=times, flops=2.0 * size**3,
                gflops=2.0 * size**3 / t / 1e9)


def normal_equation_flops(n: int, m: int, d: int) -> float:
    return 2.0 * n * m * m + 2.0 * n * m + 2.0 * n * m * d


def solve_flops(m: int) -> float:
    return 2 * 9.0 * m**3 + 4.0 * m**3


def _kernel(x1: jax.Array, x2: jax.Array) -> jax.Array:
    return kernels.ntk_infinite(x1, x2, bias_var=1.0)


def _end_to_end(name: str, n: int, centres: int, lambdas: tuple[float, ...], roofline: dict[str, Any]) -> Row:
    """One jitted infinite-NTK ridge run (paper target, d = 16, bias variance 1), compile included, one repeat."""
    target = targets.paper_target(jax.random.key(0), D)
    config = baselines.KernelConfig(n=n, n_test=10_000, lambdas=lambdas, centres=centres, kernel_solver="nystrom",
                                    network=network.NetworkConfig(init_bias_scale=1.0), block=4096)
    run = jax.jit(baselines.ntk_infinite_ridge)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = jax.block_until_ready(run(jax.random.key(1), target, config))
        seconds = time.perf_counter() - t0
    n_fit = config.n_fit
    flops = (normal_equation_flops(n_fit, centres, D) + solve_flops(centres)
             + 2.0 * (n - n_fit + 10_000) * centres * (D + len(lambdas)))
    return result(name, [seconds], flops, roofline, mem, n=n, d=D, centres=centres, strengths=len(lambdas),
                  test_nmse=float(out.test_nmse), process_peak_rss_gib=mem.peak / 2**30,
                  notes=f"test NMSE {float(out.test_nmse):.3f}; process peak RSS {mem.peak / 2**30:.1f} GiB; "
                        "compile included")


def bench_kernel_scale(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    """Normal equations against both rooflines; end-to-end Nystrom infinite-NTK ridge at large ``n``."""
    r64 = float64_roofline(1024 if quick else 2048, repeats=max(1, min(repeats, 3)))
    n, m = (16384, 1024) if quick else (65536, 4096)
    x = jax.random.normal(jax.random.key(2), (n, D), jnp.float32)
    y = jnp.tanh(x[:, 0]) * x[:, 1]

    def normal(x, y):
        with jax.enable_x64(True):
            return nystrom.normal_equations(_kernel, x, y, x[:m], block=4096)

    with PeakMemory() as mem:
        times = time_call(jax.jit(normal), x, y, repeats=max(1, min(repeats, 3)))
    flops = normal_equation_flops(n, m, D)
    gflops = flops / statistics.median(times) / 1e9
    rows = [dict(r64, roofline_fraction=1.0, peak_memory_gib=float("nan")),
            result(f"nystrom_normal_equations_M{m}", times, flops, roofline, mem, n=n, centres=m,
                   float64_roofline_fraction=gflops / r64["gflops"],
                   notes=f"float64 H; {gflops / r64['gflops']:.0%} of the float64 roofline "
                         f"({r64['gflops']:.1f} GFLOP/s)")]
    big, huge = (65536, 262144) if quick else (262144, 1048576)
    lambdas4 = (1e-7, 1e-6, 1e-5, 1e-4)
    rows.append(_end_to_end(f"ntk_infinite_nystrom_n{big}_L4", big, m, lambdas4, roofline))
    rows.append(_end_to_end(f"ntk_infinite_nystrom_n{huge}_L1", huge, m, (1e-6,), roofline))
    return rows


__all__ = ["bench_kernel_scale", "float64_roofline", "normal_equation_flops"]
