"""Inputs drawn around a given latent: ``x`` whose whitened projection on ``span(U)`` is a chosen ``z``.

For ``x ~ N(0, I_d)`` the target depends on ``z = U x ~ N(0, I_r)`` alone and ``x = U^T z + P_perp g`` with ``g ~
N(0, I_d)`` independent of ``z``.  Under a spike (``x = Sigma^{1/2} g``, ``Sigma = I + theta mu mu^T``,
:mod:`reprjax.problem.data`) the same holds for the whitened latent: with ``B = U Sigma^{1/2}`` the matrix ``A =
(B B^T)^{-1/2} B`` has orthonormal rows, ``z = A g ~ N(0, I_r)`` is the latent the normalised target reads
(``DataConfig.spike_target = "normalised"``), the raw target reads ``U x = (B B^T)^{1/2} z``, and

    x = Sigma^{1/2} (A^T z + (I - A^T A) g)

has the law of the data's inputs when ``z ~ N(0, I_r)``.  So any design over ``z`` (a stratified one,
:mod:`reprjax.maths.stratified`) gives inputs with the right law and targets that are smooth functions of ``z``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.problem.data import DataConfig, Dataset, spike_vector, target_inputs
from reprjax.problem.targets import MultiIndexTarget


def latent_frame(
    U: Float[Array, "r d"], spike: float | Float[Array, ""], mu: Float[Array, " d"]
) -> Float[Array, "r d"]:
    """``A = (B B^T)^{-1/2} B`` with ``B = U Sigma^{1/2}`` (``U`` itself for ``spike = 0``): orthonormal rows."""
    mu = mu / jnp.linalg.norm(mu)
    b = U + (jnp.sqrt(1.0 + spike) - 1.0) * (U @ mu)[:, None] * mu[None, :]  # U Sigma^{1/2}
    v = U @ mu
    v2 = jnp.sum(v**2)
    c = 1.0 - 1.0 / jnp.sqrt(1.0 + spike * v2)  # (I + theta v v^T)^{-1/2} = I - c v v^T / |v|^2
    coef = jnp.where(v2 > 0.0, c / jnp.where(v2 > 0.0, v2, 1.0), 0.0)
    return b - coef * v[:, None] * (v @ b)[None, :]


def inputs_with_latent(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    z: Float[Array, "n r"],
    config: DataConfig = DataConfig(),
    spike_key: PRNGKeyArray | None = None,
) -> Dataset:
    """Noise-free samples whose whitened latent is ``z`` (module docstring); the rest of ``x`` is drawn from ``key``.

    With ``z ~ N(0, I_r)`` the samples have the law of :func:`reprjax.problem.data.sample_dataset`'s (same spike
    direction for the same ``spike_key``); ``f`` is the target evaluated as there, ``y = f`` (no label noise).
    Memory ``O(n d)``.
    """
    n, r = z.shape
    if r != target.r:
        raise ValueError(f"z has {r} coordinates but the target has r = {target.r}")
    g = jax.random.normal(key, (n, target.d), jnp.float32)
    isotropic = _validate.is_concrete(config.spike) and float(config.spike) == 0.0
    if isotropic:
        frame = target.U
        x = z @ frame + g - (g @ frame.T) @ frame
        f = target(x)
    else:
        mu = spike_vector(jax.random.fold_in(key, 3) if spike_key is None else spike_key, target, config)
        mu = mu / jnp.linalg.norm(mu)
        frame = latent_frame(target.U, config.spike, mu)
        white = z @ frame + g - (g @ frame.T) @ frame
        x = white + (jnp.sqrt(1.0 + config.spike) - 1.0) * (white @ mu)[:, None] * mu[None, :]
        f = target(target_inputs(x, target.U, config.spike, mu) if config.spike_target == "normalised" else x)
    return Dataset(x=x, y=f, f=f)


__all__ = ["inputs_with_latent", "latent_frame"]
