"""What one run costs, as the CPU executor needs it to place a group: its working set and largest factorisation."""

from __future__ import annotations

import dataclasses
from typing import Any

from reprjax.methods import Method

_KERNEL_METHODS = ("entk", "ntk_infinite")


@dataclasses.dataclass(frozen=True)
class Cost:
    """Rough resources of one run.

    Attributes:
      working_set_bytes: bytes the run holds at once (float32 samples, features and, for kernels, Gram matrices).
      largest_factorisation: order of the largest matrix the run factorises (0: none).
    """

    working_set_bytes: float
    largest_factorisation: int


def run_sizes(config: Any) -> tuple[int, int]:
    """``(n, width)`` of a run's config (transfer: of its head's Algorithm 1 config; 0 where a config has none)."""
    head = getattr(config, "head", None)
    if dataclasses.is_dataclass(head) and hasattr(head, "n"):  # transfer wraps an Algorithm 1 config
        config = head
    return getattr(config, "n", 0), getattr(getattr(config, "network", None), "width", 0)


def method_cost(method: Method, config: Any, d: int) -> Cost:
    """The cost of one run of ``method`` with ``config`` at input dimension ``d``.

    Kernel ridge (methods registered with ``kernel=True``; ``entk``, ``ntk_infinite``) holds and factorises
    ``n x n`` Gram matrices; ``multistep`` trains by optax and factorises nothing; the network's ridge head
    factorises at most ``min(n, width)`` (primal ``m x m`` when ``n > m``, dual ``n x n`` otherwise).  This is the one place that knows costs by method; it
    will move to the method registry, where each method states its own.

    Args:
      method: the registered method.
      config: its config for the run.
      d: the input dimension.

    Returns:
      The run's :class:`Cost`.
    """
    n, width = run_sizes(config)
    working_set = 4.0 * n * (d + 3 * width) + 4.0 * 3 * width * width
    if getattr(method, "kernel", False) or method.name in _KERNEL_METHODS:
        return Cost(working_set + 4.0 * 3 * n * n, n)
    if method.name == "multistep":
        return Cost(working_set, 0)
    return Cost(working_set, min(n, width))
