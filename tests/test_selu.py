"""AlphaDropout (chapter 6, section "AlphaDropout"): the derivation of the affine correction, the
library's formula and sampler against it (Monte Carlo with power), and its behaviour as a function."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import Z, check_agrees_and_rejects, same

F64 = torch.float64
q = derivations.keep_rate


@pytest.fixture(scope="module")
def derived():
    return derivations.alpha_dropout_affine()


def test_derived_moments_of_the_masked_variable_are_the_stated_ones(derived):
    mu, s2, sat = derived.mean, derived.sigma2, derived.saturation
    assert same(derived.masked_mean, q * mu + (1 - q) * sat)
    assert same(derived.masked_variance, q * s2 + q * (1 - q) * (mu - sat) ** 2)
    # a plausible wrong variance (the second moment, or the mask's variance forgotten) differs
    assert not same(derived.masked_variance, q * s2 + (1 - q) * sat**2)
    assert not same(derived.masked_variance, q * s2)


def test_derived_affine_correction_is_the_stated_one_and_standardizes(derived):
    sat = derived.saturation
    a = 1 / sp.sqrt(q + sat**2 * q * (1 - q))
    assert same(derived.a_solution, a)
    assert same(derived.b_solution, -a * (1 - q) * sat)
    assert same(derived.dropped_output, a * q * sat)
    # drop and keep swapped is a different function of q
    assert not same(derived.a_solution, 1 / sp.sqrt((1 - q) + sat**2 * q * (1 - q)))
    # the solution solves the two conditions it was derived from, and only at mu = 0, sigma2 = 1
    fixed = {derived.a: derived.a_solution, derived.b: derived.b_solution}
    standardized = {derived.mean: 0, derived.sigma2: 1}
    assert same(derived.output_mean.subs(fixed).subs(standardized), 0)
    assert same(derived.output_variance.subs(fixed).subs(standardized), 1)
    assert not same(derived.output_variance.subs(fixed).subs({derived.mean: 0, derived.sigma2: 2}), 1)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.1, 0.3, 0.5, 0.9])
def test_library_coefficients_are_the_derived_ones(derived, p):
    a_of = sp.lambdify((q, derived.saturation), derived.a_solution)
    b_of = sp.lambdify((q, derived.saturation), derived.b_solution)
    a, b = db.alpha_dropout_affine(p)
    assert math.isclose(a, a_of(1 - p, db.selu.SELU_SATURATION), rel_tol=1e-12)
    assert math.isclose(b, b_of(1 - p, db.selu.SELU_SATURATION), rel_tol=1e-12, abs_tol=1e-15)


def test_selu_constants_are_torchs():
    z = torch.tensor([-60.0, -1.0, 2.0], dtype=F64)
    assert torch.allclose(F.selu(z), db.selu.SELU_SCALE * torch.where(z > 0, z, db.selu.SELU_ALPHA * (z.exp() - 1)),
                          rtol=1e-14, atol=0)
    assert math.isclose(F.selu(torch.tensor(-60.0, dtype=F64)).item(), db.selu.SELU_SATURATION, rel_tol=1e-14)


def _wrong_moments(p: float) -> dict[str, tuple[float, float]]:
    """(mean, variance) of the output of plausible wrong AlphaDropouts, for a standardized input."""
    q_, sat = 1 - p, db.selu.SELU_SATURATION

    def moments(a, b, dropped_to):
        mean = a * (1 - q_) * dropped_to + b
        return mean, a**2 * (q_ + q_ * (1 - q_) * dropped_to**2)
    a, b = db.alpha_dropout_affine(p)
    a_swap = 1 / math.sqrt(p + sat**2 * p * (1 - p))
    return {
        "no affine correction": moments(1.0, 0.0, sat),
        "dropped units set to 0": moments(a, b, 0.0),
        "q and 1 - q swapped in a, b": moments(a_swap, -a_swap * (1 - p) * sat, sat),
        "a from the second moment": moments(1 / math.sqrt(q_ + sat**2 * (1 - q_)), -(1 - q_) * sat / math.sqrt(
            q_ + sat**2 * (1 - q_)), sat),
        "alpha instead of lambda*alpha": moments(a, b, -db.selu.SELU_ALPHA),
    }


@pytest.mark.parametrize("kind, p", [("normal", 0.1), ("normal", 0.3), ("exponential", 0.2)])
def test_sampler_keeps_mean_zero_and_variance_one_and_wrong_formulas_fail(kind, p):
    g = torch.Generator().manual_seed(61)
    n = 1_000_000
    if kind == "normal":
        x = torch.randn(n, generator=g, dtype=F64)
    else:  # standardized exponential: mean 0, variance 1, skewed
        x = torch.empty(n, dtype=F64).exponential_(1.0, generator=g) - 1.0
    y = db.alpha_dropout(x, p, generator=g)
    wrong = _wrong_moments(p)
    mean, var = estimate_mean(y), estimate_variance(y)
    # the two grossest mistakes already fail on the mean alone
    check_agrees_and_rejects(mean, 0.0, {k: wrong[k][0] for k in ("no affine correction", "dropped units set to 0")})
    assert db.agrees(var, 1.0, z=Z), var
    # every wrong formula is caught by the mean or by the variance
    for name, (m, v) in wrong.items():
        assert not (db.agrees(mean, m, z=Z) and db.agrees(var, v, z=Z)), f"no power against '{name}'"


def test_output_takes_the_two_stated_forms_and_masks_are_independent():
    g = torch.Generator().manual_seed(5)
    p = 0.25
    x = torch.randn(64, 50, generator=g, dtype=F64)
    y = db.alpha_dropout(x, p, generator=g)
    a, b = db.alpha_dropout_affine(p)
    dropped_value = a * (1 - p) * db.selu.SELU_SATURATION
    kept = torch.isclose(y, a * x + b, rtol=0, atol=1e-12)
    dropped = torch.isclose(y, torch.full_like(y, dropped_value), rtol=0, atol=1e-12)
    assert bool((kept ^ dropped).all())
    frac = dropped.double().mean().item()
    assert abs(frac - p) < Z * math.sqrt(p * (1 - p) / y.numel())
    assert not all(torch.equal(dropped[0], row) for row in dropped[1:]), "one mask shared by every row"


def test_identity_in_eval_mode_and_at_p_zero_and_input_untouched():
    x = torch.randn(3, 4)
    before = x.clone()
    for out in (db.alpha_dropout(x, 0.4, training=False), db.alpha_dropout(x, 0.0),
                db.AlphaDropout(0.4).eval()(x)):
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    db.alpha_dropout(x, 0.4)
    assert torch.equal(x, before)


def test_dtype_gradient_and_reproducibility():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, F64):
        assert db.alpha_dropout(torch.randn(5, 3).to(dtype), 0.2).dtype == dtype
    x = torch.randn(200, dtype=F64, requires_grad=True)
    y = db.alpha_dropout(x, 0.3, generator=torch.Generator().manual_seed(1))
    y.sum().backward()
    a, _ = db.alpha_dropout_affine(0.3)
    kept = torch.Generator().manual_seed(1)
    mask = (torch.rand(200, generator=kept, dtype=F64) >= 0.3).double()
    assert torch.allclose(x.grad, a * mask, rtol=1e-12, atol=0)
    same_draw = db.alpha_dropout(x.detach(), 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same_draw, y.detach())


def test_module_uses_its_generator_and_repr():
    layer = db.AlphaDropout(0.2, generator=torch.Generator().manual_seed(3))
    x = torch.randn(10, 10)
    expected = db.alpha_dropout(x, 0.2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(layer(x), expected)
    assert repr(layer) == "AlphaDropout(p=0.2)"


def test_p_one_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        db.alpha_dropout(torch.ones(3), 1.0)
