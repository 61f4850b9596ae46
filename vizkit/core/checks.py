"""Argument checks shared by every public function: one message format for each kind of error.

Keras-free, so the command line and the report can validate arguments before TensorFlow loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (bools refused), or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def positive_number(value, name: str) -> float:
    """``value`` as a float ``> 0`` and finite, or a ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not math.isfinite(float(value))
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def non_negative_int(value, name: str) -> int:
    """``value`` as an int ``>= 0`` (bools refused), or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def number_in(value, name: str, low: float = 0.0, high: float | None = None) -> float:
    """``value`` as a finite float in ``[low, high]`` (``high=None``: no upper bound)."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if (
        not ok
        or not math.isfinite(float(value))
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")
    return float(value)


def choice(value, name: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def flag(value, name: str) -> bool:
    """``value`` if it is a bool, else a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def map_array(values, ndim: int, name: str, shape: str) -> np.ndarray:
    """``values`` as float32 maps of ``ndim`` axes (a trailing axis of length 1 dropped);
    ``shape`` names the expected shape in the error, e.g. ``"(H, W)"``."""
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim == ndim + 1 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr
