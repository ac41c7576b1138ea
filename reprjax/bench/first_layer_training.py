"""Benchmarks of multi-step first-layer training (rows for ``reprjax bench``, same shape as
:mod:`reprjax.bench.suite`: ``(roofline, quick, repeats) -> rows``).

* :func:`bench_online_sgd`: online SGD, many small steps (``b = 8``) at ``d = 512``, ``m = 1024``: the step is
  bound by reading and writing ``W`` (``m d`` floats), not by FLOPs, so the row also reports time per step and the
  bytes of ``W`` moved per second;
* :func:`bench_fresh_gd`: GD with a fresh batch per step (GiantStep), ``T = 8`` steps of ``b = 32,768`` samples at
  ``d = 512``, ``m = 1024``: matmul-bound, compared with the roofline.

FLOPs per step: forward ``x W^T`` and the reverse product ``delta^T x``: ``2 x 2 b m d`` (elementwise work not
counted).  Only the first-layer scan is timed (no data drawing, no head).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from reprjax.methods import first_layer as flt
from reprjax import network
from reprjax.bench.harness import PeakMemory, result, time_call

Row = dict[str, Any]


def _scan_row(name: str, d: int, m: int, T: int, b: int, scaling: str, roofline: dict[str, Any],
              repeats: int) -> Row:
    net = network.NetworkConfig(width=m, output_scale="mean")
    config = flt.FirstLayerTrainingConfig(n=T * b + 1, val_fraction=1e-9, network=net, mode="fresh", steps=T,
                                          scaling=scaling, weight_decay=0.0)
    params = network.init_symmetric(jax.random.key(0), d, net)
    x = jax.random.normal(jax.random.key(1), (T * b, d), jnp.float32)
    y = jnp.tanh(x[:, 0]) * x[:, 1]
    eta = jnp.float32(config.eta(d))
    train = jax.jit(lambda p, x, y: flt.train_first_layer(p, x, y, eta, config)[0])
    with PeakMemory() as mem:
        times = time_call(train, params, x, y, repeats=repeats)
    flops = T * 2 * 2.0 * b * m * d
    best = min(times)
    return result(name, times, flops, roofline, mem, d=d, m=m, steps=T, batch=b,
                  us_per_step=1e6 * best / T, w_gib_per_s=3 * 4.0 * m * d * T / best / 2**30,
                  notes="first-layer scan only; W read twice and written once per step (w_gib_per_s)")


def bench_online_sgd(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    """Online SGD: many small steps (``b = 8``), ``d = 512``, ``m = 1024`` (quick: ``d = 128``, ``m = 256``)."""
    d, m, T = (128, 256, 512) if quick else (512, 1024, 2048)
    return [_scan_row("online_sgd", d, m, T, 8, "online", roofline, repeats)]


def bench_fresh_gd(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    """GD with a fresh batch per step: ``T = 8`` steps of ``b = 32,768``, ``d = 512``, ``m = 1024`` (quick: ``b =
    4096``, ``d = 128``, ``m = 256``)."""
    d, m, b = (128, 256, 4096) if quick else (512, 1024, 32768)
    return [_scan_row("fresh_gd", d, m, 8, b, "giant_step", roofline, repeats)]
