"""Benchmark: closed-form two-layer eNTK vs this machine's matmul FLOP/s and vs the generic Jacobian eNTK.

Run:  python benchmarks/bench_kernels.py [--quick] [--out bench_out/entk.json] [--sweep] [--no-kernel-ridge]

In one process it measures
  1. dense float32 matmul FLOP/s: jitted square 2048^3 and a matmul shaped like the eNTK's blocks; the faster of the
     two is the reference (so the fraction below is never flattered by a slow baseline);
  2. the closed form ``kernels.entk_two_layer`` at n = 2048, d = 64, m = 4096 with x1 = x2 (symmetric path: upper
     block triangle only) and with x2 a distinct copy (plain path), with explicit matmul FLOP counts of what each
     actually performs (elementwise work is not counted) and the achieved fraction of the reference FLOP/s;
  3. the generic ``kernels.entk`` (per-sample gradients + Jacobian contraction) on the same symmetric problem, the
     speed ratio closed/generic and the FLOP ratio P / (2m + d), P = m (d + 2).
  4. kernel ridge at n = 16,384: the eNTK Gram matrix (d = 64, m = 1024) built and solved for a 10-strength grid
     (time and peak memory; ``reprjax.bench_suite.bench_kernel_ridge``), unless ``--no-kernel-ridge``.
``--quick`` shrinks the problem (n = 512, m = 1024, fewer repeats); ``--sweep`` also times a grid of block sizes.
Prints a table and writes JSON.  Timings are medians over repeats after a warm-up (compilation) call, each ended
by ``block_until_ready``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

import jax
import jax.numpy as jnp

from reprjax import kernels, network
from reprjax.bench_suite import bench_kernel_ridge
from reprjax.benchmarking import time_call
from reprjax.bench_suite import entk_closed_flops as closed_form_flops
from reprjax.bench_suite import entk_generic_flops as generic_flops


def timeit(fn, *args, repeats: int = 5) -> tuple[float, list[float]]:
    """Median wall time of ``fn(*args)`` after one warm-up call (the harness's ``time_call``)."""
    times = time_call(fn, *args, repeats=repeats)
    return statistics.median(times), times


def matmul_rate(shape: tuple[int, int, int], repeats: int) -> dict:
    n, k, p = shape
    a = jax.random.normal(jax.random.key(0), (n, k), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (k, p), jnp.float32)
    t, times = timeit(jax.jit(lambda u, v: u @ v), a, b, repeats=repeats)
    flops = 2.0 * n * k * p
    return {"shape": list(shape), "seconds": t, "times": times, "flops": flops, "gflops": flops / t / 1e9}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problem, fewer repeats (smoke test)")
    parser.add_argument("--sweep", action="store_true", help="also time a grid of block sizes")
    parser.add_argument("--out", default="bench_out/entk.json")
    parser.add_argument("--no-kernel-ridge", action="store_true", help="skip the n = 16,384 kernel ridge part")
    args = parser.parse_args(argv)

    n, d, m = (512, 64, 1024) if args.quick else (2048, 64, 4096)
    repeats = 3 if args.quick else 7
    block, rows, jblock = kernels.HIDDEN_BLOCK, kernels.ROW_BLOCK, kernels.JACOBIAN_BLOCK

    load_start = os.getloadavg()
    mm_square = matmul_rate((2048, 2048, 2048), repeats)
    mm_block = matmul_rate((min(rows, n), min(block, m), n), repeats)
    ref = max(mm_square["gflops"], mm_block["gflops"])

    params = network.init_symmetric(jax.random.key(0), d, network.NetworkConfig(width=m))
    x = jax.random.normal(jax.random.key(1), (n, d), jnp.float32)
    x_copy = x + 0.0  # a distinct array: takes the plain (non-symmetric) path

    sym_fn = jax.jit(lambda p, u: kernels.entk_two_layer(p, u))  # x2 omitted: symmetric Gram
    plain_fn = jax.jit(lambda p, u, v: kernels.entk_two_layer(p, u, v))
    t_sym, times_sym = timeit(sym_fn, params, x, repeats=repeats)
    t_plain, times_plain = timeit(plain_fn, params, x, x_copy, repeats=repeats)
    f_sym, nominal = closed_form_flops(n, n, m, d, rows)
    f_plain, _ = closed_form_flops(n, n, m, d, None)
    k_sym = sym_fn(params, x)

    # generic eNTK on the same symmetric problem
    def apply_fn(p, u):
        return network.forward(p, u, "relu")

    gen_fn = jax.jit(lambda p, u: kernels.entk(apply_fn, p, u, block_size=jblock))
    n_gen = n
    gen_repeats = 1 if args.quick else 3
    t_gen, times_gen = timeit(gen_fn, params, x[:n_gen], repeats=gen_repeats)
    # how the Jacobian block is formed: per-sample gradients (what kernels.entk uses) vs jacrev of the batch
    xb = x[: min(jblock, n)]
    per_sample = jax.jit(jax.vmap(jax.grad(lambda p, xi: apply_fn(p, xi[None])[0]), in_axes=(None, 0)))
    batch_jacrev = jax.jit(lambda p, u: jax.jacrev(apply_fn)(p, u))
    t_vg, _ = timeit(per_sample, params, xb, repeats=3)
    t_jr, _ = timeit(batch_jacrev, params, xb, repeats=1)
    k_gen = gen_fn(params, x[:n_gen])
    agree = float(jnp.max(jnp.abs(k_gen - k_sym[:n_gen, :n_gen])) / jnp.max(jnp.abs(k_sym)))
    n_params = m * (d + 2)
    f_gen = generic_flops(n_gen, min(jblock, n_gen), n_params)
    scale = (n / n_gen) ** 2  # generic time scales like n^2 (1 when n_gen == n)
    t_gen_scaled = t_gen * scale

    # the reference again at the end: a shared machine whose load changed mid-run gives unreliable ratios
    mm_end = matmul_rate((2048, 2048, 2048), repeats)
    drift = abs(mm_end["gflops"] / mm_square["gflops"] - 1.0)
    load_end = os.getloadavg()

    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "jax": jax.__version__, "backend": jax.default_backend(),
                    "device": str(jax.devices()[0])},
        "problem": {"n": n, "d": d, "m": m, "quick": args.quick, "hidden_block": block, "row_block": rows,
                    "jacobian_block": jblock, "repeats": repeats},
        "matmul": {"square": mm_square, "block_shaped": mm_block, "reference_gflops": ref,
                   "square_at_end": mm_end, "drift": drift},
        "load_average": {"start": load_start, "end": load_end},
        "closed_symmetric": {"seconds": t_sym, "times": times_sym, "flops_performed": f_sym,
                             "flops_nominal": nominal, "gflops_performed": f_sym / t_sym / 1e9,
                             "fraction_of_matmul": f_sym / t_sym / 1e9 / ref,
                             "gflops_effective_nominal": nominal / t_sym / 1e9},
        "closed_plain": {"seconds": t_plain, "times": times_plain, "flops_performed": f_plain,
                         "gflops_performed": f_plain / t_plain / 1e9,
                         "fraction_of_matmul": f_plain / t_plain / 1e9 / ref},
        "generic": {"n_timed": n_gen, "seconds": t_gen, "times": times_gen, "seconds_scaled_to_n": t_gen_scaled,
                    "scaled": n_gen != n, "flops_contraction": f_gen, "gflops": f_gen / t_gen / 1e9,
                    "params": n_params, "max_rel_diff_vs_closed": agree,
                    "jacobian_block_seconds": {"rows": int(xb.shape[0]), "vmap_grad": t_vg, "jacrev_batch": t_jr}},
        "ratios": {"closed_over_generic_speed": t_gen_scaled / t_sym,
                   "closed_plain_over_generic_speed": t_gen_scaled / t_plain,
                   "flop_ratio_P_over_2m_plus_d": n_params / (2 * m + d)},
    }

    if args.sweep:
        sweep = []
        for hb in (256, 512, 1024, 2048, 4096):
            if hb > m:
                continue
            for rb in (256, 512, 1024, 2048):
                if rb > n:
                    continue
                fn = jax.jit(lambda p, u, hb=hb, rb=rb: kernels.entk_two_layer(p, u, block_size=hb,
                                                                                 row_block_size=rb))
                t, _ = timeit(fn, params, x, repeats=3)
                f, _ = closed_form_flops(n, n, m, d, rb)
                sweep.append({"hidden_block": hb, "row_block": rb, "seconds": t, "gflops": f / t / 1e9})
                print(f"  sweep hidden_block={hb:5d} row_block={rb:5d}: {t*1e3:8.1f} ms  {f/t/1e9:7.1f} GFLOP/s")
        result["sweep"] = sweep

    cs, cp, g, r = result["closed_symmetric"], result["closed_plain"], result["generic"], result["ratios"]
    lines = [
        f"eNTK benchmark  n={n} d={d} m={m}  ({result['machine']['device']}, {os.cpu_count()} cpus, "
        f"jax {jax.__version__})",
        f"{'what':44s} {'time':>10s} {'GFLOP':>9s} {'GFLOP/s':>9s} {'of matmul':>9s}",
        f"{'matmul 2048^3':44s} {mm_square['seconds']*1e3:8.1f}ms {mm_square['flops']/1e9:9.2f} "
        f"{mm_square['gflops']:9.1f} {'':>9s}",
        f"{'matmul ' + 'x'.join(map(str, mm_block['shape'])):44s} {mm_block['seconds']*1e3:8.1f}ms "
        f"{mm_block['flops']/1e9:9.2f} {mm_block['gflops']:9.1f} {'':>9s}",
        f"{'closed form, x1 = x2 (upper strips)':44s} {t_sym*1e3:8.1f}ms {f_sym/1e9:9.2f} "
        f"{cs['gflops_performed']:9.1f} {cs['fraction_of_matmul']:9.1%}",
        f"{'closed form, x1 != x2 (plain, 2n^2(2m+d))':44s} {t_plain*1e3:8.1f}ms {f_plain/1e9:9.2f} "
        f"{cp['gflops_performed']:9.1f} {cp['fraction_of_matmul']:9.1%}",
        f"{'generic (per-sample grads), x1 = x2':44s} {t_gen*1e3:8.1f}ms {f_gen/1e9:9.2f} {g['gflops']:9.1f} "
        f"{g['gflops']/ref:9.1%}",
        f"reference matmul rate {ref:.1f} GFLOP/s; closed form (symmetric) effective rate on the nominal "
        f"2n^2(2m+d) = {nominal/1e9:.1f} GFLOP: {cs['gflops_effective_nominal']:.1f} GFLOP/s",
        f"closed/generic speed ratio: {r['closed_over_generic_speed']:.1f}x (both symmetric; plain closed form: "
        f"{r['closed_plain_over_generic_speed']:.1f}x); FLOP ratio P/(2m+d) = {r['flop_ratio_P_over_2m_plus_d']:.1f}"
        + (f"; generic timed at n={n_gen}, scaled by (n/n_gen)^2" if g["scaled"] else ""),
        f"max |generic - closed| / max |closed| = {agree:.2e}",
        f"Jacobian of {xb.shape[0]} rows: vmap(grad) {t_vg*1e3:.1f} ms vs jacrev of the batch {t_jr*1e3:.1f} ms "
        f"(kernels.entk uses the former)",
        f"matmul 2048^3 at the end: {mm_end['gflops']:.1f} GFLOP/s (drift {drift:.0%}); load average "
        f"{load_start[0]:.2f} -> {load_end[0]:.2f}",
    ]
    if drift > 0.15:
        lines.append("WARNING: the matmul rate changed by more than 15% during the run (other load on the machine?); "
                     "rerun on an idle machine before trusting the fractions and ratios")
    if not args.no_kernel_ridge:
        roofline = {"gflops": ref}
        kr = bench_kernel_ridge(roofline, quick=args.quick, repeats=1)
        result["kernel_ridge"] = kr
        total = sum(row["seconds"] for row in kr)
        lines.append(f"kernel ridge n={kr[0]['n']}: Gram {kr[0]['seconds']:.1f} s ({kr[0]['roofline_fraction']:.0%} "
                     f"of matmul), solve over 10 strengths ({kr[1]['name']}) {kr[1]['seconds']:.1f} s, total "
                     f"{total:.1f} s; peak memory above start {max(r['peak_memory_gib'] for r in kr):.2f} GiB")
    print("\n".join(lines))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
