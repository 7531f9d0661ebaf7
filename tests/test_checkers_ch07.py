"""Checkers of chapter 7 (DropBlock): the reference passes, the starter fails with "not written yet",
and typical wrong answers fail with their specific hint."""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook.exercises import (
    POSITION_RATES_EXERCISE,
    check_coverage_counts,
    check_padded_seed_rate,
    check_position_rates,
    check_seed_rate,
)
from helpers import assert_fails, assert_passes, starter

p, b = sp.Symbol("p", positive=True), sp.Symbol("b", positive=True, integer=True)


# --------------------------------------------------------------------------------------------
# coverage counts


def reference_counts(height, width, block):
    counts = torch.zeros(height, width, dtype=torch.int64)
    for a in range(height - block + 1):
        for e in range(width - block + 1):
            counts[a:a + block, e:e + block] += 1
    return counts


def test_coverage_counts_reference_and_library_pass(capsys):
    assert_passes(capsys, check_coverage_counts, reference_counts)
    assert_passes(capsys, check_coverage_counts, db.coverage_counts)
    assert_passes(capsys, check_coverage_counts, lambda h, w, k: reference_counts(h, w, k).numpy().tolist())


def test_coverage_counts_starter_fails():
    assert_fails(check_coverage_counts, starter, "not written yet")


def test_coverage_counts_wrong_answers():
    assert_fails(check_coverage_counts, lambda h, w, k: torch.full((h, w), k * k), "every count is b²")

    def everywhere(h, w, k):
        r = k // 2
        rows = [min(i, r) + min(h - 1 - i, r) + 1 for i in range(h)]
        cols = [min(j, r) + min(w - 1 - j, r) + 1 for j in range(w)]
        return np.outer(rows, cols)

    assert_fails(check_coverage_counts, everywhere, "seeds lie anywhere")
    assert_fails(check_coverage_counts, lambda h, w, k: reference_counts(w, h, k), "swapped")

    def off_by_one(h, w, k):  # one block position too few along each axis
        counts = torch.zeros(h, w, dtype=torch.int64)
        for a in range(h - k):
            for e in range(w - k):
                counts[a:a + k, e:e + k] += 1
        return counts

    assert_fails(check_coverage_counts, off_by_one, "must sum to")
    assert_fails(check_coverage_counts, lambda h, w, k: "counts", "tensor or array")


# --------------------------------------------------------------------------------------------
# seed rate


def bisection_rate(p_, height, width, block):
    counts = db.coverage_counts(height, width, block).double()
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 - (1 - mid) ** counts).mean().item() < p_ else (lo, mid)
    return (lo + hi) / 2


def test_seed_rate_reference_and_library_pass(capsys):
    assert_passes(capsys, check_seed_rate, bisection_rate)
    assert_passes(capsys, check_seed_rate, db.seed_rate)


def test_seed_rate_starter_fails():
    assert_fails(check_seed_rate, starter, "not written yet")


def test_seed_rate_wrong_answers():
    assert_fails(check_seed_rate, db.paper_seed_rate, "paper's first-order γ")
    assert_fails(check_seed_rate, lambda p_, h, w, k: p_ / k**2, "p/b²")
    assert_fails(check_seed_rate, lambda p_, h, w, k: 1 - (1 - p_) ** (1 / k**2), "covered by b² seeds")
    assert_fails(check_seed_rate, lambda p_, h, w, k: 1.5 * db.seed_rate(p_, h, w, k), "too large")
    assert_fails(check_seed_rate, lambda p_, h, w, k: p_ * 20, "not a probability")
    assert_fails(check_seed_rate, lambda p_, h, w, k: "0.1", "should return a float")


# --------------------------------------------------------------------------------------------
# padded seed rate (derive)


def test_padded_seed_rate_reference_passes(capsys):
    def derive():
        gamma = sp.Symbol("gamma", positive=True)
        return sp.solve(sp.Eq(1 - (1 - gamma) ** (b**2), p), gamma)[0]

    assert_passes(capsys, check_padded_seed_rate, derive)
    assert_passes(capsys, check_padded_seed_rate, lambda: 1 - (1 - sp.Symbol("p")) ** (1 / sp.Symbol("b") ** 2))


def test_padded_seed_rate_starter_fails():
    assert_fails(check_padded_seed_rate, starter, "not written yet")


def test_padded_seed_rate_wrong_answers():
    assert_fails(check_padded_seed_rate, lambda: p / b**2, "first-order")
    assert_fails(check_padded_seed_rate, lambda: 1 - (1 - p) ** (b**2), "exponent is inverted")
    assert_fails(check_padded_seed_rate, lambda: (1 - p) ** (1 / b**2), "1 - γ")
    assert_fails(check_padded_seed_rate, lambda: 1 - (1 - p) ** (1 / b), "not b")
    assert_fails(check_padded_seed_rate, lambda: p * sp.Symbol("H"), "in terms of p and b")
    assert_fails(check_padded_seed_rate, lambda: sp.Eq(p, b), "sympy expression")
    assert_fails(check_padded_seed_rate, lambda: p**2, "the right one is")


# --------------------------------------------------------------------------------------------
# position rates (predict)


def test_position_rates_reference_passes(capsys):
    gamma = POSITION_RATES_EXERCISE["gamma"]
    assert_passes(capsys, check_position_rates, lambda: {"corner": gamma, "centre": 1 - (1 - gamma) ** 49})


def test_position_rates_starter_fails():
    assert_fails(check_position_rates, starter, "not written yet")


def test_position_rates_wrong_answers():
    gamma = POSITION_RATES_EXERCISE["gamma"]
    right_centre = 1 - (1 - gamma) ** 49
    assert_fails(check_position_rates, lambda: {"corner": gamma, "centre": 49 * gamma}, "counts overlapping")
    assert_fails(check_position_rates, lambda: {"corner": 1 - gamma, "centre": right_centre}, "kept")
    assert_fails(check_position_rates, lambda: {"corner": right_centre, "centre": right_centre},
                 "only 1 block position")
    assert_fails(check_position_rates, lambda: {"corner": 0.5, "centre": right_centre}, "count the blocks")
    assert_fails(check_position_rates, lambda: {"corner": gamma}, "exactly the keys")
    assert_fails(check_position_rates, lambda: {"corner": "0.01", "centre": 0.1}, "should be a number")
