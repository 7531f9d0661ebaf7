"""Chapter 10, "Variational dropout and sparsification": derivations, Monte Carlo, the KL
approximation, and the library (GaussianDropout, local reparameterization, LinearSVDO).

Symbolic layer: the closed forms stated in the chapter are typed in HERE only and compared with
what dropoutbook.derivations.variational computes; plausible wrong forms are shown to differ.
Statistical layer: fixed seeds, |z| <= Z = 5, and enough samples that the wrong formulas
(alpha = p, alpha = (1-p)/p, x instead of x^2, shared noise) land more than Z standard errors away.
The exact KL is computed by three independent routes: the library's trapezoid quadrature, the
Poisson-mixture series of a noncentral chi-square (scipy's digamma), and scipy.integrate.quad.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook.derivations import (
    drop_rate,
    activation,
    gaussian_dropout_match,
    gaussian_noise_variance,
    kl_large_alpha_limit,
    local_reparameterization_moments,
    log_uniform_kl,
)
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import Z, check_agrees_and_rejects, same

p_sym, h_sym, a_sym = drop_rate, activation, gaussian_noise_variance
MATCH = gaussian_dropout_match()
LRT = local_reparameterization_moments(3)
LIMIT = kl_large_alpha_limit()
K1, K2, K3 = db.SPARSE_VD_K
N = 10**6


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# symbolic layer


def test_gaussian_dropout_matches_bernoulli_moments():
    p, h, alpha = p_sym, h_sym, a_sym
    assert same(MATCH.bernoulli_mean, h)
    assert same(MATCH.bernoulli_variance, p / (1 - p) * h**2)
    assert same(MATCH.gaussian_mean, h)
    assert same(MATCH.gaussian_variance, alpha * h**2)
    assert same(MATCH.alpha, p / (1 - p))  # the chapter's boxed result
    for wrong in (p, (1 - p) / p, p * (1 - p), 1 / (1 - p)):
        assert not same(MATCH.alpha, wrong)
    # standard dropout m h: the squared coefficient of variation is the same alpha
    assert same(MATCH.standard_squared_cv, p / (1 - p))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.5, 0.8])
def test_library_alpha_is_the_derived_alpha(p):
    derived = float(MATCH.alpha.subs(p_sym, sp.nsimplify(p)))
    assert db.alpha_from_drop_rate(p) == pytest.approx(derived, rel=1e-12, abs=1e-15)
    assert db.drop_rate_from_alpha(db.alpha_from_drop_rate(p)) == pytest.approx(p, abs=1e-12)


def test_local_reparameterization_moments():
    x, t1, t2, a = LRT.x, LRT.theta, LRT.theta2, LRT.alpha
    assert same(LRT.mean, sum(xi * ti for xi, ti in zip(x, t1)))
    assert same(LRT.variance, sum(ai * ti**2 * xi**2 for xi, ti, ai in zip(x, t1, a)))
    assert same(LRT.covariance_independent, 0)
    assert same(LRT.covariance_shared, sum(ai * xi**2 * u * v for xi, u, v, ai in zip(x, t1, t2, a)))
    assert same(LRT.variance_shared, LRT.variance)
    wrong = {
        "x not squared": sum(ai * ti**2 * xi for xi, ti, ai in zip(x, t1, a)),
        "theta not squared": sum(ai * ti * xi**2 for xi, ti, ai in zip(x, t1, a)),
        "variance of the sum of means": a[0] * sum(xi * ti for xi, ti in zip(x, t1)) ** 2,
    }
    for name, expr in wrong.items():
        assert not same(LRT.variance, expr), name


def test_local_reparameterization_moments_rejects_bad_d():
    for d in (0, 9, 2.0, True):
        with pytest.raises(TypeError if isinstance(d, (bool, float)) else ValueError, match=r"d must be an int in \[1, 8\]"):
            local_reparameterization_moments(d)


def test_kl_large_alpha_limit():
    assert same(LIMIT.expected_log_abs, -(sp.EulerGamma + sp.log(2)) / 2)
    assert same(LIMIT.limit, (sp.EulerGamma + sp.log(2)) / 2)
    s = sp.Symbol("s", positive=True)
    assert LIMIT.absolute_moment.free_symbols == {s}
    assert float(LIMIT.absolute_moment.subs(s, 2)) == pytest.approx(1.0, rel=1e-12)  # E z^2 = 1
    # k1 of the paper is NOT the exact limit: it is 5.8e-4 above it
    assert K1 - float(LIMIT.limit) == pytest.approx(5.8e-4, abs=0.2e-4)


def test_log_uniform_kl_depends_on_alpha_only():
    result = log_uniform_kl()
    alpha, e_log, c = a_sym, result.expected_log_abs, result.prior_constant
    theta = sp.Symbol("theta", positive=True)
    assert same(result.change_of_variables, -sp.log(theta))
    assert same(result.entropy, sp.log(2 * sp.pi * sp.E * alpha) / 2)
    stated = sp.log(alpha) / 2 - e_log  # the chapter's -KL, up to its constant
    assert theta not in result.neg_kl.free_symbols
    assert same(result.neg_kl - stated, sp.log(2 * sp.pi * sp.E) / 2 + c)
    for wrong in (sp.log(alpha) - e_log, -sp.log(alpha) / 2 - e_log, sp.log(alpha) / 2 + e_log):
        assert not same(result.neg_kl - wrong, sp.log(2 * sp.pi * sp.E) / 2 + c)


@pytest.mark.parametrize("theta,log_alpha", [(0.7, -1.0), (-3.0, -1.0), (0.05, 1.5)])
def test_log_uniform_kl_by_monte_carlo(theta, log_alpha):
    # E_q[log p(w) - log q(w)] with log p(w) = -log|w| (c = 0), sampled for w ~ N(theta, alpha theta^2):
    # it equals the quadrature of 1/2 log a - E log|eps| plus 1/2 log(2 pi e), whatever theta is
    a = math.exp(log_alpha)
    sd = math.sqrt(a) * abs(theta)
    w = theta + sd * torch.randn(N, generator=gen(int(100 * theta) + 50), dtype=torch.float64)
    log_q = -0.5 * ((w - theta) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)
    est = estimate_mean(-w.abs().log() - log_q)
    truth = float(db.neg_kl_exact(log_alpha)) + K1 + 0.5 * math.log(2 * math.pi * math.e)
    check_agrees_and_rejects(est, truth, {
        "theta does not cancel": truth - math.log(abs(theta)),
        "log alpha not halved": truth + 0.5 * log_alpha,
    })


# --------------------------------------------------------------------------------------------
# statistical layer: Gaussian dropout


@pytest.mark.parametrize("p,h", [(0.1, 1.0), (0.3, -2.0), (0.6, 0.7)])
def test_gaussian_dropout_mean_and_variance(p, h):
    x = torch.full((N,), h, dtype=torch.float64)
    out = db.gaussian_dropout(x, p, generator=gen(int(p * 100) + 7))
    values = {p_sym: sp.nsimplify(p), h_sym: sp.nsimplify(h)}
    variance_truth = float(MATCH.bernoulli_variance.subs(values))  # = Var of inverted dropout
    assert float(MATCH.gaussian_variance.subs({a_sym: MATCH.alpha, **values})) == pytest.approx(variance_truth)
    check_agrees_and_rejects(estimate_mean(out), h, {"mean (1-p)h": (1 - p) * h})
    check_agrees_and_rejects(estimate_variance(out), variance_truth, {
        "alpha = p": p * h**2,
        "alpha = (1-p)/p": (1 - p) / p * h**2,
        "alpha^2 (std and variance confused)": (p / (1 - p)) ** 2 * h**2,
    })


def test_gaussian_and_bernoulli_dropout_have_the_same_moments_but_not_the_same_law():
    p = 0.3
    x = torch.ones(N, dtype=torch.float64)
    gauss = db.gaussian_dropout(x, p, generator=gen(1))
    bern = db.inverted_dropout(x, p, generator=gen(2))
    for g_est, b_est in [(estimate_mean(gauss), estimate_mean(bern)),
                         (estimate_variance(gauss), estimate_variance(bern))]:
        diff = g_est.value - b_est.value
        assert abs(diff) <= Z * math.hypot(g_est.stderr, b_est.stderr)
    # the laws differ: Bernoulli dropout has an atom at 0, Gaussian dropout is negative 6% of the time
    assert (bern == 0).double().mean().item() == pytest.approx(p, abs=0.005)
    negative = estimate_mean(gauss < 0)
    truth = 0.5 * math.erfc(1 / math.sqrt(2 * p / (1 - p)))  # P(N(1, a) < 0) = Phi(-1/sqrt(a))
    check_agrees_and_rejects(negative, truth, {"no negative values": 0.0})


def test_gaussian_dropout_eval_and_zero_p_are_copies():
    x = torch.randn(5, generator=gen(0))
    for out in (db.gaussian_dropout(x, 0.4, training=False), db.gaussian_dropout(x, 0.0)):
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    layer = db.GaussianDropout(0.4)
    assert torch.equal(layer.eval()(x), x)
    assert not torch.equal(layer.train()(x), x)
    assert "p=0.4" in repr(layer)


@given(shape=st.lists(st.integers(0, 5), max_size=3).map(tuple),
       p=st.floats(0.0, 0.9), seed=st.integers(0, 1000), training=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_gaussian_dropout_keeps_shape_dtype_and_input(shape, p, seed, training, dtype):
    x = torch.randn(shape, generator=gen(seed)).to(dtype)
    before = x.clone()
    out = db.gaussian_dropout(x, p, training=training, generator=gen(seed + 1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(x, before)
    again = db.gaussian_dropout(x, p, training=training, generator=gen(seed + 1))
    assert torch.equal(out, again)  # reproducible with the same generator


@pytest.mark.parametrize("p,error", [(1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
                                     ("0.5", TypeError), (True, TypeError)])
def test_gaussian_dropout_rejects_bad_p(p, error):
    with pytest.raises(error, match="p must"):
        db.gaussian_dropout(torch.ones(2), p)
    with pytest.raises(error, match="p must"):
        db.GaussianDropout(p)


def test_gaussian_dropout_rejects_bad_input():
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        db.gaussian_dropout(torch.ones(2, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="generator"):
        db.gaussian_dropout(torch.ones(2), 0.5, generator=0)
    with pytest.raises(ValueError, match="alpha must be a finite real number >= 0"):
        db.drop_rate_from_alpha(-1.0)
    with pytest.raises(ValueError, match="alpha must be a finite"):
        db.drop_rate_from_alpha(float("inf"))


# --------------------------------------------------------------------------------------------
# statistical layer: the local reparameterization trick


THETA = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.4]], dtype=torch.float64)
ALPHA = torch.tensor([[0.2, 1.0, 0.05], [0.5, 2.0, 0.3]], dtype=torch.float64)
XROW = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def _lrt_truth(j: int) -> tuple[float, float, dict]:
    values = {s: v for s, v in zip(LRT.x, XROW.tolist())}
    values.update(zip(LRT.theta, THETA[j].tolist()))
    values.update(zip(LRT.alpha, ALPHA[j].tolist()))
    mean, var = float(LRT.mean.subs(values)), float(LRT.variance.subs(values))
    sigma2 = ALPHA[j] * THETA[j] ** 2
    wrong = {
        "x not squared": float((sigma2 * XROW).sum()),
        "standard deviations added": float((sigma2.sqrt() * XROW.abs()).sum() ** 2),
        "alpha instead of sigma^2": float((ALPHA[j] * XROW**2).sum()),
    }
    return mean, var, wrong


@pytest.mark.parametrize("j", [0, 1])
def test_local_reparameterization_agrees_with_the_derived_moments(j):
    n = 400_000
    x = XROW.expand(n, 3)
    out = db.local_reparameterization(x, THETA, ALPHA * THETA**2, generator=gen(10 + j))
    mean, var, wrong = _lrt_truth(j)
    check_agrees_and_rejects(estimate_mean(out[:, j]), mean, {"mean without x": float(THETA[j].sum())})
    check_agrees_and_rejects(estimate_variance(out[:, j]), var, wrong)


def test_local_reparameterization_equals_sampling_the_weights_in_distribution():
    # the slow way: one weight matrix per example, w = theta (1 + sqrt(alpha) eps)
    n = 200_000
    g = gen(21)
    w = THETA * (1 + ALPHA.sqrt() * torch.randn(n, 2, 3, generator=g, dtype=torch.float64))
    slow = torch.einsum("i,nji->nj", XROW, w)
    fast = db.local_reparameterization(XROW.expand(n, 3), THETA, ALPHA * THETA**2, generator=g)
    for j in (0, 1):
        mean, var, wrong = _lrt_truth(j)
        check_agrees_and_rejects(estimate_variance(slow[:, j]), var, wrong)
        a, b = estimate_variance(slow[:, j]), estimate_variance(fast[:, j])
        assert abs(a.value - b.value) <= Z * math.hypot(a.stderr, b.stderr)
    # independent outputs: the sample correlation is within 5 standard errors (1/sqrt n) of 0
    for sample in (slow, fast):
        corr = torch.corrcoef(sample.T)[0, 1].item()
        assert abs(corr) < Z / math.sqrt(n)


def test_shared_input_noise_correlates_the_outputs():
    # Gaussian dropout on the inputs: one noise per input unit, shared by both outputs
    n = 200_000
    g = gen(31)
    a = ALPHA[0]  # one alpha per input unit
    xi = 1 + a.sqrt() * torch.randn(n, 3, generator=g, dtype=torch.float64)
    out = (XROW * xi) @ THETA.T
    values = {s: v for s, v in zip(LRT.x, XROW.tolist())}
    values.update(zip(LRT.theta, THETA[0].tolist()))
    values.update(zip(LRT.theta2, THETA[1].tolist()))
    values.update(zip(LRT.alpha, a.tolist()))
    cov_truth = float(LRT.covariance_shared.subs(values))
    centred = out - out.mean(0)
    check_agrees_and_rejects(estimate_mean(centred[:, 0] * centred[:, 1]), cov_truth,
                             {"independent outputs (covariance 0)": 0.0})


def test_local_reparameterization_gradient_is_finite_for_a_zero_input_row():
    # a hidden layer after a ReLU often sees an all-zero row: variance 0, where sqrt' is infinite
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.5]], dtype=torch.float64)
    theta = THETA.clone().requires_grad_()
    log_var = torch.log(ALPHA * THETA**2).requires_grad_()
    out = db.local_reparameterization(x, theta, log_var.exp(), generator=gen(4))
    assert torch.equal(out[0], torch.zeros(2, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(theta.grad).all() and torch.isfinite(log_var.grad).all()


@given(batch=st.integers(1, 4), n_in=st.integers(1, 4), n_out=st.integers(1, 4), seed=st.integers(0, 1000),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_local_reparameterization_shapes_dtype_and_zero_variance(batch, n_in, n_out, seed, dtype):
    g = gen(seed)
    x = torch.randn(batch, n_in, generator=g).to(dtype)
    w = torch.randn(n_out, n_in, generator=g).to(dtype)
    b = torch.randn(n_out, generator=g).to(dtype)
    inputs = [t.clone() for t in (x, w, b)]
    out = db.local_reparameterization(x, w, torch.rand(n_out, n_in, generator=g).to(dtype), b, generator=gen(seed))
    assert out.shape == (batch, n_out) and out.dtype == dtype
    assert all(torch.equal(a, c) for a, c in zip((x, w, b), inputs))
    # zero variance: exactly the deterministic linear layer
    exact = db.local_reparameterization(x, w, torch.zeros_like(w), b, generator=gen(seed))
    assert torch.equal(exact, nn.functional.linear(x, w, b))


def test_local_reparameterization_rejects_bad_input_and_keeps_its_inputs():
    x, w, v = torch.ones(4, 3), torch.ones(2, 3), torch.ones(2, 3)
    before = [t.clone() for t in (x, w, v)]
    out = db.local_reparameterization(x, w, v, torch.zeros(2), generator=gen(0))
    assert out.shape == (4, 2) and out.dtype == x.dtype
    assert all(torch.equal(a, b) for a, b in zip((x, w, v), before))
    with pytest.raises(ValueError, match="x must have shape"):
        db.local_reparameterization(torch.ones(3), w, v)
    with pytest.raises(ValueError, match="weight must have shape"):
        db.local_reparameterization(x, torch.ones(2, 4), v)
    with pytest.raises(ValueError, match="weight_variance must have the shape"):
        db.local_reparameterization(x, w, torch.ones(3, 2))
    with pytest.raises(ValueError, match="weight_variance must be >= 0"):
        db.local_reparameterization(x, w, -v)
    with pytest.raises(ValueError, match="bias must have shape"):
        db.local_reparameterization(x, w, v, torch.zeros(3))
    with pytest.raises(TypeError, match="weight must have a floating dtype"):
        db.local_reparameterization(x, torch.ones(2, 3, dtype=torch.int64), v)


# --------------------------------------------------------------------------------------------
# the KL term: exact by quadrature (three routes) and the approximation


def _series_neg_kl(log_alpha: float) -> float:
    """1/2 log a - E log|eps|, eps ~ N(1, a), from E log chi'^2_1(lam) = log 2 + sum_j Pois(j; lam/2) psi(1/2 + j)."""
    from scipy.special import digamma, gammaln

    a = math.exp(log_alpha)
    half_lam = 0.5 / a
    j = np.arange(0, int(half_lam + 20 * math.sqrt(half_lam) + 60))
    weights = np.exp(-half_lam + j * math.log(half_lam) - gammaln(j + 1))
    e_log_eps2 = log_alpha + math.log(2) + float((weights * digamma(0.5 + j)).sum())
    return 0.5 * log_alpha - 0.5 * e_log_eps2


def _quad_neg_kl(log_alpha: float) -> float:
    from scipy.integrate import quad

    mu = math.exp(-0.5 * log_alpha)
    phi = lambda u: math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)  # noqa: E731
    f = lambda x: math.log(x) * (phi(x - mu) + phi(x + mu))  # noqa: E731
    value = quad(f, 0, mu, limit=200)[0] + quad(f, mu, np.inf, limit=200)[0]
    return -value


@pytest.mark.parametrize("log_alpha", [-8.0, -3.5, -1.0, 0.0, 2.0, 5.0, 8.0])
def test_exact_neg_kl_agrees_with_two_independent_routes(log_alpha):
    ours = float(db.neg_kl_exact(log_alpha)) + K1  # remove the constant C = -k1
    assert ours == pytest.approx(_series_neg_kl(log_alpha), abs=1e-9)
    assert ours == pytest.approx(_quad_neg_kl(log_alpha), abs=1e-7)


def test_exact_neg_kl_limits():
    # alpha -> 0: 1/2 log a - E log|1 + sqrt(a) z| = 1/2 log a + a/2 + O(a^2)
    la = -12.0
    assert float(db.neg_kl_exact(la)) + K1 == pytest.approx(0.5 * la + 0.5 * math.exp(la), abs=1e-9)
    # alpha -> infinity: the derived limit (gamma + log 2)/2, approached like -1/(2 alpha) ... within 1e-6 at log a = 16
    assert float(db.neg_kl_exact(16.0)) + K1 == pytest.approx(float(LIMIT.limit), abs=1e-6)


def test_neg_kl_approx_formula_and_constant():
    for la in (-8.0, -2.0, 0.0, 3.0, 8.0):
        typed = K1 / (1 + math.exp(-(K2 + K3 * la))) - 0.5 * math.log(1 + math.exp(-la)) - K1
        assert float(db.neg_kl_approx(la)) == pytest.approx(typed, abs=1e-12)
    assert float(db.neg_kl_approx(30.0)) == pytest.approx(0.0, abs=1e-9)  # C = -k1: vanishes at alpha = inf
    la = torch.linspace(-5, 5, 11, requires_grad=True)
    db.neg_kl_approx(la).sum().backward()
    assert la.grad is not None and bool((la.grad > 0).all())  # -KL increases with alpha
    assert db.neg_kl_approx(torch.zeros(3, dtype=torch.float16)).dtype == torch.float16


def test_kl_approximation_error_over_minus8_to_8():
    result = db.kl_approximation_error(-8.0, 8.0, 1601)
    # the same maximum from the independent series route, on a grid around the maximum
    grid = np.linspace(-4.5, -2.5, 81)
    series_err = max(abs(float(db.neg_kl_approx(la)) - (_series_neg_kl(la) - K1)) for la in grid)
    assert result.max_abs_error == pytest.approx(series_err, abs=2e-5)
    assert 0.0085 < result.max_abs_error < 0.0090  # the number the chapter reports
    assert -3.6 < result.argmax < -3.4
    # the error at large alpha is the constant offset k1 - (gamma + log 2)/2, not 0
    assert float(result.error[-1]) == pytest.approx(K1 - float(LIMIT.limit), abs=2e-4)
    # power: the quadrature tells the paper's constants from slightly wrong ones
    wrong = (K1 * torch.sigmoid(K2 + 1.3 * result.log_alpha)
             - 0.5 * torch.nn.functional.softplus(-result.log_alpha) - K1)
    assert (wrong - result.exact).abs().max() > 2 * result.max_abs_error


def test_kl_with_the_papers_constant_is_positive_everywhere_on_the_grid():
    # C = -k1: both -KL (exact by quadrature, and the approximation) are negative at all 1,601 points
    result = db.kl_approximation_error(-8.0, 8.0, 1601)
    assert float(result.exact.max()) < 0 and float(result.approx.max()) < 0
    # the exact -KL increases with alpha towards its limit (gamma + log 2)/2 - k1 < 0, so the largest
    # value on the grid is at its right end and is below the limit
    assert int(result.exact.argmax()) == len(result.exact) - 1
    assert float(result.exact[-1]) < float(LIMIT.limit) - K1 < 0
    # the independent series route agrees on the sign at the points where -KL is closest to zero
    for la in (6.0, 7.0, 8.0):
        assert _series_neg_kl(la) - K1 < 0
    # another constant flips it: with C = 0 the same expression is positive (KL < 0) at large alpha
    assert float((result.exact + K1).max()) > 0.6


def test_kl_functions_reject_bad_input():
    with pytest.raises(ValueError, match="log_alpha must lie in"):
        db.neg_kl_exact(40.0)
    with pytest.raises(ValueError, match="log_alpha must be a real number, got nan"):
        db.neg_kl_approx(float("nan"))
    with pytest.raises(TypeError, match="log_alpha must have a floating dtype"):
        db.neg_kl_approx(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="step must be"):
        db.neg_kl_exact(0.0, step=0.5)
    with pytest.raises(ValueError, match=r"^low and high must satisfy -30 <= low < high"):
        db.kl_approximation_error(2.0, 1.0)
    with pytest.raises(ValueError, match="n must be an int"):
        db.kl_approximation_error(n=1)
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    before = x.clone()
    db.neg_kl_exact(x), db.neg_kl_approx(x)
    assert torch.equal(x, before)
    assert db.neg_kl_exact(np.zeros((2, 3))).shape == (2, 3)


# --------------------------------------------------------------------------------------------
# LinearSVDO


def _layer(seed: int = 0) -> db.LinearSVDO:
    torch.manual_seed(seed)
    return db.LinearSVDO(3, 2).double()


def test_svdo_training_forward_has_the_derived_moments():
    layer = _layer()
    with torch.no_grad():
        layer.weight.copy_(THETA)
        layer.log_sigma2.copy_(torch.log(ALPHA * THETA**2))
        layer.bias.zero_()
    layer.generator = gen(41)
    out = layer.train()(XROW.expand(400_000, 3)).detach()
    for j in (0, 1):
        mean, var, wrong = _lrt_truth(j)
        check_agrees_and_rejects(estimate_mean(out[:, j]), mean, {"mean without x": float(THETA[j].sum())})
        check_agrees_and_rejects(estimate_variance(out[:, j]), var, wrong)
    assert torch.allclose(layer.log_alpha, ALPHA.log())


def test_svdo_eval_removes_the_weights_above_the_threshold():
    layer = _layer()
    with torch.no_grad():
        layer.weight.copy_(THETA)
        log_alpha = torch.tensor([[4.0, -1.0, 2.99], [3.0, 0.0, 10.5]], dtype=torch.float64)
        layer.log_sigma2.copy_(log_alpha + torch.log(THETA**2))
    kept = torch.tensor([[False, True, True], [False, True, False]])
    assert torch.equal(layer.mask(), kept)
    assert layer.sparsity() == pytest.approx(0.5)
    x = torch.randn(5, 3, generator=gen(3), dtype=torch.float64)
    expected = x @ (THETA * kept).T + layer.bias
    out = layer.eval()(x)
    assert torch.allclose(out, expected)
    assert torch.equal(out, layer(x))  # deterministic at evaluation
    # a higher threshold keeps more; log alpha is clipped to [-10, 10]
    layer.threshold = 10.0
    assert layer.sparsity() == pytest.approx(1 / 6)
    assert float(layer.log_alpha.detach().max()) == 10.0
    report = db.sparsity_report(nn.Sequential(layer))
    assert report.removed == (1,) and report.total == (6,)
    assert "removed 16.7%" in str(report) and report.compression == pytest.approx(6 / 5)


def test_svdo_kl_is_the_sum_of_the_approximation_and_gives_gradients():
    layer = _layer()
    kl = layer.kl()
    assert kl.item() == pytest.approx(-db.neg_kl_approx(layer.log_alpha.detach()).sum().item())
    model = nn.Sequential(layer, nn.ReLU(), db.LinearSVDO(2, 2).double())
    assert db.sparse_vd_kl(model).item() == pytest.approx(kl.item() + model[2].kl().item())
    db.sparse_vd_kl(model).backward()
    assert layer.log_sigma2.grad is not None and bool((layer.log_sigma2.grad < 0).all())  # KL falls as alpha grows


def test_svdo_does_not_change_the_callers_input_and_validates():
    layer = _layer()
    x = torch.ones(2, 3, dtype=torch.float64)
    params = [p.detach().clone() for p in layer.parameters()]
    layer.train()(x), layer.eval()(x), layer.sparsity(), layer.kl()
    assert torch.equal(x, torch.ones(2, 3, dtype=torch.float64))
    assert all(torch.equal(a, b) for a, b in zip(params, layer.parameters()))
    with pytest.raises(ValueError, match="x must have shape"):
        layer(torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        db.LinearSVDO(0, 2)
    with pytest.raises(TypeError, match="out_features must be a positive int"):
        db.LinearSVDO(2, 2.5)
    with pytest.raises(TypeError, match="threshold must be a finite real number"):
        db.LinearSVDO(2, 2, threshold="3")
    with pytest.raises(ValueError, match="no LinearSVDO layer"):
        db.sparse_vd_kl(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        db.sparsity_report("model")
    assert "threshold=3.0" in repr(layer)
    assert db.LinearSVDO(2, 2, bias=False).bias is None


def test_train_sparse_vd_is_reproducible_and_sparsifies():
    from dropoutbook.data import Split

    g = gen(5)  # a small synthetic problem: the label is the sign of the first feature
    x = torch.randn(260, 20, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    data = Split(x[:200], y[:200], x[200:], y[200:])

    def run():
        torch.manual_seed(0)
        model = nn.Sequential(db.LinearSVDO(20, 16), nn.ReLU(), db.LinearSVDO(16, 2)).double()
        return model, db.train_sparse_vd(model, data, epochs=6, lr=1e-2, batch_size=50, warmup_epochs=2)

    (model, first), (_, second) = run(), run()
    assert first == second
    assert first.kl_weight == [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert first.sparsity[-1] > first.sparsity[0]
    assert first.kl[-1] < first.kl[0]
    assert first.sparsity[-1] == pytest.approx(db.sparsity_report(model).fraction)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        db.train_sparse_vd(model, data, epochs=0)
    with pytest.raises(ValueError, match="warmup_epochs must be a non-negative int"):
        db.train_sparse_vd(model, data, warmup_epochs=-1)
    with pytest.raises(ValueError, match="lr must be a finite real number > 0"):
        db.train_sparse_vd(model, data, lr=0.0)
    with pytest.raises(TypeError, match="data must be a dropoutbook.data.Split"):
        db.train_sparse_vd(model, (x, y))
