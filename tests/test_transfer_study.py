"""Transfer study: one source per (d, source quality, seed) serving every N, at tiny sizes."""

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from reprjax import sweep
from reprjax.methods import algorithm1
from reprjax.methods.registry import get_method
from reprjax.problem import targets
from reprjax.report import collapse
from reprjax.studies import base, transfer, transfer_heads
from reprjax.sweep.execution import run_from_seed

SPEC = sweep.TargetSpec.of("transfer_pair", r=2, p=3)


def _grid(seeds=2, N=(32, 64)):
    return transfer_heads.heads_grid(SPEC, (6,), N, 16, seeds, (2, 4), 128)


def test_learn_first_layer_is_the_first_layer_algorithm1_trains():
    source, _ = targets.transfer_pair(jax.random.key(0), 6, r=2, p=3)
    cfg = get_method("algorithm1").make_config(6, 96, 16, {})
    key = jax.random.key(3)
    full = algorithm1.train_one_step(key, source, cfg).predictor
    only = algorithm1.learn_first_layer(key, source, cfg)
    np.testing.assert_array_equal(np.asarray(only.params.W), np.asarray(full.params.W))
    np.testing.assert_array_equal(np.asarray(only.params.b), np.asarray(full.params.b))
    assert not np.any(np.asarray(only.params.a))  # no head


def test_source_groups_hold_one_seed_and_every_N_of_one_source():
    groups = transfer_heads.source_groups(_grid(seeds=2, N=(32, 48, 64)))
    assert len(groups) == 1 * 2 * 2  # dims x source qualities x seeds
    for g in groups:
        assert len({r["seed"] for r in g.runs}) == 1 and len({r["source_n_over_d2"] for r in g.runs}) == 1
        assert sorted(r["n"] for r in g.runs) == [32, 48, 64]
    assert len({g.group_id for g in groups}) == len(groups)


def test_a_shared_source_gives_the_rows_the_sweep_method_would():
    group = transfer_heads.source_groups(_grid(seeds=1))[0]
    shared = transfer_heads.run_group(group)
    method = get_method("transfer")
    for i, cfg in enumerate(group.configs):
        alone = jax.jit(lambda k, c: run_from_seed(method, SPEC, 6, k, c))(jax.random.key(group.runs[i]["seed"]), cfg)
        for field in ("test_nmse", "val_mse", "alignment", "lam"):
            np.testing.assert_allclose(float(getattr(shared, field)[i]), float(getattr(alone, field)), rtol=1e-4)


def test_heads_resume_and_load_one_row_per_run(tmp_path):
    grid = _grid(seeds=1)
    assert transfer_heads.run_heads(grid, tmp_path, progress=False) == 2
    assert transfer_heads.run_heads(grid, tmp_path, progress=False) == 0  # every source done: nothing reruns
    rows = transfer_heads.load_heads(grid, tmp_path)
    assert len(rows) == len(grid.runs()) and set(rows["status"]) == {"ok"}
    assert set(rows["method"]) == {"transfer"} and set(rows["source_n_over_d2"]) == {2, 4}


def test_by_source_makes_one_family_per_source_quality():
    df = pd.DataFrame(dict(method=["transfer", "transfer", "algorithm1"], source_n_over_d2=[2, 4, np.nan]))
    out = transfer.by_source(df)
    assert list(out["method"]) == [transfer.family_label(2), transfer.family_label(4), "algorithm1"]
    assert "source_n_over_d2" not in out.columns


def test_config_needs_a_comparison_and_counts_head_coefficients():
    with pytest.raises(ValueError, match="methods"):
        transfer.Config(methods=("transfer",))
    assert transfer.head_coefficients(2, 4) == 15 and transfer.head_coefficients(3, 2) == 10


def test_head_preprocess_off_reaches_every_head_config():
    grid = transfer_heads.heads_grid(SPEC, (6,), (32, 64), 16, 1, (2,), 128, head_preprocess=False)
    group = transfer_heads.source_groups(grid)[0]
    assert all(r["preprocess"] is False for r in group.runs)
    assert all(not c.head.preprocess for c in group.configs)


def _full_source_transfer(key, pair, config):
    """The ``transfer`` method before it used ``learn_first_layer``: a whole source network, source head included."""
    source, target = pair
    learned = algorithm1.train_one_step(jax.random.fold_in(key, 1), source, config.source_config(source.d))
    return algorithm1.transfer(key, learned.predictor, target, config.head)


def test_transfer_method_gives_the_full_source_rows_without_fitting_a_source_head(monkeypatch):
    method = get_method("transfer")
    pair = targets.transfer_pair(jax.random.key(0), 6, r=2, p=3)
    cfg = method.make_config(6, 64, 16, dict(source_n_over_d2=2))
    key = jax.random.key(5)
    new, old = method.run(key, pair, cfg), _full_source_transfer(key, pair, cfg)
    assert [f.name for f in dataclasses.fields(new)] == [f.name for f in dataclasses.fields(old)]
    for field in dataclasses.fields(new):
        np.testing.assert_array_equal(np.asarray(getattr(new, field.name)), np.asarray(getattr(old, field.name)),
                                      err_msg=field.name)
    fits = []
    fit_head = algorithm1._fit_head
    monkeypatch.setattr(algorithm1, "_fit_head", lambda *a, **k: fits.append(1) or fit_head(*a, **k))
    method.run(key, pair, cfg)
    assert len(fits) == 1  # the target head only (the full-source path fits two)
    fits.clear()
    _full_source_transfer(key, pair, cfg)
    assert len(fits) == 2


def test_large_preset_builds_its_grids_and_refuses_nothing():
    """examples/transfer_large.toml, dry: the sweep, the heads and every source config are built and checked."""
    path = Path(__file__).parents[1] / "examples" / "transfer_large.toml"
    assert path.read_text().splitlines()[0].startswith("# reprjax run transfer --config examples/transfer_large.toml")
    cfg = base.config_from_dict(transfer.Config, base.load_toml(str(path)), source=str(path))
    assert len(cfg.dims) >= 5 and (min(cfg.dims), max(cfg.dims)) == (16, 512) and cfg.seeds == 3
    assert len(cfg.source_n_over_d2) >= 3 and "transfer" in cfg.methods
    base.checked_grid(transfer, cfg)  # raises ConfigError on anything the sweep or the heads would refuse
    groups = transfer_heads.source_groups(transfer.heads_grid(cfg))
    assert len(groups) == len(cfg.dims) * len(cfg.source_n_over_d2) * cfg.seeds
    assert all(sorted(r["n"] for r in g.runs) == sorted(cfg.N) for g in groups)


def test_checked_grid_refuses_a_source_beyond_int32_rows_before_anything_runs():
    ok = transfer.Config(dims=(512,), N=(32, 64), source_n_over_d2=(8000,), width=16, seeds=1, n_test=128)
    base.checked_grid(transfer, ok)  # 2.1e9 source samples: within int32
    too_many = dataclasses.replace(ok, source_n_over_d2=(10000,))  # 2.6e9: the sweep's own check never sees it
    with pytest.raises(base.ConfigError, match="source_n_over_d2 = 10000 at d = 512"):
        base.checked_grid(transfer, too_many)


def test_collapse_loss_is_continuous_where_a_point_crosses_a_range_end():
    """The transfer grid (the same N at every d): at a = 1/3 the points N = 64 of d = 256 and N = 2048 of d = 32
    sit on the ends of the other curve's range; a plain count of the points inside jumps there and pinned the
    transfer run's collapse at 0.33 with an interval of width 0.01 (docs/transfer.md, "The collapse interval at 2
    seeds")."""
    ns = 32.0 * 2.0 ** np.arange(8)
    rng = np.random.default_rng(0)
    ys = [np.log(np.minimum(1.0, 300.0 / ns))[None, :] + 0.2 * rng.standard_normal((1, 8)) for _ in range(2)]
    for a0 in (1 / 3, 2 / 3):
        loss = collapse.collapse_loss(a0 + np.array([-1e-7, 1e-7]), [np.log(ns)] * 2, np.log([32.0, 256.0]), ys)[0]
        assert np.all(np.isfinite(loss)) and abs(loss[1] - loss[0]) < 1e-4 * loss[0]
