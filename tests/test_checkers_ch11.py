"""Checkers of chapter 11, "Dropout in recurrent networks": the reference passes, the blank starter
fails with "not written yet", differently written correct answers pass, and typical wrong answers
fail with their specific hint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    CONNECT_EXERCISE,
    check_connect_covariance,
    check_gain_moments,
    check_locked_dropout,
    check_zoneout_test_time,
)
from helpers import assert_fails, assert_passes, starter


# --------------------------------------------------------------------------------------------
# exercise 1: locked dropout


def ref_locked(x, p, batch_first=False, training=True):
    if not training or p == 0:
        return x.clone()
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    keep = (torch.rand(shape) >= p).to(x.dtype)  # one draw per sequence and feature
    return x * keep / (1 - p)


def locked_by_transposing(x, p, batch_first=False, training=True):  # written differently: time-major inside
    if not training:
        return x
    t = x.transpose(0, 1) if batch_first else x
    mask = torch.bernoulli(torch.full_like(t[0], 1 - p)) / (1 - p)
    out = t * mask  # broadcast over time
    return out.transpose(0, 1) if batch_first else out


def per_step(x, p, batch_first=False, training=True):
    return torch.nn.functional.dropout(x, p, training=training)


def batch_first_ignored(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand(1, x.shape[1], x.shape[2]) >= p) / (1 - p)


def shared_over_batch(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    shape = (1, 1, x.shape[2])
    return x * (torch.rand(shape) >= p) / (1 - p)


def shared_over_features(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    shape = (x.shape[0], 1, 1) if batch_first else (1, x.shape[1], 1)
    return x * (torch.rand(shape) >= p) / (1 - p)


def keep_drop_swapped(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    return x * (torch.rand(shape) < p) / (1 - p)


def no_scaling(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    return x * (torch.rand(shape) >= p)


def hard_coded_p(x, p, batch_first=False, training=True):
    return ref_locked(x, 0.3, batch_first, training)


def in_place(x, p, batch_first=False, training=True):
    if not training:
        return x
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    return x.mul_((torch.rand(shape) >= p) / (1 - p))


def scaled_at_test_time(x, p, batch_first=False, training=True):
    return ref_locked(x, p, batch_first) if training else x * (1 - p)


def float64_output(x, p, batch_first=False, training=True):
    return ref_locked(x.double(), p, batch_first, training)


def test_locked_reference_library_and_variants_pass(capsys):
    assert_passes(capsys, check_locked_dropout, ref_locked)
    assert_passes(capsys, check_locked_dropout, locked_by_transposing)
    assert_passes(capsys, check_locked_dropout,
                  lambda x, p, batch_first=False, training=True: db.locked_dropout(x, p, batch_first=batch_first,
                                                                                  training=training))
    assert check_locked_dropout(ref_locked, seed=5).passed  # another instructor draw


def test_locked_starter_fails():
    assert_fails(check_locked_dropout, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (per_step, ["mask drawn per time step", "ONCE per sequence and feature"]),
    (batch_first_ignored, ["batch_first was ignored"]),
    (shared_over_batch, ["shared over the batch"]),
    (shared_over_features, ["shared over the features"]),
    (keep_drop_swapped, ["DROP probability"]),
    (no_scaling, ["did you forget to divide by 1 - p"]),
    (hard_coded_p, ["ignores its argument p"]),
    (in_place, ["changed its input x in place"]),
    (scaled_at_test_time, ["training=False the output should equal the input"]),
    (float64_output, ["keep the input's dtype"]),
    (lambda x, p, batch_first=False, training=True: x.sum(), ["should return a tensor of the input's shape"]),
])
def test_locked_typical_mistakes(fn, hints):
    assert_fails(check_locked_dropout, fn, *hints)


def test_locked_draws_several_shapes_and_probabilities():
    seen = []

    def spy(x, p, batch_first=False, training=True):
        seen.append((tuple(x.shape), p, batch_first))
        return ref_locked(x, p, batch_first, training)

    check_locked_dropout(spy)
    assert len({s for s, _, _ in seen}) == 3 and len({p for _, p, _ in seen}) >= 3
    assert {b for _, _, b in seen} == {True, False}
    assert all(abs(p - 0.5) >= 0.1 for _, p, _ in seen if p)
    other = []
    check_locked_dropout(lambda x, p, batch_first=False, training=True: other.append(p) or ref_locked(
        x, p, batch_first, training), seed=5)
    assert set(other) != {p for _, p, _ in seen}


def test_locked_checker_restores_the_rng_and_rejects_a_bad_seed():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_locked_dropout(ref_locked)
    assert torch.equal(torch.rand(3), expected)
    for bad, error in [(0, ValueError), ("1", TypeError), (True, TypeError)]:
        with pytest.raises(error, match="seed"):
            check_locked_dropout(ref_locked, seed=bad)


# --------------------------------------------------------------------------------------------
# exercise 2: derive the gain moments


def ref_gain(k, keep, expectation):
    m = sp.symbols(f"m1:{k + 1}")
    per_step = {s: derivations.Bernoulli(keep) for s in m}
    g = sp.Mul(*[s / keep for s in m])  # a fresh mask at every step
    locked_m = sp.Symbol("m")
    locked = (locked_m / keep) ** k  # the same mask at every step
    one = {locked_m: derivations.Bernoulli(keep)}
    per_mean, locked_mean = expectation(g, per_step), expectation(locked, one)
    return {"per_step_mean": per_mean, "per_step_variance": expectation(g**2, per_step) - per_mean**2,
            "locked_mean": locked_mean, "locked_variance": expectation(locked**2, one) - locked_mean**2}


def gain_by_independence(k, keep, expectation):  # written differently: one step, then the k-th power
    m = sp.Symbol("m")
    dist = {m: derivations.Bernoulli(keep)}
    first, second = expectation(m / keep, dist), expectation((m / keep) ** 2, dist)
    locked_first = expectation(m / keep**k, dist)  # (m/keep)^k = m/keep^k since m^k = m
    locked_second = expectation(m / keep ** (2 * k), dist)
    return {"per_step_mean": first**k, "per_step_variance": sp.simplify(second**k - first ** (2 * k)),
            "locked_mean": locked_first, "locked_variance": sp.factor(locked_second - locked_first**2)}


def typed_in_p(k, keep, expectation):
    p = sp.Symbol("p", positive=True)
    return {"per_step_mean": sp.Integer(1), "per_step_variance": (1 - p) ** -k - 1,
            "locked_mean": (1 - p) ** (1 - k), "locked_variance": (1 - p) ** (1 - 2 * k) - (1 - p) ** (2 - 2 * k)}


def typed_in_keep(k, keep, expectation):
    return {"per_step_mean": 1, "per_step_variance": keep**-k - 1,
            "locked_mean": keep ** (1 - k), "locked_variance": keep ** (1 - 2 * k) - keep ** (2 - 2 * k)}


def with_gain(**changes):
    def fn(k, keep, expectation):
        out = ref_gain(k, keep, expectation)
        out.update({key: f(k, keep) for key, f in changes.items()})
        return out
    return fn


def swapped_masks(k, keep, expectation):
    return ref_gain(k, 1 - keep, expectation)


def swapped_cases(k, keep, expectation):
    r = ref_gain(k, keep, expectation)
    return {"per_step_mean": r["locked_mean"], "per_step_variance": r["locked_variance"],
            "locked_mean": r["per_step_mean"], "locked_variance": r["per_step_variance"]}


def test_gain_reference_and_variants_pass(capsys):
    assert_passes(capsys, check_gain_moments, ref_gain)
    assert_passes(capsys, check_gain_moments, gain_by_independence)


def test_gain_starter_fails():
    assert_fails(check_gain_moments, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (typed_in_p, ["never called the expectation", "typed in"]),
    (typed_in_keep, ["never called the expectation", "typed in"]),
    (with_gain(per_step_variance=lambda k, q: k * (1 - q) / q), ["not the sum of the variances"]),
    (with_gain(per_step_variance=lambda k, q: q**-k), ["that is E[G²]"]),
    (with_gain(per_step_variance=lambda k, q: (1 - q) / q), ["variance of ONE step"]),
    (with_gain(locked_mean=lambda k, q: 1), ["scaling compounds"]),
    (with_gain(locked_variance=lambda k, q: (1 - q) / q), ["variance of ONE step"]),
    (with_gain(per_step_mean=lambda k, q: q**k), ["survival probability keep^k"]),
    (swapped_masks, ["drop and keep are swapped"]),
    (swapped_cases, ["per-step and the locked results are swapped"]),
    (with_gain(locked_variance=lambda k, q: sp.Symbol("x") * q), ["uses the symbols ['x']"]),
    (with_gain(locked_mean=lambda k, q: sp.Eq(q, 1)), ["should return a sympy expression"]),
    (with_gain(locked_variance=lambda k, q: q / 7), ["it should be"]),
    (lambda k, keep, expectation: [expectation(sp.Symbol("m"), {sp.Symbol("m"): derivations.Bernoulli(keep)})],
     ["should return a dict"]),
])
def test_gain_typical_mistakes(fn, hints):
    assert_fails(check_gain_moments, fn, *hints)


def test_gain_typed_answer_that_fakes_a_call_fails_on_the_fresh_keep_symbol():
    def fake(k, keep, expectation):
        expectation(sp.Symbol("m"), {sp.Symbol("m"): derivations.Bernoulli(keep)})
        return typed_in_p(k, keep, expectation)
    assert_fails(check_gain_moments, fake, "not computed by the expectation", "typed in")


# --------------------------------------------------------------------------------------------
# exercise 3: predict variance and covariance


def ref_connect():
    w1, w2, x = (np.array(CONNECT_EXERCISE[k]) for k in ("w1", "w2", "x"))
    r = CONNECT_EXERCISE["p"] / (1 - CONNECT_EXERCISE["p"])
    var = r * np.sum(w1**2 * x**2)
    return {"input_variance": var, "input_covariance": r * np.sum(w1 * w2 * x**2),
            "connect_variance": var, "connect_covariance": 0}


def connect_by_hand():  # written differently: the numbers worked by hand, as plain floats
    # p/(1-p) = 3/7; sum w1² x² = 0.25 + 4 + 0.5625; sum w1 w2 x² = 1 - 2 - 0.375
    return {"input_variance": 3 / 7 * 4.8125, "input_covariance": 3 / 7 * -1.375,
            "connect_variance": np.float32(3 / 7 * 4.8125), "connect_covariance": 0.0}


def with_connect(**changes):
    return lambda: {**ref_connect(), **changes}


_R = 0.3 / 0.7


def test_connect_reference_and_variants_pass(capsys):
    assert CONNECT_EXERCISE == {"w1": (0.5, -1.0, 1.5), "w2": (2.0, 0.5, -1.0), "x": (1.0, 2.0, -0.5), "p": 0.3}
    assert_passes(capsys, check_connect_covariance, ref_connect)
    assert_passes(capsys, check_connect_covariance, connect_by_hand)
    assert_passes(capsys, check_connect_covariance,
                  lambda: {k: torch.tensor(v).item() for k, v in ref_connect().items()})


def test_connect_starter_fails():
    assert_fails(check_connect_covariance, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (with_connect(input_covariance=0.0), ["SAME input mask"]),
    (with_connect(connect_covariance=_R * -1.375), ["covariance of INPUT dropout"]),
    (with_connect(input_variance=0.3 * 0.7 * 4.8125), ["without the 1/(1-p) scaling"]),
    (with_connect(connect_variance=0.7 / 0.3 * 4.8125), ["drop and keep are swapped"]),
    (with_connect(input_variance=0.3 / 0.49 * 4.8125), ["one factor 1/(1-p) too many"]),
    (with_connect(input_variance=_R * (0.5 - 2.0 - 0.75) ** 2), ["variances of the terms add"]),
    (with_connect(input_covariance=_R * (0.5 - 2.0 - 0.75) * (2.0 + 1.0 + 0.5)), ["only the terms with the same i"]),
    (with_connect(connect_variance=0), ["not 0"]),
    (with_connect(connect_variance=1.0), ["recompute it term by term"]),
    (with_connect(input_variance="2.06"), ["should be a number"]),
    (lambda: {"input_variance": 1.0}, ["exactly the keys"]),
])
def test_connect_typical_mistakes(fn, hints):
    assert_fails(check_connect_covariance, fn, *hints)


def test_connect_takes_the_instructors_numbers():
    w1, w2, x, p = (1.0, 2.0), (-1.0, 0.5), (0.5, 1.5), 0.2
    r = p / (1 - p)
    answer = {"input_variance": r * (0.25 + 9.0), "input_covariance": r * (-0.25 + 2.25),
              "connect_variance": r * (0.25 + 9.0), "connect_covariance": 0.0}
    assert check_connect_covariance(lambda: answer, w1=w1, w2=w2, x=x, p=p).passed
    assert_fails(lambda fn: check_connect_covariance(fn, w1=w1, w2=w2, x=x, p=p), ref_connect, "is not right")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"p": 0.5}, ValueError, "not be 0.5"),
    ({"p": 1.0}, ValueError, "p must be in"),
    ({"p": "0.3"}, TypeError, "p must be a number"),
    ({"w1": (1.0, 2.0)}, ValueError, "same length"),
    ({"x": (1.0, float("nan"), 2.0)}, ValueError, r"x\[1\] must be finite"),
    ({"w2": "abc"}, TypeError, "w2 must be a sequence"),
    ({"w1": (1.0, True, 2.0)}, TypeError, r"w1\[1\] must be a real number"),
    ({"x": ()}, ValueError, "at least 1"),
])
def test_connect_rejects_bad_instructor_numbers(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_connect_covariance(ref_connect, **kwargs)


def test_connect_wrong_values_differ_from_the_truth():
    truth = ref_connect()
    for value in (0.3 * 0.7 * 4.8125, 0.7 / 0.3 * 4.8125, 0.3 / 0.49 * 4.8125, _R * 2.25**2):
        assert not math.isclose(value, truth["input_variance"], rel_tol=1e-3)


# --------------------------------------------------------------------------------------------
# exercise 4: the zoneout test-time rule


def ref_zoneout(h_prev, h_new, p, training=True):
    if training:
        keep_old = torch.rand_like(h_new) < p  # one draw per unit
        return torch.where(keep_old, h_prev, h_new)
    return p * h_prev + (1 - p) * h_new


def zoneout_by_mixing(h_prev, h_new, p, training=True):  # written differently: an arithmetic mix
    d = torch.bernoulli(torch.full_like(h_new, p)) if training else p
    return h_new + d * (h_prev - h_new)


def original_bug(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, p, training) if training else h_new


def swapped_at_test(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, p, training) if training else (1 - p) * h_prev + p * h_new


def swapped_in_training(h_prev, h_new, p, training=True):
    if training:
        return torch.where(torch.rand_like(h_new) < p, h_new, h_prev)
    return p * h_prev + (1 - p) * h_new


def dropout_like(h_prev, h_new, p, training=True):
    if training:
        return h_new * (torch.rand_like(h_new) >= p) / (1 - p)
    return h_new


def shared_over_the_batch(h_prev, h_new, p, training=True):
    if training:
        return torch.where(torch.rand_like(h_new[:1]) < p, h_prev, h_new)
    return p * h_prev + (1 - p) * h_new


def one_draw(h_prev, h_new, p, training=True):
    if training:
        return h_prev.clone() if torch.rand(()) < p else h_new.clone()
    return p * h_prev + (1 - p) * h_new


def zoneout_in_place(h_prev, h_new, p, training=True):
    if training:
        keep_old = torch.rand_like(h_new) < p
        h_new[keep_old] = h_prev[keep_old]
        return h_new
    return p * h_prev + (1 - p) * h_new


def hard_coded_zoneout(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, 0.15, training)


def sampled_at_test(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, p, True)


def test_zoneout_reference_library_and_variants_pass(capsys):
    assert_passes(capsys, check_zoneout_test_time, ref_zoneout)
    assert_passes(capsys, check_zoneout_test_time, zoneout_by_mixing)
    assert_passes(capsys, check_zoneout_test_time,
                  lambda h_prev, h_new, p, training=True: db.zoneout(h_prev, h_new, p, training=training))
    assert check_zoneout_test_time(ref_zoneout, seed=2).passed


def test_zoneout_starter_fails():
    assert_fails(check_zoneout_test_time, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (original_bug, ["the original bug", "p·h_prev + (1 − p)·h_new"]),
    (swapped_at_test, ["p and 1 − p are swapped"]),
    (swapped_in_training, ["keep and change are swapped"]),
    (dropout_like, ["does not rescale like dropout"]),
    (lambda h_prev, h_new, p, training=True: h_new * (torch.rand_like(h_new) >= p), ["set to 0: that is dropout"]),
    (shared_over_the_batch, ["shared over the batch"]),
    (one_draw, ["same choice"]),
    (zoneout_in_place, ["changed its input h_new in place"]),
    (hard_coded_zoneout, ["argument p is ignored"]),
    (sampled_at_test, ["at test time your function is random"]),
    (lambda h_prev, h_new, p, training=True: ref_zoneout(h_prev, h_new, p, training) if training else h_prev,
     ["the state would never change"]),
    (lambda h_prev, h_new, p, training=True: ref_zoneout(h_prev, h_new, p, training) if training else 0.5 * h_new,
     ["not of the form"]),
])
def test_zoneout_typical_mistakes(fn, hints):
    assert_fails(check_zoneout_test_time, fn, *hints)


def test_zoneout_checker_restores_the_rng():
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    check_zoneout_test_time(ref_zoneout)
    assert torch.equal(torch.rand(2), expected)


# --------------------------------------------------------------------------------------------
# review of chapter 11: more wrong answers, each with its own hint, and more correct ones


def locked_time_axis_as_batch(x, p, batch_first=False, training=True):  # (T, 1, D): one mask per step, shared by the batch
    if not training:
        return x.clone()
    t = x.transpose(0, 1) if batch_first else x
    out = t * (torch.rand(t.shape[0], 1, t.shape[2]) >= p) / (1 - p)
    return out.transpose(0, 1) if batch_first else out


_MASKS = {}


def locked_mask_kept_in_a_global(x, p, batch_first=False, training=True):  # drawn once, reused by later calls
    if not training or p == 0:
        return x.clone()
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    if shape not in _MASKS:
        _MASKS[shape] = (torch.rand(shape) >= p).to(x.dtype)
    return x * _MASKS[shape] / (1 - p)


def locked_scaled_by_one_over_p(x, p, batch_first=False, training=True):
    if not training:
        return x.clone()
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    return x * (torch.rand(shape) >= p) / p


def locked_through_numpy(x, p, batch_first=False, training=True):  # right values, but no gradient reaches x
    if not training or p == 0:
        return x.clone()
    a = x.detach().numpy()
    shape = (a.shape[0], 1, a.shape[2]) if batch_first else (1, a.shape[1], a.shape[2])
    return torch.from_numpy(a * (np.random.default_rng().random(shape) >= p) / (1 - p)).to(x.dtype)


def locked_detached(x, p, batch_first=False, training=True):
    return ref_locked(x.detach(), p, batch_first, training)


def locked_returns_x_itself(x, p, batch_first=False, training=True):  # correct: the identity may return x itself
    if not training or p == 0:
        return x
    return ref_locked(x, p, batch_first, training)


def locked_with_library_mask(x, p, batch_first=False, training=True):  # correct, differently: movedim + inverted_dropout
    if not training:
        return x.clone()
    t = x.movedim(1, 0) if batch_first else x  # (T, B, D)
    mask = db.inverted_dropout(torch.ones_like(t[:1]), p)
    return (t * mask).movedim(0, 1) if batch_first else t * mask


def test_locked_review_correct_answers_pass(capsys):
    assert_passes(capsys, check_locked_dropout, locked_returns_x_itself)
    assert_passes(capsys, check_locked_dropout, locked_with_library_mask)


@pytest.mark.parametrize("fn, hints", [
    (locked_time_axis_as_batch, ["same for every sequence of the batch", "(T, 1, D)", "(1, B, D)"]),
    (locked_mask_kept_in_a_global, ["two calls drew exactly the same mask"]),
    (locked_scaled_by_one_over_p, ["divided by p"]),
    (locked_through_numpy, ["no gradient", "x.detach()"]),
    (locked_detached, ["no gradient"]),
    (lambda x, p, batch_first=False, training=True: (torch.manual_seed(0), ref_locked(x, p, batch_first, training))[1],
     ["two calls drew exactly the same mask"]),
])
def test_locked_review_mistakes(fn, hints):
    assert_fails(check_locked_dropout, fn, *hints)


def gain_one_irrelevant_call(k, keep, expectation):  # calls the expectation once, types the rest in keep
    expectation(sp.Symbol("m"), {sp.Symbol("m"): derivations.Bernoulli(keep)})
    return typed_in_keep(k, keep, expectation)


def gain_half_typed(k, keep, expectation):  # derives three entries, types the locked variance
    out = ref_gain(k, keep, expectation)
    out["locked_variance"] = keep ** (1 - 2 * k) - keep ** (2 - 2 * k)
    return out


def gain_variance_as_expected_square(k, keep, expectation):  # correct, differently: E[(G - E[G])²]
    m = sp.symbols(f"m1:{k + 1}")
    fresh = {s: derivations.Bernoulli(keep) for s in m}
    g = sp.Mul(*[s / keep for s in m])
    one_m = sp.Symbol("m")
    one = {one_m: derivations.Bernoulli(keep)}
    locked = (one_m / keep) ** k
    per_mean, locked_mean = expectation(g, fresh), expectation(locked, one)
    return {"per_step_mean": per_mean, "per_step_variance": expectation((g - per_mean) ** 2, fresh),
            "locked_mean": locked_mean, "locked_variance": expectation((locked - locked_mean) ** 2, one)}


def test_gain_review_correct_answer_passes(capsys):
    assert_passes(capsys, check_gain_moments, gain_variance_as_expected_square)


@pytest.mark.parametrize("fn, hints", [
    (gain_one_irrelevant_call, ["per_step_variance", "typed in", "not computed by the expectation"]),
    (gain_half_typed, ["locked_variance", "typed in", "not computed by the expectation"]),
])
def test_gain_review_mistakes(fn, hints):
    assert_fails(check_gain_moments, fn, *hints)


def connect_exact_fractions():  # correct, differently: exact sympy rationals
    r = sp.Rational(3, 7)
    return {"input_variance": r * sp.Rational(77, 16), "input_covariance": r * sp.Rational(-11, 8),
            "connect_variance": r * sp.Rational(77, 16), "connect_covariance": sp.Integer(0)}


def test_connect_review_correct_answers_pass(capsys):
    assert_passes(capsys, check_connect_covariance, connect_exact_fractions)
    assert_passes(capsys, check_connect_covariance,
                  lambda: {k: torch.tensor(float(v), dtype=torch.float64) for k, v in ref_connect().items()})


@pytest.mark.parametrize("fn, hints", [
    (with_connect(input_variance=float("nan")), ["input_variance is nan", "finite number"]),
    (with_connect(connect_covariance=np.float32("inf")), ["connect_covariance is inf", "finite number"]),
    (with_connect(connect_variance=np.float32(1.5)), ["connect_variance = 1.5 is not right"]),
    (with_connect(input_covariance=_R * 1.375), ["input_covariance = 0.5893 is not right"]),
    (with_connect(input_variance=np.array([_R * 4.8125])), ["input_variance should be a number, got ndarray"]),
    (with_connect(connect_covariance=None), ["connect_covariance should be a number, got NoneType"]),
])
def test_connect_review_mistakes(fn, hints):
    assert_fails(check_connect_covariance, fn, *hints)


def zoneout_by_lerp(h_prev, h_new, p, training=True):  # correct, differently: torch.lerp
    weight = (torch.rand(h_new.shape, dtype=h_new.dtype) < p).to(h_new.dtype) if training else p
    return torch.lerp(h_new, h_prev, weight)


def zoneout_half_at_test(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, p, training) if training else (h_prev + h_new) / 2


def zoneout_float32(h_prev, h_new, p, training=True):
    return ref_zoneout(h_prev, h_new, p, training).float()


def zoneout_through_numpy(h_prev, h_new, p, training=True):  # right values, no gradient
    if not training:
        return p * h_prev + (1 - p) * h_new
    keep_old = np.random.default_rng().random(tuple(h_new.shape)) < p
    return torch.from_numpy(np.where(keep_old, h_prev.detach().numpy(), h_new.detach().numpy()))


def zoneout_prev_at_test(h_prev, h_new, p, training=True):  # the "fix" that freezes the state at test time
    return ref_zoneout(h_prev, h_new, p, training) if training else h_prev.clone()


def test_zoneout_review_correct_answer_passes(capsys):
    assert_passes(capsys, check_zoneout_test_time, zoneout_by_lerp)


@pytest.mark.parametrize("fn, hints", [
    (zoneout_half_at_test, ["at test time", "the same mixture", "for every p", "p·h_prev + (1 − p)·h_new"]),
    (zoneout_float32, ["returns torch.float32", "keep the input's dtype"]),
    (zoneout_through_numpy, ["no gradient"]),
    (lambda h_prev, h_new, p, training=True: ref_zoneout(h_prev.detach(), h_new.detach(), p, training),
     ["no gradient"]),
    (zoneout_prev_at_test, ["the state would never change"]),
])
def test_zoneout_review_mistakes(fn, hints):
    assert_fails(check_zoneout_test_time, fn, *hints)
