"""A new method is one file: the baseline of docs/adding_a_method.md registers and runs through a sweep unchanged."""

import re
from pathlib import Path

import numpy as np
import pytest

from reprjax import sweep
from reprjax.methods import registry as methods

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def registry(monkeypatch):
    """The registry as the document leaves it: a copy, so the test's method does not outlive the test."""
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))
    module: dict = {"__name__": "quadratic_ridge"}
    exec(compile(_blocks()[0], str(DOC), "exec"), module)  # noqa: S102 - the document's own code
    return module


def test_the_documented_method_registers_without_touching_the_sweep(registry):
    assert methods.get_method("quadratic_ridge") is registry["QUADRATIC_RIDGE"]
    config = registry["make_config"](8, 256, 64, {"noise": 0.1, "n_test": 512})
    assert config.n == 256 and config.n_test == 512 and float(config.data.noise) == pytest.approx(0.1)


def test_the_documented_grid_runs_each_hyper_parameter_only_for_the_methods_declaring_it(registry, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks()[1], str(DOC), "exec"), {"__name__": "doc_grid"})  # noqa: S102
    df = sweep.load_results(tmp_path / "runs" / "quadratic")
    assert (df["status"] == "ok").all()
    quad, alg = df[df["method"] == "quadratic_ridge"], df[df["method"] == "algorithm1"]
    assert len(quad) == 2 and quad["eta_scale"].isna().all()  # not multiplied by algorithm1's step sizes
    assert len(alg) == 2 * 2 and sorted(set(alg["eta_scale"])) == [0.5, 1.0]
    # ridge on [1, x, x^2] represents a linear target exactly: only the estimation error of 17 weights remains
    assert np.all(quad["test_nmse"] < 0.05)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_decoupled_weight_decay_with_zero_gradient_shrinks_weights_by_lr_times_decay(optimizer):
    """``both_layers``: the decay is added after the adaptive scaling (``optax.adamw``), so with a zero gradient
    one step moves ``w`` by exactly ``-lr * wd * w`` (Adam's scaling would otherwise turn it into ``-lr sign(w)``)."""
    import jax.numpy as jnp

    from reprjax.methods.both_layers import MultiStepConfig, optimizer as make_optimizer

    config = MultiStepConfig(n=64, optimizer=optimizer, learning_rate=0.01, weight_decay=0.5)
    opt = make_optimizer(config)
    w = {"W": jnp.asarray([[1.0, -2.0], [0.25, 4.0]])}
    updates, _ = opt.update({"W": jnp.zeros((2, 2))}, opt.init(w), w)
    np.testing.assert_allclose(updates["W"], -0.01 * 0.5 * w["W"], rtol=1e-6)
