"""Checker layer, chapter 5: every checker passes the reference, fails the blank starter with
"not written yet", and fails typical wrong answers with a message that says what is wrong."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from torch import nn

from dropoutbook import derivations
from dropoutbook.exercises import (
    PASSES_EXERCISE,
    check_bald,
    check_mc_dropout_loop,
    check_mc_mean_variance,
    check_passes_needed,
)
from helpers import assert_fails, assert_passes, starter


# --------------------------------------------------------------------------------------------
# exercise 1: the MC-dropout loop


def _passes(model, x, T):
    with torch.no_grad():
        return torch.stack([model(x) for _ in range(T)])


def ref_loop(model, x, T):
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.train()
        out = _passes(model, x, T)
    finally:
        for m, mode in modes:
            m.training = mode
    return out.mean(0), out.var(0)


def loop_with_model_train(model, x, T):  # the common mistake: BatchNorm in training mode
    was = model.training
    model.train()
    out = _passes(model, x, T)
    model.train(was)
    return out.mean(0), out.var(0)


def loop_ending_in_eval(model, x, T):  # modes not restored for a model that was training
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    out = _passes(model, x, T)
    model.eval()
    return out.mean(0), out.var(0)


def loop_without_dropout(model, x, T):
    was = model.training
    model.eval()
    out = _passes(model, x, T)
    model.train(was)
    return out.mean(0), out.var(0)


def loop_plugin_variance(model, x, T):
    mean, var = ref_loop(model, x, T)
    return mean, var * (T - 1) / T


def loop_mean_over_inputs(model, x, T):
    mean, var = ref_loop(model, x, T)
    return mean.mean(0), var.mean(0)


def test_loop_reference_passes(capsys):
    assert_passes(capsys, check_mc_dropout_loop, ref_loop)


def test_loop_starter_fails():
    assert_fails(check_mc_dropout_loop, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (loop_with_model_train, ["running_mean", "model.train()"]),
    (loop_ending_in_eval, ["training mode before your call", "restore"]),
    (loop_without_dropout, ["variance is 0", "dropout was not active"]),
    (loop_plugin_variance, ["divide by T", "T - 1"]),
    (loop_mean_over_inputs, ["shape", "not over the inputs"]),
])
def test_loop_typical_mistakes_fail_with_their_hint(fn, hints):
    assert_fails(check_mc_dropout_loop, fn, *hints)


def test_loop_checker_restores_the_global_rng():
    state = torch.random.get_rng_state()
    check_mc_dropout_loop(ref_loop)
    assert torch.equal(torch.random.get_rng_state(), state)


# --------------------------------------------------------------------------------------------
# exercise 2: BALD


def _entropy(p):
    return -torch.special.xlogy(p, p).sum(-1)


def ref_bald(probs):
    return _entropy(probs.mean(0)) - _entropy(probs).mean(0)


def test_bald_reference_passes(capsys):
    assert_passes(capsys, check_bald, ref_bald)


def test_bald_starter_fails():
    assert_fails(check_bald, starter, "not written yet")


def naive_log(probs):
    h = lambda p: -(p * p.log()).sum(-1)  # noqa: E731  NaN at p = 0
    return h(probs.mean(0)) - h(probs).mean(0)


@pytest.mark.parametrize("fn, hints", [
    (lambda probs: _entropy(probs.mean(0)), ["predictive entropy", "subtract the expected entropy"]),
    (lambda probs: _entropy(probs).mean(0), ["expected entropy alone"]),
    (lambda probs: _entropy(probs).mean(0) - _entropy(probs.mean(0)), ["sign is reversed"]),
    (naive_log, ["NaN", "0·log 0"]),
    (lambda probs: -torch.special.xlogy(probs.mean(0), probs.mean(0)).mean(-1)
     + torch.special.xlogy(probs, probs).mean(-1).mean(0), ["sum over the classes"]),
    (lambda probs: ref_bald(probs).mean(), ["one score per input"]),
])
def test_bald_typical_mistakes_fail_with_their_hint(fn, hints):
    assert_fails(check_bald, fn, *hints)


def test_bald_in_place_modification_is_caught():
    def in_place(probs):
        out = ref_bald(probs)
        probs.clamp_(min=1e-12)
        return out

    assert_fails(check_bald, in_place, "in place")


# --------------------------------------------------------------------------------------------
# exercise 3: derive Var[mu_2]


p = derivations.drop_rate
w, x = sp.symbols("w x", real=True)


def ref_derivation():
    m1, m2 = sp.symbols("m1 m2")
    mu = (w * m1 * x / (1 - p) + w * m2 * x / (1 - p)) / 2
    dists = {m: derivations.Bernoulli(1 - p) for m in (m1, m2)}
    return derivations.expectation(mu**2, dists) - derivations.expectation(mu, dists) ** 2


def test_derivation_reference_passes(capsys):
    assert_passes(capsys, check_mc_mean_variance, ref_derivation)


def test_derivation_starter_fails():
    assert_fails(check_mc_mean_variance, starter, "not written yet")


@pytest.mark.parametrize("wrong, hint", [
    (w**2 * x**2 * p / (1 - p), "variance of one pass"),
    (w**2 * x**2 * (1 - p) / p / 2, "keep probability"),
    (w**2 * x**2 * p * (1 - p) / 2, "1/(1-p)"),
    (w**2 * x**2 * p / (1 - p) / 2 + (w * x) ** 2, "E[mu_2²]"),
    (w**2 * x**2 * p / (1 - p) / 4, "variances of two independent passes add"),
    (w**2 * x**2 * p, "your expression gives"),
])
def test_derivation_typical_mistakes_fail_with_their_hint(wrong, hint):
    assert_fails(check_mc_mean_variance, lambda: wrong, hint)


def test_derivation_rejects_foreign_symbols_and_non_expressions():
    assert_fails(check_mc_mean_variance, lambda: sp.Symbol("q") * w, "uses the symbols")
    assert_fails(check_mc_mean_variance, lambda: sp.Eq(w, x), "sympy expression")


# --------------------------------------------------------------------------------------------
# exercise 4: passes needed


def pass_variance():
    s = sum((a * b) ** 2 for a, b in zip(PASSES_EXERCISE["w"], PASSES_EXERCISE["x"]))
    q = PASSES_EXERCISE["p"]
    return s * q / (1 - q)


def test_passes_reference_passes(capsys):
    T = math.ceil(pass_variance() / PASSES_EXERCISE["target_se"] ** 2)
    assert T == 2267
    assert_passes(capsys, check_passes_needed, lambda: T)


def test_passes_starter_fails():
    assert_fails(check_passes_needed, starter, "not written yet")


@pytest.mark.parametrize("answer, hint", [
    (2266, "round up"),
    (114, "square eps"),
    (48, "not its standard deviation"),
    (134, "not (Σ w_i x_i)²"),
    (20400, "keep probability"),
    (1275, "p(1-p)"),
    (1000, "sqrt(Var[one pass]/T)"),
    (2266.5, "whole number"),
    ("2267", "whole number"),
])
def test_passes_typical_mistakes_fail_with_their_hint(answer, hint):
    assert_fails(check_passes_needed, lambda: answer, hint)
