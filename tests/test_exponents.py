"""Exponents that say what they know: the collapse of every point finds the exponent the curves share, intervals
cover at the studies' 3 seeds, censored resamples are kept (and open the interval) rather than dropped, a fit over a
subset of dims is never stated as the exponent where the bound of all dims contradicts it, and every study prints a
missing fit as "not fitted (k of K dims resolved)" with the unresolved dims and their bounds."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.report import collapse, exponent_text, exponents, tables
from reprjax.studies import beyond_one_step

#: The studies' grid of sample counts: ``n = c d^2`` (sample_complexity's ``n_over_d2``).
MULTIPLES = 0.25 * 2.0 ** np.arange(8)


def power_law_table(rng, a_true=2.0, dims=(16, 32, 64), seeds=3, sigma=0.15, x0=None, grid_power=2.0,
                    multiples=MULTIPLES, method="m", se=0.0):
    """Errors ``F(n / d^a_true) = min(1, x0 d^a_true / n)`` on the grid ``n = c d^grid_power``, times a seed-level
    log-normal shift (shared by a seed's whole curve at one ``d``, as a seed's target and test set are) and
    point-level log-normal noise.  The seed-mean curve crosses 0.25 near ``n* = 4 x0 d^a_true``.  ``x0`` defaults
    to twice the smallest ``d^(grid_power - a_true)`` so that every curve leaves the plateau inside the grid.  With
    ``se`` > 0 rows carry ``test_nmse_se = se * error``."""
    if x0 is None:
        x0 = 2.0 * min(float(d) ** (grid_power - a_true) for d in dims)
    rows = []
    for d in dims:
        shift = sigma * rng.standard_normal(seeds)
        for c in multiples:
            n = int(round(c * d**grid_power))
            for s in range(seeds):
                err = min(1.0, x0 * d**a_true / n) * math.exp(shift[s] + sigma * rng.standard_normal())
                rows.append(dict(method=method, target="t", d=d, n=n, width=16, seed=s, test_nmse=err, status="ok",
                                 error=None, **(dict(test_nmse_se=se * err) if se else {})))
    return pd.DataFrame(rows)


def curves_of(df):
    """``(d, ns, values, test_var)`` per dim, as :func:`reprjax.report.collapse.bootstrap_collapse` takes them."""
    return [(d, *tables.seed_matrix(sub)) for d, sub in df.groupby("d")]


def _log_curves(df):
    cur = curves_of(df)
    return ([np.log(ns) for _, ns, _, _ in cur], np.log([float(d) for d, *_ in cur]),
            [np.log(np.nanmean(v, axis=0))[None, :] for _, _, v, _ in cur])


@settings(max_examples=8, deadline=None)
@given(a_true=st.floats(1.0, 4.0), dims=st.sampled_from([(16, 32, 64), (8, 16, 32, 64), (8, 16, 32, 64, 128)]))
def test_collapse_of_noise_free_curves_finds_the_exponent_they_share(a_true, dims):
    log_ns, log_dims, log_errors = _log_curves(power_law_table(np.random.default_rng(0), a_true, dims, sigma=0.0))
    a, edge = collapse.fit_collapse(log_ns, log_dims, log_errors)
    assert edge[0] == 0 and abs(a[0] - a_true) < 0.02
    loss = collapse.collapse_loss(np.array([a_true, a_true + 0.5, 40.0]), log_ns, log_dims, log_errors)[0]
    # (not 0 at a_true: interpolating across the plateau's kink between grid points is not exact)
    assert loss[0] < 0.1 * loss[1] and loss[2] == np.inf  # no overlap at all: unlinked, not a perfect collapse


def test_collapse_interval_covers_a_known_exponent_at_three_seeds():
    """a = 3 on the studies' n = c d^2 grid, d = 16, 32, 64, 3 seeds: 40 tables (docs/measurements.md, "Exponent
    intervals: coverage", for the large run)."""
    rng = np.random.default_rng(7)
    hits, widths = [], []
    for i in range(40):
        out = collapse.bootstrap_collapse(curves_of(power_law_table(rng, a_true=3.0)), n_boot=60, seed=i)
        assert out["collapse_dims"] == 3 and math.isfinite(out["collapse"])
        hits.append(out["collapse_low"] <= 3.0 <= out["collapse_high"])
        widths.append(out["collapse_high"] - out["collapse_low"])
    assert np.mean(hits) >= 0.85
    assert np.median(widths) < 1.0  # an interval, not the whole line


def test_censored_resamples_are_kept_at_their_bound_and_open_the_interval():
    # a = 2.2 on the d^2 grid: n*(64) sits just inside the grid, so many resamples of d = 64 do not cross
    df = power_law_table(np.random.default_rng(3), a_true=2.2, x0=3.05)
    out = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=200)
    assert out["dims_resolved"] == 3 and math.isfinite(out["exponent"])
    assert out["unresolved"] > 0.025 and out["high"] == math.inf and math.isfinite(out["low"])
    out["answer"] = exponents.answer(out)
    line = exponent_text.slope_text(pd.Series(out))
    assert "inf)" in line and "kept at their bounds" in line


def test_a_subset_fit_that_contradicts_the_bound_of_all_dims_is_not_the_exponent():
    df = power_law_table(np.random.default_rng(4), a_true=2.0, dims=(8, 16, 32, 64))
    df.loc[df["d"] >= 32, "test_nmse"] = 1.0  # the two largest dims never learn: n* > n_max there
    out = exponents.family_exponents(df, "m", 0.25, n_boot=40)
    assert out["dims_resolved"] == 2 and out["bound_kind"] == "lower" and out["exponent"] < out["bound"]
    assert out["answer"] == "bound"
    line = exponent_text.exponent_lines(pd.DataFrame([out]))[0]
    stated = line.split("slope of n*: ")[1]
    assert stated.startswith(f"exponent >= {out['bound']:.3g}") and "is not the exponent" in stated
    assert "d=32: n* > " in stated and "d=64: n* > " in stated


def _not_fitted_summary(config_dims):
    df = power_law_table(np.random.default_rng(5), a_true=2.0, dims=config_dims, x0=1e3)  # never below 0.25
    exps = exponents.exponent_table(df, 0.25, n_boot=20)
    return df, exps


def test_every_study_prints_a_missing_fit_as_not_fitted_with_the_unresolved_dims():
    from reprjax.report import crossings
    from reprjax.studies import sample_complexity, transfer

    dims = (16, 32, 64)
    df, exps = _not_fitted_summary(dims)
    curves, n_star = tables.error_curves(df), crossings.n_star_table(df, 0.25)
    status = tables.run_status(df)
    texts = {
        "beyond": beyond_one_step.report({"h3": dict(baseline=1.0, threshold=0.25, curves=curves,
                                                     exponents=exps.assign(theory="2"), **status)},
                                         beyond_one_step.Config(dims=dims)),
        "sample": sample_complexity.report(dict(curves=curves, n_star=n_star.assign(threshold=0.25),
                                                exponents=exps.assign(threshold=0.25), plateaus={}, **status),
                                           sample_complexity.Config(dims=dims)),
        "transfer": transfer.report(dict(curves=curves, n_star=n_star, exponents=exps, **status),
                                    transfer.Config(dims=dims)),
    }
    for name, text in texts.items():
        assert "not fitted (0 of 3 dims resolved)" in text, name
        assert all(f"d={d}: n* > " in text for d in dims), name
        assert "never" not in text and "nan" not in text, name


def test_failed_runs_leave_finite_intervals_and_one_seed_prints_no_interval():
    rng = np.random.default_rng(6)
    df = power_law_table(rng)
    df["status"] = np.where(rng.random(len(df)) < 0.2, "failed", "ok")  # resamples where every run at an n failed
    out = exponents.family_exponents(df, "m", 0.25, n_boot=100)
    assert all(math.isfinite(out[k]) for k in ("exponent", "low", "high", "collapse", "collapse_low", "collapse_high"))
    lines = exponent_text.exponent_lines(exponents.exponent_table(power_law_table(rng, seeds=1), 0.25, n_boot=20))
    assert "nan" not in "\n".join(lines) and "(no interval: fewer than 2 seeds)" in lines[0]


def test_curves_that_do_not_collapse_are_flagged_by_their_misfit():
    rng = np.random.default_rng(8)
    good = power_law_table(rng, sigma=0.05)
    bent = good.assign(test_nmse=np.where(good["d"] == 64, good["test_nmse"] ** 2.0, good["test_nmse"]))  # steeper
    fits = {name: exponents.family_exponents(df, "m", 0.25, n_boot=20) for name, df in (("good", good),
                                                                                        ("bent", bent))}
    assert fits["good"]["collapse_misfit"] < collapse.MISFIT_LIMIT < fits["bent"]["collapse_misfit"]
    assert "do not fall on one curve" in exponent_text.collapse_text(pd.Series(fits["bent"]))
    assert "do not fall on one curve" not in exponent_text.collapse_text(pd.Series(fits["good"]))
