"""Chapter 6 checkers: the reference passes, the blank starter fails with "not written yet", and
typical wrong answers fail with their specific hint."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from torch import nn

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    check_dropout_placement,
    check_recalibration,
    check_scale_error,
    check_train_variance,
)
from helpers import assert_fails, assert_passes, starter

mu, s2, q = sp.symbols("mu sigma2 q")


# --------------------------------------------------------------------------------------------
# exercise 1


def reference_variance():
    m, e = sp.Symbol("m"), sp.Symbol("e")
    dist = {m: derivations.Bernoulli(q), e: derivations.ZeroMeanNoise(s2)}
    x_tilde = m * (mu + e) / q
    return derivations.expectation(x_tilde**2, dist) - derivations.expectation(x_tilde, dist) ** 2


@pytest.mark.parametrize("answer, hint", [
    (lambda: s2 / q, "noise σ²/q"),
    (lambda: (s2 + mu**2) / q, "that is E[x̃²]"),
    (lambda: s2 / q + mu**2 * (1 - q), "lacks its 1/q"),
    (lambda: s2 / (1 - q) + mu**2 * q / (1 - q), "q as the drop probability"),
    (lambda: q * s2 + q * (1 - q) * mu**2, "standard dropout"),
    (lambda: s2 / q**2 + mu**2 * (1 - q) / q**2, "one factor q cancels"),
    (lambda: s2, "your expression gives 1"),
    (lambda: sp.Symbol("p") * s2, "symbols ['p']"),
    (lambda: sp.Eq(s2, 1), "sympy expression"),
])
def test_train_variance_wrong_answers(answer, hint):
    assert_fails(check_train_variance, answer, hint)


def test_train_variance_reference_and_starter(capsys):
    assert_passes(capsys, check_train_variance, reference_variance)
    assert_passes(capsys, check_train_variance, lambda: sp.Symbol("sigma^2") / q + mu**2 * (1 - q) / q)
    assert_fails(check_train_variance, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 2


def reference_k(mu_, sigma2, p):
    q_ = 1 - p
    return math.sqrt(db.bn_train_variance(mu_, sigma2, q_) / sigma2)


@pytest.mark.parametrize("answer, hint", [
    (lambda m, s, p: reference_k(m, s, p) ** 2, "that is k²"),
    (lambda m, s, p: 1 / reference_k(m, s, p), "that is 1/k"),
    (lambda m, s, p: math.sqrt(1 / (1 - p)), "mean 0"),
    (lambda m, s, p: reference_k(m, s, 1 - p), "p as the keep probability"),
    (lambda m, s, p: 1.0, "you give k = 1"),
    (lambda m, s, p: "k", "should return a number"),
])
def test_scale_error_wrong_answers(answer, hint):
    assert_fails(check_scale_error, answer, hint)


def test_scale_error_reference_and_starter(capsys):
    assert_passes(capsys, check_scale_error, reference_k)
    assert_passes(capsys, check_scale_error, lambda m, s, p: torch.tensor(reference_k(m, s, p)))
    assert_fails(check_scale_error, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3


def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def reference_recalibration(model, batches):
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in bn_layers(model)}
    model.eval()
    for m in bn_layers(model):
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for m, mode in modes.items():
        m.training = mode
    for m, momentum in momenta.items():
        m.momentum = momentum


def make_wrong(*, train_mode=False, reset=True, momentum=None, restore=True, bn_train=True):
    def recalibrate(model, batches):
        modes = {m: m.training for m in model.modules()}
        model.train(train_mode)
        for m in bn_layers(model):
            if reset:
                m.reset_running_stats()
            m.momentum = momentum
            m.train(bn_train)
        with torch.no_grad():
            for x in batches:
                model(x)
        for m in bn_layers(model):
            m.momentum = 0.1
        if restore:
            for m, mode in modes.items():
                m.training = mode
    return recalibrate


def with_grad_step(model, batches):
    reference_recalibration(model, batches)
    with torch.no_grad():
        model[0].weight.add_(0.01)


def momentum_not_restored(model, batches):
    reference_recalibration(model, batches)
    for m in bn_layers(model):
        m.momentum = None


@pytest.mark.parametrize("answer, hint", [
    (make_wrong(train_mode=True), "dropout was on"),
    (make_wrong(momentum=0.1), "exponential average"),
    (make_wrong(reset=False), "reset_running_stats"),
    (make_wrong(restore=False), "restore it at the end"),
    (make_wrong(bn_train=False), "update them only in training mode"),
    (make_wrong(bn_train=False, reset=False), "did not change"),
    (with_grad_step, "parameters changed"),
    (momentum_not_restored, "momentum None afterwards"),
])
def test_recalibration_wrong_answers(answer, hint):
    assert_fails(check_recalibration, answer, hint)


def test_recalibration_reference_and_starter(capsys):
    assert_passes(capsys, check_recalibration, reference_recalibration)
    assert_passes(capsys, check_recalibration, db.recalibrate_batchnorm)
    assert_fails(check_recalibration, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 4


def build(p, dropout_at=(), last_dropout=True, widths=(64, 64, 64), final_dropout=False):
    layers = []
    for i, n_in in enumerate((64, *widths[:-1])):
        if i in dropout_at:
            layers.append(nn.Dropout(p))
        layers += [nn.Linear(n_in, widths[i]), nn.BatchNorm1d(widths[i]), nn.ReLU()]
    if last_dropout:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(widths[-1], 10))
    if final_dropout:
        layers.append(nn.Dropout(p))
    return nn.Sequential(*layers)


class Nested(nn.Module):  # not a Sequential: the checker must follow the forward pass
    def __init__(self, p):
        super().__init__()
        self.body = build(p, last_dropout=False)[:-1]
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.drop(self.body(x)))


@pytest.mark.parametrize("answer, hint", [
    (lambda p: build(p, dropout_at=(1, 2), last_dropout=False), "still runs before"),
    (lambda p: build(p, dropout_at=(2,)), "still runs before"),
    (lambda p: build(p, last_dropout=False), "no dropout left"),
    (lambda p: build(0.5), "has rate 0.5"),
    (lambda p: build(p, last_dropout=False, final_dropout=True), "drops logits"),
    (lambda p: nn.Sequential(nn.Dropout(p), nn.Linear(64, 10)), "three BatchNorm"),
    (lambda p: nn.Sequential(nn.Linear(32, 10)), "did not run"),
    (lambda p: "model", "torch.nn.Module"),
])
def test_dropout_placement_wrong_answers(answer, hint):
    assert_fails(check_dropout_placement, answer, hint)


def test_dropout_placement_reference_and_starter(capsys):
    assert_passes(capsys, check_dropout_placement, lambda p: build(p))
    assert_passes(capsys, check_dropout_placement, Nested)
    assert_fails(check_dropout_placement, starter, "not written yet")
