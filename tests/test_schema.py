"""The declared results schema: every column of a row is configuration, outcome or bookkeeping, known from the
registry and the run contract, so that grouping never takes a method's outcome for a configuration."""

import dataclasses

import pandas as pd
import pytest

from reprjax import sweep
from reprjax.methods import registry
from reprjax.methods.contract import Metrics
from reprjax.methods.run_config import RunCore
from reprjax.report import tables
from reprjax.studies import sample_complexity


def test_a_first_layer_method_through_the_sample_complexity_analysis_averages_its_seeds(tmp_path):
    config = sample_complexity.Config(dims=(6,), n_over_d2=(8.0,), methods=("one_step",), width=16, seeds=3,
                                      n_test=128, bootstrap=10)
    cheap = (("one_step", (("spectrum_samples", 256),)),)  # the spectrum's Monte Carlo, small: an outcome only
    grid = dataclasses.replace(sample_complexity.grid(config), method_hyper=cheap)
    sweep.run_sweep(grid, tmp_path, progress=False)
    df = sweep.load_results(tmp_path)
    assert {"energy_2", "mean_cosine", "min_best_cosine"} <= set(df.columns)  # per-seed outcomes in the rows
    assert df["energy_2"].nunique() == 3  # they differ from seed to seed
    curves = sample_complexity.summarise(df, config)["curves"]
    assert len(curves) == 1 and int(curves["count"].iloc[0]) == 3  # one curve point, over the three seeds
    assert not {"energy_2", "mean_cosine"} & set(curves.columns)


def test_every_row_column_is_configuration_outcome_or_bookkeeping():
    row = {"method": "one_step", "target": "paper", "d": 8, "n": 64, "width": 16, "seed": 0, "eta_scale": 1.0,
           **{c: 0.5 for c in registry.get_method("one_step").outcome_columns},
           **{c: "x" for c in sweep.grid.ROW_BOOKKEEPING}}
    df = pd.DataFrame([row])
    assert tables.grid_columns(df) == ["method", "target", "d", "n", "width", "eta_scale"]
    assert set(tables.METRICS) == {f.name for f in dataclasses.fields(Metrics)}
    assert set(tables.RUN_BOOKKEEPING) == {"seed", *sweep.grid.ROW_BOOKKEEPING}


def test_a_plugin_methods_declared_outcomes_are_never_grouping_keys(monkeypatch):
    from flax import struct

    @struct.dataclass(kw_only=True)
    class WithMargin(Metrics):
        margin: float

    method = registry.get_method("algorithm1")
    extra = registry.Method("with_margin", method.run, method.make_config, method.config, outcomes=WithMargin)
    monkeypatch.setitem(registry.METHODS, "with_margin", extra)
    df = pd.DataFrame([{"method": "with_margin", "d": 8, "n": 64, "seed": s, "margin": float(s), "test_nmse": 0.1,
                        "status": "ok"} for s in range(3)])
    assert "margin" not in tables.grid_columns(df)
    assert int(tables.error_curves(df)["count"].iloc[0]) == 3


def test_every_method_on_samples_shares_the_run_core_and_every_method_extends_metrics():
    for name, method in sorted(registry.METHODS.items()):
        assert issubclass(method.outcomes, Metrics), name
        config = method.make_config(8, 64, 16, {})
        core = config.head if method.needs_pair else config
        if not hasattr(core, "data"):  # a population simulation draws no samples (e.g. the sgd_* methods)
            continue
        assert isinstance(core, RunCore), name  # the shared fields and checks live once
        with pytest.raises(ValueError, match="val_fraction"):  # one check, one message, for every method
            method.make_config(8, 64, 16, {"val_fraction": 1.5})
