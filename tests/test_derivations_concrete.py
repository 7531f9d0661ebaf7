"""Chapter 13, "Learning the dropout rate": what dropoutbook.derivations derives equals what the chapter states.

The library derives the distribution of the relaxed Bernoulli mask from the uniform noise (solving for
the noise, a limit, a derivative, an integral); the closed forms typed in here are the chapter's stated
formulas (the binary Concrete density of Maddison et al.) and plausible wrong ones.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from dropoutbook.derivations import concrete_mask_distribution, concrete_regularizer, drop_rate, keep_rate, temperature
from helpers import same

q, t, p = keep_rate, temperature, drop_rate
D = concrete_mask_distribution()
s = D.s
R = concrete_regularizer()


def test_the_noise_is_logistic_and_the_cdf_is_the_stated_one():
    l = sp.Symbol("l", real=True)
    assert same(D.noise_cdf.subs(D.noise_cdf.free_symbols.pop(), l), 1 / (1 + sp.exp(-l)))
    alpha = q / (1 - q)
    stated = 1 / (1 + alpha * ((1 - s) / s) ** t)  # P(z <= s) = sigma(t logit s - logit q)
    for values in ({q: sp.Rational(7, 10), t: sp.Rational(1, 10)}, {q: sp.Rational(1, 5), t: 2}):
        for point in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(4, 5)):
            sub = {**values, s: point}
            assert math.isclose(float(D.cdf.subs(sub)), float(stated.subs(sub)), rel_tol=1e-12)
            swapped = float((1 / (1 + (1 / alpha) * ((1 - s) / s) ** t)).subs(sub))  # q and 1 - q swapped
            assert not math.isclose(float(D.cdf.subs(sub)), swapped, rel_tol=1e-3)


def test_above_one_half_with_probability_q_at_every_temperature():
    assert same(D.prob_above_half, q)
    assert D.prob_above_half.free_symbols == {q}
    assert not same(D.prob_above_half, 1 - q)


def test_the_cold_limit_is_a_bernoulli_with_keep_probability_q():
    # P(z <= s) -> 1 - q for every 0 < s < 1: all mass at 0 (probability 1 - q) and at 1 (probability q)
    assert same(D.cdf_limit_cold, 1 - q)
    assert not same(D.cdf_limit_cold, q)
    assert s not in D.cdf_limit_cold.free_symbols
    # and hot: the mass gathers at 1/2
    for point, side in ((0.25, 0.0), (0.75, 1.0)):
        assert abs(D.cdf_at(point, 0.7, 1e4) - side) < 1e-100


def test_density_is_the_binary_concrete_density():
    alpha = q / (1 - q)
    maddison = t * alpha * s ** (-t - 1) * (1 - s) ** (-t - 1) / (alpha * s ** (-t) + (1 - s) ** (-t)) ** 2
    for values in ({q: sp.Rational(7, 10), t: sp.Rational(1, 10)}, {q: sp.Rational(1, 3), t: 3}):
        for point in (sp.Rational(1, 7), sp.Rational(1, 2), sp.Rational(9, 10)):
            sub = {**values, s: point}
            assert math.isclose(float(D.density.subs(sub)), float(maddison.subs(sub)), rel_tol=1e-12)
            swapped = float(maddison.subs(q, 1 - q).subs(sub))  # keep and drop swapped
            if point != sp.Rational(1, 2):  # at s = 1/2 the two coincide (f_q(s) = f_{1-q}(1-s))
                assert not math.isclose(float(D.density.subs(sub)), swapped, rel_tol=1e-3)
    # the density integrates to one
    f = sp.lambdify(s, D.density.subs({q: sp.Rational(7, 10), t: sp.Rational(1, 2)}), "mpmath")
    import mpmath
    assert abs(mpmath.quad(f, [0, 0.5, 1]) - 1) < 1e-6  # an integrable s**(-1/2) singularity at both ends


def test_mean_at_temperature_one_and_its_numerical_value():
    alpha = q / (1 - q)
    stated = alpha / (alpha - 1) * (1 - sp.log(alpha) / (alpha - 1))
    for value in (sp.Rational(7, 10), sp.Rational(1, 5), sp.Rational(9, 10)):
        assert math.isclose(float(D.mean_at_one.subs(q, value)), float(stated.subs(q, value)), rel_tol=1e-12)
        assert math.isclose(D.mean_at(float(value), 1.0), float(stated.subs(q, value)), rel_tol=1e-12)
        assert abs(float(stated.subs(q, value)) - float(value)) > 0.05  # the mean is not q


@pytest.mark.parametrize("keep", [0.1, 0.7, 0.9])
def test_mean_moves_from_q_to_one_half_as_the_temperature_grows(keep):
    means = [D.mean_at(keep, temp) for temp in (1e-3, 0.1, 0.5, 1.0, 5.0, 100.0)]
    assert abs(means[0] - keep) < 1e-5
    assert abs(means[-1] - 0.5) < 0.01
    distances = [abs(m - 0.5) for m in means]
    assert distances == sorted(distances, reverse=True)
    # symmetry: E[z](q) + E[z](1 - q) = 1
    assert math.isclose(D.mean_at(keep, 0.3) + D.mean_at(1 - keep, 0.3), 1.0, rel_tol=1e-12)


def test_pathwise_gradient_is_z_one_minus_z_over_t():
    z = sp.Symbol("z", positive=True)
    assert same(D.pathwise_gradient, z * (1 - z) / t)
    assert not same(D.pathwise_gradient, z * (1 - z))


def test_regularizer_terms():
    sym = R.symbols
    assert same(R.entropy, -p * sp.log(p) - (1 - p) * sp.log(1 - p))
    assert same(R.weight_term, sym["l"] ** 2 * sym["W2"] / (2 * (1 - p)))
    assert not same(R.weight_term, sym["l"] ** 2 * (1 - p) * sym["W2"] / 2)  # M taken for W
    stated = sym["lw"] * sym["W2"] / (1 - p) + sym["lp"] * sym["K"] * (p * sp.log(p) + (1 - p) * sp.log(1 - p))
    assert same(R.regularizer, stated)
    assert not same(R.regularizer, sym["lw"] * sym["W2"] / (1 - p) - sym["lp"] * sym["K"] * (
        p * sp.log(p) + (1 - p) * sp.log(1 - p)))  # the entropy with the wrong sign
    assert same(R.derivative, sym["lw"] * sym["W2"] / (1 - p) ** 2 + sym["lp"] * sym["K"] * (sp.log(p) - sp.log(1 - p)))
    assert R.entropy_minimizer == sp.Rational(1, 2)
    theta = sym["theta"]
    values = {sym["lw"]: 0.3, sym["W2"]: 2.0, sym["lp"]: 0.7, sym["K"]: 5}
    for th in (-2.0, 0.4, 3.0):
        sig = 1 / (1 + math.exp(-th))
        expected = float(R.derivative.subs({**values, p: sig})) * sig * (1 - sig)
        assert math.isclose(float(R.logit_derivative.subs({**values, theta: th})), expected, rel_tol=1e-12)
