"""Chapter 2 library: dropout_penalty, dropout_ridge_solution, logistic_dropout_penalty and
exact_logistic_dropout_penalty.

Statistical layer: the expected loss under real inverted-dropout masks (sampled by the library's
sampler) equals plain loss + dropout_penalty within Z = 5 standard errors, and the same estimates
reject plausible wrong penalties; the expected dropout gradient vanishes at dropout_ridge_solution
and not at least squares; the Monte-Carlo logistic penalty agrees with the enumeration and rejects
the quadratic approximation where it is off. Then properties (hypothesis) and bad input.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dropoutbook as db
from dropoutbook.derivations import drop_rate, linear_dropout_regression
from helpers import Z, check_agrees_and_rejects

F64 = torch.float64


def data(n=8, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64) * torch.tensor([0.5, 1.0, 2.0][:d] + [1.0] * max(0, d - 3), dtype=F64)
    w = torch.randn(d, generator=g, dtype=F64)
    y = X @ w + 0.5 * torch.randn(n, generator=g, dtype=F64)
    return X, y, w


def half_mse(X, y, w):
    return ((y - X @ w) ** 2).mean() / 2


# --------------------------------------------------------------------------------------------
# the library agrees with the derivation (exactly) and with simulation (within Z s.e.)


def test_dropout_penalty_equals_the_derived_penalty():
    r = linear_dropout_regression(2, 2)  # the book's 1/(2n) normalisation
    X = torch.tensor([[1.5, -0.3], [0.2, 2.0]], dtype=F64)
    w = torch.tensor([0.7, -1.1], dtype=F64)
    values = {drop_rate: sp.Rational(3, 10), **dict(zip(list(r.X), X.flatten().tolist())),
              **dict(zip(list(r.w), w.tolist()))}
    assert db.dropout_penalty(w, X, 0.3).item() == pytest.approx(float(r.penalty.subs(values)), rel=1e-12)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_expected_dropout_loss_is_plain_loss_plus_penalty(p):
    X, y, w = data()
    X, w = X.abs() + 0.3, w.abs()  # w_j x_ij of one sign, so that (sum_j w_j x_ij)^2 >> sum_j (w_j x_ij)^2
    N = 20_000
    dropped = db.inverted_dropout(X.expand(N, *X.shape), p, generator=torch.Generator().manual_seed(1))
    losses = ((y - dropped @ w) ** 2).mean(1) / 2
    est = db.estimate_mean(losses)
    plain, pen = half_mse(X, y, w).item(), db.dropout_penalty(w, X, p).item()
    sum_sq = ((X * w) ** 2).sum().item()
    n = X.shape[0]
    check_agrees_and_rejects(est, plain + pen, {
        "no penalty": plain,
        "1/n constant (twice the penalty)": plain + 2 * pen,
        "half the penalty": plain + pen / 2,
        "p(1-p) instead of p/(1-p)": plain + p * (1 - p) / (2 * n) * sum_sq,
        "square of the sum": plain + p / (2 * n * (1 - p)) * ((X @ w) ** 2).sum().item(),
    })


def test_expected_dropout_gradient_vanishes_at_the_ridge_solution():
    X, y, _ = data(n=10, d=3, seed=3)
    p = 0.4
    w_star = db.dropout_ridge_solution(X, y, p)
    w_ols = db.dropout_ridge_solution(X, y, 0.0)
    N = 20_000
    g = torch.Generator().manual_seed(4)
    for w, should_vanish in [(w_star, True), (w_ols, False)]:
        dropped = db.inverted_dropout(X.expand(N, *X.shape), p, generator=g)
        residual = y - dropped @ w  # (N, n)
        grads = -(dropped * residual[..., None]).mean(1)  # gradient of the half mean squared loss
        zs = [db.z_score(db.estimate_mean(grads[:, j]), 0.0) for j in range(3)]
        if should_vanish:
            assert max(abs(z) for z in zs) <= Z, zs
        else:
            assert max(abs(z) for z in zs) > 4 * Z, zs  # least squares is not the dropout minimiser


def test_gradient_does_not_vanish_at_plain_ridge():
    # a plausible wrong minimiser: weight decay with the average lambda (features of unequal scale)
    X, y, _ = data(n=10, d=3, seed=3)
    p = 0.4
    lam = (p / (1 - p) * (X**2).sum(0)).mean()
    w_decay = torch.linalg.solve(X.T @ X + lam * torch.eye(3, dtype=F64), X.T @ y)
    N = 20_000
    dropped = db.inverted_dropout(X.expand(N, *X.shape), p, generator=torch.Generator().manual_seed(9))
    grads = -(dropped * (y - dropped @ w_decay)[..., None]).mean(1)
    zs = [db.z_score(db.estimate_mean(grads[:, j]), 0.0) for j in range(3)]
    assert max(abs(z) for z in zs) > 4 * Z, zs


def test_expected_hessian_is_plain_hessian_plus_diagonal():
    # The Hessian of the half-MSE with dropped inputs is X~'X~/n; its mean over masks is derived as
    # X'X/n + p/(n(1-p)) diag(X'X) (tests/test_derivations_implicit_l2.py). Check every entry.
    X, _, _ = data(n=8, d=3, seed=11)
    X = X + 1.5 * X[:, :1].sign()  # correlated features: large off-diagonal entries
    p, n, N = 0.3, 8, 20_000
    dropped = db.inverted_dropout(X.expand(N, *X.shape), p, generator=torch.Generator().manual_seed(12))
    hessians = dropped.transpose(1, 2) @ dropped / n  # (N, d, d)
    gram = X.T @ X / n
    stated = gram + p / (1 - p) * torch.diag(torch.diagonal(gram))
    wrong_everywhere = gram / (1 - p)  # p/(1-p) times the whole plain Hessian added
    for j in range(3):
        for k in range(3):
            est = db.estimate_mean(hessians[:, j, k])
            wrong = {"plain Hessian": gram[j, k].item()} if j == k else {}
            if j != k:
                wrong["p/(1-p) X'X/n added off the diagonal too"] = wrong_everywhere[j, k].item()
            else:
                wrong["p(1-p) instead of p/(1-p)"] = (gram[j, j] * (1 + p * (1 - p))).item()
            check_agrees_and_rejects(est, stated[j, k].item(), wrong)


@pytest.mark.parametrize("scale, p", [(2.0, 0.1), (1.0, 0.5)])
def test_logistic_penalty_monte_carlo_agrees_with_enumeration(scale, p):
    g = torch.Generator().manual_seed(5)
    X = torch.randn(50, 4, generator=g, dtype=F64)
    w = scale * torch.tensor([1.0, -0.5, 0.8, 0.3], dtype=F64)
    N = 20_000
    dropped = db.inverted_dropout(X.expand(N, *X.shape), p, generator=g)
    plain = torch.nn.functional.softplus(X @ w).sum()
    est = db.estimate_mean(torch.nn.functional.softplus(dropped @ w).sum(1) - plain)
    exact = db.exact_logistic_dropout_penalty(w, X, p).item()
    quadratic = db.logistic_dropout_penalty(w, X, p).item()
    wrong = {"twice the exact penalty": 2 * exact, "half": exact / 2}
    if scale == 2.0:
        wrong["the quadratic approximation (scale 2, p = 0.1)"] = quadratic
    check_agrees_and_rejects(est, exact, wrong)


def test_quadratic_approximation_is_good_for_small_logit_changes_only():
    g = torch.Generator().manual_seed(6)
    X = torch.randn(100, 4, generator=g, dtype=F64)
    w0 = torch.tensor([1.0, -0.5, 0.8, 0.3], dtype=F64)

    def ratio(scale, p):
        w = scale * w0
        return (db.logistic_dropout_penalty(w, X, p) / db.exact_logistic_dropout_penalty(w, X, p)).item()

    for p in (0.01, 0.1, 0.3):
        assert abs(ratio(0.1, p) - 1) < 0.02  # small w_j x_ij: accurate
    assert ratio(2.0, 0.01) < 0.85            # large w_j x_ij: off by more than 15 %, however small p
    assert ratio(0.5, 0.9) > 1.2              # and large p overestimates


# --------------------------------------------------------------------------------------------
# properties


small_float = st.floats(-3, 3, allow_nan=False, width=64)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 4))
    X = torch.tensor(draw(st.lists(st.lists(small_float, min_size=d, max_size=d), min_size=n, max_size=n)), dtype=F64)
    w = torch.tensor(draw(st.lists(small_float, min_size=d, max_size=d)), dtype=F64)
    p = draw(st.floats(0, 0.95))
    return X, w, p


@settings(max_examples=25)
@given(problem=problems(), c=st.floats(-3, 3))
def test_penalties_are_nonnegative_quadratic_and_zero_at_p_zero(problem, c):
    X, w, p = problem
    pen = db.dropout_penalty(w, X, p)
    assert pen.item() >= 0
    assert db.dropout_penalty(w, X, 0.0).item() == 0
    assert db.dropout_penalty(c * w, X, p).item() == pytest.approx(c**2 * pen.item(), rel=1e-9, abs=1e-12)
    logistic = db.logistic_dropout_penalty(w, X, p).item()
    assert 0 <= logistic <= X.shape[0] / 4 * pen.item() * (1 + 1e-9) + 1e-12  # pi(1 - pi) <= 1/4
    if X.shape[1] <= 4:
        assert db.exact_logistic_dropout_penalty(w, X, p).item() >= -1e-9  # Jensen: A is convex


@settings(max_examples=25)
@given(problem=problems(), seed=st.integers(0, 100))
def test_ridge_solution_satisfies_normal_equations_and_is_scale_equivariant(problem, seed):
    X, _, p = problem
    g = torch.Generator().manual_seed(seed)
    X = X + 0.1 * torch.randn(X.shape, generator=g, dtype=F64)  # no zero columns
    y = torch.randn(X.shape[0], generator=g, dtype=F64)
    p = min(max(p, 0.05), 0.9)
    w = db.dropout_ridge_solution(X, y, p)
    gram = X.T @ X
    residual = (gram + p / (1 - p) * torch.diag(torch.diagonal(gram))) @ w - X.T @ y
    assert torch.allclose(residual, torch.zeros_like(residual), atol=1e-8 * (1 + gram.abs().max().item()))
    # rescaling feature j by c_j rescales w_j by 1/c_j: predictions do not change
    c = torch.linspace(0.2, 5.0, X.shape[1], dtype=F64)
    w_scaled = db.dropout_ridge_solution(X * c, y, p)
    assert torch.allclose(w_scaled * c, w, rtol=1e-6, atol=1e-9)


def test_one_feature_shrinks_least_squares_by_one_minus_p():
    X, y, _ = data(n=20, d=1, seed=7)
    ols = (X[:, 0] @ y / (X[:, 0] @ X[:, 0])).item()
    for p in (0.1, 0.5, 0.8):
        assert db.dropout_ridge_solution(X, y, p).item() == pytest.approx((1 - p) * ols, rel=1e-12)


def test_p_zero_is_least_squares_and_plain_ridge_differs_on_unequal_scales():
    X, y, _ = data(n=30, d=3, seed=8)
    ols = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    assert torch.allclose(db.dropout_ridge_solution(X, y, 0.0), ols, rtol=1e-10)
    p = 0.3
    lam = p / (1 - p) * (X**2).sum(0)
    ridge = torch.linalg.solve(X.T @ X + torch.diag(lam), X.T @ y)
    assert torch.allclose(db.dropout_ridge_solution(X, y, p), ridge, rtol=1e-12)
    plain = torch.linalg.solve(X.T @ X + lam.mean() * torch.eye(3, dtype=F64), X.T @ y)
    assert not torch.allclose(plain, ridge, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_kept_and_inputs_not_modified(dtype):
    X, y, w = (t.to(dtype) for t in data())
    before = [t.clone() for t in (X, y, w)]
    outs = [db.dropout_penalty(w, X, 0.3), db.dropout_ridge_solution(X, y, 0.3),
            db.logistic_dropout_penalty(w, X, 0.3), db.exact_logistic_dropout_penalty(w, X, 0.3)]
    assert all(o.dtype == dtype for o in outs)
    assert outs[1].shape == (3,) and outs[0].shape == ()
    assert all(torch.equal(a, b) for a, b in zip((X, y, w), before))


def test_exact_penalty_at_p_zero_and_limit_on_d():
    X, _, w = data()
    assert db.exact_logistic_dropout_penalty(w, X, 0.0).item() == 0
    with pytest.raises(ValueError, match=r"d = 17 is above the limit of 16"):
        db.exact_logistic_dropout_penalty(torch.zeros(17, dtype=F64), torch.zeros(2, 17, dtype=F64), 0.1)


# --------------------------------------------------------------------------------------------
# bad input


X0, Y0, W0 = data()
FUNCS_W = [db.dropout_penalty, db.logistic_dropout_penalty, db.exact_logistic_dropout_penalty]


@pytest.mark.parametrize("fn", FUNCS_W, ids=lambda f: f.__name__)
@pytest.mark.parametrize("args, error, match", [
    ((W0, X0, 1.0), ValueError, r"^p must be in \[0, 1\), got 1.0"),
    ((W0, X0, -0.1), ValueError, r"^p must be in \[0, 1\)"),
    ((W0, X0, math.nan), ValueError, r"^p must be a number in \[0, 1\), got nan"),
    ((W0, X0, "0.5"), TypeError, r"^p must be a number"),
    ((W0, X0.long(), 0.5), TypeError, r"^X must have a floating dtype"),
    ((W0, X0.tolist(), 0.5), TypeError, r"^X must be a torch.Tensor or a numpy array, got list"),
    ((W0, X0[0], 0.5), ValueError, r"^X must be a 2-D tensor of shape \(n, d\), got shape \(3,\)"),
    ((W0, X0[:0], 0.5), ValueError, r"^X must have at least one row"),
    ((W0[:2], X0, 0.5), ValueError, r"^w must have shape \(3,\), one weight per column of X, got shape \(2,\)"),
    ((W0.float(), X0, 0.5), TypeError, r"^w must have the dtype and device of X"),
    ((W0, X0 * math.inf, 0.5), ValueError, r"^X contains NaN or infinite values"),
])
def test_bad_input_for_penalties(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


@pytest.mark.parametrize("args, error, match", [
    ((X0, Y0[:-1], 0.3), ValueError, r"^y must have shape \(8,\), one target per row of X"),
    ((X0, Y0[:, None], 0.3), ValueError, r"^y must have shape \(8,\)"),
    ((X0, Y0.long(), 0.3), TypeError, r"^y must have a floating dtype"),
    ((X0, Y0, 1.0), ValueError, r"^p must be in \[0, 1\)"),
    ((torch.zeros(8, 3, dtype=F64), Y0, 0.3), ValueError, r"is singular: X has a column of zeros"),
    ((X0[:, [0, 0]], Y0, 0.0), ValueError, r"p = 0 and the columns of X are linearly dependent"),
])
def test_bad_input_for_ridge_solution(args, error, match):
    with pytest.raises(error, match=match):
        db.dropout_ridge_solution(*args)
