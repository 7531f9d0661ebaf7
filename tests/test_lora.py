"""Chapter 14: LoRALinear drops the adapter's input only; its mean and variance agree with the derivation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import dropoutbook as db
from dropoutbook.derivations import drop_rate, lora_dropout_moments
from helpers import check_agrees_and_rejects


def layer(p, seed=0):
    torch.manual_seed(seed)
    base = nn.Linear(3, 2).double()
    lora = db.LoRALinear(base, 2, alpha=4.0, dropout=p, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        lora.lora_B.copy_(torch.randn(2, 2, dtype=torch.float64))
    return lora


@pytest.mark.parametrize("p", [0.2, 0.6])
def test_output_mean_and_variance_agree_with_the_derivation(p):
    lora = layer(p)
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    with torch.no_grad():
        samples = torch.cat([lora(x.expand(5000, 3)) for _ in range(4)])[:, 0]
    d = lora_dropout_moments(3)
    M = lora.delta_weight()[0].detach()
    W = lora.base.weight[0].detach()
    subs = {drop_rate: p, **dict(zip(d.x, x[0].tolist())), **dict(zip(d.w, W.tolist())), **dict(zip(d.m, M.tolist()))}
    mean = float(d.mean.subs(subs)) + float(lora.base.bias[0].detach())
    var = float(d.variance.subs(subs))
    whole = p / (1 - p) * float((((W + M) * x[0]) ** 2).sum())
    check_agrees_and_rejects(db.estimate_mean(samples.tolist()), mean,
                             {"no 1/(1-p)": mean - p * float((M * x[0]).sum())})
    check_agrees_and_rejects(db.estimate_variance(samples.tolist()), var,
                             {"dropout on the whole layer's input": whole, "p(1-p) instead of p/(1-p)":
                              p * (1 - p) * float(((M * x[0]) ** 2).sum())})


def test_starts_as_the_base_layer_and_leaves_it_unchanged():
    base = nn.Linear(4, 3)
    before = copy.deepcopy(base.state_dict())
    lora = db.LoRALinear(base, 2, dropout=0.5)
    x = torch.randn(6, 4)
    assert torch.equal(lora(x), base(x))
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in base.parameters())
    assert lora.lora_parameters() == [lora.lora_A, lora.lora_B]
    assert db.dropout_modules(lora) == [lora.lora_dropout]


def test_only_the_adapter_path_is_dropped():
    lora = layer(0.5)
    x = torch.randn(7, 3, dtype=torch.float64)
    with torch.no_grad():
        lora.lora_B.zero_()
        assert torch.equal(lora(x), lora.base(x))  # no adapter: dropout changes nothing
    lora.eval()
    with torch.no_grad():
        lora.lora_B.fill_(1.0)
        expected = lora.base(x) + lora.scaling * x @ (lora.lora_B @ lora.lora_A).T
        assert torch.allclose(lora(x), expected)


def test_gradients_reach_a_and_b():
    lora = layer(0.1)
    lora(torch.randn(4, 3, dtype=torch.float64)).sum().backward()
    assert lora.lora_A.grad is not None and lora.lora_B.grad is not None
    assert float(lora.lora_A.grad.abs().sum()) > 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="^rank must be"):
        db.LoRALinear(nn.Linear(4, 3), 4)
    with pytest.raises(TypeError, match="^base must be"):
        db.LoRALinear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match=r"^x must have shape \(\.\.\., 4\)"):
        db.LoRALinear(nn.Linear(4, 3), 2)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^dropout must be in"):
        db.LoRALinear(nn.Linear(4, 3), 2, dropout=1.5)
