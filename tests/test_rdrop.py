"""Chapter 14: r_drop_loss and symmetric_kl against torch.nn.functional.kl_div and cross_entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dropoutbook as db


def direct(a, b, y, alpha, nll="sum"):
    """Liang et al.'s loss: -log P_a(y) - log P_b(y) + alpha (KL(P_a||P_b) + KL(P_b||P_a)) / 2, batch-averaged."""
    la, lb = F.log_softmax(a, 1), F.log_softmax(b, 1)
    # kl_div(input=log Q, target=P) is KL(P || Q), summed over classes, averaged over the batch
    kl_ab = F.kl_div(lb, la, reduction="batchmean", log_target=True)
    kl_ba = F.kl_div(la, lb, reduction="batchmean", log_target=True)
    nll_sum = -(la.gather(1, y[:, None]) + lb.gather(1, y[:, None])).mean()
    return (nll_sum if nll == "sum" else 0.5 * nll_sum) + alpha * 0.5 * (kl_ab + kl_ba)


@pytest.mark.parametrize("nll", ["sum", "mean"])
@pytest.mark.parametrize("n, k, alpha", [(1, 2, 0.5), (7, 3, 1.0), (32, 10, 4.0)])
def test_loss_and_gradients_agree_with_kl_div(n, k, alpha, nll):
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, k, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n, k, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, k, (n,), generator=g)
    ours, ref = db.r_drop_loss(a, b, y, alpha, nll=nll), direct(a, b, y, alpha, nll)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-14)
    ga = torch.autograd.grad(ours, (a, b))
    gr = torch.autograd.grad(ref, (a, b))
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-12) for u, v in zip(ga, gr))
    # plausible wrong weightings differ: the other reduction of the two NLLs, one KL direction only
    assert not torch.allclose(ours, direct(a, b, y, alpha, "mean" if nll == "sum" else "sum"))
    ce = F.cross_entropy(a, y) + F.cross_entropy(b, y)
    one_way = (ce if nll == "sum" else 0.5 * ce) + alpha * F.kl_div(
        F.log_softmax(b, 1), F.log_softmax(a, 1), reduction="batchmean", log_target=True)
    assert not torch.allclose(ours, one_way)


def test_the_default_is_the_papers_sum_and_mean_is_half_of_it_at_twice_alpha():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=g)
    assert torch.equal(db.r_drop_loss(a, b, y, 0.7), db.r_drop_loss(a, b, y, 0.7, nll="sum"))
    assert torch.allclose(db.r_drop_loss(a, b, y, 0.7, nll="mean"), 0.5 * db.r_drop_loss(a, b, y, 1.4))


def test_kl_vanishes_at_agreement_and_shift_and_is_positive_otherwise():
    a = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert float(db.symmetric_kl(a, a)) == 0.0
    assert abs(float(db.symmetric_kl(a, a + 7.0))) < 1e-6
    assert float(db.symmetric_kl(a, a.flip(1))) > 0
    y = torch.zeros(5, dtype=torch.int64)
    assert torch.allclose(db.r_drop_loss(a, a, y, 10.0), 2 * F.cross_entropy(a, y))
    assert torch.allclose(db.r_drop_loss(a, a, y, 10.0, nll="mean"), F.cross_entropy(a, y))


def test_gradient_of_the_kl_term_is_zero_at_agreement():
    a = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    ga, gb = torch.autograd.grad(db.symmetric_kl(a, b), (a, b))
    assert torch.count_nonzero(ga.abs() > 1e-15) == 0 and torch.count_nonzero(gb.abs() > 1e-15) == 0


def test_stable_for_large_logits_and_keeps_dtype_and_inputs():
    a = torch.tensor([[1000.0, 0.0], [0.0, -1000.0]])
    b = torch.tensor([[0.0, 1000.0], [0.0, -1000.0]])
    before = a.clone(), b.clone()
    out = db.r_drop_loss(a, b, torch.tensor([0, 1]), 1.0)
    assert torch.isfinite(out) and out.dtype == torch.float32
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])
    assert db.r_drop_loss(a.double(), b.double(), torch.tensor([0, 1]), 1.0).dtype == torch.float64


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits_b=torch.zeros(3, 4)), "^logits_b must have the shape"),
    (dict(target=torch.zeros(2, dtype=torch.int64)), r"^target must have shape \(3,\)"),
    (dict(target=torch.full((3,), 5)), r"^target must hold class indices in \[0, 4\]"),
    (dict(target=torch.zeros(3)), "^target must be an int64"),
    (dict(alpha=-1.0), "^alpha must be"),
    (dict(nll="average"), "^nll must be 'sum' or 'mean'"),
    (dict(nll=None), "^nll must be 'sum' or 'mean'"),
    (dict(logits_a=torch.zeros(3, 1), logits_b=torch.zeros(3, 1)), "^logits_a must have shape"),
])
def test_bad_arguments_are_named(kwargs, match):
    call = dict(logits_a=torch.zeros(3, 5), logits_b=torch.zeros(3, 5), target=torch.zeros(3, dtype=torch.int64),
                alpha=1.0) | kwargs
    with pytest.raises((TypeError, ValueError), match=match):
        db.r_drop_loss(**call)
