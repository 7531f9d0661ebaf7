"""Chapter 6 library: the variance-shift formula against Monte Carlo and a real BatchNorm layer,
the measurement hooks, and BatchNorm recalibration (what it changes and what it must not)."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook import derivations as d
from helpers import Z, check_agrees_and_rejects


def wrong_train_variances(mu, s2, q):
    """Plausible wrong closed forms of the training-time variance (see test_derivations_batchnorm)."""
    return {
        "mean term forgotten": s2 / q,
        "E[x~^2]": (s2 + mu**2) / q,
        "missing 1/q on the mean term": s2 / q + mu**2 * (1 - q),
        "drop and keep swapped": s2 / (1 - q) + mu**2 * q / (1 - q),
        "no dropout": s2,
    }


# --------------------------------------------------------------------------------------------
# bn_train_variance


DERIVED = d.variance_shift()
DERIVED_TRAIN_VARIANCE = sp.lambdify((DERIVED.mean, DERIVED.sigma2, d.keep_rate), DERIVED.train_variance)


@settings(max_examples=30)
@given(mu=st.floats(-3, 3), s2=st.floats(0.01, 4), q=st.floats(0.05, 1.0))
def test_bn_train_variance_is_the_derived_formula(mu, s2, q):
    exact = DERIVED_TRAIN_VARIANCE(mu, s2, q)
    assert math.isclose(db.bn_train_variance(mu, s2, q), exact, rel_tol=1e-12, abs_tol=1e-12)


def test_bn_train_variance_keeps_dtype_and_broadcasts():
    mu = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    out = db.bn_train_variance(mu, torch.tensor(1.0, dtype=torch.float64), 0.5)
    assert out.dtype == torch.float64
    assert torch.allclose(out, torch.tensor([2.0, 3.0, 6.0], dtype=torch.float64))
    assert db.bn_train_variance(1.0, 2.0, 1.0) == 2.0  # no dropout, no inflation


@pytest.mark.parametrize("args, error, match", [
    ((0.0, 1.0, 0.0), ValueError, "keep_prob"),
    ((0.0, 1.0, 1.5), ValueError, "keep_prob"),
    ((0.0, 1.0, float("nan")), ValueError, "keep_prob"),
    ((0.0, 1.0, True), TypeError, "keep_prob"),
    ((0.0, -1.0, 0.5), ValueError, "sigma2"),
    ((0.0, torch.tensor([1.0, -1.0]), 0.5), ValueError, "sigma2"),
    ((torch.tensor([1, 2]), 1.0, 0.5), TypeError, "mu"),
    (("1", 1.0, 0.5), TypeError, "mu"),
    ((float("nan"), 1.0, 0.5), ValueError, "mu"),
])
def test_bn_train_variance_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        db.bn_train_variance(*args)


@pytest.mark.parametrize("mu, s2, p", [(0.0, 1.0, 0.4), (1.5, 0.5, 0.3), (-1.5, 0.5, 0.2)])
def test_train_variance_by_monte_carlo(mu, s2, p):
    g = torch.Generator().manual_seed(11)
    x = mu + math.sqrt(s2) * torch.randn(400_000, generator=g, dtype=torch.float64)
    dropped = db.inverted_dropout(x, p, generator=g)
    q = 1 - p
    wrong = wrong_train_variances(mu, s2, q)
    if mu == 0.0:  # the mean term vanishes: only the formulas that differ at mu = 0 can be rejected
        wrong = {k: v for k, v in wrong.items() if k in ("drop and keep swapped", "no dropout")}
    check_agrees_and_rejects(db.estimate_variance(dropped), db.bn_train_variance(mu, s2, q), wrong)
    check_agrees_and_rejects(db.estimate_mean(dropped), mu, {"standard dropout mean q*mu": q * mu} if mu else {})


def test_batchnorm_running_variance_converges_to_the_training_variance():
    """A real BatchNorm1d after nn.Dropout, momentum=None: its running variance is the average of
    the per-batch (unbiased) training variances, which estimates bn_train_variance."""
    torch.manual_seed(0)
    mu = torch.tensor([0.0, 1.0, 2.0])
    s2, p, batches, n = 0.5, 0.4, 60, 256
    bn = nn.BatchNorm1d(3, momentum=None)
    net = nn.Sequential(nn.Dropout(p), bn).train()
    per_batch = []
    bn.register_forward_pre_hook(lambda mod, args: per_batch.append(args[0].var(0, unbiased=True)))
    with torch.no_grad():
        for _ in range(batches):
            net(mu + math.sqrt(s2) * torch.randn(n, 3))
    v = torch.stack(per_batch).double()
    assert torch.allclose(bn.running_var.double(), v.mean(0), rtol=1e-4)  # momentum=None: plain average
    se = v.std(0) / math.sqrt(batches)
    for c in range(3):
        est = db.Estimate(bn.running_var[c].item(), se[c].item(), batches)
        truth = db.bn_train_variance(mu[c].item(), s2, 1 - p)
        wrong = wrong_train_variances(mu[c].item(), s2, 1 - p)
        if c == 0:
            wrong = {k: wrong[k] for k in ("drop and keep swapped", "no dropout")}
        check_agrees_and_rejects(est, truth, wrong)


# --------------------------------------------------------------------------------------------
# networks used below


def net_with_dropout_before_bn(p=0.5, width=16, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(8, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(p),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 3),
    )


def data_batches(count, n=200, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 8, generator=g) * 2 + 0.5 for _ in range(count)]


def shifted_net(p=0.5):
    """Running statistics accumulated in training mode (dropout on), as training leaves them."""
    net = net_with_dropout_before_bn(p)
    for bn in (net[1], net[5]):
        bn.momentum = None
    net.train()
    with torch.no_grad():
        for x in data_batches(20, seed=2):
            net(x)
    return net


def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {name: m.training for name, m in model.named_modules()},
            {name: getattr(m, "momentum", None) for name, m in model.named_modules()})


# --------------------------------------------------------------------------------------------
# measure_variance_shift


def test_measure_matches_an_independent_computation_and_names_the_layers():
    net = shifted_net()
    batches = data_batches(5, seed=3)
    shift = db.measure_variance_shift(net, batches)
    assert list(shift) == ["1", "5"]
    inputs = {}
    handles = [net[i].register_forward_pre_hook(
        lambda mod, args, i=i: inputs.setdefault(i, []).append(args[0])) for i in (1, 5)]
    net.eval()
    with torch.no_grad():
        for x in batches:
            net(x)
    for h in handles:
        h.remove()
    for i in (1, 5):
        x = torch.cat(inputs[i]).double()
        s = shift[str(i)]
        assert s.n == 1000
        assert torch.allclose(s.test_var, x.var(0, unbiased=True), rtol=1e-6)
        assert torch.allclose(s.test_mean, x.mean(0), rtol=1e-6, atol=1e-9)
        assert torch.equal(s.running_var, net[i].running_var.double())
        assert torch.allclose(s.ratio, net[i].running_var.double() / x.var(0))
        assert torch.allclose(s.output_scale, s.ratio.rsqrt())
        assert math.isclose(s.mean_ratio, s.ratio.mean().item())


def test_measure_leaves_the_model_unchanged():
    net = shifted_net()
    net[3].eval()  # mixed modes must survive too
    before = snapshot(net)
    batches = data_batches(3, seed=4)
    copies = [b.clone() for b in batches]
    db.measure_variance_shift(net, [(x, torch.zeros(len(x))) for x in batches])  # (input, target) pairs
    after = snapshot(net)
    assert before[1] == after[1] and before[2] == after[2]
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert all(torch.equal(a, b) for a, b in zip(batches, copies))
    assert all(not m._forward_pre_hooks for m in net.modules())


def test_measure_restores_modes_after_an_exception():
    net = shifted_net().train()

    def failing():
        yield data_batches(1)[0]
        raise RuntimeError("data loader broke")

    with pytest.raises(RuntimeError, match="data loader broke"):
        db.measure_variance_shift(net, failing())
    assert all(m.training for m in net.modules())
    assert all(not m._forward_pre_hooks for m in net.modules())


def test_measure_sees_the_shift_of_dropout_directly_before_bn():
    """Dropout straight into BatchNorm: the measured ratio is the derived 1/q + mu^2(1-q)/(q sigma^2),
    within 5 standard errors, and the plausible wrong ratios lie more than 5 standard errors away."""
    torch.manual_seed(5)
    p, mu, s2, batches, n = 0.3, torch.tensor([0.0, 1.0]), 1.0, 100, 500
    net = nn.Sequential(nn.Dropout(p), nn.BatchNorm1d(2, momentum=None)).train()
    per_batch = []
    hook = net[1].register_forward_pre_hook(
        lambda mod, args: per_batch.append(args[0].double().var(0)) if mod.training else None)
    with torch.no_grad():
        for _ in range(batches):
            net(mu + torch.randn(n, 2))
    hook.remove()
    shift = db.measure_variance_shift(net, [mu + torch.randn(n, 2) for _ in range(batches)])["1"]
    v = torch.stack(per_batch)
    # relative s.e. of the running variance (mean of the batch variances, from their spread) and of
    # the test variance (normal data: sqrt(2/(N - 1))), combined for the ratio
    rel_se = ((v.std(0) / v.mean(0)) ** 2 / batches + 2 / (shift.n - 1)).sqrt()
    q = 1 - p
    for c in range(2):
        m = mu[c].item()
        ratio = shift.ratio[c].item()
        est = db.Estimate(ratio, rel_se[c].item() * ratio, shift.n)
        wrong = {"no shift": 1.0, "drop and keep swapped": 1 / p + m**2 * q / (p * s2)}
        if m != 0:
            wrong.update({"mean term forgotten": 1 / q, "missing 1/q on the mean term": 1 / q + m**2 * (1 - q) / s2,
                          "E[x~^2] over the variance": (s2 + m**2) / (q * s2)})
        check_agrees_and_rejects(est, db.bn_train_variance(m, s2, q) / s2, wrong)


@pytest.mark.parametrize("model, batches, error, match", [
    (nn.Linear(2, 2), [torch.randn(4, 2)], ValueError, "no BatchNorm"),
    (nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), [torch.randn(4, 2)], ValueError, "no BatchNorm"),
    (nn.Sequential(nn.BatchNorm1d(2, track_running_stats=False)), [torch.randn(4, 2)], ValueError, "no BatchNorm"),
    ("model", [torch.randn(4, 2)], TypeError, "model"),
    (nn.BatchNorm1d(2), [], ValueError, "batches is empty"),
    (nn.BatchNorm1d(2), torch.randn(4, 2), TypeError, "batches"),
    (nn.BatchNorm1d(2), [[1, 2]], TypeError, "batches"),
    (nn.BatchNorm1d(2), [torch.randn(1, 2)], ValueError, "N >= 2"),
])
def test_bad_arguments(model, batches, error, match):
    for fn in (db.measure_variance_shift, db.recalibrate_batchnorm):
        with pytest.raises(error, match=match):
            fn(model, batches)


# --------------------------------------------------------------------------------------------
# recalibrate_batchnorm


def test_recalibration_is_the_plain_average_of_dropout_free_batch_statistics():
    """Exact bookkeeping for the first BatchNorm layer: after recalibration its running variance
    is the mean over batches of the unbiased variance of its (dropout-free) input. A pass with
    dropout on, the default momentum, or the biased variance would each give another number."""
    net = shifted_net()
    batches = data_batches(6, n=50, seed=6)
    db.recalibrate_batchnorm(net, batches)
    with torch.no_grad():
        inputs = [net[0](x).double() for x in batches]
    v = torch.stack([x.var(0, unbiased=True) for x in inputs]).mean(0)
    m = torch.stack([x.mean(0) for x in inputs]).mean(0)
    assert torch.allclose(net[1].running_var.double(), v, rtol=1e-5)
    assert torch.allclose(net[1].running_mean.double(), m, rtol=1e-5, atol=1e-6)
    assert net[1].num_batches_tracked.item() == 6
    biased = torch.stack([x.var(0, unbiased=False) for x in inputs]).mean(0)
    assert not torch.allclose(net[1].running_var.double(), biased, rtol=1e-3)


def test_recalibration_brings_the_ratio_to_one_within_sampling_error():
    """Recalibrate on batches A, measure on independent batches C: every channel's ratio is 1
    within 5 standard errors, while before recalibration (and after a pass in training mode,
    dropout on) it is far from 1."""
    net = shifted_net(p=0.5)
    calib, fresh = data_batches(25, seed=7), data_batches(25, seed=8)
    before = db.measure_variance_shift(net, fresh)

    per_batch = {"1": [], "5": []}
    handles = [net[i].register_forward_pre_hook(
        lambda mod, args, i=i: per_batch[str(i)].append(args[0].double().var(0)) if mod.training else None)
        for i in (1, 5)]
    db.recalibrate_batchnorm(net, calib)
    for h in handles:
        h.remove()
    after = db.measure_variance_shift(net, fresh)
    fresh_var = {"1": [], "5": []}
    handles = [net[i].register_forward_pre_hook(
        lambda mod, args, i=i: fresh_var[str(i)].append(args[0].double().var(0))) for i in (1, 5)]
    with torch.no_grad():
        net.eval()
        for x in fresh:
            net(x)
        net.train()
    for h in handles:
        h.remove()
    for name in ("1", "5"):
        a, c = torch.stack(per_batch[name]), torch.stack(fresh_var[name])
        # relative standard error of each variance estimate, from the spread of the batch variances
        rel_se = ((a.std(0) / a.mean(0)) ** 2 / len(a) + (c.std(0) / c.mean(0)) ** 2 / len(c)).sqrt()
        z = (after[name].ratio - 1) / rel_se
        assert z.abs().max() < Z, (name, z)
        assert math.isclose(after[name].mean_ratio, 1, abs_tol=Z * rel_se.mean().item() / math.sqrt(16))
    # layer "1" has no dropout before it: no shift to begin with; layer "5" follows Dropout(0.5)
    z_before = (before["5"].ratio - 1) / rel_se
    assert z_before.min() > 2 * Z, z_before
    # the naive remedy: a statistics pass in training mode (dropout on) restores the shift
    for bn in (net[1], net[5]):
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        for x in calib:
            net.train()(x)
    naive = db.measure_variance_shift(net, fresh)
    assert ((naive["5"].ratio - 1) / rel_se).min() > 2 * Z


def test_recalibration_changes_only_running_statistics_and_restores_modes():
    net = shifted_net()
    net.eval()
    net[3].train()  # dropout left in training mode, the rest in eval
    net[5].momentum = 0.3
    before = snapshot(net)
    x = data_batches(3, seed=9)
    out = db.recalibrate_batchnorm(net, x)
    assert out is net
    after = snapshot(net)
    assert before[1] == after[1] and before[2] == after[2]
    stats = ("running_mean", "running_var", "num_batches_tracked")
    changed = {k for k in before[0] if not torch.equal(before[0][k], after[0][k])}
    assert changed and all(k.endswith(stats) for k in changed), changed
    assert all(p.grad is None for p in net.parameters())


def test_recalibration_without_gradients():
    net = shifted_net()
    x = data_batches(2, seed=10)[0].requires_grad_()
    db.recalibrate_batchnorm(net, [x])
    assert x.grad is None and all(p.grad is None for p in net.parameters())


def test_recalibration_restores_everything_after_an_exception():
    net = shifted_net().train()
    before = snapshot(net)

    def failing():
        yield data_batches(1)[0]
        raise RuntimeError("data loader broke")

    with pytest.raises(RuntimeError, match="data loader broke"):
        db.recalibrate_batchnorm(net, failing())
    after = snapshot(net)
    assert before[1] == after[1] and before[2] == after[2]
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    with pytest.raises(ValueError, match="empty"):
        db.recalibrate_batchnorm(net, iter([]))
    assert all(torch.equal(before[0][k], net.state_dict()[k]) for k in before[0])


def test_recalibration_works_for_convolutions():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(torch.randn(32, 1, 8, 8) + 1)
    batches = [torch.randn(64, 1, 8, 8) + 1 for _ in range(10)]
    assert db.measure_variance_shift(net, batches)["2"].mean_ratio > 1.3
    db.recalibrate_batchnorm(net, batches)
    shift = db.measure_variance_shift(net, batches)["2"]
    assert shift.n == 10 * 64 * 36
    assert torch.allclose(shift.ratio, torch.ones(4, dtype=torch.float64), atol=0.02)


def test_test_time_output_variance_is_one_over_k_squared():
    """BatchNorm's normalized test-time output behind dropout has variance 1/k^2 = Var_test/Var_train
    (derived); k itself, 1/k, and the mean-free q are rejected."""
    torch.manual_seed(12)
    mu, s2, p = 1.0, 1.0, 0.4
    q = 1 - p
    bn = nn.BatchNorm1d(1, momentum=None, affine=False, eps=1e-12)
    net = nn.Sequential(nn.Dropout(p), bn).train()
    per_batch = []
    bn.register_forward_pre_hook(lambda mod, args: per_batch.append(args[0].var()) if mod.training else None)
    with torch.no_grad():
        for _ in range(50):
            net(mu + torch.randn(2000, 1, dtype=torch.float32))
        out = net.eval()(mu + torch.randn(200_000, 1)).double()
    v = torch.stack(per_batch).double()
    rel_se_running = (v.std() / v.mean()).item() / math.sqrt(len(v))
    est = db.estimate_variance(out)
    combined = db.Estimate(est.value, math.hypot(est.stderr, rel_se_running * est.value), est.n)
    k = float(DERIVED.scale_error.subs({DERIVED.mean: mu, DERIVED.sigma2: s2, d.keep_rate: q}))
    truth = float(DERIVED.test_output_variance.subs({DERIVED.mean: mu, DERIVED.sigma2: s2, d.keep_rate: q}))
    assert math.isclose(truth, 1 / k**2)
    check_agrees_and_rejects(combined, truth, {"k^2 (the ratio)": k**2, "1/k": 1 / k, "q (mean ignored)": q,
                                               "1 (no shift)": 1.0})


# --------------------------------------------------------------------------------------------
# LayerNorm behind dropout: no running statistics, but a scale mismatch (layernorm_train_test_scale)


def _ln_setup(d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.relu(torch.randn(d, generator=g, dtype=torch.float64)) + 0.1
    w = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return h, w


def _slope_by_hand(h, w, p, n, g):
    """The same quantity written out directly: the mean over masks of LN(z~), projected on LN(z)."""
    ln = lambda z: (z - z.mean(-1, keepdim=True)) / z.std(-1, unbiased=False, keepdim=True)
    masks = (torch.rand(n, h.shape[0], generator=g, dtype=torch.float64) >= p).double()
    mean_train = ln((masks * h / (1 - p)) @ w.T).mean(0)
    test = ln(w @ h)
    return float(mean_train @ test / (test @ test))


def test_layernorm_scale_agrees_with_a_direct_computation_and_is_far_from_one():
    h, w = _ln_setup()
    est = db.layernorm_train_test_scale(h, w, 0.5, samples=20_000, generator=torch.Generator().manual_seed(1))
    direct = _slope_by_hand(h, w, 0.5, 200_000, torch.Generator().manual_seed(2))
    # the direct value has its own Monte Carlo error, about a third of est's: allow for both
    assert abs(est.value - direct) < Z * est.stderr * (1 + 1 / 3**0.5), (est, direct)
    # power: "LayerNorm has nothing to shift" (kappa = 1) is many standard errors away
    assert not db.agrees(est, 1.0, z=Z)
    assert est.value < 0.8


def test_layernorm_scale_is_one_without_dropout_and_shrinks_with_p():
    h, w = _ln_setup(d=32, seed=3)
    assert db.layernorm_train_test_scale(h, w, 0.0).value == 1.0
    values = [db.layernorm_train_test_scale(h, w, p, samples=4000, generator=torch.Generator().manual_seed(4))
              for p in (0.1, 0.3, 0.5)]
    for a, b in zip(values, values[1:]):
        assert a.value - b.value > Z * (a.stderr**2 + b.stderr**2) ** 0.5, (a, b)


def test_layernorm_scale_batch_of_rows_and_bias_and_input_untouched():
    h, w = _ln_setup(d=16, seed=5)
    rows = torch.stack([h, 2 * h + 0.1])
    bias = torch.linspace(-1, 1, 16, dtype=torch.float64)
    before = rows.clone()
    est = db.layernorm_train_test_scale(rows, w, 0.3, bias=bias, samples=500, generator=torch.Generator().manual_seed(6))
    assert torch.equal(rows, before) and est.n == 1000 and 0 < est.value < 1


def test_batchnorm_with_fixed_statistics_keeps_the_conditional_mean():
    """The other view of the shift: un-recalibrated BatchNorm is affine at test time, so its training-time mean
    given the input is exactly its test-time output (dropout's own design rule), whatever its running variance."""
    torch.manual_seed(7)
    bn = nn.BatchNorm1d(5).double().eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 3)
    x = torch.randn(5, dtype=torch.float64)
    g = torch.Generator().manual_seed(8)
    noisy = db.inverted_dropout(x.expand(200_000, 5), 0.5, generator=g)
    out = bn(noisy)
    mean, se = out.mean(0), out.std(0) / 200_000**0.5
    assert ((mean - bn(x[None])[0]).abs() < Z * se).all()
    # power: the test output scaled by 1/k (a plausible reading of "the shift") is far away in some channel
    assert ((mean - 0.7 * bn(x[None])[0]).abs() > Z * se).any()
