"""The beyond-one-step study: thresholds from exact coefficients, a tiny end-to-end smoke run, and the figures."""

import jax
import numpy as np
import pandas as pd
import pytest

from reprjax import link_targets, methods, multistep_methods as mm, plot_dynamics, sweep, targets
from reprjax.experiments import base, beyond_one_step as study

MULTI = {"one_step": mm.one_step_config, "gd_reuse": mm.gd_reuse_config, "gd_fresh": mm.gd_fresh_config,
         "online_sgd": mm.online_sgd_config}


def test_the_presets_and_the_link_target_are_registered():
    """The study runs through the real registry: the multi-step presets and the sweep's ``link`` target."""
    for name, make in MULTI.items():
        assert methods.METHODS[name].make_config is make
    assert sweep.TARGETS["link"] is link_targets.link_target


def test_baselines_come_from_exact_hermite_coefficients():
    assert study.baseline_error("he3") == pytest.approx(1.0)
    assert study.baseline_error("staircase") == pytest.approx(2.0 / 3.0, abs=1e-6)  # z1 + z1 z2 + z1 z2 z3
    sign3 = link_targets.link_target(jax.random.key(0), 8, "sign3").expansion(1)
    assert study.baseline_error("sign3") == pytest.approx(1.0, abs=10 * sign3.error + 1e-9)


def test_config_rejects_unknown_targets_naming_them():
    with pytest.raises(ValueError, match="targets"):
        study.Config(targets=("he7",))


def test_tiny_study_runs_end_to_end(tmp_path):
    config = study.Config(dims=(8,), targets=("he3",), methods=("algorithm1", "one_step", "online_sgd"),
                          n_multiples=(3.0,), width=16, seeds=2, n_test=256, bootstrap=10, reuse_steps=2,
                          online_batch=16)
    df, _ = base.run_experiment(study, config, tmp_path / "out", progress=False)
    assert set(df["method"]) == set(config.methods) and (df["status"] == "ok").all()
    summary = study.summarise(df, config)
    assert summary["he3"]["threshold"] == pytest.approx(0.5)
    assert (summary["he3"]["curves"]["count"] == config.seeds).all()  # seeds averaged, never split by outcomes
    text = study.report(summary, config)
    assert "he3" in text and "Ben Arous" in text
    files = study.plot(df, config, tmp_path / "figs")
    assert any("energy_he3" in str(f) for f in files) and all(f.exists() for f in files)


def test_trajectory_figure_from_rows_with_list_fields(tmp_path):
    target = targets.single_index(jax.random.key(0), 8, 2)
    config = mm.gd_reuse_config(8, 200, 8, dict(n_test=64, spectrum_samples=32, record_every=1, lambdas=(1e-2,),
                                                solver="cholesky", precision="float32"))
    run = jax.jit(mm.run)
    rows = []
    for seed in range(2):
        out = run(jax.random.key(seed), target, config)
        rows.append(dict(method=f"seed {seed}", status="ok",
                         **{k: np.asarray(v).tolist() for k, v in vars(out).items()}))
    files = plot_dynamics.trajectories_vs_step(pd.DataFrame(rows), tmp_path / "traj")
    assert all(f.exists() and f.stat().st_size > 0 for f in files)
