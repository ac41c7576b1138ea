"""Input validation shared by the frozen configs and PyTrees of reprjax.

Every check raises ``ValueError`` naming the parameter, the allowed range and the offending value.  PyTrees are
rebuilt by jax with tracers (inside ``jit``/``vmap``) or placeholder leaves (tree utilities); checks on values
therefore run only on concrete numbers and arrays and are skipped for anything else.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

import jax
import numpy as np

from reprjax._errors import ConfigError


def is_concrete(value: Any) -> bool:
    """True for Python numbers, numpy values and jax arrays this process can read; False for tracers, placeholders
    and arrays spread over other hosts (they are checked where they are built)."""
    if isinstance(value, jax.core.Tracer):
        return False
    if isinstance(value, (bool, int, float, np.number, np.ndarray)):
        return True
    return isinstance(value, jax.Array) and value.is_fully_addressable


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


# ------------------------------------------------------------------------------------------------ typed boundary
def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _describe(annotation: Any) -> str:
    """What an annotation expects, in words (``tuple[int, ...]`` -> ``a list of integers``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return "a boolean (true or false)"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a finite number"
    if annotation is str:
        return "a string"
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _describe(args[0])
        return f"a non-empty list of distinct values, each {item}"
    return getattr(annotation, "__name__", str(annotation))


def check_type(name: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field's type annotation and return it normalised (lists become tuples).

    Strict: a boolean is only ``True``/``False`` (never the string ``"false"``, never ``0``/``1``), an integer is
    never a bool or a float (``2.0`` and ``2.5`` are rejected), a number is finite, and a variable-length tuple is
    a non-empty list or tuple of distinct items (no silent duplicate runs).  Supports ``bool``, ``int``, ``float``,
    ``str``, ``None``, ``Literal``, unions and ``tuple[X, ...]``; anything else passes unchecked.

    Raises:
      ConfigError: naming ``name``, what was expected and what was given.
    """
    def fail() -> ConfigError:
        return ConfigError(f"{name}: expected {_describe(annotation)}, got {value!r} ({_type_name(value)})")

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if annotation is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise fail()
    if annotation is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise fail()
    if annotation is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            if math.isfinite(float(value)):
                return value
        raise fail()
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail()
    if annotation is type(None):
        if value is None:
            return None
        raise fail()
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise fail()
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return check_type(name, value, arm)
            except ConfigError:
                continue
        raise fail()
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise fail()
        items = tuple(check_type(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        seen: list[Any] = []
        dupes = [v for v in items if v in seen or seen.append(v)]  # type: ignore[func-returns-value]
        if dupes:
            raise ConfigError(f"{name}: expected distinct values (a repeated value would repeat its runs), got "
                              f"{list(value)!r} with {dupes[0]!r} repeated")
        return items
    return value


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass ``obj`` against its declared type (:func:`check_type`), in place.

    Lists given for tuple fields are stored as tuples (frozen dataclasses too).  Call it first in
    ``__post_init__``: range checks can then assume the types.
    """
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        normalised = check_type(field.name, value, hints[field.name])
        if normalised is not value:
            object.__setattr__(obj, field.name, normalised)


# ------------------------------------------------------------------------------------------------ stage sizes
def stage_sizes(n: int, val_fraction: float, split_fraction: float | None) -> tuple[int, int, int]:
    """``(n_val, n_stage1, n_stage2)`` exactly as :func:`reprjax.problem.data.sample_roles` assigns ``n`` samples."""
    n_val = max(1, round(val_fraction * n))
    n_fit = n - n_val
    if split_fraction is None:
        return n_val, n_fit, n_fit
    n1 = max(1, round(split_fraction * n_fit))
    return n_val, n1, n_fit - n1


def check_stage_sizes(n: int, val_fraction: float, split_fraction: float | None, name: str = "n") -> None:
    """Every role (validation, stage 1, stage 2) of ``n`` samples gets at least one sample, else a ``ValueError``
    naming the fraction to change.  Call it with the largest and the smallest sample count a config will run
    (``n`` and ``n_active``): the roles are computed from the count in use."""
    n_val, n1, n2 = stage_sizes(n, val_fraction, split_fraction)
    if n - n_val < 1:
        raise ValueError(f"val_fraction = {val_fraction} leaves no training samples out of {name} = {n}")
    if split_fraction is not None and n - n_val < 2:
        raise ValueError(f"split_fraction = {split_fraction} needs at least 2 training samples for its two stages, "
                         f"{name} = {n} leaves {n - n_val} after validation: a larger {name} or a smaller "
                         f"val_fraction")
    if n1 < 1 or n2 < 1:
        raise ValueError(f"split_fraction = {split_fraction} leaves stage 1 {n1} and stage 2 {n2} samples out of "
                         f"{n - n_val} training samples ({name} = {n}); each stage needs at least 1: choose "
                         f"split_fraction in [{1.0 / (n - n_val):.3g}, {1.0 - 1.0 / (n - n_val):.3g}] or a larger "
                         f"{name}")


def check_count(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> None:
    """A sample count that may be traced: concrete values must be integers (a numpy/jax integer scalar or a float
    holding an integer is not enough: ``2.5`` and ``2.0`` are both rejected) in ``[low, high]``; tracers pass."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if arr.size == 1:
        check_int(name, int(arr.reshape(())), low=low, high=high)
    elif arr.size and ((low is not None and arr.min() < low) or (high is not None and arr.max() > high)):
        raise ValueError(f"{name} must be in {_range_text(low, high)}, got values in [{arr.min()}, {arr.max()}]")
