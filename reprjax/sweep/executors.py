"""The executor for a list of devices: the CPU executor on host devices, the accelerator executor elsewhere.

Its own module so that :mod:`reprjax.sweep.execution` (the paths and the base executor) and
:mod:`reprjax.sweep.cpu` (the CPU executor, built on it) import each other in one direction only.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from reprjax.sweep.cpu import CpuExecutor
from reprjax.sweep.execution import AcceleratorExecutor, Executor


def make_executor(execution: str = "auto", devices: Sequence[jax.Device] | None = None) -> Executor:
    """The executor for ``devices`` (default: all devices): a CPU executor on CPU, an accelerator one elsewhere."""
    devices = list(devices) if devices is not None else jax.devices()
    cls = CpuExecutor if devices[0].platform == "cpu" else AcceleratorExecutor
    return cls(execution, devices)


__all__ = ["make_executor"]
