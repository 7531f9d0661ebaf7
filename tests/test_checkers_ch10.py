"""Checkers of chapter 10, "Variational dropout and sparsification": the reference solution passes,
the blank starter fails with "not written yet", and typical wrong answers fail with their hint."""

from __future__ import annotations

import math

import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    check_gaussian_alpha,
    check_gaussian_dropout,
    check_local_reparameterization,
    check_neg_kl_approx,
)
from helpers import assert_fails, assert_passes, starter

K1, K2, K3 = db.SPARSE_VD_K


# --------------------------------------------------------------------------------------------
# Gaussian dropout


def gaussian_with_variance(variance_of_p, multiplicative=True):
    def fn(x, p, training=True):
        if not training or p == 0:
            return x.clone()
        eps = torch.randn_like(x)
        noise = math.sqrt(variance_of_p(p)) * eps
        return x * (1 + noise) if multiplicative else x + noise
    return fn


reference_gaussian = gaussian_with_variance(lambda p: p / (1 - p))


def test_gaussian_dropout_reference_passes(capsys):
    assert_passes(capsys, check_gaussian_dropout, reference_gaussian)
    assert_passes(capsys, check_gaussian_dropout, lambda x, p, training=True: db.gaussian_dropout(x, p, training=training))


def test_gaussian_dropout_starter_fails():
    assert_fails(check_gaussian_dropout, starter, "not written yet")


def test_gaussian_dropout_wrong_answers_fail_with_their_hint():
    assert_fails(check_gaussian_dropout, gaussian_with_variance(lambda p: p), "alpha = p/(1-p)")
    assert_fails(check_gaussian_dropout, gaussian_with_variance(lambda p: (1 - p) / p), "keep probability")
    assert_fails(check_gaussian_dropout, gaussian_with_variance(lambda p: (p / (1 - p)) ** 2), "sqrt(alpha)")
    assert_fails(check_gaussian_dropout, gaussian_with_variance(lambda p: p / (1 - p), multiplicative=False),
                 "multiplicative")
    assert_fails(check_gaussian_dropout, lambda x, p, training=True: db.inverted_dropout(x, p, training=training),
                 "Bernoulli dropout")

    def no_eval(x, p, training=True):
        return reference_gaussian(x, p, True) if p > 0 else x.clone()
    assert_fails(check_gaussian_dropout, no_eval, "training=False")

    def in_place(x, p, training=True):
        return x.mul_(1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))
    assert_fails(check_gaussian_dropout, in_place, "in place")


def test_gaussian_dropout_checker_keeps_the_callers_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_gaussian_dropout(reference_gaussian)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# alpha by sympy


def reference_alpha():
    m, eps = sp.Symbol("m"), sp.Symbol("eps", real=True)
    p, h, alpha = derivations.drop_rate, derivations.activation, derivations.gaussian_noise_variance
    bern = {m: derivations.Bernoulli(1 - p)}
    gauss = {eps: derivations.ZeroMeanNoise(1)}
    v_bern = derivations.variance(m * h / (1 - p), bern)
    v_gauss = derivations.variance((1 + sp.sqrt(alpha) * eps) * h, gauss)
    return sp.solve(sp.Eq(v_gauss, v_bern), alpha)[0]


def test_gaussian_alpha_reference_passes(capsys):
    assert_passes(capsys, check_gaussian_alpha, reference_alpha)


def test_gaussian_alpha_starter_fails():
    assert_fails(check_gaussian_alpha, starter, "not written yet")


def test_gaussian_alpha_wrong_answers_fail_with_their_hint():
    p = sp.Symbol("p")
    assert_fails(check_gaussian_alpha, lambda: p, "alpha = p equates")
    assert_fails(check_gaussian_alpha, lambda: (1 - p) / p, "keep probability")
    assert_fails(check_gaussian_alpha, lambda: p * (1 - p), "unscaled mask")
    assert_fails(check_gaussian_alpha, lambda: 1 / (1 - p), "subtract the squared mean")
    assert_fails(check_gaussian_alpha, lambda: sp.sqrt(p / (1 - p)), "standard deviation")
    assert_fails(check_gaussian_alpha, lambda: sp.Symbol("q") / 2, "in terms of ['p'] only")
    assert_fails(check_gaussian_alpha, lambda: sp.Eq(p, 1), "sympy expression")
    assert_fails(check_gaussian_alpha, lambda: p**2, "alpha is 1 there")


# --------------------------------------------------------------------------------------------
# local reparameterization


def lrt(variance_fn, eps_shape=None):
    def fn(x, theta, log_sigma2):
        mean = x @ theta.T
        var = variance_fn(x, log_sigma2)
        shape = mean.shape if eps_shape is None else eps_shape(mean)
        return mean + var.sqrt() * torch.randn(shape, dtype=mean.dtype)
    return fn


reference_lrt = lrt(lambda x, ls2: (x * x) @ ls2.exp().T)


def test_local_reparameterization_reference_passes(capsys):
    assert_passes(capsys, check_local_reparameterization, reference_lrt)
    assert_passes(capsys, check_local_reparameterization,
                  lambda x, t, ls2: db.local_reparameterization(x, t, ls2.exp()))


def test_local_reparameterization_starter_fails():
    assert_fails(check_local_reparameterization, starter, "not written yet")


def test_local_reparameterization_wrong_answers_fail_with_their_hint():
    assert_fails(check_local_reparameterization, lrt(lambda x, ls2: x @ ls2.exp().T), "square x")
    assert_fails(check_local_reparameterization, lrt(lambda x, ls2: (x * x) @ (0.5 * ls2).exp().T),
                 "already the variance")
    assert_fails(check_local_reparameterization, lrt(lambda x, ls2: (x @ (0.5 * ls2).exp().T) ** 2),
                 "not their standard deviations")
    assert_fails(check_local_reparameterization, lrt(lambda x, ls2: (x * x) @ ls2.T), "NaN")
    assert_fails(check_local_reparameterization,
                 lrt(lambda x, ls2: (x * x) @ ls2.exp().T, eps_shape=lambda m: (m.shape[0], 1)),
                 "independent eps for every output")
    assert_fails(check_local_reparameterization,
                 lrt(lambda x, ls2: (x * x) @ ls2.exp().T, eps_shape=lambda m: (1, m.shape[1])),
                 "one noise per example")

    def one_weight_sample(x, theta, log_sigma2):
        w = theta + (0.5 * log_sigma2).exp() * torch.randn_like(theta)
        return x @ w.T
    assert_fails(check_local_reparameterization, one_weight_sample, "one noise per example")


# --------------------------------------------------------------------------------------------
# the KL approximation


def reference_neg_kl(log_alpha):
    return (K1 * torch.sigmoid(K2 + K3 * log_alpha)
            - 0.5 * torch.log1p(torch.exp(-log_alpha)) - K1)


def test_neg_kl_reference_passes(capsys):
    assert_passes(capsys, check_neg_kl_approx, reference_neg_kl)


def test_neg_kl_starter_fails():
    assert_fails(check_neg_kl_approx, starter, "not written yet")


def test_neg_kl_wrong_answers_fail_with_their_hint():
    assert_fails(check_neg_kl_approx, lambda la: reference_neg_kl(la) + K1, "constant C = -k1")
    assert_fails(check_neg_kl_approx,
                 lambda la: K1 * torch.sigmoid(K2 + K3 * la) - 0.5 * torch.log1p(la.exp()) - K1,
                 "not log(1 + alpha)")
    assert_fails(check_neg_kl_approx,
                 lambda la: K1 * torch.sigmoid(K2 + K3 * la) + 0.5 * torch.log1p(torch.exp(-la)) - K1,
                 "sign")
    assert_fails(check_neg_kl_approx,
                 lambda la: K1 * torch.sigmoid(K2 + K3 * la.exp()) - 0.5 * torch.log1p(torch.exp(-la)) - K1,
                 "not alpha")
    assert_fails(check_neg_kl_approx, lambda la: -reference_neg_kl(la), "+KL")
    assert_fails(check_neg_kl_approx, lambda la: [0.0], "torch.Tensor")
    assert_fails(check_neg_kl_approx, lambda la: 0.9 * reference_neg_kl(la), "at log alpha")
