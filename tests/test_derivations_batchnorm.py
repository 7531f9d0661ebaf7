"""Symbolic layer of chapter 6: the derived variance shift equals the formulas the chapter states.

The closed forms typed here are the chapter's stated formulas and some plausible wrong ones;
``dropoutbook.derivations`` must derive the stated ones from the definitions and tell the wrong
ones apart.
"""

from __future__ import annotations

import sympy as sp
import pytest

from dropoutbook import derivations as d
from dropoutbook.derivations import linear_variance_shift, variance_shift
from helpers import same

q = d.keep_rate
mu, s2 = sp.Symbol("mu", real=True), sp.Symbol("sigma^2", positive=True)

# the chapter's stated formulas (one unit, dropout directly before BatchNorm)
STATED = {
    "train_mean": mu,
    "train_variance": s2 / q + mu**2 * (1 - q) / q,
    "test_mean": mu,
    "test_variance": s2,
    "ratio": 1 / q + mu**2 * (1 - q) / (q * s2),
    "test_output_variance": q * s2 / (s2 + mu**2 * (1 - q)),
    "train_output_variance": sp.Integer(1),
    "scale_error": sp.sqrt((s2 + mu**2 * (1 - q)) / (q * s2)),
}

# plausible wrong closed forms for the training-time variance
WRONG_TRAIN_VARIANCE = {
    "mean term forgotten": s2 / q,
    "E[x~^2] instead of the variance": (s2 + mu**2) / q,
    "missing 1/q on the mean term": s2 / q + mu**2 * (1 - q),
    "drop and keep swapped": s2 / (1 - q) + mu**2 * q / (1 - q),
    "standard dropout (no 1/q)": q * s2 + mu**2 * q * (1 - q),
    "1/q^2 scaling": s2 / q**2 + mu**2 * (1 - q) / q**2,
}


@pytest.fixture(scope="module")
def derived():
    return variance_shift()


@pytest.mark.parametrize("name", list(STATED))
def test_variance_shift_equals_stated_formula(derived, name):
    assert same(getattr(derived, name), STATED[name]), f"{name}: derived {getattr(derived, name)}"


@pytest.mark.parametrize("name", list(WRONG_TRAIN_VARIANCE))
def test_wrong_train_variance_is_told_apart(derived, name):
    assert not same(derived.train_variance, WRONG_TRAIN_VARIANCE[name])


def test_scale_error_is_sqrt_of_ratio_and_not_the_ratio(derived):
    assert same(derived.scale_error**2, derived.ratio)
    assert not same(derived.scale_error, derived.ratio)
    assert same(derived.test_output_variance * derived.ratio, 1)


def test_zero_mean_unit_has_ratio_one_over_q(derived):
    assert same(derived.ratio.subs(mu, 0), 1 / q)
    assert same(derived.ratio.subs(q, 1), 1)  # no dropout, no shift


def test_definition_is_the_inverted_dropout_of_mu_plus_noise(derived):
    m, e = derived.mask, derived.noise
    assert same(derived.definition, m * (mu + e) / q)


def test_identities_display_the_derived_expressions(derived):
    shown = derived.identities()
    assert len(shown) == 6
    assert same(shown[1].rhs, derived.train_variance)
    assert same(shown[3].rhs, derived.ratio)
    assert same(shown[4].rhs, derived.test_output_variance)
    assert same(shown[5].rhs, derived.scale_error)
    assert "1 - q" in repr(shown[1])


@pytest.fixture(scope="module")
def linear2():
    return linear_variance_shift(2)


def test_linear_shift_stated_formulas(linear2):
    w, m_, c, s = linear2.w, linear2.mu, linear2.loadings, linear2.sigma2
    test = (w[0] * c[0] + w[1] * c[1]) ** 2 + w[0] ** 2 * s[0] + w[1] ** 2 * s[1]
    second = [m_[i] ** 2 + c[i] ** 2 + s[i] for i in range(2)]  # E[x_i^2]
    excess = (1 - q) / q * (w[0] ** 2 * second[0] + w[1] ** 2 * second[1])
    assert same(linear2.test_variance, test)
    assert same(linear2.excess, excess)
    assert same(linear2.ratio, 1 + excess / test)
    # plausible wrong: the one-unit ratio applied to z (1/q + mean^2 term) ignores the weights
    wrong = 1 / q + (1 - q) / q * (w[0] * m_[0] + w[1] * m_[1]) ** 2 / test
    assert not same(linear2.ratio, wrong)
    # and the excess does not involve the correlation c1*c2*w1*w2
    assert not same(linear2.excess, (1 - q) / q * (test + (w[0] * m_[0]) ** 2 + (w[1] * m_[1]) ** 2))


def test_linear_shift_with_one_input_is_the_unit_formula():
    lin = linear_variance_shift(1)
    w, m_, c, s = lin.w[0], lin.mu[0], lin.loadings[0], lin.sigma2[0]
    unit = variance_shift()
    stated = unit.train_variance.subs({mu: m_, s2: c**2 + s}) * w**2
    assert same(lin.train_variance, stated)


def test_linear_shift_rejects_bad_d():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TypeError if isinstance(bad, (bool, float)) else ValueError,
                           match="d must be a positive int"):
            linear_variance_shift(bad)
