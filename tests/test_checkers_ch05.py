"""Checker layer, chapter 5: every checker passes the reference and correct answers written
differently, fails the blank starter with "not written yet", and fails the typical wrong answers a
student writes, each with a message that says what is wrong."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

import dropoutbook as db
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


def _dropout_sampling(model):
    """Every module in evaluation mode except the nn.Dropout ones (the student's helper)."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()


def ref_loop(model, x, T):
    modes = [(m, m.training) for m in model.modules()]
    try:
        _dropout_sampling(model)
        out = _passes(model, x, T)
    finally:
        for m, mode in modes:
            m.training = mode
    return out.mean(0), out.var(0)


def batched_loop(model, x, T):  # one forward pass over T copies of the batch; BN in eval, so rows stay apart
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        model.eval()
        model.apply(lambda m: m.train() if isinstance(m, nn.Dropout) else None)
        with torch.inference_mode():
            out = model(x.repeat(T, 1)).reshape(T, x.shape[0], -1)
    finally:
        for name, m in model.named_modules():
            m.training = modes[name]
    return out.mean(0), out.var(0, unbiased=True)


def welford_loop(model, x, T):  # a running mean and variance, no stacked tensor
    flags = [m.training for m in model.modules()]
    try:
        for m in model.modules():
            m.training = isinstance(m, nn.Dropout)
        mean = m2 = None
        with torch.no_grad():
            for t in range(1, T + 1):
                y = model(x)
                if mean is None:
                    mean, m2 = y.clone(), torch.zeros_like(y)
                else:
                    delta = y - mean
                    mean += delta / t
                    m2 += delta * (y - mean)
    finally:
        for m, flag in zip(model.modules(), flags):
            m.training = flag
    return mean, m2 / (T - 1)


@pytest.mark.parametrize("fn", [ref_loop, batched_loop, welford_loop])
def test_loop_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_mc_dropout_loop, fn)


def test_loop_starter_fails():
    assert_fails(check_mc_dropout_loop, starter, "not written yet")


def loop_with_model_train(model, x, T):  # the common mistake: BatchNorm in training mode
    was = model.training
    model.train()
    out = _passes(model, x, T)
    model.train(was)
    return out.mean(0), out.var(0)


def loop_restoring_the_top_level_only(model, x, T):  # resets every submodule to one mode
    was = model.training
    _dropout_sampling(model)
    out = _passes(model, x, T)
    model.train(was)
    return out.mean(0), out.var(0)


def loop_ending_in_eval(model, x, T):  # modes not restored for a model that was training
    _dropout_sampling(model)
    out = _passes(model, x, T)
    model.eval()
    return out.mean(0), out.var(0)


def loop_without_finally(model, x, T):  # restores the modes, but not when a pass raises
    modes = [(m, m.training) for m in model.modules()]
    _dropout_sampling(model)
    out = _passes(model, x, T)
    for m, mode in modes:
        m.training = mode
    return out.mean(0), out.var(0)


def loop_freezing_bn_with_momentum(model, x, T):  # BN in train mode with momentum 0, then momentum = 0.1
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.train()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = 0.0
        out = _passes(model, x, T)
    finally:
        for m, mode in modes:
            m.training = mode
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = 0.1
    return out.mean(0), out.var(0)


def loop_without_dropout(model, x, T):
    was = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        out = _passes(model, x, T)
    finally:
        for m, mode in was:
            m.training = mode
    return out.mean(0), out.var(0)


def loop_reseeding_every_pass(model, x, T):  # the same mask in every pass
    modes = [(m, m.training) for m in model.modules()]
    try:
        _dropout_sampling(model)
        outs = []
        with torch.no_grad():
            for _ in range(T):
                torch.manual_seed(0)
                outs.append(model(x))
        out = torch.stack(outs)
    finally:
        for m, mode in modes:
            m.training = mode
    return out.mean(0), out.var(0)


def loop_plugin_variance(model, x, T):
    mean, var = ref_loop(model, x, T)
    return mean, var * (T - 1) / T


def loop_standard_deviation(model, x, T):
    mean, var = ref_loop(model, x, T)
    return mean, var.sqrt()


def loop_mean_over_inputs(model, x, T):
    mean, var = ref_loop(model, x, T)
    return mean.mean(0), var.mean(0)


def loop_in_place_input(model, x, T):
    out = ref_loop(model, x, T)
    x.mul_(2)
    return out


def loop_with_the_library(model, x, T):
    pred = db.mc_predict(model, x, T)
    return pred.mean, pred.variance


def loop_with_the_library_context(model, x, T):
    with db.mc_dropout(model):
        out = _passes(model, x, T)
    return out.mean(0), out.var(0)


@pytest.mark.parametrize("fn, hints", [
    (loop_with_model_train, ["running_mean", "model.train()"]),
    (loop_restoring_the_top_level_only, ["modules' modes differ", "each module's `training` flag"]),
    (loop_ending_in_eval, ["modules' modes differ", "restore"]),
    (loop_without_finally, ["a forward pass raised", "finally"]),
    (loop_freezing_bn_with_momentum, ["momentum", "0.3", "0.1"]),
    (loop_without_dropout, ["variance is 0", "dropout was not active"]),
    (loop_reseeding_every_pass, ["variance is 0", "same mask"]),
    (loop_plugin_variance, ["divide by T", "T - 1"]),
    (loop_standard_deviation, ["standard deviation"]),
    (loop_mean_over_inputs, ["shape", "not over the inputs"]),
    (loop_in_place_input, ["changed its input x"]),
    (loop_with_the_library, ["dropoutbook.mc_predict", "forbids"]),
    (loop_with_the_library_context, ["dropoutbook.mc_dropout", "forbids"]),
], ids=lambda v: getattr(v, "__name__", "hints"))
def test_loop_typical_mistakes_fail_with_their_hint(fn, hints):
    assert_fails(check_mc_dropout_loop, fn, *hints)


def test_loop_checker_uses_mixed_modes_and_non_default_hyperparameters():
    seen = []

    def spy(model, x, T):
        seen.append(tuple(m.training for m in model.modules()))
        bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
        drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
        assert all(b.momentum != 0.1 for b in bn) and all(d.p != 0.5 for d in drops)
        return ref_loop(model, x, T)

    check_mc_dropout_loop(spy)
    assert any(len(set(modes)) > 1 for modes in seen)  # some model had submodules in different modes


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


def bald_with_categorical(probs):
    def h(p):
        return torch.distributions.Categorical(probs=p).entropy()
    return h(probs.mean(dim=0)) - h(probs).mean(dim=0)


def bald_with_epsilon(probs):  # a tiny constant inside the log
    logs = torch.log(probs + 1e-12)
    mean = probs.mean(0)
    return -(mean * torch.log(mean + 1e-12)).sum(-1) + (probs * logs).sum(-1).mean(0)


@pytest.mark.parametrize("fn", [ref_bald, bald_with_categorical, bald_with_epsilon])
def test_bald_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_bald, fn)


def test_bald_starter_fails():
    assert_fails(check_bald, starter, "not written yet")


def naive_log(probs):
    h = lambda p: -(p * p.log()).sum(-1)  # noqa: E731  NaN at p = 0
    return h(probs.mean(0)) - h(probs).mean(0)


def in_bits(probs):
    h = lambda p: -torch.special.xlogy(p, p).sum(-1) / math.log(2)  # noqa: E731
    return h(probs.mean(0)) - h(probs).mean(0)


def wrong_axis(probs):  # averages over the inputs instead of the passes
    return _entropy(probs.mean(1)) - _entropy(probs).mean(1)


def in_place(probs):
    out = ref_bald(probs)
    probs.clamp_(min=1e-12)
    return out


@pytest.mark.parametrize("fn, hints", [
    (lambda probs: _entropy(probs.mean(0)), ["predictive entropy", "subtract the expected entropy"]),
    (lambda probs: _entropy(probs).mean(0), ["expected entropy alone"]),
    (lambda probs: _entropy(probs).mean(0) - _entropy(probs.mean(0)), ["sign is reversed"]),
    (naive_log, ["NaN", "0·log 0"]),
    (lambda probs: -torch.special.xlogy(probs.mean(0), probs.mean(0)).mean(-1)
     + torch.special.xlogy(probs, probs).mean(-1).mean(0), ["sum over the classes"]),
    (in_bits, ["bits", "natural log"]),
    (wrong_axis, ["one score per input", "average over the passes (dim 0)"]),
    (lambda probs: ref_bald(probs).mean(), ["one score per input"]),
    (in_place, ["in place"]),
    (lambda probs: db.mutual_information(probs), ["dropoutbook.mutual_information", "forbids"]),
    (lambda probs: ref_bald(probs).numpy(), ["should return a torch.Tensor"]),
], ids=["predictive", "expected", "sign", "nan", "mean-over-classes", "bits", "wrong-axis", "scalar", "in-place",
        "library", "numpy"])
def test_bald_typical_mistakes_fail_with_their_hint(fn, hints):
    assert_fails(check_bald, fn, *hints)


def test_bald_tries_several_shapes():
    seen = []

    def spy(probs):
        seen.append((tuple(probs.shape), probs.dtype))
        return ref_bald(probs)

    check_bald(spy)
    shapes = {s for s, _ in seen}
    assert len(shapes) >= 3 and any(s[0] == 1 for s in shapes) and any(s[2] == 2 for s in shapes)
    assert {d for _, d in seen} == {torch.float32, torch.float64}


# --------------------------------------------------------------------------------------------
# exercise 3: derive E and Var of mu_2, for the mask distribution the checker passes


p = derivations.drop_rate
w, x = sp.symbols("w x", real=True)
m1, m2 = sp.symbols("m1 m2")


def ref_derivation(mask):
    mu = (w * m1 * x / (1 - p) + w * m2 * x / (1 - p)) / 2
    dists = {m1: mask, m2: mask}
    mean = derivations.expectation(mu, dists)
    return {"mean": mean, "variance": derivations.expectation(mu**2, dists) - mean**2}


def derivation_with_variance(mask):
    ws, xs = sp.symbols("w x")  # plain symbols
    passes = [ws * m * xs / (1 - p) for m in (m1, m2)]
    mu = sum(passes) / 2
    return {"variance": derivations.variance(mu, {m1: mask, m2: mask}), "mean": derivations.expectation(mu, {m1: mask, m2: mask})}


def derivation_by_independence(mask):  # Var of one pass, then divided by T = 2
    one = w * m1 * x / (1 - p)
    mean = derivations.expectation(one, {m1: mask})
    return {"mean": mean, "variance": sp.factor(derivations.variance(one, {m1: mask}) / 2)}


@pytest.mark.parametrize("fn", [ref_derivation, derivation_with_variance, derivation_by_independence])
def test_derivation_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_mc_mean_variance, fn)


def test_derivation_starter_fails():
    assert_fails(check_mc_mean_variance, starter, "not written yet")


def typed(mean, variance):
    return lambda mask: {"mean": mean, "variance": variance}


def one_mask_for_both_passes(mask):  # the same mask symbol in both passes
    mu = (w * m1 * x / (1 - p) + w * m1 * x / (1 - p)) / 2
    mean = derivations.expectation(mu, {m1: mask})
    return {"mean": mean, "variance": derivations.expectation(mu**2, {m1: mask}) - mean**2}


V = w**2 * x**2 * p / (1 - p)


@pytest.mark.parametrize("fn, hints", [
    (typed(w * x, V / 2), ["typed in", "the argument mask"]),
    (lambda mask: ref_derivation(derivations.Bernoulli(1 - p)), ["typed in", "a fixed distribution"]),
    (lambda mask: ref_derivation(derivations.Bernoulli(p)), ["'mean'", "Bernoulli(p)"]),
    (one_mask_for_both_passes, ["'variance'", "variance of one pass", "independent masks m1 and m2"]),
    (typed(w * x, V), ["'variance'", "variance of one pass"]),
    (typed(w * x, w**2 * x**2 * (1 - p) / p / 2), ["'variance'", "keep probability"]),
    (typed(w * x, w**2 * x**2 * p * (1 - p) / 2), ["'variance'", "1/(1-p)"]),
    (typed(w * x, V / 2 + (w * x) ** 2), ["'variance'", "E[mu_2²]"]),
    (typed(w * x, V / 4), ["'variance'", "variances of two independent passes add"]),
    (typed((1 - p) * w * x, w**2 * x**2 * p * (1 - p) / 2), ["'mean'", "not scaled"]),
    (typed(w * x, w**2 * x**2 * p), ["'variance'", "your expression gives"]),
    (typed(w * x, sp.Symbol("q") * w), ["uses the symbols ['q']"]),
    (lambda mask: ref_derivation(mask)["variance"], ["should return a dict", "'mean'", "'variance'"]),
    (typed(w * x, sp.Eq(w, x)), ["sympy expression"]),
], ids=["typed", "fixed-distribution", "swapped", "one-mask", "one-pass", "keep", "unscaled-variance",
        "second-moment", "quarter", "unscaled", "other", "unknown-symbol", "variance-only", "Eq"])
def test_derivation_typical_mistakes_fail_with_their_hint(fn, hints):
    assert_fails(check_mc_mean_variance, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 4: passes needed


def pass_variance(w=PASSES_EXERCISE["w"], x=PASSES_EXERCISE["x"], p=PASSES_EXERCISE["p"]):
    s = sum((a * b) ** 2 for a, b in zip(w, x))
    return s * p / (1 - p)


def needed(**numbers):
    se = numbers.pop("target_se", PASSES_EXERCISE["target_se"])
    return math.ceil(pass_variance(**numbers) / se**2)


def test_passes_reference_passes(capsys):
    assert needed() == 2267
    assert_passes(capsys, check_passes_needed, lambda: 2267)


@pytest.mark.parametrize("answer", [np.int64(2267), torch.ceil(torch.tensor(2266.67)), torch.tensor(2267),
                                    2267.0, np.float64(2267.0), sp.Integer(2267), np.array(2267)],
                         ids=["np.int64", "torch.ceil", "int-tensor", "float", "np.float64", "sympy", "0-d-array"])
def test_passes_accepts_any_whole_number_type(capsys, answer):
    assert_passes(capsys, check_passes_needed, lambda: answer)


def test_passes_takes_the_instructors_numbers(capsys):
    numbers = {"w": (1.0, 2.0), "x": (0.5, -1.5), "p": 0.4, "target_se": 0.1}
    check = functools.partial(check_passes_needed, **numbers)
    assert_passes(capsys, check, lambda: needed(**numbers))
    assert_fails(check, lambda: 2267, "is not right")
    with pytest.raises(ValueError, match="target_se"):
        check_passes_needed(lambda: 1, target_se=0.0)
    with pytest.raises(ValueError, match="w and x"):
        check_passes_needed(lambda: 1, w=(1.0,), x=(1.0, 2.0))


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
    (torch.tensor(2266.67), "whole number"),
    ("2267", "the string"),
    (float("nan"), "NaN"),
    (float("inf"), "inf"),
    (None, "NoneType"),
    (-2267, "at least 1"),
])
def test_passes_typical_mistakes_fail_with_their_hint(answer, hint):
    assert_fails(check_passes_needed, lambda: answer, hint)


# --------------------------------------------------------------------------------------------
# more typical wrong answers (red team)


def loop_top_level_dropouts_only(model, x, T):  # model.children(): the nested block's dropout never samples
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in model.children():
            if isinstance(m, nn.Dropout):
                m.train()
        out = _passes(model, x, T)
    finally:
        for m, mode in modes:
            m.training = mode
    return out.mean(0), out.var(0)


def loop_reseeding_every_call(model, x, T):  # reproducible, but the same masks on every call
    torch.manual_seed(0)
    return ref_loop(model, x, T)


_STORED: dict = {}


def loop_with_stored_outputs(model, x, T):  # computed once per model and T, then returned again
    key = (id(model), T)
    if key not in _STORED:
        _STORED[key] = ref_loop(model, x, T)
    return _STORED[key]


@pytest.mark.parametrize("fn, hints", [
    (loop_top_level_dropouts_only, ["vary 0.", "far less", "model.modules()"]),
    (loop_reseeding_every_call, ["two calls returned exactly the same mean", "torch.manual_seed"]),
    (loop_with_stored_outputs, ["two calls returned exactly the same mean", "stored outputs"]),
])
def test_loop_more_mistakes_fail_with_their_hint(fn, hints):
    _STORED.clear()
    assert_fails(check_mc_dropout_loop, fn, *hints)


@pytest.mark.parametrize("answer, hint", [
    (math.ceil(17 * 0.25 / 0.75**2 / 0.05**2), "one factor 1/(1-p) too many"),
    (2268, "with T, not T - 1"),
])
def test_passes_more_mistakes_fail_with_their_hint(answer, hint):
    assert_fails(check_passes_needed, lambda: answer, hint)
