"""Checkers of chapter 7 (DropBlock): the reference passes, the starter fails with "not written yet",
typical wrong answers (written as a student would) fail with their specific hint, and correct
answers written differently from the reference pass."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import sympy as sp
import torch
from torch.nn import functional as F

import dropoutbook as db
from dropoutbook import dropblock
from dropoutbook.exercises import (
    POSITION_RATES_EXERCISE,
    check_coverage_counts,
    check_padded_seed_rate,
    check_position_rates,
    check_seed_rate,
)
from helpers import assert_fails, assert_passes, starter

p, b = sp.Symbol("p", positive=True), sp.Symbol("b", positive=True, integer=True)
gamma_ = sp.Symbol("gamma", positive=True)


# --------------------------------------------------------------------------------------------
# exercise 1: coverage counts (db.coverage_counts is forbidden by the statement)


def reference_counts(height, width, block):
    counts = torch.zeros(height, width, dtype=torch.int64)
    for a in range(height - block + 1):
        for e in range(width - block + 1):
            counts[a:a + block, e:e + block] += 1
    return counts


def counts_by_convolution(height, width, block):
    seeds = torch.ones(1, 1, height - block + 1, width - block + 1)
    return F.conv_transpose2d(seeds, torch.ones(1, 1, block, block))[0, 0]


def counts_by_axes(height, width, block):
    def axis(n):
        return np.array([sum(1 for s in range(n - block + 1) if s <= i < s + block) for i in range(n)])
    return np.outer(axis(height), axis(width)).tolist()


def everywhere(h, w, k):  # seeds anywhere, blocks centred on them and cut at the border
    r = k // 2
    rows = [min(i, r) + min(h - 1 - i, r) + 1 for i in range(h)]
    cols = [min(j, r) + min(w - 1 - j, r) + 1 for j in range(w)]
    return np.outer(rows, cols)


def off_by_one(h, w, k):  # one block position too few along each axis
    counts = torch.zeros(h, w, dtype=torch.int64)
    for a in range(h - k):
        for e in range(w - k):
            counts[a:a + k, e:e + k] += 1
    return counts


def square_only(h, w, k):  # uses the height for both axes
    return reference_counts(h, h, k)[:, :w] if w <= h else torch.zeros(h, w)


@pytest.mark.parametrize("answer, hint", [
    (lambda h, w, k: torch.full((h, w), k * k), "every count is b²"),
    (everywhere, "seeds lie anywhere"),
    (lambda h, w, k: reference_counts(w, h, k), "swapped"),
    (off_by_one, "must sum to"),
    (square_only, "position"),
    (lambda h, w, k: "counts", "tensor or array"),
    (lambda h, w, k: db.coverage_counts(h, w, k), "dropoutbook.coverage_counts"),
    (lambda h, w, k: dropblock.coverage_counts(h, w, k), "forbids"),
    (lambda h, w, k: torch.full((h, w), float("nan")), "NaN"),
])
def test_coverage_counts_wrong_answers(answer, hint):
    assert_fails(check_coverage_counts, answer, hint)


def test_coverage_counts_correct_answers(capsys):
    assert_passes(capsys, check_coverage_counts, reference_counts)
    assert_passes(capsys, check_coverage_counts, counts_by_convolution)
    assert_passes(capsys, check_coverage_counts, counts_by_axes)
    assert_fails(check_coverage_counts, starter, "not written yet")


def test_coverage_counts_restores_the_library_after_a_forbidden_call():
    original = db.coverage_counts
    assert_fails(check_coverage_counts, lambda h, w, k: db.coverage_counts(h, w, k), "forbids")
    assert db.coverage_counts is original and dropblock.coverage_counts is original


# --------------------------------------------------------------------------------------------
# exercise 2: predict the drop rates of the corner and the centre (any number type)

GAMMA = POSITION_RATES_EXERCISE["gamma"]
RIGHT_CENTRE = 1 - (1 - GAMMA) ** 49


def ref_rates():
    return {"corner": GAMMA, "centre": RIGHT_CENTRE}


@pytest.mark.parametrize("answer, hint", [
    (lambda: {"corner": GAMMA, "centre": 49 * GAMMA}, "counts overlapping"),
    (lambda: {"corner": 1 - GAMMA, "centre": RIGHT_CENTRE}, "kept"),
    (lambda: {"corner": RIGHT_CENTRE, "centre": RIGHT_CENTRE}, "only 1 block position"),
    (lambda: {"corner": 0.5, "centre": RIGHT_CENTRE}, "count the blocks"),
    (lambda: {"corner": GAMMA}, "'centre'"),
    (lambda: {"corner": GAMMA, "centre": RIGHT_CENTRE, "edge": 0.1}, "'edge'"),
    (lambda: (GAMMA, RIGHT_CENTRE), "a dict with the keys"),
    (lambda: {"corner": "0.01", "centre": 0.1}, "should be a number"),
    (lambda: {"corner": GAMMA, "centre": float("nan")}, "NaN"),
    (lambda: {"corner": torch.tensor([GAMMA, GAMMA]), "centre": RIGHT_CENTRE}, "one number"),
])
def test_position_rates_wrong_answers(answer, hint):
    assert_fails(check_position_rates, answer, hint)


def test_position_rates_correct_answers(capsys):
    assert_passes(capsys, check_position_rates, ref_rates)
    assert_passes(capsys, check_position_rates,  # 0-d tensors, as torch computes them
                  lambda: {"corner": torch.tensor(GAMMA), "centre": 1 - torch.tensor(1 - GAMMA) ** 49})
    assert_passes(capsys, check_position_rates,
                  lambda: {"centre": np.float64(RIGHT_CENTRE), "corner": fractions.Fraction(1, 100)})
    assert_fails(check_position_rates, starter, "not written yet")


def test_position_rates_instructor_inputs():
    # an instructor's own numbers: a 10 x 12 map, 3 x 3 blocks, gamma = 0.05; the centre (5, 6) has c = 9
    ok = lambda: {"corner": 0.05, "centre": 1 - 0.95**9}  # noqa: E731
    result = check_position_rates(ok, height=10, width=12, block_size=3, gamma=0.05)
    assert result is None or result.passed
    assert_fails(lambda fn: check_position_rates(fn, height=10, width=12, block_size=3, gamma=0.05),
                 ref_rates, "corner")
    with pytest.raises(ValueError, match="gamma"):
        check_position_rates(ok, gamma=1.5)
    with pytest.raises(ValueError, match="block_size"):
        check_position_rates(ok, block_size=4)


# --------------------------------------------------------------------------------------------
# exercise 3: the seed rate by bisection (db.seed_rate is forbidden by the statement)


def bisection_rate(p_, height, width, block):
    counts = db.coverage_counts(height, width, block).double()
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 - (1 - mid) ** counts).mean().item() < p_ else (lo, mid)
    return (lo + hi) / 2


def tensor_bisection(p_, height, width, block):  # returns a 0-d tensor
    counts = db.coverage_counts(height, width, block).double()
    lo, hi = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    for _ in range(55):
        mid = (lo + hi) / 2
        low_side = (-torch.expm1(counts * torch.log1p(-mid))).mean() < p_
        lo, hi = torch.where(low_side, mid, lo), torch.where(low_side, hi, mid)
    return (lo + hi) / 2


def newton_rate(p_, height, width, block):
    c = db.coverage_counts(height, width, block).double().flatten()
    g = p_ / c.mean().item()
    for _ in range(50):
        d = (1 - (1 - g) ** c).mean().item() - p_
        slope = (c * (1 - g) ** (c - 1)).mean().item()
        g -= d / slope
    return g


def few_halvings(p_, height, width, block):
    counts = db.coverage_counts(height, width, block).double()
    lo, hi = 0.0, 1.0
    for _ in range(8):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 - (1 - mid) ** counts).mean().item() < p_ else (lo, mid)
    return (lo + hi) / 2


def fixed_map(p_, height, width, block):  # the 14 x 14, b = 7 map of the chapter, whatever is asked
    return bisection_rate(p_, 14, 14, 7)


@pytest.mark.parametrize("answer, hint", [
    (db.paper_seed_rate, "paper's first-order γ"),
    (lambda p_, h, w, k: p_ / k**2, "p/b²"),
    (lambda p_, h, w, k: 1 - (1 - p_) ** (1 / k**2), "covered by b² seeds"),
    (lambda p_, h, w, k: 1.5 * bisection_rate(p_, h, w, k), "too large"),
    (few_halvings, "γ is too"),
    (fixed_map, "γ is too"),
    (lambda p_, h, w, k: p_ * 20, "not a probability"),
    (lambda p_, h, w, k: "0.1", "should be a number"),
    (lambda p_, h, w, k: float("nan"), "NaN"),
    (lambda p_, h, w, k: db.seed_rate(p_, h, w, k), "dropoutbook.seed_rate"),
    (lambda p_, h, w, k: dropblock.seed_rate(p_, h, w, k), "forbids"),
])
def test_seed_rate_wrong_answers(answer, hint):
    assert_fails(check_seed_rate, answer, hint)


def test_seed_rate_correct_answers(capsys):
    assert_passes(capsys, check_seed_rate, bisection_rate)
    assert_passes(capsys, check_seed_rate, tensor_bisection)
    assert_passes(capsys, check_seed_rate, newton_rate)
    assert_fails(check_seed_rate, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 4: derive the padded seed rate with sp.solve (a typed answer fails)


def solved(equation_of):
    def derive():
        return sp.solve(sp.Eq(equation_of(gamma_), p), gamma_)[0]
    return derive


@pytest.mark.parametrize("answer, hint", [
    (solved(lambda g: 1 - (1 - g) ** b), "not b"),
    (solved(lambda g: b**2 * g), "first-order"),
    (lambda: 1 - sp.solve(sp.Eq((1 - gamma_) ** (b**2), 1 - p), gamma_)[0], "1 - γ"),
    # typed in, not computed
    (lambda: 1 - (1 - p) ** (1 / b**2), "typed"),
    (lambda: 1 - (1 - sp.Symbol("p")) ** (1 / sp.Symbol("b") ** 2), "typed"),
    (lambda: p / b**2, "typed"),
    (lambda: sp.Float(0.0117), "typed"),
    (lambda: 0.0117, "typed"),
    (lambda: p * sp.Symbol("H"), "uses the symbols ['H']"),
    (lambda: sp.Eq(p, b), "sympy expression"),
])
def test_padded_seed_rate_wrong_answers(answer, hint):
    assert_fails(check_padded_seed_rate, answer, hint)


def test_padded_seed_rate_wrong_exponent_is_named():
    assert_fails(check_padded_seed_rate, solved(lambda g: 1 - (1 - g) ** (1 / b**2)), "exponent is inverted")


def test_padded_seed_rate_correct_answers(capsys):
    assert_passes(capsys, check_padded_seed_rate, solved(lambda g: 1 - (1 - g) ** (b**2)))

    def through_the_keep_rate():  # solve for u = 1 - gamma, then gamma = 1 - u
        u = sp.Symbol("u", positive=True)
        (keep,) = sp.solve((1 - u ** (b**2)) - p, u)
        return sp.simplify(1 - keep)

    assert_passes(capsys, check_padded_seed_rate, through_the_keep_rate)

    def plain_symbols():  # symbols without assumptions, solutions as dicts
        pp, bb, g = sp.symbols("p b gamma")
        sols = sp.solve(1 - (1 - g) ** (bb**2) - pp, g, dict=True)
        return next(s[g] for s in sols if s[g].subs({pp: sp.Rational(1, 10), bb: 3}).is_real)

    assert_passes(capsys, check_padded_seed_rate, plain_symbols)
    assert_fails(check_padded_seed_rate, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# answers that passed an earlier version of the checkers


def test_coverage_counts_cached_by_map_size_fails():
    cache = {}

    def cached(h, w, k):  # keyed on the map only: the block size of the first call sticks
        return cache.setdefault((h, w), reference_counts(h, w, k))
    assert_fails(check_coverage_counts, cached, "14 x 14 map with block size 3", "must sum to")


def test_padded_seed_rate_typed_next_to_an_unrelated_solve():
    def typed():
        sp.solve(gamma_ - 1, gamma_)
        return 1 - (1 - p) ** (1 / b**2)
    assert_fails(check_padded_seed_rate, typed, "does not follow the equation", "typed in")


def test_padded_seed_rate_simplified_solution_passes(capsys):
    def simplified():
        (solution,) = sp.solve(sp.Eq(1 - (1 - gamma_) ** (b**2), p), gamma_)
        return sp.simplify(sp.powsimp(solution))
    assert_passes(capsys, check_padded_seed_rate, simplified)


def test_seed_rate_bisection_in_float32_is_told_to_use_float64():
    def in_float32(p_, height, width, block):
        counts = db.coverage_counts(height, width, block).float()
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2
            if (1 - (1 - middle) ** counts).mean().item() < p_:
                low = middle
            else:
                high = middle
        return torch.tensor((low + high) / 2)
    assert_fails(check_seed_rate, in_float32, "close, but", "float64")
