"""Checkers for the exercises of chapter 7, "DropBlock".

Each checker calls the student's function, prints one "Correct: ..." line on success, and
otherwise raises :class:`~dropoutbook.exercises.CheckFailed` naming the mistake (for example,
"that is the paper's first-order gamma: it ignores overlapping blocks").
"""

from __future__ import annotations

import contextlib
import functools
import math
import types

import numpy as np
import sympy as sp
import torch

import dropoutbook

from .. import derivations, dropblock
from .._validation import check_positive_int, check_probability
from ..dropblock import (_check_block_size, block_drop_fraction, coverage_counts, paper_seed_rate,
                         seed_rate)
from ._core import (
    CheckFailed, _check_numbers, _forbidden, _library_forbidden, _number_dict, _patched, _real_number, _recorded_calls,
    _student_symbols, _typed_message, call_student, passed,
)

__all__ = ["check_coverage_counts", "check_seed_rate", "check_padded_seed_rate", "check_position_rates",
           "POSITION_RATES_EXERCISE"]

_COUNT_CASES = [(14, 14, 7), (5, 9, 3), (6, 6, 5), (7, 7, 7), (9, 4, 3), (14, 14, 3)]  # one map, two block sizes
_RATE_CASES = [(0.1, 14, 14, 7), (0.1, 28, 28, 7), (0.3, 8, 8, 3), (0.05, 10, 17, 5), (0.1, 7, 7, 7)]


def _drawn_maps(seed: int, n: int) -> list[tuple[int, int, int]]:
    """``n`` maps (height, width, odd block size) drawn by a checker's own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        height, width = (int(v) for v in torch.randint(3, 20, (2,), generator=g))
        b = 2 * int(torch.randint(0, (min(height, width) + 1) // 2, (), generator=g)) + 1
        out.append((height, width, b))
    return out


def _as_counts(out, height: int, width: int, what: str) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should return a tensor or array of counts, got {type(out).__name__}") from None
    if arr.shape != (height, width):
        hint = " (rows and columns swapped?)" if arr.shape == (width, height) else ""
        raise CheckFailed(f"for a {height} x {width} map {what} should return shape ({height}, {width}), "
                          f"got {arr.shape}{hint}")
    return arr


def _counts_with_seeds_everywhere(height: int, width: int, b: int) -> np.ndarray:
    """A typical mistake: seeds anywhere in the map, blocks centred on them and cut at the border."""
    h = b // 2
    rows = np.array([min(i, h) + min(height - 1 - i, h) + 1 for i in range(height)])
    cols = np.array([min(j, h) + min(width - 1 - j, h) + 1 for j in range(width)])
    return np.outer(rows, cols).astype(np.float64)


def check_coverage_counts(fn) -> None:
    r"""Check ``fn(height, width, block_size)``, the coverage counts :math:`c(i, j)` (chapter 7 exercises).

    :math:`c(i, j)` is the number of seed positions (positions where a whole block fits) whose
    block covers :math:`(i, j)`; it is compared with :func:`~dropoutbook.coverage_counts` on
    five maps and four drawn by the checker's own seeded generator. The statement forbids calling
    :func:`~dropoutbook.coverage_counts`: a call of it (or of another function of the library's
    DropBlock module) fails the check. Recognized mistakes: :math:`b^2` everywhere (border ignored), seeds allowed
    anywhere in the map, counts of the wrong total.
    """
    what = "your coverage counts"
    for height, width, b in [*_COUNT_CASES, *_drawn_maps(70, 4)]:
        truth = coverage_counts(height, width, b).numpy().astype(np.float64)
        with _library_forbidden(dropblock, "count the block positions yourself (a loop is fine)"):
            out = call_student(fn, height, width, b, what=what)
        arr = _as_counts(out, height, width, what)
        if not np.isfinite(arr).all():
            raise CheckFailed(f"for a {height} x {width} map your counts contain NaN or infinite values")
        if np.array_equal(arr, truth):
            continue
        where = f"on a {height} x {width} map with block size {b}"
        if np.all(arr == b * b):
            raise CheckFailed(f"{where} every count is b² = {b * b}: near the border fewer blocks fit, "
                              f"so the corner (0, 0) is covered by {int(truth[0, 0])} block only")
        if np.array_equal(arr, _counts_with_seeds_everywhere(height, width, b)):
            raise CheckFailed(f"{where} your counts let seeds lie anywhere in the map; DropBlock draws seeds "
                              "only where the whole b x b block fits inside the map")
        total = b * b * (height - b + 1) * (width - b + 1)
        if arr.sum() != total:
            raise CheckFailed(f"{where} your counts sum to {arr.sum():g}, but each of the "
                              f"{(height - b + 1) * (width - b + 1)} seed positions covers b² = {b * b} "
                              f"positions, so they must sum to {total}")
        i, j = map(int, np.argwhere(arr != truth)[0])
        raise CheckFailed(f"{where} position ({i}, {j}) is covered by {int(truth[i, j])} blocks, "
                          f"yours says {arr[i, j]:g}")
    passed(f"coverage counts right on {len(_COUNT_CASES) + 4} maps (14 x 14, b = 7: corner 1, centre 49)")


def check_seed_rate(fn) -> None:
    r"""Check ``fn(p, height, width, block_size)``, the seed rate :math:`\gamma` with :math:`D(\gamma) = p` (chapter 7 exercises).

    The achieved dropped fraction :math:`D(\gamma)` (:func:`~dropoutbook.block_drop_fraction`)
    must equal ``p`` within :math:`10^{-7}` on five maps and three drawn (with ``p``) by the
    checker's own seeded generator; any real number type is accepted. The statement forbids
    calling :func:`~dropoutbook.seed_rate`: a call fails the check. Recognized mistakes: the paper's
    first-order rate, :math:`p / b^2`, and the rate of the padded variant
    :math:`1 - (1-p)^{1/b^2}`.
    """
    what = "your seed rate"
    g = torch.Generator().manual_seed(71)
    drawn = [(round(0.03 + 0.4 * torch.rand((), generator=g, dtype=torch.float64).item(), 3), *m)
             for m in _drawn_maps(72, 3)]
    for p, height, width, b in [*_RATE_CASES, *drawn]:
        stand_in = _forbidden("dropoutbook.seed_rate", "find γ yourself by bisection on D(γ) = p")
        with _patched(dropoutbook, "seed_rate", stand_in), _patched(dropblock, "seed_rate", stand_in):
            gamma = call_student(fn, p, height, width, b, what=what)
        gamma = _real_number(gamma, f"{what} for p = {p} on a {height} x {width} map")
        if not 0.0 <= gamma <= 1.0:
            raise CheckFailed(f"{what} for p = {p} on a {height} x {width} map is {gamma:.4g}, "
                              "not a probability in [0, 1]")
        achieved = block_drop_fraction(gamma, height, width, b)
        if abs(achieved - p) <= 1e-7:
            continue
        where = f"p = {p}, {height} x {width} map, block {b}: γ = {gamma:.6g} drops {achieved:.4f} on average"
        known = [
            (paper_seed_rate(p, height, width, b), "that is the paper's first-order γ: it counts overlapping "
             "blocks twice, so fewer positions are dropped than p. Solve D(γ) = p instead (bisection works)"),
            (p / b**2, "that is γ = p/b²: it ignores both the overlaps and the border"),
            (1 - (1 - p) ** (1 / b**2), "that would be right if every position were covered by b² seeds; near the "
             "border fewer seeds cover a position. Solve the mean over positions, D(γ) = p"),
        ]
        for value, message in known:
            if math.isclose(gamma, value, rel_tol=1e-6):
                raise CheckFailed(f"{where}: {message}")
        if abs(achieved - p) <= 1e-5:
            raise CheckFailed(f"{where}: close, but D(γ) must equal p within 1e-7. Bisect in float64 "
                              "(db.coverage_counts(...).double(), Python floats) and halve the interval 50 times or more")
        direction = "too small" if achieved < p else "too large"
        raise CheckFailed(f"{where}, not p: γ is {direction} (the right one is {seed_rate(p, height, width, b):.6g})")
    passed(f"D(γ) = p on {len(_RATE_CASES) + 3} maps, e.g. γ = {seed_rate(0.1, 14, 14, 7):.6f} "
           f"for p = 0.1, 14 x 14, b = 7")


@contextlib.contextmanager
def _halved_rate_in_solve():
    """While the block runs, ``sp.solve`` and ``sp.solveset`` solve their equations with every symbol
    named ``p`` replaced by ``p/2``: a solution found by them moves accordingly, a typed one does not."""
    def halved(original):
        @functools.wraps(original)
        def call(f, *args, **kwargs):
            def half(e):
                if isinstance(e, (list, tuple, set)):
                    return type(e)(half(x) for x in e)
                e = sp.sympify(e)
                return e.subs({s: s / 2 for s in e.free_symbols if getattr(s, "name", None) == "p"})
            return original(half(f), *args, **kwargs)
        return call

    with _patched(sp, "solve", halved(sp.solve)), _patched(sp, "solveset", halved(sp.solveset)):
        yield


def check_padded_seed_rate(fn) -> None:
    r"""Check ``fn()``, a sympy expression in ``p`` and ``b`` found by ``sp.solve``: the seed rate of the padded variant (chapter 7 exercises).

    When seeds may lie off the map, every position is covered by :math:`b^2` seeds; the answer
    must equal :func:`~dropoutbook.derivations.padded_seed_rate`, :math:`1 - (1-p)^{1/b^2}`. The
    checker observes ``sp.solve`` (and ``sp.solveset``): an answer typed in without solving fails, and
    so does one that does not follow the equation passed to them (a second run halves ``p`` inside
    them: a typed answer next to an unrelated call stays put).
    """
    what = "your seed rate"
    with _recorded_calls(sp, "solve") as solves, _recorded_calls(sp, "solveset") as solvesets:
        expr = call_student(fn, what=what)
    p, b = derivations.drop_rate, sp.Symbol("b", positive=True, integer=True)
    expr = _student_symbols(expr, {"p": p, "b": b}, what)
    if not (solves or solvesets):
        raise CheckFailed(_typed_message(what, "sp.solve"))
    truth = derivations.padded_seed_rate()
    points = [(0.1, 3), (0.3, 7), (0.05, 5)]

    def value(e, pt):
        return complex(e.subs({p: pt[0], b: pt[1]})).real

    def same(e1, e2):
        return all(math.isclose(value(e1, pt), value(e2, pt), rel_tol=1e-9, abs_tol=1e-12) for pt in points)

    if same(expr, truth):
        with _halved_rate_in_solve():
            moved = _student_symbols(call_student(fn, what=what), {"p": p, "b": b}, what)
        if not same(moved, truth.subs(p, p / 2)):
            raise CheckFailed(f"{what} does not follow the equation it passes to sp.solve: when the checker halves p "
                              "inside sp.solve, your answer does not change as a solved one would. It was typed in "
                              "next to an unrelated call: return (a simplification of) what sp.solve finds for "
                              "1 - (1-γ)^(b²) = p")
        passed(f"γ = {truth}")
        return
    mistakes = [
        (p / b**2, "p/b² is only the first-order solution; solve 1 - (1-γ)^(b²) = p exactly"),
        (1 - (1 - p) ** (b**2), "the exponent is inverted: from (1-γ)^(b²) = 1-p, γ = 1 - (1-p)^(1/b²)"),
        ((1 - p) ** (1 / b**2), "that is 1 - γ, the probability that a seed is 0"),
        (1 - (1 - p) ** (1 / b), "a position is covered by b² seeds (a b x b square), not b"),
    ]
    for wrong, message in mistakes:
        if same(expr, wrong):
            raise CheckFailed(message)
    raise CheckFailed(f"at p = 0.1, b = 3 your γ is {value(expr, points[0]):.6g}; the right one is "
                      f"{value(truth, points[0]):.6g}")


#: Map size, block size and seed rate of the "predict" exercise of chapter 7 (the defaults of
#: :func:`~dropoutbook.exercises.check_position_rates`; the notebook prints them).
POSITION_RATES_EXERCISE = types.MappingProxyType(dict(height=14, width=14, block_size=7, gamma=0.01))


def check_position_rates(fn, *, height: int = 14, width: int = 14, block_size: int = 7,
                         gamma: float = 0.01) -> None:
    r"""Check ``fn()``, the predicted drop probabilities of the corner ``(0, 0)`` and the centre
    ``(height // 2, width // 2)`` of a map with the given size, block size and seed rate
    (chapter 7 exercises; the defaults are :data:`~dropoutbook.exercises.ch07.POSITION_RATES_EXERCISE`).

    ``fn()`` returns a dict with the keys ``"corner"`` and ``"centre"``, any real numbers; each must
    equal :math:`1 - (1 - \gamma)^{c}` with the position's coverage count within :math:`10^{-6}`.
    Recognized mistakes: :math:`\gamma c` (overlaps ignored), :math:`(1-\gamma)^c` (the keep
    probability), and :math:`b^2` seeds at the corner.
    """
    height, width = check_positive_int(height, "height"), check_positive_int(width, "width")
    b = _check_block_size(block_size)
    gamma = check_probability(gamma, "gamma")
    what = "your prediction"
    keys = ("corner", "centre")
    answer = _number_dict(call_student(fn, what=what), keys, what)
    counts = coverage_counts(height, width, b)
    centre = (height // 2, width // 2)
    c = {"corner": counts[0, 0].item(), "centre": counts[centre].item()}
    truth = {k: 1 - (1 - gamma) ** c[k] for k in keys}
    mistakes = {
        k: [(gamma * c[k], f"γ·c counts overlapping blocks twice: the position is dropped when at least one "
                           f"of its {c[k]} seeds is 1, with probability 1 - (1-γ)^c"),
            ((1 - gamma) ** c[k], "(1-γ)^c is the probability that the position is kept"),
            (1 - (1 - gamma) ** (b * b), f"that assumes {b * b} seeds cover the {k}; only "
                                        f"{c[k]} block position(s) cover it")]
        for k in keys
    }
    mistakes = {k: [(w, m) for w, m in v if not math.isclose(w, truth[k], rel_tol=1e-6, abs_tol=1e-9)]
                for k, v in mistakes.items()}
    _check_numbers(answer, truth, keys, mistakes,
                   retry=f"count the blocks that cover it (the corner is (0, 0), the centre {centre}), "
                         "then use 1 - (1-γ)^c")
    passed(f"corner {truth['corner']:.4f} (c = {c['corner']}), centre {truth['centre']:.4f} (c = {c['centre']})")
