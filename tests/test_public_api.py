"""The package's public API: every name of reprjax.__all__ resolves, and importing reprjax stays light."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_CHECK = """
import sys, time
t0 = time.perf_counter()
import reprjax
seconds = time.perf_counter() - t0
heavy = sorted(m for m in ("jax", "numpy", "pandas", "matplotlib") if m in sys.modules)
assert not heavy, f"import reprjax loaded {heavy}"
missing = [name for name in reprjax.__all__ if getattr(reprjax, name, None) is None]
assert not missing, missing
assert reprjax.Grid is reprjax.sweep.Grid and reprjax.run_sweep is reprjax.sweep.run_sweep
assert set(reprjax.__all__) <= set(dir(reprjax))
print(f"{seconds:.3f}")
"""


def test_every_public_name_resolves_and_import_reprjax_loads_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", _CHECK], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 0.5  # the package itself imports nothing heavy


def test_unknown_attribute_is_an_attribute_error():
    import reprjax

    with pytest.raises(AttributeError, match="no_such_thing"):
        reprjax.no_such_thing  # noqa: B018


def test_layers_keep_their_import_contracts():
    # docs/architecture.md: each layer imports only the layers below it ([tool.importlinter] in pyproject.toml)
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


def test_every_module_imports_on_its_own():
    # no import cycle depends on which module is imported first (plotting once imported the studies)
    modules = sorted(p.stem for p in (REPO / "reprjax").glob("*.py") if p.stem not in ("__init__", "__main__"))
    modules += sorted("experiments." + p.stem for p in (REPO / "reprjax" / "experiments").glob("*.py"))
    code = textwrap.dedent("""
        import importlib, sys
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m == "reprjax" or m.startswith("reprjax.")]:
                del sys.modules[loaded]  # a fresh reprjax each time (jax and the rest stay loaded)
            try:
                importlib.import_module("reprjax." + name)
            except ImportError as err:
                sys.exit(f"reprjax.{name} imported first: {err}")
    """)
    done = subprocess.run([sys.executable, "-c", code, *modules], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
