"""Input checks shared by the kernels of :mod:`reprjax.kernels.empirical` and :mod:`reprjax.kernels.infinite`."""

from __future__ import annotations

from collections.abc import Sequence

from jaxtyping import Array

#: The parts of the NTK, one per parameter group of :class:`~reprjax.network.TwoLayerParams`.
PARTS = ("W", "a", "b")


def _check_parts(parts: Sequence[str] | str) -> tuple[str, ...]:
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {parts!r}")
    return tuple(p for p in PARTS if p in parts)


def _check_inputs(x1: Array, x2: Array | None, d: int | None = None, matrix: bool = True) -> bool:
    """Shapes of ``x1``, ``x2`` (and the network's ``d``); returns whether the Gram matrix is symmetric."""
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        if (matrix and x.ndim != 2) or x.ndim < 1:
            raise ValueError(f"{name} must be an {'(n, d)' if matrix else '(n, ...)'} array, got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one row, got shape {x.shape} (empty input)")
    if x2 is not None and x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"x1 and x2 must have the same feature shape, got {x1.shape[1:]} and {x2.shape[1:]}")
    if d is not None and x1.shape[-1] != d:
        raise ValueError(f"inputs have dimension {x1.shape[-1]} but the network expects d = {d}")
    return x2 is None or x2 is x1
