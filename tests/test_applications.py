"""Chapter 15's library: the breast-cancer split, referral and deferral curves, the ZINB simulator,
the masked reconstruction loss of the denoising autoencoder, and the causal pieces (weak-overlap
data, TARNet, factual loss, MC-dropout CATE)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dropoutbook as db


# --------------------------------------------------------------------------------------------
# medicine


def test_breast_cancer_split_is_standardized_on_train_and_disjoint():
    split = db.load_breast_cancer_split(200, n_val=100, seed=3)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (200, 100, 269)
    assert torch.allclose(split.x_train.mean(0), torch.zeros(30, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(split.x_train.std(0, correction=0), torch.ones(30, dtype=torch.float64), atol=1e-10)
    rows = torch.cat([split.x_train, split.x_val, split.x_test])
    assert torch.unique(rows, dim=0).shape[0] == 569  # every case once
    assert set(split.y_test.tolist()) == {0, 1} and split.x_train.dtype == torch.float64
    again = db.load_breast_cancer_split(200, n_val=100, seed=3, dtype=torch.float32)
    assert torch.equal(again.y_test, split.y_test) and again.x_test.dtype == torch.float32
    assert not db.load_breast_cancer_split(200, n_val=0, seed=3).has_validation


def test_referral_curves_are_referral_curve_per_score_and_name_a_bad_score():
    g = torch.Generator().manual_seed(0)
    correct = torch.rand(40, generator=g) < 0.8
    scores = {"a": torch.rand(40, generator=g), "b": -correct.double() + 0.1 * torch.rand(40, generator=g)}
    curves = db.referral_curves(correct, scores, [0.0, 0.1, 0.5])
    assert list(curves) == ["a", "b"]
    for name, u in scores.items():
        assert torch.equal(curves[name], db.referral_curve(correct, u, [0.0, 0.1, 0.5]))
    assert curves["b"][2] == 1.0  # the errors are the most uncertain by score b
    with pytest.raises(ValueError, match=r"^scores\['b'\] must have the shape of correct"):
        db.referral_curves(correct, {"a": scores["a"], "b": torch.ones(3)}, [0.0])


def test_deferral_curve_is_the_rmse_of_the_most_certain_kept_cases():
    g = torch.Generator().manual_seed(1)
    errors = torch.randn(50, generator=g, dtype=torch.float64)
    u = torch.rand(50, generator=g, dtype=torch.float64)
    fractions = [0.0, 0.1, 0.3, 0.62]
    curve = db.deferral_curve(errors, u, fractions)
    order = torch.argsort(u)
    for f, value in zip(fractions, curve):
        k = round(50 * (1 - f))
        assert math.isclose(float(value), float(errors[order[:k]].pow(2).mean().sqrt()), rel_tol=1e-12)
    # an uncertainty equal to the error's size defers the largest errors first: the curve falls
    perfect = db.deferral_curve(errors, errors.abs(), fractions)
    assert (perfect[1:] < perfect[:-1]).all() and math.isclose(float(perfect[0]), float(curve[0]))
    # numpy in, numpy out; nothing modified
    e_np, u_np = errors.numpy().copy(), u.numpy().copy()
    out = db.deferral_curve(e_np, u_np, fractions)
    assert isinstance(out, np.ndarray) and np.allclose(out, curve.numpy())
    assert np.array_equal(e_np, errors.numpy()) and np.array_equal(u_np, u.numpy())


def test_random_deferral_curve_keeps_the_mean_squared_error_in_expectation():
    g = torch.Generator().manual_seed(2)
    errors = torch.randn(30, generator=g, dtype=torch.float64) * torch.linspace(0.1, 3, 30, dtype=torch.float64)
    curve = db.random_deferral_curve(errors, [0.0, 0.5], n_draws=4000, generator=torch.Generator().manual_seed(3))
    overall = float(errors.pow(2).mean().sqrt())
    assert math.isclose(float(curve[0]), overall, rel_tol=1e-12)  # nothing deferred: the overall RMSE
    assert float(curve[1]) < overall  # Jensen: the mean RMSE of a random half is below the overall RMSE
    assert float(curve[1]) > 0.8 * overall  # ... but close to it: no systematic gain
    same = db.random_deferral_curve(errors, [0.0, 0.5], n_draws=4000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(curve, same)


# --------------------------------------------------------------------------------------------
# biology


def test_simulated_counts_have_low_rank_means_and_technical_zeros():
    data = db.simulate_zinb_counts(300, 40, n_types=3, dispersion=2.0, zero_inflation=0.25, seed=5)
    assert data.counts.shape == data.means.shape == data.true_counts.shape == (300, 40)
    assert data.counts.dtype == torch.float32 and data.technical_zero.dtype == torch.bool
    assert torch.equal(data.counts, torch.where(data.technical_zero, 0.0, data.true_counts))
    assert abs(data.technical_zero.double().mean().item() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 12000)
    # log means: rank at most n_types + 1 (type effects plus the size factor)
    s = torch.linalg.svdvals(data.means.double().log())
    assert s[4] < 1e-8 * s[0] < s[3]
    assert set(data.cell_type.tolist()) == {0, 1, 2}
    again = db.simulate_zinb_counts(300, 40, n_types=3, dispersion=2.0, zero_inflation=0.25, seed=5)
    assert torch.equal(again.counts, data.counts)


def test_sample_zinb_keeps_shape_dtype_and_input():
    means = torch.full((3, 4), 2.0, dtype=torch.float64)
    before = means.clone()
    out = db.sample_zinb(means, 1.5, 0.0, seed=0)
    assert torch.equal(means, before) and out.counts.dtype == torch.float64 and out.counts.shape == (3, 4)
    assert not out.technical_zero.any() and torch.equal(out.counts, out.true_counts)
    assert (db.sample_zinb(means, 1.5, 1.0, seed=0).counts == 0).all()
    assert db.sample_zinb(np.ones(5), 1.0, 0.5, seed=0).counts.dtype == torch.float64


class Recorder(nn.Module):
    """Returns a fixed output and records the input it was given."""

    def __init__(self, out):
        super().__init__()
        self.out, self.seen = out, None

    def forward(self, x):
        self.seen = x.clone()
        return self.out


def test_masked_reconstruction_loss_hides_entries_scales_survivors_and_scores_the_hidden():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(400, 30, generator=g, dtype=torch.float64) + 0.5
    target = torch.randn(400, 30, generator=g, dtype=torch.float64)
    model = Recorder(target)
    before = x.clone()
    loss = db.masked_reconstruction_loss(model, x, 0.3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, before)
    hidden = model.seen == 0
    assert torch.allclose(model.seen[~hidden], x[~hidden] / 0.7)  # inverted scaling of the survivors
    frac = hidden.double().mean().item()
    assert abs(frac - 0.3) < 5 * math.sqrt(0.3 * 0.7 / x.numel())
    assert hidden.any(dim=1).all() and not torch.equal(hidden[0], hidden[1])  # a mask per entry, not per batch
    want = ((target - x) ** 2)[hidden].mean()
    assert torch.allclose(loss, want)
    assert not torch.allclose(loss, ((target - x) ** 2).mean())
    # it trains: gradients reach the parameters
    net = nn.Linear(30, 30).double()
    db.masked_reconstruction_loss(net, x, 0.5, generator=g).backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# causal inference


def test_weak_overlap_data_has_its_stated_structure():
    data = db.simulate_weak_overlap(4000, overlap=3.0, noise=0.5, seed=6)
    x1 = data.x[:, 0]
    assert torch.allclose(data.propensity, torch.sigmoid(3.0 * x1), atol=1e-6)
    assert torch.allclose(data.tau, 1 + 0.5 * x1**2, atol=1e-5)
    assert torch.allclose(data.mu0, torch.sin(2 * x1) + 0.5 * data.x[:, 1], atol=1e-5)
    assert not data.t[x1 < -2].any() and data.t[x1 > 2].all()  # no overlap far out
    middle = x1.abs() < 0.3
    assert 0.3 < data.t[middle].double().mean() < 0.7
    resid = data.y - torch.where(data.t, data.mu1, data.mu0)
    assert abs(resid.std().item() - 0.5) < 0.05


def test_tarnet_heads_share_the_trunk_and_factual_loss_picks_the_received_arm():
    torch.manual_seed(0)
    model = db.TARNet(2, 8, p=0.2)
    x = torch.randn(6, 2)
    out = model.eval()(x)
    phi = model.trunk(x)
    assert torch.allclose(out, torch.cat([h(phi) for h in model.heads], 1))
    assert len(db.dropout_modules(model)) == 4  # 2 in the trunk, one per head
    outputs = torch.tensor([[0.0, 1.0], [2.0, 3.0], [5.0, -1.0]], requires_grad=True)
    loss = db.factual_loss(outputs, np.array([1, 0, 1]), torch.tensor([1.5, 1.0, 0.0]))
    assert math.isclose(loss.item(), (0.25 + 1.0 + 1.0) / 3, rel_tol=1e-6)
    loss.backward()
    assert torch.equal(outputs.grad[:, 0] == 0, torch.tensor([True, False, True]))


def test_train_tarnet_restores_the_epoch_best_on_validation():
    data = db.simulate_weak_overlap(300, seed=7)
    torch.manual_seed(1)
    model = db.TARNet(2, 16, p=0.1)
    val = (data.x[:100], data.t[:100], data.y[:100])
    losses = db.train_tarnet(model, data.x[100:], data.t[100:], data.y[100:], epochs=6, lr=1e-2, seed=1,
                             validation=val)
    model.eval()
    with torch.no_grad():
        final = db.factual_loss(model(val[0]), val[1], val[2]).item()
    assert len(losses) == 6 and math.isclose(final, min(losses), rel_tol=1e-6)
    assert min(losses) < losses[0]


def test_mc_cate_is_the_variance_of_the_difference_from_one_mask():
    # one hidden unit feeds both heads with the same weight: the heads move together under the mask
    torch.manual_seed(2)
    model = db.TARNet(1, 4, p=0.5, depth=1)
    with torch.no_grad():
        for head in model.heads:
            head[0].weight.copy_(torch.eye(4))
            head[0].bias.zero_()
        model.heads[0][3].weight.fill_(1.0)
        model.heads[1][3].weight.fill_(1.2)
    x = torch.ones(3, 1)
    before = x.clone()
    pred = db.mc_cate(model, x, T=400, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, before) and model.training
    samples = db.mc_predict(model, x, 400, generator=torch.Generator().manual_seed(3), return_samples=True).samples
    tau = samples[..., 1] - samples[..., 0]
    assert torch.allclose(pred.samples, tau) and torch.allclose(pred.variance, tau.var(0))
    summed = samples[..., 0].var(0) + samples[..., 1].var(0)
    assert (pred.variance < 0.9 * summed).all()  # the covariance of the heads counts
