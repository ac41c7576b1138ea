"""A user's method in their own file runs from the command line through a TOML ``plugins`` list
(docs/adding_a_method.md), and the registry declares what it knows of a method instead of guessing."""

import re
import sys
from pathlib import Path

import pytest

from reprjax import cli, sweep
from reprjax.methods import registry
from reprjax.studies import base

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md"


@pytest.fixture
def clean_registry():
    """The registry's contents and the imported modules as they were before the test."""
    saved = dict(registry.METHODS)
    yield registry.METHODS
    registry.METHODS.clear()
    registry.METHODS.update(saved)
    sys.modules.pop("quadratic_ridge", None)


def _plugin_source() -> str:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]


def test_a_method_in_a_users_file_runs_from_the_cli_through_the_plugins_list(clean_registry, tmp_path, capsys):
    (tmp_path / "quadratic_ridge.py").write_text(_plugin_source())
    config = tmp_path / "study.toml"
    config.write_text('plugins = ["quadratic_ridge"]\nmethods = ["quadratic_ridge"]\n'
                      "dims = [6]\nn_over_d2 = [4.0, 8.0]\nwidth = 16\nseeds = 2\nn_test = 256\nbootstrap = 20\n")
    out = tmp_path / "out"
    assert cli.main(["run", "sample-complexity", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    df = sweep.load_results(out)
    quad = df[df["method"] == "quadratic_ridge"]
    assert len(quad) == 2 * 2 and (quad["status"] == "ok").all()
    assert "quadratic_ridge" not in sys.path and str(tmp_path) not in sys.path  # the folder was searched, then left
    assert registry.get_method("quadratic_ridge").label == "ridge on x and x^2"
    # `reprjax plot` in a fresh process-like registry loads the same plugin from the manifest
    registry.METHODS.pop("quadratic_ridge")
    sys.modules.pop("quadratic_ridge", None)
    (out / "report.txt").unlink()
    assert cli.main(["plot", str(out)]) == 0
    assert "quadratic_ridge" in registry.METHODS and (out / "report.txt").exists()


def test_a_plugin_that_cannot_be_imported_is_one_config_error_naming_the_file(clean_registry, tmp_path):
    config = tmp_path / "study.toml"
    config.write_text('plugins = ["no_such_module_for_reprjax"]\n')
    assert cli.main(["run", "sample-complexity", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # refused before anything was written
    with pytest.raises(base.ConfigError, match="study.toml.*no_such_module_for_reprjax"):
        base.load_plugins(["no_such_module_for_reprjax"], source=str(config))
    with pytest.raises(base.ConfigError, match="list of importable module names"):
        base.load_plugins("quadratic_ridge", source=str(config))


def test_a_name_already_registered_is_refused_unless_replaced(clean_registry):
    method = registry.get_method("algorithm1")
    twin = registry.Method("algorithm1", method.run, method.make_config, method.config)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(twin)
    assert registry.register(twin, replace=True) is registry.get_method("algorithm1")


#: Values for the hyper-parameters whose default (often ``None``) cannot be passed as it is.
_EXAMPLES = {"spike_beta": 0.5, "batch_size": 8, "steps": 2, "source_n": 512}


def test_every_declared_hyper_parameter_builds_the_methods_config():
    """Declared, not guessed: each name in ``Method.hyper`` is accepted by the method's config builder (every
    registered method, those other modules registered included)."""
    for name, method in sorted(registry.METHODS.items()):
        config = method.make_config(8, 256, 16, {})
        assert isinstance(config, method.config), name
        inner = config.head if method.needs_pair else config  # transfer wraps Algorithm 1's config
        for hyper in sorted(method.hyper):
            holders = (inner, getattr(inner, "data", None), getattr(inner, "network", None), config)
            default = next((getattr(h, hyper) for h in holders if h is not None and hasattr(h, hyper)), None)
            try:  # the default value, else an example (a None default is not always a value one may pass)
                built = method.make_config(8, 256, 16, {hyper: default})
            except ValueError:
                built = method.make_config(8, 256, 16, {hyper: _EXAMPLES[hyper]})
            assert isinstance(built, method.config), (name, hyper)


def test_spike_settings_reach_the_first_layer_methods():
    """``spike_target`` and ``spike_beta`` are routed to every method that holds a data config (one routing)."""
    for name in ("one_step", "gd_reuse", "gd_fresh", "online_sgd", "algorithm1", "entk"):
        config = registry.get_method(name).make_config(16, 256, 16, {"spike_beta": 0.5, "spike_target": "raw"})
        assert float(config.data.spike) == pytest.approx(4.0) and config.data.spike_target == "raw"


def test_studies_and_figures_read_capabilities_and_labels_from_the_registry():
    assert set(registry.kernel_methods()) == {"entk", "ntk_infinite", "nngp_infinite"}
    assert registry.method_label("entk") == "empirical NTK ridge"
    assert registry.method_label("not_a_method") == "not_a_method"
    assert {m for m, meth in registry.METHODS.items() if meth.needs_pair} == {"transfer"}
    assert not registry.get_method("random_features").trains_first_layer
    assert registry.get_method("one_step").trains_first_layer
