"""The package's public API: every name of reprjax.__all__ resolves, and importing reprjax stays light."""

import subprocess
import sys
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
