"""Input validation shared by the frozen configs and PyTrees of reprjax.

Every check raises ``ValueError`` naming the parameter, the allowed range and the offending value.  PyTrees are
rebuilt by jax with tracers (inside ``jit``/``vmap``) or placeholder leaves (tree utilities); checks on values
therefore run only on concrete numbers and arrays and are skipped for anything else.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def is_concrete(value: Any) -> bool:
    """True for Python numbers, numpy values and committed jax arrays; False for tracers and placeholders."""
    if isinstance(value, jax.core.Tracer):
        return False
    if isinstance(value, (bool, int, float, np.number, np.ndarray)):
        return True
    return isinstance(value, jax.Array)


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` must be an integer in ``[low, high]`` (either end may be open)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in {_range_text(low, high)}, got {value}")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """A concrete scalar ``value`` must be finite (unless ``allow_inf``) and in the range; tracers pass."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if arr.size != 1:
        return  # batched leaves (stacked configs) are checked element by element by check_array_range
    v = float(arr.reshape(()))
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be in {_range_text(low, high, low_open)}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be in {_range_text(low, high, low_open)}, got {v}")


def check_finite_array(name: str, value: Any) -> None:
    """A concrete array must hold no NaN or inf."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, found {bad} NaN/inf entries")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _range_text(low: float | None, high: float | None, low_open: bool = False) -> str:
    left = "(" if low_open else "["
    lo = "-inf" if low is None else f"{low}"
    hi = "inf" if high is None else f"{high}"
    return f"{left}{lo}, {hi}" + (")" if high is None else "]")
