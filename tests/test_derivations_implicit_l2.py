"""Symbolic layer of chapter 2: what dropoutbook.derivations derives equals what the chapter states.

The stated formulas are typed in HERE only (never in the library). Comparisons use exact
cancellation of rational functions (``equal``) rather than ``helpers.same`` to keep the CPU cost low. Each comparison is shown to be
able to fail: plausible wrong closed forms (1/n instead of 1/(2n), drop and keep swapped, a missing
1/(1-p), a square of a sum instead of a sum of squares, plain ridge) are rejected.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook.derivations import (
    Bernoulli,
    drop_rate,
    expectation,
    linear_dropout_regression,
    logistic_dropout_penalty_derivation,
)


p = drop_rate


def equal(a, b) -> bool:
    """Equality of rational functions: the difference cancels to 0 (exact, and much faster than
    helpers.same, i.e. simplify, on the large expressions of the minimiser). Expressions in e^z
    are compared as rational functions of u = e^z (equal_in_exp)."""
    return sp.cancel(sp.together(sp.sympify(a) - sp.sympify(b))) == 0

# (n, d, normalisation, the constant c_n in front of sum_i (y_i - w'x_i)^2)
CASES = [(2, 2, "half_mean", sp.Rational(1, 4)), (3, 1, "mean", sp.Rational(1, 3)), (1, 2, "half_sum", sp.Rational(1, 2))]


def linear(n, d, normalisation="half_mean"):
    return _linear(n, d, normalisation)


@lru_cache(maxsize=None)
def _linear(n, d, normalisation):
    return linear_dropout_regression(n, d, normalisation)


@lru_cache(maxsize=None)
def logistic(d):
    return logistic_dropout_penalty_derivation(d)


def sum_sq(r):
    """sum_i sum_j w_j^2 x_ij^2 in the derivation's symbols."""
    return sum(r.w[j] ** 2 * r.X[i, j] ** 2 for i in range(r.n) for j in range(r.d))


# --------------------------------------------------------------------------------------------
# the penalty of linear regression


@pytest.mark.parametrize("n, d, norm, c", CASES)
def test_penalty_equals_stated_formula(n, d, norm, c):
    r = linear(n, d, norm)
    # the book: with L = 1/(2n) sum (.)^2 the penalty is p/(2n(1-p)) sum w_j^2 x_ij^2, i.e. c_n * 2 * p/(2(1-p))
    assert equal(r.penalty, c * p / (1 - p) * sum_sq(r))
    if norm == "half_mean":
        assert equal(r.penalty, p / (2 * n * (1 - p)) * sum_sq(r))


@pytest.mark.parametrize("n, d, norm, c", CASES)
def test_penalty_rejects_wrong_formulas(n, d, norm, c):
    r = linear(n, d, norm)
    s = sum_sq(r)
    square_of_sum = c * p / (1 - p) * sum(sum(r.w[j] * r.X[i, j] for j in range(d)) ** 2 for i in range(n))
    wrong = {
        "twice the constant (1/n vs 1/(2n))": 2 * c * p / (1 - p) * s,
        "half the constant": c / 2 * p / (1 - p) * s,
        "drop and keep swapped": c * (1 - p) / p * s,
        "no 1/(1-p)": c * p * s,
        "p/(1-p)^2": c * p / (1 - p) ** 2 * s,
    }
    if d > 1:
        wrong["square of the sum over features"] = square_of_sum
    for name, expr in wrong.items():
        assert not equal(r.penalty, expr), name


@pytest.mark.parametrize("n, d, norm, c", CASES)
def test_penalty_does_not_depend_on_targets(n, d, norm, c):
    r = linear(n, d, norm)
    assert not (r.penalty.free_symbols & set(r.y))
    assert r.expected_loss.free_symbols & set(r.y)  # while the loss does


def test_plain_loss_is_the_stated_normalisation():
    r = linear(2, 2)
    residuals = [r.y[i] - sum(r.w[j] * r.X[i, j] for j in range(2)) for i in range(2)]
    assert equal(r.plain_loss, sum(e**2 for e in residuals) / 4)


def test_expected_loss_by_enumeration_agrees_with_moments():
    # the definition of the expectation, summed over all 2**(n d) masks, for n = 1, d = 2
    r = linear(1, 2, "half_sum")
    dists = {m: Bernoulli(1 - p) for m in r.masks}
    assert equal(expectation(r.dropout_loss, dists, method="enumerate"), r.expected_loss)


# --------------------------------------------------------------------------------------------
# ridge form, minimiser, Hessian


@pytest.mark.parametrize("n, d, norm, c", CASES)
def test_ridge_penalties_follow_feature_scale_and_not_the_normalisation(n, d, norm, c):
    r = linear(n, d, norm)
    for j, lam in enumerate(r.ridge_penalties):
        col = sum(r.X[i, j] ** 2 for i in range(n))
        assert equal(lam, p / (1 - p) * col)
        assert not equal(lam, p / (1 - p))            # not plain ridge
        if n > 1:
            assert not equal(lam, p / (1 - p) * col / n)  # not divided by n


def stated_minimiser(r):
    gram = r.X.T * r.X
    return (gram + p / (1 - p) * sp.diag(*[gram[j, j] for j in range(r.d)])).inv() * r.X.T * r.y


def test_minimiser_equals_stated_closed_form_symbolically():
    r = linear(2, 2)
    derived = r.minimiser()
    stated = stated_minimiser(r)
    assert all(equal(a, b) for a, b in zip(derived, stated))
    gram = r.X.T * r.X
    wrong = {
        "plain ridge, lambda = p/(1-p)": (gram + p / (1 - p) * sp.eye(2)).inv() * r.X.T * r.y,
        "X'X/(1-p) everywhere": (gram / (1 - p)).inv() * r.X.T * r.y,
        "p instead of p/(1-p)": (gram + p * sp.diag(gram[0, 0], gram[1, 1])).inv() * r.X.T * r.y,
    }
    point = {p: sp.Rational(1, 3), **dict(zip(list(r.X), [1, 2, -1, 3])), **dict(zip(list(r.y), [2, -1]))}
    for name, expr in wrong.items():  # told apart at one point (which suffices to show a difference)
        assert derived[0].subs(point) != expr[0].subs(point), name


@pytest.mark.parametrize("norm", ["half_mean", "mean"])
def test_minimiser_at_numbers_matches_library(norm):
    r = linear(2, 2, norm) if norm == "half_mean" else linear(3, 1, norm)
    xs = [[sp.Rational(3, 2), sp.Rational(-1, 3)], [sp.Rational(1, 2), 2], [1, 1]]
    ys = [1, sp.Rational(-2, 5), sp.Rational(7, 4)]
    values = {p: sp.Rational(1, 4)}
    values.update({r.X[i, j]: xs[i][j] for i in range(r.n) for j in range(r.d)})
    values.update({r.y[i]: ys[i] for i in range(r.n)})
    derived = r.minimiser(values)
    X = torch.tensor([[float(xs[i][j]) for j in range(r.d)] for i in range(r.n)], dtype=torch.float64)
    y = torch.tensor([float(v) for v in ys[: r.n]], dtype=torch.float64)
    library = db.dropout_ridge_solution(X, y, 0.25)
    assert torch.allclose(library, torch.tensor([float(v) for v in derived], dtype=torch.float64), rtol=1e-12)
    ols_like = db.dropout_ridge_solution(X, y, 0.0)
    assert not torch.allclose(library, ols_like, rtol=1e-3)


@pytest.mark.parametrize("n, d, norm, c", CASES)
def test_hessian_change_is_diagonal_and_stated(n, d, norm, c):
    r = linear(n, d, norm)
    change = r.hessian - r.plain_hessian
    gram = r.X.T * r.X
    assert all(equal(a, b) for a, b in zip(r.plain_hessian, 2 * c * gram))
    stated = 2 * c * p / (1 - p) * sp.diag(*[gram[j, j] for j in range(d)])
    assert all(equal(a, b) for a, b in zip(change, stated))
    if d > 1:
        wrong = 2 * c * p / (1 - p) * gram  # a multiple of the plain Hessian
        assert not all(equal(a, b) for a, b in zip(change, wrong))


def test_hessian_change_is_positive_semidefinite():
    r = linear(2, 2)
    change = r.hessian - r.plain_hessian
    assert change[0, 1] == 0 and change[1, 0] == 0
    for pv in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(9, 10)):
        for xv in ([1, -2, 3, sp.Rational(1, 2)], [0, 0, 1, 1]):
            values = {p: pv, **dict(zip(list(r.X), xv))}
            assert all(change[j, j].subs(values) >= 0 for j in range(2))


def test_identities_print_one_minus_p():
    r = linear(2, 2)
    text = " ".join(repr(i) for i in r.identities() + r.ridge_identities() + r.hessian_identities())
    assert "(1 - p)" in text and "(p - 1)" not in text and "2*p - 2" not in text
    assert all(equal(i.rhs, lam) for i, lam in zip(r.ridge_identities(), r.ridge_penalties))
    assert equal(r.identities()[0].rhs, r.penalty)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n=0, d=2), ValueError, r"^n must be a positive int"),
    (dict(n=2, d=True), TypeError, r"^d must be a positive int"),
    (dict(n=2, d=2.0), TypeError, r"^d must be a positive int"),
    (dict(n=2, d=2, normalisation="sum"), ValueError, r"^normalisation must be one of"),
])
def test_linear_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        linear_dropout_regression(**kwargs)


# --------------------------------------------------------------------------------------------
# logistic regression (Wager et al. 2013)


def sigma(z):
    return sp.exp(z) / (1 + sp.exp(z))


U = sp.Symbol("u", positive=True)


def equal_in_exp(a, b, z) -> bool:
    """Equality of rational functions of e^z (substitute u = e^z, then cancel)."""
    return equal(sp.sympify(a).subs(sp.exp(z), U), sp.sympify(b).subs(sp.exp(z), U))


def test_curvature_is_pi_one_minus_pi():
    r = logistic(2)
    assert r.curvature_minus_pi_one_minus_pi == 0
    z = r.logit
    assert equal_in_exp(r.curvature, sigma(z) * (1 - sigma(z)), z)
    assert not equal_in_exp(r.curvature, sigma(z), z)  # the comparison can fail
    assert not equal_in_exp(r.curvature, sigma(z) * (1 - sigma(z)) / 2, z)


def test_labels_drop_out():
    assert logistic(2).label_term == 0


def test_logit_variance():
    r = logistic(2)
    s = sum(wj**2 * xj**2 for wj, xj in zip(r.w, r.x))
    assert equal(r.logit_variance, p / (1 - p) * s)
    assert not equal(r.logit_variance, p * (1 - p) * s)


def test_quadratic_penalty_equals_stated_formula():
    r = logistic(2)
    z = r.logit
    s = sum(wj**2 * xj**2 for wj, xj in zip(r.w, r.x))
    pi = sigma(z)
    assert equal_in_exp(r.quadratic_penalty, p / (2 * (1 - p)) * pi * (1 - pi) * s, z)
    assert equal(r.quadratic_in_curvature, p / (2 * (1 - p)) * r.curvature_symbol * s)
    for wrong in (p / 2 * pi * (1 - pi) * s, p / (1 - p) * pi * (1 - pi) * s, p / (2 * (1 - p)) * pi * s):
        assert not equal_in_exp(r.quadratic_penalty, wrong, z)


def test_identities_of_logistic():
    r = logistic(2)
    texts = [repr(i) for i in r.identities()]
    assert texts[2] == "R^q = p*pi*(1 - pi)*(w_1**2*x_1**2 + w_2**2*x_2**2)/(2*(1 - p))"


WX = [(0.7, -1.2), (2.0, 1.5)]


@pytest.mark.parametrize("wx", WX)
@pytest.mark.parametrize("pv", [0.1, 0.4])
def test_library_logistic_penalties_match_the_derivation(wx, pv):
    r = logistic(2)
    w = torch.tensor([1.0, -0.5], dtype=torch.float64)
    x = torch.tensor(wx, dtype=torch.float64) / w  # so that w_j x_j = wx
    values = {p: pv, **dict(zip(r.w, w.tolist())), **dict(zip(r.x, x.tolist()))}
    exact = float(r.exact_penalty.subs(values))
    quadratic = float(r.quadratic_penalty.subs(values))
    X = x[None, :]
    assert db.exact_logistic_dropout_penalty(w, X, pv).item() == pytest.approx(exact, rel=1e-10)
    assert db.logistic_dropout_penalty(w, X, pv).item() == pytest.approx(quadratic, rel=1e-10)
    assert exact > 0


def test_small_p_slopes_differ_unless_the_logit_changes_are_small():
    r = logistic(1)
    exact_slope, quad_slope = r.small_p_slopes()
    (w,), (x,) = r.w, r.x

    def ratio(u):
        values = {w: 1, x: u}
        return float(quad_slope.subs(values)) / float(exact_slope.subs(values))

    assert abs(ratio(0.05) - 1) < 0.01       # small w x: the quadratic approximation is right as p -> 0
    assert ratio(2.0) < 0.9                  # large w x: it is not, even as p -> 0
    assert ratio(4.0) < ratio(2.0)


def test_logistic_bad_d():
    with pytest.raises(ValueError, match=r"^d must be a positive int"):
        logistic_dropout_penalty_derivation(0)
