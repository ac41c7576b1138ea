"""Statistics that say what they know: censored n*, exponents over resolved dims, intervals that cover at 3 seeds,
grouping by every grid column, and reports and plots written when some configurations never succeeded."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from reprjax import cli, sweep
from reprjax.report import crossings, exponent_text, exponents
from reprjax.report import tables as analysis
from reprjax.studies import base, sample_complexity


def synthetic_table(rng, exponent=2.0, dims=(8, 16, 32, 64), seeds=3, sigma=0.15, never=(), method="m",
                    start=0.25, **extra):
    """Errors ``min(1, 2 d^k / n)`` times seed-level and point-level log-normal noise on ``n = c d^k``; the
    seed-mean curve crosses 0.25 at ``n* = 8 c' d^k`` (exact power law in ``d``).  Dims in ``never`` stay at 1."""
    rows = []
    for d in dims:
        shift = sigma * rng.standard_normal(seeds)
        for c in start * 2.0 ** np.arange(7):
            n = int(round(c * d**exponent))
            for s in range(seeds):
                err = 1.0 if d in never else min(1.0, 2.0 * d**exponent / n)
                err *= math.exp(shift[s] + sigma * rng.standard_normal())
                rows.append(dict(method=method, target="t", d=d, n=n, width=16, seed=s, test_nmse=err, status="ok",
                                 error=None, **extra))
    return pd.DataFrame(rows)


def test_intervals_cover_a_known_exponent_at_three_seeds():
    """Coverage of the 95% interval on 120 synthetic tables (3 seeds, known exponent 2): at least 0.88."""
    rng = np.random.default_rng(12345)
    hits, widths = [], []
    for i in range(120):
        df = synthetic_table(rng)
        out = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=200, seed=i)
        assert out["dims_resolved"] == 4 and out["seeds"] == 3
        hits.append(out["low"] <= 2.0 <= out["high"])
        widths.append(out["high"] - out["low"])
    assert np.mean(hits) >= 0.88
    assert np.median(widths) < 1.0  # an interval, not the whole line


def test_exponent_is_fitted_over_resolved_dims_only_with_a_one_sided_bound():
    df = synthetic_table(np.random.default_rng(0), never=(64,))
    out = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=100)
    table = crossings.n_star_table(df, 0.25)
    resolved = table[table["censored"] == ""]
    assert list(resolved["d"]) == [8, 16, 32]
    assert out["exponent"] == pytest.approx(exponents.fit_exponent(resolved["d"].values, resolved["n_star"].values))
    assert out["dims_resolved"] == 3 and out["dims_total"] == 4 and "d=64: n* > " in out["unresolved_dims"]
    # d = 64 right of the mean log d, censored above: the slope with n*(64) at n_max is a lower bound
    assert out["bound_kind"] == "lower" and math.isfinite(out["bound"])
    line = "\n".join(exponent_text.exponent_lines(pd.DataFrame([out])))
    assert "3 of 4 dims resolved" in line and "d=64" in line and ">=" in line


def test_a_curve_below_the_threshold_at_its_first_point_is_an_upper_bound_not_a_crossing():
    df = synthetic_table(np.random.default_rng(1), start=64.0)  # every curve starts far below 0.25
    table = crossings.n_star_table(df, 0.25)
    assert (table["censored"] == "below").all() and table["n_star"].isna().all()
    assert all(t.startswith("<= ") for t in table["n_star_text"])
    out = exponents.bootstrap_exponent(df, "m", 0.25, n_boot=50)
    assert math.isnan(out["exponent"]) and out["dims_resolved"] == 0  # never a slope of exactly 0


def test_every_grid_column_groups_and_duplicates_are_not_averaged():
    rng = np.random.default_rng(2)
    df = pd.concat([synthetic_table(rng, dims=(8,)), synthetic_table(rng, dims=(8,)).assign(width=32)])
    curves = analysis.error_curves(df, by=("method", "d", "n"))
    assert "width" in curves.columns and (curves["count"] == 3).all()
    assert len(curves) == 2 * df["n"].nunique()
    wide = analysis.pivot(curves, index=["d", "n"], columns="method")
    assert "width" in wide.index.names and len(wide) == len(curves)
    doubled = pd.concat([df, df.iloc[:1].assign(test_nmse=99.0)])  # a repeated (configuration, seed) row
    again = analysis.error_curves(doubled)
    assert again["duplicates"].sum() == 1 and (again["count"] == 3).all() and again["mean"].max() < 99.0
    table = exponents.exponent_table(pd.concat([synthetic_table(rng), synthetic_table(rng).assign(width=32)]),
                                    0.25, n_boot=20)
    assert sorted(table["width"]) == [16, 32]


def _write_results_dir(out, rows, config):
    out.mkdir()
    extra = dict(experiment=sample_complexity.NAME, config=base.config_dict(config))
    (out / sweep.MANIFEST_FILE).write_text(json.dumps(extra))
    with open(out / sweep.RESULTS_FILE, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _rows_of_the_grid(config, rng, failed_method):
    """A row for every run of the study's grid (its own group ids): errors ``min(1, 2 d^2 / n)`` with noise, runs of
    ``failed_method`` failed."""
    rows = []
    for group in sweep.make_groups(sample_complexity.grid(config)):
        for run in group.runs:
            err = min(1.0, 2.0 * run["d"] ** 2 / run["n"]) * math.exp(0.1 * rng.standard_normal())
            bad = run["method"] == failed_method
            rows.append(dict(run, group_id=group.group_id, group_size=group.size, attempt="a",
                             status="failed" if bad else "ok", test_nmse=None if bad else err,
                             error="LinAlgError: boom" if bad else None))
    return rows


def test_report_and_plot_are_written_when_a_method_never_succeeded(tmp_path, capsys):
    config = sample_complexity.Config(dims=(8, 16, 32), methods=("algorithm1", "entk"), bootstrap=50)
    rows = _rows_of_the_grid(config, np.random.default_rng(3), "entk")
    out = tmp_path / "out"
    _write_results_dir(out, rows, config)
    assert cli.main(["plot", str(out)]) == 0
    report = (out / "report.txt").read_text()
    assert "no successful run" in report and "method=entk" in report and "LinAlgError" in report
    assert "algorithm1" in report and (out / "n_star_vs_d.png").exists()
    assert (out / "collapse_fitted.png").exists()  # the curves against n / d^a at the fitted collapse exponent
    low, high = map(float, re.search(r"collapse: +[0-9.]+ \[([0-9.]+), ([0-9.]+)\]", report).groups())
    assert low <= 2.0 <= high  # rows made with n* ~ d^2
    # every run failed: the report is still written, the figures are skipped
    out2 = tmp_path / "out2"
    _write_results_dir(out2, [dict(r, status="failed", test_nmse=None) for r in rows], config)
    assert cli.main(["plot", str(out2)]) == 0
    assert "no successful run" in (out2 / "report.txt").read_text()
    assert "figures: none" in capsys.readouterr().out


def test_report_counts_runs_whose_strength_sits_at_the_grid_edge():
    rows = [dict(method="k", n=n, status="ok", lam_position=pos, edge_val_drop=drop)
            for n, pos, drop in [(100, 0.0, 0.05), (200, 0.0, 1e-5), (400, 0.5, 0.0), (800, 1.0, 0.02)]]
    rows.append(dict(method="net", n=100, status="ok", lam_position=0.3, edge_val_drop=0.0))
    rows.append(dict(method="k", n=1600, status="failed", lam_position=0.0, edge_val_drop=0.5))  # not counted
    edges = analysis.strength_edges(pd.DataFrame(rows))
    assert list(edges["method"]) == ["k"]  # the network never chose an edge
    row = edges.iloc[0]
    assert (row["runs"], row["smallest"], row["largest"], row["unresolved"]) == (4, 2, 1, 2)
    assert (row["n_min"], row["n_max"]) == (100, 800)  # the levelled-off edge run (n = 200) is resolved
    lines = analysis.failure_lines(analysis.run_status(pd.DataFrame(rows)))
    assert any("k: 2 of 4 runs at the smallest strength, 1 at the largest; unresolved 2 (n 100 to 800)" in line
               for line in lines)
    # rows written before the metric existed: nothing to count, nothing printed
    assert analysis.strength_edges(pd.DataFrame([dict(method="k", n=1, status="ok")])).empty


def _seed_rows(values, ses=None, n=100):
    return [dict(method="m", target="t", d=8, n=n, seed=s, test_nmse=v, status="ok",
                 **({} if ses is None else dict(test_nmse_se=ses[s]))) for s, v in enumerate(values)]


def test_seed_mean_standard_error_is_the_seed_spread_floored_at_the_test_noise():
    spread = _seed_rows([0.50, 0.52, 0.54], ses=[0.01] * 3)  # seed spread 0.02 above the test SE 0.01
    tight = _seed_rows([0.30, 0.3001, 0.3002], ses=[0.05] * 3, n=200)  # seeds agree closer than their test SE
    curves = analysis.error_curves(pd.DataFrame(spread + tight)).set_index("n")
    assert curves.loc[100, "sem"] == pytest.approx(0.02 / math.sqrt(3))
    assert curves.loc[100, "sem_test"] == pytest.approx(0.01 / math.sqrt(3))
    assert curves.loc[200, "sem"] == pytest.approx(0.05 / math.sqrt(3))
    assert curves.loc[200, "sem_seed"] < 1e-3
    assert "test_nmse_se" not in curves.columns  # an outcome's standard error never becomes a grouping key
    old = analysis.error_curves(pd.DataFrame(_seed_rows([0.50, 0.52, 0.54])))  # rows written before the column
    assert old["sem_test"].iloc[0] == 0.0 and old["sem"].iloc[0] == pytest.approx(old["sem_seed"].iloc[0])


def test_log_n_star_standard_error_matches_its_spread_over_replicate_tables():
    """The delta-method SE of log n* (seed covariance of the two bracketing means) against the SD of log n* over 200
    replicate tables with the same law: mean SE^2 / variance within [0.7, 1.4] (about 3 standard errors of the
    ratio, measured SD about 0.1 at 8 seeds: the check's own noise, not the method's, decides the seed count)."""
    rng = np.random.default_rng(11)
    logs, variances = [], []
    for _ in range(200):
        row = crossings.n_star_table(synthetic_table(rng, dims=(16,), seeds=8), 0.25).iloc[0]
        assert row["censored"] == ""
        logs.append(math.log(row["n_star"]))
        variances.append(row["log_n_star_se"] ** 2)
    assert 0.7 < np.mean(variances) / np.var(logs, ddof=1) < 1.4


def test_test_noise_alone_is_propagated_to_n_star_when_the_seeds_agree():
    df = synthetic_table(np.random.default_rng(12), dims=(16,), sigma=0.0)  # no seed spread at all
    table = crossings.n_star_table(df.assign(test_nmse_se=0.1 * df["test_nmse"]), 0.25)
    row = table.iloc[0]
    assert row["log_n_star_se"] > 0 and row["log_n_star_se"] == pytest.approx(row["log_n_star_se_test"])
    assert crossings.n_star_table(df, 0.25).iloc[0]["log_n_star_se"] == 0.0
