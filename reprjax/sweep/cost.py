"""What one run costs, as the CPU executor needs it to place a group: each registered method states its own
(:attr:`reprjax.methods.registry.Method.cost`); this module is the sweep's one entry to it."""

from __future__ import annotations

from typing import Any

from reprjax.methods.registry import Cost, Method, run_sizes


def method_cost(method: Method, config: Any, d: int) -> Cost:
    """The :class:`~reprjax.methods.registry.Cost` of one run of ``method`` with ``config`` at input dimension ``d``."""
    return method.cost(config, d)


__all__ = ["Cost", "method_cost", "run_sizes"]
