"""What every checker shares: the failure type, calling the student's code, and the success line.

The underscored helpers are shared by the chapters' checker modules (not part of the public API):
reading a student's tensor or sympy answer, comparing two expressions as functions, and naming
the usual mistake behind a wrong survivor scale of inverted dropout (chapter 1).
"""

from __future__ import annotations

import math

import sympy as sp
import torch

__all__ = ["CheckFailed", "call_student", "passed"]


class CheckFailed(AssertionError):
    """Raised by a checker when an answer is wrong; the message says what is wrong and how to look for it."""


def call_student(fn, *args, what: str = "your function", **kwargs):
    """Call the student's ``fn``; turn a missing or crashing solution into a :class:`CheckFailed`."""
    if not callable(fn):
        raise CheckFailed(f"{what} should be a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise CheckFailed(
            f"{what} is not written yet (it raised NotImplementedError): replace the "
            "`raise NotImplementedError` line with your solution"
        ) from exc
    except CheckFailed:
        raise
    except Exception as exc:  # the student's code crashed: report it, do not hide it
        raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc


def passed(message: str) -> None:
    """Print the success line ``Correct: <message>``."""
    print(f"Correct: {message}")


def _as_output(out, x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise CheckFailed(f"{what} should return a tensor of the input's shape {tuple(x.shape)}, got {tuple(out.shape)}")
    if not out.is_floating_point():
        raise CheckFailed(f"{what} should return a floating tensor, got dtype {out.dtype}")
    return out.detach().to(torch.float64)


def _survivor_scale_message(ratio: float, p: float) -> str | None:
    """Name the usual mistake behind a wrong survivor scale, or None when the scale is 1/(1-p)."""
    if math.isclose(ratio, 1 / (1 - p), rel_tol=1e-4):
        return None
    known = {
        1.0: "survivors keep their value x: did you forget to divide by 1 - p? Without it E[output] = (1-p)·x, not x",
        1 - p: "survivors are multiplied by 1 - p; inverted dropout divides them by 1 - p so that E[output] = x",
        1 / p: "survivors are divided by p; divide by the keep probability 1 - p instead",
        p: "survivors are multiplied by p; divide them by the keep probability 1 - p instead",
    }
    for value, message in known.items():
        if math.isclose(ratio, value, rel_tol=1e-4):
            return message
    return f"survivors are scaled by {ratio:.4g}; inverted dropout scales them by 1/(1-p) = {1 / (1 - p):.4g}"


def _student_symbols(expr, allowed: dict, what: str) -> sp.Expr:
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr):
        raise CheckFailed(f"{what} should return a sympy expression (not an equation or a truth value), "
                          f"got {type(expr).__name__}")
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
    if unknown:
        raise CheckFailed(f"{what} uses the symbols {unknown}; write it in terms of {sorted(allowed)} only")
    return expr.subs({s: allowed[s.name] for s in expr.free_symbols})


def _same_function(a: sp.Expr, b: sp.Expr, symbols, points) -> None:
    if sp.simplify(a - b) == 0:
        return True
    return all(
        math.isclose(complex(a.subs(dict(zip(symbols, pt)))).real, complex(b.subs(dict(zip(symbols, pt)))).real,
                     rel_tol=1e-9, abs_tol=1e-12)
        for pt in points
    )


def _check_numbers(answer: dict, truth: dict, keys, mistakes: dict, *, retry: str, abs_tol: float = 1e-9) -> None:
    """Compare each ``answer[key]`` with ``truth[key]`` (relative tolerance 1e-6).

    A wrong value that matches one of ``mistakes[key]`` (pairs ``(wrong value, message)``) is named
    by its message; any other wrong value fails with ``retry``, a hint on how to recompute it.
    """
    for key in keys:
        value = answer[key]
        try:
            if isinstance(value, (bool, str, bytes)) or value is None:
                raise TypeError
            value = float(value)
        except (TypeError, ValueError):
            raise CheckFailed(f"{key} should be a number, got {type(value).__name__}") from None
        if math.isclose(value, truth[key], rel_tol=1e-6, abs_tol=abs_tol):
            continue
        for wrong, message in mistakes.get(key, []):
            if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=abs_tol):
                raise CheckFailed(f"{key} = {value:.4g} is not right: {message}")
        raise CheckFailed(f"{key} = {value:.4g} is not right; {retry}")
