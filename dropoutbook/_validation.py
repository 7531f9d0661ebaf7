"""Argument checks shared by the library: one place that words every error message."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "check_probability", "check_float_tensor", "check_shape", "check_generator", "check_bool",
    "check_positive_int", "check_int_in_range", "check_positive_int_sequence", "check_edge_index",
    "check_symmetric_edges", "check_real_sequence",
]


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


def check_bool(value, name: str) -> bool:
    """Check that ``value`` is a ``bool`` (not merely truthy: ``1``, ``"yes"`` or ``None`` are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__}")
    return value


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int after checking it is a positive int (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_int_in_range(value, name: str, low: int, high: int | None = None, *, allowed: str | None = None) -> int:
    """Return ``value`` as an int after checking it is an int in ``[low, high]`` (no upper bound if ``high`` is None).

    Bools and non-integers get a ``TypeError``, ints outside the range a ``ValueError``; both
    messages say ``{name} must be {allowed}`` (default: "an int >= low" or "an int from low to high").
    """
    if allowed is None:
        allowed = f"an int >= {low}" if high is None else f"an int from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_positive_int_sequence(value, name: str) -> list[int]:
    """Return ``value`` as a list of ints after checking it is a non-empty ordered sequence of positive ints.

    A list, a tuple, or a 1-D numpy array / torch tensor of integers is accepted; strings, sets and
    dicts (unordered, or not sequences) get a ``TypeError``; each entry is checked by
    :func:`check_positive_int` under the name ``{name}[i]``.
    """
    if hasattr(value, "ndim") and hasattr(value, "tolist"):  # numpy array or torch tensor
        if value.ndim != 1:
            raise TypeError(f"{name} must be a non-empty sequence of positive ints, got an array of shape "
                            f"{tuple(value.shape)}")
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise TypeError(f"{name} must be a non-empty sequence of positive ints (a list or tuple), got {value!r}")
    return [check_positive_int(v, f"{name}[{i}]") for i, v in enumerate(value)]


def check_edge_index(edge_index, name: str = "edge_index", *, num_nodes: int | None = None) -> torch.Tensor:
    """Check that ``edge_index`` is an integer tensor of shape ``(2, E)`` with node ids in ``[0, num_nodes)``.

    The convention of PyTorch Geometric: column ``k`` is the directed edge
    ``edge_index[0, k] -> edge_index[1, k]``. ``E = 0`` (no edges) is allowed.
    """
    if not isinstance(edge_index, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (2, E) with an integer dtype, "
                        f"got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype (torch.int64 or torch.int32), got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and int(edge_index.min()) < 0:
        raise ValueError(f"{name} must hold node ids >= 0, got {int(edge_index.min())}")
    if num_nodes is not None and edge_index.numel() and int(edge_index.max()) >= num_nodes:
        raise ValueError(f"{name} must hold node ids in [0, num_nodes) = [0, {num_nodes}), "
                         f"got {int(edge_index.max())}")
    return edge_index


def check_symmetric_edges(edge_index: torch.Tensor, name: str = "edge_index") -> None:
    """Check that every edge ``i -> j`` of ``edge_index`` comes with ``j -> i`` as often (an undirected graph)."""
    if edge_index.shape[1] == 0:
        return
    n = int(edge_index.max()) + 1
    row, col = edge_index.long()  # int64: row * n + col overflows int32 beyond 46,340 nodes
    forward = torch.sort(row * n + col).values
    backward = torch.sort(col * n + row).values
    if not torch.equal(forward, backward):
        bad = int((forward != backward).nonzero()[0])
        i, j = divmod(int(forward[bad]), n)
        raise ValueError(f"{name} must list every undirected edge in both directions when force_undirected=True; "
                         f"for example {i} -> {j} has no matching {j} -> {i}")


def check_real_sequence(value, name: str, *, min_length: int = 1, max_length: int | None = None) -> tuple[float, ...]:
    """Return ``value`` as a tuple of floats after checking it is a sequence of finite real numbers.

    Its length must lie in ``[min_length, max_length]``; bools, strings and NaN or infinite
    entries are refused with a message that names the argument.
    """
    longest = "" if max_length is None else f" and at most {max_length}"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of real numbers, got {type(value).__name__}")
    if len(value) < min_length or (max_length is not None and len(value) > max_length):
        raise ValueError(f"{name} must have at least {min_length}{longest} entries, got {len(value)}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}[{i}] must be a real number, got {v!r} ({type(v).__name__})")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}[{i}] must be finite, got {v!r}")
        out.append(float(v))
    return tuple(out)
