"""Multi-indices ``alpha`` in ``N^r`` with ``|alpha| = degree``: counted and enumerated in time proportional to the
output (the polynomial targets of :mod:`reprjax.problem.targets` are sums over them)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from reprjax import _validate

__all__ = ["MAX_TERMS", "all_multi_indices", "count_multi_indices"]

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
