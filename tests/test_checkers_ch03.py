"""Checker layer of chapter 3, "The Jensen bias": every checker passes the reference solution and
correct answers written differently, fails the blank starter with "not written yet", and fails the
typical wrong answers a student writes, each with its hint."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    DELTA_EXERCISE,
    check_delta_prediction,
    check_exact_ensemble_mean,
    check_mc_jensen_gap,
    check_quadratic_gap,
)
from helpers import assert_fails, assert_passes, starter

p, x = derivations.drop_rate, sp.Symbol("x", real=True)
m = sp.Symbol("m")


# --------------------------------------------------------------------------------------------
# exercise 1: the quadratic gap, for the mask distribution and the scale the checker passes


def ref_quadratic(mask, scale):
    z = m * x / scale
    dist = {m: mask}
    mean = derivations.expectation(z, dist)
    return {"mean": mean, "gap": sp.simplify(derivations.expectation(z**2, dist) - mean**2)}


def quadratic_with_variance(mask, scale):
    xx = sp.Symbol("x")  # a plain symbol, as a student may write it
    z = xx * m / scale
    return {"gap": derivations.variance(z, {m: mask}), "mean": derivations.expectation(z, {m: mask})}


def quadratic_by_enumeration(mask, scale):
    z = m * x / scale
    first = derivations.expectation(z, {m: mask}, method="enumerate")
    return {"mean": first, "gap": sp.expand(derivations.expectation(z**2, {m: mask}, method="enumerate") - first**2)}


@pytest.mark.parametrize("fn", [ref_quadratic, quadratic_with_variance, quadratic_by_enumeration])
def test_quadratic_passes_correct_derivations(capsys, fn):
    assert_passes(capsys, check_quadratic_gap, fn)


def test_quadratic_starter_fails():
    assert_fails(check_quadratic_gap, starter, "not written yet")


def with_z(make_z, dist=None):
    def fn(mask, scale):
        z = make_z(scale)
        d = {m: mask if dist is None else dist}
        mean = derivations.expectation(z, d)
        return {"mean": mean, "gap": derivations.expectation(z**2, d) - mean**2}
    return fn


def typed_following_the_scale(mask, scale):  # typed in, but written for any scale
    return {"mean": (1 - p) * x / scale, "gap": p * (1 - p) * x**2 / scale**2}


def typed_ignoring_the_scale(mask, scale):
    return {"mean": x, "gap": p * x**2 / (1 - p)}


def second_moment_only(mask, scale):
    z = m * x / scale
    return {"mean": derivations.expectation(z, {m: mask}), "gap": derivations.expectation(z**2, {m: mask})}


def reversed_sign(mask, scale):
    out = ref_quadratic(mask, scale)
    return {"mean": out["mean"], "gap": -out["gap"]}


def keep_convention(mask, scale):  # the often-quoted x^2 (1-p)/p for inverted dropout
    out = ref_quadratic(mask, scale)
    return {**out, "gap": x**2 * (1 - p) / p} if scale != 1 else out


def one_factor_too_many(mask, scale):
    out = ref_quadratic(mask, scale)
    return {**out, "gap": p * x**2 / (1 - p) ** 2} if scale != 1 else out


@pytest.mark.parametrize("fn, hints", [
    (typed_following_the_scale, ["typed in", "the argument mask"]),
    (with_z(lambda s: m * x / s, dist=derivations.Bernoulli(1 - p)), ["typed in", "a fixed distribution"]),
    (typed_ignoring_the_scale, ["scale = 1", "divide by scale"]),
    (with_z(lambda s: m * x / s, dist=derivations.Bernoulli(p)), ["'mean'", "Bernoulli(p)"]),
    (with_z(lambda s: m * x * s), ["'mean'", "multiplied by scale"]),
    (with_z(lambda s: m * x / (1 - p)), ["scale = 1", "divide by scale"]),
    (second_moment_only, ["'gap'", "E[f(z)] = E[z²] only"]),
    (reversed_sign, ["'gap'", "sign is reversed"]),
    (keep_convention, ["'gap'", "KEEP probability"]),
    (one_factor_too_many, ["'gap'", "cancels"]),
    (lambda mask, scale: {"mean": x, "gap": p * x**3}, ["'gap'", "at p = 0.25"]),
    (lambda mask, scale: {"mean": x, "gap": sp.Symbol("q") * x**2}, ["symbols ['q']"]),
    (lambda mask, scale: {"gap": p * x**2 / (1 - p)}, ["exactly the keys ['mean', 'gap']", "missing ['mean']"]),
    (lambda mask, scale: p * x**2 / (1 - p), ["should return a dict", "'gap'"]),
], ids=["typed", "fixed-distribution", "typed-no-scale", "swapped", "multiplied", "scale-ignored", "second-moment",
        "sign", "keep-convention", "cancels", "other", "unknown-symbol", "missing-key", "not-a-dict"])
def test_quadratic_wrong_answers_fail_with_their_hint(fn, hints):
    assert_fails(check_quadratic_gap, fn, *hints)


def test_quadratic_messages_do_not_speak_of_seeds():
    message = assert_fails(check_quadratic_gap, keep_convention)
    assert "seed" not in message


# --------------------------------------------------------------------------------------------
# exercise 2: exact ensemble mean


def enumerate_mean(f, w, x, keep, scale, weighted=True):
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=len(x)):
        mask = torch.tensor(bits, dtype=x.dtype)
        k = int(sum(bits))
        prob = keep**k * (1 - keep) ** (len(x) - k) if weighted else 0.5 ** len(x)
        total += prob * f((w * mask * x).sum() * scale).item()
    return total


def ref_exact(f, w, x, p):
    return enumerate_mean(f, w, x, 1 - p, 1 / (1 - p))


def exact_vectorized(f, w, x, p):  # all masks at once
    n = len(x)
    masks = torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=x.dtype)
    probs = torch.where(masks == 1, 1 - p, p).prod(dim=1)
    return (probs * f(masks @ (w * x) / (1 - p))).sum()


def exact_with_bits(f, w, x, p):  # masks from the bits of an integer
    n, total = x.numel(), 0.0
    for code in range(2**n):
        mask = torch.tensor([(code >> i) & 1 for i in range(n)], dtype=torch.float64)
        weight = math.prod(1 - p if b else p for b in mask.tolist())
        total += weight * float(f(torch.dot(w * mask, x) / (1 - p)))
    return total


@pytest.mark.parametrize("fn", [ref_exact, exact_vectorized, exact_with_bits])
def test_exact_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_exact_ensemble_mean, fn)


def test_exact_starter_fails():
    assert_fails(check_exact_ensemble_mean, starter, "not written yet")


def hard_coded_length(f, w, x, p):  # five inputs typed in
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=5):
        mask = torch.tensor(bits, dtype=x.dtype)
        total += (1 - p) ** sum(bits) * p ** (5 - sum(bits)) * f((w * mask * x).sum() / (1 - p)).item()
    return total


def sampled(f, w, x, p):
    masks = (torch.rand(100_000, len(x), dtype=x.dtype) >= p).to(x.dtype)
    return f(masks @ (w * x) / (1 - p)).mean().item()


def in_place(f, w, x, p):
    value = ref_exact(f, w, x, p)
    x.mul_(2)
    return value


@pytest.mark.parametrize("wrong, hints", [
    (lambda f, w, x, p: enumerate_mean(f, w, x, 1 - p, 1 / (1 - p), weighted=False), ["same weight", "(1-p)^k"]),
    (lambda f, w, x, p: enumerate_mean(f, w, x, p, 1 / (1 - p)), ["keeps a unit with probability p"]),
    (lambda f, w, x, p: enumerate_mean(f, w, x, 1 - p, 1.0), ["not divided by 1 - p"]),
    (lambda f, w, x, p: enumerate_mean(f, w, x, 1 - p, 1 / p), ["divided by p"]),
    (lambda f, w, x, p: f(w @ x).item(), ["f(E[z])"]),
    (lambda f, w, x, p: ref_exact(f, w, x, 0.3), ["does not change with p", "hard-coded"]),
    (hard_coded_length, ["raised RuntimeError", "inputs"]),
    (sampled, ["you are sampling", "two calls"]),
    (in_place, ["in place"]),
    (lambda f, w, x, p: db.jensen_gap(f, w, x, p).ensemble_mean, ["dropoutbook.jensen_gap", "forbids"]),
    (lambda f, w, x, p: ref_exact(f, w, x, p) + 0.01, ["but E[f(z)] ="]),
    (lambda f, w, x, p: torch.zeros(2), ["one number"]),
    (lambda f, w, x, p: float("nan"), ["NaN"]),
], ids=["uniform", "swapped", "unscaled", "divide-by-p", "f-of-mean", "hard-coded-p", "hard-coded-n", "sampled",
        "in-place", "library", "other", "vector", "nan"])
def test_exact_wrong_answers_fail_with_their_hint(wrong, hints):
    assert_fails(check_exact_ensemble_mean, wrong, *hints)


def test_exact_tries_several_lengths_and_rates():
    seen = []

    def spy(f, w, x, p):
        seen.append((len(x), p))
        return ref_exact(f, w, x, p)

    check_exact_ensemble_mean(spy)
    assert len({n for n, _ in seen}) >= 3 and len({q for _, q in seen}) >= 3 and all(q != 0.5 for _, q in seen)


# --------------------------------------------------------------------------------------------
# exercise 3: predict the delta-method terms


def ref_delta(w=DELTA_EXERCISE["w"], x=DELTA_EXERCISE["x"], p=DELTA_EXERCISE["p"]):
    mu = sum(a * b for a, b in zip(w, x))
    var = p / (1 - p) * sum((a * b) ** 2 for a, b in zip(w, x))
    t = math.tanh(mu)
    return {"mean": mu, "variance": var, "delta": 0.5 * (-2 * t * (1 - t**2)) * var}


def test_delta_reference_passes(capsys):
    assert_passes(capsys, check_delta_prediction, ref_delta)


@pytest.mark.parametrize("convert", [np.float64, torch.tensor, lambda v: np.array(v), sp.Float],
                         ids=["np.float64", "tensor", "0-d-array", "sympy"])
def test_delta_accepts_any_real_number_type(capsys, convert):
    assert_passes(capsys, check_delta_prediction, lambda: {k: convert(v) for k, v in ref_delta().items()})


def test_delta_takes_the_instructors_numbers(capsys):
    numbers = {"w": (1.0, 0.5), "x": (-0.3, 0.8), "p": 0.4}
    check = functools.partial(check_delta_prediction, **numbers)
    assert_passes(capsys, check, lambda: ref_delta(**numbers))
    assert_fails(check, ref_delta, "is not right")
    with pytest.raises(ValueError, match="w and x"):
        check_delta_prediction(ref_delta, w=(1.0,), x=(1.0, 2.0))
    with pytest.raises(ValueError, match="p must be in"):
        check_delta_prediction(ref_delta, p=-0.1)


def test_delta_starter_fails():
    assert_fails(check_delta_prediction, starter, "not written yet")


def _changed(**kw):
    out = ref_delta()
    out.update(kw)
    return lambda: out


@pytest.mark.parametrize("key, transform, hint", [
    ("mean", lambda r: 0.8 * r["mean"], "factor 1/(1-p) cancels"),
    ("variance", lambda r: 0.2 * 0.8 * r["variance"] / 0.25, "without rescaling"),
    ("variance", lambda r: 0.25 * r["mean"] ** 2, "variances of the terms add"),
    ("variance", lambda r: 16 * r["variance"], "keep probability"),
    ("delta", lambda r: 2 * r["delta"], "left out the ½"),
    ("delta", lambda r: -r["delta"], "sign is wrong"),
    ("delta", lambda r: 0.5 * (1 - math.tanh(r["mean"]) ** 2) * r["variance"], "first derivative"),
    ("delta", lambda r: r["delta"] + 0.01, "recompute"),
    ("delta", lambda r: float("nan"), "delta is NaN"),
    ("delta", lambda r: "-0.0976", "got the string"),
    ("mean", lambda r: None, "got NoneType"),
])
def test_delta_wrong_answers_fail_with_their_hint(key, transform, hint):
    assert_fails(check_delta_prediction, _changed(**{key: transform(ref_delta())}), hint)


def test_delta_bad_types_fail():
    assert_fails(check_delta_prediction, lambda: [1, 2, 3], "should return a dict", "'mean', 'variance', 'delta'")
    assert_fails(check_delta_prediction, lambda: {"mean": 1.0}, "missing ['variance', 'delta']")


def test_delta_exercise_numbers_are_derived_values():
    # mu = 0.5 - 0.4 + 0.9 = 1, Var = 0.2/0.8 * (0.25 + 0.16 + 0.81) = 0.305
    r = ref_delta()
    assert r["mean"] == pytest.approx(1.0) and r["variance"] == pytest.approx(0.305)


# --------------------------------------------------------------------------------------------
# exercise 4: Monte-Carlo estimate with standard error


def mc(f, w, x, p, n, generator, *, scale=None, keep=None, sd=False, average_first=False, shared=False):
    scale = 1 / (1 - p) if scale is None else scale
    keep = 1 - p if keep is None else keep
    shape = (n, 1) if shared else (n, len(x))
    masks = (torch.rand(shape, generator=generator, dtype=x.dtype) < keep).to(x.dtype)
    z = (masks * (w * x)).sum(1) * scale
    values = f(z.mean()).repeat(n) + 0 * z if average_first else f(z)
    det = f(w @ x)
    se = values.std() if sd else values.std() / math.sqrt(n)
    if average_first:
        se = f(z).std() / math.sqrt(n)
    return (values.mean() - det).item(), se.item()


def mc_with_bernoulli(f, w, x, p, n, generator):
    masks = torch.empty(n, x.numel(), dtype=x.dtype).bernoulli_(1 - p, generator=generator)
    values = f((masks * w * x).sum(dim=1) / (1 - p))
    return float(values.mean() - f((w * x).sum())), float(values.std(unbiased=False) / n**0.5)


def mc_in_chunks(f, w, x, p, n, generator):  # two halves, then pooled
    parts = [f(((torch.rand(n // 2, len(x), generator=generator, dtype=x.dtype) > p) * (w * x)).sum(1) / (1 - p))
             for _ in range(2)]
    values = torch.cat(parts)
    return (values.mean() - f(w @ x)).item(), (values.var() / len(values)).sqrt().item()


@pytest.mark.parametrize("fn", [mc, mc_with_bernoulli, mc_in_chunks])
def test_mc_passes_correct_answers(capsys, fn):
    assert_passes(capsys, check_mc_jensen_gap, fn)


def test_mc_starter_fails():
    assert_fails(check_mc_jensen_gap, starter, "not written yet")


def mc_own_generator(f, w, x, p, n, generator):  # reproducible, but ignores the argument
    return mc(f, w, x, p, n, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("wrong, hint", [
    (lambda *a: mc(*a, sd=True), "divides it by √n"),
    (lambda *a: mc(*a, scale=1.0), "without rescaling"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, g, keep=p), "keeps a unit with probability p"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, g, scale=1 / p), "divided by p"),
    (lambda *a: mc(*a, shared=True), "one keep decision per sample"),
    (lambda *a: mc(*a, average_first=True), "average f(z) instead"),
    (lambda f, w, x, p, n, g: mc(f, w, x, 0.3, n, g), "does not follow p"),
    (lambda f, w, x, p, n, g: (mc(f, w, x, p, n, g)[0], 0.0), "must be positive"),
    (lambda f, w, x, p, n, g: (mc(f, w, x, p, n, g)[0], 3 * mc(f, w, x, p, n, g)[1]), "close to √(Var[f(z)]/n)"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, None), "same seed"),
    (mc_own_generator, "different seeds"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, g)[0], "pair"),
    (lambda f, w, x, p, n, g: (float("nan"), 0.1), "NaN"),
])
def test_mc_wrong_answers_fail_with_their_hint(wrong, hint):
    assert_fails(check_mc_jensen_gap, wrong, hint)


def test_mc_checker_has_power_against_the_wrong_estimators():
    # The checker's cases must separate each wrong estimator from the truth, and from each other, by
    # far more than its 5 standard errors: compute their exact expectations by enumeration.
    from dropoutbook.exercises.ch03 import _MC_CASES, _MC_N, _mc_rates

    for (f, w, xs), p in zip(_MC_CASES, _mc_rates()):
        w, xs = torch.tensor(w, dtype=torch.float64), torch.tensor(xs, dtype=torch.float64)
        det = f(w @ xs).item()

        def gap(keep, scale):
            mean = enumerate_mean(f, w, xs, keep, scale)
            second = enumerate_mean(lambda z: f(z) ** 2, w, xs, keep, scale)
            return mean - det, math.sqrt((second - mean**2) / _MC_N)

        zero = f(torch.tensor(0.0, dtype=torch.float64)).item()
        shared_mean = (1 - p) * f(w @ xs / (1 - p)).item() + p * zero
        shared_second = (1 - p) * f(w @ xs / (1 - p)).item() ** 2 + p * zero**2
        estimators = {
            "truth": gap(1 - p, 1 / (1 - p)), "unscaled": gap(1 - p, 1.0), "swapped": gap(p, 1 / (1 - p)),
            "divide-by-p": gap(1 - p, 1 / p), "average-first": (0.0, gap(1 - p, 1 / (1 - p))[1]),
            "shared": (shared_mean - det, math.sqrt((shared_second - shared_mean**2) / _MC_N)),
        }
        for (a, (ga, sa)), (b, (gb, sb)) in itertools.combinations(estimators.items(), 2):
            assert abs(ga - gb) > 20 * max(sa, sb), (p, a, b, ga, gb, max(sa, sb))


def test_checkers_restore_the_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_mc_jensen_gap(mc)
    assert torch.equal(torch.get_rng_state(), before)


# --------------------------------------------------------------------------------------------
# more typical wrong answers (red team)


def gap_minus_mean(mask, scale):  # E[z²] − E[z]: the square of the mean forgotten
    z = m * x / scale
    mean = derivations.expectation(z, {m: mask})
    return {"mean": mean, "gap": derivations.expectation(z**2, {m: mask}) - mean}


def exact_scaled_outside(f, w, x, p):
    return enumerate_mean(f, w, x, 1 - p, 1.0) / (1 - p)


def exact_sampled_with_a_fixed_seed(f, w, x, p):
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(200_000, len(x), generator=g, dtype=x.dtype) >= p).to(x.dtype)
    return f(masks @ (w * x) / (1 - p)).mean().item()


def mc_with_tanh(f, w, x, p, n, generator):  # right for the checker's tanh units only
    return mc(torch.tanh, w, x, p, n, generator)


def mc_same_masks_twice(f, w, x, p, n, generator):  # n/2 masks, each used twice: right mean, too small stderr
    masks = (torch.rand(n // 2, len(x), generator=generator, dtype=x.dtype) >= p).to(x.dtype).repeat(2, 1)
    values = f(masks @ (w * x) / (1 - p))
    return (values.mean() - f(w @ x)).item(), (values.std() / math.sqrt(n)).item()


def mc_stderr_over_n(f, w, x, p, n, generator):
    gap, se = mc(f, w, x, p, n, generator)
    return gap, se / math.sqrt(n)


def test_quadratic_names_the_mean_subtracted_unsquared():
    assert_fails(check_quadratic_gap, gap_minus_mean, "you subtracted E[z]")


def test_quadratic_compares_values_where_x_and_x_squared_differ():
    message = assert_fails(check_quadratic_gap, lambda mask, scale: {**ref_quadratic(mask, scale), "gap": sp.Integer(1)},
                           "x = 1.5")
    assert "x = 1," not in message


@pytest.mark.parametrize("wrong, hints", [
    (exact_scaled_outside, ["divided f's average by 1 - p"]),
    (exact_sampled_with_a_fixed_seed, ["close, but not exact", "enumerate all 2^N masks"]),
])
def test_exact_names_more_mistakes(wrong, hints):
    assert_fails(check_exact_ensemble_mean, wrong, *hints)


@pytest.mark.parametrize("key, transform, hint", [
    ("variance", lambda r: r["variance"] / 0.8, "one factor 1/(1-p) too many"),
    ("delta", lambda r: r["delta"] * 0.16 / 0.25, "variance of standard dropout"),
])
def test_delta_names_more_mistakes(key, transform, hint):
    assert_fails(check_delta_prediction, _changed(**{key: transform(ref_delta())}), hint)


@pytest.mark.parametrize("wrong, hints", [
    (mc_with_tanh, ["applied the function f passed as argument to 0 values", "need not be torch.tanh"]),
    (mc_same_masks_twice, ["not independent", "samples 40000 apart"]),
    (mc_stderr_over_n, ["divided by n = 80000 instead of √n"]),
])
def test_mc_names_more_mistakes(wrong, hints):
    assert_fails(check_mc_jensen_gap, wrong, *hints)
