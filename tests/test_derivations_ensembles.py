"""Chapter 4, symbolic layer: what dropoutbook.derivations.ensembles derives equals what the book states.

The closed forms typed in this file are the chapter's stated formulas (and plausible wrong ones);
the library derives them from the definitions (sums over masks, expectations, sums over pairs).
Each test also shows that a plausible wrong formula is told apart by the same comparison.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from dropoutbook import derivations as d
from dropoutbook.derivations import ensembles as de
from helpers import same

p, p_in = d.drop_rate, de.input_drop_rate
T = sp.Symbol("T", integer=True, positive=True)


def same_polynomial(a, b) -> bool:
    """``helpers.same`` for polynomials: expanding the difference decides equality exactly, and
    is much faster than simplify on the 8-member expressions."""
    return sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


# --------------------------------------------------------------------------------------------
# the average over all subnetworks of a linear model


@pytest.mark.parametrize("n", range(1, 7))
def test_linear_average_is_the_weight_scaled_output(n):
    res = d.linear_subnetwork_average(n)
    wx = sum(wi * xi for wi, xi in zip(res.w, res.x))
    assert same_polynomial(res.average, (1 - p) * wx)  # stated: the weight-scaled network
    assert same_polynomial(res.average, res.weight_scaled)
    assert same_polynomial(res.uniform_average, wx / 2)  # stated: 2^-N sum = (1/2) w'x
    assert same_polynomial(res.average.subs(p, sp.Rational(1, 2)), res.uniform_average)
    assert same_polynomial(res.inverted_average, wx)  # inverted dropout: the plain network
    # plausible wrong statements are told apart
    assert not same_polynomial(res.average, wx)  # "the average is the unscaled network"
    assert not same_polynomial(res.average, p * wx)  # drop and keep swapped
    assert not same_polynomial(res.uniform_average, res.average)  # uniform = weighted only at p = 1/2


def test_linear_average_rejects_bad_n():
    for bad in (0, 11, 2.0, True):
        with pytest.raises(TypeError if isinstance(bad, (bool, float)) else ValueError,
                           match=r"n must be an int in \[1, 10\]"):
            d.linear_subnetwork_average(bad)


def test_linear_average_identities_display():
    shown = [repr(i) for i in d.linear_subnetwork_average(2).identities()]
    assert shown[0] == "sum_m P(m) y_m = (1 - p)*(w1*x1 + w2*x2)"
    assert "$" in d.linear_subnetwork_average(2).identities()[0]._repr_latex_()


# --------------------------------------------------------------------------------------------
# ambiguity decomposition


@pytest.mark.parametrize("t", range(2, 9))
def test_ambiguity_constants_for_each_definition_of_d(t):
    res = d.ambiguity_terms(t)
    stated = (t - 1) / sp.Integer(2 * t)
    assert res.constant["mean over pairs i != j"] == stated
    assert res.constant["mean over pairs i < j"] == stated  # ordered or unordered: the same mean
    assert res.constant["mean over all pairs"] == sp.Rational(1, 2)  # i = j included
    assert res.constant["sum over pairs i < j"] == sp.Rational(1, t**2)
    # the gain does not depend on the target, and equals the ambiguity (1/T) sum (f_i - fbar)^2
    assert res.target not in res.gain.free_symbols
    assert same_polynomial(res.gain, res.ambiguity)
    assert same_polynomial(res.gain, res.individual_error - res.ensemble_error)
    # the stated identity, and wrong constants told apart
    d_pairs = res.diversity["mean over pairs i != j"]
    assert same_polynomial(res.gain, stated * d_pairs)
    for wrong in (sp.Rational(1, 2), sp.Rational(t - 1, t), sp.Rational(t - 1, 2 * t) ** 2):
        assert not same_polynomial(res.gain, wrong * d_pairs)


def test_ambiguity_constant_for_symbolic_t():
    c = d.ambiguity_constant()
    assert same(c, (T - 1) / (2 * T))
    assert not same(c, sp.Rational(1, 2)) and not same(c, (T - 1) / T)
    # it agrees with the concrete derivations
    for t in range(2, 9):
        assert c.subs(T, t) == d.ambiguity_terms(t).constant["mean over pairs i != j"]


def test_power_sum_reduction_matches_explicit_sums():
    # the reduction used for symbolic T, checked against explicit sums at T = 4
    i, j = sp.symbols("i j", integer=True, positive=True)
    f = sp.IndexedBase("f", real=True)
    s1, s2 = sp.symbols("S1 S2", real=True)
    expr = sp.Sum((f[i] - f[j]) ** 2 + 3 * f[i], (i, 1, T), (j, 1, T))
    reduced = de._power_sums(expr, f, T, {1: s1, 2: s2})
    assert same(reduced, 2 * T * s2 - 2 * s1**2 + 3 * T * s1)
    xs = sp.symbols("x1:5")
    explicit = sum((a - b) ** 2 + 3 * a for a in xs for b in xs)
    assert same(explicit, reduced.subs({T: 4, s1: sum(xs), s2: sum(x**2 for x in xs)}))
    with pytest.raises(ValueError, match="cannot reduce"):
        de._power_sums(sp.Sum(sp.sin(i) * f[i], (i, 1, T)), f, T, {1: s1, 2: s2})


def test_ambiguity_terms_rejects_bad_t():
    for bad in (1, 13, 3.0, True):
        with pytest.raises(TypeError if isinstance(bad, (bool, float)) else ValueError,
                           match=r"T must be an int in \[2, 12\]"):
            d.ambiguity_terms(bad)


def test_ambiguity_terms_cannot_be_mutated():
    with pytest.raises(TypeError):
        d.ambiguity_terms(3).constant["mean over all pairs"] = 0


# --------------------------------------------------------------------------------------------
# paths


@pytest.mark.parametrize("depth", range(1, 7))
def test_path_survival_is_keep_probability_to_the_depth(depth):
    res = d.path_survival((2,) + (1,) * depth + (3,))
    assert same_polynomial(res.survival, (1 - p) ** depth)  # stated: hidden units only
    assert not same_polynomial(res.survival, (1 - p) ** (depth + 1))  # input counted as dropped
    assert not same_polynomial(res.survival, (1 - p) ** (depth + 2))  # input and output counted
    assert not same_polynomial(res.survival, p**depth)


@pytest.mark.parametrize("widths", [(2, 2, 2, 1), (3, 2, 2, 2, 2), (1, 3, 1), (2, 1, 1, 1, 1, 1, 2)])
def test_expected_active_paths_and_any_path(widths):
    res = d.path_survival(widths)
    depth = len(widths) - 2
    assert res.total_paths == math.prod(widths)
    assert same_polynomial(res.expected_active_paths, math.prod(widths) * (1 - p) ** depth)
    assert same_polynomial(res.any_path, sp.Mul(*[1 - p**n for n in widths[1:-1]]))
    assert not same_polynomial(res.any_path, res.survival) or all(n == 1 for n in widths[1:-1])


def test_path_survival_with_input_dropout():
    res = d.path_survival((2, 2, 2, 1), input_dropout=True)
    assert same_polynomial(res.survival, (1 - p_in) * (1 - p) ** 2)
    assert same_polynomial(res.expected_active_paths, 8 * (1 - p_in) * (1 - p) ** 2)
    assert same_polynomial(res.any_path, (1 - p_in**2) * (1 - p**2) ** 2)
    assert not same_polynomial(res.survival, (1 - p) ** 3)


def test_path_identities_display():
    shown = [repr(i) for i in d.path_survival((2, 2, 2, 1)).identities()]
    assert shown[0] == "P(path active) = (1 - p)**2"
    assert shown[1] == "E[#active paths] = 8*(1 - p)**2"


@pytest.mark.parametrize("widths, kwargs, exc, match", [
    ((3,), {}, ValueError, "at least two positive ints"),
    ("12", {}, ValueError, "at least two positive ints"),
    ((2, 0, 1), {}, ValueError, "every width must be an int"),
    ((2, 7, 7, 1), {}, ValueError, "14 droppable units"),
    ((2, 2, 1), dict(input_dropout=1), TypeError, "input_dropout must be a bool"),
])
def test_path_survival_rejects_bad_input(widths, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        d.path_survival(widths, **kwargs)


# --- the softmax output layer: normalized weighted geometric mean (Hinton et al. 2012) ---

@pytest.mark.parametrize("n, k", [(1, 2), (2, 3)])
def test_softmax_geometric_mean_is_the_weight_scaled_softmax(n, k):
    r = d.softmax_geometric_mean(n, k)
    assert r.differences == (0,) * k
    # a plausible wrong statement: the geometric mean equals the softmax of the *unscaled*
    # average logits sum_m P(m) z(m) / (1 - p) (double scaling); its differences do not vanish
    wrong = [sp.simplify((r.log_geometric_mean[c] - r.log_geometric_mean[0])
                         - (r.full_logits[c] - r.full_logits[0]) / (1 - p)) for c in range(k)]
    assert any(w != 0 for w in wrong)


def test_softmax_geometric_mean_numerically_and_against_the_arithmetic_mean():
    import torch
    import dropoutbook as db

    r = d.softmax_geometric_mean(2, 3)
    g = torch.Generator().manual_seed(5)
    h = torch.rand(2, generator=g, dtype=torch.float64) + 0.5
    W = torch.randn(3, 2, generator=g, dtype=torch.float64) * 2
    b = torch.randn(3, generator=g, dtype=torch.float64)
    rate = 0.3
    values = {p: sp.Rational(3, 10), **dict(zip(r.h, h.tolist())), **dict(zip(r.b, b.tolist())),
              **{r.W[i, j]: W[i, j].item() for i in range(3) for j in range(2)}}
    G = torch.tensor([float(gk.subs(values)) for gk in r.log_geometric_mean], dtype=torch.float64)
    full = torch.softmax(W @ h + b, dim=0)
    assert torch.allclose(torch.softmax(G, dim=0), full, atol=1e-12, rtol=0)
    # the same by the library's exact enumeration, and the arithmetic mean differs
    logits = lambda m: (m * h / (1 - rate)) @ W.T + b  # noqa: E731
    log_mean = db.subnetwork_average(lambda m: torch.log_softmax(logits(m), -1), 2, rate)
    arithmetic = db.subnetwork_average(lambda m: torch.softmax(logits(m), -1), 2, rate)
    assert torch.allclose(torch.softmax(log_mean, 0), full, atol=1e-12, rtol=0)
    assert (arithmetic - full).abs().max().item() > 1e-3


def test_softmax_geometric_mean_rejects_bad_sizes():
    for n, k in ((0, 2), (5, 2), (2, 1), (2, 5)):
        with pytest.raises(ValueError):
            d.softmax_geometric_mean(n, k)
    with pytest.raises(TypeError):
        d.softmax_geometric_mean(2.5, 3)
