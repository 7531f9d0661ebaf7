"""Chapter 14: LayerDrop drops whole layers per pass (shared over the batch), prunes at inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropoutbook as db
from dropoutbook.derivations import drop_rate, layerdrop_depth
from helpers import check_agrees_and_rejects


class Add(nn.Module):
    """A residual layer that adds its own index + 1 (so the output tells which layers ran)."""

    def __init__(self, i):
        super().__init__()
        self.i = i

    def forward(self, x):
        return x + 10.0 ** self.i


def stack(n=6, p=0.5, seed=0):
    return db.LayerDrop([Add(i) for i in range(n)], p, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_number_of_layers_applied_agrees_with_the_derived_mean(p):
    s = stack(6, p)
    counts = []
    for _ in range(4000):
        s(torch.zeros(1))
        counts.append(float(len(s.last_applied)))
    est = db.estimate_mean(counts)
    d = layerdrop_depth(6)
    truth = float(d.mean.subs(drop_rate, p))
    check_agrees_and_rejects(est, truth, {"L p (drop and keep swapped)": 6 * p, "L (nothing dropped)": 6.0}
                             if p != 0.5 else {"L (nothing dropped)": 6.0, "L(1-p)^2": 6 * (1 - p) ** 2})
    var = db.estimate_variance(counts)
    check_agrees_and_rejects(var, float(d.variance.subs(drop_rate, p)), {"L(1-p)": 6 * (1 - p)})


def test_one_draw_per_layer_shared_by_the_batch_and_independent_across_passes():
    s = stack(6, 0.5)
    x = torch.zeros(8, 3)
    y = s(x)
    expected = sum(10.0**i for i in s.last_applied)
    assert torch.equal(y, torch.full_like(x, expected))  # every row saw the same layers
    seen = set()
    for _ in range(50):
        s(x)
        seen.add(s.last_applied)
    assert len(seen) > 20  # fresh draws per pass


def test_masks_over_layers_are_independent():
    s = stack(2, 0.5)
    both = []
    for _ in range(4000):
        s(torch.zeros(1))
        both.append(float(s.last_applied == (0, 1)))
    check_agrees_and_rejects(db.estimate_mean(both), 0.25, {"fully correlated layers": 0.5})


def test_eval_applies_the_kept_layers_without_rescaling():
    s = stack(6, 0.5).eval()
    assert float(s(torch.zeros(1))) == 111111.0
    s.prune(db.every_other_layer(6))
    assert s.kept == (0, 2, 4) and float(s(torch.zeros(1))) == 10101.0
    s.prune(())
    assert float(s(torch.zeros(1))) == 0.0
    s.train()
    s.p = 0.0
    assert float(s(torch.zeros(1))) == 111111.0


def test_every_other_layer_follows_the_papers_rule():
    assert db.every_other_layer(6) == (0, 2, 4)
    assert db.every_other_layer(12, 0.25) == (0, 1, 2, 4, 5, 6, 8, 9, 10)
    assert db.every_other_layer(5, 0.5) == (0, 2, 4)
    assert db.every_other_layer(3, 0.0) == (0, 1, 2)


def test_works_with_chapter_9s_transformer_block_and_passes_gradients_at_p_1():
    torch.manual_seed(0)
    blocks = [db.TransformerBlock(8, 2, 16) for _ in range(3)]
    s = db.LayerDrop(blocks, 0.5, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 5, 8, requires_grad=True)
    assert s(x).shape == x.shape
    s.p = 1.0
    y = s(x)
    assert s.last_applied == () and torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_bad_layers_and_subsets_are_refused():
    with pytest.raises(ValueError, match=r"^layers\[0\] must map its input to a tensor of the same shape"):
        db.LayerDrop([nn.Linear(3, 2)], 0.0)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="^kept must list distinct"):
        stack().prune((2, 1))
    with pytest.raises(ValueError, match=r"^kept\[0\] must be"):
        stack().prune((6,))
    with pytest.raises(TypeError, match="^layers must be a sequence"):
        db.LayerDrop(nn.Linear(2, 2))


def test_every_other_refuses_a_rate_that_would_remove_every_layer():
    for rate in (0.51, 0.6, 0.9):
        with pytest.raises(ValueError, match=r"^rate must be in \[0, 1/2\] for the every-other rule"):
            db.every_other_layer(6, rate)
    assert db.every_other_layer(6, 0.5) == (0, 2, 4) and db.every_other_layer(6, 0.4) == (0, 2, 4)


def test_no_layer_applied_returns_a_copy_with_the_gradient_of_the_identity():
    x = torch.randn(3, 4, requires_grad=True)
    stack = db.LayerDrop([nn.Linear(4, 4) for _ in range(3)], p=1.0)
    out = stack(x)
    assert out is not x and torch.equal(out, x) and stack.last_applied == ()
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    with torch.no_grad():
        out2 = stack.prune(()).eval()(x)
        out2.zero_()
    assert not torch.equal(x, torch.zeros_like(x))  # the caller's tensor is not the output
