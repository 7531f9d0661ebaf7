"""Checker layer of chapter 3, "The Jensen bias": every checker passes the reference solution,
fails the blank starter with "not written yet", and fails typical wrong answers with their hint."""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
import torch

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
# exercise 1: the quadratic gap


def ref_quadratic():
    dist = {m: derivations.Bernoulli(1 - p)}
    out = {}
    for name, z in [("inverted", m * x / (1 - p)), ("standard", m * x)]:
        out[name] = derivations.expectation(z**2, dist) - derivations.expectation(z, dist) ** 2
    return out


def test_quadratic_reference_passes(capsys):
    assert_passes(capsys, check_quadratic_gap, ref_quadratic)


def test_quadratic_starter_fails():
    assert_fails(check_quadratic_gap, starter, "not written yet")


@pytest.mark.parametrize("answer, hints", [
    ({"inverted": x**2 * (1 - p) / p, "standard": p * (1 - p) * x**2}, ["'inverted'", "KEEP probability"]),
    ({"inverted": p * (1 - p) * x**2, "standard": p * (1 - p) * x**2}, ["'inverted'", "other scaling"]),
    ({"inverted": x**2 / (1 - p), "standard": p * (1 - p) * x**2}, ["E[f(z)] = E[z²] only"]),
    ({"inverted": p * x**2 / (1 - p), "standard": (1 - p) * x**2}, ["'standard'", "E[z²] only"]),
    ({"inverted": -p * x**2 / (1 - p), "standard": p * (1 - p) * x**2}, ["sign is reversed"]),
    ({"inverted": p * x**2 / (1 - p) ** 2, "standard": p * (1 - p) * x**2}, ["cancels"]),
    ({"inverted": p * x**3, "standard": p * (1 - p) * x**2}, ["at p = 0.25"]),
    ({"inverted": sp.Symbol("q") * x**2, "standard": p * (1 - p) * x**2}, ["symbols ['q']"]),
    ({"inverted": p * x**2 / (1 - p)}, ["exactly the keys"]),
])
def test_quadratic_wrong_answers_fail_with_their_hint(answer, hints):
    assert_fails(check_quadratic_gap, lambda: answer, *hints)


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


def test_exact_reference_passes(capsys):
    assert_passes(capsys, check_exact_ensemble_mean, ref_exact)


def test_exact_starter_fails():
    assert_fails(check_exact_ensemble_mean, starter, "not written yet")


@pytest.mark.parametrize("wrong, hints", [
    (lambda f, w, x, p: enumerate_mean(f, w, x, 1 - p, 1 / (1 - p), weighted=False), ["same weight", "(1-p)^k"]),
    (lambda f, w, x, p: enumerate_mean(f, w, x, p, 1 / (1 - p)), ["keeps a unit with probability p"]),
    (lambda f, w, x, p: enumerate_mean(f, w, x, 1 - p, 1.0), ["not divided by 1 - p"]),
    (lambda f, w, x, p: f(w @ x).item(), ["f(E[z])"]),
    (lambda f, w, x, p: ref_exact(f, w, x, p) + 0.01, ["but E[f(z)] ="]),
    (lambda f, w, x, p: torch.zeros(2), ["one number"]),
])
def test_exact_wrong_answers_fail_with_their_hint(wrong, hints):
    assert_fails(check_exact_ensemble_mean, wrong, *hints)


def test_exact_in_place_modification_fails():
    def in_place(f, w, x, p):
        value = ref_exact(f, w, x, p)
        x.mul_(2)
        return value
    assert_fails(check_exact_ensemble_mean, in_place, "in place")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the delta-method terms


def ref_delta():
    w, xs, q = DELTA_EXERCISE["w"], DELTA_EXERCISE["x"], 1 - DELTA_EXERCISE["p"]
    mu = sum(a * b for a, b in zip(w, xs))
    var = (1 - q) / q * sum((a * b) ** 2 for a, b in zip(w, xs))
    t = math.tanh(mu)
    return {"mean": mu, "variance": var, "delta": 0.5 * (-2 * t * (1 - t**2)) * var}


def test_delta_reference_passes(capsys):
    assert_passes(capsys, check_delta_prediction, ref_delta)


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
])
def test_delta_wrong_answers_fail_with_their_hint(key, transform, hint):
    assert_fails(check_delta_prediction, _changed(**{key: transform(ref_delta())}), hint)


def test_delta_bad_types_fail():
    assert_fails(check_delta_prediction, lambda: [1, 2, 3], "exactly the keys")
    assert_fails(check_delta_prediction, _changed(delta="small"), "should be a number")


def test_delta_exercise_numbers_are_derived_values():
    # mu = 0.5 - 0.4 + 0.9 = 1, Var = 0.2/0.8 * (0.25 + 0.16 + 0.81) = 0.305
    r = ref_delta()
    assert r["mean"] == pytest.approx(1.0) and r["variance"] == pytest.approx(0.305)


# --------------------------------------------------------------------------------------------
# exercise 4: Monte-Carlo estimate with standard error


def mc(f, w, x, p, n, generator, *, scale=None, sd=False, average_first=False):
    scale = 1 / (1 - p) if scale is None else scale
    masks = (torch.rand((n, len(x)), generator=generator, dtype=x.dtype) >= p).to(x.dtype)
    z = masks @ (w * x) * scale
    values = f(z.mean()).repeat(n) + 0 * z if average_first else f(z)
    det = f(w @ x * (1 - p) * scale)
    se = values.std() if sd else values.std() / math.sqrt(n)
    if average_first:
        se = f(z).std() / math.sqrt(n)
    return (values.mean() - det).item(), se.item()


def test_mc_reference_passes(capsys):
    assert_passes(capsys, check_mc_jensen_gap, mc)


def test_mc_starter_fails():
    assert_fails(check_mc_jensen_gap, starter, "not written yet")


@pytest.mark.parametrize("wrong, hint", [
    (lambda *a: mc(*a, sd=True), "divides it by √n"),
    (lambda *a: mc(*a, scale=1.0), "without rescaling"),
    (lambda *a: mc(*a, average_first=True), "average f(z) instead"),
    (lambda f, w, x, p, n, g: (mc(f, w, x, p, n, g)[0], 0.0), "must be positive"),
    (lambda f, w, x, p, n, g: (mc(f, w, x, p, n, g)[0], 3 * mc(f, w, x, p, n, g)[1]), "close to √(Var[f(z)]/n)"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, None), "same seed"),
    (lambda f, w, x, p, n, g: mc(f, w, x, p, n, g)[0], "pair"),
])
def test_mc_wrong_answers_fail_with_their_hint(wrong, hint):
    assert_fails(check_mc_jensen_gap, wrong, hint)


def test_checkers_restore_the_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_mc_jensen_gap(mc)
    assert torch.equal(torch.get_rng_state(), before)
