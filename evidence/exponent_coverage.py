"""Coverage of the exponent intervals (slope of n* and collapse) on synthetic tables with a known exponent.

Tables: ``err = min(1, x0 d^a / n)`` on the studies' grid ``n = c d^2`` (c = 0.25 .. 32, 8 points), 3 seeds, a
seed-level and a point-level log-normal noise of 0.15 (tests/test_exponents.py, ``power_law_table``).  For each
scenario: the share of 95% intervals that hold the true exponent (with its binomial standard error), the median
width, the mean and SD of the estimates, and how often a slope could be fitted.  docs/measurements.md, "Exponent
intervals: coverage", quotes its output.  Then the cost of one family's exponents at the studies' default
(``bootstrap = 1000``: 1000 resamples for the slope, 250 per dim for the collapse), beside the float32 matmul roofline
measured in the same run.  Usage: ``python evidence/exponent_coverage.py [tables] [boot] [seeds]`` (``tables = 0``: the
cost only; ``seeds`` other than 3: the coverage only, e.g. at the transfer study's 2 seeds: docs/transfer.md; a
fourth argument ``all`` adds the transfer grid's scenarios, :data:`TRANSFER_SCENARIOS`).
"""

import statistics
import sys
import time

import math

import numpy as np
import pandas as pd

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
#: The transfer study's grid (docs/transfer.md): N = 32 .. 4096 for every d (not c d^2), d = 16 .. 256, a shallow
#: exponent; then the same with curves that steepen with d (``bend``: the error to the power 1 + bend log2(d / 16)),
#: which do not fall on one curve (misfit ~ the transfer run's), the truth being the noise-free table's exponents.
TRANSFER_GRID = dict(dims=(16, 32, 64, 128, 256), grid_power=0.0, multiples=32.0 * 2.0 ** np.arange(8), x0=18.75)
TRANSFER_SCENARIOS = {
    "transfer grid: a=0.5, d=16..256, N=32..4096": dict(a_true=0.5, **TRANSFER_GRID),
    "transfer grid, curves steepen with d (bend 0.2)": dict(a_true=0.5, bend=0.2, **TRANSFER_GRID),
    "transfer grid, curves steepen with d (bend 0.3)": dict(a_true=0.5, bend=0.3, **TRANSFER_GRID),
}


def bent_table(rng: np.random.Generator, a_true: float, dims: tuple[int, ...], seeds: int = 3, sigma: float = 0.15,
               x0: float = 1.0, grid_power: float = 2.0, multiples: np.ndarray = np.ones(1), bend: float = 0.0,
               method: str = "m") -> pd.DataFrame:
    """``power_law_table`` (tests/test_exponents.py) with the error of dim ``d`` raised to ``1 + bend log2(d /
    dims[0])``: the curves steepen with ``d`` and no exponent puts them on one curve (``bend = 0``: one curve)."""
    rows = []
    for d in dims:
        k = 1.0 + bend * math.log2(d / dims[0])
        shift = sigma * rng.standard_normal(seeds)
        for c in multiples:
            n = int(round(c * d**grid_power))
            for s in range(seeds):
                err = min(1.0, x0 * d**a_true / n) ** k * math.exp(shift[s] + sigma * rng.standard_normal())
                rows.append(dict(method=method, target="t", d=d, n=n, width=16, seed=s, test_nmse=err, status="ok",
                                 error=None))
    return pd.DataFrame(rows)


def _table(rng: np.random.Generator, seeds: int, kw: dict) -> pd.DataFrame:
    return bent_table(rng, seeds=seeds, **kw) if "bend" in kw else power_law_table(rng, seeds=seeds, **kw)


def truth(kw: dict) -> tuple[float, float]:
    """The exponents the intervals should hold: ``a_true`` for a power law; for bent curves, the slope and the
    collapse of the noise-free table (what the estimators converge to with many seeds)."""
    if "bend" not in kw:
        return kw["a_true"], kw["a_true"]
    df = bent_table(np.random.default_rng(0), seeds=1, **{**kw, "sigma": 0.0})
    return (float(exponents.bootstrap_exponent(df, "m", 0.25, n_boot=0)["exponent"]),
            float(collapse.bootstrap_collapse(curves_of(df), n_boot=0)["collapse"]))


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


def main(tables: int = 200, boot: int = 200, seeds: int = 3, scenarios: dict | None = None) -> None:
    roofline = harness.matmul_roofline()
    print(f"matmul roofline {roofline['gflops']:.1f} GFLOP/s (float32 {roofline['size']}^3); {seeds} seeds")
    rng = np.random.default_rng(2026)
    for name, kw in ((SCENARIOS if scenarios is None else scenarios).items() if tables else ()):
        start = time.perf_counter()
        a, a_collapse = truth(kw)
        slope_hits, slope_w, slope_est, coll_hits, coll_w, coll_est, bad = [], [], [], [], [], [], []
        for i in range(tables):
            df = _table(rng, seeds, kw)
            s = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=boot, seed=i)
            if np.isfinite(s["exponent"]):
                slope_hits.append(s["low"] <= a <= s["high"])
                slope_w.append(s["high"] - s["low"])
                slope_est.append(s["exponent"])
            c = collapse.bootstrap_collapse(curves_of(df), n_boot=boot // 2, seed=i)
            if np.isfinite(c["collapse"]):
                coll_hits.append(c["collapse_low"] <= a_collapse <= c["collapse_high"])
                bad.append(c["collapse_misfit"])
                coll_w.append(c["collapse_high"] - c["collapse_low"])
                coll_est.append(c["collapse"])
        print(f"{name} ({time.perf_counter() - start:.0f} s; truth: slope {a:.3f}, collapse {a_collapse:.3f}; "
              f"median misfit {np.nanmedian(bad) if bad else math.nan:.2f})")
        for label, hits, w, est in (("slope   ", slope_hits, slope_w, slope_est),
                                    ("collapse", coll_hits, coll_w, coll_est)):
            if hits:
                print(f"  {label} coverage {_share(hits)}  median width {np.median(w):.3f}  "
                      f"estimate {np.mean(est):.3f} (SD {np.std(est):.3f})  fitted {len(hits)}/{tables}")
            else:
                print(f"  {label} never fitted")
        sys.stdout.flush()
    if seeds != 3:  # the misfit percentiles and the cost are quoted at the studies' 3 seeds
        return
    misfits()
    cost()
    roofline = harness.matmul_roofline()
    print(f"matmul roofline at the end {roofline['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    args = [int(v) for v in sys.argv[1:4]]
    main(*args, scenarios={**SCENARIOS, **TRANSFER_SCENARIOS} if sys.argv[4:5] == ["all"] else None)
