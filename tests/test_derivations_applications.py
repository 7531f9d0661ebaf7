"""Chapter 15: the ZINB moments derived by sympy equal the stated formulas, and the library's sampler
has them (Monte Carlo within 5 standard errors, with the power to reject the usual wrong formulas)."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations
from helpers import check_agrees_and_rejects, same

Z = derivations.zinb_moments()
MU, THETA, PI = Z.mu, Z.theta, Z.pi


def test_poisson_and_negative_binomial_steps_are_the_textbook_ones():
    lam = sp.Symbol("lambda", positive=True)
    assert same(Z.poisson_moments[0], lam) and same(Z.poisson_moments[1], lam + lam**2)
    assert same(Z.nb_mean, MU)
    assert same(Z.nb_variance, MU + MU**2 / THETA)
    assert same(Z.nb_zero, (THETA / (THETA + MU)) ** THETA)


def test_zinb_moments_are_the_stated_formulas():
    assert same(Z.mean, (1 - PI) * MU)
    assert same(Z.variance, (1 - PI) * MU * (1 + MU / THETA) + PI * (1 - PI) * MU**2)
    assert same(Z.zero_probability, PI + (1 - PI) * (THETA / (THETA + MU)) ** THETA)
    # the displayed forms are the derived expressions, and the usual wrong ones are not
    assert same(Z.variance_terms.doit(), Z.variance) and same(Z.zero_terms.doit(), Z.zero_probability)
    assert not same(Z.variance, (1 - PI) * MU * (1 + MU / THETA))  # the mixture term pi(1-pi)mu^2 forgotten
    assert not same(Z.mean, PI * MU)
    assert [i.lhs_text for i in Z.identities()] == ["Var[Y]", "E[X]", "Var[X]", "P(X = 0)"]


@pytest.mark.parametrize("mu, theta, pi", [(3.0, 2.0, 0.3), (8.0, 0.7, 0.15)])
def test_zinb_moments_agree_with_the_sampler_and_reject_wrong_formulas(mu, theta, pi):
    n = 200_000
    draws = db.sample_zinb(torch.full((n,), mu, dtype=torch.float64), theta, pi, seed=15)
    x = draws.counts
    subs = {MU: mu, THETA: theta, PI: pi}
    mean, var, zero = (float(e.subs(subs)) for e in (Z.mean, Z.variance, Z.zero_probability))
    nb_var = mu + mu**2 / theta
    check_agrees_and_rejects(db.estimate_mean(x.tolist()), mean,
                             {"no (1 - pi)": mu, "pi and 1 - pi swapped": pi * mu})
    check_agrees_and_rejects(db.estimate_variance(x.tolist()), var,
                             {"NB variance times (1 - pi) only": (1 - pi) * nb_var,
                              "mu + mu^2 theta": (1 - pi) * (mu + mu**2 * theta) + pi * (1 - pi) * mu**2,
                              "pi and 1 - pi swapped": pi * nb_var + pi * (1 - pi) * mu**2})
    check_agrees_and_rejects(db.estimate_mean((x == 0).double().tolist()), zero,
                             {"inflation zeros not added": (theta / (theta + mu)) ** theta,
                              "pi and 1 - pi swapped": 1 - pi + pi * (theta / (theta + mu)) ** theta})
    # the technical zeros are a Bernoulli(pi) mask, and the true counts are untouched NB draws
    check_agrees_and_rejects(db.estimate_mean(draws.technical_zero.double().tolist()), pi, {"1 - pi": 1 - pi})
    assert torch.equal(x, torch.where(draws.technical_zero, 0.0, draws.true_counts))
    assert math.isclose(float(draws.true_counts.mean()), mu, rel_tol=0.05)
