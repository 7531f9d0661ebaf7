"""Checker layer of chapter 2: each checker passes the reference and correct answers written
differently, fails the blank starter with "not written yet", and fails the typical wrong answers a
student writes, each with the message that names its mistake."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook.exercises import (
    SHRINKAGE_EXERCISE,
    CheckFailed,
    check_derived_penalty,
    check_dropout_penalty,
    check_dropout_ridge,
    check_logistic_penalty,
    check_shrinkage_prediction,
)
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# implement: the dropout penalty


def ref_penalty(w, X, p):
    return p / (2 * X.shape[0] * (1 - p)) * ((X * w) ** 2).sum()


def penalty_by_matrix_product(w, X, p):
    n = len(X)
    return float((X**2 @ w**2).sum() * p / (1 - p) / (2 * n))


def penalty_by_einsum(w, X, p):
    odds = p / (1 - p)
    return 0.5 * odds * torch.einsum("ij,j->", X**2, w**2) / X.size(0)


@pytest.mark.parametrize("fn", [ref_penalty, penalty_by_matrix_product, penalty_by_einsum])
def test_check_dropout_penalty_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_dropout_penalty, fn)


def test_check_dropout_penalty_starter_not_written_yet():
    assert_fails(check_dropout_penalty, starter, "not written yet")


def pen(factor):
    """A penalty with the book's form and a wrong constant factor(n, p) in place of p/(2n(1-p))."""
    return lambda w, X, p: factor(X.shape[0], p) * ((X * w) ** 2).sum()


def square_of_sum(w, X, p):
    return p / (2 * X.shape[0] * (1 - p)) * ((X @ w) ** 2).sum()


def in_place(w, X, p):
    X.mul_(w)
    return p / (2 * X.shape[0] * (1 - p)) * (X**2).sum()


def nonzero_at_p_zero(w, X, p):
    return ref_penalty(w, X, p) + 1e-3


def hard_coded_n(w, X, p):  # the number of examples typed in
    return p / (2 * 7 * (1 - p)) * ((X * w) ** 2).sum()


def hard_coded_rate(w, X, p):
    return 0.3 / (2 * X.shape[0] * 0.7) * ((X * w) ** 2).sum()


def mean_over_entries(w, X, p):  # divides by n·d instead of n
    return p / (2 * (1 - p)) * ((X * w) ** 2).mean()


def divides_by_features(w, X, p):  # n read from the wrong dimension
    return p / (2 * X.shape[1] * (1 - p)) * ((X * w) ** 2).sum()


def with_the_library(w, X, p):
    return db.dropout_penalty(w, X, p)


@pytest.mark.parametrize("fn, hints", [
    (pen(lambda n, p: p / (n * (1 - p))), ["twice the book's penalty", "1/(2n)"]),
    (pen(lambda n, p: p / (2 * (1 - p))), ["n times the book's penalty", "Wager"]),
    (pen(lambda n, p: (1 - p) / (2 * n * p)), ["drop and keep are swapped"]),
    (pen(lambda n, p: p / (2 * n)), ["factor 1/(1-p) is missing"]),
    (pen(lambda n, p: p * (1 - p) / (2 * n)), ["standard dropout"]),
    (pen(lambda n, p: p / (4 * n * (1 - p))), ["half the book's penalty"]),
    (square_of_sum, ["squared the whole prediction", "Σ_j w_j² x_ij²"]),
    (in_place, ["changed w or X in place"]),
    (nonzero_at_p_zero, ["should be"]),
    (hard_coded_n, ["does not follow the number of examples", "X.shape[0]"]),
    (hard_coded_rate, ["does not change with p", "hard-coded"]),
    (mean_over_entries, ["n·d", "mean over all entries"]),
    (divides_by_features, ["number of features", "X.shape[0]"]),
    (with_the_library, ["dropoutbook.dropout_penalty", "forbids"]),
    (lambda w, X, p: "0.5", ["should be a number", "string"]),
    (lambda w, X, p: X.sum(0), ["one number", "shape"]),
    (lambda w, X, p: float("nan"), ["NaN"]),
], ids=["1/n", "sum", "swapped", "no-1/(1-p)", "standard", "half", "square-of-sum", "in-place", "offset",
        "hard-coded-n", "hard-coded-p", "mean-over-entries", "n-from-features", "library", "str", "vector", "nan"])
def test_check_dropout_penalty_rejects_typical_mistakes(fn, hints):
    assert_fails(check_dropout_penalty, fn, *hints)


def test_check_dropout_penalty_requires_zero_at_p_zero():
    def zero_breaks(w, X, p):
        return ref_penalty(w, X, p) if p > 0 else torch.tensor(1.0)
    assert_fails(check_dropout_penalty, zero_breaks, "with p = 0 nothing is dropped")


def test_check_dropout_penalty_tries_several_shapes_and_rates():
    seen = []

    def spy(w, X, p):
        seen.append((tuple(X.shape), p))
        return ref_penalty(w, X, p)

    check_dropout_penalty(spy)
    shapes, rates = {s for s, _ in seen}, {p for _, p in seen if p > 0}
    assert len(shapes) >= 3 and any(d == 1 for _, d in shapes) and len(rates) >= 3 and 0.5 not in rates


# --------------------------------------------------------------------------------------------
# derive: the penalty for one example, two features, for the mask distribution the checker passes

w1, w2, x1, x2, y, p = sp.symbols("w1 w2 x1 x2 y p")
S = w1**2 * x1**2 + w2**2 * x2**2
PLAIN = sp.Rational(1, 2) * (y - w1 * x1 - w2 * x2) ** 2
m1, m2 = sp.symbols("m1 m2")


def dropped_loss(scale=None):
    scale = 1 / (1 - p) if scale is None else scale
    return sp.Rational(1, 2) * (y - w1 * m1 * x1 * scale - w2 * m2 * x2 * scale) ** 2


def ref_derived(mask):
    keep = {m1: mask, m2: mask}
    return sp.simplify(db.derivations.expectation(dropped_loss(), keep) - PLAIN)


def derived_by_terms(mask):  # E[(y - a - b)^2] expanded by hand into moments, still computed by sympy
    expect = functools.partial(db.derivations.expectation, distributions={m1: mask, m2: mask})
    a, b = w1 * m1 * x1 / (1 - p), w2 * m2 * x2 / (1 - p)
    second = y**2 - 2 * y * (expect(a) + expect(b)) + expect(a**2) + expect(b**2) + 2 * expect(a * b)
    return second / 2 - PLAIN  # not simplified


def derived_unsimplified(mask):
    return db.derivations.expectation(dropped_loss(), {m1: mask, m2: mask}) - PLAIN


@pytest.mark.parametrize("fn", [ref_derived, derived_by_terms, derived_unsimplified])
def test_check_derived_penalty_passes_correct_derivations(capsys, fn):
    assert_passes(capsys, check_derived_penalty, fn)


def test_check_derived_penalty_starter_not_written_yet():
    assert_fails(check_derived_penalty, starter, "not written yet")


def typed(expr):
    return lambda mask: expr


def fixed_distribution(mask):
    return ref_derived(db.derivations.Bernoulli(1 - p))


def swapped_mask(mask):
    keep = {m1: db.derivations.Bernoulli(p), m2: db.derivations.Bernoulli(p)}
    return sp.simplify(db.derivations.expectation(dropped_loss(), keep) - PLAIN)


def standard_penalty(mask):
    return sp.simplify(db.derivations.expectation(dropped_loss(sp.Integer(1)), {m1: mask, m2: mask}) - PLAIN)


def forgot_the_half_unsimplified(mask):  # both losses without the ½, not simplified: twice the penalty
    return db.derivations.expectation(2 * dropped_loss(), {m1: mask, m2: mask}) - 2 * PLAIN


def whole_expected_loss(mask):
    return db.derivations.expectation(dropped_loss(), {m1: mask, m2: mask})


def one_mask_for_both(mask):  # the same mask symbol for both features
    loss = sp.Rational(1, 2) * (y - (w1 * x1 + w2 * x2) * m1 / (1 - p)) ** 2
    return sp.simplify(db.derivations.expectation(loss, {m1: mask}) - PLAIN)


@pytest.mark.parametrize("fn, hints", [
    (typed(p / (2 * (1 - p)) * S), ["typed in", "the argument mask"]),
    (typed(sp.Rational(1, 2) * p / (1 - p) * S), ["typed in"]),
    (fixed_distribution, ["typed in", "a fixed distribution"]),
    (swapped_mask, ["drop and keep are swapped", "Bernoulli(p)"]),
    (standard_penalty, ["not scaled by 1/(1-p)", "terms in y"]),
    (forgot_the_half_unsimplified, ["twice too large", "½"]),
    (whole_expected_loss, ["whole expected loss", "minus the plain loss"]),
    (one_mask_for_both, ["one mask for both features", "m1 and m2"]),
    (typed(p / (1 - p) * S), ["twice too large", "½"]),
    (typed((1 - p) / (2 * p) * S), ["drop and keep are swapped"]),
    (typed(p / (2 * (1 - p) ** 2) * S), ["one factor 1/(1-p) too many"]),
    (typed(S / (2 * (1 - p))), ["Var[w_j x~_j]"]),
    (typed(p / (2 * (1 - p)) * S + y * p), ["depends on y"]),
    (typed(p**2 * S), ["your expression gives"]),
    (typed(p / (2 * (1 - p)) * sp.Symbol("z") ** 2), ["uses the symbols ['z']"]),
    (typed("p*w1**2"), ["got str"]),
], ids=["typed", "typed-rational", "fixed-distribution", "swapped", "standard", "no-half-unsimplified",
        "whole-loss", "one-mask", "twice", "keep-convention", "extra-factor", "second-moment", "y-term", "other",
        "unknown-symbol", "str"])
def test_check_derived_penalty_rejects_typical_mistakes(fn, hints):
    assert_fails(check_derived_penalty, fn, *hints)


def test_check_derived_penalty_does_not_say_depends_on_y_when_y_cancels():
    message = assert_fails(check_derived_penalty, forgot_the_half_unsimplified)
    assert "depends on y" not in message


# --------------------------------------------------------------------------------------------
# implement: the dropout-ridge solution


def ref_ridge(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram + p / (1 - p) * torch.diag(torch.diagonal(gram)), X.T @ y)


def ridge_by_inverse(X, y, p):
    lam = p / (1 - p) * (X**2).sum(0)
    return torch.linalg.inv(X.T @ X + torch.diag(lam)) @ X.T @ y


def ridge_by_augmented_least_squares(X, y, p):  # least squares on rows sqrt(lambda_j) e_j appended
    lam = p / (1 - p) * (X**2).sum(dim=0)
    A = torch.cat([X, torch.diag(lam.sqrt())])
    b = torch.cat([y, torch.zeros(X.shape[1], dtype=y.dtype)])
    return torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1)


@pytest.mark.parametrize("fn", [ref_ridge, ridge_by_inverse, ridge_by_augmented_least_squares])
def test_check_dropout_ridge_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_dropout_ridge, fn)


def test_check_dropout_ridge_starter_not_written_yet():
    assert_fails(check_dropout_ridge, starter, "not written yet")


def solve_with(matrix):
    return lambda X, y, p: torch.linalg.solve(matrix(X, p), X.T @ y)


eye = lambda X: torch.eye(X.shape[1], dtype=X.dtype)  # noqa: E731
diag = lambda X: torch.diag(torch.diagonal(X.T @ X))  # noqa: E731


def modifies_input(X, y, p):
    out = ref_ridge(X, y, p)
    y.zero_()
    return out


def hard_coded_features(X, y, p):  # three features typed in
    gram = X.T @ X
    return torch.linalg.solve(gram + p / (1 - p) * gram * torch.eye(3, dtype=X.dtype), X.T @ y)


def hard_coded_rate(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram + 0.3 / 0.7 * torch.diag(torch.diagonal(gram)), X.T @ y)


def column_vector(X, y, p):
    return ref_ridge(X, y, p).unsqueeze(1)


def with_the_library(X, y, p):
    return db.dropout_ridge_solution(X, y, p)


@pytest.mark.parametrize("fn, hints", [
    (solve_with(lambda X, p: X.T @ X + p / (1 - p) * eye(X)), ["weight decay with λ = p/(1-p)", "diag(XᵀX)"]),
    (solve_with(lambda X, p: X.T @ X + X.shape[0] * p / (1 - p) * eye(X)), ["one λ = n p/(1-p)"]),
    (solve_with(lambda X, p: X.T @ X + p * diag(X)), ["factor is p/(1-p), not p"]),
    (solve_with(lambda X, p: X.T @ X + (1 - p) / p * diag(X)), ["drop and keep are swapped"]),
    (solve_with(lambda X, p: X.T @ X / (1 - p)), ["all of XᵀX", "off-diagonal"]),
    (solve_with(lambda X, p: X.T @ X), ["least squares"]),
    (modifies_input, ["changed X or y in place"]),
    (hard_coded_features, ["raised RuntimeError", "features"]),
    (hard_coded_rate, ["does not change with p", "hard-coded"]),
    (column_vector, ["shape (", "one weight per feature"]),
    (with_the_library, ["dropoutbook.dropout_ridge_solution", "forbids"]),
    (lambda X, y, p: ref_ridge(X, y, p).numpy(), ["should return a torch.Tensor"]),
    (lambda X, y, p: ref_ridge(X, y, p)[:2], ["one weight per feature"]),
    (lambda X, y, p: ref_ridge(X, y, p) * 1.01, ["your weights are"]),
], ids=["decay", "decay-n", "p-not-odds", "swapped", "scaled-gram", "ols", "in-place", "hard-coded-d",
        "hard-coded-p", "column", "library", "numpy", "shape", "other"])
def test_check_dropout_ridge_rejects_typical_mistakes(fn, hints):
    assert_fails(check_dropout_ridge, fn, *hints)


# --------------------------------------------------------------------------------------------
# predict: shrinkage of two orthogonal features


def stated_shrinkage(p=SHRINKAGE_EXERCISE["p"], sum_of_squares=SHRINKAGE_EXERCISE["sum_of_squares"],
                     weight_decay=SHRINKAGE_EXERCISE["weight_decay"]):
    (s1, s2), lam = sum_of_squares, weight_decay
    return {"dropout": (1 - p, 1 - p), "weight_decay": (s1 / (s1 + lam), s2 / (s2 + lam))}


def test_check_shrinkage_passes_reference(capsys):
    assert_passes(capsys, check_shrinkage_prediction, stated_shrinkage)
    assert_passes(capsys, check_shrinkage_prediction, lambda: {k: list(v) for k, v in stated_shrinkage().items()})


@pytest.mark.parametrize("convert", [np.array, torch.tensor, lambda v: tuple(np.float32(a) for a in v),
                                     lambda v: tuple(torch.tensor(a) for a in v)],
                         ids=["array", "tensor", "np.float32", "0-d-tensors"])
def test_check_shrinkage_accepts_any_real_number_type(capsys, convert):
    assert_passes(capsys, check_shrinkage_prediction, lambda: {k: convert(v) for k, v in stated_shrinkage().items()})


def test_check_shrinkage_takes_the_instructors_numbers(capsys):
    numbers = {"p": 0.35, "sum_of_squares": (4.0, 25.0), "weight_decay": 5.0}
    check = functools.partial(check_shrinkage_prediction, **numbers)
    assert_passes(capsys, check, lambda: stated_shrinkage(**numbers))
    assert_fails(check, stated_shrinkage, "is not right")


def test_check_shrinkage_validates_the_instructors_numbers():
    with pytest.raises(ValueError, match="p must be in"):
        check_shrinkage_prediction(stated_shrinkage, p=1.0)
    with pytest.raises(ValueError, match="sum_of_squares"):
        check_shrinkage_prediction(stated_shrinkage, sum_of_squares=(1.0, -2.0))
    with pytest.raises(ValueError, match="weight_decay"):
        check_shrinkage_prediction(stated_shrinkage, weight_decay=float("nan"))


def test_check_shrinkage_starter_not_written_yet():
    assert_fails(check_shrinkage_prediction, starter, "not written yet")


def _with(**changes):
    answer = stated_shrinkage()
    answer.update(changes)
    return answer


@pytest.mark.parametrize("answer, hints", [
    (_with(dropout=(1.25, 1.25)), ["dropout", "dropout shrinks", "(1-p)·w_ols_j"]),
    (_with(dropout=(0.2, 0.2)), ["keep probability 1 - p"]),
    (_with(dropout=(1 / (1 + 0.25), 100 / (100 + 0.25))), ["not p/(1-p)", "grows with the feature's scale"]),
    (_with(dropout=stated_shrinkage()["weight_decay"]), ["weight decay's factors"]),
    (_with(weight_decay=(10 / 11, 10 / 110)), ["fraction removed"]),
    (_with(weight_decay=(1 / 11, 1 / 11)), ["depends on each feature"]),
    (_with(weight_decay=(0.8, 0.8)), ["dropout's factors"]),
    (_with(weight_decay=(0.5, 0.5)), ["weight_decay", "is not right"]),
    (_with(dropout=0.8), ["should be a pair"]),
    (_with(dropout=(0.8, float("nan"))), ["NaN"]),
    (_with(dropout=(0.8, float("inf"))), ["inf"]),
    ({"dropout": (0.8, 0.8)}, ["exactly the keys ['dropout', 'weight_decay']", "missing ['weight_decay']"]),
    ([(0.8, 0.8), (0.09, 0.9)], ["should return a dict", "'dropout'"]),
    (_with(dropout=("0.8", 0.8)), ["should be a number", "string"]),
], ids=["inverse", "p", "lambda-constant", "decay-for-dropout", "removed", "same-decay", "dropout-for-decay",
        "other", "scalar", "nan", "inf", "missing-key", "list", "str"])
def test_check_shrinkage_rejects_typical_mistakes(answer, hints):
    assert_fails(check_shrinkage_prediction, lambda: answer, *hints)


# --------------------------------------------------------------------------------------------
# implement: the quadratic penalty of logistic regression


def ref_logistic(w, X, p):
    prob = torch.sigmoid(X @ w)
    return p / (2 * (1 - p)) * (w**2 * ((prob * (1 - prob))[:, None] * X**2).sum(0)).sum()


def logistic_by_matrix_product(w, X, p):
    prob = 1 / (1 + torch.exp(-(X @ w)))
    return p / (1 - p) / 2 * ((prob - prob**2) @ (X**2 * w**2)).sum().item()


def logistic_by_loop(w, X, p):
    total = 0.0
    for xi in X:
        pi = torch.sigmoid(xi @ w)
        total = total + pi * (1 - pi) * (w**2 * xi**2).sum()
    return p / (2 * (1 - p)) * total


@pytest.mark.parametrize("fn", [ref_logistic, logistic_by_matrix_product, logistic_by_loop])
def test_check_logistic_penalty_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_logistic_penalty, fn)


def test_check_logistic_penalty_starter_not_written_yet():
    assert_fails(check_logistic_penalty, starter, "not written yet")


def logistic_with(weights, factor=lambda p: p / (2 * (1 - p)), reduce=lambda v, n: v):
    def fn(w, X, p):
        value = factor(p) * (w**2 * (weights(X @ w)[:, None] * X**2).sum(0)).sum()
        return reduce(value, X.shape[0])
    return fn


CURV = lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))  # noqa: E731


def logistic_hard_coded_rate(w, X, p):
    return logistic_with(CURV)(w, X, 0.3)


def logistic_in_place(w, X, p):
    value = ref_logistic(w, X, p)
    w.pow_(2)
    return value


def logistic_with_the_library(w, X, p):
    return db.logistic_dropout_penalty(w, X, p)


@pytest.mark.parametrize("fn, hints", [
    (logistic_with(torch.sigmoid), ["weighted each example by π_i", "π_i(1-π_i)"]),
    (logistic_with(torch.ones_like), ["linear-regression penalty"]),
    (logistic_with(CURV, reduce=lambda v, n: v / n), ["mean over examples"]),
    (logistic_with(CURV, factor=lambda p: p / (1 - p)), ["twice too large"]),
    (logistic_with(CURV, factor=lambda p: p / 2), ["not p/2"]),
    (logistic_with(CURV, factor=lambda p: (1 - p) / (2 * p)), ["drop and keep are swapped"]),
    (logistic_with(lambda z: CURV(z).mean().expand(z.shape)), ["do not average it over examples"]),
    (logistic_hard_coded_rate, ["does not change with p", "hard-coded"]),
    (logistic_in_place, ["changed w or X in place"]),
    (logistic_with_the_library, ["dropoutbook.logistic_dropout_penalty", "forbids"]),
    (logistic_with(CURV, factor=lambda p: p**2), ["should be"]),
], ids=["prob", "linear", "mean", "twice", "p/2", "swapped", "averaged-curvature", "hard-coded-p", "in-place",
        "library", "other"])
def test_check_logistic_penalty_rejects_typical_mistakes(fn, hints):
    assert_fails(check_logistic_penalty, fn, *hints)


# --------------------------------------------------------------------------------------------
# more typical wrong answers (red team): a constant on one side only, a dtype lost, the order of the features


def penalty_scaled_twice(w, X, p):
    return p / (2 * X.shape[0] * (1 - p) ** 2) * ((X * w) ** 2).sum()


def test_check_dropout_penalty_names_one_factor_too_many():
    assert_fails(check_dropout_penalty, penalty_scaled_twice, "one factor 1/(1-p) too many")


def derived_plain_without_half(mask):
    plain = (y - w1 * x1 - w2 * x2) ** 2
    return sp.simplify(db.derivations.expectation(dropped_loss(), {m1: mask, m2: mask}) - plain)


def derived_dropped_without_half(mask):
    return sp.simplify(db.derivations.expectation(2 * dropped_loss(), {m1: mask, m2: mask}) - PLAIN)


@pytest.mark.parametrize("fn, hints", [
    (derived_plain_without_half, ["plain loss you subtract lacks the ½"]),
    (derived_dropped_without_half, ["L_drop lacks the ½"]),
])
def test_check_derived_penalty_names_a_constant_on_one_side_only(fn, hints):
    message = assert_fails(check_derived_penalty, fn, *hints)
    assert "E[x~] = x, so all terms in y cancel" not in message


def ridge_loss_mean_on_one_side(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram / X.shape[0] + p / (1 - p) * torch.diag(torch.diagonal(gram)), X.T @ y / X.shape[0])


def ridge_penalty_over_n(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram + p / (X.shape[0] * (1 - p)) * torch.diag(torch.diagonal(gram)), X.T @ y)


def ridge_half_penalty(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram + p / (2 * (1 - p)) * torch.diag(torch.diagonal(gram)), X.T @ y)


def ridge_in_float32(X, y, p):
    gram = (X.T @ X).float()
    return torch.linalg.solve(gram + p / (1 - p) * torch.diag(torch.diagonal(gram)), (X.T @ y).float())


@pytest.mark.parametrize("fn, hints", [
    (ridge_loss_mean_on_one_side, ["1/n of the loss is on one side only"]),
    (ridge_penalty_over_n, ["divided by n once too often"]),
    (ridge_half_penalty, ["half the penalty"]),
    (ridge_in_float32, ["dtype torch.float32", "dtype of X"]),
])
def test_check_dropout_ridge_names_more_mistakes(fn, hints):
    assert_fails(check_dropout_ridge, fn, *hints)


def test_check_shrinkage_names_features_in_the_wrong_order():
    # with the book's numbers the reversed factors equal the fraction removed: the message says both
    assert_fails(check_shrinkage_prediction, lambda: _with(weight_decay=(100 / 110, 1 / 11)),
                 "fraction removed", "reverse order")
    # with other numbers only the order is wrong
    truth = (1 / 4, 4 / 7)  # s = (1, 4), lambda = 3
    with pytest.raises(CheckFailed, match="wrong order"):
        check_shrinkage_prediction(lambda: {"dropout": (0.8, 0.8), "weight_decay": truth[::-1]},
                                   sum_of_squares=(1.0, 4.0), weight_decay=3.0)


def logistic_whole_prediction_squared(w, X, p):
    prob = torch.sigmoid(X @ w)
    return p / (2 * (1 - p)) * (prob * (1 - prob) * (X @ w) ** 2).sum()


def logistic_scaled_twice(w, X, p):
    prob = torch.sigmoid(X @ w)
    return p / (2 * (1 - p) ** 2) * (prob * (1 - prob) * (X**2 @ w**2)).sum()


@pytest.mark.parametrize("fn, hints", [
    (logistic_whole_prediction_squared, ["squared the whole linear predictor"]),
    (logistic_scaled_twice, ["one factor 1/(1-p) too many"]),
])
def test_check_logistic_penalty_names_more_mistakes(fn, hints):
    assert_fails(check_logistic_penalty, fn, *hints)
