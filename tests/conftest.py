"""Shared test settings: hypothesis profiles sized for a 2-core CI machine."""

import os

import pytest
from hypothesis import HealthCheck, settings

# jit compiles once per shape: tests draw values, not shapes, keep example counts modest and never time a single
# example (compilation makes the first one slow).
settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Free each test module's compiled programs after it: every compiled XLA CPU kernel holds its own memory maps,
    and the whole suite in one process otherwise passes the kernel's vm.max_map_count (65,530) and crashes inside
    the compiler (docs/measurements.md, "Compiled programs and the memory-map limit")."""
    yield
    from reprjax.sweep import release_programs

    release_programs()
