"""Multi-indices ``alpha`` in ``N^r`` with ``|alpha| = degree``: counted and enumerated in time proportional to the
output (the polynomial targets of :mod:`reprjax.problem.targets` are sums over them)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from reprjax import _validate

__all__ = ["MAX_TERMS", "all_multi_indices", "check_term_count", "contract_tensor_grid", "count_multi_indices",
           "count_up_to"]

#: Most terms a generated target may hold: evaluating ``T`` terms on a batch of ``B`` points gathers a ``(B, T, r)``
#: array (:func:`reprjax.maths.hermite.multi_index_hermite`), about 2 GiB in float32 for ``B = 2048``, ``T = 2^14``,
#: ``r = 16``.
MAX_TERMS = 2**14


def count_multi_indices(r: int, degree: int) -> int:
    """Number of multi-indices of length ``r`` with ``|alpha| = degree``: ``C(degree + r - 1, r - 1)``."""
    return math.comb(degree + r - 1, r - 1)


def all_multi_indices(r: int, degree: int) -> list[tuple[int, ...]]:
    """All multi-indices of length ``r`` with ``|alpha| = degree``, in decreasing lexicographic order.

    Built directly (compositions of ``degree`` into ``r`` parts), in time proportional to the output, never by
    filtering the ``(degree + 1)^r`` candidates.
    """
    _validate.check_int("r", r, low=1)
    _validate.check_int("degree", degree, low=0)

    def parts(length: int, total: int) -> Iterable[tuple[int, ...]]:
        if length == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in parts(length - 1, total - first):
                yield (first, *rest)

    return list(parts(r, degree))


def count_up_to(r: int, degree: int) -> int:
    """Number of multi-indices of length ``r`` with ``|alpha| <= degree``: ``C(degree + r, r)``."""
    return math.comb(degree + r, r)


def check_term_count(what: str, r: int, degree: int, limit: int = MAX_TERMS) -> int:
    """``count_up_to(r, degree)``, or a one-line ``ValueError`` naming ``what`` and the size when over ``limit``."""
    count = count_up_to(r, degree)
    if count > limit:
        raise ValueError(f"{what}: r = {r} directions up to degree {degree} means {count:,} multi-indices, more than "
                         f"the limit {limit:,}: lower the degree or r")
    return count


def contract_tensor_grid(
    values: np.ndarray, bases: Sequence[np.ndarray], degree: int
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """``C[alpha] = sum_{i_1..i_r} values[i_1..i_r, ...] prod_j bases[j][i_j, alpha_j]``, every ``|alpha| <= degree``.

    The sum over a tensor grid (e.g. Hermite coefficients by a tensor quadrature rule, ``bases[j] = w_j h(z_j)``)
    contracts one axis at a time and keeps only the prefixes ``(alpha_1..alpha_j)`` whose degree can still be
    completed, so the work is about ``C(degree + j, j) * n^(r - j) * (degree + 1)`` at step ``j`` -- proportional to
    the grid and to the output, never to the ``(degree + 1)^r`` full tensor.

    Args:
      values: ``(n_1, ..., n_r, *trailing)``; the trailing axes are carried along (several functions at once).
      bases: ``r`` matrices ``(n_j, K_j + 1)`` with ``K_j >= degree``.
      degree: the largest total degree returned.

    Returns:
      ``(alphas, table)``: the multi-indices (grouped by prefix) and ``table[t] = C[alphas[t]]``,
      of shape ``(len(alphas), *trailing)``.
    """
    r = len(bases)
    trailing = values.shape[r:]
    prefixes: list[tuple[int, ...]] = [()]
    table = values.reshape((1,) + values.shape)
    for j, basis in enumerate(bases):
        if basis.shape[0] != values.shape[j] or basis.shape[1] < degree + 1:
            raise ValueError(f"bases[{j}] must have shape ({values.shape[j]}, >= {degree + 1}), got {basis.shape}")
        moved = np.moveaxis(np.tensordot(table, basis[:, : degree + 1], axes=([1], [0])), -1, 1)  # (P, K+1, ...)
        keep = [(p, k) for p, pre in enumerate(prefixes) for k in range(degree + 1 - sum(pre))]
        rows, cols = np.asarray(keep).T
        table = moved[rows, cols]
        prefixes = [prefixes[p] + (k,) for p, k in keep]
    return prefixes, table.reshape((len(prefixes),) + trailing)
