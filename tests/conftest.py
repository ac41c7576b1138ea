"""Shared test settings: XLA's CPU compiler at optimisation level 0 and hypothesis profiles, sized for a 2-core CI
machine."""

import os

#: The suite compiles hundreds of small programs, and on 2 CPU cores LLVM's optimisation passes are much of its
#: time.  The whole suite on the quiet 2-core machine: 8m07s at XLA's default optimisation, 6m57s at level 1, 5m18s
#: at level 0 (the vmapped/sharded sweep test 68 s -> 30 s, the transfer study 54 s -> 30 s; docs/measurements.md,
#: "Test suite time").  Matrix products and factorisations are library calls, compiled the same either way; other
#: float32 arithmetic may round differently (one test's data is drawn in numpy for that reason).
#: ``REPRJAX_TEST_FULL_OPT=1`` runs the suite at the default optimisation.  Subprocess tests pass the flags on.
TEST_XLA_FLAGS = "" if os.environ.get("REPRJAX_TEST_FULL_OPT") == "1" else "--xla_backend_optimization_level=0"
os.environ["REPRJAX_TEST_XLA_FLAGS"] = TEST_XLA_FLAGS
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

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
