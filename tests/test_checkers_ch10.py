"""Checkers of chapter 10, "Variational dropout and sparsification": the reference solution passes,
the blank starter fails with "not written yet", typical wrong answers (written as a student would)
fail with their specific hint, and correct answers written differently from the reference pass."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from torch.nn import functional as F

import dropoutbook as db
from dropoutbook import derivations, variational
from dropoutbook.exercises import (
    check_gaussian_alpha,
    check_gaussian_dropout,
    check_local_reparameterization,
    check_neg_kl_approx,
)
from helpers import assert_fails, assert_passes, starter

K1, K2, K3 = db.SPARSE_VD_K


# --------------------------------------------------------------------------------------------
# exercise 1: Gaussian dropout (any shape; the library's gaussian_dropout is forbidden)


def gaussian_with_variance(variance_of_p, multiplicative=True, noise_shape=None, rate=None, reseed=False):
    def fn(x, p, training=True):
        p = p if rate is None else rate
        if not training or p == 0:
            return x.clone()
        g = torch.Generator().manual_seed(0) if reseed else None
        shape = x.shape if noise_shape is None else noise_shape(x)
        eps = torch.randn(shape, generator=g, dtype=x.dtype)
        noise = math.sqrt(variance_of_p(p)) * eps
        return x * (1 + noise) if multiplicative else x + noise
    return fn


reference_gaussian = gaussian_with_variance(lambda p: p / (1 - p))


def gaussian_by_normal(x, p, training=True):
    if not training:
        return x
    return x * torch.normal(1.0, math.sqrt(p / (1 - p)), size=x.shape, dtype=x.dtype)


def gaussian_in_place_on_a_copy(x, p, training=True):
    out = x.clone()
    if training and p > 0:
        out.mul_(torch.empty_like(x).normal_(1.0, (p / (1 - p)) ** 0.5))
    return out


def no_eval(x, p, training=True):
    return reference_gaussian(x, p, True) if p > 0 else x.clone()


def in_place(x, p, training=True):
    if not training:
        return x
    return x.mul_(1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))


@pytest.mark.parametrize("fn, hint", [
    (gaussian_with_variance(lambda p: p), "alpha = p/(1-p)"),
    (gaussian_with_variance(lambda p: (1 - p) / p), "keep probability"),
    (gaussian_with_variance(lambda p: (p / (1 - p)) ** 2), "sqrt(alpha)"),
    (gaussian_with_variance(lambda p: (p / (1 - p)) ** 0.5), "not alpha**0.25"),
    (gaussian_with_variance(lambda p: p / (1 - p), multiplicative=False), "multiplicative"),
    (gaussian_with_variance(lambda p: p / (1 - p), noise_shape=lambda x: x.shape[-1:]), "every row gets the same noise"),
    (gaussian_with_variance(lambda p: p / (1 - p), noise_shape=lambda x: ()), "one noise value"),
    (gaussian_with_variance(lambda p: p / (1 - p), rate=0.3), "not the p it receives"),
    (gaussian_with_variance(lambda p: p / (1 - p), reseed=True), "two calls returned the same output"),
    (lambda x, p, training=True: db.inverted_dropout(x, p, training=training), "Bernoulli dropout"),
    (no_eval, "training=False"),
    (in_place, "in place"),
    (lambda x, p, training=True: db.gaussian_dropout(x, p, training=training), "forbids"),
    (lambda x, p, training=True: variational.gaussian_dropout(x, p, training=training), "dropoutbook.gaussian_dropout"),
])
def test_gaussian_dropout_wrong_answers(fn, hint):
    assert_fails(check_gaussian_dropout, fn, hint)


def test_gaussian_dropout_correct_answers(capsys):
    assert_passes(capsys, check_gaussian_dropout, reference_gaussian)
    assert_passes(capsys, check_gaussian_dropout, gaussian_by_normal)
    assert_passes(capsys, check_gaussian_dropout, gaussian_in_place_on_a_copy)
    assert_fails(check_gaussian_dropout, starter, "not written yet")


def test_gaussian_dropout_checker_keeps_the_callers_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_gaussian_dropout(reference_gaussian)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# exercise 2: the mean and alpha by sympy (computed, not typed)

p_ = derivations.drop_rate
h_ = derivations.activation


def derived(keep=1 - p_, scale=1 / (1 - p_), second_moment_only=False):
    def derive():
        m, eps = sp.Symbol("m"), sp.Symbol("eps", real=True)
        alpha = derivations.gaussian_noise_variance
        bern = {m: derivations.Bernoulli(keep)}
        h_tilde = m * h_ * scale
        if second_moment_only:
            v_bern = derivations.expectation(h_tilde**2, bern)
        else:
            v_bern = derivations.variance(h_tilde, bern)
        v_gauss = derivations.variance((1 + sp.sqrt(alpha) * eps) * h_, {eps: derivations.ZeroMeanNoise(1)})
        (solution,) = sp.solve(sp.Eq(v_gauss, v_bern), alpha)
        return {"mean": derivations.expectation(h_tilde, bern), "alpha": solution}
    return derive


def by_expectations():  # E[h~^2] - E[h~]^2 by hand, own symbols, alpha solved with solveset
    p, h, m, a = sp.Symbol("p"), sp.Symbol("h"), sp.Symbol("b"), sp.Symbol("a", positive=True)
    dist = {m: derivations.Bernoulli(1 - p)}
    mean = derivations.expectation(m * h / (1 - p), dist)
    var = derivations.expectation((m * h / (1 - p)) ** 2, dist) - mean**2
    (alpha,) = sp.solve(a * h**2 - var, a)
    return {"alpha": sp.factor(alpha), "mean": mean}


@pytest.mark.parametrize("answer, hint", [
    (derived(keep=p_), "Bernoulli(p)"),  # the right alpha, but the mask keeps with probability p
    (derived(scale=1), "divides by 1 - p"),
    (derived(second_moment_only=True), "subtract the squared mean"),
    (lambda: {"mean": h_, "alpha": p_ / (1 - p_)}, "typed"),
    (lambda: {"mean": h_, "alpha": sp.Rational(3, 7)}, "typed"),
    (lambda: {"mean": 1.0, "alpha": 0.4286}, "typed"),
    (lambda: derived()()["alpha"], "a dict with the keys ['mean', 'alpha']"),
    (lambda: {"alpha": derived()()["alpha"]}, "missing ['mean']"),
    (lambda: {"mean": h_, "alpha": sp.Symbol("q") / 2}, "uses the symbols ['q']"),
    (lambda: {"mean": h_, "alpha": sp.Eq(p_, 1)}, "sympy expression"),
])
def test_gaussian_alpha_wrong_answers(answer, hint):
    assert_fails(check_gaussian_alpha, answer, hint)


@pytest.mark.parametrize("alpha, hint", [
    (p_, "alpha = p equates"),
    ((1 - p_) / p_, "keep probability"),
    (p_ * (1 - p_), "unscaled mask"),
    (1 / (1 - p_), "subtract the squared mean"),
    (sp.sqrt(p_ / (1 - p_)), "standard deviation"),
    (p_**2, "alpha is 1 there"),
])
def test_gaussian_alpha_wrong_alpha_is_named(alpha, hint):
    def answer():
        derivations.expectation(sp.Symbol("m"), {sp.Symbol("m"): derivations.Bernoulli(1 - p_)})
        return {"mean": h_, "alpha": alpha}
    assert_fails(check_gaussian_alpha, answer, hint)


def test_gaussian_alpha_correct_answers(capsys):
    assert_passes(capsys, check_gaussian_alpha, derived())
    assert_passes(capsys, check_gaussian_alpha, by_expectations)
    assert_fails(check_gaussian_alpha, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3: local reparameterization (no weight may be sampled)


def lrt(variance_fn, eps_shape=None):
    def fn(x, theta, log_sigma2):
        mean = x @ theta.T
        var = variance_fn(x, log_sigma2)
        shape = mean.shape if eps_shape is None else eps_shape(mean)
        return mean + var.sqrt() * torch.randn(shape, dtype=mean.dtype)
    return fn


reference_lrt = lrt(lambda x, ls2: (x * x) @ ls2.exp().T)


def lrt_by_normal(x, theta, log_sigma2):
    return torch.normal(F.linear(x, theta), F.linear(x**2, torch.exp(log_sigma2)).sqrt())


def lrt_by_einsum(x, theta, log_sigma2):
    mean = torch.einsum("ni,ji->nj", x, theta)
    std = torch.einsum("ni,ji->nj", x.square(), log_sigma2.exp()).sqrt()
    return torch.addcmul(mean, std, torch.randn_like(std))


def one_weight_sample(x, theta, log_sigma2):
    w = theta + (0.5 * log_sigma2).exp() * torch.randn_like(theta)
    return x @ w.T


def weights_per_example(x, theta, log_sigma2):  # the right distribution, but it samples weights
    w = theta + (0.5 * log_sigma2).exp() * torch.randn(x.shape[0], *theta.shape, dtype=x.dtype)
    return torch.einsum("ni,nji->nj", x, w)


def weights_per_example_by_normal(x, theta, log_sigma2):
    w = torch.normal(theta.expand(x.shape[0], *theta.shape), (0.5 * log_sigma2).exp().expand(x.shape[0], *theta.shape))
    return (w @ x.unsqueeze(-1)).squeeze(-1)


def squares_x_in_place(x, theta, log_sigma2):
    mean = x @ theta.T
    var = x.pow_(2) @ log_sigma2.exp().T
    return mean + var.sqrt() * torch.randn_like(mean)


def fixed_output_count(x, theta, log_sigma2):  # the noise shape of the first test layer, hard-coded
    mean = x @ theta.T
    var = (x * x) @ log_sigma2.exp().T
    return mean + var.sqrt() * torch.randn(x.shape[0], 2, dtype=x.dtype)


@pytest.mark.parametrize("fn, hint", [
    (lrt(lambda x, ls2: x @ ls2.exp().T), "square x"),
    (lrt(lambda x, ls2: (x * x) @ (0.5 * ls2).exp().T), "already the variance"),
    (lrt(lambda x, ls2: (x @ (0.5 * ls2).exp().T) ** 2), "not their standard deviations"),
    (lrt(lambda x, ls2: (x * x) @ ls2.T), "NaN"),
    (lrt(lambda x, ls2: (x * x) @ ls2.exp().T, eps_shape=lambda m: (m.shape[0], 1)), "independent eps for every output"),
    (lrt(lambda x, ls2: (x * x) @ ls2.exp().T, eps_shape=lambda m: (1, m.shape[1])), "one noise per example"),
    (lambda x, theta, ls2: x @ theta.T, "identical inputs gave identical outputs"),
    (one_weight_sample, "sampled a weight"),
    (weights_per_example, "sampled a weight"),
    (weights_per_example_by_normal, "without sampling any weight"),
    (squares_x_in_place, "in place"),
    (fixed_output_count, "raised RuntimeError"),
])
def test_local_reparameterization_wrong_answers(fn, hint):
    assert_fails(check_local_reparameterization, fn, hint)


def test_local_reparameterization_correct_answers(capsys):
    assert_passes(capsys, check_local_reparameterization, reference_lrt)
    assert_passes(capsys, check_local_reparameterization, lrt_by_normal)
    assert_passes(capsys, check_local_reparameterization, lrt_by_einsum)
    assert_passes(capsys, check_local_reparameterization,
                  lambda x, t, ls2: db.local_reparameterization(x, t, ls2.exp()))
    assert_fails(check_local_reparameterization, starter, "not written yet")


def test_local_reparameterization_restores_the_random_functions():
    before = (torch.randn, torch.randn_like, torch.normal, torch.Tensor.normal_)
    assert_fails(check_local_reparameterization, weights_per_example, "sampled a weight")
    assert (torch.randn, torch.randn_like, torch.normal, torch.Tensor.normal_) == before


# --------------------------------------------------------------------------------------------
# exercise 4: the KL approximation (stable for any log alpha, in float32 too)


def reference_neg_kl(log_alpha):
    return K1 * torch.sigmoid(K2 + K3 * log_alpha) - 0.5 * F.softplus(-log_alpha) - K1


def neg_kl_logaddexp(log_alpha):
    return K1 * (torch.sigmoid(K2 + K3 * log_alpha) - 1) - 0.5 * torch.logaddexp(torch.zeros_like(log_alpha), -log_alpha)


def neg_kl_piecewise(log_alpha):  # log(1 + e^-t) = -t + log(1 + e^t) for negative t
    t = log_alpha
    log_term = torch.where(t > 0, torch.log1p(torch.exp(-t.clamp(min=0))), -t + torch.log1p(torch.exp(t.clamp(max=0))))
    return K1 * torch.sigmoid(K2 + K3 * t) - 0.5 * log_term - K1


@pytest.mark.parametrize("fn, hint", [
    (lambda la: reference_neg_kl(la) + K1, "constant C = -k1"),
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la) - 0.5 * F.softplus(la) - K1, "not log(1 + alpha)"),
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la) + 0.5 * F.softplus(-la) - K1, "sign"),
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la.exp()) - 0.5 * F.softplus(-la) - K1, "not alpha"),
    (lambda la: -reference_neg_kl(la), "+KL"),
    # right on [-8, 8], but alpha is formed: -inf or nan below log alpha = -88 in float32
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la) - 0.5 * torch.log1p(1 / torch.exp(la)) - K1, "overflow"),
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la) - 0.5 * torch.log1p(torch.exp(-la)) - K1, "softplus"),
    (lambda la: K1 * torch.sigmoid(K2 + K3 * la) - 0.5 * torch.log(1 + torch.exp(-la)) - K1, "log alpha = -100"),
    (lambda la: reference_neg_kl(la.clamp(-8, 8)), "at log alpha"),
    (lambda la: [0.0], "torch.Tensor"),
    (lambda la: 0.9 * reference_neg_kl(la), "at log alpha"),
    (lambda la: reference_neg_kl(la.mul_(1.0001)), "in place"),
])
def test_neg_kl_wrong_answers(fn, hint):
    assert_fails(check_neg_kl_approx, fn, hint)


def test_neg_kl_correct_answers(capsys):
    assert_passes(capsys, check_neg_kl_approx, reference_neg_kl)
    assert_passes(capsys, check_neg_kl_approx, neg_kl_logaddexp)
    assert_passes(capsys, check_neg_kl_approx, neg_kl_piecewise)
    assert_passes(capsys, check_neg_kl_approx, db.neg_kl_approx)
    assert_fails(check_neg_kl_approx, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# answers that passed an earlier version of the checkers


def _gaussian_with_noise(noise_of):
    def fn(x, p, training=True):
        if not training or p == 0:
            return x.clone()
        return x * (1 + math.sqrt(p / (1 - p)) * noise_of(x))
    return fn


def _halves_noise(x):  # the same noise for the two halves of the batch
    half = torch.randn(x.shape[0] // 2, *x.shape[1:], dtype=x.dtype)
    return torch.cat([half, half, torch.randn(x.shape[0] % 2, *x.shape[1:], dtype=x.dtype)])


def _uniform_noise(x):  # mean 0 and variance 1, but not normal
    return (torch.rand_like(x) - 0.5) * math.sqrt(12)


@pytest.mark.parametrize("fn, hint", [
    (_gaussian_with_noise(_halves_noise), "two halves of the batch is correlated"),
    (_gaussian_with_noise(_uniform_noise), "not a normal distribution"),
    (lambda x, p, training=True: reference_gaussian(x, p, training).float(), "returned dtype torch.float32"),
])
def test_gaussian_dropout_dependent_or_non_normal_noise_and_dtype(fn, hint):
    assert_fails(check_gaussian_dropout, fn, hint)


def _alpha_typed_next_to_a_call():
    m = sp.Symbol("m")
    derivations.expectation(m, {m: derivations.Bernoulli(1 - p_)})
    return {"mean": h_, "alpha": p_ / (1 - p_)}


def _alpha_from_the_variance_ratio():  # alpha = Var[h~]/h², no sp.solve: computed all the same
    m = sp.Symbol("m")
    mask = {m: derivations.Bernoulli(1 - p_)}
    h_tilde = m * h_ / (1 - p_)
    return {"mean": derivations.expectation(h_tilde, mask), "alpha": sp.simplify(derivations.variance(h_tilde, mask) / h_**2)}


def test_gaussian_alpha_typed_next_to_a_call(capsys):
    assert_fails(check_gaussian_alpha, _alpha_typed_next_to_a_call, "does not follow the mask distribution", "typed in")
    assert_passes(capsys, check_gaussian_alpha, _alpha_from_the_variance_ratio)


def lrt_with_noise(noise_of):  # the right mean and variance, with noise of the shape noise_of(mean) gives
    def fn(x, theta, log_sigma2):
        mean = x @ theta.T
        return mean + ((x * x) @ log_sigma2.exp().T).sqrt() * noise_of(mean)
    return fn


def weights_per_example_flat(x, theta, log_sigma2):  # a weight matrix per example, drawn flat
    eps = torch.randn(x.shape[0], theta.numel(), dtype=x.dtype).reshape(x.shape[0], *theta.shape)
    return torch.einsum("ni,nji->nj", x, theta + (0.5 * log_sigma2).exp() * eps)


def one_weight_transposed(x, theta, log_sigma2):
    eps = torch.randn(theta.shape[1], theta.shape[0], dtype=x.dtype).T
    return x @ (theta + (0.5 * log_sigma2).exp() * eps).T


@pytest.mark.parametrize("fn, hint", [
    (weights_per_example_flat, "a weight matrix for every example"),
    (one_weight_transposed, "one weight matrix"),
    (lrt_with_noise(lambda m: torch.randn(m.shape[0] // 2, m.shape[1], dtype=m.dtype).repeat(2, 1)),
     "two halves of the batch is correlated"),
    (lrt_with_noise(lambda m: torch.randn(m.shape[0] // 2, m.shape[1], dtype=m.dtype).repeat_interleave(2, 0)),
     "neighbouring examples is correlated"),
    (lambda x, theta, ls2: reference_lrt(x, theta, ls2).float(), "returned dtype torch.float32"),
])
def test_local_reparameterization_flat_weights_dependent_noise_and_dtype(fn, hint):
    assert_fails(check_local_reparameterization, fn, hint)


@pytest.mark.parametrize("fn", [lambda la: reference_neg_kl(la.double()), lambda la: reference_neg_kl(la.float())])
def test_neg_kl_keeps_the_dtype(fn):
    assert_fails(check_neg_kl_approx, fn, "keep the input's dtype")


def test_gaussian_alpha_typed_next_to_a_computed_mean():
    def answer():
        m = sp.Symbol("m")
        mask = {m: derivations.Bernoulli(1 - p_)}
        return {"mean": derivations.expectation(m * h_ / (1 - p_), mask), "alpha": p_ / (1 - p_)}
    assert_fails(check_gaussian_alpha, answer, "does not follow the mask distribution")
