"""Chapter 14, "Dropout in modern training": what dropoutbook.derivations derives equals what the chapter states.

The formulas typed in here are the chapter's statements and plausible wrong ones; the library derives
its expressions from the definitions (KL from sum P log(P/Q), moments from the Bernoulli masks).
"""

from __future__ import annotations

import pytest
import sympy as sp

from dropoutbook.derivations import drop_rate, layerdrop_depth, lora_dropout_moments, r_drop_kl
from helpers import same

p = drop_rate


@pytest.mark.parametrize("k", [2, 3])
def test_symmetric_kl_is_half_the_probability_gap_times_the_logit_gap(k):
    d = r_drop_kl(k)
    stated = sum((Pi - Qi) * (ai - bi) for Pi, Qi, ai, bi in zip(d.P, d.Q, d.a, d.b)) / 2
    assert same(sp.expand_log(d.definition, force=True), stated)
    assert same(d.logit_form, stated)
    # a plausible wrong form: one direction of KL only (not symmetric)
    one_way = sum(Pi * sp.log(Pi / Qi) for Pi, Qi in zip(d.P, d.Q))
    point = {**{ai: v for ai, v in zip(d.a, (1, -2, 0.5)[:k])}, **{bi: v for bi, v in zip(d.b, (0, 1, -1)[:k])}}
    assert abs(float(one_way.subs(point)) - float(d.definition.subs(point))) > 1e-3
    assert abs(float(d.definition.subs(point)) - float(stated.subs(point))) < 1e-12


@pytest.mark.parametrize("k", [2, 3])
def test_kl_term_vanishes_exactly_at_agreement_and_is_positive_otherwise(k):
    d = r_drop_kl(k)
    assert d.at_shift == 0
    s = sp.Symbol("s", real=True)
    assert same(d.term_factor, s * (sp.exp(s) - 1))
    assert d.negative_set == sp.S.EmptySet
    assert d.zero_set == sp.FiniteSet(0)
    # positive at a disagreement, zero at a shift of the logits (not only at equal logits)
    point = {**{ai: v for ai, v in zip(d.a, (1, -2, 0.5)[:k])}, **{bi: v for bi, v in zip(d.b, (0, 1, -1)[:k])}}
    assert float(d.definition.subs(point)) > 0
    shifted = {**{ai: v for ai, v in zip(d.a, (1, -2, 0.5)[:k])}, **{bi: v + 3 for bi, v in zip(d.b, (1, -2, 0.5)[:k])}}
    assert abs(float(d.definition.subs(shifted))) < 1e-12


@pytest.mark.parametrize("k", [2, 3])
def test_gradient_is_zero_and_hessian_is_the_softmax_fisher_at_agreement(k):
    d = r_drop_kl(k)
    assert all(g == 0 for g in d.gradient_at_agreement)
    fisher = sp.Matrix(k, k, lambda i, j: (d.P[i] if i == j else 0) - d.P[i] * d.P[j])
    assert sp.simplify(d.hessian_at_agreement - fisher) == sp.zeros(k, k)
    wrong = sp.diag(*d.P)  # forgetting the -P P^T part
    assert sp.simplify(d.hessian_at_agreement - wrong) != sp.zeros(k, k)
    P = sp.symbols(f"P_1:{k + 1}", positive=True)
    assert sp.simplify(d.hessian_in_probabilities.subs(dict(zip(P, d.P))) - fisher) == sp.zeros(k, k)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_layerdrop_depth_mean_variance_and_empty_stack(n):
    d = layerdrop_depth(n)
    assert same(d.mean, n * (1 - p))
    assert not same(d.mean, n * p)  # drop and keep swapped
    assert same(d.variance, n * p * (1 - p))
    assert not same(d.variance, n * (1 - p))
    assert same(d.none_kept, p**n)
    assert not same(d.none_kept, (1 - p) ** n)


def test_lora_dropout_noise_is_the_adapters_alone():
    d = lora_dropout_moments(3)
    assert same(d.mean, sum((w + m) * x for w, m, x in zip(d.w, d.m, d.x)))
    assert not same(d.mean, sum((w + (1 - p) * m) * x for w, m, x in zip(d.w, d.m, d.x)))  # no 1/(1-p)
    assert same(d.variance, p / (1 - p) * sum(m**2 * x**2 for m, x in zip(d.m, d.x)))
    # dropout on the whole layer's input would add the frozen weights' noise too
    assert not same(d.variance, p / (1 - p) * sum((w + m) ** 2 * x**2 for w, m, x in zip(d.w, d.m, d.x)))
    assert not same(d.variance, p * (1 - p) * sum(m**2 * x**2 for m, x in zip(d.m, d.x)))


@pytest.mark.parametrize("bad", [1, 5, 2.0, "3", None, True])
def test_r_drop_kl_refuses_a_bad_number_of_classes(bad):
    with pytest.raises((TypeError, ValueError), match="^n_classes must be"):
        r_drop_kl(bad)
