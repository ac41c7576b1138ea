"""eNTK forms on the harness: the closed form over block sizes, and how a Jacobian block of the generic eNTK is formed.

* ``entk_blocks``: the closed form over a grid of hidden and row block sizes, each row also against a matmul
  shaped like its blocks (the fraction is then never flattered by a slow square reference);
* ``entk_jacobian``: per-sample gradients (what :func:`reprjax.kernels.empirical.entk` uses) against ``jacrev`` of
  the batch.

The evidence they gave for the kernels' block sizes is in docs/measurements.md.
"""

from __future__ import annotations

import statistics
from typing import Any

import jax
import jax.numpy as jnp

from reprjax import network
from reprjax.bench.flops import entk_closed_flops
from reprjax.bench.harness import PeakMemory, matmul_roofline, result, time_call
from reprjax.kernels import empirical as kernels


def _problem(quick: bool) -> tuple[Any, jax.Array, int, int, int]:
    n, d, m = (512, 64, 1024) if quick else (2048, 64, 4096)
    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    return params, jax.random.normal(jax.random.key(1), (n, d), jnp.float32), n, d, m


def bench_entk_blocks(roofline: dict[str, Any], quick: bool, repeats: int) -> list[dict[str, Any]]:
    """The symmetric closed-form eNTK for each (hidden block, row block) that fits the problem."""
    params, x, n, d, m = _problem(quick)
    rows = []
    for hb in (256, 512, 1024, 2048, 4096):
        for rb in (256, 512, 1024, 2048):
            if hb > m or rb > n:
                continue
            fn = jax.jit(lambda p, u, hb=hb, rb=rb: kernels.entk_two_layer(p, u, block_size=hb, row_block_size=rb))
            with PeakMemory() as mem:
                times = time_call(fn, params, x, repeats=max(1, min(repeats, 3)))
            flops, _ = entk_closed_flops(n, n, m, d, rb)
            shaped = matmul_roofline(shape=(rb, hb, n), repeats=3)
            share = flops / statistics.median(times) / 1e9 / shaped["gflops"]
            rows.append(result(f"entk_blocks_h{hb}_r{rb}", times, flops, roofline, mem, n=n, d=d, m=m,
                               block_shaped_gflops=shaped["gflops"],
                               notes=f"{share:.0%} of a {rb}x{hb}x{n} matmul ({shaped['gflops']:.0f} GFLOP/s)"))
    return rows


def bench_entk_jacobian(roofline: dict[str, Any], quick: bool, repeats: int) -> list[dict[str, Any]]:
    """A Jacobian block of ``kernels.JACOBIAN_BLOCK`` rows by per-sample gradients and by ``jacrev``."""
    params, x, n, d, m = _problem(quick)
    xb = x[: min(kernels.JACOBIAN_BLOCK, n)]

    def apply_fn(p, u):
        return network.forward(p, u, "relu")

    forms = {"vmap_grad": jax.jit(jax.vmap(jax.grad(lambda p, xi: apply_fn(p, xi[None])[0]), in_axes=(None, 0))),
             "jacrev_batch": jax.jit(lambda p, u: jax.jacrev(apply_fn)(p, u))}
    rows = []
    for name, fn in forms.items():
        with PeakMemory() as mem:
            times = time_call(fn, params, xb, repeats=max(1, min(repeats, 3)))
        rows.append(result(f"entk_jacobian_{name}", times, 0.0, roofline, mem, rows=int(xb.shape[0]), d=d, m=m,
                           notes="kernels.entk uses vmap_grad" if name == "vmap_grad" else ""))
    return rows
