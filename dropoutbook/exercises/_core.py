"""What every checker shares: the result type, the failure type, calling the student's code, the success line.

A checker of the book (``check_*`` in the chapter modules) calls the student's code through
:func:`call_student`, raises :class:`CheckFailed` with a specific hint when the answer is wrong,
and calls :func:`passed` once when it is right. :func:`checker` wraps every public checker (the
package ``dropoutbook.exercises`` applies it) so that it returns a :class:`CheckResult`, accepts a
``points=`` argument, and attaches the result to the :class:`CheckFailed` it raises.

The underscored helpers are shared by the chapters' checker modules (not part of the public API):
reading a student's tensor or sympy answer, comparing two expressions as functions, naming the
usual mistake behind a wrong survivor scale of inverted dropout (chapter 1), patching a function
for the duration of a check (a forbidden shortcut, an observed call), and the hooks through which
the grader (:mod:`dropoutbook.exercises.grading`) verifies that a submission changed nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import math

import sympy as sp
import torch

from .._validation import check_nonnegative

__all__ = ["CheckFailed", "CheckResult", "call_student", "passed", "checker"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of one checker on one answer (the instructor API of the exercises, chapter 1 onwards).

    Every public ``check_*`` function returns one when the answer is right; when it is wrong, the
    :class:`CheckFailed` it raises carries one as ``exc.result``. In a notebook a result displays
    nothing: the checker has printed its ``Correct: ...`` line already.

    Attributes:
        exercise: the checker's name, e.g. ``"check_inverted_dropout"``.
        passed: whether the answer is right; ``bool(result)`` is the same.
        message: the summary of a pass (the text after ``Correct:``), or the hint of a failure.
        points: ``max_points`` for a pass, 0 for a failure.
        max_points: what the exercise is worth (the checker's ``points=`` argument, 1 by default).

    Examples:
        >>> import torch
        >>> from dropoutbook.exercises import check_inverted_dropout
        >>> def dropout(x, p, training=True):
        ...     return x * (torch.rand_like(x) >= p) / (1 - p) if training else x.clone()
        >>> result = check_inverted_dropout(dropout, points=2)  # doctest: +ELLIPSIS
        Correct: ...
        >>> result.passed, result.points
        (True, 2.0)
    """

    exercise: str
    passed: bool
    message: str
    points: float
    max_points: float

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Show nothing in a notebook: the checker printed its line already."""


class CheckFailed(AssertionError):
    """Raised by a checker when an answer is wrong; the message says what is wrong and how to look for it.

    ``exc.result`` is the :class:`CheckResult` of the failed check (``passed`` false, 0 points)
    when a public checker raised it, and None for a failure raised outside a checker.
    """

    def __init__(self, *args, result: CheckResult | None = None):
        super().__init__(*args)
        self.result = result


# The pass messages of the checker that is running in this context; None outside any checker.
_REPORTS: contextvars.ContextVar[list | None] = contextvars.ContextVar("dropoutbook_check_reports", default=None)

# Callables run after every call into a student's code; the grader installs one that verifies
# that the submission changed no attribute of the library (a process-wide hook, empty otherwise).
_INTEGRITY_HOOKS: list = []

# Attributes patched by a running check (target, name, replacement), innermost last; the
# grader's verification expects these replacements while they are active.
_ACTIVE_PATCHES: list = []


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
    finally:
        for verify in _INTEGRITY_HOOKS:
            verify()


def passed(message: str) -> None:
    """Print the success line ``Correct: <message>`` and report the pass to the running checker."""
    print(f"Correct: {message}")
    reports = _REPORTS.get()
    if reports is not None:
        reports.append(str(message))


def checker(fn, name: str | None = None):
    """Wrap a checker ``fn(answer, ...)`` that calls :func:`passed` or raises :class:`CheckFailed`.

    The wrapped checker takes the same arguments plus a keyword-only ``points`` (what the exercise
    is worth, 1 by default), returns a :class:`CheckResult` on a pass, and on a failure raises the
    :class:`CheckFailed` with ``exc.result`` set. A checker called from inside another one runs
    unwrapped (its pass counts towards the outer check only). The package applies it to every
    public ``check_*`` function of the chapter modules (chapter 1 onwards).
    """
    name = name or fn.__name__
    signature = inspect.signature(fn)
    if "points" in signature.parameters:
        raise TypeError(f"{name} has a parameter 'points'; the wrapper adds it")
    params = list(signature.parameters.values())
    extra = inspect.Parameter("points", inspect.Parameter.KEYWORD_ONLY, default=1, annotation="float")
    at = next((i for i, q in enumerate(params) if q.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    params.insert(at, extra)

    @functools.wraps(fn)
    def check(*args, points: float = 1, **kwargs) -> CheckResult:
        points = check_nonnegative(points, "points")
        if _REPORTS.get() is not None:  # nested in another checker: that one reports
            fn(*args, **kwargs)
            return CheckResult(name, True, "", points, points)
        token = _REPORTS.set([])
        try:
            fn(*args, **kwargs)
            reports = _REPORTS.get()
        except CheckFailed as exc:
            exc.result = CheckResult(name, False, str(exc), 0.0, points)
            raise
        finally:
            _REPORTS.reset(token)
        if not reports:
            raise RuntimeError(f"{name} returned without calling passed(): a checker reports a pass or raises CheckFailed")
        return CheckResult(name, True, reports[-1], points, points)

    check.__signature__ = signature.replace(parameters=params, return_annotation="CheckResult")
    check.__wrapped_checker__ = fn
    return check


@contextlib.contextmanager
def _patched(target, name: str, replacement):
    """Set ``target.name = replacement`` while the block runs; restore it afterwards, also on error.

    Checkers patch only through this (a forbidden function replaced by one that fails, a function
    whose calls are observed): the grader's verification knows the active patches.
    """
    own = vars(target)
    had = name in own
    original = own.get(name)
    setattr(target, name, replacement)
    entry = (target, name, replacement)
    _ACTIVE_PATCHES.append(entry)
    try:
        yield replacement
    finally:
        _ACTIVE_PATCHES.remove(entry)
        if had:
            setattr(target, name, original)
        else:
            delattr(target, name)


def _forbidden(what: str, hint: str = ""):
    """A stand-in for a function the statement forbids: calling it fails the check and says so."""
    def forbidden(*args, **kwargs):
        raise CheckFailed(f"your code calls {what}, which the statement forbids{': ' + hint if hint else ''}")
    return forbidden


@contextlib.contextmanager
def _recorded_calls(target, name: str):
    """Record every call of ``target.name`` while the block runs, as ``(args, kwargs, result)``.

    With ``_recorded_calls(derivations, "expectation") as calls`` a checker observes whether the
    student's function let sympy compute its answer (a call made through the attribute, e.g.
    ``derivations.expectation(...)``; a name imported before the check is not seen).
    """
    original = getattr(target, name)
    calls: list = []

    @functools.wraps(original)
    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    with _patched(target, name, recording):
        yield calls


def _as_output(out, x: torch.Tensor, what: str) -> torch.Tensor:
    if type(out) is not torch.Tensor:  # a subclass could redefine the comparisons a checker makes
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


#: Subclasses of sympy classes that checkers themselves put into an answer (e.g. chapter 11 marks the
#: results of the expectation it hands in); a submission's own classes are refused.
_CHECKER_SYMPY_CLASSES: set[type] = set()


def _student_symbols(expr, allowed: dict, what: str) -> sp.Expr:
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr):
        raise CheckFailed(f"{what} should return a sympy expression (not an equation or a truth value), "
                          f"got {type(expr).__name__}")
    foreign = sorted({type(node).__name__ for node in sp.preorder_traversal(expr)
                      if not (type(node).__module__ or "").startswith("sympy.")
                      and type(node) not in _CHECKER_SYMPY_CLASSES
                      and not isinstance(type(node), sp.core.function.UndefinedFunction)})
    if foreign:  # a class of the submission's own could redefine how the checker compares
        raise CheckFailed(f"{what} should be built from sympy's own classes, got {foreign}")
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
