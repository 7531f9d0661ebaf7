"""Chapter 11, "Dropout in recurrent networks": what dropoutbook.derivations derives equals what the chapter states.

The closed forms typed in here are the chapter's stated formulas and plausible wrong ones; the
library derives its expressions from the definitions (expectation over mask symbols, a product
over independent steps, a sum over the values of one locked mask). Each test also shows that a
plausible wrong formula is told apart, and the per-step results for any k agree with a direct
enumeration over all 2**k masks for small k.
"""

from __future__ import annotations

import pytest
import sympy as sp

from dropoutbook.derivations import (
    Bernoulli,
    drop_rate,
    dropconnect_moments,
    expectation,
    n_steps,
    signal_survival,
    zoneout_moments,
)
from helpers import same

p, k = drop_rate, n_steps


def test_signal_survival_closed_forms():
    s = signal_survival()
    assert same(s.per_step_survival, (1 - p) ** k)
    assert same(s.locked_survival, 1 - p)
    assert not same(s.per_step_survival, 1 - p)  # the locked answer is not the per-step one
    assert not same(s.per_step_survival, 1 - k * p)  # nor the first-order approximation
    assert same(s.per_step_gain_mean, 1)
    assert same(s.per_step_gain_variance, (1 - p) ** (-k) - 1)
    assert not same(s.per_step_gain_variance, k * p / (1 - p))  # variances do not add for a product
    assert same(s.locked_gain_mean, (1 - p) ** (1 - k))
    assert not same(s.locked_gain_mean, 1)  # a locked mask applied at every step is not unbiased
    assert same(s.locked_gain_variance, (1 - p) ** (1 - 2 * k) - (1 - p) ** (2 - 2 * k))
    assert [i.lhs_text for i in s.identities()][:2] == [
        "P(survives k steps), per-step masks", "P(survives k steps), one mask per sequence"]
    for identity in s.identities():
        assert "\\displaystyle" in identity._repr_latex_()


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_signal_survival_agrees_with_enumeration(steps):
    s = signal_survival()
    m = sp.symbols(f"m1:{steps + 1}")
    dists = {mi: Bernoulli(1 - p) for mi in m}
    product = sp.prod(m)
    gain = sp.prod([mi / (1 - p) for mi in m])
    assert same(expectation(product, dists, method="enumerate"), s.per_step_survival.subs(k, steps))
    assert same(expectation(gain, dists, method="enumerate"), s.per_step_gain_mean.subs(k, steps))
    second = expectation(gain**2, dists, method="enumerate")
    assert same(second - 1, s.per_step_gain_variance.subs(k, steps))
    one = sp.Symbol("m")
    assert same(expectation(one**steps, {one: Bernoulli(1 - p)}), s.locked_survival)
    assert same(expectation((one / (1 - p)) ** steps, {one: Bernoulli(1 - p)}), s.locked_gain_mean.subs(k, steps))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_dropconnect_moments_are_the_stated_formulas(n):
    d = dropconnect_moments(n)
    (w1, w2), x = d.weights, d.inputs
    mean = sum(a * b for a, b in zip(w1, x))
    var = p / (1 - p) * sum(a**2 * b**2 for a, b in zip(w1, x))
    cov = p / (1 - p) * sum(a * c * b**2 for a, c, b in zip(w1, w2, x))
    assert same(d.input_dropout_mean, mean) and same(d.dropconnect_mean, mean)
    assert same(d.input_dropout_variance, var) and same(d.dropconnect_variance, var)
    assert same(d.input_dropout_covariance, cov)
    assert same(d.dropconnect_covariance, 0)
    # plausible wrong formulas are told apart
    assert not same(d.input_dropout_covariance, 0)
    assert not same(d.dropconnect_variance, p * (1 - p) * sum(a**2 * b**2 for a, b in zip(w1, x)))  # unscaled
    if n > 1:  # the variance of a sum of independently masked terms is not the square of the sum
        assert not same(d.input_dropout_variance, p / (1 - p) * mean**2)


def test_dropconnect_moments_errors_and_display():
    assert [i.lhs_text for i in dropconnect_moments(2).identities()][-1] == "Cov[y1, y2], DropConnect"
    for bad, error in ((0, ValueError), (7, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="n must be an int from 1 to 6"):
            dropconnect_moments(bad)


def test_zoneout_moments():
    z = zoneout_moments()
    hp, hn = z.h_prev, z.h_new
    assert same(z.mean, p * hp + (1 - p) * hn)
    assert same(z.variance, p * (1 - p) * (hp - hn) ** 2)
    assert not same(z.mean, (1 - p) * hp + p * hn)  # p is the probability of KEEPING the old value
    assert not same(z.mean, hn)  # the test-time rule is not the plain cell
    assert same(z.definition.subs(z.mask, 1), hp) and same(z.definition.subs(z.mask, 0), hn)
    assert repr(z.identities()[0]) == "E[h_t] = h_new*(1 - p) + h_prev*p"
