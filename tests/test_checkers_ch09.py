"""Checkers of chapter 9, "Dropout in transformers": the reference passes, the blank starter fails
with "not written yet", and typical wrong answers fail with their specific hint."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

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


def variant(scale=True, sqrt=True, renormalize=False, before=False, use_dropped=True, keep_with_p=False, dim=-1):
    def fn(q, k, v, p, training=True):
        scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if sqrt else 1.0)
        if training and before:
            scores = scores * (torch.rand_like(scores) >= p) / (1 - p)
        clean = torch.softmax(scores, dim=dim)
        weights = clean
        if training and not before:
            keep = torch.rand_like(clean) < p if keep_with_p else torch.rand_like(clean) >= p
            weights = clean * keep / ((1 - p) if scale else 1.0)
            if renormalize:
                weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)
        return (weights if use_dropped else clean) @ v, weights
    return fn


def test_attention_reference_library_and_starter(capsys):
    assert_passes(capsys, check_attention_with_dropout, ref_attention)

    def with_library(q, k, v, p, training=True):
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        weights = db.attention_dropout(weights, p, training=training)
        return weights @ v, weights

    assert_passes(capsys, check_attention_with_dropout, with_library)
    assert_fails(check_attention_with_dropout, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (variant(scale=False), ["kept weights are not scaled", "divide them by 1 - p"]),
    (variant(renormalize=True), ["renormalized the rows"]),
    (variant(before=True), ["AFTER the softmax"]),
    (variant(sqrt=False), ["divided by sqrt(d)"]),
    (variant(dim=-2), ["normalizes over the queries"]),
    (variant(use_dropped=False), ["output ignores the dropout"]),
    (variant(keep_with_p=True), ["you keep with probability p"]),
    (lambda q, k, v, p, training=True: ref_attention(q, k, v, p, training)[0], ["should return a pair"]),
])
def test_attention_typical_mistakes(fn, hints):
    assert_fails(check_attention_with_dropout, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 2: derive the variance of the row sum

p = derivations.drop_rate
a1, a2, a3 = sp.symbols("a1 a2 a3", positive=True)


def ref_variance():
    m = sp.symbols("m1:4")
    a = (a1, a2, a3)
    dist = {mj: derivations.Bernoulli(1 - p) for mj in m}
    row_sum = sum(mj * aj / (1 - p) for mj, aj in zip(m, a))
    return derivations.variance(row_sum, dist)


def test_row_sum_variance_reference_and_starter(capsys):
    assert_passes(capsys, check_row_sum_variance, ref_variance)
    # equal on the simplex: the constrained form is accepted
    on_simplex = lambda: ref_variance().subs(a3, 1 - a1 - a2)  # noqa: E731
    assert_passes(capsys, check_row_sum_variance, on_simplex)
    assert_fails(check_row_sum_variance, starter, "not written yet")


@pytest.mark.parametrize("answer, hints", [
    (p * (1 - p) * (a1**2 + a2**2 + a3**2), ["without the 1/(1-p) scaling"]),
    (p / (1 - p), ["weights are not all 1"]),
    (p / (3 * (1 - p)), ["uniform row"]),
    (p / (1 - p) * (a1**2 + a2**2 + a3**2) + 1, ["that is E[S²]"]),
    ((a1**2 + a2**2 + a3**2) / (1 - p), ["without the cross terms"]),
    (p / (1 - p) * (a1**2 + a2**2), ["your expression gives"]),
    (sp.Symbol("q") * a1, ["uses the symbols ['q']"]),
    (sp.Eq(p, a1), ["should return a sympy expression"]),
])
def test_row_sum_variance_typical_mistakes(answer, hints):
    assert_fails(check_row_sum_variance, lambda: answer, *hints)


def test_row_sum_variance_power_against_squared_sum():
    # (sum a_j)^2 = 1 on the simplex, so it coincides with p/(1-p): the message names that mistake
    assert_fails(check_row_sum_variance, lambda: p / (1 - p) * (a1 + a2 + a3) ** 2, "weights are not all 1")


# --------------------------------------------------------------------------------------------
# exercise 3: predict


def ref_prediction():
    w, q = ROW_EXERCISE["weights"], ROW_EXERCISE["p"]
    return {"mean": 1.0, "variance": q / (1 - q) * sum(x * x for x in w), "uniform_variance": q / (1 - q) / len(w)}


def with_(**changes):
    return lambda: {**ref_prediction(), **changes}


def test_prediction_reference_and_starter(capsys):
    assert ROW_EXERCISE == {"weights": (0.5, 0.25, 0.125, 0.125), "p": 0.1}
    assert_passes(capsys, check_row_sum_prediction, ref_prediction)
    assert ref_prediction()["variance"] == pytest.approx(0.34375 / 9)
    assert_fails(check_row_sum_prediction, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (with_(mean=0.9), ["not 1 - p"]),
    (with_(variance=0.0), ["not renormalized"]),
    (with_(variance=0.1 * 0.9 * 0.34375), ["without the 1/(1-p) scaling"]),
    (with_(variance=0.1 / 0.9), ["not p/(1-p)"]),
    (with_(variance=0.1 / 0.9 / 4), ["this row is peaked"]),
    (with_(uniform_variance=0.1 / 0.9), ["p/((1-p) n)"]),
    (with_(uniform_variance=0.1 * 0.9 / 4), ["missing the 1/(1-p) scaling"]),
    (with_(mean=2.0), ["recompute it"]),
    (with_(mean="1"), ["mean should be a number"]),
    (lambda: {"mean": 1.0}, ["exactly the keys"]),
])
def test_prediction_typical_mistakes(fn, hints):
    assert_fails(check_row_sum_prediction, fn, *hints)
