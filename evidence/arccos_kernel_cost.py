"""Cost per entry of the infinite-width ReLU NTK on CPU, before and after the polynomial arc-cosine (the evidence
behind :func:`reprjax.kernels.infinite.arccos_parts`; results in docs/kernels_at_scale.md, "Falkon").

    python evidence/arccos_kernel_cost.py --n 2048 --centres 4096 --d 16 --repeats 7

One ``(n, centres)`` float32 block of ``ntk_infinite(x, c, bias_var=1)`` (the kernel of the sample-complexity study)
per timed call, in one process, beside the float32 and float64 matmul rooflines measured at the start and the end:

* ``inner``: the ``x c^T`` product alone (the floor of any dot-product kernel);
* ``arccos``: ``jnp.arccos`` of the clipped, scaled product (the transcendental alone);
* ``atan2``: the NTK with ``theta = arctan2(sqrt(1 - rho^2), rho)`` instead of ``arccos``;
* ``before``: the NTK as it was computed before the polynomial (``theta = jnp.arccos(rho)``, then ``sin theta``
  and ``cos theta``, the step and the NNGP parts each computing the angle);
* ``now``: :func:`reprjax.kernels.infinite.ntk_infinite` (A&S 4.4.46 polynomial, shared angle).

Prints mean +- standard error of the per-entry time over ``repeats`` calls (after one compile call), and the
largest error of each form against the float64 kernel (``jnp.arccos`` in float64) relative to the largest entry.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from reprjax.kernels import infinite


def _before(x1, x2, bias_var=1.0, angle="arccos"):
    """The NTK (all parts, ``a_scale = 1``) as computed before the polynomial: a per-entry ``sqrt`` and division for
    ``rho``, a transcendental for ``theta`` and ``sin``/``cos`` of it."""
    d = x1.shape[-1]
    s11 = jnp.sum(x1 * x1, axis=-1)[:, None] / d + bias_var
    s22 = jnp.sum(x2 * x2, axis=-1)[None, :] / d + bias_var
    dot = x1 @ x2.T
    norm = jnp.sqrt(s11 * s22)
    rho = jnp.clip((dot / d + bias_var) / norm, -1.0, 1.0)
    if angle == "arccos":
        theta = jnp.arccos(rho)
    else:
        theta = jnp.arctan2(jnp.sqrt(jnp.maximum((1.0 - rho) * (1.0 + rho), 0.0)), rho)
    step = (jnp.pi - theta) / (2 * jnp.pi)
    nngp = norm * (jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta)) / (2 * jnp.pi)
    return (dot + 1.0) * step + nngp


def _roofline(dtype, size: int = 2048, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    mm = jax.jit(jnp.matmul)
    jax.block_until_ready(mm(a, a))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a, a))
        times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--centres", type=int, default=4096)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), (args.n, args.d), jnp.float32)
    c = jax.random.normal(jax.random.key(2), (args.centres, args.d), jnp.float32)
    forms = {
        "inner": lambda u, v: u @ v.T,
        "arccos": lambda u, v: jnp.arccos(jnp.clip(u @ v.T / (2.0 * u.shape[-1]), -1.0, 1.0)),
        "atan2": lambda u, v: _before(u, v, angle="atan2"),
        "before": _before,
        "now": lambda u, v: infinite.ntk_infinite(u, v, bias_var=1.0),
    }
    with jax.enable_x64(True):
        reference = np.asarray(infinite.ntk_infinite(np.asarray(x, np.float64), np.asarray(c, np.float64),
                                                     bias_var=1.0))
        r64_start = _roofline(jnp.float64)
    r32_start = _roofline(jnp.float32)
    print(f"matmul roofline at the start: float32 {r32_start:.1f} GFLOP/s, float64 {r64_start:.1f} GFLOP/s")
    entries = args.n * args.centres
    for name, form in forms.items():
        fn = jax.jit(form)
        out = jax.block_until_ready(fn(x, c))
        per_entry = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(x, c))
            per_entry.append((time.perf_counter() - t0) / entries * 1e9)
        mean, se = statistics.mean(per_entry), statistics.stdev(per_entry) / np.sqrt(len(per_entry))
        err = ""
        if name in ("atan2", "before", "now"):
            gap = np.abs(np.asarray(out, np.float64) - reference).max() / np.abs(reference).max()
            err = f"; max error vs float64 {gap:.2e}"
        print(f"{name:8s} {mean:7.2f} +- {se:.2f} ns per entry (median {statistics.median(per_entry):.2f}){err}",
              flush=True)
    with jax.enable_x64(True):
        r64_end = _roofline(jnp.float64)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"matmul roofline at the end: float32 {_roofline(jnp.float32):.1f} GFLOP/s, float64 {r64_end:.1f} "
          f"GFLOP/s; load average {load}")


if __name__ == "__main__":
    main()
