"""Checkers of chapter 8, "Stochastic depth": the reference passes, the blank starter fails with
"not written yet", and typical wrong answers fail with their specific hint."""

from __future__ import annotations

import pytest
import torch

import dropoutbook as db
from dropoutbook.exercises import (
    DEPTH_EXERCISE,
    check_block_test_time,
    check_depth_prediction,
    check_drop_path,
    check_survival_schedule,
)
from helpers import assert_fails, assert_passes, starter


# --------------------------------------------------------------------------------------------
# exercise 1: drop_path


def ref_drop_path(x, p, training=True):
    if not training or p == 0:
        return x.clone()
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p
    return x * keep / (1 - p)


def elementwise(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p) / (1 - p)


def per_sample_no_scaling(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand(x.shape[0], 1, 1) >= p)


def per_sample_keep_with_p(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand(x.shape[0], 1, 1) < p) / (1 - p)


def per_sample_in_place(x, p, training=True):
    if not training:
        return x
    return x.mul_((torch.rand(x.shape[0], 1, 1) >= p) / (1 - p))


def per_sample_scaled_in_eval(x, p, training=True):
    if not training:
        return x * (1 - p)
    return ref_drop_path(x, p)


def test_drop_path_reference_and_library_pass(capsys):
    assert_passes(capsys, check_drop_path, ref_drop_path)
    assert_passes(capsys, check_drop_path, lambda x, p, training=True: db.drop_path(x, p, training=training))


def test_drop_path_starter_fails():
    assert_fails(check_drop_path, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (elementwise, ["ONE Bernoulli per sample", "not each element"]),
    (per_sample_no_scaling, ["did you forget to divide by 1 - p"]),
    (per_sample_keep_with_p, ["survival probability 1 - p"]),
    (per_sample_in_place, ["changed its input x in place"]),
    (per_sample_scaled_in_eval, ["training=False the output should equal the input"]),
])
def test_drop_path_typical_mistakes(fn, hints):
    assert_fails(check_drop_path, fn, *hints)


def test_drop_path_checker_restores_the_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_drop_path(ref_drop_path)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# exercise 2: the survival schedule


def ref_schedule(L, p_L):
    return [1 - (l / L) * (1 - p_L) for l in range(1, L + 1)]


@pytest.mark.parametrize("fn, hints", [
    (lambda L, p_L: [1 - (l / L) * p_L for l in range(1, L + 1)], ["seed's formula", "SURVIVAL probability"]),
    (lambda L, p_L: [(l / L) * (1 - p_L) for l in range(1, L + 1)], ["these are the drop probabilities"]),
    (lambda L, p_L: [(l / L) * p_L for l in range(1, L + 1)], ["grows with depth"]),
    (lambda L, p_L: ref_schedule(L, p_L)[::-1], ["order is reversed"]),
    (lambda L, p_L: [1 - (l / L) * (1 - p_L) for l in range(L)], ["indexed the blocks from 0"]),
    (lambda L, p_L: torch.linspace(1, p_L, L).tolist(), ["linspace from 1 to p_L"]),
    (lambda L, p_L: [1 - (l / L) * (1 - p_L) for l in range(L + 1)], ["returned 11 numbers"]),
    (lambda L, p_L: [0.5] * L, ["should start"]),
    (lambda L, p_L: 0.5, ["should return a list"]),
])
def test_schedule_typical_mistakes(fn, hints):
    assert_fails(check_survival_schedule, fn, *hints)


def test_schedule_reference_library_and_starter(capsys):
    assert_passes(capsys, check_survival_schedule, ref_schedule)
    assert_passes(capsys, check_survival_schedule, db.stochastic_depth_survival)
    assert_passes(capsys, check_survival_schedule, lambda L, p_L: torch.tensor(ref_schedule(L, p_L)))
    assert_fails(check_survival_schedule, starter, "not written yet")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the depth


def ref_depth():
    L, p_L = DEPTH_EXERCISE["L"], DEPTH_EXERCISE["p_L"]
    s = ref_schedule(L, p_L)
    return {"expected_depth": sum(s), "variance": sum(q * (1 - q) for q in s),
            "skipped_fraction": 1 - sum(s) / L}


def with_(**changes):
    return lambda: {**ref_depth(), **changes}


def test_depth_reference_and_starter(capsys):
    assert DEPTH_EXERCISE == {"L": 12, "p_L": 0.5}
    assert_passes(capsys, check_depth_prediction, ref_depth)
    assert ref_depth()["expected_depth"] == pytest.approx(8.75)
    assert_fails(check_depth_prediction, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (with_(expected_depth=6.0), ["expected_depth = 6", "L·p_L"]),
    (with_(expected_depth=3.25), ["drop probabilities"]),
    (with_(expected_depth=9.0), ["L(1 + p_L)/2"]),
    (with_(variance=12 * (8.75 / 12) * (1 - 8.75 / 12)), ["binomial with the average survival"]),
    (with_(variance=8.75), ["not Σ p_l"]),
    (with_(skipped_fraction=0.25), ["limit for many blocks"]),
    (with_(skipped_fraction=0.5), ["LAST block"]),
    (with_(skipped_fraction=8.75 / 12), ["fraction of branches that are computed"]),
    (with_(variance=1.0), ["variance = 1 is not right; recompute"]),
    (with_(variance="2.1"), ["variance should be a number"]),
    (lambda: {"expected_depth": 8.75}, ["exactly the keys"]),
])
def test_depth_typical_mistakes(fn, hints):
    assert_fails(check_depth_prediction, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 4: find the bug (test-time scaling of the original rule)


def fixed_block(x, fx, survival, training=True):
    if training:
        b = float(torch.rand(()) < survival)
        return x + b * fx
    return x + survival * fx


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


def test_block_reference_and_starter(capsys):
    assert_passes(capsys, check_block_test_time, fixed_block)
    assert_fails(check_block_test_time, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (buggy_block, ["test block is x + f(x)", "multiplied by\nits survival probability".replace("\n", " ")]),
    (scaled_twice, ["scales twice"]),
    (scaled_by_drop, ["the drop probability"]),
    (inverted_instead, ["the original rule keeps it as it is"]),
    (per_element, ["one draw per call"]),
])
def test_block_typical_mistakes(fn, hints):
    assert_fails(check_block_test_time, fn, *hints)
