"""Benchmark harness: wall time, achieved FLOP/s against the same run's matmul roofline, peak memory, device.

Runnable as ``reprjax bench [--only NAME ...] [--quick] [--out DIR]`` and as ``python benchmarks/run.py``.  Every
benchmark reports the median of ``repeats`` (>= 5) timed calls after a warm-up (compilation) call, each ended by
``block_until_ready``; the FLOPs it performs, counted explicitly (matrix products and factorisations; elementwise
work is not counted); the ratio of its FLOP/s to the dense float32 matmul FLOP/s measured in the same process (the
roofline); and its peak memory (device ``peak_bytes_in_use`` on accelerators; on CPU the peak resident set size
above the process's level before the benchmark, sampled every 2 ms).

Benchmarks (``--only`` takes these names):

* ``first_step``: the first-layer gradient step, ``n = 262,144``, ``d = 512``, ``m = 1024`` (chunked).
* ``ridge``: the second-layer Gram matrix and the solve for a 10-strength grid, same sizes.
* ``entk``: closed-form and generic empirical NTK at ``n = 2048``, ``d = 64``, ``m = 4096``.
* ``kernel_ridge``: eNTK Gram at ``n = 16,384`` plus kernel ridge over a 10-strength grid.
* ``sweep``: configurations per second of small runs (``d = 16``, ``n = 2048``, ``m = 256``, one step plus ridge
  over 10 strengths) for a loop of jitted runs, the same runs on one worker thread per core (``threads``),
  ``vmap`` over seeds, and 4 forced host devices (a subprocess), plus what the sweep engine's ``auto`` path runs.
* ``large``: one large configuration end to end (``d = 512``, ``m = 1024``, ``n = 262,144 = d^2``, giant-step
  target, one step plus ridge, test error on 10,000 samples).
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


def matmul_roofline(size: int | None = None, repeats: int = 5) -> dict[str, Any]:
    """Dense float32 matmul FLOP/s of this device: median over ``repeats`` jitted ``size^3`` products."""
    if size is None:
        size = 2048 if jax.devices()[0].platform == "cpu" else 8192
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    times = time_call(jax.jit(jnp.matmul), a, b, repeats=repeats)
    t = statistics.median(times)
    return dict(name="matmul_roofline", size=size, seconds=t, times=times, flops=2.0 * size**3,
                gflops=2.0 * size**3 / t / 1e9)


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
def _registry() -> dict[str, Callable[..., list[dict[str, Any]]]]:
    from reprjax import bench_suite

    return bench_suite.BENCHMARKS


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


def main(argv: list[str] | None = None) -> int:
    registry = _registry()
    parser = argparse.ArgumentParser(prog="reprjax bench", description="reprjax benchmark harness: "
                                     "throughput against the matmul roofline measured in the same run")
    parser.add_argument("--only", nargs="+", choices=sorted(registry), help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per benchmark (>= 5 for reports)")
    parser.add_argument("--out", default="bench_out", help="directory for results.json (default bench_out)")
    args = parser.parse_args([a for a in (argv or []) if a != "--"] if argv is not None else None)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    roofline = matmul_roofline(repeats=max(args.repeats, 5))
    rows: list[dict[str, Any]] = []
    for name in args.only or list(registry):
        print(f"[{name}] ...", flush=True)
        rows.extend(registry[name](roofline=roofline, quick=args.quick, repeats=args.repeats))
    print_table(rows, roofline)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = dict(device=device_label(), platform=platform.platform(), jax=jax.__version__, roofline=roofline,
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
