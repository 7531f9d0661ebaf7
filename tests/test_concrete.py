"""Chapter 13, "Learning the dropout rate": the library's Concrete dropout against the derivation.

Monte-Carlo checks with fixed seeds, |z| <= 5 and enough samples that the plausible wrong value (the
mean of the relaxed mask taken to be q, keep and drop swapped) lies beyond 5 standard errors; the
gradient of the rate (autograd against a finite difference at fixed noise); evaluation mode; MC dropout.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dropoutbook as db
from dropoutbook.derivations import concrete_mask_distribution
from helpers import Z, check_agrees_and_rejects

D = concrete_mask_distribution()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p, t", [(0.3, 0.1), (0.3, 1.0), (0.8, 0.5)])
def test_mask_is_above_one_half_with_probability_q(p, t):
    z = db.concrete_mask(400_000, p, t, generator=gen(1), dtype=torch.float64)
    est = db.estimate_mean((z > 0.5).double())
    check_agrees_and_rejects(est, 1 - p, {"drop and keep swapped": p, "q + 0.005": 1 - p + 0.005})


@pytest.mark.parametrize("p, t, n", [(0.3, 1.0, 400_000), (0.3, 0.1, 8_000_000), (0.9, 0.5, 400_000)])
def test_mask_mean_is_the_derived_integral_not_q(p, t, n):
    z = db.concrete_mask(n, p, t, generator=gen(2))
    est = db.estimate_mean(z.double())
    check_agrees_and_rejects(est, D.mean_at(1 - p, t), {"E[z] = q": 1 - p})


@pytest.mark.parametrize("s", [0.05, 0.3, 0.6, 0.97])
def test_mask_cdf_is_the_derived_one(s):
    z = db.concrete_mask(400_000, 0.4, 0.5, generator=gen(3), dtype=torch.float64)
    est = db.estimate_mean((z <= s).double())
    check_agrees_and_rejects(est, D.cdf_at(s, 0.6, 0.5), {"the Bernoulli's 1 - q": 0.4,
                                                            "q and 1 - q swapped": D.cdf_at(s, 0.4, 0.5)})


def test_module_scales_the_relaxed_mask_by_one_over_one_minus_p():
    layer = db.ConcreteDropout(p_init=0.25, temperature=0.5, generator=gen(4))
    y = layer(torch.ones(2_000, 200))
    est = db.estimate_mean(y.detach().double().flatten())
    check_agrees_and_rejects(est, D.mean_at(0.75, 0.5) / 0.75, {"unbiased (1)": 1.0, "no scaling": D.mean_at(0.75, 0.5)})


def test_the_module_and_the_function_draw_the_same_mask():
    layer = db.ConcreteDropout(p_init=0.2, temperature=0.3, generator=gen(5))
    y = layer(torch.ones(4, 6)).detach()
    z = db.concrete_mask((4, 6), 0.2, 0.3, generator=gen(5))
    assert torch.allclose(y, z / 0.8, rtol=1e-5, atol=1e-6)


def test_the_rate_receives_the_gradient_a_finite_difference_gives():
    torch.manual_seed(0)
    layer = db.ConcreteDropout(nn.Linear(5, 3), p_init=0.3, temperature=0.2, weight_regularizer=1e-2,
                               dropout_regularizer=1e-2).double()
    x, w = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)

    def loss(seed=7):
        layer.generator = gen(seed)  # the same noise at every evaluation
        return (layer(x) * w).sum() + layer.regularization()

    loss().backward()
    grad = layer.p_logit.grad.item()
    assert grad != 0.0
    h = 1e-6
    with torch.no_grad():
        theta = layer.p_logit.item()
        layer.p_logit.fill_(theta + h)
        up = loss().item()
        layer.p_logit.fill_(theta - h)
        down = loss().item()
        layer.p_logit.fill_(theta)
    assert math.isclose(grad, (up - down) / (2 * h), rel_tol=1e-6)
    # the data term alone has a gradient too (a Bernoulli mask would give only the 1/(1-p) rescaling)
    layer.zero_grad()
    layer.generator = gen(7)
    (layer(x) * w).sum().backward()
    assert layer.p_logit.grad.item() != 0.0


def test_regularization_is_the_stated_formula():
    layer = db.ConcreteDropout(nn.Linear(6, 2), p_init=0.2, weight_regularizer=0.01, dropout_regularizer=0.1)
    with pytest.raises(RuntimeError, match="after the first forward"):
        layer.regularization()
    layer(torch.randn(3, 6))
    p, K = 0.2, 6
    w2 = sum(float(w.detach().pow(2).sum()) for w in layer.layer.parameters())
    stated = 0.01 * w2 / (1 - p) + 0.1 * K * (p * math.log(p) + (1 - p) * math.log(1 - p))
    assert math.isclose(layer.regularization().item(), stated, rel_tol=1e-5)
    wrong_sign = 0.01 * w2 / (1 - p) - 0.1 * K * (p * math.log(p) + (1 - p) * math.log(1 - p))
    assert not math.isclose(layer.regularization().item(), wrong_sign, rel_tol=1e-2)
    alone = db.ConcreteDropout(p_init=0.2, dropout_regularizer=0.1)
    alone(torch.randn(3, 2, 5))
    assert alone.num_units == 10
    assert math.isclose(alone.regularization().item(), 0.1 * 10 * (p * math.log(p) + (1 - p) * math.log(1 - p)),
                        rel_tol=1e-5)


def test_regularization_is_finite_for_extreme_logits():
    layer = db.ConcreteDropout(nn.Linear(3, 2), p_init=0.5)
    layer(torch.randn(2, 3))
    for theta in (-60.0, 60.0):
        with torch.no_grad():
            layer.p_logit.fill_(theta)
        value = layer.regularization()
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(layer.p_logit.grad)
        layer.zero_grad()


def test_the_rate_moves_under_its_regularizer_towards_one_half():
    layer = db.ConcreteDropout(p_init=0.05, dropout_regularizer=1.0)
    layer(torch.randn(4, 8))
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        layer.regularization().backward()
        opt.step()
    assert 0.45 < layer.p < 0.55


def test_eval_mode_is_the_layer_and_deterministic():
    torch.manual_seed(1)
    linear = nn.Linear(4, 3)
    layer = db.ConcreteDropout(linear, p_init=0.4).eval()
    x = torch.randn(5, 4)
    before = x.clone()
    assert torch.equal(layer(x), linear(x)) and torch.equal(layer(x), layer(x))
    alone = db.ConcreteDropout(p_init=0.4).eval()
    y = alone(x)
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_p_is_a_read_only_float():
    layer = db.ConcreteDropout(p_init=0.3)
    assert isinstance(layer.p, float) and math.isclose(layer.p, 0.3, rel_tol=1e-6)
    with pytest.raises(AttributeError, match="read-only"):
        layer.p = 0.5


def test_found_by_mc_dropout_and_mc_predict_passes_vary():
    torch.manual_seed(2)
    model = nn.Sequential(db.ConcreteDropout(nn.Linear(3, 8)), nn.ReLU(), db.ConcreteDropout(nn.Linear(8, 2)),
                          nn.BatchNorm1d(2)).eval()
    assert db.dropout_modules(model) == [model[0], model[2]]
    x = torch.randn(4, 3)
    with db.mc_dropout(model):
        assert [m.training for m in model.modules()] == [False, True, False, False, True, False, False]
    assert not any(m.training for m in model.modules())
    pred = db.mc_predict(model, x, T=50, generator=gen(3), return_samples=True)
    assert (pred.variance > 0).all()
    again = db.mc_predict(model, x, T=50, generator=gen(3))
    assert torch.equal(pred.mean, again.mean)
    # the T copies of one batched forward get independent masks: the same as a loop of single passes
    loop = db.mc_predict(model, x, T=50, chunk_size=1, generator=gen(3))
    assert loop.variance.shape == pred.variance.shape and (loop.variance > 0).all()


def test_dtype_and_layout_are_kept_and_the_input_is_not_modified():
    layer = db.ConcreteDropout(p_init=0.3, generator=gen(6)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    y = layer(x)
    assert y.dtype == torch.float64 and y.stride() == x.stride() and torch.equal(x, before)
    with pytest.raises(TypeError, match="^x must have the dtype and device of p_logit"):
        layer(torch.randn(2, 3))
    z = db.concrete_mask((3, 2), torch.tensor(0.3, dtype=torch.float64, requires_grad=True), 0.1,
                         dtype=torch.float64, generator=gen(7))
    assert z.dtype == torch.float64 and z.requires_grad
