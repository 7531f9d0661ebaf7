"""Argument checks shared by the library: one place that words every error message.

Every public function checks its arguments with these helpers, so that a bad argument gets the
same kind of message everywhere: a ``TypeError`` for a value of the wrong type and a
``ValueError`` for a value of the right type outside the allowed range, each naming the argument
and what it accepts. Python numbers, NumPy scalars and (where a number is expected) 0-d tensors
are accepted alike; ``bool`` is never taken for a number. Data arguments (design matrices,
targets, predictions, probabilities) may be NumPy arrays: :func:`as_float_tensor` converts them
and :func:`like_input` converts a result back.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence, Set

import numpy as np
import torch

__all__ = [
    "check_probability", "check_int", "check_seed", "check_real", "check_bool", "check_choice", "check_module",
    "check_float_dtype", "check_float_tensor", "check_same_dtype", "check_real_or_float_tensor",
    "check_shape", "check_device", "check_generator", "as_tensor", "as_float_tensor", "like_input",
    "check_positive_int", "check_int_in_range", "check_positive_int_sequence", "check_edge_index",
    "check_symmetric_edges", "check_real_sequence",
    "check_nonnegative", "check_positive", "check_real_vector", "check_positive_ints",
    "check_concrete_rate",
    "check_module_types", "check_logits_pair", "check_class_targets", "check_layer_subset", "check_module_rate",
    "check_module_list",
    "check_class_labels",
    "check_float_vector", "check_score_dict", "check_treatment", "check_two_column_output",
    "check_matrix", "check_output_like", "check_factual_triple",
    "check_fractions", "check_outcomes", "check_covariates", "check_input_dtype", "check_positive_dropout",
    "check_count_means",
]

_FLOATING = "a floating dtype (float16, bfloat16, float32 or float64)"


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _scalar(value):
    """A 0-d tensor or 0-d numpy array as its Python value; anything else unchanged."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        return value.item()
    return value


def check_probability(value, name: str = "p", *, allow_one: bool = True, allow_zero: bool = True) -> float:
    """Return ``value`` as a float after checking it is a probability.

    Raises ``TypeError`` for non-numbers (and for bools) and ``ValueError`` for NaN or
    for values outside the allowed interval; the message names the argument and the interval.
    A 0-d tensor or a NumPy scalar counts as a number.
    """
    lo = "[0" if allow_zero else "(0"
    hi = "1]" if allow_one else "1)"
    interval = f"{lo}, {hi}"
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise TypeError(f"{name} must be a number in {interval}, got a tensor of shape {tuple(value.shape)}")
    value = _scalar(value)
    if isinstance(value, torch.Tensor):  # a one-element tensor of higher dimension
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in {interval}, got {_describe(value)}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number in {interval}, got nan")
    too_low = value < 0 or (value == 0 and not allow_zero)
    too_high = value > 1 or (value == 1 and not allow_one)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_alpha_dropout_rate(value, name: str = "p") -> float:
    """AlphaDropout's drop probability, in ``[0, 1)``; ``p = 1`` is refused with the reason.

    At ``p = 1`` every unit takes the same value, so no affine map gives variance 1;
    ``torch.nn.functional.alpha_dropout`` returns zeros there (mean 0, variance 0) instead of refusing.
    """
    value = check_probability(value, name)
    if value == 1.0:
        raise ValueError(f"{name} must be in [0, 1) for AlphaDropout, got 1.0: at {name} = 1 every unit is dropped "
                         "to the same value, so no affine correction restores variance 1 "
                         "(torch.nn.functional.alpha_dropout returns zeros there, with variance 0)")
    return value


def _int_range(minimum: int | None, maximum: int | None, odd: bool) -> str:
    kind = "an odd int" if odd else "an int"
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    if minimum == 1 and not odd:
        return "a positive int"
    if minimum == 0 and not odd:
        return "a non-negative int"
    if minimum == 1:
        return "an odd positive int"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None,
              odd: bool = False, why: str | None = None) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer in ``[minimum, maximum]``.

    Python and NumPy integers are accepted; bools, floats (also ``2.0``), strings and tensors raise
    ``TypeError``; an integer out of range (or even, with ``odd=True``) raises ``ValueError``.
    ``why``, if given, is added to the message in parentheses after the allowed values.
    """
    allowed = _int_range(minimum, maximum, odd) + (f" ({why})" if why else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {_describe(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    if odd and value % 2 == 0:
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed`` or NumPy: an int in [0, 2**64 - 1]."""
    return check_int(value, name, minimum=0, maximum=2**64 - 1)


def check_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
               positive: bool = False, finite: bool = True) -> float:
    """Return ``value`` as a float after checking it is a real number (not NaN; finite by default).

    ``minimum``/``maximum`` are inclusive bounds; ``positive=True`` requires ``value > 0``. A 0-d
    tensor or NumPy scalar counts as a number; a bool, a string or a complex number does not.
    """
    parts = ["a finite real number" if finite else "a real number"]
    if positive:
        parts.append("> 0")
    if minimum is not None:
        parts.append(f">= {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    allowed = " ".join(parts[:1]) + ("" if len(parts) == 1 else " " + " and ".join(parts[1:]))
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {_describe(value)}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    if (positive and not value > 0) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_bool(value, name: str) -> bool:
    """Check that ``value`` is a ``bool`` (``torch.nn.functional.dropout`` refuses anything else too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {_describe(value)}")
    return bool(value)


def check_choice(value, name: str, choices):
    """Check that ``value`` is one of ``choices`` (strings compared exactly; a set is listed sorted)."""
    if not isinstance(choices, Sequence):
        choices = sorted(choices)
    if not isinstance(value, str) or value not in choices:
        quoted = [repr(c) for c in choices]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        got = repr(value) if isinstance(value, str) else _describe(value)
        raise (ValueError if isinstance(value, str) else TypeError)(f"{name} must be {listed}, got {got}")
    return value


def check_module(value, name: str = "model", cls: type = torch.nn.Module):
    """Check that ``value`` is an instance of ``cls`` (by default ``torch.nn.Module``)."""
    if not isinstance(value, cls):
        where = "torch.nn" if cls.__module__.startswith("torch.nn") else cls.__module__
        raise TypeError(f"{name} must be a {where}.{cls.__qualname__}, got {type(value).__name__}")
    return value


def check_float_dtype(dtype, name: str = "dtype", *, allow_bool: bool = False) -> torch.dtype:
    """Check that ``dtype`` is a floating ``torch.dtype`` (or ``torch.bool`` with ``allow_bool``)."""
    ok = isinstance(dtype, torch.dtype) and (dtype.is_floating_point or (allow_bool and dtype == torch.bool))
    if not ok:
        allowed = "a floating dtype" + (" or torch.bool" if allow_bool else "")
        raise TypeError(f"{name} must be {allowed} (float16, bfloat16, float32 or float64), got {dtype!r}")
    return dtype


def check_float_tensor(x, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is a floating-point torch tensor and return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with a floating dtype, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must have {_FLOATING}, got {x.dtype}; convert it first, e.g. {name}.float()"
        )
    return x


def check_finite_tensor(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Check that the floating tensor ``x`` holds only finite numbers (no NaN, no infinity); return it unchanged."""
    nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
    if nan or inf:
        found = ", ".join(f"{n} {kind} entr{'y' if n == 1 else 'ies'}" for n, kind in ((nan, "NaN"), (inf, "infinite")) if n)
        raise ValueError(f"{name} must hold finite numbers (no NaN or infinity), got {found}")
    return x


def check_same_dtype(reference_name: str, reference: torch.Tensor, **others: torch.Tensor | None) -> None:
    """Check that every tensor of ``others`` (``None`` skipped) has the dtype and device of ``reference``."""
    for name, t in others.items():
        if t is not None and (t.dtype != reference.dtype or t.device != reference.device):
            raise TypeError(
                f"{name} must have the dtype and device of {reference_name} ({reference.dtype}, "
                f"{reference.device}), got ({t.dtype}, {t.device}); convert one of them with .to()"
            )


def check_real_or_float_tensor(value, name: str, *, nonnegative: bool = False):
    """A real number (returned as float) or a floating tensor (returned unchanged), without NaN
    and, with ``nonnegative=True``, without negative entries."""
    rule = "a non-negative" if nonnegative else "a"
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be {rule} real number or a floating tensor, got {_describe(value)}")
        if bool(torch.isnan(value).any()):
            raise ValueError(f"{name} must be {rule} real number or a floating tensor without NaN, got NaN")
        if nonnegative and bool((value < 0).any()):
            raise ValueError(f"{name} must be non-negative, got a tensor with negative entries")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {rule} real number or a floating tensor, got {_describe(value)}")
    value = float(value)
    if math.isnan(value) or (nonnegative and value < 0):
        raise ValueError(f"{name} must be {rule} real number, got {value!r}")
    return value


def check_shape(shape, name: str = "shape") -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative ints; accepts an int or a sequence of ints."""
    if isinstance(shape, torch.Size):
        return tuple(shape)
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(shape).__name__}")
    return tuple(check_int(s, f"{name}[{i}]", minimum=0) for i, s in enumerate(shape))


def check_device(device, name: str = "device") -> torch.device | None:
    """``None``, a ``torch.device``, or a device string or index (``"cpu"``, ``"cuda:0"``) as a ``torch.device``."""
    if device is None or isinstance(device, torch.device):
        return device
    if isinstance(device, (str, int)) and not isinstance(device, bool):
        try:
            return torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{name} must be a torch.device, a device string such as 'cpu', or None, "
                             f"got {device!r}") from exc
    raise TypeError(f"{name} must be a torch.device, a device string such as 'cpu', or None, got {_describe(device)}")


def check_generator(generator, name: str = "generator") -> torch.Generator | None:
    """Check that ``generator`` is ``None`` or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def as_tensor(value, name: str):
    """A NumPy array as a tensor (sharing memory when it can), a tensor unchanged; anything else is refused.

    Returns ``(tensor, was_numpy)``. Arrays of objects or strings raise ``TypeError``.
    """
    if isinstance(value, torch.Tensor):
        return value, False
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"{name} must be a numeric array or tensor, got {_describe(value)}")
        if not value.flags.writeable or any(s < 0 for s in value.strides) or value.dtype.byteorder == ">":
            value = np.array(value, dtype=value.dtype.newbyteorder("="))  # torch cannot share these
        return torch.from_numpy(value), True
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(value).__name__}")


def as_float_tensor(value, name: str = "x"):
    """:func:`as_tensor`, then :func:`check_float_tensor`. Returns ``(tensor, was_numpy)``."""
    tensor, was_numpy = as_tensor(value, name)
    return check_float_tensor(tensor, name), was_numpy


def like_input(result, was_numpy: bool):
    """Return ``result`` as the caller gave the data: a tensor, or for NumPy input a NumPy array
    (a 0-d result as a NumPy scalar). Tuples are converted element by element."""
    if not was_numpy:
        return result
    if isinstance(result, tuple):
        return tuple(like_input(r, True) for r in result)
    array = result.detach().cpu().numpy()
    return array[()] if array.ndim == 0 else array


# Checks first written for chapters 11 and 12 (recurrent networks, graphs), on top of check_int.


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int after checking it is a positive int (bools and floats are refused)."""
    return check_int(value, name, minimum=1)


def check_int_in_range(value, name: str, low: int, high: int | None = None, *, allowed: str | None = None) -> int:
    """Return ``value`` as an int after checking it is an int in ``[low, high]`` (no upper bound if ``high`` is None).

    As :func:`check_int`, with the message ``{name} must be {allowed}`` (default: "an int >= low"
    or "an int from low to high").
    """
    if allowed is None:
        allowed = f"an int >= {low}" if high is None else f"an int from {low} to {high}"
    try:
        return check_int(value, name, minimum=low, maximum=high)
    except TypeError:
        raise TypeError(f"{name} must be {allowed}, got {_describe(value)}") from None
    except ValueError:
        raise ValueError(f"{name} must be {allowed}, got {value!r}") from None


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


# The numbers an instructor passes to the checkers of the exercises (chapter checkers, grading).


def check_nonnegative(value, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0 (a variance, points)."""
    return check_real(value, name, minimum=0)


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number > 0 (a standard error, a time limit)."""
    return check_real(value, name, positive=True)


def check_real_vector(values, name: str, *, length: int | None = None, like: str | None = None) -> tuple[float, ...]:
    """Return ``values`` as a tuple of floats: a non-empty sequence of finite numbers, of ``length``
    entries when given (``like`` names the argument whose length it must match)."""
    out = check_real_sequence(values, name)
    if length is not None and len(out) != length:
        if like is not None:
            raise ValueError(f"{like} and {name} must have the same length, got {length} and {len(out)}")
        raise ValueError(f"{name} must have {length} entries, got {len(out)}")
    return out


def check_positive_ints(values, name: str, *, min_length: int = 1) -> tuple[int, ...]:
    """Return ``values`` as a tuple of ints >= 1 (layer widths), with at least ``min_length`` entries."""
    out = tuple(check_positive_int_sequence(values, name))
    if len(out) < min_length:
        raise ValueError(f"{name} must have at least {min_length} entries, got {len(out)}")
    return out


# Checks first written for chapter 13 (Concrete dropout).


def check_concrete_rate(value, name: str = "p"):
    """A drop rate in (0, 1): a number (returned as float) or a 0-d floating tensor (returned unchanged,
    so that a gradient can flow through it)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point():
        if not bool(0 < value.detach() < 1):
            raise ValueError(f"{name} must be in (0, 1), got {value.item()!r}")
        return value
    return check_probability(value, name, allow_zero=False, allow_one=False)
# Checks first written for chapter 14 (dropout in modern training).


def check_module_types(value, name: str) -> tuple[type, ...]:
    """``None`` (as an empty tuple) or a sequence of ``torch.nn.Module`` subclasses, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, (type, str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        hint = f" (write ({value.__name__},) for one class)" if isinstance(value, type) else ""
        raise TypeError(f"{name} must be None or a sequence of torch.nn.Module subclasses{hint}, got {value!r}")
    value = tuple(value)
    for t in value:
        if not (isinstance(t, type) and issubclass(t, torch.nn.Module)):
            raise TypeError(f"{name} must hold torch.nn.Module subclasses, got {t!r}")
    return value


def check_logits_pair(logits_a, logits_b, names: tuple[str, str] = ("logits_a", "logits_b")) -> None:
    """Two floating tensors of one dtype, device and shape ``(batch, n_classes)``, batch >= 1, n_classes >= 2."""
    a_name, b_name = names
    check_float_tensor(logits_a, a_name)
    check_float_tensor(logits_b, b_name)
    check_same_dtype(a_name, logits_a, **{b_name: logits_b})
    if logits_a.dim() != 2 or logits_a.shape[0] == 0 or logits_a.shape[1] < 2:
        raise ValueError(f"{a_name} must have shape (batch, n_classes) with batch >= 1 and n_classes >= 2, "
                         f"got {tuple(logits_a.shape)}")
    if logits_b.shape != logits_a.shape:
        raise ValueError(f"{b_name} must have the shape of {a_name} {tuple(logits_a.shape)}, "
                         f"got {tuple(logits_b.shape)}")


def check_class_targets(target, n: int, n_classes: int, name: str = "target") -> torch.Tensor:
    """An int64 tensor of shape ``(n,)`` of class indices in ``[0, n_classes)``."""
    if not isinstance(target, torch.Tensor) or target.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor of class indices of shape ({n},), got {_describe(target)}")
    if tuple(target.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(target.shape)}")
    if n and (bool((target < 0).any()) or bool((target >= n_classes).any())):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes - 1}], got values from "
                         f"{int(target.min())} to {int(target.max())}")
    return target


def check_layer_subset(value, name: str, n_layers: int) -> tuple[int, ...]:
    """Strictly increasing layer indices in ``[0, n_layers)`` (possibly none), as a tuple of ints."""
    if isinstance(value, (str, bytes, torch.Tensor, np.ndarray)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of layer indices in [0, {n_layers - 1}], got {_describe(value)}")
    out = tuple(check_int(v, f"{name}[{i}]", minimum=0, maximum=n_layers - 1) for i, v in enumerate(value))
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must list distinct layer indices in increasing order, got {list(out)}")
    return out


def check_module_rate(module: torch.nn.Module, why: str) -> float:
    """The numeric rate attribute ``p`` of a module (a bool or a missing ``p`` raises ``TypeError``, with ``why``)."""
    rate = getattr(module, "p", None)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{type(module).__name__} has no numeric rate attribute 'p' (got {rate!r}); {why}")
    return float(rate)


def check_module_list(layers, name: str = "layers"):
    """A non-empty sequence or ``torch.nn.ModuleList`` of modules, returned unchanged (a single module is refused)."""
    if isinstance(layers, torch.nn.Module) and not isinstance(layers, torch.nn.ModuleList):
        raise TypeError(f"{name} must be a sequence or torch.nn.ModuleList of modules, got a single "
                        f"{type(layers).__name__} (wrap its layers in a list)")
    if not isinstance(layers, (Sequence, torch.nn.ModuleList)) or isinstance(layers, (str, bytes)):
        raise TypeError(f"{name} must be a sequence or torch.nn.ModuleList of modules, got {_describe(layers)}")
    if len(layers) == 0:
        raise ValueError(f"{name} must hold at least one module, got none")
    for i, layer in enumerate(layers):
        check_module(layer, f"{name}[{i}]")
    return layers
# Checks first written for chapter 5's calibration metrics (also used by chapter 15).


def check_class_labels(labels, name: str = "labels", *, n: int, num_classes: int) -> torch.Tensor:
    """Return ``labels`` (a tensor or NumPy array) as an int64 tensor after checking that it is 1-D
    of length ``n`` and holds integer class indices in ``[0, num_classes)``; bool, floating and
    complex labels raise ``TypeError``."""
    labels, _ = as_tensor(labels, name)
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"{name} must be an integer tensor or array of class indices, got {_describe(labels)}")
    if labels.dim() != 1 or labels.numel() != n:
        raise ValueError(f"{name} must have shape ({n},), one class index per row of probs, "
                         f"got shape {tuple(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must hold class indices in [0, {num_classes - 1}], got values from "
                         f"{labels.min().item()} to {labels.max().item()}")
    return labels.long()


# Checks first written for chapter 15 (applications: referral, deferral, counts, causal effects).


def check_float_vector(value, name: str, *, n: int | None = None, like: str | None = None,
                       nonempty: bool = True) -> tuple[torch.Tensor, bool]:
    """A 1-D floating tensor or NumPy array without NaN, of length ``n`` when given (``like`` names the
    argument whose length it must match). Returns ``(tensor, was_numpy)``."""
    tensor, was_numpy = as_float_tensor(value, name)
    if tensor.dim() != 1 or (nonempty and tensor.numel() == 0):
        raise ValueError(f"{name} must be a non-empty 1-D tensor or array, got shape {tuple(tensor.shape)}")
    if n is not None and tensor.numel() != n:
        raise ValueError(f"{name} must have the shape of {like or 'the data'} ({n},), got {tuple(tensor.shape)}")
    if bool(torch.isnan(tensor).any()):
        raise ValueError(f"{name} contains NaN")
    return tensor, was_numpy


def check_score_dict(scores, name: str = "scores") -> dict:
    """A non-empty mapping from a name (str) to a score (anything the caller checks further)."""
    if not isinstance(scores, dict) or not scores:
        raise TypeError(f"{name} must be a non-empty dict {{name: uncertainty}}, got {_describe(scores)}")
    for key in scores:
        if not isinstance(key, str):
            raise TypeError(f"{name} must have str keys (the names of the scores), got {key!r}")
    return scores


def check_treatment(value, name: str = "t", *, n: int | None = None) -> torch.Tensor:
    """A 1-D tensor or NumPy array of treatment indicators (bools or 0/1 numbers), as a bool tensor."""
    tensor, _ = as_tensor(value, name)
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor of 0/1 treatment indicators, got shape "
                         f"{tuple(tensor.shape)}")
    if n is not None and tensor.numel() != n:
        raise ValueError(f"{name} must have shape ({n},), one indicator per row of x, got {tuple(tensor.shape)}")
    if tensor.is_complex() or not bool(((tensor == 0) | (tensor == 1)).all()):
        raise ValueError(f"{name} must hold only 0/1 (or bool) treatment indicators")
    return tensor.bool()


def check_two_column_output(out, what: str) -> torch.Tensor:
    """A model output of shape ``(B, 2)``: one column per treatment arm (control, treated)."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} must return a tensor of shape (B, 2), the outcome under control and under "
                         f"treatment, got {got}")
    return out


def check_matrix(x, name: str = "x", *, columns: int | None = None, rows_are: str = "rows") -> torch.Tensor:
    """A floating 2-D tensor with at least one row (and ``columns`` columns when given), returned unchanged."""
    check_float_tensor(x, name)
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0 or (columns is not None and x.shape[1] != columns):
        wanted = f"(N, {columns})" if columns is not None else "(N, d)"
        raise ValueError(f"{name} must have shape {wanted} with N >= 1, one row per {rows_are}, got {tuple(x.shape)}")
    return x


def check_output_like(out, x: torch.Tensor, what: str = "model") -> torch.Tensor:
    """A module's output that must be a tensor of the shape of its input ``x``."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} must return a tensor of the shape of x {tuple(x.shape)}, got {got}")
    return out


def check_factual_triple(value, name: str = "validation", *, n_features: int | None = None):
    """``None`` or a tuple ``(x, t, y)`` of covariates, treatment indicators and factual outcomes, checked."""
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 3:
        raise TypeError(f"{name} must be None or a tuple (x_val, t_val, y_val), got {_describe(value)}")
    x = check_covariates(value[0], f"{name}[0]", n_features=n_features)
    t = check_treatment(value[1], f"{name}[1]", n=x.shape[0])
    y = check_outcomes(value[2], f"{name}[2]", n=x.shape[0], per=f"row of {name}[0]")
    return x, t, y


def check_fractions(fractions, name: str = "fractions") -> torch.Tensor:
    """Referred (or deferred) fractions as a float64 tensor, each a number in [0, 1).

    A list, tuple, 1-D tensor or 1-D NumPy array, or any other ordered iterable (read once, so a
    generator works); a set or a dict is refused (its order is not the caller's), and so is a single
    number, a Python one as a 0-d tensor or array (pass ``[r]`` for one fraction)."""
    if isinstance(fractions, np.ndarray):
        fractions, _ = as_tensor(fractions, name)
    if isinstance(fractions, torch.Tensor) and fractions.dim() == 0:
        fractions = fractions.item()
    if isinstance(fractions, numbers.Number):
        raise TypeError(f"{name} must be a sequence of numbers in [0, 1), got the single number {fractions!r} "
                        "(for one fraction r pass [r])")
    if isinstance(fractions, torch.Tensor):
        if fractions.dim() != 1:
            raise ValueError(f"{name} must be a sequence or a 1-D tensor of numbers in [0, 1), got shape "
                             f"{tuple(fractions.shape)}")
        values = fractions.tolist()
    elif isinstance(fractions, (Set, Mapping)):
        raise TypeError(f"{name} must be an ordered sequence (a list, tuple or 1-D tensor) of numbers in [0, 1), got a "
                        f"{type(fractions).__name__}, whose order is not yours")
    elif isinstance(fractions, (str, bytes)) or not isinstance(fractions, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers in [0, 1), got {type(fractions).__name__}")
    else:
        values = list(fractions)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence of numbers in [0, 1), got an empty one")
    return torch.tensor([check_probability(f, f"{name}[{i}]", allow_one=False) for i, f in enumerate(values)],
                        dtype=torch.float64)


def check_outcomes(value, name: str, *, n: int, per: str = "row of x") -> torch.Tensor:
    """Outcomes: a floating tensor or NumPy array of shape ``(n,)`` (one per ``per``), finite (no NaN or infinity)."""
    y, _ = as_float_tensor(value, name)
    if tuple(y.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},), one outcome per {per}, got {tuple(y.shape)}")
    return check_finite_tensor(y, name)


def check_covariates(x, name: str = "x", *, n_features: int | None = None) -> torch.Tensor:
    """Covariates: a finite floating tensor of shape ``(N, d)`` with ``N >= 1`` (and ``d = n_features`` when given)."""
    check_float_tensor(x, name)
    if x.dim() != 2 or x.shape[0] == 0 or (n_features is not None and x.shape[1] != n_features):
        d = "d" if n_features is None else n_features
        raise ValueError(f"{name} must have shape (N, {d}) with N >= 1, one row of covariates per case, got "
                         f"{tuple(x.shape)}")
    return check_finite_tensor(x, name)


def check_input_dtype(model: torch.nn.Module, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` must have the floating dtype of the model's floating parameters (when they share one)."""
    dtypes = {q.dtype for q in model.parameters() if q.is_floating_point()}
    if len(dtypes) == 1 and x.dtype not in dtypes:
        (dtype,) = dtypes
        raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {dtype}; convert one of them, "
                        f"e.g. {name}.to({dtype}) or model.to({x.dtype})")
    return x


def check_positive_dropout(modules, name: str = "model") -> None:
    """At least one of the dropout ``modules`` of ``name`` has a rate ``p > 0`` (MC dropout needs one)."""
    rates = [check_module_rate(m, "MC dropout needs the rate of every dropout module") for m in modules]
    if rates and max(rates) <= 0:
        raise ValueError(f"{name} has only dropout modules of rate p = 0 ({len(rates)} of them): every pass gives the same "
                         "output and the variance would be 0. MC dropout needs a rate p > 0")


#: The largest count mean sample_zinb accepts: NumPy's Poisson sampler refuses rates near 1e19.
MAX_COUNT_MEAN = 1e12


def check_count_means(means: torch.Tensor, name: str = "means") -> torch.Tensor:
    """Means of counts: finite, in [0, MAX_COUNT_MEAN]."""
    check_finite_tensor(means, name)
    if means.numel() and bool((means < 0).any()):
        raise ValueError(f"{name} must be non-negative (the means of the counts)")
    if means.numel() and bool((means > MAX_COUNT_MEAN).any()):
        raise ValueError(f"{name} must be at most {MAX_COUNT_MEAN:.0e} (NumPy's Poisson sampler cannot draw counts that "
                         f"large), got {means.max().item():.4g}")
    return means
