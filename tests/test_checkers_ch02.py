"""Checker layer of chapter 2: each checker passes the reference, fails the blank starter with
"not written yet", and fails typical wrong answers with a message that names the mistake."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook.exercises import (
    SHRINKAGE_EXERCISE,
    check_derived_penalty,
    check_dropout_penalty,
    check_dropout_ridge,
    check_shrinkage_prediction,
)
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# implement: the dropout penalty


def ref_penalty(w, X, p):
    return p / (2 * X.shape[0] * (1 - p)) * ((X * w) ** 2).sum()


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


@pytest.mark.parametrize("fn", [ref_penalty, db.dropout_penalty, lambda w, X, p: float(ref_penalty(w, X, p))])
def test_check_dropout_penalty_passes_reference(capsys, fn):
    assert_passes(capsys, check_dropout_penalty, fn)


def test_check_dropout_penalty_starter_not_written_yet():
    assert_fails(check_dropout_penalty, starter, "not written yet")


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
    (lambda w, X, p: "0.5", ["should be a number, got str"]),
    (lambda w, X, p: X.sum(0), ["single number", "shape (3,)"]),
], ids=["1/n", "sum", "swapped", "no-1/(1-p)", "standard", "half", "square-of-sum", "in-place", "offset",
        "str", "vector"])
def test_check_dropout_penalty_rejects_typical_mistakes(fn, hints):
    assert_fails(check_dropout_penalty, fn, *hints)


def test_check_dropout_penalty_requires_zero_at_p_zero():
    def zero_breaks(w, X, p):
        return ref_penalty(w, X, p) if p > 0 else torch.tensor(1.0)
    assert_fails(check_dropout_penalty, zero_breaks, "with p = 0 nothing is dropped")


# --------------------------------------------------------------------------------------------
# derive: the penalty for one example, two features

w1, w2, x1, x2, y, p = sp.symbols("w1 w2 x1 x2 y p")
S = w1**2 * x1**2 + w2**2 * x2**2
PLAIN = sp.Rational(1, 2) * (y - w1 * x1 - w2 * x2) ** 2


def test_check_derived_penalty_passes_reference(capsys):
    assert_passes(capsys, check_derived_penalty, lambda: p / (2 * (1 - p)) * S)
    assert_passes(capsys, check_derived_penalty, lambda: -p * S / (2 * p - 2))


def test_check_derived_penalty_passes_the_derivation_of_the_solution(capsys):
    m1, m2 = sp.symbols("m1 m2")
    keep = {m1: db.derivations.Bernoulli(1 - p), m2: db.derivations.Bernoulli(1 - p)}
    dropped = sp.Rational(1, 2) * (y - w1 * m1 * x1 / (1 - p) - w2 * m2 * x2 / (1 - p)) ** 2
    assert_passes(capsys, check_derived_penalty, lambda: db.derivations.expectation(dropped, keep) - PLAIN)


def test_check_derived_penalty_starter_not_written_yet():
    assert_fails(check_derived_penalty, starter, "not written yet")


def _standard_dropout_penalty():
    m1, m2 = sp.symbols("m1 m2")
    keep = {m1: db.derivations.Bernoulli(1 - p), m2: db.derivations.Bernoulli(1 - p)}
    dropped = sp.Rational(1, 2) * (y - w1 * m1 * x1 - w2 * m2 * x2) ** 2
    return db.derivations.expectation(dropped, keep) - PLAIN


@pytest.mark.parametrize("answer, hints", [
    (p / (1 - p) * S, ["twice too large", "½"]),
    ((1 - p) / (2 * p) * S, ["drop and keep are swapped"]),
    (p / (2 * (1 - p) ** 2) * S, ["one factor 1/(1-p) too many"]),
    (S / (2 * (1 - p)), ["Var[w_j x~_j]"]),
    (PLAIN + p / (2 * (1 - p)) * S, ["whole expected loss", "minus the plain loss"]),
    (_standard_dropout_penalty(), ["not scaled by 1/(1-p)", "terms in y"]),
    (p / (2 * (1 - p)) * S + y * p, ["depends on y"]),
    (p**2 * S, ["your expression gives"]),
    (p / (2 * (1 - p)) * sp.Symbol("z") ** 2, ["uses the symbols ['z']"]),
    ("p*w1**2", ["got str"]),
], ids=["twice", "swapped", "extra-factor", "second-moment", "whole-loss", "standard", "y-term", "other",
        "unknown-symbol", "str"])
def test_check_derived_penalty_rejects_typical_mistakes(answer, hints):
    assert_fails(check_derived_penalty, lambda: answer, *hints)


# --------------------------------------------------------------------------------------------
# implement: the dropout-ridge solution


def ref_ridge(X, y, p):
    gram = X.T @ X
    return torch.linalg.solve(gram + p / (1 - p) * torch.diag(torch.diagonal(gram)), X.T @ y)


def solve_with(matrix):
    return lambda X, y, p: torch.linalg.solve(matrix(X, p), X.T @ y)


eye = lambda X: torch.eye(X.shape[1], dtype=X.dtype)  # noqa: E731
diag = lambda X: torch.diag(torch.diagonal(X.T @ X))  # noqa: E731


@pytest.mark.parametrize("fn", [ref_ridge, db.dropout_ridge_solution])
def test_check_dropout_ridge_passes_reference(capsys, fn):
    assert_passes(capsys, check_dropout_ridge, fn)


def test_check_dropout_ridge_starter_not_written_yet():
    assert_fails(check_dropout_ridge, starter, "not written yet")


def modifies_input(X, y, p):
    out = ref_ridge(X, y, p)
    y.zero_()
    return out


@pytest.mark.parametrize("fn, hints", [
    (solve_with(lambda X, p: X.T @ X + p / (1 - p) * eye(X)), ["weight decay with λ = p/(1-p)", "diag(XᵀX)"]),
    (solve_with(lambda X, p: X.T @ X + X.shape[0] * p / (1 - p) * eye(X)), ["one λ = n p/(1-p)"]),
    (solve_with(lambda X, p: X.T @ X + p * diag(X)), ["factor is p/(1-p), not p"]),
    (solve_with(lambda X, p: X.T @ X + (1 - p) / p * diag(X)), ["drop and keep are swapped"]),
    (solve_with(lambda X, p: X.T @ X / (1 - p)), ["all of XᵀX", "off-diagonal"]),
    (solve_with(lambda X, p: X.T @ X), ["least squares"]),
    (modifies_input, ["changed X or y in place"]),
    (lambda X, y, p: ref_ridge(X, y, p).numpy(), ["should return a torch.Tensor"]),
    (lambda X, y, p: ref_ridge(X, y, p)[:2], ["shape (3,)"]),
    (lambda X, y, p: ref_ridge(X, y, p) * 1.01, ["your weights are"]),
], ids=["decay", "decay-n", "p-not-odds", "swapped", "scaled-gram", "ols", "in-place", "numpy", "shape", "other"])
def test_check_dropout_ridge_rejects_typical_mistakes(fn, hints):
    assert_fails(check_dropout_ridge, fn, *hints)


# --------------------------------------------------------------------------------------------
# predict: shrinkage of two orthogonal features


def stated_shrinkage():
    ex = SHRINKAGE_EXERCISE
    p_, (s1, s2), lam = ex["p"], ex["sum_of_squares"], ex["weight_decay"]
    return {"dropout": (1 - p_, 1 - p_), "weight_decay": (s1 / (s1 + lam), s2 / (s2 + lam))}


def test_check_shrinkage_passes_reference(capsys):
    assert_passes(capsys, check_shrinkage_prediction, stated_shrinkage)
    assert_passes(capsys, check_shrinkage_prediction, lambda: {k: list(v) for k, v in stated_shrinkage().items()})


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
    ({"dropout": (0.8, 0.8)}, ["exactly the keys"]),
    (_with(dropout=("0.8", 0.8)), ["should be a number, got str"]),
], ids=["inverse", "p", "lambda-constant", "decay-for-dropout", "removed", "same-decay", "dropout-for-decay",
        "other", "scalar", "missing-key", "str"])
def test_check_shrinkage_rejects_typical_mistakes(answer, hints):
    assert_fails(check_shrinkage_prediction, lambda: answer, *hints)


# --------------------------------------------------------------------------------------------
# implement: the quadratic penalty of logistic regression

from dropoutbook.exercises import check_logistic_penalty  # noqa: E402


def ref_logistic(w, X, p):
    prob = torch.sigmoid(X @ w)
    return p / (2 * (1 - p)) * (w**2 * ((prob * (1 - prob))[:, None] * X**2).sum(0)).sum()


def logistic_with(weights, factor=lambda p: p / (2 * (1 - p)), reduce=lambda v, n: v):
    def fn(w, X, p):
        value = factor(p) * (w**2 * (weights(X @ w)[:, None] * X**2).sum(0)).sum()
        return reduce(value, X.shape[0])
    return fn


CURV = lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))  # noqa: E731


@pytest.mark.parametrize("fn", [ref_logistic, db.logistic_dropout_penalty])
def test_check_logistic_penalty_passes_reference(capsys, fn):
    assert_passes(capsys, check_logistic_penalty, fn)


def test_check_logistic_penalty_starter_not_written_yet():
    assert_fails(check_logistic_penalty, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (logistic_with(torch.sigmoid), ["weighted each example by π_i", "π_i(1-π_i)"]),
    (logistic_with(torch.ones_like), ["linear-regression penalty"]),
    (logistic_with(CURV, reduce=lambda v, n: v / n), ["mean over examples"]),
    (logistic_with(CURV, factor=lambda p: p / (1 - p)), ["twice too large"]),
    (logistic_with(CURV, factor=lambda p: p / 2), ["not p/2"]),
    (logistic_with(lambda z: CURV(z).mean().expand(z.shape)), ["do not average it over examples"]),
    (logistic_with(CURV, factor=lambda p: p**2), ["should be"]),
], ids=["prob", "linear", "mean", "twice", "p/2", "averaged-curvature", "other"])
def test_check_logistic_penalty_rejects_typical_mistakes(fn, hints):
    assert_fails(check_logistic_penalty, fn, *hints)
