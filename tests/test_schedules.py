"""Chapter 14: DropoutSchedule sets the rate of every dropout module and touches nothing else."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import dropoutbook as db


def model() -> nn.Module:
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(4, 4), db.InvertedDropout(0.3), nn.BatchNorm1d(4))
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5, inplace=True), inner, db.DropPath(0.2),
                         db.GaussianDropout(0.1), nn.Dropout2d(0.4), nn.Linear(4, 2))


@pytest.mark.parametrize("kind, switch, expected", [
    ("constant", None, [0.2] * 7),
    ("early", 3, [0.2, 0.2, 0.2, 0, 0, 0, 0]),
    ("late", 3, [0, 0, 0, 0.2, 0.2, 0.2, 0.2]),
    ("linear", 4, [0.2, 0.15, 0.1, 0.05, 0, 0, 0]),
    ("linear", None, [0.2 * (1 - t / 6) for t in range(7)]),
    ("early", 0, [0.0] * 7),
    ("late", 6, [0] * 6 + [0.2]),
])
def test_rate_at_every_step(kind, switch, expected):
    s = db.DropoutSchedule(model(), 0.2, kind=kind, total_steps=6, switch_step=switch)
    assert [s.rate_at(t) for t in range(7)] == pytest.approx(expected, abs=1e-15)


def test_step_sets_every_dropout_module_also_nested_and_nothing_else():
    m = model()
    m[2].train(False)  # mixed modes must survive
    before = copy.deepcopy(m)
    modes = [x.training for x in m.modules()]
    s = db.DropoutSchedule(m, 0.25, kind="early", total_steps=5, switch_step=2)
    found = [m[1], m[2][1], m[3], m[4], m[5]]
    assert list(s.modules) == found
    assert all(x.p == 0.25 for x in found)
    rates = [s.step() for _ in range(5)]
    assert rates == [0.25, 0.0, 0.0, 0.0, 0.0]
    assert all(x.p == 0.0 for x in found)
    assert [x.training for x in m.modules()] == modes
    for (n1, t1), (n2, t2) in zip(m.state_dict().items(), before.state_dict().items()):
        assert n1 == n2 and torch.equal(t1, t2)
    for x, y in zip(m.modules(), before.modules()):  # every other attribute, e.g. inplace, untouched
        a = {k: v for k, v in vars(x).items() if not k.startswith("_") and k != "p"}
        b = {k: v for k, v in vars(y).items() if not k.startswith("_") and k != "p"}
        assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if not isinstance(a[k], torch.Tensor))
    s.restore()
    assert [x.p for x in found] == [0.5, 0.3, 0.2, 0.1, 0.4]


def test_step_past_the_end_raises_and_step_zero_is_applied_on_construction():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0))
    s = db.DropoutSchedule(m, 0.3, kind="late", total_steps=2, switch_step=1)
    assert m[1].p == 0.0 and s.rate == 0.0
    assert s.step() == 0.3 and m[1].p == 0.3
    s.step()
    with pytest.raises(ValueError, match="total_steps"):
        s.step()
    assert s.step_count == 2


def test_the_schedule_changes_the_masks_drawn():
    m = nn.Sequential(nn.Dropout(0.0))
    s = db.DropoutSchedule(m, 0.5, kind="early", total_steps=2, switch_step=1)
    x = torch.ones(20000)
    torch.manual_seed(1)
    assert 0.45 < float((m(x) == 0).double().mean()) < 0.55
    s.step()
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("bad", [
    nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1), db.StochasticDepth(nn.Linear(2, 2), 0.2)),
    nn.Sequential(nn.Dropout(0.1), nn.MultiheadAttention(4, 2, dropout=0.1)),
    nn.Sequential(nn.Dropout(0.1), nn.LSTM(3, 3, num_layers=2, dropout=0.2)),
    nn.Sequential(nn.Dropout(0.1), db.LayerDrop([nn.Linear(2, 2)], 0.2)),
])
def test_a_rate_it_cannot_set_is_an_error_not_skipped(bad):
    with pytest.raises(TypeError, match="cannot set its rate"):
        db.DropoutSchedule(bad, 0.1, kind="constant", total_steps=3)
    assert [m.p for m in db.dropout_modules(bad)] == [0.1]  # nothing was set before the error


def test_ignore_types_and_dropout_types():
    m = nn.Sequential(nn.Dropout(0.1), db.StochasticDepth(nn.Linear(2, 2), 0.2))
    s = db.DropoutSchedule(m, 0.3, kind="constant", total_steps=3, ignore_types=(db.StochasticDepth,))
    assert s.modules == (m[0],) and m[1].p == 0.2
    s = db.DropoutSchedule(m, 0.3, kind="constant", total_steps=3, dropout_types=(db.StochasticDepth,))
    assert s.modules == (m[0], m[1]) and m[1].p == 0.3


def test_a_learned_rate_is_refused_and_ignore_types_leaves_it_alone():
    concrete = db.ConcreteDropout(nn.Linear(3, 2), p_init=0.2)
    m = nn.Sequential(nn.Dropout(0.1), nn.Sequential(concrete))
    logit = concrete.p_logit.detach().clone()
    with pytest.raises(TypeError, match=r"ConcreteDropout \(at '1\.0'\), whose rate is learned.*"
                                        r"ignore_types=\(db\.ConcreteDropout,\) to leave it alone"):
        db.DropoutSchedule(m, 0.3, kind="constant", total_steps=3)
    assert m[0].p == 0.1 and torch.equal(concrete.p_logit.detach(), logit)  # nothing was set before the error
    with pytest.raises(TypeError, match="whose rate is learned"):  # listing it among dropout_types does not help
        db.DropoutSchedule(m, 0.3, kind="constant", total_steps=3, dropout_types=(db.ConcreteDropout,))
    s = db.DropoutSchedule(m, 0.3, kind="constant", total_steps=3, ignore_types=(db.ConcreteDropout,))
    assert s.modules == (m[0],) and m[0].p == 0.3 and torch.equal(concrete.p_logit.detach(), logit)


def test_a_module_type_without_a_rate_p_is_refused():
    class Noise(nn.Module):
        rate = 0.1

    with pytest.raises(TypeError, match="no numeric rate attribute 'p'"):
        db.DropoutSchedule(nn.Sequential(Noise()), 0.1, kind="constant", total_steps=2, dropout_types=(Noise,))


def test_model_without_dropout_and_gaussian_dropout_at_one_are_refused():
    with pytest.raises(ValueError, match="no dropout module"):
        db.DropoutSchedule(nn.Linear(2, 2), 0.1, kind="constant", total_steps=2)
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\)"):
        db.DropoutSchedule(nn.Sequential(db.GaussianDropout(0.1)), 1.0, kind="constant", total_steps=2)
    with pytest.raises(ValueError, match="switch_step"):
        db.DropoutSchedule(nn.Sequential(nn.Dropout()), 0.1, kind="early", total_steps=2)
    with pytest.raises(ValueError, match="switch_step"):
        db.DropoutSchedule(nn.Sequential(nn.Dropout()), 0.1, kind="constant", total_steps=2, switch_step=1)


@pytest.mark.parametrize("bad", [
    nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1),  # dropout inside a torch transformer layer
    nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),  # at 0 its attention dropout would silently stay 0
    nn.Sequential(nn.Dropout(0.1), nn.MultiheadAttention(4, 2, dropout=0.0)),
    nn.Sequential(nn.Dropout(0.1), nn.GRU(3, 3, num_layers=2)),
])
def test_attention_and_stacked_rnn_are_refused_whatever_their_rate(bad):
    rates = [m.p for m in db.dropout_modules(bad)]
    with pytest.raises(TypeError, match="cannot set its rate: pass its class in ignore_types"):
        db.DropoutSchedule(bad, 0.3, kind="late", total_steps=4, switch_step=2)
    assert [m.p for m in db.dropout_modules(bad)] == rates  # nothing was set before the error


def test_transformer_layer_scheduled_when_attention_is_ignored_explicitly():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    s = db.DropoutSchedule(layer, 0.3, kind="constant", total_steps=2, ignore_types=(nn.MultiheadAttention,))
    assert len(s.modules) == 3 and all(m.p == 0.3 for m in s.modules) and layer.self_attn.dropout == 0.1
    single = nn.Sequential(nn.Dropout(0.1), nn.LSTM(3, 3))  # one layer: no dropout of its own
    assert db.DropoutSchedule(single, 0.2, kind="constant", total_steps=2).modules == (single[0],)


def test_step_past_total_steps_is_an_error_and_changes_nothing():
    m = nn.Sequential(nn.Dropout(0.5))
    s = db.DropoutSchedule(m, 0.2, kind="late", total_steps=2, switch_step=1)
    assert (s.step(), s.step()) == (0.2, 0.2)
    with pytest.raises(ValueError, match="more than total_steps = 2"):
        s.step()
    assert s.step_count == 2 and m[0].p == 0.2
    s.restore()
    assert m[0].p == 0.5
