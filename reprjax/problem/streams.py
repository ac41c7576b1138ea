"""Training samples as a stream of chunks drawn from keys: sums over samples in memory independent of ``n``.

A *source* gives any block of rows of a run's samples: :class:`KeyedSource` draws rows ``[s, s + k)`` from the run's
data key (:func:`reprjax.problem.data.sample_rows`: row ``i`` depends only on the key and ``i``, so the block is the
same whatever the total ``n``, and the first ``n`` samples of a larger draw are a draw of size ``n``);
:class:`ArraySource` reads them from stored arrays; :class:`Residualised` subtracts the label pre-processing ``alpha +
<beta, x>``.

:func:`stream_sum` sums a function of the blocks over the rows of a :class:`reprjax.problem.data.Role` in a
``lax.fori_loop``, each block weighted by the role's 0/1 weights (so a traced active sample count masks rows without
changing them).  Every sum of Algorithm 1 -- the label moments, the first-layer gradient, the second-layer Gram
matrix and right-hand side, the validation errors of every ridge strength -- is one such pass, so a run holds one
chunk of inputs and features at a time: memory ``O(chunk * (d + m) + m^2)``, never ``n x d`` or ``n x m``.
The price is drawing the inputs once per pass (a few passes of ``O(n d)`` random numbers next to the ``O(n m d)``
products).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.problem.data import DataConfig, Dataset, Role, sample_rows
from reprjax.problem.targets import MultiIndexTarget


class SampleSource(Protocol):
    """Rows ``[start, start + count)`` of a run's samples (rows past the end may hold anything: they get weight 0)."""

    def rows(self, start: int | Array, count: int) -> Dataset: ...


@dataclasses.dataclass(frozen=True)
class KeyedSource:
    """The samples :func:`reprjax.problem.data.sample_dataset` draws from ``key``, drawn block by block on demand."""

    key: PRNGKeyArray
    target: MultiIndexTarget
    config: DataConfig = DataConfig()
    spike_key: PRNGKeyArray | None = None

    def rows(self, start: int | Array, count: int) -> Dataset:
        return sample_rows(self.key, self.target, start, count, self.config, self.spike_key)


@dataclasses.dataclass(frozen=True)
class ArraySource:
    """Stored samples; rows past the end read as zeros."""

    data: Dataset

    def rows(self, start: int | Array, count: int) -> Dataset:
        idx = start + jnp.arange(count)
        return jax.tree.map(lambda a: jnp.take(a, idx, axis=0, mode="fill", fill_value=0), self.data)


def hold(source: SampleSource, n: int, chunk: int) -> ArraySource:
    """The first ``n`` rows of ``source`` drawn once, block by block, and held (rows up to the next multiple of
    ``chunk`` too, which the roles weight 0).  Memory ``4 n (d + 2)`` bytes plus one block's draw."""
    _validate.check_int("chunk", chunk, low=1)
    chunk = min(chunk, n)
    n_chunks = -(-n // chunk)
    blocks = jax.lax.map(lambda c: source.rows(c * chunk, chunk), jnp.arange(n_chunks))
    return ArraySource(jax.tree.map(lambda a: a.reshape((n_chunks * chunk,) + a.shape[2:]), blocks))


@dataclasses.dataclass(frozen=True)
class Residualised:
    """``source`` with labels replaced by ``y - alpha - <beta, x>`` (Algorithm 1, step 0)."""

    source: Any
    alpha: Float[Array, ""]
    beta: Float[Array, " d"]

    def rows(self, start: int | Array, count: int) -> Dataset:
        block = self.source.rows(start, count)
        return block.replace(y=block.y - self.alpha - block.x @ self.beta)


def stream_sum(
    fn: Callable[[Dataset, Float[Array, " chunk"]], Any], source: SampleSource, role: Role, chunk: int
) -> Any:
    """``sum over blocks B of fn(B, w_B)`` for the rows of ``role`` in blocks of ``chunk``, ``w_B`` their 0/1 weights.

    Args:
      fn: maps a block of samples and its weights (``0`` for rows outside the role) to a PyTree of arrays; it must
        give zero for zero-weight rows (e.g. multiply by the weights).
      source: where the rows come from.
      role: rows ``[role.start, role.stop)``, weighted by :meth:`reprjax.problem.data.Role.weight_at`.
      chunk: rows per block (``>= 1``; capped at the role's size).

    Returns:
      The PyTree sum.  Memory: one block and what ``fn`` makes of it, whatever the number of rows.
    """
    _validate.check_int("chunk", chunk, low=1)
    rows = role.stop - role.start
    if rows < 1:
        raise ValueError(f"role has no rows: [{role.start}, {role.stop})")
    chunk = min(chunk, rows)
    n_chunks = -(-rows // chunk)

    def one(c):
        start = role.start + c * chunk
        return fn(source.rows(start, chunk), role.weight_at(start + jnp.arange(chunk)))

    if n_chunks == 1:
        return one(0)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(one, 0))
    return jax.lax.fori_loop(0, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), zeros)


def label_moments(source: SampleSource, role: Role, chunk: int) -> tuple[Float[Array, ""], Float[Array, " d"]]:
    """Step 0 streamed: ``alpha = mean(y)``, ``beta = mean(y x)`` over the role's rows.  Memory ``O(chunk * d)``."""
    sy, syx, n = stream_sum(lambda b, w: (jnp.sum(w * b.y), (w * b.y) @ b.x, jnp.sum(w)), source, role, chunk)
    return sy / n, syx / n
