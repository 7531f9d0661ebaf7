"""Chapter 5: the closed forms of MC dropout, derived by sympy, compared with the book's statements
(typed in here only) and checked by Monte Carlo through the library's mc_predict.

Stated in the book (p = drop probability, q = 1 - p):
    E[mu_T] = w·x,    Var[mu_T] = (1/T) Σ_i w_i² x_i² (1-q)/q,
    E[plug-in variance] = (T-1)/T · Σ_i w_i² x_i² (1-q)/q,   E[sample variance] = Σ_i w_i² x_i² (1-q)/q,
    squared unit: E[mu_T] - (w·x)² = Σ_i w_i² x_i² p/(1-p).
"""

from __future__ import annotations

import functools
import itertools

import pytest
import sympy as sp
import torch
from torch import nn

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import Z, check_agrees_and_rejects, same

p = derivations.drop_rate
q = 1 - p


@functools.lru_cache(maxsize=None)
def linear(d: int, T: int):
    """The derivation, computed once per (d, T) for the whole module (sympy is the slow part)."""
    return derivations.mc_linear_estimator(d, T)


def stated(est) -> dict:
    s = sum(wi**2 * xi**2 for wi, xi in zip(est.w, est.x))
    T = est.T
    return {"mean": sum(wi * xi for wi, xi in zip(est.w, est.x)),
            "variance": s * (1 - q) / q / T,
            "pass_variance": s * (1 - q) / q,
            "plugin": sp.Rational(T - 1, T) * s * (1 - q) / q,
            "sample": s * (1 - q) / q}


@pytest.mark.parametrize("d, T", [(1, 1), (1, 4), (2, 3), (3, 2)])
def test_linear_mc_estimator_matches_the_stated_formulas(d, T):
    est = linear(d, T)
    want = stated(est)
    assert same(est.mean, want["mean"])
    assert same(est.mean, est.deterministic)  # unbiased for the deterministic output
    assert same(est.variance, want["variance"])
    assert same(est.pass_variance, want["pass_variance"])
    if T > 1:
        assert same(est.expected_plugin_variance, want["plugin"])
        assert same(est.expected_sample_variance, want["sample"])
    else:
        assert est.expected_plugin_variance is None


def test_plausible_wrong_formulas_are_told_apart():
    est = linear(2, 3)
    s = sum(wi**2 * xi**2 for wi, xi in zip(est.w, est.x))
    wx = sum(wi * xi for wi, xi in zip(est.w, est.x))
    for wrong in [s * p / (1 - p),  # forgot 1/T
                  s * (1 - p) / p / 3,  # drop and keep swapped
                  wx**2 * p / (1 - p) / 3,  # (Σ w x)² instead of Σ w² x²
                  s * p * (1 - p) / 3]:  # no inverted scaling
        assert not same(est.variance, wrong)
    assert not same(est.expected_plugin_variance, s * p / (1 - p))  # the plug-in variance is biased


def test_both_expectation_routes_agree_for_the_mc_mean():
    est = linear(1, 2)
    dists = {m: derivations.Bernoulli(q) for row in est.masks for m in row}
    second = derivations.expectation(est.estimator**2, dists, method="enumerate")
    assert same(second - derivations.expectation(est.estimator, dists, method="enumerate") ** 2, est.variance)


def test_identities_display_the_derived_values():
    est = linear(2, 3)
    shown = est.identities()
    assert same(shown[0].rhs, est.mean)
    assert same(shown[1].factor * shown[1].rhs, est.variance)
    assert same(shown[2].factor * shown[2].rhs, est.expected_plugin_variance)
    assert same(shown[3].rhs, est.expected_sample_variance)
    assert r"\frac{1}{3}" in shown[1]._repr_latex_()


@pytest.mark.parametrize("d", [1, 3])
def test_quadratic_unit_gap(d):
    unit = derivations.mc_quadratic_unit(d)
    s = sum(wi**2 * xi**2 for wi, xi in zip(unit.w, unit.x))
    assert same(unit.gap, s * p / (1 - p))
    assert same(unit.mean - unit.deterministic, unit.gap)
    assert not same(unit.gap, 0)
    assert not same(unit.gap, s * p * (1 - p))  # Jensen gap of unscaled dropout, the other convention


@pytest.mark.parametrize("bad", [0, 5, 2.0, True])
def test_derivations_reject_bad_sizes(bad):
    error = TypeError if isinstance(bad, (bool, float)) else ValueError
    with pytest.raises(error, match=r"^d must be an int in \[1, 4\]"):
        derivations.mc_linear_estimator(bad, 2)
    with pytest.raises(error, match=r"^T must be an int in \[1, 4\]"):
        derivations.mc_linear_estimator(2, bad)


# --------------------------------------------------------------------------------------------
# Monte Carlo through the library: a linear unit with inverted dropout on its inputs


W = [0.8, -1.5, 0.4]
X = [1.0, 0.5, -2.0]


def linear_model(p_drop: float) -> nn.Module:
    model = nn.Sequential(db.InvertedDropout(p_drop), nn.Linear(3, 1, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([W], dtype=torch.float64))
    return model


@pytest.mark.parametrize("p_drop, T", [(0.2, 5), (0.4, 4), (0.7, 10)])
def test_mc_mean_and_variances_agree_with_monte_carlo(p_drop, T):
    """B = 40,000 independent MC estimates (one per row of a batch of identical inputs)."""
    est = linear(3, 2)  # mean and variance of one pass do not depend on T; the test divides by T
    values = {p: p_drop, **dict(zip(est.w, W)), **dict(zip(est.x, X))}
    pass_var = float(est.pass_variance.subs(values))
    mean = float(est.mean.subs(values))
    B = 40_000
    x = torch.tensor([X], dtype=torch.float64).expand(B, 3)
    pred = db.mc_predict(linear_model(p_drop), x, T=T, generator=torch.Generator().manual_seed(int(p_drop * 100) + T))
    mu_hat, s2 = pred.mean[:, 0], pred.variance[:, 0]
    check_agrees_and_rejects(estimate_mean(mu_hat), mean, {"(1-p) w·x, no inverted scaling": (1 - p_drop) * mean})
    check_agrees_and_rejects(estimate_variance(mu_hat), pass_var / T, {
        "variance of one pass (1/T forgotten)": pass_var,
        "(1-p)/p: drop and keep swapped": pass_var / T * ((1 - p_drop) / p_drop) ** 2,
    })
    check_agrees_and_rejects(estimate_mean(s2), pass_var, {
        "plug-in variance (T-1)/T": pass_var * (T - 1) / T,
    })


def exact_subnetwork_average(model: nn.Module, x: torch.Tensor, p_drop: float) -> float:
    """Average of the network over all 2^d input masks, each weighted by its probability."""
    d = x.numel()
    masks = torch.tensor(list(itertools.product((0.0, 1.0), repeat=d)), dtype=torch.float64)
    probs = ((1 - p_drop) ** masks.sum(1)) * (p_drop ** (d - masks.sum(1)))
    with torch.no_grad():
        outputs = model(masks * x / (1 - p_drop))[:, 0]
    return float((probs * outputs).sum())


def test_nonlinear_mc_mean_estimates_the_subnetwork_average_not_the_deterministic_output():
    torch.manual_seed(0)
    d, p_drop = 6, 0.5
    body = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    model = nn.Sequential(db.InvertedDropout(p_drop), body)
    x = torch.linspace(-1.5, 2.0, d, dtype=torch.float64)
    average = exact_subnetwork_average(body, x, p_drop)
    with torch.no_grad():
        deterministic = float(body(x[None])[0, 0])
    pred = db.mc_predict(model, x[None], T=200_000, chunk_size=50_000,
                         generator=torch.Generator().manual_seed(3), return_samples=True)
    est = estimate_mean(pred.samples[:, 0, 0])
    check_agrees_and_rejects(est, average, {"deterministic output f(x)": deterministic})
    assert abs(average - deterministic) > 10 * Z * est.stderr / 5  # a gap of many standard errors
