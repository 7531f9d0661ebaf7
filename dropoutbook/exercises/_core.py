"""What every checker shares: the result type, the failure type, calling the student's code, the success line.

A checker of the book (``check_*`` in the chapter modules) calls the student's code through
:func:`call_student`, raises :class:`CheckFailed` with a specific hint when the answer is wrong,
and calls :func:`passed` once when it is right. :func:`checker` wraps every public checker (the
package ``dropoutbook.exercises`` applies it) so that it returns a :class:`CheckResult`, accepts a
``points=`` argument, and attaches the result to the :class:`CheckFailed` it raises.

The underscored helpers are shared by the chapters' checker modules (not part of the public API;
a helper that several chapters use lives here, not in one chapter's module): reading a student's
tensor, number, dict or sympy answer, comparing two expressions as functions, naming the usual
mistake behind a wrong survivor scale of inverted dropout (chapter 1), drawing the checkers' drop
rates, detecting random draws that are reused, patching a function for the duration of a check (a
forbidden shortcut, the whole library forbidden, an observed call, derivations whose masks are
shifted so that a typed-in answer shows), the messages for an answer that was typed in, and the
hooks through which the grader (:mod:`dropoutbook.exercises.grading`) verifies that a submission
changed nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import math
import numbers
from collections.abc import Mapping

import numpy as np
import sympy as sp
import torch

from .. import derivations
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


# --------------------------------------------------------------------------------------------
# helpers used by the checkers of several chapters: reading a student's number or dict, drawing
# rates, forbidding the library, detecting reused random draws, observing and shifting derivations

_Z = 5.0  # the tolerance of _reused_draws, in standard errors


@contextlib.contextmanager
def _library_forbidden(module, hint: str, *, names=None, imported: bool = False):
    """Run the block with every public function of the library ``module`` (and its re-export as
    ``dropoutbook.<name>``) replaced by one that fails the check: the exercise asks for plain torch.

    ``names`` restricts the ban to those public names. With ``imported=True`` only functions are
    banned (the library's classes, e.g. its result types, keep working inside the library) and a
    banned function also fails when it is called through a name imported before the check
    (``from dropoutbook import f``): its code is swapped for the failing one while the block runs
    (see :func:`_calls_forbidden`)."""
    import dropoutbook

    with contextlib.ExitStack() as stack:
        for name in (module.__all__ if names is None else names):
            original = getattr(module, name)
            if imported and not inspect.isfunction(original):
                continue
            stack.enter_context(_patched(module, name, _forbidden(f"dropoutbook.{name}", hint)))
            if getattr(dropoutbook, name, None) is original:
                stack.enter_context(_patched(dropoutbook, name, _forbidden(f"dropoutbook.{name}", hint)))
            if imported:
                stack.enter_context(_calls_forbidden(original, f"dropoutbook.{name}", hint))
        yield


_MESSAGE = "\x00dropoutbook forbidden call\x00"  # the placeholder constant of _forbidden_template


def _forbidden_template(*args, **kwargs):
    raise __import__("dropoutbook.exercises._core", fromlist=["CheckFailed"]).CheckFailed(
        "\x00dropoutbook forbidden call\x00")


@contextlib.contextmanager
def _calls_forbidden(fn, what: str, hint: str = ""):
    """While the block runs, calling the function object ``fn`` by any name fails the check as
    :func:`_forbidden` does: its ``__code__`` (and defaults) are swapped for a failing one and
    restored afterwards, also on error. A function with a closure cannot take that code and is
    left alone (its module attribute can still be patched)."""
    if not inspect.isfunction(fn) or fn.__closure__:
        yield
        return
    message = f"your code calls {what}, which the statement forbids{': ' + hint if hint else ''}"
    template = _forbidden_template.__code__
    code = template.replace(co_consts=tuple(message if c == _MESSAGE else c for c in template.co_consts),
                            co_name=fn.__code__.co_name, co_qualname=fn.__code__.co_qualname)
    saved = (fn.__code__, fn.__defaults__, fn.__kwdefaults__)
    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, None, None
    try:
        yield
    finally:
        fn.__code__, fn.__defaults__, fn.__kwdefaults__ = saved


def _drawn_rates(ranges, *, seed: int) -> list[float]:
    """One drop rate per ``(low, high)`` range, drawn uniformly by a generator seeded with ``seed`` and rounded
    to 3 decimals (so that messages show them exactly); the same rates on every call."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(len(ranges), generator=g, dtype=torch.float64).tolist()
    return [round(lo + (hi - lo) * v, 3) for (lo, hi), v in zip(ranges, u)]


def _real_number(value, name: str) -> float:
    """Read one real number from a student's answer: a Python, NumPy or sympy number, or a one-element
    tensor or array; a string, a bool, None, a complex number, NaN or inf fail with a message that says so."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.size != 1 if isinstance(value, np.ndarray) else value.numel() != 1:
            shape = tuple(value.shape)
            raise CheckFailed(f"{name} should be one number, got a {type(value).__name__} of shape {shape}")
        value = value.item()
    if isinstance(value, (str, bytes)):
        raise CheckFailed(f"{name} should be a number, got the string {value!r}: return the number itself, not its text")
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise CheckFailed(f"{name} should be a number, got {type(value).__name__}")
    if isinstance(value, sp.Basic):
        if not value.is_number:
            raise CheckFailed(f"{name} should be a number, got the expression {sp.sstr(value)} with the symbols "
                              f"{sorted(map(str, value.free_symbols))}")
        value = complex(value)
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        if complex(value).imag != 0:
            raise CheckFailed(f"{name} should be a real number, got the complex number {value}")
        value = complex(value).real
    if not isinstance(value, numbers.Real):
        raise CheckFailed(f"{name} should be a number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise CheckFailed(f"{name} is NaN (not a number): some step divided 0 by 0 or took the log of a negative number")
    if math.isinf(value):
        raise CheckFailed(f"{name} is {value}: the prediction is a finite number; look for a division by 0")
    return value


def _answer_dict(answer, keys, what: str) -> dict:
    """Check that ``answer`` is a dict with exactly ``keys``; the message lists the keys to return."""
    wanted = list(keys)
    if not isinstance(answer, dict):
        raise CheckFailed(f"{what} should return a dict with the keys {wanted}, got {type(answer).__name__}")
    if set(answer) != set(keys):
        missing = [k for k in wanted if k not in answer]
        extra = sorted(map(repr, set(answer) - set(keys)))
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected [{', '.join(extra)}]"] if extra else [])
        raise CheckFailed(f"{what} should return a dict with exactly the keys {wanted} ({'; '.join(parts)})")
    return answer


def _number_dict(answer, keys, what: str) -> dict:
    """A dict of real numbers (see :func:`_real_number`) with exactly ``keys``."""
    answer = _answer_dict(answer, keys, what)
    return {key: _real_number(answer[key], key) for key in keys}


def _agree(a: sp.Expr, b: sp.Expr, symbols, points) -> bool:
    """Whether two sympy expressions agree as functions of ``symbols`` at every point of ``points``
    (relative tolerance 1e-9). Numbers first, which is much faster than :func:`sp.simplify` and just
    as strict for the expressions of these exercises; where an expression cannot be evaluated at a
    point, :func:`~dropoutbook.exercises._core._same_function` decides."""
    for point in points:
        subs = dict(zip(symbols, point))
        try:
            va, vb = complex(a.subs(subs)), complex(b.subs(subs))
        except (TypeError, ValueError, ZeroDivisionError):
            return _same_function(a, b, symbols, points)
        if not all(map(math.isfinite, (va.real, va.imag, vb.real, vb.imag))):
            return _same_function(a, b, symbols, points)
        if not (math.isclose(va.real, vb.real, rel_tol=1e-9, abs_tol=1e-12)
                and math.isclose(va.imag, vb.imag, rel_tol=1e-9, abs_tol=1e-12)):
            return False
    return True


def _derived_dict(answer, keys, allowed: dict, what: str) -> dict:
    """A dict with exactly ``keys`` of sympy expressions in the symbols ``allowed`` (by name)."""
    answer = _answer_dict(answer, keys, what)
    return {key: _student_symbols(answer[key], allowed, f"the {key!r} entry") for key in keys}


def _reused_draws(values: torch.Tensor):
    """Where the random ``values`` reuse their draws, as ``(shift, where, agree, expected)``, or None.

    Two entries a fixed offset apart agree far more often than independent draws would when draws are
    reused (the same mask for two halves, a repeated or interleaved mask, ``u`` and ``1 - u``). Each
    dimension and the flattened tensor are compared with themselves shifted by 1 and by half their size;
    independent draws agree with probability Σ_v P(v)² (estimated from the values' frequencies), and the
    tolerance is 5 standard errors of the agreement fraction.
    """
    flat = values.reshape(-1)
    _, counts = torch.unique(flat, return_counts=True)
    expected = ((counts.double() / flat.numel()) ** 2).sum().item()
    views = [(flat, 0, "the flattened tensor")] + [(values, d, f"dimension {d}") for d in range(values.ndim)]
    for tensor, d, where in views:
        size = tensor.shape[d]
        for shift in sorted({1, size // 2}):
            if size < 2 or shift < 1:
                continue
            agree = (tensor == tensor.roll(shift, d)).double().mean().item()
            se = math.sqrt(max(expected * (1 - expected), 1e-12) / tensor.numel())
            if abs(agree - expected) > _Z * se + 1e-3:
                return shift, where, agree, expected
    return None


@contextlib.contextmanager
def _derivation_calls():
    """Record the calls of ``derivations.expectation`` and ``derivations.variance`` while the block runs."""
    with _recorded_calls(derivations, "expectation") as first, _recorded_calls(derivations, "variance") as second:
        calls: list = []
        yield calls
        calls.extend(first + second)


#: The factor by which :func:`_shifted_masks` scales the keep probability of every Bernoulli mask.
_SHIFT = sp.Rational(1, 2)


@contextlib.contextmanager
def _shifted_masks():
    """While the block runs, ``derivations.expectation`` and ``derivations.variance`` treat every
    mask distributed as ``Bernoulli(k)`` as ``Bernoulli(k/2)``. An answer computed with them moves
    accordingly; an answer typed in (perhaps next to an irrelevant call) does not."""
    def shifted(original):
        @functools.wraps(original)
        def call(expr, distributions, *args, **kwargs):
            if isinstance(distributions, Mapping):
                distributions = {s: derivations.Bernoulli(sp.sympify(d.keep) * _SHIFT)
                                 if isinstance(d, derivations.Bernoulli) else d for s, d in distributions.items()}
            return original(expr, distributions, *args, **kwargs)
        return call

    with _patched(derivations, "expectation", shifted(derivations.expectation)), \
            _patched(derivations, "variance", shifted(derivations.variance)):
        yield


def _not_following_message(what: str) -> str:
    return (f"{what} does not follow the mask distribution it passes to derivations.expectation/variance: "
            "when the checker draws every Bernoulli(k) mask as Bernoulli(k/2) inside those functions, your answer "
            "does not change as a computed one would. Part of it was typed in (or computed without the mask): "
            "let sympy compute the whole answer from the definition")


def _typed_message(what: str, functions: str) -> str:
    return (f"{what} never called {functions}: the answer was typed in, not computed. The exercise "
            "asks you to let sympy compute it, so that the result follows from the definition")
