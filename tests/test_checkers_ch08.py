"""Checkers of chapter 8, "Stochastic depth": the reference passes, the blank starter fails with
"not written yet", typical wrong answers (written as a student would) fail with their specific
hint, and correct answers written differently from the reference pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dropoutbook as db
from dropoutbook import stochastic_depth
from dropoutbook.exercises import (
    DEPTH_EXERCISE,
    check_block_test_time,
    check_depth_prediction,
    check_drop_path,
    check_survival_schedule,
)
from helpers import assert_fails, assert_passes, starter


# --------------------------------------------------------------------------------------------
# exercise 1: drop_path (any shape (N, ...); the library's drop_path is forbidden)


def ref_drop_path(x, p, training=True):
    if not training or p == 0:
        return x.clone()
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p
    return x * keep / (1 - p)


def drop_path_bernoulli(x, p, training=True):  # bernoulli_ on a mask of ones, then view
    if not training:
        return x
    keep = x.new_ones(x.shape[0]).bernoulli_(1 - p)
    return x * keep.view(-1, *[1] * (x.dim() - 1)).div(1 - p)


def drop_path_loop(x, p, training=True):  # one decision per sample, in a Python loop
    if not training:
        return x.clone()
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        out[n] = x[n] / (1 - p) if torch.rand(()).item() >= p else 0.0
    return out


def elementwise(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p) / (1 - p)


def per_feature(x, p, training=True):  # one mask over the last dimension, shared by the samples
    if not training:
        return x.clone()
    return x * (torch.rand(x.shape[-1]) >= p) / (1 - p)


def three_d_mask(x, p, training=True):  # the shape of a 3-D input, hard-coded
    if not training:
        return x.clone()
    return x * (torch.rand(x.shape[0], 1, 1) >= p) / (1 - p)


def one_draw(x, p, training=True):  # one decision for the whole batch
    if not training:
        return x.clone()
    return x * (torch.rand(()) >= p) / (1 - p)


def per_sample_no_scaling(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p)


def per_sample_keep_with_p(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) < p) / (1 - p)


def per_sample_divide_by_p(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) / p


def per_sample_in_place(x, p, training=True):
    if not training:
        return x
    return x.mul_((torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) / (1 - p))


def per_sample_scaled_in_eval(x, p, training=True):
    if not training:
        return x * (1 - p)
    return ref_drop_path(x, p)


def hard_coded_rate(x, p, training=True):
    return ref_drop_path(x, 0.3, training)


def same_draw_every_call(x, p, training=True):
    g = torch.Generator().manual_seed(0)
    if not training:
        return x.clone()
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=g) >= p) / (1 - p)


@pytest.mark.parametrize("fn, hint", [
    (elementwise, "ONE Bernoulli per sample"),
    (per_feature, "ONE Bernoulli per sample"),
    (three_d_mask, "(N,) + (1,) * (x.dim() - 1)"),
    (one_draw, "one draw for the whole batch"),
    (per_sample_no_scaling, "did you forget to divide by 1 - p"),
    (per_sample_keep_with_p, "survival probability 1 - p"),
    (per_sample_divide_by_p, "divided by p"),
    (per_sample_in_place, "changed its input x in place"),
    (per_sample_scaled_in_eval, "training=False the output should equal the input"),
    (hard_coded_rate, "not the p it receives"),
    (same_draw_every_call, "two calls dropped exactly the same samples"),
    (lambda x, p, training=True: db.drop_path(x, p, training=training), "forbids"),
    (lambda x, p, training=True: stochastic_depth.drop_path(x, p, training=training), "dropoutbook.drop_path"),
])
def test_drop_path_typical_mistakes(fn, hint):
    assert_fails(check_drop_path, fn, hint)


def test_drop_path_correct_answers(capsys):
    assert_passes(capsys, check_drop_path, ref_drop_path)
    assert_passes(capsys, check_drop_path, drop_path_bernoulli)
    assert_passes(capsys, check_drop_path, drop_path_loop)
    assert_fails(check_drop_path, starter, "not written yet")


def test_drop_path_checker_restores_the_rng_and_the_library():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_drop_path(ref_drop_path)
    assert torch.equal(torch.rand(3), expected)
    assert db.drop_path is stochastic_depth.drop_path and db.drop_path.__module__ == "dropoutbook.stochastic_depth"


# --------------------------------------------------------------------------------------------
# exercise 2: the survival schedule


def ref_schedule(L, p_L):
    return [1 - (l / L) * (1 - p_L) for l in range(1, L + 1)]


@pytest.mark.parametrize("fn, hint", [
    (lambda L, p_L: [1 - (l / L) * p_L for l in range(1, L + 1)], "SURVIVAL probability"),
    (lambda L, p_L: [(l / L) * (1 - p_L) for l in range(1, L + 1)], "these are the drop probabilities"),
    (lambda L, p_L: [(l / L) * p_L for l in range(1, L + 1)], "grows with depth"),
    (lambda L, p_L: ref_schedule(L, p_L)[::-1], "order is reversed"),
    (lambda L, p_L: [1 - (l / L) * (1 - p_L) for l in range(L)], "indexed the blocks from 0"),
    (lambda L, p_L: torch.linspace(1, p_L, L).tolist(), "linspace from 1 to p_L"),
    (lambda L, p_L: [1 - (l / L) * (1 - p_L) for l in range(L + 1)], "returned 11 numbers"),
    (lambda L, p_L: ref_schedule(L, 0.5), "should start"),  # p_L hard-coded
    (lambda L, p_L: [0.5] * L, "should start"),
    (lambda L, p_L: 0.5, "should return a list"),
    (lambda L, p_L: [float("nan")] * L, "NaN"),
])
def test_schedule_typical_mistakes(fn, hint):
    assert_fails(check_survival_schedule, fn, hint)


def test_schedule_correct_answers(capsys):
    assert_passes(capsys, check_survival_schedule, ref_schedule)
    assert_passes(capsys, check_survival_schedule, db.stochastic_depth_survival)
    assert_passes(capsys, check_survival_schedule, lambda L, p_L: torch.tensor(ref_schedule(L, p_L)))
    assert_passes(capsys, check_survival_schedule,
                  lambda L, p_L: 1 - np.arange(1, L + 1) / L * (1 - p_L))
    assert_fails(check_survival_schedule, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the depth (any number type; the instructor may choose L and p_L)


def ref_depth():
    L, p_L = 12, 0.5
    s = ref_schedule(L, p_L)
    return {"expected_depth": sum(s), "variance": sum(q * (1 - q) for q in s),
            "skipped_fraction": 1 - sum(s) / L}


def with_(**changes):
    return lambda: {**ref_depth(), **changes}


@pytest.mark.parametrize("fn, hint", [
    (with_(expected_depth=6.0), "L·p_L"),
    (with_(expected_depth=3.25), "drop probabilities"),
    (with_(expected_depth=9.0), "L(1 + p_L)/2"),
    (with_(variance=12 * (8.75 / 12) * (1 - 8.75 / 12)), "binomial with the average survival"),
    (with_(variance=8.75), "not Σ p_l"),
    (with_(skipped_fraction=0.25), "limit for many blocks"),
    (with_(skipped_fraction=0.5), "LAST block"),
    (with_(skipped_fraction=8.75 / 12), "fraction of branches that are computed"),
    (with_(variance=1.0), "variance = 1 is not right; recompute"),
    (with_(variance="2.1"), "variance should be a number"),
    (with_(variance=float("nan")), "NaN"),
    (lambda: {"expected_depth": 8.75}, "'variance', 'skipped_fraction'"),
    (lambda: [8.75, 2.12, 0.27], "a dict with the keys ['expected_depth', 'variance', 'skipped_fraction']"),
])
def test_depth_typical_mistakes(fn, hint):
    assert_fails(check_depth_prediction, fn, hint)


def test_depth_correct_answers(capsys):
    assert dict(DEPTH_EXERCISE) == {"L": 12, "p_L": 0.5}
    assert ref_depth()["expected_depth"] == pytest.approx(8.75)
    assert_passes(capsys, check_depth_prediction, ref_depth)
    assert_passes(capsys, check_depth_prediction,  # 0-d tensors and NumPy scalars
                  lambda: {"expected_depth": torch.tensor(8.75), "variance": np.float32(2.1215277),
                           "skipped_fraction": torch.tensor(13 / 48, dtype=torch.float64)})
    assert_fails(check_depth_prediction, starter, "not written yet")


def test_depth_instructor_inputs():
    def for_6_blocks():
        s = [1 - l / 6 * 0.2 for l in range(1, 7)]
        return {"expected_depth": sum(s), "variance": sum(q * (1 - q) for q in s), "skipped_fraction": 1 - sum(s) / 6}
    result = check_depth_prediction(for_6_blocks, L=6, p_L=0.8)
    assert result is None or result.passed
    assert_fails(lambda fn: check_depth_prediction(fn, L=6, p_L=0.8), ref_depth, "expected_depth")
    with pytest.raises(ValueError, match="p_L"):
        check_depth_prediction(ref_depth, p_L=1.5)
    with pytest.raises((TypeError, ValueError), match="L"):
        check_depth_prediction(ref_depth, L=0)


# --------------------------------------------------------------------------------------------
# exercise 4: find the bug (test-time scaling of the original rule)


def fixed_block(x, fx, survival, training=True):
    if training:
        b = float(torch.rand(()) < survival)
        return x + b * fx
    return x + survival * fx


def fixed_block_branching(x, fx, survival, training=True):
    if not training:
        return x + fx * survival
    if torch.rand(1).item() < survival:
        return x + fx
    return x.clone()


def fixed_block_bernoulli(x, fx, survival, training=True):
    if training:
        return x + torch.bernoulli(torch.tensor(float(survival))) * fx
    return torch.lerp(x, x + fx, survival)


def buggy_block(x, fx, survival, training=True):
    if training:
        b = float(torch.rand(()) < survival)
        return x + b * fx
    return x + fx


def scaled_twice(x, fx, survival, training=True):
    if training:
        b = float(torch.rand(()) < survival)
        return x + b * fx / survival
    return x + survival * fx


def scaled_by_drop(x, fx, survival, training=True):
    if training:
        return x + float(torch.rand(()) < survival) * fx
    return x + (1 - survival) * fx


def inverted_instead(x, fx, survival, training=True):
    if training:
        return x + float(torch.rand(()) < survival) * fx / survival
    return x + fx


def per_element(x, fx, survival, training=True):
    if training:
        return x + (torch.rand_like(fx) < survival) * fx
    return x + survival * fx


def per_sample(x, fx, survival, training=True):  # one draw per row, not per call
    if training:
        return x + (torch.rand(fx.shape[0], *[1] * (fx.dim() - 1)) < survival) * fx
    return x + survival * fx


def hard_coded_survival(x, fx, survival, training=True):  # the default survival of the checker
    if training:
        return x + float(torch.rand(()) < survival) * fx
    return x + 0.6 * fx


def same_draw(x, fx, survival, training=True):
    if training:
        g = torch.Generator().manual_seed(1)
        return x + float(torch.rand((), generator=g) < survival) * fx
    return x + survival * fx


def in_place(x, fx, survival, training=True):
    if training:
        return x.add_(float(torch.rand(()) < survival) * fx)
    return x.add_(survival * fx)


@pytest.mark.parametrize("fn, hint", [
    (buggy_block, "test block is x + f(x)"),
    (scaled_twice, "scales twice"),
    (scaled_by_drop, "the drop probability"),
    (inverted_instead, "the original rule keeps it as it is"),
    (per_element, "one draw per call"),
    (per_sample, "one draw per call"),
    (hard_coded_survival, "survival"),
    (same_draw, "every call"),
    (in_place, "in place"),
    (lambda x, fx, survival, training=True: (x + fx).tolist(), "torch.Tensor"),
])
def test_block_typical_mistakes(fn, hint):
    assert_fails(check_block_test_time, fn, hint)


def test_block_correct_answers(capsys):
    assert_passes(capsys, check_block_test_time, fixed_block)
    assert_passes(capsys, check_block_test_time, fixed_block_branching)
    assert_passes(capsys, check_block_test_time, fixed_block_bernoulli)
    assert_fails(check_block_test_time, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# answers that passed an earlier version of the checkers


def _drop_path_with(keep_of):
    def drop_path(x, p, training=True):
        if not training or p == 0:
            return x.clone()
        keep = keep_of(x.shape[0], p).reshape((x.shape[0],) + (1,) * (x.dim() - 1))
        return x * keep / (1 - p)
    return drop_path


def _pairs(n, p):  # one draw per pair of neighbouring samples
    return (torch.rand((n + 1) // 2) >= p).repeat_interleave(2)[:n]


def _halves(n, p):  # the same mask for the two halves of the batch
    half = torch.rand((n + 1) // 2) >= p
    return torch.cat([half, half])[:n]


@pytest.mark.parametrize("fn, hint", [
    (_drop_path_with(_pairs), "neighbouring samples are not independent"),
    (_drop_path_with(_halves), "two halves of the batch are not independent"),
    (lambda x, p, training=True: (x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) / (1 - p)).float()
     if training and p else x.clone(), "returned dtype torch.float32"),
])
def test_drop_path_dependent_draws_and_dtype(fn, hint):
    assert_fails(check_drop_path, fn, hint)


_S = [1 - l / 12 * 0.5 for l in range(1, 13)]
_E, _V = sum(_S), sum(s * (1 - s) for s in _S)


@pytest.mark.parametrize("answer, hint", [
    ({"expected_depth": _E, "variance": _V**0.5, "skipped_fraction": 1 - _E / 12}, "standard deviation"),
    ({"expected_depth": _E, "variance": _V, "skipped_fraction": 12 - _E}, "number of skipped blocks"),
    ({"expected_depth": _E, "variance": _V, "skipped_fraction": 100 * (1 - _E / 12)}, "percentage"),
])
def test_depth_more_named_mistakes(answer, hint):
    assert_fails(check_depth_prediction, lambda: answer, hint)


def test_block_keeps_the_dtype():
    def float32_block(x, fx, survival, training=True):
        b = float(torch.rand(()) < survival) if training else survival
        return (x + b * fx).float()
    assert_fails(check_block_test_time, float32_block, "returned dtype torch.float32")
