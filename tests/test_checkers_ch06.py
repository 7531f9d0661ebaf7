"""Chapter 6 checkers: the reference passes, the blank starter fails with "not written yet",
typical wrong answers (written as a student would) fail with their specific hint, and correct
answers written differently from the reference pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn
from torch.nn import functional as F

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
m, e = sp.symbols("m varepsilon")


# --------------------------------------------------------------------------------------------
# exercise 1: derive Var[x~] (the answer must be computed with derivations.expectation/variance)


def derived(x_tilde_of, keep=q, use_variance=False, unit=mu + e):
    """A derivation as a student writes it: the mask's keep probability and the dropped unit vary."""
    def derive():
        dist = {m: derivations.Bernoulli(keep), e: derivations.ZeroMeanNoise(s2)}
        x_tilde = x_tilde_of(m * unit)
        if use_variance:
            return derivations.variance(x_tilde, dist)
        return derivations.expectation(x_tilde**2, dist) - derivations.expectation(x_tilde, dist) ** 2
    return derive


def reference_variance():
    return derived(lambda mx: mx / q)()


def second_moment_only():
    dist = {m: derivations.Bernoulli(q), e: derivations.ZeroMeanNoise(s2)}
    return derivations.expectation((m * (mu + e) / q) ** 2, dist)


@pytest.mark.parametrize("answer, hint", [
    # computed, but from a wrong model
    (derived(lambda mx: mx / q, keep=1 - q), "Bernoulli(1 - q)"),
    (derived(lambda mx: mx / q, keep=1 - q, use_variance=True), "Bernoulli(1 - q)"),
    (derived(lambda mx: mx / (1 - q), keep=1 - q), "q as the drop probability"),
    (derived(lambda mx: mx), "standard dropout"),
    (derived(lambda mx: mx / q, unit=mu), "leaves out the noise"),
    (second_moment_only, "that is E[x̃²]"),
    # typed in, not computed: the exercise says "let sympy compute it"
    (lambda: s2 / q + mu**2 * (1 - q) / q, "typed"),
    (lambda: (s2 + mu**2) / q - mu**2, "typed"),
    (lambda: sp.Rational(3), "typed"),
    (lambda: 3.0, "typed"),
    (lambda: s2 / q, "typed"),
    (lambda: sp.Symbol("p") * s2, "symbols ['p']"),
    (lambda: sp.Eq(s2, 1), "sympy expression"),
])
def test_train_variance_wrong_answers(answer, hint):
    assert_fails(check_train_variance, answer, hint)


def test_train_variance_fallback_names_a_point_where_the_answer_differs():
    # equal to the truth at q = 1/2 (the point the old message used): the message must show a point
    # where the two differ
    def wrong():
        derivations.expectation(m, {m: derivations.Bernoulli(q)})
        truth = s2 / q + mu**2 * (1 - q) / q
        return truth + (2 * q - 1) * mu**2
    message = assert_fails(check_train_variance, wrong, "your expression gives")
    numbers = [float(t) for t in message.replace(",", " ").split() if t.replace(".", "", 1).isdigit()]
    assert len(set(numbers[-2:])) == 2, message


def test_train_variance_correct_answers(capsys):
    assert_passes(capsys, check_train_variance, reference_variance)
    assert_passes(capsys, check_train_variance, derived(lambda mx: mx / q, use_variance=True))

    def in_steps_with_sigma_symbol():  # "sigma^2" as in the library, E[x~] and E[x~^2] separately
        s = sp.Symbol("sigma^2", positive=True)
        noise, mask = sp.Symbol("eps"), sp.Symbol("b")
        dist = {mask: derivations.Bernoulli(q), noise: derivations.ZeroMeanNoise(s)}
        first = derivations.expectation(mask * (mu + noise) / q, dist)
        second = derivations.expectation(mask**2 * (mu + noise) ** 2 / q**2, dist)
        return sp.factor(second - first**2)

    assert_passes(capsys, check_train_variance, in_steps_with_sigma_symbol)
    assert_fails(check_train_variance, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 2: predict the scale error k(mu, sigma2, p)


def reference_k(mu_, sigma2, p):
    q_ = 1 - p
    return math.sqrt(db.bn_train_variance(mu_, sigma2, q_) / sigma2)


LOOKUP = {(0.0, 1.0, 0.3): reference_k(0.0, 1.0, 0.3), (1.0, 1.0, 0.5): reference_k(1.0, 1.0, 0.5),
          (2.0, 0.5, 0.2): reference_k(2.0, 0.5, 0.2), (-1.0, 3.0, 0.6): reference_k(-1.0, 3.0, 0.6)}


@pytest.mark.parametrize("answer, hint", [
    (lambda m_, s, p: reference_k(m_, s, p) ** 2, "that is k²"),
    (lambda m_, s, p: 1 / reference_k(m_, s, p), "that is 1/k"),
    (lambda m_, s, p: math.sqrt(1 / (1 - p)), "mean 0"),
    (lambda m_, s, p: reference_k(m_, s, 1 - p), "p as the keep probability"),
    (lambda m_, s, p: math.sqrt(1 / (1 - p) + m_**2 * p / ((1 - p) * math.sqrt(s))), "you give k ="),
    (lambda m_, s, p: 1.0, "you give k = 1"),
    (lambda m_, s, p: LOOKUP.get((m_, s, p), 1.0), "you give k ="),  # a table of the published points
    (lambda m_, s, p: "k", "should be a number"),
    (lambda m_, s, p: float("nan"), "NaN"),
    (lambda m_, s, p: math.inf, "finite number"),
    (lambda m_, s, p: torch.ones(2), "one number"),
])
def test_scale_error_wrong_answers(answer, hint):
    assert_fails(check_scale_error, answer, hint)


def test_scale_error_correct_answers(capsys):
    assert_passes(capsys, check_scale_error, reference_k)
    assert_passes(capsys, check_scale_error, lambda m_, s, p: torch.tensor(reference_k(m_, s, p)))
    assert_passes(capsys, check_scale_error, lambda m_, s, p: np.float64(reference_k(m_, s, p)))
    assert_passes(capsys, check_scale_error,
                  lambda m_, s, p: torch.sqrt(torch.tensor(1 / (1 - p) + m_**2 * p / ((1 - p) * s))))
    assert_passes(capsys, check_scale_error,
                  lambda m_, s, p: sp.sqrt(sp.nsimplify(1 / (1 - p)) * (1 + sp.nsimplify(m_**2 * p / s))))
    assert_fails(check_scale_error, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3: recalibrate BatchNorm


def bn_layers(model):
    return [m_ for m_ in model.modules() if isinstance(m_, nn.BatchNorm1d)]


def reference_recalibration(model, batches):
    modes = {m_: m_.training for m_ in model.modules()}
    momenta = {m_: m_.momentum for m_ in bn_layers(model)}
    try:
        model.eval()
        for m_ in bn_layers(model):
            m_.reset_running_stats()
            m_.momentum = None
            m_.train()
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for m_, mode in modes.items():
            m_.training = mode
        for m_, momentum in momenta.items():
            m_.momentum = momentum


def pooled_with_hooks(model, batches):
    """Exact pooled statistics of every BatchNorm input, gathered by forward pre-hooks in one
    evaluation pass: a correct answer (the pooled variance, not the average of batch variances)."""
    norms = bn_layers(model)
    modes = {m_: m_.training for m_ in model.modules()}
    seen = {m_: [] for m_ in norms}
    handles = [m_.register_forward_pre_hook(lambda mod, args: seen[mod].append(args[0].detach()))
               for m_ in norms]
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        for m_, mode in modes.items():
            m_.training = mode
    for m_ in norms:
        z = torch.cat(seen[m_])
        m_.running_mean.copy_(z.mean(0))
        m_.running_var.copy_(z.var(0, unbiased=False))


def make_wrong(*, train_mode=False, reset=True, momentum=None, restore="each", bn_train=True,
               restore_momentum="each"):
    def recalibrate(model, batches):
        modes = {m_: m_.training for m_ in model.modules()}
        was = model.training
        momenta = {m_: m_.momentum for m_ in bn_layers(model)}
        model.train(train_mode)
        for m_ in bn_layers(model):
            if reset:
                m_.reset_running_stats()
            m_.momentum = momentum
            m_.train(bn_train)
        with torch.no_grad():
            for x in batches:
                model(x)
        for m_ in bn_layers(model):
            if restore_momentum == "each":
                m_.momentum = momenta[m_]
            elif restore_momentum == "default":
                m_.momentum = 0.1
        if restore == "each":
            for m_, mode in modes.items():
                m_.training = mode
        elif restore == "top":
            model.train(was)
    return recalibrate


def first_layer_only(model, batches):  # recalibrates model[1] and forgets the layer behind dropout
    modes = {m_: m_.training for m_ in model.modules()}
    bn, momentum = model[1], model[1].momentum
    model.eval()
    bn.reset_running_stats()
    bn.momentum = None
    bn.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    bn.momentum = momentum
    for m_, mode in modes.items():
        m_.training = mode


def with_grad_step(model, batches):
    reference_recalibration(model, batches)
    with torch.no_grad():
        model[0].weight.add_(0.01)


@pytest.mark.parametrize("answer, hint", [
    (make_wrong(train_mode=True), "dropout was on"),
    (make_wrong(momentum=0.1), "exponential average"),
    (make_wrong(reset=False), "reset_running_stats"),
    (make_wrong(restore="none"), "restore it at the end"),
    (make_wrong(restore="top"), "every submodule to one mode"),
    (make_wrong(restore_momentum="default"), "own momentum"),
    (make_wrong(restore_momentum="none"), "own momentum"),
    (make_wrong(bn_train=False), "update them only in training mode"),
    (make_wrong(bn_train=False, reset=False), "did not change"),
    (with_grad_step, "parameters changed"),
    (first_layer_only, "put every BatchNorm layer"),
])
def test_recalibration_wrong_answers(answer, hint):
    assert_fails(check_recalibration, answer, hint)


def test_recalibration_correct_answers(capsys):
    assert_passes(capsys, check_recalibration, reference_recalibration)
    assert_passes(capsys, check_recalibration, db.recalibrate_batchnorm)
    assert_passes(capsys, check_recalibration, pooled_with_hooks)
    assert_fails(check_recalibration, starter, "not written yet")


def test_recalibration_leaves_the_caller_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_recalibration(reference_recalibration)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# exercise 4: move dropout behind the last BatchNorm layer


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


class Functional(nn.Module):  # dropout by F.dropout in forward, after the last BatchNorm
    def __init__(self, p):
        super().__init__()
        self.p = p
        self.body = build(p, last_dropout=False)[:-1]
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(F.dropout(self.body(x), self.p, self.training))


class FunctionalEarly(Functional):  # F.dropout, but in front of the BatchNorm layers
    def forward(self, x):
        return self.head(self.body(F.dropout(x, self.p, self.training)))


@pytest.mark.parametrize("answer, hint", [
    (lambda p: build(p, dropout_at=(1, 2), last_dropout=False), "still runs before"),
    (lambda p: build(p, dropout_at=(2,)), "still runs before"),
    (FunctionalEarly, "still runs before"),
    (lambda p: build(p, last_dropout=False), "no dropout left"),
    (lambda p: build(0.3), "use the rate p"),  # the default rate of the checker, hard-coded
    (lambda p: build(0.5), "use the rate p"),
    (lambda p: build(p, last_dropout=False, final_dropout=True), "drops logits"),
    (lambda p: nn.Sequential(nn.Dropout(p), nn.Linear(64, 10)), "three BatchNorm"),
    (lambda p: nn.Sequential(nn.Linear(32, 10)), "did not run"),
    (lambda p: "model", "torch.nn.Module"),
])
def test_dropout_placement_wrong_answers(answer, hint):
    assert_fails(check_dropout_placement, answer, hint)


def test_dropout_placement_correct_answers(capsys):
    assert_passes(capsys, check_dropout_placement, lambda p: build(p))
    assert_passes(capsys, check_dropout_placement, Nested)
    assert_passes(capsys, check_dropout_placement, Functional)
    assert_fails(check_dropout_placement, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# answers that passed an earlier version of the checkers


_mu, _s2, _q = sp.symbols("mu sigma2 q")
_m, _eps = sp.symbols("m varepsilon")


def typed_next_to_a_call():  # one irrelevant call, then the formula typed in
    derivations.expectation(_m, {_m: derivations.Bernoulli(_q)})
    return _s2 / _q + _mu**2 * (1 - _q) / _q


def nsimplified_next_to_a_call():
    derivations.variance(_m, {_m: derivations.Bernoulli(_q)})
    return sp.nsimplify(_s2 / _q + _mu**2 / _q - _mu**2)


@pytest.mark.parametrize("answer", [typed_next_to_a_call, nsimplified_next_to_a_call])
def test_train_variance_typed_next_to_an_irrelevant_call(answer):
    assert_fails(check_train_variance, answer, "does not follow the mask distribution", "typed in")


def test_train_variance_computed_in_pieces_passes(capsys):
    def scaled_outside():  # the 1/q² outside the variance: still computed
        return derivations.variance(_m * (_mu + _eps), {_m: derivations.Bernoulli(_q),
                                                        _eps: derivations.ZeroMeanNoise(_s2)}) / _q**2
    assert_passes(capsys, check_train_variance, scaled_outside)


def _recalibrate_then(change):
    def answer(model, batches):
        reference_recalibration(model, batches)
        change(bn_layers(model))
    return answer


def _bigger_eps(norms):
    for m in norms:
        m.eps = 1e-3


def _hook_left(norms):  # a statistics hook registered and never removed
    norms[0].register_forward_hook(lambda module, args, out: None)


def _no_gradients(norms):  # requires_grad switched off instead of torch.no_grad()
    for m in norms:
        m.weight.requires_grad_(False)


@pytest.mark.parametrize("change, hint", [
    (_bigger_eps, "eps, affine, track_running_stats"),
    (_hook_left, "left hooks registered"),
    (_no_gradients, "changed requires_grad"),
])
def test_recalibration_must_leave_the_rest_alone(change, hint):
    assert_fails(check_recalibration, _recalibrate_then(change), hint)


class _LayersNet(nn.Module):
    def __init__(self, p, widths=(64, 64, 64), training_flag=True):
        super().__init__()
        self.p, self.training_flag = p, training_flag
        self.hidden = nn.ModuleList(nn.Linear(n_in, 64) for n_in in widths)
        self.norms = nn.ModuleList(nn.BatchNorm1d(64) for _ in widths)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        for linear, norm in zip(self.hidden, self.norms):
            x = torch.relu(norm(linear(x)))
        if self.training_flag:
            return self.out(F.dropout(x, self.p, self.training))
        return self.out(F.dropout(x, self.p))  # training defaults to True: on at test time too


def _fixed_with(dropout, widths=(64, 64, 64, 10)):
    def build(p):
        layers, n_in = [], 64
        for width in widths[:-1]:
            layers += [nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU()]
            n_in = width
        return nn.Sequential(*layers, dropout(p), nn.Linear(n_in, widths[-1]))
    return build


@pytest.mark.parametrize("answer, hint", [
    (lambda p: _LayersNet(p, training_flag=False), "still on in eval mode"),
    (_fixed_with(nn.Dropout1d), "channel dropout"),
    (_fixed_with(nn.Dropout2d), "channel dropout"),
    (_fixed_with(nn.Dropout, widths=(64, 8, 8, 10)), "weight shapes"),
])
def test_dropout_placement_more_wrong_answers(answer, hint):
    assert_fails(check_dropout_placement, answer, hint)


def test_dropout_placement_functional_with_training_flag_passes(capsys):
    assert_passes(capsys, check_dropout_placement, lambda p: _LayersNet(p))
    assert_passes(capsys, check_dropout_placement, lambda p: _fixed_with(nn.Dropout)(p).eval())


# --------------------------------------------------------------------------------------------
# exercise 5: AlphaDropout from scratch

from dropoutbook.exercises import check_alpha_dropout  # noqa: E402

LAMBDA, ALPHA = 1.0507009873554805, 1.6732632423543772
SAT = -LAMBDA * ALPHA


def alpha_reference(x, p):
    q = 1 - p
    keep = (torch.rand(x.shape, dtype=x.dtype) >= p).to(x.dtype)
    a = (q + SAT**2 * q * (1 - q)) ** -0.5
    b = -a * (1 - q) * SAT
    return a * (keep * x + (1 - keep) * SAT) + b


def alpha_with_where(x, p):
    """Correct, written differently: a kept / dropped branch with torch.where and the dropped value a*q*alpha'."""
    q = 1.0 - p
    var = q * (1 + q * (1 - q) * SAT**2 / q)
    a = 1 / math.sqrt(var)
    keep = torch.rand_like(x) < q
    return torch.where(keep, a * x - a * (1 - q) * SAT, torch.full_like(x, a * q * SAT))


def alpha_variant(*, a_of=None, b_of=None, dropped=SAT, keep_prob=lambda p: 1 - p, shared=False, fixed_seed=False,
                  in_place=False, zero_after=False):
    def fn(x, p):
        q = 1 - p
        a = a_of(q) if a_of else (q + SAT**2 * q * (1 - q)) ** -0.5
        b = b_of(q, a) if b_of else -a * (1 - q) * SAT
        g = torch.Generator().manual_seed(0) if fixed_seed else None
        shape = x.shape[-1:] if shared else x.shape
        keep = (torch.rand(shape, generator=g, dtype=x.dtype) < keep_prob(p)).to(x.dtype)
        if zero_after:
            return keep * (a * x + b)
        if in_place:
            x.mul_(keep).add_((1 - keep) * dropped)
            return a * x + b
        return a * (keep * x + (1 - keep) * dropped) + b
    return fn


def test_alpha_reference_and_a_second_correct_answer_pass(capsys):
    assert_passes(capsys, check_alpha_dropout, alpha_reference)
    assert_passes(capsys, check_alpha_dropout, alpha_with_where)


def test_alpha_starter_fails():
    assert_fails(check_alpha_dropout, starter, "not written yet")


@pytest.mark.parametrize("fn, hint", [
    (alpha_variant(a_of=lambda q: 1.0, b_of=lambda q, a: 0.0), "no affine correction"),
    (alpha_variant(a_of=lambda q: ((1 - q) + SAT**2 * q * (1 - q)) ** -0.5, b_of=lambda q, a: -a * q * SAT),
     "q and 1 − q swapped"),
    (alpha_variant(a_of=lambda q: (q + SAT**2 * (1 - q)) ** -0.5), "second moment"),
    (alpha_variant(a_of=lambda q: (q + ALPHA**2 * q * (1 - q)) ** -0.5, b_of=lambda q, a: a * (1 - q) * ALPHA,
                   dropped=-ALPHA), "the λ is missing"),
    (alpha_variant(dropped=0.0), "set to 0"),
    (alpha_variant(zero_after=True), "dropped units are 0"),
    (alpha_variant(keep_prob=lambda p: p), "that is 1 − p"),
    (alpha_variant(shared=True), "one mask for every row"),
    (alpha_variant(fixed_seed=True), "same entries on two calls"),
    (alpha_variant(in_place=True), "in place"),
    (lambda x, p: F.alpha_dropout(x, p, training=True), "torch.nn.functional.alpha_dropout"),
    (lambda x, p: db.alpha_dropout(x, p), "dropoutbook.alpha_dropout"),
], ids=["no-affine", "q-swapped", "second-moment", "alpha-not-lambda-alpha", "dropped-to-zero",
        "zero-after-affine", "drop-keep-swapped", "shared-mask", "same-mask-every-call", "in-place", "torch", "library"])
def test_alpha_typical_wrong_answers_fail_with_their_hint(fn, hint):
    assert_fails(check_alpha_dropout, fn, hint)


def test_alpha_dropped_units_left_at_saturation_fail():
    def fn(x, p):
        q = 1 - p
        a = (q + SAT**2 * q * (1 - q)) ** -0.5
        keep = (torch.rand(x.shape, dtype=x.dtype) >= p).to(x.dtype)
        return keep * (a * x - a * (1 - q) * SAT) + (1 - keep) * SAT
    assert_fails(check_alpha_dropout, fn, "applies to the dropped units too")


def alpha_masked(*, mask_shape=None, hard_p=None, dropped=SAT, a_of=None, b_of=None):
    """AlphaDropout with one deliberate mistake: a mask of another shape (broadcast), a, b of a fixed rate, ..."""
    def fn(x, p):
        q = 1 - (p if hard_p is None else hard_p)
        a = a_of(q) if a_of else (q + SAT**2 * q * (1 - q)) ** -0.5
        b = b_of(q, a) if b_of else -a * (1 - q) * SAT
        shape = mask_shape(x) if mask_shape else x.shape
        keep = (torch.rand(shape, dtype=x.dtype) >= p).to(x.dtype)
        return a * (keep * x + (1 - keep) * dropped) + b
    return fn


@pytest.mark.parametrize("fn, hint", [
    (alpha_masked(a_of=lambda q: 1 / (q + SAT**2 * q * (1 - q))), "the square root is missing"),
    (alpha_masked(a_of=lambda q: q**-0.5), "inverted dropout's correction"),
    (alpha_masked(a_of=lambda q: (1 + SAT**2 * q * (1 - q)) ** -0.5), "uses Var[m·x] = 1"),
    (alpha_masked(b_of=lambda q, a: a * (1 - q) * SAT), "b has the wrong sign"),
    (alpha_masked(b_of=lambda q, a: -(1 - q) * SAT), "lacks the factor a"),
    (alpha_masked(b_of=lambda q, a: a * (1 - q) * SAT, dropped=-SAT), "α' has the wrong sign"),
    (alpha_masked(dropped=-SAT), "set to +λα"),
    (alpha_masked(mask_shape=lambda x: x.shape[:1] + (1,) * (x.dim() - 1)), "along dimension 1"),
    (alpha_masked(mask_shape=lambda x: x.shape[:2] + (1,) * (x.dim() - 2) if x.dim() > 2 else x.shape),
     "one mask entry for all"),
    (alpha_masked(hard_p=0.1), "AlphaDropout's for p = 0.1"),
    (lambda x, p: F.feature_alpha_dropout(x, p, training=True), "torch.nn.functional.feature_alpha_dropout"),
    (lambda x, p: torch._VF.alpha_dropout(x, p, True), "torch._VF.alpha_dropout"),
    (lambda x, p: nn.AlphaDropout(p)(x), "torch.nn.functional.alpha_dropout"),
], ids=["a-no-sqrt", "a-inverted-dropout", "var-of-mx-one", "b-sign", "b-without-a", "saturation-sign",
        "dropped-sign", "mask-per-row", "mask-per-channel", "hard-coded-p", "feature-alpha", "torch-VF", "nn-module"])
def test_alpha_more_wrong_answers_fail_with_their_hint(fn, hint):
    assert_fails(check_alpha_dropout, fn, hint)
