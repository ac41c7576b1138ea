"""Benchmark harness: wall time, achieved FLOP/s against the same run's matmul roofline, peak memory, device.

Runnable as ``reprjax bench [--only NAME ...] [--quick] [--out DIR]`` and as ``python -m reprjax.cli bench``; the
benchmarks themselves live in :mod:`reprjax.bench.suite` (with those of the other ``reprjax.bench`` modules), each
a function ``(roofline, quick, repeats) -> rows`` handed to :func:`main`.  Every
benchmark reports the median of ``repeats`` (>= 5) timed calls after a warm-up (compilation) call, each ended by
``block_until_ready``; the FLOPs it performs, counted explicitly (matrix products and factorisations; elementwise
work is not counted); the ratio of its FLOP/s to the dense float32 matmul FLOP/s measured in the same process (the
roofline, measured again at the end: a drift over 15% means the machine's load changed and the ratios are not to be
trusted); and its peak memory (device ``peak_bytes_in_use`` on accelerators; on CPU the peak resident set size
above the process's level before the benchmark, sampled every 2 ms).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reprjax.sweep import release_programs

# ------------------------------------------------------------------------------------------------ measurement


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory while active: device ``peak_bytes_in_use`` where the backend reports it, else sampled RSS."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self.device = jax.devices()[0]

    def _device_peak(self) -> int | None:
        stats = self.device.memory_stats() if hasattr(self.device, "memory_stats") else None
        return None if not stats else int(stats.get("peak_bytes_in_use", 0))

    def __enter__(self) -> "PeakMemory":
        self.base = _rss_bytes()
        self.peak = self.base

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, _rss_bytes())
                time.sleep(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def bytes(self) -> int:
        dev = self._device_peak()
        return dev if dev is not None else max(0, self.peak - self.base)


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall times of ``repeats`` calls after ``warmup`` calls, each ended by ``block_until_ready``."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return times


def matmul_roofline(size: int | None = None, repeats: int = 5,
                    shape: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Dense float32 matmul FLOP/s of this device: median over ``repeats`` jitted products.

    Args:
      size: a square ``size^3`` product (default 2048 on CPU, 8192 on accelerators).
      repeats: timed calls after one warm-up call.
      shape: ``(n, k, p)`` for an ``(n x k) @ (k x p)`` product instead, e.g. shaped like a kernel's blocks.

    Returns:
      A row with ``size``, ``shape``, ``seconds`` (median), ``times``, ``flops`` and ``gflops``.
    """
    if shape is None:
        if size is None:
            size = 2048 if jax.devices()[0].platform == "cpu" else 8192
        shape = (size, size, size)
    n, k, p = shape
    a = jax.random.normal(jax.random.key(0), (n, k), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (k, p), jnp.float32)
    times = time_call(jax.jit(jnp.matmul), a, b, repeats=repeats)
    t = statistics.median(times)
    flops = 2.0 * n * k * p
    return dict(name="matmul_roofline", size=n, shape=list(shape), seconds=t, times=times, flops=flops,
                gflops=flops / t / 1e9)


def result(name: str, times: list[float], flops: float, roofline: dict[str, Any], memory: PeakMemory | None,
           **extra: Any) -> dict[str, Any]:
    """One benchmark's row: median time, FLOP/s, fraction of the roofline, peak memory and extras."""
    t = statistics.median(times)
    gflops = flops / t / 1e9 if flops else math.nan
    return dict(name=name, seconds=t, times=times, flops=flops, gflops=gflops,
                roofline_fraction=gflops / roofline["gflops"] if flops else math.nan,
                peak_memory_gib=(memory.bytes / 2**30) if memory is not None else math.nan, **extra)


def device_label() -> str:
    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d.platform)} x{len(jax.devices())}"


# ------------------------------------------------------------------------------------------------ harness
Benchmark = Callable[..., list[dict[str, Any]]]

#: The roofline may drift by this fraction between the start and the end of a run before the report warns.
MAX_DRIFT = 0.15


def print_table(rows: list[dict[str, Any]], roofline: dict[str, Any]) -> None:
    print(f"device {device_label()}; matmul roofline {roofline['gflops']:.1f} GFLOP/s "
          f"(float32 {roofline['size']}^3, median of {len(roofline['times'])})")
    head = f"{'benchmark':38s} {'median s':>10s} {'GFLOP/s':>9s} {'roofline':>9s} {'peak GiB':>9s}  notes"
    print(head)
    print("-" * len(head))
    for r in rows:
        frac = r.get("roofline_fraction", math.nan)
        print(f"{r['name']:38s} {r['seconds']:10.4f} {r.get('gflops', math.nan):9.1f} "
              f"{frac:9.1%} {r.get('peak_memory_gib', math.nan):9.3f}  {r.get('notes', '')}")


def main(argv: list[str] | None, registry: dict[str, Benchmark], prog: str = "reprjax bench",
         parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> int:
    """Parse ``argv``, run the chosen benchmarks of ``registry``, print the table and write ``results.json``.

    Args:
      argv: command-line options (``None``: ``sys.argv``).
      registry: benchmarks by name, each ``(roofline=, quick=, repeats=) -> rows``.
      prog: the program name in the help text.
      parser_class: the argument parser (the command line passes its own, with one-line errors).

    Returns:
      The exit code.
    """
    parser = parser_class(prog=prog, description="reprjax benchmark harness: "
                                     "throughput against the matmul roofline measured in the same run")
    parser.add_argument("--only", nargs="+", choices=sorted(registry),
                        help="benchmarks to run (default: all but the acceptance rows that run only when named, "
                             "reprjax.bench.suite.EXPLICIT_ONLY)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per benchmark (>= 5 for reports)")
    parser.add_argument("--out", default="bench_out", help="directory for results.json (default bench_out)")
    args = parser.parse_args([a for a in (argv or []) if a != "--"] if argv is not None else None)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    load_start = os.getloadavg()
    roofline = matmul_roofline(repeats=max(args.repeats, 5))
    rows: list[dict[str, Any]] = []
    for name in args.only or list(registry):
        print(f"[{name}] ...", flush=True)
        rows.extend(registry[name](roofline=roofline, quick=args.quick, repeats=args.repeats))
        release_programs()  # each benchmark's compiled code freed (docs/measurements.md, memory-map limit)
    print_table(rows, roofline)
    roofline_end = matmul_roofline(size=roofline["size"], repeats=max(args.repeats, 5))
    drift = abs(roofline_end["gflops"] / roofline["gflops"] - 1.0)
    load_end = os.getloadavg()
    print(f"matmul roofline at the end {roofline_end['gflops']:.1f} GFLOP/s (drift {drift:.0%}); load average "
          f"{load_start[0]:.2f} -> {load_end[0]:.2f}")
    if drift > MAX_DRIFT:
        print(f"WARNING: the matmul rate changed by more than {MAX_DRIFT:.0%} during the run (other load on the "
              "machine?); rerun on an idle machine before trusting the roofline fractions")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = dict(device=device_label(), platform=platform.platform(), jax=jax.__version__, roofline=roofline,
                   roofline_end=roofline_end, drift=drift, load_average=dict(start=load_start, end=load_end),
                   benchmarks=rows, quick=args.quick, cpu_count=os.cpu_count(),
                   time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=_jsonable))
    print(f"wrote {out / 'results.json'}")
    return 0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def run_subprocess(code: str, env_extra: dict[str, str], timeout: int = 1800) -> dict[str, Any]:
    """Run ``code`` in a fresh Python (e.g. with forced host devices) and parse the JSON it prints last."""
    env = {**os.environ, **env_extra}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
