"""Checkers of chapter 13, "Learning the dropout rate": the reference passes, differently written correct
answers pass, the blank starter fails with "not written yet", and typical wrong answers fail with
their specific hint."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from torch import nn

import dropoutbook as db
from dropoutbook.exercises import (
    check_concrete_cold_limit,
    check_concrete_mask,
    check_concrete_regularizer,
    check_learned_rate_dropout,
)
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# exercise 1: the relaxed Bernoulli mask


def _noise(shape, generator=None):
    u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return torch.log(u) - torch.log1p(-u)


def ref_mask(shape, q, t, generator=None):
    return torch.sigmoid((math.log(q) - math.log(1 - q) + _noise(shape, generator)) / t)


def mask_by_library(shape, q, t, generator=None):  # correct: the library, with the drop rate 1 - q
    return db.concrete_mask(shape, 1 - q, t, generator=generator, dtype=torch.float64)


def mask_from_logistic_quantile(shape, q, t, generator=None):  # correct: written with logit and a float32 uniform
    u = torch.rand(shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    return torch.sigmoid((torch.logit(torch.tensor(q)) + torch.logit(u)) / t)


def mask_swapped(shape, q, t, generator=None):
    return ref_mask(shape, 1 - q, t, generator)


def mask_times_t(shape, q, t, generator=None):
    return torch.sigmoid((math.log(q / (1 - q)) + _noise(shape, generator)) * t)


def mask_no_noise(shape, q, t, generator=None):
    return torch.full(shape, 1 / (1 + math.exp(-math.log(q / (1 - q)) / t)), dtype=torch.float64)


def mask_shared_noise(shape, q, t, generator=None):
    return torch.sigmoid((math.log(q / (1 - q)) + _noise((), generator)) / t).expand(shape).clone()


def mask_shared_across_rows(shape, q, t, generator=None):
    return torch.sigmoid((math.log(q / (1 - q)) + _noise((1,) + tuple(shape)[1:], generator)) / t).expand(shape).clone()


def mask_hard(shape, q, t, generator=None):
    return (math.log(q / (1 - q)) + _noise(shape, generator) > 0).double()


def mask_fixed_seed(shape, q, t, generator=None):
    return ref_mask(shape, q, t, torch.Generator().manual_seed(0))


def mask_ignores_generator(shape, q, t, generator=None):
    return ref_mask(shape, q, t)


def mask_half_repeated(shape, q, t, generator=None):
    n = math.prod(shape)
    half = ref_mask((n // 2,), q, t, generator)
    return torch.cat([half, half]).reshape(shape)


def test_mask_reference_variants_and_starter(capsys):
    assert_passes(capsys, check_concrete_mask, ref_mask)
    assert_passes(capsys, check_concrete_mask, mask_by_library)
    assert_passes(capsys, check_concrete_mask, mask_from_logistic_quantile)
    assert_fails(check_concrete_mask, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (mask_swapped, ["q and 1 - q are swapped"]),
    (mask_times_t, ["the temperature multiplies"]),
    (mask_no_noise, ["there is no logistic noise"]),
    (mask_shared_noise, ["one noise value and shared it across the whole batch"]),
    (mask_shared_across_rows, ["shared it across the whole batch"]),
    (mask_hard, ["hard threshold"]),
    (mask_fixed_seed, ["two calls returned exactly the same mask"]),
    (mask_ignores_generator, ["two generators with the same seed gave different masks"]),
    (mask_half_repeated, ["the noise is reused across entries"]),
])
def test_mask_typical_mistakes(fn, hints):
    assert_fails(check_concrete_mask, fn, *hints)


def test_mask_checker_draws_several_settings_and_restores_the_rng():
    seen = []

    def spy(shape, q, t, generator=None):
        seen.append((len(shape), q, t))
        return ref_mask(shape, q, t, generator)

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_concrete_mask(spy)
    assert torch.equal(torch.rand(3), expected)
    assert {d for d, _, _ in seen} == {1, 2, 3} and len({q for _, q, _ in seen}) == 3 and 0.5 not in {q for _, q, _ in seen}
    assert len({t for _, _, t in seen}) == 3


# --------------------------------------------------------------------------------------------
# exercise 2: the cold limit


def _survival(q, t, s, noise_cdf):
    return 1 - noise_cdf(t * (sp.log(s) - sp.log(1 - s)) - (sp.log(q) - sp.log(1 - q)))


def ref_limit(q, t, s, noise_cdf):
    return sp.simplify(sp.limit(_survival(q, t, s, noise_cdf), t, 0, "+"))


def limit_by_substitution(q, t, s, noise_cdf):  # correct: the noise CDF is continuous, so the limit is t = 0
    return sp.simplify(_survival(q, t, s, noise_cdf).subs(t, 0))


def limit_of_cdf_with_the_mask(q, t, s, noise_cdf):  # correct: from the mask's CDF P(z <= s)
    l = sp.Symbol("l", real=True)
    threshold = sp.solve(sp.Eq((sp.log(q / (1 - q)) + l) / t, sp.log(s / (1 - s))), l)[0]
    return sp.simplify(1 - sp.limit(noise_cdf(threshold), t, 0, "+"))


def typed_q(q, t, s, noise_cdf):
    return q


def limit_of_cdf(q, t, s, noise_cdf):
    return sp.simplify(1 - ref_limit(q, t, s, noise_cdf))


def limit_sign_of_logit(q, t, s, noise_cdf):
    return sp.simplify(sp.limit(1 - noise_cdf(t * sp.log(s / (1 - s)) + sp.log(q / (1 - q))), t, 0, "+"))


def no_limit(q, t, s, noise_cdf):
    return _survival(q, t, s, noise_cdf)


def typed_in_library_symbol(q, t, s, noise_cdf):
    return db.derivations.keep_rate


def at_temperature_one(q, t, s, noise_cdf):  # P(z > s) at t = 1 instead of the limit
    return sp.simplify(_survival(q, t, s, noise_cdf).subs(t, 1))


def half(q, t, s, noise_cdf):
    return sp.Rational(1, 2) + 0 * q


def test_cold_limit_reference_variants_and_starter(capsys):
    assert_passes(capsys, check_concrete_cold_limit, ref_limit)
    assert_passes(capsys, check_concrete_cold_limit, limit_by_substitution)
    assert_passes(capsys, check_concrete_cold_limit, limit_of_cdf_with_the_mask)
    assert_fails(check_concrete_cold_limit, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (typed_q, ["still q", "typed in"]),
    (limit_of_cdf, ["the limit of P(z <= s)"]),
    (limit_sign_of_logit, ["the sign of logit q is wrong"]),
    (at_temperature_one, ["depends on s"]),
    (half, ["limit of the mask itself as t -> oo"]),
    (no_limit, ["still depends on the temperature t"]),
    (typed_in_library_symbol, ["uses the symbols ['q']"]),
])
def test_cold_limit_typical_mistakes(fn, hints):
    assert_fails(check_concrete_cold_limit, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 3: the regularizer


def ref_regularizer(p_logit, weight_sq, K, weight_regularizer, dropout_regularizer):
    p = torch.sigmoid(p_logit)
    return (weight_regularizer * weight_sq / (1 - p)
            + dropout_regularizer * K * (p * torch.log(p) + (1 - p) * torch.log(1 - p)))


def regularizer_from_logit(p_logit, weight_sq, K, weight_regularizer, dropout_regularizer):  # correct, stable form
    p = torch.sigmoid(p_logit)
    neg_entropy = -p * nn.functional.softplus(-p_logit) - (1 - p) * nn.functional.softplus(p_logit)
    return weight_regularizer * weight_sq * (1 + torch.exp(p_logit)) + dropout_regularizer * K * neg_entropy


def regularizer_by_entropy(p_logit, weight_sq, K, weight_regularizer, dropout_regularizer):  # correct: Bernoulli entropy
    p = torch.sigmoid(p_logit)
    entropy = torch.distributions.Bernoulli(probs=p).entropy()
    return weight_regularizer * weight_sq / (1 - p) - dropout_regularizer * K * entropy


def _with(weight=None, sign=1.0, k=True, rate=None):
    def fn(p_logit, weight_sq, K, lw, lp):
        p = torch.sigmoid(p_logit) if rate is None else rate(p_logit)
        w = lw * weight_sq / (1 - p) if weight is None else weight(lw, weight_sq, p)
        return w + sign * lp * (K if k else 1) * (p * torch.log(p) + (1 - p) * torch.log(1 - p))
    return fn


reg_no_scale = _with(weight=lambda lw, w2, p: lw * w2)
reg_sign = _with(sign=-1.0)
reg_no_k = _with(k=False)
reg_swapped = _with(weight=lambda lw, w2, p: lw * w2 / p)
reg_keep_rate = _with(rate=lambda theta: torch.sigmoid(-theta))
reg_times_keep = _with(weight=lambda lw, w2, p: lw * w2 * (1 - p))


def reg_detached(p_logit, weight_sq, K, lw, lp):
    return ref_regularizer(p_logit.detach(), weight_sq, K, lw, lp)


def reg_partly_detached(p_logit, weight_sq, K, lw, lp):
    p = torch.sigmoid(p_logit)
    return lw * weight_sq / (1 - p.detach()) + lp * K * (p * torch.log(p) + (1 - p) * torch.log(1 - p))


def reg_as_float(p_logit, weight_sq, K, lw, lp):
    return float(ref_regularizer(p_logit, weight_sq, K, lw, lp).detach())


def test_regularizer_reference_variants_and_starter(capsys):
    assert_passes(capsys, check_concrete_regularizer, ref_regularizer)
    assert_passes(capsys, check_concrete_regularizer, regularizer_from_logit)
    assert_passes(capsys, check_concrete_regularizer, regularizer_by_entropy)
    assert_fails(check_concrete_regularizer, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (reg_no_scale, ["the 1/(1-p) is missing"]),
    (reg_sign, ["the sign of the entropy term is flipped"]),
    (reg_no_k, ["K is missing"]),
    (reg_swapped, ["p and 1 - p are swapped"]),
    (reg_keep_rate, ["the keep probability used where the drop rate belongs"]),
    (reg_times_keep, ["multiplied by the keep probability 1 - p"]),
    (reg_detached, ["no gradient with respect to p_logit"]),
    (reg_partly_detached, ["the gradient with respect to p_logit is"]),
    (reg_as_float, ["should return a one-element torch.Tensor"]),
])
def test_regularizer_typical_mistakes(fn, hints):
    assert_fails(check_concrete_regularizer, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 4: a module with a learned rate


class Learned(nn.Module):
    def __init__(self, p_init, temperature):
        super().__init__()
        self.temperature = temperature
        self.p_logit = nn.Parameter(torch.tensor(math.log(p_init / (1 - p_init))))

    @property
    def p(self):
        return float(torch.sigmoid(self.p_logit.detach()))

    def scale(self, p):
        return 1 / (1 - p)

    def forward(self, x):
        if not self.training:
            return x
        u = torch.rand_like(x).clamp(1e-6, 1 - 1e-6)
        z = torch.sigmoid((-self.p_logit + torch.log(u) - torch.log1p(-u)) / self.temperature)
        return x * z * self.scale(torch.sigmoid(self.p_logit))

    @classmethod
    def mc_passes(cls, model, x, T):
        modes = {m: m.training for m in model.modules()}
        try:
            model.eval()
            for m in model.modules():
                if isinstance(m, cls):
                    m.train()
            return torch.stack([model(x) for _ in range(T)])
        finally:
            for m, mode in modes.items():
                m.train(mode)


class LearnedByLibrary(db.ConcreteDropout):  # correct: the library's module, with mc_dropout for the passes
    def __init__(self, p_init, temperature):
        super().__init__(p_init=p_init, temperature=temperature)

    @classmethod
    def mc_passes(cls, model, x, T):
        with db.mc_dropout(model, dropout_types=(cls,)):
            return torch.stack([model(x) for _ in range(T)])


class PlainFloat(Learned):
    def __init__(self, p_init, temperature):
        super().__init__(p_init, temperature)
        del self.p_logit
        self.p_logit = torch.tensor(math.log(p_init / (1 - p_init)), requires_grad=True)


class FloatRate(Learned):
    def __init__(self, p_init, temperature):
        super().__init__(p_init, temperature)
        self._p = p_init

    @property
    def p(self):
        return self._p


class Detached(Learned):
    def forward(self, x):
        if not self.training:
            return x
        logit = self.p_logit.detach()
        u = torch.rand_like(x).clamp(1e-6, 1 - 1e-6)
        z = torch.sigmoid((-logit + torch.log(u) - torch.log1p(-u)) / self.temperature)
        return x * z / (1 - torch.sigmoid(logit)) + 0 * self.p_logit


class OverP(Learned):
    def scale(self, p):
        return 1 / p


class AlwaysOn(Learned):
    def forward(self, x):
        training = self.training
        self.training = True
        try:
            return super().forward(x)
        finally:
            self.training = training


class TopLevelOnly(Learned):
    @classmethod
    def mc_passes(cls, model, x, T):
        was = model.training
        model.eval()
        for m in model.modules():
            if isinstance(m, cls):
                m.train()
        out = torch.stack([model(x) for _ in range(T)])
        model.train(was)
        return out


class TrainAll(Learned):
    @classmethod
    def mc_passes(cls, model, x, T):
        modes = [m.training for m in model.modules()]
        model.train()
        out = torch.stack([model(x) for _ in range(T)])
        for m, mode in zip(model.modules(), modes):
            m.train(mode)
        return out


def test_learned_reference_variants_and_starter(capsys):
    assert_passes(capsys, check_learned_rate_dropout, Learned)
    assert_passes(capsys, check_learned_rate_dropout, LearnedByLibrary)

    class Starter(nn.Module):
        def __init__(self, p_init, temperature):
            raise NotImplementedError("Exercise: write your solution here")

    assert_fails(check_learned_rate_dropout, Starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (PlainFloat, ["should be a torch.nn.Parameter", "plain float"]),
    (FloatRate, ["the rate is stored as a plain float"]),
    (Detached, ["the logit is detached"]),
    (OverP, ["you scale by 1/p"]),
    (AlwaysOn, ["in evaluation mode the module should return its input unchanged"]),
    (TopLevelOnly, ["restores only the top-level mode"]),
    (TrainAll, ["changed BatchNorm's running statistics"]),
    (nn.Dropout, ["p_logit should be a torch.nn.Parameter"]),
])
def test_learned_typical_mistakes(fn, hints):
    assert_fails(check_learned_rate_dropout, fn, *hints)

