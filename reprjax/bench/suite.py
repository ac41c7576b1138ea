"""The benchmarks of the harness (:mod:`reprjax.bench.harness`), each ``(roofline, quick, repeats) -> rows``.

FLOP counts are of what each program performs (:mod:`reprjax.bench.flops`).  ``reprjax bench`` without ``--only``
runs every benchmark except those of :data:`EXPLICIT_ONLY` (the issue's acceptance rows, tens of minutes each), which
run only when named: ``reprjax bench --only falkon_acceptance``.
"""
from __future__ import annotations

import statistics
import sys
import textwrap
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.bench import first_layer_training as bench_multistep
from reprjax.bench import algorithm1_large_d as bench_streaming
from reprjax.bench import entk_forms
from reprjax.sweep import host_threads
from reprjax.kernels import empirical as kernels
from reprjax.solvers import ridge
from reprjax.problem import targets
from reprjax.bench.kernel_scale import bench_falkon, bench_falkon_acceptance, bench_kernel_scale
from reprjax.bench.flops import entk_closed_flops, entk_generic_flops, one_step_flops, solve_flops
from reprjax.bench.harness import PeakMemory, result, run_subprocess, time_call
from reprjax.maths.chunking import chunked_sum

Row = dict[str, Any]


# ------------------------------------------------------------------------------------------------ benchmarks
def bench_first_step(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    n, d, m = (32768, 128, 512) if quick else (262144, 512, 1024)
    chunk = 16384
    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    x = jax.random.normal(jax.random.key(1), (n, d), jnp.float32)
    y = jnp.tanh(x[:, 0]) * x[:, 1]
    step = jax.jit(lambda p, x, y: algorithm.first_layer_step(p, x, y, jnp.sqrt(d * 1.0), chunk=chunk))
    with PeakMemory() as mem:
        times = time_call(step, params, x, y, repeats=repeats)
    flops = 2 * 2.0 * n * m * d
    return [result("first_step", times, flops, roofline, mem, n=n, d=d, m=m,
                   notes=f"2 products of 2nmd performed (issue convention 3: {1.5 * flops / 1e9:.0f} GFLOP)")]


def bench_ridge(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    n, d, m = (32768, 128, 512) if quick else (262144, 512, 1024)
    chunk, lambdas = 16384, tuple(np.geomspace(1e-6, 1e-1, 10))
    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    params = params.replace(b=jax.random.normal(jax.random.key(2), (m,)))
    x = jax.random.normal(jax.random.key(1), (n, d), jnp.float32)
    y = jnp.tanh(x[:, 0]) * x[:, 1]
    rows = []

    def gram(p, x, y):
        def moments(xc, yc):
            phi = network.features(p, xc)
            return phi.T @ phi, phi.T @ yc

        return chunked_sum(moments, (x, y), chunk)

    g_fn = jax.jit(gram)
    with PeakMemory() as mem:
        times = time_call(g_fn, params, x, y, repeats=repeats)
    flops = 2.0 * n * m * d + 2.0 * n * m * m + 2.0 * n * m
    rows.append(result("ridge_gram", times, flops, roofline, mem, n=n, d=d, m=m,
                       notes=f"features + 2nm^2 Gram (issue convention n m^2: {n * m * m / 1e9:.0f} GFLOP)"))
    G, c = g_fn(params, x, y)
    for solver in ("eigh", "cholesky"):
        solve = jax.jit(lambda G, c, s=solver: ridge.ridge_from_gram(G, c, jnp.float32(n), lambdas, s).coef)
        with PeakMemory() as mem:
            times = time_call(solve, G, c, repeats=repeats)
        rows.append(result(f"ridge_solve_{solver}_10_strengths", times, solve_flops(m, 10, solver), roofline, mem,
                           m=m, notes="precision refined (ridge.py docstring)"))
    return rows


def bench_entk(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    n, d, m = (512, 64, 1024) if quick else (2048, 64, 4096)
    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    x = jax.random.normal(jax.random.key(1), (n, d), jnp.float32)
    x_copy = x + 0.0  # a distinct array: the plain path
    sym = jax.jit(lambda p, u: kernels.entk_two_layer(p, u))
    plain = jax.jit(lambda p, u, v: kernels.entk_two_layer(p, u, v))
    with PeakMemory() as mem:
        t_sym = time_call(sym, params, x, repeats=repeats)
    f_sym, nominal = entk_closed_flops(n, n, m, d, kernels.ROW_BLOCK)
    with PeakMemory() as mem_p:
        t_plain = time_call(plain, params, x, x_copy, repeats=repeats)
    f_plain, _ = entk_closed_flops(n, n, m, d, None)

    def apply_fn(p, u):
        return network.forward(p, u, "relu")

    gen = jax.jit(lambda p, u: kernels.entk(apply_fn, p, u, block_size=kernels.JACOBIAN_BLOCK))
    with PeakMemory() as mem_g:
        t_gen = time_call(gen, params, x, repeats=max(1, min(repeats, 3)))
    n_params = m * (d + 2)
    f_gen = entk_generic_flops(n, kernels.JACOBIAN_BLOCK, n_params)
    agree = float(jnp.max(jnp.abs(gen(params, x) - sym(params, x))) / jnp.max(jnp.abs(sym(params, x))))
    speed = statistics.median(t_gen) / statistics.median(t_sym)
    return [
        result("entk_closed_symmetric", t_sym, f_sym, roofline, mem, n=n, d=d, m=m,
               nominal_flops=nominal, notes=f"upper block triangle; {nominal / statistics.median(t_sym) / 1e9:.0f} "
                                            f"GFLOP/s on the nominal 2n^2(2m+d)"),
        result("entk_closed_plain", t_plain, f_plain, roofline, mem_p, n=n, d=d, m=m, notes="x1 != x2"),
        result("entk_generic", t_gen, f_gen, roofline, mem_g, n=n, d=d, m=m, speed_ratio=speed,
               flop_ratio=n_params / (2 * m + d), max_rel_diff=agree,
               notes=f"closed is {speed:.1f}x faster; FLOP ratio P/(2m+d) = {n_params / (2 * m + d):.1f}"),
    ]


def bench_kernel_ridge(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    n, d, m = (4096, 64, 1024) if quick else (16384, 64, 1024)
    lambdas = tuple(np.geomspace(1e-5, 1e0, 10))
    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    x = jax.random.normal(jax.random.key(1), (n, d), jnp.float32)
    y = jnp.tanh(x[:, 0]) * x[:, 1]
    build = jax.jit(lambda p, u: kernels.entk_two_layer(p, u))
    with PeakMemory() as mem_k:
        t_k = time_call(build, params, x, repeats=max(1, min(repeats, 3)))
    K = build(params, x)
    f_k, _ = entk_closed_flops(n, n, m, d, kernels.ROW_BLOCK)
    solver = ridge.pick_solver(n, len(lambdas))
    solve = jax.jit(lambda K, y: ridge.kernel_ridge_path(K, y, lambdas, solver=solver).coef)
    with PeakMemory() as mem_s:
        t_s = time_call(solve, K, y, repeats=max(1, min(repeats, 3)))
    return [result("kernel_ridge_gram", t_k, f_k, roofline, mem_k, n=n, d=d, m=m),
            result(f"kernel_ridge_solve_{solver}_10", t_s, solve_flops(n, 10, solver), roofline, mem_s, n=n,
                   notes=f"total {statistics.median(t_k) + statistics.median(t_s):.1f} s; precision refined")]


SMALL = dict(d=16, n=2048, m=256, strengths=10)


def _small_config(solver: str = "auto") -> algorithm.Algorithm1Config:
    return algorithm.Algorithm1Config(n=SMALL["n"], network=network.NetworkConfig(width=SMALL["m"]),
                                      lambdas=tuple(np.geomspace(1e-6, 1e-1, SMALL["strengths"])), solver=solver)


_FORCED_DEVICES = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import json, time
    import jax
    from jax.sharding import NamedSharding, PartitionSpec
    from reprjax import sweep
    from reprjax.methods import algorithm1 as algorithm
    from reprjax.problem import targets
    from reprjax.sweep import host_threads
    from reprjax.bench.suite import _small_config
    cfg = _small_config({solver!r})
    t = targets.paper_target(jax.random.key(0), 16)
    mesh = jax.sharding.Mesh(jax.devices(), ("runs",))
    keys = jax.device_put(jax.random.split(jax.random.key(1), {batch}), NamedSharding(mesh, PartitionSpec("runs")))
    f = sweep.sharded_program(lambda k: algorithm.train_one_step(k, t, cfg), mesh)
    with host_threads.blas_threads({blas}):
        jax.block_until_ready(f(keys))
        times = []
        for _ in range({repeats}):
            t0 = time.perf_counter(); jax.block_until_ready(f(keys)); times.append(time.perf_counter() - t0)
    print(json.dumps(dict(times=times, devices=len(jax.devices()))))
""")


def bench_sweep(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    """Small configurations per second: a loop of jitted runs, vmap, 4 forced host devices, and the engine."""
    import tempfile

    from reprjax import sweep

    batch = 16 if quick else 64
    target = targets.paper_target(jax.random.key(0), SMALL["d"])
    keys = jax.random.split(jax.random.key(1), batch)
    rows = []

    def row(name: str, times: list[float], solver: str, mem: PeakMemory | None, extra: str = "") -> Row:
        flops = one_step_flops(SMALL["n"], SMALL["d"], SMALL["m"], SMALL["strengths"], solver=solver)
        rate = batch / statistics.median(times)
        issue = flops["issue_convention"] * rate / 1e9
        return result(name, times, flops["performed"] * batch, roofline, mem, configs_per_s=rate, batch=batch,
                      issue_convention_fraction=issue / roofline["gflops"],
                      notes=f"{rate:.0f} configs/s; issue-convention FLOPs {issue:.1f} GFLOP/s "
                            f"({issue / roofline['gflops']:.0%}){extra}")

    for solver, precision in (("auto", "refined"), ("eigh", "refined"), ("eigh", "float64"), ("cholesky", "float32")):
        cfg = _small_config(solver).replace(precision=precision)
        single = jax.jit(algorithm.train_one_step)
        batched = jax.jit(jax.vmap(algorithm.train_one_step, in_axes=(0, None, None)))
        split = jax.jit(host_threads.looped(lambda k, c=cfg: algorithm.train_one_step(k, target, c)))
        paths = (("vmap", lambda k, c=cfg: batched(k, target, c)),)
        if solver == "auto":
            paths = (("loop", lambda ks, c=cfg: [single(k, target, c) for k in ks]),
                     ("threads", lambda ks: host_threads.run_split(split, (ks,)))) + paths
        for name, fn in paths:
            with PeakMemory() as mem:
                times = time_call(fn, keys, repeats=repeats)
            rows.append(row(f"sweep_{name}_{solver}_{precision}", times, solver, mem))
    for blas, label in ((None, "openblas_threads"), (1, "openblas_1_thread")):
        forced = run_subprocess(_FORCED_DEVICES.format(solver="auto", batch=batch, repeats=repeats, blas=blas), {})
        rows.append(row(f"sweep_4_host_devices_{label}", forced["times"], "auto", None,
                        f"; {forced['devices']} forced host devices, per-device lax.map (subprocess)"))
    # the sweep engine on the same configurations: targets drawn per seed inside the program, rows written to disk
    grid = sweep.Grid(methods=("algorithm1",), dims=(SMALL["d"],), n=(SMALL["n"],), widths=(SMALL["m"],),
                      seeds=batch, hyper=(("lambdas", (tuple(np.geomspace(1e-6, 1e-1, SMALL["strengths"])),)),
                                          ("n_test", (1,))))
    engine_times, report = [], None
    for _ in range(max(3, min(repeats, 5)) + 1):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = sweep.run_sweep(grid, tmp, progress=False)
            engine_times.append(time.perf_counter() - t0)
    rows.append(row("sweep_engine_auto", engine_times[1:], "auto", None,
                    f"; run_sweep, execution {report.execution}, with a 1-sample test evaluation and disk writes"))
    return rows


def bench_large(roofline: dict[str, Any], quick: bool, repeats: int) -> list[Row]:
    d, m = (128, 512) if quick else (512, 1024)
    n = d * d
    target = targets.giant_step(jax.random.key(0), d).normalise()
    cfg = algorithm.Algorithm1Config(n=n, network=network.NetworkConfig(width=m), n_test=10_000)
    run = jax.jit(algorithm.run)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        first = jax.block_until_ready(run(jax.random.key(1), target, cfg))
        t_first = time.perf_counter() - t0
        times = time_call(run, jax.random.key(1), target, cfg, repeats=max(1, repeats), warmup=0)
    flops = one_step_flops(n, d, m, len(cfg.lambdas))["performed"] + 2.0 * 10_000 * m * d
    return [result("large_end_to_end", times, flops, roofline, mem, n=n, d=d, m=m, first_call_s=t_first,
                   test_nmse=float(first.test_nmse),
                   notes=f"first call (compile + run) {t_first:.1f} s; test NMSE {float(first.test_nmse):.3f}")]


BENCHMARKS = {
    "first_step": bench_first_step,
    "ridge": bench_ridge,
    "entk": bench_entk,
    "kernel_ridge": bench_kernel_ridge,
    "sweep": bench_sweep,
    "large": bench_large,
    "kernel_scale": bench_kernel_scale,
    "falkon": bench_falkon,
    "falkon_acceptance": bench_falkon_acceptance,
    "online_sgd": bench_multistep.bench_online_sgd,
    "fresh_gd": bench_multistep.bench_fresh_gd,
    "streaming": bench_streaming.bench_streaming,
    "entk_blocks": entk_forms.bench_entk_blocks,
    "entk_jacobian": entk_forms.bench_entk_jacobian,
}


#: Benchmarks left out of a run without ``--only`` (each takes tens of minutes on 2 cores); name them to run them.
EXPLICIT_ONLY = ("falkon_acceptance",)


def default_selection(argv: list[str]) -> list[str]:
    """``argv`` with ``--only <every benchmark but EXPLICIT_ONLY>`` added when it names none (and asks no help)."""
    argv = list(argv)
    named = any(a == "--only" or a.startswith("--only=") for a in argv)
    if named or "-h" in argv or "--help" in argv:
        return argv
    return [a for a in argv if a != "--"] + ["--only"] + [name for name in BENCHMARKS if name not in EXPLICIT_ONLY]


def main(argv: list[str] | None = None, **options: Any) -> int:
    """``reprjax bench``: the harness (:func:`reprjax.bench.harness.main`, given ``options``) over
    :data:`BENCHMARKS`, without those of :data:`EXPLICIT_ONLY` unless ``--only`` names them."""
    from reprjax.bench.harness import main as harness

    return harness(default_selection(sys.argv[1:] if argv is None else argv), BENCHMARKS, **options)
