"""Symbolic layer of chapter 3, "The Jensen bias": the derived objects equal the formulas the chapter
states (typed in here only), and plausible wrong formulas are told apart."""

from __future__ import annotations

import sympy as sp
import pytest

from dropoutbook import derivations
from dropoutbook.derivations import (
    delta_method_gap,
    drop_rate,
    p_keep,
    quadratic_jensen_gap,
    relu_single_unit_gap,
)
from helpers import same

p, k = drop_rate, p_keep
x = sp.Symbol("x", real=True)


@pytest.mark.parametrize("scaling, convention, stated, wrong", [
    ("standard", "drop", x**2 * p * (1 - p), x**2 * p / (1 - p)),
    ("inverted", "drop", x**2 * p / (1 - p), x**2 * (1 - p) / p),  # the seed's formula read with p = drop
    ("standard", "keep", x**2 * k * (1 - k), x**2 * (1 - k) / k),
    ("inverted", "keep", x**2 * (1 - k) / k, x**2 * k / (1 - k)),
])
def test_quadratic_gap_matches_the_stated_formula(scaling, convention, stated, wrong):
    derived = quadratic_jensen_gap(scaling, convention)
    assert same(derived.gap, stated)
    assert not same(derived.gap, wrong)
    assert same(derived.gap, derived.mean_of_square - derived.square_of_mean)


@pytest.mark.parametrize("scaling, mean_of_square, square_of_mean", [
    ("inverted", x**2 / (1 - p), x**2),
    ("standard", x**2 * (1 - p), x**2 * (1 - p) ** 2),
])
def test_both_terms_of_the_gap_match_the_chapter(scaling, mean_of_square, square_of_mean):
    # the gap alone is a Bernoulli variance, symmetric in keep <-> drop; the two terms are not,
    # so they catch a mask drawn with the wrong probability
    derived = quadratic_jensen_gap(scaling)
    assert same(derived.mean_of_square, mean_of_square)
    assert same(derived.square_of_mean, square_of_mean)
    swapped = mean_of_square.subs(p, 1 - p) if scaling == "standard" else p * x**2 / (1 - p) ** 2  # m ~ Bernoulli(p)
    assert not same(derived.mean_of_square, swapped)


def test_conventions_map_by_keep_equals_one_minus_drop():
    for scaling in ("standard", "inverted"):
        keep_form = quadratic_jensen_gap(scaling, "keep").gap
        drop_form = quadratic_jensen_gap(scaling, "drop").gap
        assert same(keep_form.subs(k, 1 - p), drop_form)
    # the unscaled gap is symmetric in p <-> 1 - p, so it reads the same in both conventions;
    # the inverted one is not, which is where mixing conventions goes wrong
    standard = quadratic_jensen_gap("standard").gap
    inverted = quadratic_jensen_gap("inverted").gap
    assert same(standard.subs(p, 1 - p), standard)
    assert not same(inverted.subs(p, 1 - p), inverted)


def test_quadratic_gap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scaling"):
        quadratic_jensen_gap("both")
    with pytest.raises(ValueError, match="convention"):
        quadratic_jensen_gap("inverted", "survive")


@pytest.mark.parametrize("scaling", ["inverted", "standard"])
def test_delta_method_variance_and_taylor_term(scaling):
    dec = delta_method_gap(3, scaling)
    w, xs = dec.w, dec.x
    s2 = sum((wi * xi) ** 2 for wi, xi in zip(w, xs))
    stated_var = p / (1 - p) * s2 if scaling == "inverted" else p * (1 - p) * s2
    stated_mean = sum(wi * xi for wi, xi in zip(w, xs)) * (1 if scaling == "inverted" else 1 - p)
    assert same(dec.variance, stated_var)
    assert not same(dec.variance, p * (1 - p) * s2 if scaling == "inverted" else p / (1 - p) * s2)
    assert not same(dec.variance, stated_var.subs(s2, sum(wi * xi for wi, xi in zip(w, xs)) ** 2))
    assert same(dec.mean, stated_mean)
    f2 = sp.Derivative(dec.function(dec.mu), (dec.mu, 2))
    assert same(dec.taylor, f2 * dec.var / 2)
    assert not same(dec.taylor, f2 * dec.var)
    # for f(z) = z^2 the second-order term is the exact gap (enumeration over all masks)
    assert same(dec.quadratic_exact_gap, dec.variance)
    assert same(dec.approximation(lambda u: u**2).subs(dec.var, dec.variance), dec.quadratic_exact_gap)


def test_delta_method_for_tanh_sigmoid_relu():
    dec = delta_method_gap(1)
    mu, v = dec.mu, dec.var
    assert same(dec.approximation(sp.tanh), -sp.tanh(mu) * (1 - sp.tanh(mu) ** 2) * v)
    sig = 1 / (1 + sp.exp(-mu))
    assert same(dec.approximation(lambda u: 1 / (1 + sp.exp(-u))), sig * (1 - sig) * (1 - 2 * sig) * v / 2)
    relu = dec.approximation(lambda u: sp.Max(0, u))
    assert relu.has(sp.DiracDelta) and relu.subs(mu, 1) == 0 and relu.subs(mu, -1) == 0


def test_delta_method_rejects_bad_arguments():
    for d in (0, 7, 2.0, True):
        with pytest.raises(TypeError if isinstance(d, (bool, float)) else ValueError, match=r"d must be an int in \[1, 6\]"):
            delta_method_gap(d)
    with pytest.raises(ValueError, match="scaling"):
        delta_method_gap(2, "keep")


def test_relu_single_unit_has_no_gap_and_no_curvature():
    relu = relu_single_unit_gap()
    assert relu.positive_input == 0 and relu.negative_input == 0
    z = sp.Symbol("z", real=True)
    assert relu.second_derivative == sp.DiracDelta(z)


def test_identities_render():
    for obj in (quadratic_jensen_gap(), delta_method_gap(2)):
        for identity in obj.identities():
            assert identity._repr_latex_().startswith("$")
    assert "p" in repr(quadratic_jensen_gap().identities()[-1])


def test_names_are_exported():
    for name in ("quadratic_jensen_gap", "delta_method_gap", "relu_single_unit_gap", "p_keep"):
        assert name in derivations.__all__


# --- chapter 3, second edition: the sign of the gap in depth, and Gaussian moment matching ---

def _normal_cdf(u):
    return (1 + sp.erf(u / sp.sqrt(2))) / 2


def _normal_pdf(u):
    return sp.exp(-u**2 / 2) / sp.sqrt(2 * sp.pi)


def test_gaussian_relu_mean_is_the_stated_closed_form():
    r = derivations.gaussian_relu_mean()
    mu, s = r.mu, r.sigma
    assert r.normalisation == 1
    assert same(r.mean, mu * _normal_cdf(mu / s) + s * _normal_pdf(mu / s))
    # plausible wrong forms: no density term, sigma^2 in place of sigma, the ReLU of the mean
    assert not same(r.mean, mu * _normal_cdf(mu / s))
    assert not same(r.mean, mu * _normal_cdf(mu / s) + s**2 * _normal_pdf(mu / s))
    assert not same(r.mean.subs(mu, 1), 1)
    # the gap at mu = 0 is sigma phi(0)
    assert same(r.gap().subs(mu, 0), s / sp.sqrt(2 * sp.pi))


@pytest.mark.parametrize("mu_value, sigma_value", [(0.3, 0.7), (-0.8, 0.5), (1.5, 2.0)])
def test_gaussian_relu_mean_agrees_with_monte_carlo(mu_value, sigma_value):
    import torch
    from dropoutbook.montecarlo import estimate_mean
    from helpers import check_agrees_and_rejects

    r = derivations.gaussian_relu_mean()
    values = {r.mu: mu_value, r.sigma: sigma_value}
    g = torch.Generator().manual_seed(11)
    z = mu_value + sigma_value * torch.randn(400_000, generator=g, dtype=torch.float64)
    est = estimate_mean(torch.relu(z))
    phi = float(_normal_pdf(sp.Float(mu_value / sigma_value)))
    cdf = float(_normal_cdf(sp.Float(mu_value / sigma_value)))
    check_agrees_and_rejects(est, float(r.mean.subs(values)), {
        "mu Phi (no density term)": mu_value * cdf,
        "sigma^2 in place of sigma": mu_value * cdf + sigma_value**2 * phi,
        "relu of the mean": max(mu_value, 0.0),
    })


@pytest.mark.parametrize("p", [sp.Rational(1, 10), sp.Rational(1, 4), sp.Rational(1, 2)])
def test_relu_depth_gap_changes_sign_at_the_second_relu(p):
    gaps = derivations.relu_depth_gap(p)
    assert gaps.first == p / 2  # first ReLU after dropout: non-negative (Jensen)
    assert gaps.second == -p / 2  # second ReLU after dropout: negative
    assert gaps.second != p / 2 and gaps.second < 0


def test_relu_depth_gap_matches_the_library_enumeration():
    import torch
    from torch import nn
    import dropoutbook as db

    for p in (0.1, 0.25, 0.5):
        layers = []
        for weight, bias in ((1.0, 0.0), (1.0, -0.5), (-1.0, 5.0)):
            linear = nn.Linear(1, 1).double()
            with torch.no_grad():
                linear.weight.fill_(weight)
                linear.bias.fill_(bias)
            layers += [linear, nn.ReLU(), nn.Dropout(p)]
        chain = nn.Sequential(*layers[:-1])  # no dropout after the last ReLU
        avg = db.layerwise_jensen_gap(chain, torch.ones(1, 1, dtype=torch.float64), method="exact")
        gaps = dict(zip(avg.names, avg.gaps()))
        derived = derivations.relu_depth_gap(sp.nsimplify(p))
        assert abs(gaps["4: ReLU"].item() - float(derived.first)) < 1e-12
        assert abs(gaps["7: ReLU"].item() - float(derived.second)) < 1e-12
        assert gaps["7: ReLU"].item() < -0.01


def test_relu_depth_gap_rejects_a_bad_rate():
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="p"):
            derivations.relu_depth_gap(bad)
    with pytest.raises(TypeError, match="p"):
        derivations.relu_depth_gap("half")
