"""Coverage of the exponent intervals (slope of n* and collapse) on synthetic tables with a known exponent.

Tables: ``err = min(1, x0 d^a / n)`` on the studies' grid ``n = c d^2`` (c = 0.25 .. 32, 8 points), 3 seeds, a
seed-level and a point-level log-normal noise of 0.15 (tests/test_exponents.py, ``power_law_table``).  For each
scenario: the share of 95% intervals that hold the true exponent (with its binomial standard error), the median
width, the mean and SD of the estimates, and how often a slope could be fitted.  docs/measurements.md, "Exponent
intervals: coverage", quotes its output.  Then the cost of one family's exponents at the studies' default
(``bootstrap = 1000``: 1000 resamples for the slope, 250 per dim for the collapse), beside the float32 matmul roofline
measured in the same run.  Usage: ``python evidence/exponent_coverage.py [tables] [boot]`` (``tables = 0``: the
cost only).
"""

import statistics
import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from test_exponents import curves_of, power_law_table  # noqa: E402

from reprjax.bench import harness  # noqa: E402
from reprjax.report import collapse, exponents  # noqa: E402

SCENARIOS = {
    "a=2, d=16..64": dict(a_true=2.0, dims=(16, 32, 64)),
    "a=3 on the d^2 grid, d=16..64": dict(a_true=3.0, dims=(16, 32, 64)),
    "a=2, d=8..128 (5 dims)": dict(a_true=2.0, dims=(8, 16, 32, 64, 128)),
    "a=3, d=16..128, n* leaves the grid from d = 64": dict(a_true=3.0, dims=(16, 32, 64, 128), x0=1 / 8),
    "a=3, d=16..64, test SE 10% carried in rows": dict(a_true=3.0, dims=(16, 32, 64), sigma=0.1, se=0.1),
}


def _share(hits: list[bool]) -> str:
    p = float(np.mean(hits)) if hits else float("nan")
    return f"{p:.3f} +- {np.sqrt(p * (1 - p) / max(len(hits), 1)):.3f} ({len(hits)})"


def cost(repeats: int = 3) -> None:
    """Seconds of :func:`reprjax.report.exponents.family_exponents` at ``n_boot = 1000`` (median of ``repeats``)."""
    rng = np.random.default_rng(1)
    for dims in ((16, 32, 64), (8, 16, 32, 64, 128)):
        df = power_law_table(rng, dims=dims)
        exponents.family_exponents(df, "m", 0.25, n_boot=1000)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            exponents.family_exponents(df, "m", 0.25, n_boot=1000)
            times.append(time.perf_counter() - start)
        print(f"family_exponents, {len(dims)} dims x 8 n x 3 seeds, n_boot 1000: {statistics.median(times):.2f} s")


def misfits(tables: int = 200) -> None:
    """Percentiles (50, 90, 95, 99, 100) of :func:`reprjax.report.collapse.misfit` at the fit on power-law tables."""
    rng = np.random.default_rng(99)
    for kw in (dict(a_true=2.0), dict(a_true=3.0, dims=(16, 32, 64, 128), x0=1 / 8),
               dict(a_true=2.0, dims=(8, 16, 32, 64, 128))):
        values = [collapse.bootstrap_collapse(curves_of(power_law_table(rng, **kw)), n_boot=0)["collapse_misfit"]
                  for _ in range(tables)]
        print(f"misfit {kw}: percentiles 50/90/95/99/100 {np.percentile(values, [50, 90, 95, 99, 100]).round(2)}")


def main(tables: int = 200, boot: int = 200) -> None:
    roofline = harness.matmul_roofline()
    print(f"matmul roofline {roofline['gflops']:.1f} GFLOP/s (float32 {roofline['size']}^3)")
    rng = np.random.default_rng(2026)
    for name, kw in (SCENARIOS.items() if tables else ()):
        start = time.perf_counter()
        a = kw["a_true"]
        slope_hits, slope_w, slope_est, coll_hits, coll_w, coll_est = [], [], [], [], [], []
        for i in range(tables):
            df = power_law_table(rng, **kw)
            s = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=boot, seed=i)
            if np.isfinite(s["exponent"]):
                slope_hits.append(s["low"] <= a <= s["high"])
                slope_w.append(s["high"] - s["low"])
                slope_est.append(s["exponent"])
            c = collapse.bootstrap_collapse(curves_of(df), n_boot=boot // 2, seed=i)
            if np.isfinite(c["collapse"]):
                coll_hits.append(c["collapse_low"] <= a <= c["collapse_high"])
                coll_w.append(c["collapse_high"] - c["collapse_low"])
                coll_est.append(c["collapse"])
        print(f"{name} ({time.perf_counter() - start:.0f} s)")
        for label, hits, w, est in (("slope   ", slope_hits, slope_w, slope_est),
                                    ("collapse", coll_hits, coll_w, coll_est)):
            if hits:
                print(f"  {label} coverage {_share(hits)}  median width {np.median(w):.3f}  "
                      f"estimate {np.mean(est):.3f} (SD {np.std(est):.3f})  fitted {len(hits)}/{tables}")
            else:
                print(f"  {label} never fitted")
        sys.stdout.flush()
    misfits()
    cost()
    roofline = harness.matmul_roofline()
    print(f"matmul roofline at the end {roofline['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
