"""Checker layer, chapter 4: each checker passes the reference solution, fails the blank starter
with "not written yet", and fails typical wrong answers with a message that names the mistake."""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
import torch

from dropoutbook.exercises import (
    PATH_EXERCISE,
    check_ambiguity_constant,
    check_ensemble_terms,
    check_path_predictions,
    check_subnetwork_average,
)
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# ensemble terms


def ref_terms(preds, target):
    t = preds.shape[0]
    individual = ((preds - target) ** 2).mean(dim=1).mean()
    ensemble = ((preds.mean(0) - target) ** 2).mean()
    pairs = [((preds[i] - preds[j]) ** 2).mean() for i in range(t) for j in range(t) if i != j]
    return individual, ensemble, torch.stack(pairs).mean()


def with_diversity(diversity):
    def fn(preds, target):
        ind, ens, _ = ref_terms(preds, target)
        return ind, ens, diversity(preds)
    return fn


def all_pairs(preds):
    t = preds.shape[0]
    return torch.stack([((preds[i] - preds[j]) ** 2).mean() for i in range(t) for j in range(t)]).mean()


def summed_pairs(preds):
    t = preds.shape[0]
    return sum(((preds[i] - preds[j]) ** 2).mean() for i in range(t) for j in range(i + 1, t))


def absolute_pairs(preds):
    t = preds.shape[0]
    return torch.stack([(preds[i] - preds[j]).abs().mean() for i in range(t) for j in range(t) if i != j]).mean()


def ambiguity(preds):
    return ((preds - preds.mean(0)) ** 2).mean()


def ensemble_as_mean_error(preds, target):
    ind, _, div = ref_terms(preds, target)
    return ind, ind, div


def individual_as_ensemble(preds, target):
    _, ens, div = ref_terms(preds, target)
    return ens, ens, div


def in_place_terms(preds, target):
    out = ref_terms(preds, target)
    preds.sub_(1.0)
    return out


def test_check_ensemble_terms_passes_reference(capsys):
    assert_passes(capsys, check_ensemble_terms, ref_terms)


def test_check_ensemble_terms_starter():
    assert_fails(check_ensemble_terms, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (with_diversity(all_pairs), ["pairs i = j", "T(T-1) pairs"]),
    (with_diversity(summed_pairs), ["mean over the pairs, not a sum"]),
    (with_diversity(absolute_pairs), ["squared differences", "not absolute"]),
    (with_diversity(ambiguity), ["that is the ambiguity"]),
    (ensemble_as_mean_error, ["ensemble_error equals the mean of the individual errors"]),
    (individual_as_ensemble, ["individual_error is the error of the averaged prediction"]),
    (in_place_terms, ["changed its input in place"]),
    (lambda preds, target: (1.0, 2.0), ["should return a tuple"]),
    (lambda preds, target: ("a", 1.0, 1.0), ["individual_error should be a number", "str"]),
])
def test_check_ensemble_terms_names_mistakes(fn, hints):
    assert_fails(check_ensemble_terms, fn, *hints)


# --------------------------------------------------------------------------------------------
# the constant


def ref_constant(T):
    f = sp.symbols(f"f1:{T + 1}", real=True)
    y = sp.Symbol("y", real=True)
    mean = sum(f) / T
    gain = sum((fi - y) ** 2 for fi in f) / T - (mean - y) ** 2
    pairs = [(f[i] - f[j]) ** 2 for i in range(T) for j in range(T) if i != j]
    return sp.cancel(sp.expand(gain) / sp.expand(sum(pairs) / len(pairs)))


def constant_with(diversity):
    def fn(T):
        f = sp.symbols(f"f1:{T + 1}", real=True)
        y = sp.Symbol("y", real=True)
        mean = sum(f) / T
        gain = sum((fi - y) ** 2 for fi in f) / T - (mean - y) ** 2
        return sp.cancel(sp.expand(gain) / sp.expand(diversity(f, T)))
    return fn


def test_check_ambiguity_constant_passes_reference(capsys):
    assert_passes(capsys, check_ambiguity_constant, ref_constant)
    assert_passes(capsys, check_ambiguity_constant, lambda T: sp.Rational(T - 1, 2 * T))


def test_check_ambiguity_constant_starter():
    assert_fails(check_ambiguity_constant, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (constant_with(lambda f, T: sum((a - b) ** 2 for a in f for b in f) / T**2), ["i = j included"]),
    (constant_with(lambda f, T: sum((f[i] - f[j]) ** 2 for i in range(T) for j in range(i + 1, T))),
     ["summed (not averaged)"]),
    (constant_with(lambda f, T: sum((a - b) ** 2 for a in f for b in f) / (T * (T - 1) / 2)),
     ["half the right constant", "number T(T-1)/2 of unordered pairs"]),
    (constant_with(lambda f, T: sum((f[i] - f[j]) ** 2 for i in range(T) for j in range(i + 1, T)) / (T * (T - 1))),
     ["twice the right constant", "number T(T-1) of ordered pairs"]),
    (lambda T: sp.Symbol("y") / T, ["still contains ['y']"]),
    (lambda T: "1/4", ["should return a sympy number", "str"]),
    (lambda T: sp.Rational(1, 3), ["for T = 2 you get 1/3", "1/4 there"]),
])
def test_check_ambiguity_constant_names_mistakes(fn, hints):
    assert_fails(check_ambiguity_constant, fn, *hints)


# --------------------------------------------------------------------------------------------
# exact subnetwork average


def ref_average(f, n, p):
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n):
        kept = sum(bits)
        total += (1 - p) ** kept * p ** (n - kept) * float(f(torch.tensor(bits, dtype=torch.float64)))
    return total


def uniform_average(f, n, p):
    return sum(float(f(torch.tensor(b, dtype=torch.float64))) for b in itertools.product((0.0, 1.0), repeat=n)) / 2**n


def swapped_average(f, n, p):
    return ref_average(f, n, 1 - p)


def sampled_average(f, n, p):
    masks = (torch.rand(2000, n) >= p).double()
    return sum(float(f(m)) for m in masks) / len(masks)


def mean_mask(f, n, p):
    return f(torch.full((n,), 1 - p, dtype=torch.float64))


def half_the_masks(f, n, p):
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n - 1):
        bits = bits + (1.0,)
        kept = sum(bits)
        total += (1 - p) ** kept * p ** (n - kept) * float(f(torch.tensor(bits, dtype=torch.float64)))
    return total


def test_check_subnetwork_average_passes_reference(capsys):
    assert_passes(capsys, check_subnetwork_average, ref_average)


def test_check_subnetwork_average_starter():
    assert_fails(check_subnetwork_average, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (uniform_average, ["weight 1/2^n", "p = 1/2 only"]),
    (swapped_average, ["swap drop and keep"]),
    (sampled_average, ["you are sampling masks", "enumerates all 2^n masks"]),
    (mean_mask, ["mean mask", "weight-scaled network"]),
    (half_the_masks, ["32 distinct masks", "all 64 masks"]),
    (lambda f, n, p: f(torch.ones(n + 1)), ["f expects one mask", "(6,)"]),
    (lambda f, n, p: None, ["the average should be a number", "NoneType"]),
])
def test_check_subnetwork_average_names_mistakes(fn, hints):
    assert_fails(check_subnetwork_average, fn, *hints)


def test_check_subnetwork_average_rejects_p_one_half():
    with pytest.raises(ValueError, match="not 0.5"):
        check_subnetwork_average(ref_average, p=0.5)


def test_check_subnetwork_average_restores_the_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_subnetwork_average(ref_average)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# path predictions


def predicted(survival=None, count=None):
    widths, p, p_in = PATH_EXERCISE["widths"], PATH_EXERCISE["p"], PATH_EXERCISE["input_p"]
    right = (1 - p_in) * (1 - p) ** 3
    survival = right if survival is None else survival
    count = math.prod(widths) * right if count is None else count
    return lambda: {"survival": survival, "expected_active_paths": count}


def test_check_path_predictions_passes_reference(capsys):
    assert_passes(capsys, check_path_predictions, predicted())


def test_check_path_predictions_starter():
    assert_fails(check_path_predictions, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (predicted(survival=0.5**3), ["left out the input dropout"]),
    (predicted(survival=0.8 * 0.5**4), ["output unit is never dropped"]),
    (predicted(survival=0.5**3 * 0.2), ["probability of dropping"]),
    (predicted(count=100**3 * 0.1), ["hidden layers only", "64 inputs"]),
    (predicted(count=64 * 100**3 * 10), ["without dropout", "linearity of expectation"]),
    (predicted(count=12.0), ["(number of paths)"]),
    (lambda: {"survival": 0.1}, ["exactly the keys"]),
    (lambda: {"survival": "0.1", "expected_active_paths": 1.0}, ["survival should be a number"]),
])
def test_check_path_predictions_names_mistakes(fn, hints):
    assert_fails(check_path_predictions, fn, *hints)
