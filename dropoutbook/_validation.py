"""Argument checks shared by the library: one place that words every error message."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = ["check_probability", "check_float_tensor", "check_shape", "check_generator", "check_choice",
           "check_positive_int"]


def check_probability(value, name: str = "p", *, allow_one: bool = True, allow_zero: bool = True) -> float:
    """Return ``value`` as a float after checking it is a probability.

    Raises ``TypeError`` for non-numbers (and for bools) and ``ValueError`` for NaN or
    for values outside the allowed interval; the message names the argument and the interval.
    """
    lo = "[0" if allow_zero else "(0"
    hi = "1]" if allow_one else "1)"
    interval = f"{lo}, {hi}"
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a number in {interval}, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in {interval}, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number in {interval}, got nan")
    too_low = value < 0 or (value == 0 and not allow_zero)
    too_high = value > 1 or (value == 1 and not allow_one)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_float_tensor(x, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is a floating-point torch tensor and return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with a floating dtype, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must have a floating dtype (float16, bfloat16, float32 or float64), got {x.dtype}; "
            f"convert it first, e.g. {name}.float()"
        )
    return x


def check_shape(shape, name: str = "shape") -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative ints; accepts an int or a sequence of ints."""
    if isinstance(shape, torch.Size):
        return tuple(shape)
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(shape).__name__}")
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name}[{i}] must be a non-negative int, got {s!r} ({type(s).__name__})")
        if s < 0:
            raise ValueError(f"{name}[{i}] must be a non-negative int, got {s}")
        out.append(int(s))
    return tuple(out)


def check_generator(generator, name: str = "generator") -> torch.Generator | None:
    """Check that ``generator`` is ``None`` or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _finite_number(value, name: str, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """Return ``value`` after checking it is an int >= 1 (a count: workers, passes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return int(value)


def check_choice(value, name: str, allowed) -> str:
    """Return ``value`` after checking it is one of the strings ``allowed``; the message lists them."""
    allowed = sorted(allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {allowed}, got {type(value).__name__}")
    if value not in allowed:
        shown = allowed if len(allowed) <= 12 else allowed[:12] + ["..."]
        raise ValueError(f"{name} must be one of {shown}, got {value!r}")
    return value


# The numbers an instructor passes to the checkers of the "predict" exercises (chapters 1-5).


def check_nonnegative(value, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0 (a variance, a weight decay)."""
    value = _finite_number(value, name, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number > 0 (a target standard error, a sum of squares)."""
    value = _finite_number(value, name, "a finite number > 0")
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_real_vector(values, name: str, *, length: int | None = None, like: str | None = None) -> tuple[float, ...]:
    """Return ``values`` as a tuple of floats: a non-empty sequence of finite numbers, of ``length``
    entries when given (``like`` names the argument whose length it must match)."""
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of finite numbers, got {type(values).__name__}")
    out = tuple(_finite_number(v, f"{name}[{i}]", "a finite number") for i, v in enumerate(values))
    if not out:
        raise ValueError(f"{name} must have at least one entry, got none")
    if length is not None and len(out) != length:
        if like is not None:
            raise ValueError(f"{like} and {name} must have the same length, got {length} and {len(out)}")
        raise ValueError(f"{name} must have {length} entries, got {len(out)}")
    return out


def check_positive_ints(values, name: str, *, min_length: int = 1) -> tuple[int, ...]:
    """Return ``values`` as a tuple of ints >= 1 (layer widths), with at least ``min_length`` entries."""
    out = check_shape(values, name)
    if len(out) < min_length:
        raise ValueError(f"{name} must have at least {min_length} entries, got {len(out)}")
    for i, v in enumerate(out):
        if v < 1:
            raise ValueError(f"{name}[{i}] must be an int >= 1, got {v}")
    return out
