"""Coverage of the exponent intervals (slope of n* and collapse) on synthetic tables with a known exponent.

Tables: ``err = min(1, x0 d^a / n)`` on the studies' grid ``n = c d^2`` (c = 0.25 .. 32, 8 points), 3 seeds, a
seed-level and a point-level log-normal noise of 0.15 (tests/test_exponents.py, ``power_law_table``).  For each
scenario: the share of 95% intervals that hold the true exponent (with its binomial standard error), the median
width, the mean and SD of the estimates, and how often a slope could be fitted.  docs/measurements.md, "Exponent
intervals: coverage", quotes its output.  Usage: ``python evidence/exponent_coverage.py [tables] [boot]``.
"""

import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from test_exponents import curves_of, power_law_table  # noqa: E402

from reprjax.report import collapse, exponents  # noqa: E402

SCENARIOS = {
    "a=2, d=16..64": dict(a_true=2.0, dims=(16, 32, 64)),
    "a=3 on the d^2 grid, d=16..64": dict(a_true=3.0, dims=(16, 32, 64)),
    "a=2, d=8..128 (5 dims)": dict(a_true=2.0, dims=(8, 16, 32, 64, 128)),
    "a=3, d=16..128, n* leaves the grid at d >= 32": dict(a_true=3.0, dims=(16, 32, 64, 128), x0=1 / 8),
    "a=3, d=16..64, test SE 10% carried in rows": dict(a_true=3.0, dims=(16, 32, 64), sigma=0.1, se=0.1),
}


def _share(hits: list[bool]) -> str:
    p = float(np.mean(hits)) if hits else float("nan")
    return f"{p:.3f} +- {np.sqrt(p * (1 - p) / max(len(hits), 1)):.3f} ({len(hits)})"


def main(tables: int = 200, boot: int = 200) -> None:
    rng = np.random.default_rng(2026)
    for name, kw in SCENARIOS.items():
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


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
