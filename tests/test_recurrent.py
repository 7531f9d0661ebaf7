"""Chapter 11, "Dropout in recurrent networks": the library (dropoutbook.recurrent) and its Monte-Carlo checks.

Deterministic contract first (shapes, dtypes, layouts, masks shared over time and independent
over batch and features, WeightDrop leaving the module's parameters alone, errors), then the
statistical layer: the samplers agree with the closed forms derived by dropoutbook.derivations
(|z| <= Z) and reject the plausible wrong formulas by more than Z standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

import dropoutbook as db
from dropoutbook import (
    DropConnectLinear,
    RecurrentClassifier,
    RecurrentDropout,
    WeightDrop,
    delayed_recall,
    drop_connect,
    locked_dropout,
    zoneout,
)
from dropoutbook.derivations import drop_rate, dropconnect_moments, n_steps, signal_survival, zoneout_moments
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import check_agrees_and_rejects

SURV = signal_survival()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def at(expr, **values) -> float:
    subs = {drop_rate: sp.nsimplify(values.pop("p"))}
    if "k" in values:
        subs[n_steps] = values.pop("k")
    return float(expr.subs(subs))


# --------------------------------------------------------------------------------------------
# locked_dropout: contract


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_locked_dropout_shares_the_mask_over_time(batch_first, dtype):
    x = (torch.rand(7, 5, 6, generator=gen(0), dtype=torch.float64) + 0.5).to(dtype)
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    before = x.clone()
    out = locked_dropout(x, 0.4, batch_first=batch_first, generator=gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype and torch.equal(x, before)
    ratio = (out.double() / x.double())
    steps = ratio.transpose(0, 1) if batch_first else ratio  # (T, B, D)
    kept = steps != 0
    assert torch.equal(kept, kept[:1].expand_as(kept))  # one mask for every time step
    assert torch.allclose(steps[kept], torch.full_like(steps[kept], 1 / 0.6), rtol=1e-2)
    assert kept.any() and (~kept).any()


def test_locked_dropout_test_time_p_zero_p_one_and_gradient():
    x = torch.randn(4, 3, 2, generator=gen(0), requires_grad=True)
    assert torch.equal(locked_dropout(x, 0.3, training=False), x)
    assert locked_dropout(x, 0.3, training=False).data_ptr() != x.data_ptr()
    assert torch.equal(locked_dropout(x, 0.0), x)
    zero = locked_dropout(x, 1.0)
    assert torch.equal(zero, torch.zeros_like(x))
    zero.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    a = locked_dropout(x, 0.5, generator=gen(3))
    assert torch.equal(a, locked_dropout(x, 0.5, generator=gen(3)))
    x.grad = None
    a.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(x.grad, x.grad[:1].expand_as(x.grad))


def test_locked_dropout_keeps_a_non_contiguous_layout():
    x = torch.randn(3, 6, 4, generator=gen(0)).permute(1, 0, 2)  # (T=6, B=3, D=4), not contiguous
    out = locked_dropout(x, 0.3, generator=gen(1))
    assert out.stride() == x.stride()
    assert torch.allclose(out, x * (out / x).nan_to_num())


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((torch.ones(2, 3, 4), 1.5), {}, ValueError, r"^p must be in \[0, 1\]"),
    ((torch.ones(2, 3, 4), float("nan")), {}, ValueError, r"^p must be a number in \[0, 1\], got nan"),
    ((torch.ones(2, 3, 4), "0.5"), {}, TypeError, r"^p must be a number"),
    ((torch.ones(2, 3, 4), None), {}, TypeError, r"^p must be a number"),
    ((torch.ones(2, 3, 4), np.bool_(True)), {}, TypeError, r"^p must be a number"),
    ((torch.ones(2, 3, 4, dtype=torch.int64), 0.2), {}, TypeError, r"^x must have a floating dtype"),
    ((torch.ones(2, 3, 4, dtype=torch.bool), 0.2), {}, TypeError, r"^x must have a floating dtype"),
    ((np.ones((2, 3, 4)), 0.2), {}, TypeError, r"^x must be a torch.Tensor"),
    ((torch.ones(3, 4), 0.2), {}, ValueError, r"^x must be 3-dimensional"),
    ((torch.ones(0, 3, 4), 0.2), {}, ValueError, r"^x must not be empty"),
    ((torch.ones(2, 3, 4), 0.2), {"training": 1}, TypeError, r"^training must be a bool"),
    ((torch.ones(2, 3, 4), 0.2), {"batch_first": "yes"}, TypeError, r"^batch_first must be a bool"),
    ((torch.ones(2, 3, 4), 0.2), {"generator": 0}, TypeError, r"^generator must be a torch.Generator"),
])
def test_locked_dropout_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        locked_dropout(*args, **kwargs)


def test_numpy_scalar_p_is_a_number():
    x = torch.ones(3, 4, 5)
    assert torch.equal(locked_dropout(x, np.float64(0.25), generator=gen(0)), locked_dropout(x, 0.25, generator=gen(0)))
    assert torch.equal(drop_connect(x[0], np.float32(0.5), generator=gen(0)), drop_connect(x[0], 0.5, generator=gen(0)))


# --------------------------------------------------------------------------------------------
# signal survival: per-step masks against one mask per sequence (Monte Carlo)


@pytest.mark.parametrize("p, steps", [(0.2, 5), (0.35, 3), (0.1, 10)])
def test_signal_survival_by_monte_carlo(p, steps):
    n = 100_000
    ones = torch.ones(steps, n, 1, dtype=torch.float64)
    per_step = db.inverted_dropout(ones, p, generator=gen(1)).prod(0).flatten()  # a fresh mask at every step
    locked = locked_dropout(ones, p, generator=gen(2)).prod(0).flatten()  # one mask, applied at every step
    exact_step, exact_locked = at(SURV.per_step_survival, p=p, k=steps), at(SURV.locked_survival, p=p)
    check_agrees_and_rejects(estimate_mean((per_step != 0).double()), exact_step,
                             wrong={"one mask per sequence": exact_locked, "1 - k p": 1 - steps * p})
    check_agrees_and_rejects(estimate_mean((locked != 0).double()), exact_locked,
                             wrong={"per-step masks": exact_step})
    # the gain of a carried value: unbiased with per-step masks, (1-p)^(1-k) with a locked mask
    check_agrees_and_rejects(estimate_mean(locked), at(SURV.locked_gain_mean, p=p, k=steps),
                             wrong={"unbiased": 1.0})
    est = estimate_mean(per_step)
    assert db.agrees(est, at(SURV.per_step_gain_mean, p=p, k=steps))


@pytest.mark.parametrize("mode, survival", [("per_step", "per_step_survival"), ("locked", "locked_survival")])
def test_recurrent_dropout_carries_a_value_as_derived(mode, survival):
    # an RNN cell h_t = relu(h_{t-1}) that only carries its state: the dropout masks decide what survives
    p, steps, n = 0.3, 4, 40_000
    cell = nn.RNNCell(1, 1, bias=False, nonlinearity="relu").double()
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.fill_(1.0)
    rnn = RecurrentDropout(cell, p, mode=mode, generator=gen(4))
    out, h = rnn(torch.zeros(steps, n, 1, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64))
    alive = (h != 0).double().flatten()
    other = "locked_survival" if survival == "per_step_survival" else "per_step_survival"
    check_agrees_and_rejects(estimate_mean(alive), at(getattr(SURV, survival), p=p, k=steps),
                             wrong={other: at(getattr(SURV, other), p=p, k=steps)})
    if mode == "locked":  # each sequence is dropped at every step or at none
        survivors = h[h != 0]
        assert torch.allclose(survivors, torch.full_like(survivors, (1 / 0.7) ** steps))
    rnn.eval()
    _, h_eval = rnn(torch.zeros(steps, n, 1, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64))
    assert torch.equal(h_eval, torch.ones_like(h_eval))


def test_locked_dropout_masks_are_independent_over_batch_and_features():
    p, n = 0.3, 50_000
    out = locked_dropout(torch.ones(3, n, 2, dtype=torch.float64), p, generator=gen(5))
    kept = (out[0] != 0).double()  # (n, 2)
    q = 1 - p
    product = (kept[:, 0] - q) * (kept[:, 1] - q)  # covariance of two features' masks: 0 if independent
    check_agrees_and_rejects(estimate_mean(product), 0.0, wrong={"one mask for all features": p * q})
    rows = (kept[:-1, 0] - q) * (kept[1:, 0] - q)  # neighbouring sequences of the batch
    check_agrees_and_rejects(estimate_mean(rows), 0.0, wrong={"one mask for the batch": p * q})


# --------------------------------------------------------------------------------------------
# DropConnect against input dropout: mean, variance and the covariance of two output units


def test_dropconnect_and_input_dropout_moments_by_monte_carlo():
    p, n_in, draws = 0.4, 3, 200_000
    W = torch.tensor([[1.0, -0.5, 2.0], [0.8, 1.5, 1.2]], dtype=torch.float64)
    x = torch.tensor([1.5, -1.0, 0.7], dtype=torch.float64)
    d = dropconnect_moments(n_in)
    subs = {drop_rate: sp.nsimplify(p)}
    for sym_row, row in zip(d.weights, W):
        subs.update({s: sp.nsimplify(float(v)) for s, v in zip(sym_row, row)})
    subs.update({s: sp.nsimplify(float(v)) for s, v in zip(d.inputs, x)})
    exact = {name: float(getattr(d, name).subs(subs)) for name in (
        "input_dropout_mean", "input_dropout_variance", "input_dropout_covariance",
        "dropconnect_mean", "dropconnect_variance", "dropconnect_covariance")}
    mean = (W @ x).tolist()
    y_dc = drop_connect(W.expand(draws, 2, n_in), p, generator=gen(6)) @ x  # one weight mask per draw
    y_in = db.inverted_dropout(x.expand(draws, n_in), p, generator=gen(7)) @ W.T
    for y, name, other in [(y_dc, "dropconnect", "input_dropout"), (y_in, "input_dropout", "dropconnect")]:
        check_agrees_and_rejects(estimate_mean(y[:, 0]), exact[f"{name}_mean"], wrong={"unscaled": (1 - p) * mean[0]})
        check_agrees_and_rejects(estimate_variance(y[:, 0]), exact[f"{name}_variance"],
                                 wrong={"p(1-p) sum w^2 x^2": (1 - p) ** 2 * exact[f"{name}_variance"]})
        cov = estimate_mean((y[:, 0] - mean[0]) * (y[:, 1] - mean[1]))  # the means are known exactly
        check_agrees_and_rejects(cov, exact[f"{name}_covariance"], wrong={other: exact[f"{other}_covariance"]})


def test_drop_connect_contract():
    w = torch.randn(4, 5, generator=gen(0), dtype=torch.float64, requires_grad=True)
    out = drop_connect(w, 0.25, generator=gen(1))
    kept = out != 0
    assert torch.allclose(out[kept], w[kept] / 0.75)
    assert torch.equal(drop_connect(w, 0.25, training=False), w)
    zero = drop_connect(w, 1.0)
    zero.sum().backward()
    assert torch.equal(zero, torch.zeros_like(w)) and torch.equal(w.grad, torch.zeros_like(w))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((torch.ones(2, 2), 1.1), {}, ValueError, r"^p must be in \[0, 1\]"),
    ((torch.ones(2, 2), float("nan")), {}, ValueError, r"^p must be a number in \[0, 1\], got nan"),
    ((torch.ones(2, 2), "x"), {}, TypeError, r"^p must be a number"),
    ((torch.ones(2, 2, dtype=torch.int32), 0.1), {}, TypeError, r"^weight must have a floating dtype"),
    ((torch.ones(2, 2, dtype=torch.bool), 0.1), {}, TypeError, r"^weight must have a floating dtype"),
    ((None, 0.1), {}, TypeError, r"^weight must be a torch.Tensor"),
    ((torch.tensor(1.0), 0.1), {}, ValueError, r"^weight must have at least one dimension"),
    ((torch.ones(0, 3), 0.1), {}, ValueError, r"^weight must not be empty"),
    ((torch.ones(2, 2), 0.1), {"training": None}, TypeError, r"^training must be a bool"),
])
def test_drop_connect_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        drop_connect(*args, **kwargs)


def test_drop_connect_linear():
    layer = DropConnectLinear(5, 3, p=0.3, generator=gen(2)).double()
    x = torch.randn(8, 5, generator=gen(0), dtype=torch.float64)
    out = layer(x)
    expected = nn.functional.linear(x, drop_connect(layer.weight, 0.3, generator=gen(2)), layer.bias)
    assert torch.allclose(out, expected)  # one weight mask for the whole batch
    assert not torch.allclose(layer(x), out)  # a new mask on the next pass
    layer.eval()
    assert torch.allclose(layer(x), nn.functional.linear(x, layer.weight, layer.bias))
    assert "p=0.3" in repr(layer)
    with pytest.raises(ValueError, match=r"^p must be in"):
        DropConnectLinear(2, 2, p=2.0)
    with pytest.raises(ValueError, match=r"^in_features must be a positive int"):
        DropConnectLinear(0, 2)
    with pytest.raises(TypeError, match=r"^bias must be a bool"):
        DropConnectLinear(2, 2, bias="no")
    with pytest.raises(TypeError, match=r"^x must have a floating dtype"):
        DropConnectLinear(2, 2)(torch.ones(1, 2, dtype=torch.int64))


# --------------------------------------------------------------------------------------------
# WeightDrop


@pytest.mark.parametrize("rnn_type", [nn.LSTM, nn.GRU, nn.RNN])
def test_weight_drop_one_mask_per_pass_and_parameters_intact(rnn_type):
    torch.manual_seed(0)
    rnn = rnn_type(3, 4, num_layers=2).double()
    state = {k: v.clone() for k, v in rnn.state_dict().items()}
    wd = WeightDrop(rnn, 0.5, generator=gen(3))
    assert wd.weights == ("weight_hh_l0", "weight_hh_l1")
    x = torch.randn(6, 2, 3, generator=gen(0), dtype=torch.float64)
    out, _ = wd(x)
    # the same output as the plain module run with one dropped copy of each weight_hh
    g = gen(3)
    dropped = {n: drop_connect(getattr(rnn, n), 0.5, generator=g) for n in wd.weights}
    ref = rnn_type(3, 4, num_layers=2).double()
    ref.load_state_dict({**state, **dropped})
    assert torch.allclose(out, ref(x)[0])
    assert not torch.allclose(wd(x)[0], out)  # a new mask on the next pass
    assert all(torch.equal(v, state[k]) for k, v in rnn.state_dict().items())  # parameters untouched
    assert [n for n, _ in wd.named_parameters()] == [f"module.{n}" for n, _ in rnn.named_parameters()]
    assert all(isinstance(getattr(rnn, n), nn.Parameter) for n in wd.weights)
    out.sum().backward()
    grad = rnn.weight_hh_l0.grad
    assert grad is not None and bool((grad[dropped["weight_hh_l0"] == 0] == 0).all())  # masked weights get no gradient
    wd.eval()
    assert torch.equal(wd(x)[0], rnn(x)[0])


def test_weight_drop_under_mc_dropout_and_p_one():
    torch.manual_seed(1)
    model = nn.Sequential(WeightDrop(nn.LSTM(2, 3), 0.4)).eval()
    x = torch.randn(5, 1, 2)
    with pytest.raises(ValueError, match="model has no dropout module"):
        with db.mc_dropout(model):
            pass
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with db.mc_dropout(model, dropout_types=(WeightDrop,)):
        a, b = model[0](x)[0], model[0](x)[0]
        assert model[0].training and not model[0].module.training
    assert not torch.allclose(a, b)
    assert not model[0].training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    lstm = nn.LSTM(2, 3)
    zero = WeightDrop(lstm, 1.0, weights=["weight_hh_l0"])
    ref = nn.LSTM(2, 3)
    ref.load_state_dict({**lstm.state_dict(), "weight_hh_l0": torch.zeros(12, 3)})
    assert torch.allclose(zero(x)[0], ref(x)[0])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(module=nn.LSTMCell(2, 3), p=0.1), TypeError, r"^module must be a torch.nn.LSTM, GRU or RNN"),
    (dict(module=nn.Linear(2, 3), p=0.1), TypeError, r"^module must be a torch.nn.LSTM"),
    (dict(module=nn.LSTM(2, 3), p=1.5), ValueError, r"^p must be in \[0, 1\]"),
    (dict(module=nn.LSTM(2, 3), p=float("nan")), ValueError, r"^p must be a number in \[0, 1\], got nan"),
    (dict(module=nn.LSTM(2, 3), p=0.1, weights="weight_hh_l0"), TypeError, r"^weights must be a sequence"),
    (dict(module=nn.LSTM(2, 3), p=0.1, weights=["weight_hh_l1"]), ValueError, r"^weights must be parameters"),
    (dict(module=nn.LSTM(2, 3), p=0.1, weights=[]), ValueError, r"^weights must name at least one"),
    (dict(module=nn.LSTM(2, 3), p=0.1, generator=1), TypeError, r"^generator must be a torch.Generator"),
])
def test_weight_drop_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        WeightDrop(**kwargs)


# --------------------------------------------------------------------------------------------
# zoneout


def test_zoneout_by_monte_carlo():
    z = zoneout_moments()
    n = 100_000
    for p, prev, new in [(0.15, 1.0, -2.0), (0.6, 0.5, 3.0)]:
        out = zoneout(torch.full((n,), prev, dtype=torch.float64), torch.full((n,), new, dtype=torch.float64), p,
                      generator=gen(8))
        assert set(out.unique().tolist()) == {prev, new}
        subs = {drop_rate: sp.nsimplify(p), z.h_prev: sp.nsimplify(prev), z.h_new: sp.nsimplify(new)}
        mean, var = float(z.mean.subs(subs)), float(z.variance.subs(subs))
        check_agrees_and_rejects(estimate_mean(out), mean, wrong={"p and 1 - p swapped": (1 - p) * prev + p * new})
        check_agrees_and_rejects(estimate_variance(out), var, wrong={"no (h_prev - h_new)^2": p * (1 - p)})
        test = zoneout(torch.tensor([prev]), torch.tensor([new]), p, training=False)
        assert test.item() == pytest.approx(mean, rel=1e-6)


def test_zoneout_contract():
    a = torch.randn(4, 3, generator=gen(0), requires_grad=True)
    b = torch.randn(4, 3, generator=gen(1), requires_grad=True)
    out = zoneout(a, b, 0.5, generator=gen(2))
    out.sum().backward()
    assert torch.equal(a.grad + b.grad, torch.ones(4, 3))  # each entry comes from exactly one of the two
    assert torch.equal(zoneout(a, b, 0.0), b) and torch.equal(zoneout(a, b, 1.0), a)
    assert out.dtype == a.dtype


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((torch.ones(2), torch.ones(3), 0.1), {}, ValueError, r"^h_prev and h_new must have the same shape"),
    ((torch.ones(2), torch.ones(2, dtype=torch.float64), 0.1), {}, TypeError, r"^h_prev and h_new must have the same dtype"),
    ((torch.ones(2, dtype=torch.int64), torch.ones(2), 0.1), {}, TypeError, r"^h_prev must have a floating dtype"),
    ((torch.ones(2), [1.0, 2.0], 0.1), {}, TypeError, r"^h_new must be a torch.Tensor"),
    ((torch.ones(2), torch.ones(2), -0.1), {}, ValueError, r"^p must be in \[0, 1\]"),
    ((torch.ones(2), torch.ones(2), float("nan")), {}, ValueError, r"got nan"),
    ((torch.ones(2), torch.ones(2), 0.1), {"training": "False"}, TypeError, r"^training must be a bool"),
])
def test_zoneout_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        zoneout(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# RecurrentDropout, RecurrentClassifier, delayed_recall


def test_recurrent_dropout_eval_is_the_plain_lstm():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True).double()
    cell = nn.LSTMCell(3, 5).double()
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = torch.randn(4, 6, 3, generator=gen(0), dtype=torch.float64)
    for mode in ("locked", "per_step", "zoneout"):
        rnn = RecurrentDropout(cell, 0.3, mode=mode, batch_first=True).eval()
        out, (h, c) = rnn(x)
        if mode == "zoneout":
            continue  # the test-time zoneout rule is not the plain cell
        ref, (h_ref, c_ref) = lstm(x)
        assert torch.allclose(out, ref) and torch.allclose(h, h_ref[0]) and torch.allclose(c, c_ref[0])
    p0 = RecurrentDropout(cell, 0.0, mode="zoneout", batch_first=True)
    assert torch.allclose(p0(x)[0], lstm(x)[0])


def test_recurrent_dropout_locked_mask_drops_h_only_by_default():
    cell = nn.LSTMCell(2, 3).double()
    rnn = RecurrentDropout(cell, 0.5, mode="locked", generator=gen(1))
    seen = []
    cell.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    x = torch.randn(4, 2, 2, generator=gen(0), dtype=torch.float64)
    state = (torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64))
    rnn(x, state)
    h0, c0 = seen[0]
    assert set(h0.unique().tolist()) <= {0.0, 2.0} and torch.equal(c0, state[1])
    dropped = h0 == 0
    assert dropped.any() and (~dropped).any()
    assert all(bool((h[dropped] == 0).all()) for h, _ in seen[1:])  # the same units dropped at every step
    assert "mode='locked'" in repr(rnn)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(cell=nn.GRUCell(2, 3), p=0.1), TypeError, r"^cell must be a torch.nn.RNNCell or LSTMCell, got GRUCell"),
    (dict(cell=nn.LSTM(2, 3), p=0.1), TypeError, r"^cell must be a torch.nn.RNNCell or LSTMCell"),
    (dict(cell=nn.LSTMCell(2, 3), p=0.1, mode="variational"), ValueError, r"^mode must be one of"),
    (dict(cell=nn.LSTMCell(2, 3), p=2), ValueError, r"^p must be in \[0, 1\]"),
    (dict(cell=nn.LSTMCell(2, 3), p=0.1, batch_first=0), TypeError, r"^batch_first must be a bool"),
    (dict(cell=nn.LSTMCell(2, 3), p=0.1, drop_cell_state=None), TypeError, r"^drop_cell_state must be a bool"),
])
def test_recurrent_dropout_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RecurrentDropout(**kwargs)


def test_recurrent_dropout_bad_input():
    rnn = RecurrentDropout(nn.LSTMCell(2, 3), 0.2)
    with pytest.raises(ValueError, match=r"^x must have input_size = 2"):
        rnn(torch.ones(4, 1, 3))
    with pytest.raises(ValueError, match=r"^x must be 3-dimensional"):
        rnn(torch.ones(4, 2))
    with pytest.raises(ValueError, match=r"^x must not be empty"):
        rnn(torch.ones(0, 1, 2))
    with pytest.raises(TypeError, match=r"^x must have a floating dtype"):
        rnn(torch.ones(4, 1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^state of an LSTMCell must be a pair"):
        rnn(torch.ones(4, 1, 2), (torch.zeros(1, 3),))
    with pytest.raises(ValueError, match=r"^state h must have shape"):
        rnn(torch.ones(4, 1, 2), (torch.zeros(2, 3), torch.zeros(2, 3)))


def test_recurrent_classifier_variants_share_the_initial_network():
    nets = {}
    for variant in ("none", "per_step", "locked", "zoneout", "weight_drop"):
        torch.manual_seed(3)
        nets[variant] = RecurrentClassifier(8, 6, 4, variant=variant, p=0.25)
    reference = [v for v in nets["none"].state_dict().values()]
    for variant, net in nets.items():
        values = list(net.state_dict().values())
        assert len(values) == len(reference)
        assert all(torch.equal(a, b) for a, b in zip(values, reference)), variant
    tokens = torch.randint(0, 8, (5, 7), generator=gen(0))
    outs = {v: net.eval()(tokens) for v, net in nets.items()}
    for v in ("per_step", "locked", "weight_drop"):  # in evaluation mode these are the plain LSTM
        assert torch.allclose(outs[v], outs["none"], atol=1e-6), v
    assert nets["per_step"].core.drop_cell_state and not nets["locked"].core.drop_cell_state
    with pytest.raises(ValueError, match=r"^variant must be one of"):
        RecurrentClassifier(8, 6, 4, variant="dropout")
    with pytest.raises(TypeError, match=r"^tokens must be an int64 tensor"):
        nets["none"](tokens.float())
    with pytest.raises(ValueError, match=r"^hidden_size must be a positive int"):
        RecurrentClassifier(8, 0, 4)


def test_delayed_recall():
    x, y, d = delayed_recall(500, length=9, n_symbols=3, n_noise=5, seed=1)
    assert x.shape == (500, 9) and x.dtype == torch.int64
    assert torch.equal(x[torch.arange(500), 8 - d], y)
    is_symbol = x < 3
    assert torch.equal(is_symbol.sum(1), torch.ones(500, dtype=torch.int64))  # exactly one symbol
    assert set(d.tolist()) == set(range(9)) and set(y.tolist()) == {0, 1, 2}
    assert bool((x[~is_symbol] < 8).all())
    x2, _, d2 = delayed_recall(4, length=5, delay=4, seed=0)
    assert d2.tolist() == [4] * 4 and bool((x2[:, 0] < 4).all())
    assert torch.equal(delayed_recall(20, seed=3)[0], delayed_recall(20, seed=3)[0])
    for kwargs, match in [(dict(n=0), "^n must be a positive int"), (dict(n=3, length=1), "^length must be an int >= 2"),
                          (dict(n=3, n_symbols=1), "^n_symbols must be an int >= 2"),
                          (dict(n=3, delay=20), "^delay must be None or an int from 0 to length - 1")]:
        with pytest.raises(ValueError, match=match):
            delayed_recall(**kwargs)
    with pytest.raises(TypeError, match="^delay must be None or an int"):  # a float is not an int
        delayed_recall(3, delay=1.0)


@pytest.mark.parametrize("make, name", [
    (lambda: DropConnectLinear("3", 2), "in_features"),
    (lambda: DropConnectLinear(3, 2.0), "out_features"),
    (lambda: RecurrentClassifier(8, True, 4), "hidden_size"),
    (lambda: RecurrentClassifier(8, 6, 4, embed=None), "embed"),
    (lambda: delayed_recall(3.0), "n"),
    (lambda: delayed_recall(3, n_symbols="4"), "n_symbols"),
    (lambda: delayed_recall(3, n_noise=np.float64(2)), "n_noise"),
])
def test_sizes_must_be_ints(make, name):
    with pytest.raises(TypeError, match=rf"^{name} must be a positive int"):
        make()


# --------------------------------------------------------------------------------------------
# review of chapter 11: bad input and edge cases found by an outside reader


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_zoneout_p_zero_and_one_keep_both_inputs_in_the_graph(p):
    # the unused input gets a zero gradient (as with p = 1 in dropout), not a cut graph
    a = torch.randn(4, 3, generator=gen(0), requires_grad=True)
    b = torch.randn(4, 3, generator=gen(1), requires_grad=True)
    out = zoneout(a, b, p)
    assert torch.equal(out, a if p == 1.0 else b)
    ga, gb = torch.autograd.grad(out.sum(), [a, b])
    assert torch.equal(ga, torch.full_like(a, p)) and torch.equal(gb, torch.full_like(b, 1.0 - p))
    g = gen(5)
    zoneout(a, b, p, generator=g)
    assert torch.equal(g.get_state(), gen(5).get_state())  # nothing random is drawn


def test_weight_drop_weights_that_are_not_a_sequence():
    for bad in (3, 1.5, object()):
        with pytest.raises(TypeError, match=r"^weights must be a sequence of parameter names"):
            WeightDrop(nn.LSTM(2, 3), 0.1, weights=bad)


def test_recurrent_dropout_state_of_another_dtype():
    rnn = RecurrentDropout(nn.LSTMCell(2, 3), 0.2)
    state = (torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3))
    with pytest.raises(TypeError, match=r"^state h must have the dtype of x \(torch.float32\), got torch.float64"):
        rnn(torch.ones(4, 1, 2), state)


@pytest.mark.parametrize("variant", ["none", "locked", "weight_drop"])
def test_recurrent_classifier_tokens_out_of_range_or_empty(variant):
    net = RecurrentClassifier(8, 6, 4, variant=variant, p=0.2)
    for bad in (torch.full((2, 3), 8), torch.full((2, 3), -1)):
        with pytest.raises(ValueError, match=r"^tokens must hold ids in \[0, n_tokens\) = \[0, 8\)"):
            net(bad)
    for empty in (torch.ones(0, 3, dtype=torch.int64), torch.ones(2, 0, dtype=torch.int64)):
        with pytest.raises(ValueError, match=r"^tokens must not be empty"):
            net(empty)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(seed=None), TypeError, r"^seed must be an int >= 0"),
    (dict(seed="1"), TypeError, r"^seed must be an int >= 0"),
    (dict(seed=1.5), TypeError, r"^seed must be an int >= 0"),
    (dict(seed=True), TypeError, r"^seed must be an int >= 0"),
    (dict(seed=-1), ValueError, r"^seed must be an int >= 0"),
    (dict(delay="2"), TypeError, r"^delay must be None or an int"),
    (dict(delay=True), TypeError, r"^delay must be None or an int"),
    (dict(delay=-1), ValueError, r"^delay must be None or an int from 0 to length - 1 = 19"),
])
def test_delayed_recall_bad_seed_and_delay(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        delayed_recall(3, **kwargs)


def test_delayed_recall_accepts_numpy_ints():
    a = delayed_recall(np.int64(5), length=np.int32(6), delay=np.int64(2), seed=np.int64(4))
    b = delayed_recall(5, length=6, delay=2, seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_locked_dropout_takes_a_numpy_bool_as_training_like_the_rest_of_the_library():
    x = torch.ones(3, 2, 4)
    assert torch.equal(db.locked_dropout(x, 0.5, training=np.bool_(False)), x)
