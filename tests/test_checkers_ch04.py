"""Checker layer, chapter 4: each checker passes the reference solution and correct answers written
differently, fails the blank starter with "not written yet", and fails the typical wrong answers a
student writes, each with the message that names its mistake."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
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


def terms_with_variance(preds, target):  # D = 2 × the unbiased variance over members, averaged
    return (((preds - target) ** 2).mean(), ((preds.mean(0) - target) ** 2).mean(), 2 * preds.var(0).mean())


def terms_vectorized(preds, target):
    T = len(preds)
    diffs = (preds[:, None, :] - preds[None, :, :]) ** 2    # (T, T, N); the diagonal is 0
    return (float(((preds - target) ** 2).mean()), float(((preds.mean(0) - target) ** 2).mean()),
            float(diffs.mean(-1).sum() / (T * (T - 1))))


@pytest.mark.parametrize("fn", [ref_terms, terms_with_variance, terms_vectorized])
def test_check_ensemble_terms_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_ensemble_terms, fn)


def test_check_ensemble_terms_starter():
    assert_fails(check_ensemble_terms, starter, "not written yet")


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


def diversity_from_identity(preds, target):  # the forbidden shortcut: D from E_ind - E_ens
    ind, ens, _ = ref_terms(preds, target)
    T = preds.shape[0]
    return ind, ens, 2 * T / (T - 1) * (ind - ens)


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


def hard_coded_members(preds, target):  # five members typed in
    ind, ens, _ = ref_terms(preds, target)
    pairs = [((preds[i] - preds[j]) ** 2).mean() for i in range(5) for j in range(5) if i != j]
    return ind, ens, torch.stack(pairs).mean()


def wrong_axis(preds, target):  # averages the members over the examples' axis
    ind, _, div = ref_terms(preds, target)
    return ind, ((preds.mean(1) - target) ** 2).mean(), div


def with_the_library(preds, target):
    d = db.ambiguity_decomposition(preds, target)
    return d.individual_error, d.ensemble_error, d.diversity


@pytest.mark.parametrize("fn, hints", [
    (with_diversity(all_pairs), ["pairs i = j", "T(T-1) pairs"]),
    (with_diversity(summed_pairs), ["mean over the pairs, not a sum"]),
    (with_diversity(absolute_pairs), ["squared differences", "not absolute"]),
    (with_diversity(ambiguity), ["that is the ambiguity"]),
    (diversity_from_identity, ["changes when only the target changes", "from the pairs"]),
    (ensemble_as_mean_error, ["ensemble_error equals the mean of the individual errors"]),
    (individual_as_ensemble, ["individual_error is the error of the averaged prediction"]),
    (in_place_terms, ["changed its input in place"]),
    (hard_coded_members, ["raised IndexError", "members"]),
    (wrong_axis, ["on preds of shape", "raised RuntimeError"]),
    (with_the_library, ["dropoutbook.ambiguity_decomposition", "forbids"]),
    (lambda preds, target: (1.0, 2.0), ["should return a tuple"]),
    (lambda preds, target: ("a", 1.0, 1.0), ["individual_error should be a number", "string"]),
    (lambda preds, target: (float("nan"), 1.0, 1.0), ["individual_error is NaN"]),
], ids=["all-pairs", "sum", "absolute", "ambiguity", "identity", "ens-as-ind", "ind-as-ens", "in-place",
        "hard-coded-T", "wrong-axis", "library", "pair", "str", "nan"])
def test_check_ensemble_terms_names_mistakes(fn, hints):
    assert_fails(check_ensemble_terms, fn, *hints)


def test_check_ensemble_terms_tries_several_shapes():
    seen = []

    def spy(preds, target):
        seen.append(tuple(preds.shape))
        return ref_terms(preds, target)

    check_ensemble_terms(spy)
    assert len(set(seen)) >= 3 and any(t == 2 for t, _ in seen) and all(t != n for t, n in seen)


# --------------------------------------------------------------------------------------------
# the constant, derived for the prediction and target symbols the checker passes


def ref_constant(f, y):
    T = len(f)
    mean = sum(f) / T
    individual = sum((fi - y) ** 2 for fi in f) / T
    ensemble = (mean - y) ** 2
    pairs = [(f[i] - f[j]) ** 2 for i in range(T) for j in range(T) if i != j]
    diversity = sum(pairs) / len(pairs)
    return {"individual": individual, "ensemble": ensemble, "diversity": diversity,
            "constant": sp.cancel(sp.expand(individual - ensemble) / sp.expand(diversity))}


def constant_with_unordered_pairs(f, y):  # the mean over pairs i < j is the same D
    T = len(f)
    ind = sp.Add(*[(fi - y) ** 2 for fi in f]) / T
    ens = (sp.Add(*f) / T - y) ** 2
    div = sp.Add(*[(a - b) ** 2 for a, b in itertools.combinations(f, 2)]) / sp.binomial(T, 2)
    return {"constant": sp.simplify((ind - ens) / div), "diversity": div, "ensemble": ens, "individual": ind}


def constant_with_the_typed_ratio(f, y):  # the terms built with sympy; the constant (T-1)/(2T) typed: it is right
    out = ref_constant(f, y)
    return {**out, "constant": sp.Rational(len(f) - 1, 2 * len(f))}


@pytest.mark.parametrize("fn", [ref_constant, constant_with_unordered_pairs, constant_with_the_typed_ratio])
def test_check_ambiguity_constant_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_ambiguity_constant, fn)


def test_check_ambiguity_constant_starter():
    assert_fails(check_ambiguity_constant, starter, "not written yet")


def constant_with(diversity):
    def fn(f, y):
        out = ref_constant(f, y)
        div = diversity(f, len(f))
        return {**out, "diversity": div, "constant": sp.cancel(sp.expand(out["individual"] - out["ensemble"])
                                                               / sp.expand(div))}
    return fn


def own_symbols(f, y):  # builds its own f1..fT and y instead of using the arguments
    T = len(f)
    return ref_constant(sp.symbols(f"f1:{T + 1}", real=True), sp.Symbol("y", real=True))


def wrong_constant(f, y):
    return {**ref_constant(f, y), "constant": sp.Rational(1, 3)}


@pytest.mark.parametrize("fn, hints", [
    (lambda f, y: sp.Rational(len(f) - 1, 2 * len(f)), ["the number", "alone", "typed-in"]),
    (lambda f, y: (len(f) - 1) / (2 * len(f)), ["the number", "alone"]),
    (lambda f, y: 0.25, ["the number 0.25 alone"]),
    (own_symbols, ["uses the symbols", "passed to your function"]),
    (constant_with(lambda f, T: sum((a - b) ** 2 for a in f for b in f) / T**2), ["'diversity'", "i = j included"]),
    (constant_with(lambda f, T: sum((f[i] - f[j]) ** 2 for i in range(T) for j in range(i + 1, T))),
     ["'diversity'", "summed (not averaged)"]),
    (constant_with(lambda f, T: sum((a - b) ** 2 for a in f for b in f) / (T * (T - 1) / 2)),
     ["'diversity'", "twice the mean", "T(T-1)/2 of unordered pairs"]),
    (constant_with(lambda f, T: sum((f[i] - f[j]) ** 2 for i in range(T) for j in range(i + 1, T)) / (T * (T - 1))),
     ["'diversity'", "half the mean", "T(T-1) of ordered pairs"]),
    (lambda f, y: {**ref_constant(f, y), "ensemble": ref_constant(f, y)["individual"]},
     ["'ensemble'", "(f̄ - y)²"]),
    (lambda f, y: {**ref_constant(f, y), "individual": sum((fi - y) ** 2 for fi in f)},
     ["'individual'", "over the members"]),
    (wrong_constant, ["'constant'", "your own terms", "sp.cancel"]),
    (lambda f, y: {**ref_constant(f, y), "constant": ref_constant(f, y)["constant"] * y / y + f[0] - f[0] + y * 0
                   + sp.Symbol("z")}, ["uses the symbols ['z']"]),
    (lambda f, y: {k: v for k, v in ref_constant(f, y).items() if k != "constant"}, ["missing ['constant']"]),
], ids=["rational", "float-formula", "float", "own-symbols", "all-pairs", "sum", "twice", "half", "ensemble",
        "individual-sum", "wrong-constant", "unknown-symbol", "missing-key"])
def test_check_ambiguity_constant_names_mistakes(fn, hints):
    assert_fails(check_ambiguity_constant, fn, *hints)


def test_check_ambiguity_constant_passes_fresh_symbols_for_T_2_to_6():
    seen = []

    def spy(f, y):
        seen.append((len(f), {s.name for s in f} | {y.name}))
        return ref_constant(f, y)

    check_ambiguity_constant(spy)
    assert [T for T, _ in seen] == [2, 3, 4, 5, 6]
    assert all(not ({"f1", "y"} & names) for _, names in seen)


# --------------------------------------------------------------------------------------------
# exact subnetwork average


def ref_average(f, n, p):
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n):
        kept = sum(bits)
        total += (1 - p) ** kept * p ** (n - kept) * float(f(torch.tensor(bits, dtype=torch.float64)))
    return total


def average_with_integer_codes(f, n, p):
    total = torch.zeros((), dtype=torch.float64)
    for code in range(2**n):
        mask = torch.tensor([(code >> i) & 1 for i in range(n)], dtype=torch.float64)
        k = int(mask.sum())
        total = total + (1 - p) ** k * p ** (n - k) * f(mask)
    return total


def average_by_recursion(f, n, p, prefix=()):
    if len(prefix) == n:
        return float(f(torch.tensor(prefix, dtype=torch.float64)))
    return (p * average_by_recursion(f, n, p, prefix + (0.0,))
            + (1 - p) * average_by_recursion(f, n, p, prefix + (1.0,)))


@pytest.mark.parametrize("fn", [ref_average, average_with_integer_codes, average_by_recursion])
def test_check_subnetwork_average_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_subnetwork_average, fn)


def test_check_subnetwork_average_starter():
    assert_fails(check_subnetwork_average, starter, "not written yet")


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


def hard_coded_rate(f, n, p):
    return ref_average(f, n, 0.3)


def hard_coded_units(f, n, p):
    return ref_average(f, 6, p)


def with_the_library(f, n, p):
    return db.subnetwork_average(lambda masks: torch.stack([f(m) for m in masks]), n, p)


@pytest.mark.parametrize("fn, hints", [
    (uniform_average, ["weight 1/2^n", "p = 1/2 only"]),
    (swapped_average, ["swap drop and keep"]),
    (sampled_average, ["you are sampling masks", "enumerates all 2^n masks"]),
    (mean_mask, ["mean mask", "weight-scaled network"]),
    (half_the_masks, ["distinct masks", "all 2^n"]),
    (hard_coded_rate, ["does not change with p", "hard-coded"]),
    (hard_coded_units, ["f expects one mask", "shape"]),
    (with_the_library, ["dropoutbook.subnetwork_average", "forbids"]),
    (lambda f, n, p: f(torch.ones(n + 1)), ["f expects one mask"]),
    (lambda f, n, p: None, ["the average should be a number", "NoneType"]),
], ids=["uniform", "swapped", "sampled", "mean-mask", "half", "hard-coded-p", "hard-coded-n", "library",
        "wrong-mask", "none"])
def test_check_subnetwork_average_names_mistakes(fn, hints):
    assert_fails(check_subnetwork_average, fn, *hints)


def test_check_subnetwork_average_tries_several_sizes_and_rates():
    seen = []

    def spy(f, n, p):
        seen.append((n, p))
        return ref_average(f, n, p)

    check_subnetwork_average(spy)
    assert len({n for n, _ in seen}) >= 3 and len({p for _, p in seen}) >= 3 and all(p != 0.5 for _, p in seen)


def test_check_subnetwork_average_restores_the_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_subnetwork_average(ref_average)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# path predictions


def predicted(survival=None, count=None, widths=PATH_EXERCISE["widths"], p=PATH_EXERCISE["p"],
              input_p=PATH_EXERCISE["input_p"]):
    right = (1 - input_p) * (1 - p) ** (len(widths) - 2)
    survival = right if survival is None else survival
    count = math.prod(widths) * right if count is None else count
    return lambda: {"survival": survival, "expected_active_paths": count}


def test_check_path_predictions_passes_reference(capsys):
    assert_passes(capsys, check_path_predictions, predicted())


def test_path_exercise_does_not_hide_a_swap():
    assert PATH_EXERCISE["p"] != 0.5 and PATH_EXERCISE["input_p"] != 0.5


@pytest.mark.parametrize("convert", [np.float64, np.int64, torch.tensor, lambda v: torch.tensor(v).round()],
                         ids=["np.float64", "np.int64", "tensor", "rounded-tensor"])
def test_check_path_predictions_accepts_any_real_number_type(capsys, convert):
    right = predicted()()
    answer = {"survival": right["survival"], "expected_active_paths": convert(round(right["expected_active_paths"]))}
    assert_passes(capsys, check_path_predictions, lambda: answer)


def test_check_path_predictions_takes_the_instructors_numbers(capsys):
    numbers = {"widths": (20, 50, 50, 5), "p": 0.3, "input_p": 0.1}
    check = functools.partial(check_path_predictions, **numbers)
    assert_passes(capsys, check, predicted(**numbers))
    assert_fails(check, predicted(), "is not right")
    with pytest.raises(ValueError, match="widths"):
        check_path_predictions(predicted(), widths=(10, 0, 5))
    with pytest.raises(ValueError, match="input_p must be in"):
        check_path_predictions(predicted(), input_p=1.0)


def test_check_path_predictions_starter():
    assert_fails(check_path_predictions, starter, "not written yet")


P, PIN = PATH_EXERCISE["p"], PATH_EXERCISE["input_p"]


@pytest.mark.parametrize("fn, hints", [
    (predicted(survival=(1 - P) ** 3), ["left out the input dropout"]),
    (predicted(survival=(1 - PIN) * (1 - P) ** 4), ["output unit is never dropped"]),
    (predicted(survival=P**3 * PIN), ["probability of dropping"]),
    (predicted(survival=P**3 * (1 - PIN)), ["probability of dropping"]),
    (predicted(survival=(1 - P) ** 3 * PIN), ["input_p is the probability of dropping an input"]),
    (predicted(count=100**3 * (1 - PIN) * (1 - P) ** 3), ["hidden layers only", "64 inputs"]),
    (predicted(count=64 * 100**3 * 10), ["without dropout", "linearity of expectation"]),
    (predicted(count=12.0), ["(number of paths)"]),
    (predicted(count=float("nan")), ["expected_active_paths is NaN"]),
    (predicted(survival="0.1728"), ["survival should be a number", "string"]),
    (lambda: {"survival": 0.1}, ["exactly the keys ['survival', 'expected_active_paths']",
                                 "missing ['expected_active_paths']"]),
    (lambda: (0.1728, 1.1e8), ["should return a dict", "'survival'"]),
], ids=["no-input", "output-dropped", "swapped", "swapped-hidden", "swapped-input", "hidden-only", "no-dropout",
        "other", "nan", "str", "missing-key", "tuple"])
def test_check_path_predictions_names_mistakes(fn, hints):
    assert_fails(check_path_predictions, fn, *hints)


# --------------------------------------------------------------------------------------------
# more typical wrong answers (red team)


def terms_with_biased_variance(preds, target):  # 2 × biased variance = D over all T² pairs
    individual = ((preds - target) ** 2).mean()
    ensemble = ((preds.mean(0) - target) ** 2).mean()
    return individual, ensemble, 2 * preds.var(0, unbiased=False).mean()


def terms_in_float32(preds, target):
    return ref_terms(preds.float(), target.float())


def terms_with_unbiased_variance(preds, target):  # correct: 2 × the unbiased variance over members is D
    individual = ((preds - target) ** 2).mean()
    ensemble = ((preds.mean(0) - target) ** 2).mean()
    return individual, ensemble, 2 * preds.var(0).mean()


@pytest.mark.parametrize("fn, hints", [
    (terms_with_biased_variance, ["pairs i = j", "biased variance"]),
    (terms_in_float32, ["dtype torch.float32", "dtype of the inputs"]),
])
def test_check_ensemble_terms_names_more_mistakes(fn, hints):
    assert_fails(check_ensemble_terms, fn, *hints)


def test_check_ensemble_terms_accepts_the_unbiased_variance(capsys):
    assert_passes(capsys, check_ensemble_terms, terms_with_unbiased_variance)


def average_sampled_with_a_fixed_seed(f, n, p):  # reproducible, sees every mask, but only approximate
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(20_000, n, generator=g, dtype=torch.float64) >= p).to(torch.float64)
    return torch.stack([f(m) for m in masks]).mean().item()


def average_keep_weights_only(f, n, p):
    return sum((1 - p) ** sum(bits) * float(f(torch.tensor(bits, dtype=torch.float64)))
               for bits in itertools.product((0.0, 1.0), repeat=n))


@pytest.mark.parametrize("fn, hints", [
    (average_sampled_with_a_fixed_seed, ["close to the exact one", "sampling masks"]),
    (average_keep_weights_only, ["(1-p)^(kept) only", "p^(dropped)"]),
])
def test_check_subnetwork_average_names_more_mistakes(fn, hints):
    assert_fails(check_subnetwork_average, fn, *hints)


_PATHS = math.prod(PATH_EXERCISE["widths"])
_SURVIVAL = (1 - PIN) * (1 - P) ** 3


@pytest.mark.parametrize("count, hints", [
    (_PATHS / 10 * _SURVIVAL, ["leaves out the 10 outputs"]),
    (_PATHS / 64 * _SURVIVAL, ["leaves out the 64 inputs"]),
    (sum(PATH_EXERCISE["widths"]) * _SURVIVAL, ["sum of the widths"]),
])
def test_check_path_predictions_names_wrong_path_counts(count, hints):
    assert_fails(check_path_predictions, lambda: {"survival": _SURVIVAL, "expected_active_paths": count}, *hints)
