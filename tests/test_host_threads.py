"""Runs side by side on the CPU cores (reprjax.sweep.host_threads)."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from reprjax.sweep import host_threads


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def _run(key, shift):
    g = jax.random.normal(key, (8, 8))
    return {"evals": jnp.linalg.eigh(g @ g.T + shift * jnp.eye(8))[0], "shift": shift}


@pytest.mark.parametrize("runs, workers", [(7, 3), (6, 2), (1, 4), (5, 1)])
def test_run_split_matches_a_loop_in_order(runs, workers):
    keys = jax.random.split(jax.random.key(0), runs)
    shifts = jnp.arange(runs, dtype=jnp.float32)
    program = jax.jit(host_threads.looped(_run))
    out = host_threads.run_split(program, (keys, shifts), workers=workers)
    loop = [_run(k, s) for k, s in zip(keys, shifts)]
    assert out["evals"].shape == (runs, 8)
    np.testing.assert_array_equal(out["shift"], shifts)  # order kept, padding dropped
    np.testing.assert_allclose(out["evals"], np.stack([r["evals"] for r in loop]), rtol=1e-5, atol=1e-5)
    assert program._cache_size() == 1  # equal chunks: one program shape


def test_blas_held_to_one_thread_only_while_workers_run():
    import scipy.linalg  # noqa: F401 - loads the OpenBLAS whose threads are limited

    before = _blas_threads()
    seen = []

    def record(x):
        seen.append((threading.current_thread().name, _blas_threads()))
        return x

    out = host_threads.run_split(lambda x: record(x), (np.arange(4),), workers=2)
    np.testing.assert_array_equal(out, np.arange(4))
    assert len(seen) == 2 and all(name.startswith("reprjax-run") for name, _ in seen)
    assert all(set(blas) == {1} for _, blas in seen)
    assert _blas_threads() == before
    with host_threads.blas_threads(None):
        assert _blas_threads() == before


def test_errors_reach_the_caller_and_bad_arguments_are_refused():
    def boom(x):
        raise FloatingPointError("a run diverged")

    with pytest.raises(FloatingPointError, match="diverged"):
        host_threads.run_split(boom, (np.arange(4),), workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        host_threads.run_split(boom, (np.arange(4),), workers=0)
    with pytest.raises(ValueError, match="limit must be >= 1"):
        with host_threads.blas_threads(0):
            pass
    assert host_threads.cpu_cores() >= 1
