"""T-step first-layer training as one scan: against a Python loop of single steps, a plain numpy implementation,
Algorithm 1 at T = 1, vmap over seeds and step sizes; overlap trajectories; the sweep-facing presets."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.methods import algorithm1 as algorithm
from reprjax.methods import first_layer as flt
from reprjax.methods import first_layer_presets as mm
from reprjax.problem import targets
from reprjax.network import NetworkConfig, init_symmetric
from reprjax.methods.overlaps import overlaps

D, M, N = 12, 16, 256
NET = NetworkConfig(width=M, output_scale="mean")
FAST_HEAD = dict(lambdas=(1e-2,), solver="cholesky", precision="float32")  # compiles quickly


def _problem(seed=0):
    target = targets.paper_target(jax.random.key(seed), D)
    x = jax.random.normal(jax.random.key(seed + 100), (N, D))
    y = target(x)
    params = init_symmetric(jax.random.key(seed + 200), D, NET)
    params = params.replace(b=0.3 * jnp.concatenate([jnp.arange(M // 2), jnp.arange(M // 2)]) / M)
    return target, params, x, y


def _loop(params, x, y, eta, config):
    step = jax.jit(flt.first_layer_update, static_argnums=(5,))
    W, iterates = params.W, [params.W]
    b = config.batch
    for t in range(config.num_steps):
        xb, yb = (x, y) if config.mode == "reuse" else (x[t * b:(t + 1) * b], y[t * b:(t + 1) * b])
        W = step(params.replace(W=W), t, xb, yb, eta, config)
        iterates.append(W)
    return iterates


CASES = [
    dict(mode="reuse", steps=5, scaling="paper"),
    dict(mode="reuse", steps=4, scaling="paper", weight_decay=0.01, schedule="cosine", normalize_rows=True),
    dict(mode="fresh", steps=6, scaling="giant_step", schedule="exponential"),
    dict(mode="fresh", steps=None, batch_size=16, scaling="online", weight_decay=0.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['mode']}-{c['scaling']}")
def test_scan_matches_python_loop_of_single_steps(case):
    target, params, x, y = _problem()
    config = flt.FirstLayerTrainingConfig(n=N + 64, network=NET, **case)
    n_fit = config.n_fit
    x, y = x[:n_fit], y[:n_fit]
    eta = jnp.float32(config.eta(D))
    W_scan, _ = jax.jit(flt.train_first_layer, static_argnums=(4,))(params, x, y, eta, config)
    W_loop = _loop(params, x, y, eta, config)[-1]
    chex.assert_shape(W_scan, (M, D))
    np.testing.assert_allclose(W_scan, W_loop, rtol=2e-5, atol=2e-5 * float(jnp.max(jnp.abs(W_loop))))


def _numpy_relu_training(W, a, b, x, y, etas, lambdas, batches):
    """A second, plain float64 implementation: grad_W mean (f - y)^2 = (2/b) sum_i (f_i - y_i) a_j 1{z_ij >= 0} x_i."""
    W, a, b = (np.asarray(v, np.float64) for v in (W, a, b))
    for eta, lam, rows in zip(etas, lambdas, batches):
        xb, yb = np.asarray(x, np.float64)[rows], np.asarray(y, np.float64)[rows]
        z = xb @ W.T + b
        f = np.maximum(z, 0.0) @ a
        grad = 2.0 / len(rows) * ((f - yb)[:, None] * (z >= 0) * a[None, :]).T @ xb
        W = W - eta * (grad + lam * W)
    return W


@pytest.mark.parametrize("mode", ["reuse", "fresh"])
def test_scan_matches_plain_numpy_implementation(mode):
    target, params, x, y = _problem(1)
    config = flt.FirstLayerTrainingConfig(n=N + 64, network=NET, mode=mode, steps=4, scaling="giant_step")
    n_fit, T, b = config.n_fit, config.num_steps, config.batch
    x, y = x[:n_fit], y[:n_fit]
    eta = float(config.eta(D))
    W_scan, _ = flt.train_first_layer(params, x, y, jnp.float32(eta), config)
    batches = [np.arange(n_fit) if mode == "reuse" else np.arange(t * b, (t + 1) * b) for t in range(T)]
    lambdas = [1.0 / eta] + [0.0] * (T - 1)  # weight_decay=None: the paper's first step
    W_ref = _numpy_relu_training(params.W, params.a, params.b, x, y, [eta] * T, lambdas, batches)
    np.testing.assert_allclose(W_scan, W_ref, rtol=1e-4, atol=1e-4 * np.max(np.abs(W_ref)))


@pytest.mark.parametrize("preset", [False, True], ids=["paper-output-scale", "one_step-preset"])
def test_one_step_reproduces_algorithm1(preset):
    target = targets.paper_target(jax.random.key(3), D)
    net = NetworkConfig(width=M)
    key = jax.random.key(4)
    config = (mm.one_step_config(D, 300, M, dict(n_test=64, **FAST_HEAD)) if preset else
              flt.FirstLayerTrainingConfig(n=300, network=net, steps=1, n_test=64, **FAST_HEAD))
    ours = jax.jit(flt.train, static_argnums=2)(key, target, config)
    ref = jax.jit(algorithm.train_one_step, static_argnums=2)(key, target, algorithm.Algorithm1Config(
        n=300, network=net, n_test=64, **FAST_HEAD))
    scale = float(jnp.max(jnp.abs(ref.predictor.params.W)))
    np.testing.assert_allclose(ours.predictor.params.W, ref.predictor.params.W, atol=1e-5 * scale)
    np.testing.assert_allclose(ours.predictor.params.b, ref.predictor.params.b)
    np.testing.assert_allclose(ours.predictor.params.a, ref.predictor.params.a, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("every", [2, 3])
def test_trajectory_records_the_overlaps_of_the_iterates(every):
    target, params, x, y = _problem(2)
    config = flt.FirstLayerTrainingConfig(n=N + 64, network=NET, steps=7, record_every=every)
    x, y = x[:config.n_fit], y[:config.n_fit]
    eta = jnp.float32(config.eta(D))
    W, traj = flt.train_first_layer(params, x, y, eta, config, target.U)
    iterates = _loop(params, x, y, eta, config)
    expected_steps = list(range(0, 7, every)) + [7] if 7 % every else list(range(0, 8, every))
    assert traj.steps.tolist() == expected_steps
    want = jnp.stack([overlaps(iterates[s], target.U).alignment for s in expected_steps])
    np.testing.assert_allclose(traj.overlaps.alignment, want, rtol=1e-4)
    chex.assert_shape(traj.overlaps.best_cosine, (len(expected_steps), target.r))


def test_vmap_over_seeds_and_step_sizes_matches_single_runs():
    target = targets.paper_target(jax.random.key(5), D)
    config = mm.gd_fresh_config(D, 400, M, dict(n_test=128, spectrum_samples=64, **FAST_HEAD))
    keys = jax.random.split(jax.random.key(6), 2)
    scales = jnp.asarray([0.5, 1.5], jnp.float32)
    batched = jax.vmap(lambda k, s: flt.train(k, target, config.replace(eta_scale=s)).predictor.params.W)
    Ws = jax.jit(batched)(keys, scales)
    for i in range(2):
        single = jax.jit(lambda k, s: flt.train(k, target, config.replace(eta_scale=s)).predictor.params.W)(
            keys[i], scales[i])
        np.testing.assert_allclose(Ws[i], single, rtol=1e-4, atol=1e-5)


@settings(max_examples=6, deadline=None)
@given(d=st.integers(4, 4096), b=st.integers(1, 10_000), scale=st.floats(0.1, 10.0))
def test_scalings_agree_where_the_literature_overlaps(d, b, scale):
    """giant_step equals the paper's step at b = d^2 and online SGD's at b = d (module docstring)."""
    net = NetworkConfig(width=4, output_scale="mean")

    def eta(scaling, batch):
        cfg = flt.FirstLayerTrainingConfig(n=batch + 1, val_fraction=1e-9, network=net, mode="fresh", steps=1,
                                           scaling=scaling, eta_scale=scale)
        return cfg.eta(d)

    np.testing.assert_allclose(eta("giant_step", d * d), eta("paper", d * d), rtol=1e-12)
    np.testing.assert_allclose(eta("giant_step", d), eta("online", d), rtol=1e-12)
    assert eta("online", b) == pytest.approx(scale * b * 4 / d)


@pytest.mark.parametrize("kwargs, name", [
    (dict(mode="walk"), "mode"), (dict(scaling="huge"), "scaling"), (dict(steps=0), "steps"),
    (dict(mode="fresh", steps=2, batch_size=3), "batch_size"), (dict(mode="reuse", batch_size=3), "batch_size"),
    (dict(eta_scale=0.0), "eta_scale"), (dict(record_every=0), "record_every"), (dict(schedule_end=0.0),
                                                                                 "schedule_end"),
])
def test_config_rejects_bad_values_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        flt.FirstLayerTrainingConfig(n=100, **kwargs)


@pytest.mark.parametrize("make", [mm.gd_reuse_config, pytest.param(mm.gd_fresh_config, marks=pytest.mark.slow),
                                  pytest.param(mm.online_sgd_config, marks=pytest.mark.slow)])
def test_presets_run_and_return_finite_rows_with_trajectory(make):
    target = targets.single_index(jax.random.key(7), D, 2)
    small = dict(n_test=128, spectrum_samples=64, **FAST_HEAD)
    hyper = dict(small, record_every=50, batch_size=8) if make is mm.online_sgd_config else dict(small, record_every=1)
    config = make(D, 300, M, hyper)
    out = jax.jit(mm.run)(jax.random.key(8), target, config)
    assert isinstance(out, mm.TrainingMetricsWithTrajectory)
    assert not bool(out.failed)
    assert out.traj_steps[-1] == config.num_steps
    chex.assert_shape(out.traj_best_cosine, (out.traj_steps.shape[0], 1))
