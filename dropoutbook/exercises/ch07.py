"""Checkers for the exercises of chapter 7, "DropBlock".

Each checker calls the student's function, prints one "Correct: ..." line on success, and
otherwise raises :class:`~dropoutbook.exercises.CheckFailed` naming the mistake (for example,
"that is the paper's first-order gamma: it ignores overlapping blocks").
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch

from .. import derivations
from ..dropblock import block_drop_fraction, coverage_counts, paper_seed_rate, seed_rate
from ._core import CheckFailed, call_student, passed

__all__ = ["check_coverage_counts", "check_seed_rate", "check_padded_seed_rate", "check_position_rates",
           "POSITION_RATES_EXERCISE"]

_COUNT_CASES = [(14, 14, 7), (5, 9, 3), (6, 6, 5), (7, 7, 7), (9, 4, 3)]
_RATE_CASES = [(0.1, 14, 14, 7), (0.1, 28, 28, 7), (0.3, 8, 8, 3), (0.05, 10, 17, 5), (0.1, 7, 7, 7)]


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
    several maps. Recognized mistakes: :math:`b^2` everywhere (border ignored), seeds allowed
    anywhere in the map, counts of the wrong total.
    """
    what = "your coverage counts"
    for height, width, b in _COUNT_CASES:
        arr = _as_counts(call_student(fn, height, width, b, what=what), height, width, what)
        truth = coverage_counts(height, width, b).numpy().astype(np.float64)
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
    passed(f"coverage counts right on {len(_COUNT_CASES)} maps (14 x 14, b = 7: corner 1, centre 49)")


def check_seed_rate(fn) -> None:
    r"""Check ``fn(p, height, width, block_size)``, the seed rate :math:`\gamma` with :math:`D(\gamma) = p` (chapter 7 exercises).

    The achieved dropped fraction :math:`D(\gamma)` (:func:`~dropoutbook.block_drop_fraction`)
    must equal ``p`` within :math:`10^{-7}` on several maps. Recognized mistakes: the paper's
    first-order rate, :math:`p / b^2`, and the rate of the padded variant
    :math:`1 - (1-p)^{1/b^2}`.
    """
    what = "your seed rate"
    for p, height, width, b in _RATE_CASES:
        gamma = call_student(fn, p, height, width, b, what=what)
        if isinstance(gamma, torch.Tensor) and gamma.numel() == 1:
            gamma = gamma.item()
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)):
            raise CheckFailed(f"{what} should return a float, got {type(gamma).__name__}")
        gamma = float(gamma)
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
        direction = "too small" if achieved < p else "too large"
        raise CheckFailed(f"{where}, not p: γ is {direction} (the right one is {seed_rate(p, height, width, b):.6g})")
    passed(f"D(γ) = p on {len(_RATE_CASES)} maps, e.g. γ = {seed_rate(0.1, 14, 14, 7):.6f} "
           f"for p = 0.1, 14 x 14, b = 7")


def check_padded_seed_rate(fn) -> None:
    r"""Check ``fn()``, a sympy expression in ``p`` and ``b``: the seed rate of the padded variant (chapter 7 exercises).

    When seeds may lie off the map, every position is covered by :math:`b^2` seeds; the answer
    must equal :func:`~dropoutbook.derivations.padded_seed_rate`, :math:`1 - (1-p)^{1/b^2}`.
    """
    what = "your seed rate"
    expr = call_student(fn, what=what)
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr):
        raise CheckFailed(f"{what} should return a sympy expression, got {type(expr).__name__}")
    p, b = derivations.drop_rate, sp.Symbol("b", positive=True, integer=True)
    allowed = {"p": p, "b": b}
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
    if unknown:
        raise CheckFailed(f"{what} uses the symbols {unknown}; write it in terms of p and b only")
    expr = expr.subs({s: allowed[s.name] for s in expr.free_symbols})
    truth = derivations.padded_seed_rate()
    points = [(0.1, 3), (0.3, 7), (0.05, 5)]

    def value(e, pt):
        return complex(e.subs({p: pt[0], b: pt[1]})).real

    def same(e1, e2):
        return all(math.isclose(value(e1, pt), value(e2, pt), rel_tol=1e-9, abs_tol=1e-12) for pt in points)

    if same(expr, truth):
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


#: Map size, block size and seed rate of the "predict" exercise of chapter 7.
POSITION_RATES_EXERCISE = {"height": 14, "width": 14, "block_size": 7, "gamma": 0.01}


def check_position_rates(fn) -> None:
    r"""Check ``fn()``, the predicted drop probabilities of the corner ``(0, 0)`` and the centre ``(7, 7)``
    for the numbers in :data:`~dropoutbook.exercises.ch07.POSITION_RATES_EXERCISE` (chapter 7 exercises).

    ``fn()`` returns a dict with the keys ``"corner"`` and ``"centre"``; each must equal
    :math:`1 - (1 - \gamma)^{c}` with the position's coverage count within :math:`10^{-6}`.
    Recognized mistakes: :math:`\gamma c` (overlaps ignored), :math:`(1-\gamma)^c` (the keep
    probability), and :math:`b^2` seeds at the corner.
    """
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("corner", "centre")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    ex = POSITION_RATES_EXERCISE
    counts = coverage_counts(ex["height"], ex["width"], ex["block_size"])
    gamma, b = ex["gamma"], ex["block_size"]
    truth = {"corner": 1 - (1 - gamma) ** counts[0, 0].item(), "centre": 1 - (1 - gamma) ** counts[7, 7].item()}
    for key in keys:
        value = answer[key]
        if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.floating)):
            raise CheckFailed(f"{key} should be a number, got {type(value).__name__}")
        value = float(value)
        if math.isclose(value, truth[key], rel_tol=1e-6, abs_tol=1e-9):
            continue
        c = counts[0, 0].item() if key == "corner" else counts[7, 7].item()
        known = [
            (gamma * c, f"{value:.4g} = γ·c counts overlapping blocks twice: the position is dropped when at "
                        f"least one of its {c} seeds is 1, with probability 1 - (1-γ)^c"),
            ((1 - gamma) ** c, f"{value:.4g} = (1-γ)^c is the probability that the position is kept"),
            (1 - (1 - gamma) ** (b * b), f"{value:.4g} assumes {b * b} seeds cover the {key}; only "
                                         f"{c} block position(s) cover it"),
        ]
        for wrong, message in known:
            if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-9):
                raise CheckFailed(f"{key}: {message}")
        raise CheckFailed(f"{key} = {value:.4g} is not right: count the blocks that cover it, then use "
                          "1 - (1-γ)^c")
    passed(f"corner {truth['corner']:.4f} (c = {counts[0, 0].item()}), "
           f"centre {truth['centre']:.4f} (c = {counts[7, 7].item()})")
