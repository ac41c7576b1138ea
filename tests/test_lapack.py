"""reprjax.maths.lapack: factorisations that never reach CPU LAPACK with a batch dimension (jaxlib 0.10.2 deadlock)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.maths import lapack as _lapack
from reprjax.methods import scoring as metrics
from reprjax.solvers import nystrom
from reprjax.solvers import ridge


def _spd(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 3), k=st.integers(1, 6))
def test_wrappers_equal_numpy_under_vmap_and_leading_batches(seed, batch, k):
    a = _spd(seed, (batch, 2, k, k)).astype(np.float32)
    low = jax.vmap(_lapack.cholesky)(a)
    np.testing.assert_allclose(low, np.linalg.cholesky(a), rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(jax.vmap(lambda m: _lapack.eigh(m)[0])(a), np.linalg.eigvalsh(a), rtol=2e-4, atol=2e-3)
    rhs = np.random.default_rng(seed + 1).standard_normal((batch, 2, k)).astype(np.float32)
    x = jax.vmap(_lapack.cho_solve)(low, rhs)
    np.testing.assert_allclose(x, np.linalg.solve(a, rhs[..., None])[..., 0], rtol=2e-3, atol=2e-3)
    rect = np.random.default_rng(seed + 2).standard_normal((batch, k + 2, k)).astype(np.float32)
    np.testing.assert_allclose(jax.vmap(_lapack.singular_values)(rect), np.linalg.svd(rect, compute_uv=False),
                               rtol=2e-4, atol=2e-4)
    q, r = jax.vmap(_lapack.qr)(rect)
    np.testing.assert_allclose(q @ r, rect, rtol=2e-4, atol=2e-4)


def _lapack_batch_dims(fn, *args) -> list[int]:
    """The batch rank of every LAPACK custom call in the lowered program of ``fn``."""
    ranks = []
    for line in jax.jit(fn).lower(*args).as_text().splitlines():
        if "@lapack_" not in line:
            continue
        attr = re.search(r'num_batch_dims = "(\d+)"', line)
        operand_ranks = [len(t.split("x")) - 1 for t in re.findall(r"tensor<([^>]*)>", line.split(": (")[-1])]
        ranks.append(int(attr.group(1)) if attr else max(operand_ranks) - 2)
    return ranks


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop is taken on CPU only")
def test_vmapped_solvers_lower_to_unbatched_lapack_calls():
    # the programs that hung: a vmapped Nystrom solve (Cholesky and its eigen fallback side by side) and a
    # vmapped ridge path (Cholesky per strength and the eigh retry)
    eye = jnp.broadcast_to(jnp.eye(5), (2, 5, 5))
    with jax.enable_x64(True):
        ranks = _lapack_batch_dims(jax.vmap(lambda k, h, b: nystrom.solve_path(k, h, b, jnp.ones(3))),
                                   eye.astype(jnp.float64), eye.astype(jnp.float64), jnp.ones((2, 5)))
    ranks += _lapack_batch_dims(jax.vmap(lambda g, b: ridge.solve_psd_path(g, b, jnp.ones(3), "cholesky")),
                                eye, jnp.ones((2, 5)))
    ranks += _lapack_batch_dims(jax.vmap(lambda g, b: ridge.solve_psd_path(g, b, jnp.ones(3), "eigh")),
                                eye, jnp.ones((2, 5)))
    ranks += _lapack_batch_dims(jax.vmap(lambda w, u: metrics.principal_angles(w, u)),
                                jnp.ones((2, 6, 5)), jnp.ones((2, 2, 5)))
    assert len(ranks) >= 6
    assert max(ranks) == 0, ranks
