"""Sums over samples in fixed-size chunks, so that large ``n`` runs in bounded memory.

``chunked_sum(fn, arrays, chunk)`` returns ``sum_c fn(arrays[c])`` over consecutive chunks of the leading axis:
a ``lax.scan`` over the full chunks plus one call on the remainder, so memory is that of one chunk and the
compiled program does not grow with ``n``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def chunked_sum(fn: Callable[..., Any], arrays: tuple[jax.Array, ...], chunk: int) -> Any:
    """``sum over chunks c of fn(*[a[c] for a in arrays])`` for arrays sharing a leading axis of length ``n``.

    Args:
      fn: maps chunk arrays to a PyTree of arrays (summed across chunks).
      arrays: arrays with equal leading dimension ``n``.
      chunk: rows per chunk (``>= 1``); ``chunk >= n`` calls ``fn`` once on everything.

    Returns:
      The PyTree sum.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"arrays must share the leading dimension, got {[a.shape[0] for a in arrays]}")
    if chunk >= n:
        return fn(*arrays)
    full, rem = divmod(n, chunk)
    head = tuple(a[: full * chunk].reshape((full, chunk) + a.shape[1:]) for a in arrays)

    def body(carry, parts):
        return jax.tree.map(jnp.add, carry, fn(*parts)), None

    first = fn(*(h[0] for h in head))
    total, _ = jax.lax.scan(body, first, tuple(h[1:] for h in head)) if full > 1 else (first, None)
    if rem:
        total = jax.tree.map(jnp.add, total, fn(*(a[full * chunk:] for a in arrays)))
    return total


def chunked_map(fn: Callable[..., jax.Array], arrays: tuple[jax.Array, ...], chunk: int) -> jax.Array:
    """``concatenate([fn(*chunk) for chunk in chunks])`` along the leading axis, computed chunk by chunk."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n = arrays[0].shape[0]
    if chunk >= n:
        return fn(*arrays)
    full, rem = divmod(n, chunk)
    head = tuple(a[: full * chunk].reshape((full, chunk) + a.shape[1:]) for a in arrays)
    out = jax.lax.map(lambda parts: fn(*parts), head)
    out = out.reshape((full * chunk,) + out.shape[2:])
    if rem:
        out = jnp.concatenate([out, fn(*(a[full * chunk:] for a in arrays))], axis=0)
    return out
