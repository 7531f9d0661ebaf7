"""Checkers of chapter 9, "Dropout in transformers": the reference passes, the blank starter fails
with "not written yet", typical wrong answers (written as a student would) fail with their
specific hint, and correct answers written differently from the reference pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from torch.nn import functional as F

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    ROW_EXERCISE,
    check_attention_with_dropout,
    check_row_sum_prediction,
    check_row_sum_variance,
)
from helpers import assert_fails, assert_passes, starter


# --------------------------------------------------------------------------------------------
# exercise 1: attention with dropout


def ref_attention(q, k, v, p, training=True):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if training and p > 0:
        weights = weights * (torch.rand_like(weights) >= p) / (1 - p)
    return weights @ v, weights


def with_functional_dropout(q, k, v, p, training=True):
    scores = torch.einsum("bid,bjd->bij", q, k) * q.shape[-1] ** -0.5
    weights = F.dropout(scores.softmax(-1), p, training)
    return torch.einsum("bij,bjd->bid", weights, v), weights


def with_library(q, k, v, p, training=True):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    weights = db.attention_dropout(weights, p, training=training)
    return weights @ v, weights


def variant(scale=True, sqrt=True, renormalize=False, before=False, use_dropped=True, keep_with_p=False, dim=-1,
            mask_shape=None, rate=None, reseed=False, divide_by_p=False):
    def fn(q, k, v, p, training=True):
        p = p if rate is None else rate
        scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if sqrt else 1.0)
        if training and before:
            scores = scores * (torch.rand_like(scores) >= p) / (1 - p)
        clean = torch.softmax(scores, dim=dim)
        weights = clean
        if training and not before:
            g = torch.Generator().manual_seed(0) if reseed else None
            shape = clean.shape if mask_shape is None else mask_shape(clean)
            u = torch.rand(shape, generator=g, dtype=clean.dtype)
            keep = u < p if keep_with_p else u >= p
            weights = clean * keep / (p if divide_by_p else (1 - p) if scale else 1.0)
            if renormalize:
                weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)
        return (weights if use_dropped else clean) @ v, weights
    return fn


def scales_q_in_place(q, k, v, p, training=True):
    q /= math.sqrt(q.shape[-1])
    weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    if training:
        weights = weights * (torch.rand_like(weights) >= p) / (1 - p)
    return weights @ v, weights


@pytest.mark.parametrize("fn, hint", [
    (variant(scale=False), "kept weights are not scaled"),
    (variant(divide_by_p=True), "divides them by 1 - p"),
    (variant(renormalize=True), "renormalized the rows"),
    (variant(before=True), "AFTER the softmax"),
    (variant(sqrt=False), "divided by sqrt(d)"),
    (variant(dim=-2), "normalizes over the queries"),
    (variant(use_dropped=False), "output ignores the dropout"),
    (variant(keep_with_p=True), "you keep with probability p"),
    (variant(rate=0.3), "not the p it receives"),  # the checker's default rate, hard-coded
    (variant(mask_shape=lambda w: w.shape[-2:]), "same mask for every example"),  # torch.empty(n, n).bernoulli_
    (variant(mask_shape=lambda w: (*w.shape[:-1], 1)), "per query row"),
    (variant(mask_shape=lambda w: (w.shape[0], 1, w.shape[-1])), "per key column"),
    (variant(reseed=True), "two calls dropped the same weights"),
    (scales_q_in_place, "in place"),
    (lambda q, k, v, p, training=True: ref_attention(q, k, v, p, training)[0], "should return a pair"),
])
def test_attention_typical_mistakes(fn, hint):
    assert_fails(check_attention_with_dropout, fn, hint)


def test_attention_correct_answers(capsys):
    assert_passes(capsys, check_attention_with_dropout, ref_attention)
    assert_passes(capsys, check_attention_with_dropout, with_functional_dropout)
    assert_passes(capsys, check_attention_with_dropout, with_library)
    assert_fails(check_attention_with_dropout, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 2: derive the mean and the variance of the row sum (computed, not typed)

p = derivations.drop_rate
a1, a2, a3 = sp.symbols("a1 a2 a3", positive=True)
squares = a1**2 + a2**2 + a3**2


def derived(keep=1 - p, scale=1 / (1 - p), simplex=False):
    def derive():
        m = sp.symbols("m1:4")
        a = (a1, a2, a3)
        dist = {mj: derivations.Bernoulli(keep) for mj in m}
        row_sum = sum(mj * aj * scale for mj, aj in zip(m, a))
        mean, var = derivations.expectation(row_sum, dist), derivations.variance(row_sum, dist)
        if simplex:
            mean, var = mean.subs(a3, 1 - a1 - a2), var.subs(a3, 1 - a1 - a2)
        return {"mean": sp.simplify(mean), "variance": var}
    return derive


def by_expectations():  # E[S] and E[S^2] by derivations.expectation, any symbol names
    p_, w = sp.Symbol("p"), sp.symbols("a1:4")
    m = sp.symbols("b1:4")
    dist = {mj: derivations.Bernoulli(1 - p_) for mj in m}
    s = sum(mj * wj for mj, wj in zip(m, w)) / (1 - p_)
    first = derivations.expectation(s, dist)
    return {"variance": sp.factor(derivations.expectation(s**2, dist) - first**2), "mean": first}


@pytest.mark.parametrize("answer, hint", [
    (derived(keep=p), "Bernoulli(p)"),
    (derived(scale=1), "without the 1/(1-p) scaling"),
    (derived(scale=1 / p), "divided by p"),
    (lambda: {"mean": a1 + a2 + a3, "variance": p / (1 - p) * squares}, "typed"),
    (lambda: {"mean": sp.Integer(1), "variance": p / (1 - p) * squares}, "typed"),
    (lambda: {"mean": 1, "variance": sp.Rational(1, 27)}, "typed"),
    (lambda: {"mean": 1.0, "variance": 0.037}, "typed"),
    (lambda: derived()()["variance"], "a dict with the keys ['mean', 'variance']"),
    (lambda: {"variance": derived()()["variance"]}, "missing ['mean']"),
    (lambda: {"mean": sp.Symbol("q") * a1, "variance": p}, "uses the symbols ['q']"),
    (lambda: {"mean": sp.Eq(p, a1), "variance": p}, "sympy expression"),
])
def test_row_sum_variance_typical_mistakes(answer, hint):
    assert_fails(check_row_sum_variance, answer, hint)


@pytest.mark.parametrize("variance, hint", [
    (p * (1 - p) * squares, "without the 1/(1-p) scaling"),
    (p / (1 - p), "weights are not all 1"),
    (p / (3 * (1 - p)), "uniform row"),
    (p / (1 - p) * squares + 1, "that is E[S²]"),
    (squares / (1 - p), "without the cross terms"),
    (p / (1 - p) * (a1**2 + a2**2), "your variance gives"),
    (p / (1 - p) * (a1 + a2 + a3) ** 2, "weights are not all 1"),  # = p/(1-p) on the simplex
])
def test_row_sum_variance_wrong_variance_is_named(variance, hint):
    def answer():
        derivations.expectation(sp.Symbol("m"), {sp.Symbol("m"): derivations.Bernoulli(1 - p)})
        return {"mean": a1 + a2 + a3, "variance": variance}
    assert_fails(check_row_sum_variance, answer, hint)


def test_row_sum_variance_correct_answers(capsys):
    assert_passes(capsys, check_row_sum_variance, derived())
    assert_passes(capsys, check_row_sum_variance, derived(simplex=True))  # on the simplex: mean 1
    assert_passes(capsys, check_row_sum_variance, by_expectations)
    assert_fails(check_row_sum_variance, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3: predict (any number type; the instructor may choose the row and p)


def ref_prediction():
    w, q = (0.5, 0.25, 0.125, 0.125), 0.1
    return {"mean": 1.0, "variance": q / (1 - q) * sum(x * x for x in w), "uniform_variance": q / (1 - q) / len(w)}


def with_(**changes):
    return lambda: {**ref_prediction(), **changes}


@pytest.mark.parametrize("fn, hint", [
    (with_(mean=0.9), "not 1 - p"),
    (with_(variance=0.0), "not renormalized"),
    (with_(variance=0.1 * 0.9 * 0.34375), "without the 1/(1-p) scaling"),
    (with_(variance=0.1 / 0.9), "not p/(1-p)"),
    (with_(variance=0.1 / 0.9 / 4), "this row is peaked"),
    (with_(uniform_variance=0.1 / 0.9), "p/((1-p) n)"),
    (with_(uniform_variance=0.1 * 0.9 / 4), "missing the 1/(1-p) scaling"),
    (with_(mean=2.0), "recompute it"),
    (with_(mean="1"), "mean should be a number"),
    (with_(variance=float("nan")), "NaN"),
    (lambda: {"mean": 1.0}, "'variance', 'uniform_variance'"),
    (lambda: (1.0, 0.038, 0.028), "a dict with the keys ['mean', 'variance', 'uniform_variance']"),
])
def test_prediction_typical_mistakes(fn, hint):
    assert_fails(check_row_sum_prediction, fn, hint)


def test_prediction_correct_answers(capsys):
    assert dict(ROW_EXERCISE) == {"weights": (0.5, 0.25, 0.125, 0.125), "p": 0.1}
    assert ref_prediction()["variance"] == pytest.approx(0.34375 / 9)
    assert_passes(capsys, check_row_sum_prediction, ref_prediction)
    assert_passes(capsys, check_row_sum_prediction,
                  lambda: {"mean": np.int64(1), "variance": torch.tensor(0.34375 / 9),
                           "uniform_variance": np.float32(1 / 36)})
    assert_fails(check_row_sum_prediction, starter, "not written yet")


def test_prediction_instructor_inputs():
    def for_a_two_key_row():
        return {"mean": 1, "variance": 0.25 / 0.75 * (0.8**2 + 0.2**2), "uniform_variance": 0.25 / 0.75 / 2}
    result = check_row_sum_prediction(for_a_two_key_row, weights=(0.8, 0.2), p=0.25)
    assert result is None or result.passed
    assert_fails(lambda fn: check_row_sum_prediction(fn, weights=(0.8, 0.2), p=0.25), ref_prediction, "variance")
    with pytest.raises(ValueError, match="sum to 1"):
        check_row_sum_prediction(ref_prediction, weights=(0.5, 0.25))
    with pytest.raises(ValueError, match="p"):
        check_row_sum_prediction(ref_prediction, p=1.0)


# --------------------------------------------------------------------------------------------
# answers that passed an earlier version of the checkers


def attention_with_mask(mask_of):
    def attention(q, k, v, p, training=True):
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        if training:
            weights = weights * mask_of(weights, p) / (1 - p)
        return weights @ v, weights
    return attention


def _halves_mask(w, p):  # one mask repeated for the two halves of the batch
    half = torch.rand(w.shape[0] // 2, *w.shape[1:]) >= p
    return torch.cat([half, half])


def _symmetric_mask(w, p):  # weight (i, j) and weight (j, i) share their draw
    m = torch.rand_like(w) >= p
    return torch.triu(m) | torch.tril(m.transpose(-2, -1), -1)


def _float32_attention(q, k, v, p, training=True):
    out, weights = ref_attention(q, k, v, p, training)
    return out.float(), weights.float()


@pytest.mark.parametrize("fn, hint", [
    (attention_with_mask(_halves_mask), "halves of the batch are not independent"),
    (attention_with_mask(_symmetric_mask), "(i, j) and (j, i) are not independent"),
    (_float32_attention, "dtype torch.float32 for inputs of dtype torch.float64"),
])
def test_attention_dependent_masks_and_dtype(fn, hint):
    assert_fails(check_attention_with_dropout, fn, hint)


def _typed_next_to_a_call(mean):
    def answer():
        m = sp.Symbol("m")
        derivations.expectation(m, {m: derivations.Bernoulli(1 - p)})
        return {"mean": mean, "variance": p / (1 - p) * squares}
    return answer


def _swapped_mask_with_typed_mean():  # Bernoulli(p) gives the right variance; the typed mean hides the swap
    return {"mean": sp.Integer(1), "variance": derived(keep=p)()["variance"]}


@pytest.mark.parametrize("answer", [_typed_next_to_a_call(a1 + a2 + a3), _typed_next_to_a_call(sp.Integer(1)),
                                    _swapped_mask_with_typed_mean])
def test_row_sum_variance_typed_next_to_a_call(answer):
    assert_fails(check_row_sum_variance, answer, "does not follow the mask distribution", "typed in")


def test_row_sum_variance_term_by_term_passes(capsys):
    def term_by_term():
        m = sp.symbols("m1:4")
        terms = [mj * aj / (1 - p) for mj, aj in zip(m, (a1, a2, a3))]
        dists = [{mj: derivations.Bernoulli(1 - p)} for mj in m]
        return {"mean": sum(derivations.expectation(t, d) for t, d in zip(terms, dists)),
                "variance": sum(derivations.variance(t, d) for t, d in zip(terms, dists))}
    assert_passes(capsys, check_row_sum_variance, term_by_term)


def _scaled_by(scale_of):
    def attention(q, k, v, p, training=True):
        weights = torch.softmax(q @ k.transpose(-2, -1) / scale_of(q), dim=-1)
        if training:
            weights = weights * (torch.rand_like(weights) >= p) / (1 - p)
        return weights @ v, weights
    return attention


@pytest.mark.parametrize("fn", [_scaled_by(lambda q: 2.0), _scaled_by(lambda q: math.sqrt(q.shape[1]))])
def test_attention_scale_is_sqrt_of_the_feature_dimension(fn):
    assert_fails(check_attention_with_dropout, fn, "the square root of d = q.shape[-1]")


_SQ = 0.5**2 + 0.25**2 + 2 * 0.125**2


@pytest.mark.parametrize("variance, uniform, hint", [
    (0.1 * _SQ, 1 / 36, "forgets the scaling"),
    ((_SQ / 9) ** 0.5, 1 / 36, "standard deviation"),
    (1 + _SQ / 9, 1 / 36, "that is E[S²]"),
    (9 * _SQ, 1 / 36, "keep probability"),
    (_SQ / 9, 1 / (9 * 16), "not 1/n²"),
    (_SQ / 9, (1 / 36) ** 0.5, "standard deviation"),
])
def test_prediction_more_named_mistakes(variance, uniform, hint):
    assert_fails(check_row_sum_prediction, lambda: {"mean": 1.0, "variance": variance, "uniform_variance": uniform},
                 hint)
