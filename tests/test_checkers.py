"""Checker layer of chapter 1: every checker passes the reference and correct answers written
differently, fails the blank starter, and fails the typical wrong answers a student writes, each with
the message that names its mistake. Also the shared checker helpers and the student-copy generator.
"""

from __future__ import annotations

import copy
import functools
import json
import re

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations, inverted_dropout, standard_dropout
from dropoutbook.exercises import (
    NAIVE_PREDICTOR_EXERCISE,
    CheckFailed,
    call_student,
    check_dropout_variance,
    check_inverted_dropout,
    check_naive_predictor_terms,
    check_test_time_scaling,
    make_student_copy,
    passed,
)
from dropoutbook.exercises.student import STARTER, student_notebook
from helpers import assert_fails, assert_passes, starter


def test_check_failed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


# --------------------------------------------------------------------------------------------
# implement: inverted dropout. Correct answers, written in several ways


def ref_dropout(x, p, training=True):
    if not training or p == 0:
        return x.clone()
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep / (1 - p)


def bernoulli_dropout(x, p, training=True):
    if not training:
        return x
    return x * torch.empty_like(x).bernoulli_(1 - p) / (1 - p)


def where_dropout(x, p, training=True):
    if training:
        return torch.where(torch.rand(x.shape, dtype=x.dtype) < p, torch.zeros_like(x), x / (1 - p))
    return x


def flat_dropout(x, p, training=True):  # one mask for the flattened tensor, reshaped
    if not training:
        return x.clone()
    mask = torch.rand(x.numel()).reshape(x.shape) > p
    return x * mask.to(x.dtype) * (1.0 / (1.0 - p))


@pytest.mark.parametrize("fn", [ref_dropout, bernoulli_dropout, where_dropout, flat_dropout])
def test_check_inverted_dropout_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_inverted_dropout, fn)


def test_check_inverted_dropout_starter_not_written_yet():
    assert_fails(check_inverted_dropout, starter, "not written yet", "NotImplementedError")


# typical wrong answers


def no_scaling(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype)


def keep_with_p(x, p, training=True):  # drop and keep probabilities swapped
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) < p).to(x.dtype) / (1 - p)


def bernoulli_p(x, p, training=True):  # the mask written as Bernoulli(p): keeps with probability p
    if not training:
        return x.clone()
    return x * torch.bernoulli(torch.full_like(x, p)) / (1 - p)


def multiply_by_keep(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype) * (1 - p)


def divide_by_p(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype) / p


def hard_coded_rate(x, p, training=True):  # p = 0.3 typed in
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= 0.3).to(x.dtype) / 0.7


def hard_coded_mask_rate(x, p, training=True):  # the right scale, but the mask uses 0.3
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= 0.3).to(x.dtype) / (1 - p)


def shared_over_batch(x, p, training=True):  # one mask of the last dimension, shared by every row
    if not training:
        return x.clone()
    keep = (torch.rand(x.shape[-1], dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def one_draw_per_row(x, p, training=True):  # one decision per row, shared by its features
    if not training:
        return x.clone()
    keep = (torch.rand(*x.shape[:-1], 1, dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def one_draw_per_example(x, p, training=True):  # one decision per example of a batch, shared by its features
    if not training:
        return x.clone()
    keep = (torch.rand(x.shape[0], *[1] * (x.ndim - 1), dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def one_dimensional_only(x, p, training=True):  # works for a vector, breaks on a batch
    if not training:
        return x.clone()
    keep = (torch.rand(len(x), dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def with_functional_dropout(x, p, training=True):  # the forbidden shortcut
    return torch.nn.functional.dropout(x, p, training=training)


def with_dropout_module(x, p, training=True):  # the same shortcut, through nn.Dropout
    layer = torch.nn.Dropout(p)
    layer.train(training)
    return layer(x)


def with_torch_dropout(x, p, training=True):
    return torch.dropout(x, p, training)


def with_the_library(x, p, training=True):
    return db.inverted_dropout(x, p, training=training)


def in_place(x, p, training=True):
    if not training:
        return x
    x.mul_((torch.rand_like(x) >= p).to(x.dtype) / (1 - p))
    return x


def same_mask_every_call(x, p, training=True):
    if not training:
        return x.clone()
    g = torch.Generator().manual_seed(0)
    keep = (torch.rand(x.shape, generator=g, dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def scales_at_test_time(x, p, training=True):
    if not training:
        return x * (1 - p)
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)


def random_scales(x, p, training=True):
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep * (1 + torch.rand_like(x)) if training else x.clone()


def float64_mask(x, p, training=True):  # a float32 input comes back as float64
    if not training:
        return x.clone()
    return x * (torch.rand(x.shape, dtype=torch.float64) >= p).double() / (1 - p)


def returns_numpy(x, p, training=True):
    return ref_dropout(x, p, training).numpy()


def returns_wrong_shape(x, p, training=True):
    return ref_dropout(x, p, training)[:-1]


def crashes(x, p, training=True):
    return x @ torch.ones(3, 3)


def p_zero_not_identity(x, p, training=True):
    if p == 0:
        return torch.zeros_like(x)
    return ref_dropout(x, p, training)


@pytest.mark.parametrize("fn, hints", [
    (no_scaling, ["divide by 1 - p", "(1-p)·x"]),
    (keep_with_p, ["probability 1 - p", "dropped with probability p"]),
    (bernoulli_p, ["probability 1 - p", "dropped with probability p"]),
    (multiply_by_keep, ["multiplied by 1 - p", "divides them by 1 - p"]),
    (divide_by_p, ["divided by p", "keep probability 1 - p"]),
    (hard_coded_rate, ["the same factor for p =", "hard-coded"]),
    (hard_coded_mask_rate, ["does not change with p", "hard-coded"]),
    (shared_over_batch, ["the same mask for every", "dimension 0", "torch.rand_like(x)"]),
    (one_draw_per_row, ["one single draw", "one draw per element"]),
    (one_draw_per_example, ["dimension 1", "one draw per element"]),
    (one_dimensional_only, ["on an input of shape", "raised RuntimeError"]),
    (with_functional_dropout, ["torch.nn.functional.dropout", "forbids"]),
    (with_dropout_module, ["torch.nn.functional.dropout", "forbids"]),
    (with_torch_dropout, ["torch.dropout", "forbids"]),
    (with_the_library, ["dropoutbook.inverted_dropout", "forbids"]),
    (in_place, ["changed its input x in place"]),
    (same_mask_every_call, ["dropped exactly the same units", "new random mask"]),
    (scales_at_test_time, ["training=False", "should equal the input"]),
    (random_scales, ["different factors"]),
    (float64_mask, ["dtype torch.float32", "got torch.float64"]),
    (returns_numpy, ["should return a torch.Tensor", "ndarray"]),
    (returns_wrong_shape, ["input's shape"]),
    (crashes, ["raised RuntimeError"]),
    (p_zero_not_identity, ["p = 0"]),
], ids=lambda v: getattr(v, "__name__", "hints"))
def test_check_inverted_dropout_rejects_typical_mistakes(fn, hints):
    assert_fails(check_inverted_dropout, fn, *hints)


# wrong answers whose masks have the right marginals but reuse their draws, or that cut the gradient


def same_mask_for_two_halves(x, p, training=True):  # the second half of the batch repeats the first
    if not training:
        return x.clone()
    half = torch.rand((x.shape[0] // 2,) + x.shape[1:], dtype=x.dtype) >= p
    mask = torch.cat([half, half]) if x.shape[0] % 2 == 0 else torch.rand_like(x) >= p
    return x * mask / (1 - p)


def interleaved_mask(x, p, training=True):  # each draw used for two neighbouring elements
    if not training:
        return x.clone()
    mask = (torch.rand(x.numel() // 2, dtype=x.dtype) >= p).repeat_interleave(2)
    return x * mask.reshape(x.shape) / (1 - p)


def antithetic_mask(x, p, training=True):  # u for one half, 1 - u for the other: right marginals, dependent
    if not training:
        return x.clone()
    u = torch.rand(x.numel() // 2, dtype=x.dtype)
    return x * (torch.cat([u, 1 - u]) >= p).reshape(x.shape) / (1 - p)


def without_gradient(x, p, training=True):
    if not training:
        return x.clone()
    with torch.no_grad():
        return x * (torch.rand_like(x) >= p) / (1 - p)


def through_numpy(x, p, training=True):
    if not training:
        return x.clone()
    a = x.detach().numpy()
    return torch.from_numpy(a * (np.random.default_rng().random(a.shape) >= p) / (1 - p)).to(x.dtype)


def mask_depends_on_x(x, p, training=True):  # the right values, but the mask is built from x with a gradient
    if not training:
        return x.clone()
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep / (1 - p) + (x - x.detach()) * keep


@pytest.mark.parametrize(("fn", "hints"), [
    (same_mask_for_two_halves, ["not independent", "the same mask for two halves"]),
    (interleaved_mask, ["not independent", "1 apart", "interleaved"]),
    (antithetic_mask, ["not independent", "u and 1 - u"]),
    (without_gradient, ["no gradient back to x", "torch.no_grad()"]),
    (through_numpy, ["no gradient back to x", "NumPy"]),
    (mask_depends_on_x, ["gradient of your output", "1/(1-p)"]),
], ids=lambda v: getattr(v, "__name__", "hints"))
def test_check_inverted_dropout_rejects_dependent_draws_and_a_cut_gradient(fn, hints):
    assert_fails(check_inverted_dropout, fn, *hints)
    assert_fails(check_test_time_scaling, fn, *hints)


def returns_x_itself_in_eval(x, p, training=True):  # torch's own dropout does this: allowed
    if not training or p == 0:
        return x
    return x.masked_fill(torch.rand_like(x) < p, 0) / (1 - p)


def test_check_inverted_dropout_accepts_x_itself_in_eval(capsys):
    assert_passes(capsys, check_inverted_dropout, returns_x_itself_in_eval)


def test_check_inverted_dropout_reports_swapped_probability_with_the_actual_fraction():
    message = assert_fails(check_inverted_dropout, keep_with_p, "with p = ")
    p = float(message.split("with p = ")[1].split(":")[0])
    shown = float(message.split("%")[0]) / 100
    assert abs(shown - (1 - p)) < 0.01  # the fraction of zeros that the swapped mask gives


def test_check_inverted_dropout_restores_the_forbidden_functions_also_on_failure():
    before = (torch.nn.functional.dropout, torch.dropout, db.inverted_dropout, db.masks.inverted_dropout)
    assert_fails(check_inverted_dropout, with_functional_dropout, "forbids")
    assert_fails(check_inverted_dropout, crashes, "raised")
    assert (torch.nn.functional.dropout, torch.dropout, db.inverted_dropout, db.masks.inverted_dropout) == before
    x = torch.ones(1000)
    assert (torch.nn.functional.dropout(x, 0.5) == 0).any()  # really the original again


def test_check_inverted_dropout_draws_its_rates_reproducibly():
    first = assert_fails(check_inverted_dropout, hard_coded_rate)
    second = assert_fails(check_inverted_dropout, hard_coded_rate)
    assert first == second
    rates = [float(r) for r in re.findall(r"p = (0\.\d+)", first)]
    assert len(rates) >= 2 and all(r not in (0.3, 0.5) for r in rates)


# --------------------------------------------------------------------------------------------
# derive: E and Var of an inverted-dropout unit, for the mask distribution the checker passes

P, H = derivations.drop_rate, derivations.activation


def ref_moments(mask):
    m = sp.Symbol("m")
    unit = m * H / (1 - P)
    mean = derivations.expectation(unit, {m: mask})
    return {"mean": mean, "variance": sp.simplify(derivations.expectation(unit**2, {m: mask}) - mean**2)}


def moments_with_variance_function(mask):
    m = sp.Symbol("m", nonnegative=True)
    p, h = sp.symbols("p h")  # plain symbols, as a student may write them
    unit = h * m / (1 - p)
    return {"variance": derivations.variance(unit, {m: mask}), "mean": derivations.expectation(unit, {m: mask})}


def moments_by_enumeration(mask):
    m = sp.Symbol("m")
    unit = m * H / (1 - P)
    first = derivations.expectation(unit, {m: mask}, method="enumerate")
    second = derivations.expectation(unit**2, {m: mask}, method="enumerate")
    return {"mean": sp.factor(first), "variance": sp.expand(second - first**2)}  # not simplified


@pytest.mark.parametrize("fn", [ref_moments, moments_with_variance_function, moments_by_enumeration])
def test_check_dropout_variance_passes_correct_derivations(capsys, fn):
    assert_passes(capsys, check_dropout_variance, fn)


def test_check_dropout_variance_starter_not_written_yet():
    assert_fails(check_dropout_variance, starter, "not written yet")


def typed(mean, variance):
    return lambda mask: {"mean": mean, "variance": variance}


def fixed_distribution(mask):  # computed, but with its own distribution instead of the argument
    return ref_moments(derivations.Bernoulli(1 - P))


def swapped_mask(mask):  # m ~ Bernoulli(p): keeps a unit with probability p
    return ref_moments(derivations.Bernoulli(P))


def standard_unit(mask):  # no scaling
    m = sp.Symbol("m")
    mean = derivations.expectation(m * H, {m: mask})
    return {"mean": mean, "variance": derivations.expectation((m * H) ** 2, {m: mask}) - mean**2}


def second_moment_only(mask):
    m = sp.Symbol("m")
    unit = m * H / (1 - P)
    return {"mean": derivations.expectation(unit, {m: mask}), "variance": derivations.expectation(unit**2, {m: mask})}


def sign_error(mask):
    m = sp.Symbol("m")
    unit = m * H / (1 - P)
    mean = derivations.expectation(unit, {m: mask})
    return {"mean": mean, "variance": derivations.expectation(unit**2, {m: mask}) + mean**2}


def scaled_by_keep_of_mask(mask):  # divides by the keep probability of the passed distribution
    m = sp.Symbol("m")
    unit = m * H / mask.keep
    mean = derivations.expectation(unit, {m: mask})
    return {"mean": mean, "variance": derivations.expectation(unit**2, {m: mask}) - mean**2}


def old_api_variance_only(mask):
    return ref_moments(mask)["variance"]


@pytest.mark.parametrize("fn, hints", [
    (typed(H, P * H**2 / (1 - P)), ["typed in", "the argument mask"]),
    (typed(H, sp.sympify("p*h**2/(1-p)")), ["typed in"]),
    (fixed_distribution, ["typed in", "computed with a fixed distribution", "{m: mask}"]),
    (swapped_mask, ["mean", "p·h/(1-p)", "Bernoulli(p)"]),
    (standard_unit, ["mean", "(1-p)·h", "divide by 1 - p"]),
    (second_moment_only, ["variance", "E[h~²] only", "E[h~]²"]),
    (sign_error, ["variance", "E[h~²] − E[h~]²"]),
    (scaled_by_keep_of_mask, ["keep probability of mask", "m·h/(1-p)"]),
    (typed(H, P * (1 - P) * H**2), ["variance", "standard dropout"]),
    (typed(H, (1 - P) / P * H**2), ["variance", "p is the drop probability"]),
    (typed(H, P * H**2 / (1 - P) ** 2), ["variance", "one factor 1-p cancels"]),
    (typed(H, P**2 * H**2), ["variance", "your expression gives 0.25", "is 1 there"]),
    (typed(H, 0.4286 * H**2), ["variance", "your expression gives"]),
    (typed(H, P * sp.Symbol("x") ** 2 / (1 - P)), ["uses the symbols ['x']"]),
    (typed(H, "p*h**2/(1-p)"), ["got str"]),
    (old_api_variance_only, ["should return a dict", "'mean'", "'variance'"]),
    (lambda mask: {"mean": H, "var": P}, ["exactly the keys ['mean', 'variance']"]),
    (typed(sp.true, H), ["not an equation or a truth value"]),
    (typed(H, sp.Eq(H, P)), ["not an equation or a truth value"]),
], ids=["typed", "typed-parsed", "fixed-distribution", "swapped", "standard", "second-moment", "sign",
        "scaled-by-keep", "standard-variance", "keep-convention", "extra-factor", "other", "float",
        "unknown-symbol", "str", "variance-only", "wrong-keys", "true", "Eq"])
def test_check_dropout_variance_rejects_typical_mistakes(fn, hints):
    assert_fails(check_dropout_variance, fn, *hints)


def test_check_dropout_variance_passes_a_bernoulli_mask_distribution_first():
    seen = []

    def spy(mask):
        seen.append(mask)
        return ref_moments(mask)

    check_dropout_variance(spy)
    assert seen[0] == derivations.Bernoulli(1 - P)
    assert len(seen) >= 2 and all(isinstance(d, derivations.Bernoulli) for d in seen)


# --------------------------------------------------------------------------------------------
# find the bug: test-time scaling


def buggy_original(x, p, training=True):
    """The function of the exercise: scales by 1/(1-p) in training AND by (1-p) at test time."""
    if training:
        keep = (torch.rand_like(x) >= p).to(x.dtype)
        return x * keep / (1 - p)
    return x * (1 - p)


def fix_removes_training_scale(x, p, training=True):
    """Removes the training-time division instead (this is standard dropout)."""
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype)
    return x * (1 - p)


def fix_removes_both(x, p, training=True):
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype)
    return x.clone()


def fix_inconsistent(x, p, training=True):
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)
    return 2 * x


def fix_divides_at_test_time(x, p, training=True):  # "undoes" the scaling the wrong way round
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)
    return x / (1 - p)


def fix_with_hard_coded_rate(x, p, training=True):
    if training:
        return x * (torch.rand_like(x) >= 0.3).to(x.dtype) / 0.7
    return x.clone()


def fix_shared_over_batch(x, p, training=True):
    if training:
        return x * (torch.rand(x.shape[-1], dtype=x.dtype) >= p).to(x.dtype) / (1 - p)
    return x.clone()


def fix_returning_input(x, p, training=True):  # correct: the test-time output may be x itself
    if training:
        return torch.where(torch.rand_like(x) >= p, x / (1 - p), torch.zeros_like(x))
    return x


@pytest.mark.parametrize("fn", [ref_dropout, fix_returning_input, inverted_dropout])
def test_check_test_time_scaling_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_test_time_scaling, fn)


def test_check_test_time_scaling_starter_not_written_yet():
    assert_fails(check_test_time_scaling, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (buggy_original, ["(1-p)·x", "the test-time scaling by 1-p must go", "already divided by 1-p in training"]),
    (fix_removes_training_scale, ["this is standard dropout", "make the test-time output equal to x"]),
    (standard_dropout, ["this is standard dropout"]),
    (fix_removes_both, ["you removed the training-time scaling", "remove the test-time factor instead"]),
    (fix_inconsistent, ["must agree in expectation"]),
    (fix_divides_at_test_time, ["x/(1-p)", "must agree in expectation"]),
    (fix_with_hard_coded_rate, ["hard-coded"]),
    (fix_shared_over_batch, ["the same mask for every", "dimension 0"]),
], ids=lambda v: getattr(v, "__name__", "hints"))
def test_check_test_time_scaling_rejects_typical_mistakes(fn, hints):
    assert_fails(check_test_time_scaling, fn, *hints)


def test_check_test_time_scaling_messages_differ():
    a = assert_fails(check_test_time_scaling, buggy_original)
    b = assert_fails(check_test_time_scaling, fix_removes_training_scale)
    c = assert_fails(check_test_time_scaling, fix_removes_both)
    assert len({a, b, c}) == 3


# --------------------------------------------------------------------------------------------
# predict: the naive predictor's error terms (closed forms stated by hand, at the exercise's numbers)


def stated_terms(w=NAIVE_PREDICTOR_EXERCISE["w"], x=NAIVE_PREDICTOR_EXERCISE["x"],
                 p=NAIVE_PREDICTOR_EXERCISE["p"], noise_variance=NAIVE_PREDICTOR_EXERCISE["noise_variance"]):
    wx = sum(a * b for a, b in zip(w, x))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, x))
    bias2 = p**2 * wx**2
    var = p * (1 - p) * sum_sq
    return {"squared_bias": bias2, "variance": var, "expected_squared_error": bias2 + var + noise_variance}, wx, sum_sq


def test_check_naive_predictor_passes_reference(capsys):
    truth, _, _ = stated_terms()
    assert_passes(capsys, check_naive_predictor_terms, lambda: dict(truth))


@pytest.mark.parametrize("convert", [np.float64, np.float32, torch.tensor, lambda v: torch.tensor(v, dtype=torch.float32),
                                     lambda v: np.array(v), lambda v: sp.Float(v), lambda v: sp.nsimplify(v)],
                         ids=["np.float64", "np.float32", "tensor", "float32-tensor", "0-d-array", "sympy-float",
                              "sympy-rational"])
def test_check_naive_predictor_accepts_any_real_number_type(capsys, convert):
    truth, _, _ = stated_terms()
    assert_passes(capsys, check_naive_predictor_terms, lambda: {k: convert(v) for k, v in truth.items()})


def test_check_naive_predictor_takes_the_instructors_numbers(capsys):
    numbers = {"w": (0.5, 2.0, -1.0, 1.5), "x": (2.0, -1.0, 0.5, 1.0), "p": 0.35, "noise_variance": 0.1}
    truth, _, _ = stated_terms(**numbers)
    check = functools.partial(check_naive_predictor_terms, **numbers)
    assert_passes(capsys, check, lambda: dict(truth))
    default, _, _ = stated_terms()
    assert_fails(check, lambda: dict(default), "is not right")


def test_check_naive_predictor_validates_the_instructors_numbers():
    with pytest.raises(ValueError, match="p must be in"):
        check_naive_predictor_terms(lambda: {}, p=1.2)
    with pytest.raises(ValueError, match="w and x"):
        check_naive_predictor_terms(lambda: {}, w=(1.0, 2.0), x=(1.0,))
    with pytest.raises(ValueError, match="noise_variance"):
        check_naive_predictor_terms(lambda: {}, noise_variance=-1.0)


def test_check_naive_predictor_starter_not_written_yet():
    assert_fails(check_naive_predictor_terms, starter, "not written yet")


def _with(**changes):
    truth, wx, sum_sq = stated_terms()
    answer = dict(truth)
    p = NAIVE_PREDICTOR_EXERCISE["p"]
    values = {
        "bias_keep": (1 - p) ** 2 * wx**2,
        "bias_unsquared_p": p * wx**2,
        "var_square_of_sum": p * (1 - p) * wx**2,
        "var_inverted": p / (1 - p) * sum_sq,
        "ese_no_noise": truth["squared_bias"] + truth["variance"],
    }
    for key, name in changes.items():
        answer[key] = values.get(name, name) if isinstance(name, str) else name
    return answer


@pytest.mark.parametrize("answer, hints", [
    (_with(squared_bias="bias_keep"), ["squared_bias", "square p·wᵀx, not (1-p)·wᵀx"]),
    (_with(squared_bias="bias_unsquared_p"), ["squared_bias", "squared as a whole"]),
    (_with(variance="var_square_of_sum"), ["variance", "Σ(w_i x_i)², not (Σ w_i x_i)²"]),
    (_with(variance="var_inverted"), ["variance", "does not scale by 1/(1-p)"]),
    (_with(expected_squared_error="ese_no_noise"), ["expected_squared_error", "noise σ²"]),
    (_with(variance=1.0), ["variance = 1 is not right; recompute it"]),
    (_with(variance=float("nan")), ["variance is NaN"]),
    (_with(variance=np.float64("inf")), ["variance is inf", "finite"]),
    (_with(variance="2.24"), ["variance should be a number", "got the string '2.24'"]),
    (_with(squared_bias=True), ["squared_bias should be a number, got bool"]),
    (_with(variance=None), ["variance should be a number, got NoneType"]),
    (_with(variance=torch.tensor([2.24, 0.0])), ["variance should be one number", "shape (2,)"]),
    (_with(variance=1 + 2j), ["variance should be a real number", "complex"]),
    ({"squared_bias": 0.16, "variance": 2.24}, ["the keys ['squared_bias', 'variance', 'expected_squared_error']",
                                                "missing ['expected_squared_error']"]),
    ({**_with(), "bias": 0.4}, ["unexpected ['bias']"]),
    ([0.16, 2.24, 2.65], ["should return a dict", "'squared_bias'", "'expected_squared_error'", "got list"]),
], ids=["bias-keep", "bias-p", "var-square-of-sum", "var-inverted", "no-noise", "other", "nan", "inf", "str",
        "bool", "none", "vector", "complex", "missing-key", "extra-key", "list"])
def test_check_naive_predictor_rejects_typical_mistakes(answer, hints):
    assert_fails(check_naive_predictor_terms, lambda: answer, *hints)


def test_naive_predictor_wrong_values_are_distinct_from_truth():
    # The mistakes above are only informative if they differ from the right numbers.
    truth, _, _ = stated_terms()
    wrong = _with(squared_bias="bias_keep", variance="var_square_of_sum", expected_squared_error="ese_no_noise")
    for key in truth:
        assert abs(wrong[key] - truth[key]) > 0.05


# --------------------------------------------------------------------------------------------
# shared helpers


def test_call_student_passes_through_results_and_arguments():
    assert call_student(lambda a, b=0: a + b, 1, b=2) == 3


def test_call_student_wraps_errors():
    with pytest.raises(CheckFailed, match="my thing should be a function, got int"):
        call_student(3, what="my thing")
    with pytest.raises(CheckFailed, match="not written yet"):
        call_student(starter)
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError: division by zero"):
        call_student(lambda: 1 / 0)
    with pytest.raises(CheckFailed, match="^inner$"):
        call_student(lambda: (_ for _ in ()).throw(CheckFailed("inner")))


def test_passed_prints_correct_line(capsys):
    assert passed("well done") is None
    assert capsys.readouterr().out == "Correct: well done\n"


# --------------------------------------------------------------------------------------------
# student copies


SOLUTION_CODE = (
    "import torch\n"
    "\n"
    "def my_dropout(x, p, training=True):\n"
    "    \"\"\"Inverted dropout.\"\"\"\n"
    "    ### BEGIN SOLUTION\n"
    "    if not training or p == 0:\n"
    "        return x.clone()\n"
    "    keep = (torch.rand_like(x) >= p).to(x.dtype)\n"
    "    return x * keep / (1 - p)\n"
    "    ### END SOLUTION\n"
)

PREDICT_CODE = (
    "def my_prediction():\n"
    "    ### BEGIN SOLUTION\n"
    "    return {'squared_bias': 0.16, 'variance': 2.24, 'expected_squared_error': 2.65}\n"
    "    ### END SOLUTION\n"
    "\n"
    "### BEGIN SOLUTION\n"
    "answer = my_prediction()\n"
    "### END SOLUTION\n"
)


def solution_nb():
    def md(text, tags=()):
        return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": text}

    def code(text, tags=(), outputs=None, count=1):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": text,
                "outputs": outputs or [{"output_type": "stream", "name": "stdout", "text": ["Correct: ...\n"]}],
                "execution_count": count}

    return {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            md("# Exercises 1"),
            md("```{exercise} Implement inverted dropout\n:label: ex-inverted\n\nWrite `my_dropout`.\n```"),
            md("```{solution-start} ex-inverted\n:class: dropdown\n```", tags=["solution"]),
            code(SOLUTION_CODE, tags=["solution"], count=1),
            md("```{solution-end}\n```", tags=["solution"]),
            code("check_inverted_dropout(my_dropout)", count=2),
            md("````{exercise}\nPredict the terms.\n```python\nw = (1, -2)\n```\n````"),
            # source given as a list of lines, as Jupyter stores it
            code(PREDICT_CODE.splitlines(keepends=True), tags=["solution", "keep-me"], count=3),
            code("check_naive_predictor_terms(my_prediction)", count=4),
        ],
    }


def _text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_student_notebook_structure():
    nb = solution_nb()
    original = copy.deepcopy(nb)
    st = student_notebook(nb)
    assert nb == original  # the solution notebook is not modified
    kinds = [c["cell_type"] for c in st["cells"]]
    assert kinds == ["markdown", "markdown", "code", "code", "markdown", "code", "code"]  # 2 markdown cells dropped
    texts = [_text(c) for c in st["cells"]]
    assert not any("solution-start" in t or "solution-end" in t for t in texts)
    assert st["metadata"] == nb["metadata"] and st["nbformat"] == 4


def test_student_notebook_replaces_solutions_with_starter_at_indentation():
    st = student_notebook(solution_nb())
    code = _text(st["cells"][2])
    assert code.splitlines() == [
        "import torch",
        "",
        "def my_dropout(x, p, training=True):",
        "    \"\"\"Inverted dropout.\"\"\"",
        "    " + STARTER,
    ]
    predict = _text(st["cells"][5])
    assert predict.splitlines() == ["def my_prediction():", "    " + STARTER, "", STARTER]
    for text in (code, predict):
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert "rand_like" not in text and "2.24" not in text
        compile(text, "<student>", "exec")  # still valid Python


def test_student_notebook_tags_outputs_and_counts():
    st = student_notebook(solution_nb())
    for cell in st["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None
            assert "solution" not in cell["metadata"]["tags"]
    assert st["cells"][5]["metadata"]["tags"] == ["keep-me"]
    assert isinstance(st["cells"][0]["source"], list)  # nbformat-style list of lines


def test_student_notebook_exercise_directives_become_headings():
    st = student_notebook(solution_nb())
    first = _text(st["cells"][1])
    assert first.splitlines() == ["**Exercise: Implement inverted dropout**", "", "", "Write `my_dropout`."]
    assert ":label:" not in first and "```" not in first
    second = _text(st["cells"][4]).splitlines()
    assert second[0] == "**Exercise**"
    assert "Predict the terms." in second
    assert second[-3:] == ["```python", "w = (1, -2)", "```"]  # the inner code fence is kept
    assert "````" not in _text(st["cells"][4])
    assert _text(st["cells"][0]) == "# Exercises 1"


def test_student_code_fails_its_check_with_not_written_yet():
    import dropoutbook.exercises as ex

    st = student_notebook(solution_nb())
    namespace = {"check_inverted_dropout": ex.check_inverted_dropout,
                 "check_naive_predictor_terms": ex.check_naive_predictor_terms}
    exec(_text(st["cells"][2]), namespace)
    with pytest.raises(CheckFailed, match="not written yet"):
        exec(_text(st["cells"][3]), namespace)  # the check cell as the student runs it
    with pytest.raises(CheckFailed, match="not written yet"):
        check_inverted_dropout(namespace["my_dropout"])
    # the predict cell's top-level starter raises as soon as the cell runs
    with pytest.raises(NotImplementedError, match="Exercise: write your solution here"):
        exec(_text(st["cells"][5]), namespace)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_naive_predictor_terms(namespace["my_prediction"])


def test_solution_code_passes_its_check(capsys):
    namespace = {}
    nb = solution_nb()
    exec(_text(nb["cells"][3]), namespace)
    exec("".join(nb["cells"][7]["source"]), namespace)
    assert check_inverted_dropout(namespace["my_dropout"]).passed
    assert check_naive_predictor_terms(namespace["my_prediction"]).passed
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize("code, match", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "### BEGIN SOLUTION without ### END SOLUTION"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "### END SOLUTION without ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "nested ### BEGIN SOLUTION"),
    ("x = 1\n", "must mark its answer with ### BEGIN SOLUTION / ### END SOLUTION"),
])
def test_student_notebook_marker_errors(code, match):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "intro"},
        {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": code, "outputs": [], "execution_count": 1},
    ]}
    with pytest.raises(ValueError, match=match) as info:
        student_notebook(nb, where="ex01.ipynb")
    assert str(info.value).startswith("ex01.ipynb, cell 1: ")


def test_student_notebook_keeps_untagged_markdown_and_code():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "Some *text*\n\n$x^2$"},
        {"cell_type": "code", "metadata": {}, "source": "y = 2\nprint(y)", "outputs": [{"x": 1}], "execution_count": 7},
    ]}
    st = student_notebook(nb)
    assert _text(st["cells"][0]) == "Some *text*\n\n$x^2$"
    assert _text(st["cells"][1]) == "y = 2\nprint(y)"
    assert st["cells"][1]["outputs"] == [] and st["cells"][1]["execution_count"] is None


def test_make_student_copy_writes_file(tmp_path):
    src = tmp_path / "01_inverted_dropout.ipynb"
    src.write_text(json.dumps(solution_nb()), encoding="utf-8")
    before = src.read_text(encoding="utf-8")
    dst = tmp_path / "student" / "01_inverted_dropout.ipynb"
    result = make_student_copy(src, dst)
    assert result == dst and dst.exists()
    assert src.read_text(encoding="utf-8") == before
    written = json.loads(dst.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(student_notebook(solution_nb())))
    assert "BEGIN SOLUTION" not in dst.read_text(encoding="utf-8")


def test_make_student_copy_error_names_the_file(tmp_path):
    nb = solution_nb()
    nb["cells"][3]["source"] = "x = 1\n"  # tagged solution, no markers
    src = tmp_path / "bad.ipynb"
    src.write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.ipynb, cell 3: a cell tagged 'solution' must mark"):
        make_student_copy(src, tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()


def test_checkers_leave_the_callers_random_state_unchanged():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_inverted_dropout(ref_dropout)
    check_test_time_scaling(ref_dropout)
    assert torch.equal(torch.rand(3), expected)


def test_student_copy_turns_myst_labels_and_roles_into_plain_markdown():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "(ex-label)=\n", "# Title\n", "See {ref}`the chapter <ch-x>`, {doc}`../chapters/01`, {numref}`fig-a`.\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = "".join(student_notebook(nb)["cells"][0]["source"])
    assert text == "# Title\nSee the chapter, ../chapters/01, fig-a."


@pytest.mark.parametrize("left_out, hint", [("variance", "left out the variance of ŷ"),
                                            ("squared_bias", "left out the squared bias")])
def test_check_naive_predictor_names_a_term_left_out_of_the_error(left_out, hint):
    truth = {"squared_bias": 0.2**2 * 2.0**2, "variance": 0.2 * 0.8 * 14.0}
    answer = {**truth, "expected_squared_error": sum(v for k, v in truth.items() if k != left_out) + 0.25}
    assert_fails(check_naive_predictor_terms, lambda: answer, hint)
