"""The package's public API: every name of reprjax.__all__ resolves, and importing reprjax stays light."""

import subprocess
import sys
import re
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


def _public_modules() -> list[str]:
    """Every module of the package by dotted name below ``reprjax``, private ones (``_x``) excluded."""
    root = REPO / "reprjax"
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(p.startswith("_") for p in parts):
            names.append(".".join(parts))
    return names


def test_every_module_imports_on_its_own():
    # no import cycle depends on which module is imported first (plotting once imported the studies)
    modules = _public_modules()
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


def test_readme_module_table_lists_every_public_module():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## What is here"):readme.index("## A target in five lines")]
    listed = set(re.findall(r"`reprjax\.([a-z0-9_.]+)`", table))
    # a row may name a package and its modules in brackets: `reprjax.sweep` (`grid`, `store`, ...)
    for row in table.splitlines():
        for package, inside in re.findall(r"`reprjax\.([a-z0-9_.]+)` \(([^)]*)\)", row):
            listed |= {f"{package}.{m}" for m in re.findall(r"`([a-z0-9_]+)`", inside)}
    packages = {m.rpartition(".")[0] for m in _public_modules() if "." in m}
    missing = [m for m in _public_modules() if m not in listed and m not in packages]
    assert not missing, f"README's module table does not list {missing}"


def test_every_layer_exposes_its_modules():
    import importlib

    import reprjax

    for name in _public_modules():
        parent, _, leaf = name.rpartition(".")
        package = importlib.import_module("reprjax." + parent) if parent else reprjax
        assert leaf in dir(package), f"reprjax.{name} is not an attribute of its package"
