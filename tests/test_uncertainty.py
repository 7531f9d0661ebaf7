"""Chapter 5, "Monte Carlo dropout": mc_dropout, mc_predict, entropy scores and referral curves.

The central promise (CONTRIBUTING.md, 'Library rules'): mc_dropout and mc_predict leave every parameter, buffer and
module mode of a model exactly as they found it, also when an exception is raised inside.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook.montecarlo import estimate_mean
from helpers import Z


def bn_model(seed: int = 0) -> nn.Sequential:
    """An MLP with BatchNorm and three kinds of dropout, with non-trivial running statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), db.InvertedDropout(0.2),
        nn.Linear(16, 3),
    ).double()
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, 4, dtype=torch.float64) * 2 + 1)  # fills the running statistics
    return model


def snapshot(model: nn.Module):
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    return state, modes


def assert_unchanged(model: nn.Module, before) -> None:
    state, modes = before
    after_state, after_modes = snapshot(model)
    assert after_modes == modes
    assert state.keys() == after_state.keys()
    for k in state:
        assert torch.equal(state[k], after_state[k]), f"{k} changed"


MODE_SETUPS = {
    "eval": lambda m: m.eval(),
    "train": lambda m: m.train(),
    "mixed": lambda m: (m.train(), m[1].eval(), m[7].eval()),  # one BN and one dropout in eval
}


# --------------------------------------------------------------------------------------------
# mc_dropout


@pytest.mark.parametrize("setup", MODE_SETUPS)
def test_mc_dropout_samples_dropout_and_evaluates_everything_else(setup):
    model = bn_model()
    MODE_SETUPS[setup](model)
    with db.mc_dropout(model) as inside:
        assert inside is model
        for m in model.modules():
            is_dropout = isinstance(m, (nn.Dropout, db.InvertedDropout))
            assert m.training == is_dropout, m


@pytest.mark.parametrize("setup", MODE_SETUPS)
def test_mc_dropout_restores_modes_and_changes_no_parameter_or_buffer(setup):
    model = bn_model()
    MODE_SETUPS[setup](model)
    before = snapshot(model)
    x = torch.randn(8, 4, dtype=torch.float64)
    with db.mc_dropout(model):
        first, second = model(x), model(x)
    assert not torch.equal(first, second)  # dropout really samples
    assert_unchanged(model, before)


@pytest.mark.parametrize("setup", MODE_SETUPS)
def test_mc_dropout_restores_everything_after_an_exception(setup):
    model = bn_model()
    MODE_SETUPS[setup](model)
    before = snapshot(model)
    with pytest.raises(RuntimeError):
        with db.mc_dropout(model):
            model(torch.randn(8, 4, dtype=torch.float64))
            model(torch.randn(8, 5, dtype=torch.float64))  # wrong width: raises inside the block
    assert_unchanged(model, before)
    with pytest.raises(KeyError, match="boom"):
        with db.mc_dropout(model):
            raise KeyError("boom")
    assert_unchanged(model, before)


def test_model_train_would_change_the_running_statistics():
    """The reason mc_dropout exists: model.train() overwrites BatchNorm's running averages."""
    model = bn_model().eval()
    before = snapshot(model)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 4, dtype=torch.float64))
    model.eval()
    state, _ = snapshot(model)
    assert not torch.equal(state["1.running_mean"], before[0]["1.running_mean"])


def test_mc_dropout_nests_and_restores():
    model = bn_model().eval()
    before = snapshot(model)
    with db.mc_dropout(model):
        with db.mc_dropout(model):
            assert model[3].training and not model[1].training
        assert model[3].training
    assert_unchanged(model, before)


def test_mc_dropout_without_dropout_is_a_clear_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    before = snapshot(model)
    with pytest.raises(ValueError, match="no dropout module"):
        with db.mc_dropout(model):
            pass
    assert_unchanged(model, before)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        with db.mc_dropout(lambda x: x):
            pass


@pytest.mark.parametrize("layer", [nn.Dropout(0.2), nn.Dropout1d(0.2), nn.Dropout2d(0.2), nn.Dropout3d(0.2),
                                   nn.AlphaDropout(0.2), nn.FeatureAlphaDropout(0.2),
                                   db.InvertedDropout(0.2), db.StandardDropout(0.2)])
def test_every_dropout_class_is_recognized(layer):
    model = nn.Sequential(nn.Identity(), layer).eval()
    assert db.dropout_modules(model) == [layer]
    with db.mc_dropout(model):
        assert layer.training and not model[0].training
    assert not layer.training


@pytest.mark.parametrize("name", ["DropPath", "GaussianDropout"])
def test_later_chapters_row_wise_dropout_modules_are_recognized(name):
    cls = getattr(db, name, None)
    if cls is None:
        pytest.skip(f"db.{name} does not exist (yet)")
    layer = cls(0.2)
    model = nn.Sequential(nn.Linear(2, 2), layer).eval()
    assert db.dropout_modules(model) == [layer]


def test_custom_dropout_types():
    class MyDrop(nn.Module):
        def forward(self, x):
            return x * (torch.rand_like(x) > 0.5) * 2 if self.training else x

    model = nn.Sequential(nn.Linear(2, 2), MyDrop()).eval()
    with pytest.raises(ValueError):
        with db.mc_dropout(model):
            pass
    with db.mc_dropout(model, dropout_types=(MyDrop,)):
        assert model[1].training and not model[0].training
    assert not model[1].training
    with pytest.raises(TypeError, match="dropout_types"):
        db.dropout_modules(model, dropout_types=(int,))


# --------------------------------------------------------------------------------------------
# mc_predict


@pytest.mark.parametrize("setup", MODE_SETUPS)
def test_mc_predict_leaves_the_model_unchanged(setup):
    model = bn_model()
    MODE_SETUPS[setup](model)
    before = snapshot(model)
    db.mc_predict(model, torch.randn(5, 4, dtype=torch.float64), T=20, chunk_size=7,
                  generator=torch.Generator().manual_seed(0))
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match=r"^x must fit the model: on x of shape \(5, 3\)"):
        db.mc_predict(model, torch.randn(5, 3, dtype=torch.float64), T=20)  # wrong width
    assert_unchanged(model, before)


def test_mc_predict_does_not_modify_its_input_and_keeps_dtype():
    model = bn_model()
    x = torch.randn(5, 4, dtype=torch.float64)
    x0 = x.clone()
    pred = db.mc_predict(model, x, T=10, return_samples=True)
    assert torch.equal(x, x0)
    assert pred.mean.dtype == pred.variance.dtype == pred.samples.dtype == torch.float64
    assert pred.mean.shape == pred.variance.shape == (5, 3)
    assert pred.samples.shape == (10, 5, 3)
    assert torch.allclose(pred.mean, pred.samples.mean(0))
    assert torch.allclose(pred.variance, pred.samples.var(0, correction=1))
    assert not pred.mean.requires_grad


def test_mc_predict_generator_makes_it_reproducible_and_spares_the_global_rng():
    model = bn_model()
    x = torch.randn(3, 4, dtype=torch.float64)
    state = torch.random.get_rng_state()
    a = db.mc_predict(model, x, T=30, generator=torch.Generator().manual_seed(5), return_samples=True)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global RNG is untouched
    b = db.mc_predict(model, x, T=30, generator=torch.Generator().manual_seed(5), return_samples=True)
    c = db.mc_predict(model, x, T=30, generator=torch.Generator().manual_seed(6), return_samples=True)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)
    g = torch.Generator().manual_seed(5)
    first = db.mc_predict(model, x, T=30, generator=g, return_samples=True)
    second = db.mc_predict(model, x, T=30, generator=g, return_samples=True)
    assert not torch.equal(first.samples, second.samples)  # the generator advances


def test_mc_predict_copies_get_independent_masks():
    """All T copies of one input differ (a shared mask would make them equal)."""
    model = nn.Sequential(db.InvertedDropout(0.5), nn.Linear(50, 1, bias=False)).double()
    pred = db.mc_predict(model, torch.randn(2, 50, dtype=torch.float64), T=40,
                         generator=torch.Generator().manual_seed(0), return_samples=True)
    values = pred.samples[:, 0, 0]
    assert len(set(values.tolist())) == 40


def nonlinear_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Dropout(0.4), nn.Linear(32, 32), nn.ReLU(),
                         db.InvertedDropout(0.3), nn.Linear(32, 2)).double().eval()


@pytest.mark.parametrize("chunk_size", [None, 1, 64])
def test_mc_predict_matches_a_plain_loop_in_distribution(chunk_size):
    """Two-sample z-tests of the mean and the second moment of every output: batched vs loop.

    Power: the same statistic puts a pass variance too small by the factor (T-1)/T = 0.5 of
    T = 2 (the plug-in variance of two passes) many standard errors away."""
    model = nonlinear_model()
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], dtype=torch.float64)
    T = 2000
    batched = db.mc_predict(model, x, T=T, chunk_size=chunk_size,
                            generator=torch.Generator().manual_seed(11), return_samples=True).samples
    torch.manual_seed(12)
    with db.mc_dropout(model), torch.no_grad():
        loop = torch.stack([model(x) for _ in range(T)])
    for i in range(2):
        for j in range(2):
            a, b = batched[:, i, j], loop[:, i, j]
            for stat in (lambda s: s, lambda s: (s - b.mean()) ** 2):
                ea, eb = estimate_mean(stat(a)), estimate_mean(stat(b))
                z = (ea.value - eb.value) / math.hypot(ea.stderr, eb.stderr)
                assert abs(z) <= Z, (i, j, z)
            ev = estimate_mean((a - a.mean()) ** 2)
            assert abs(ev.value - 0.5 * b.var().item()) / ev.stderr > Z


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(T=1), ValueError, "T must be an int >= 2"),
    (dict(T=2.5), TypeError, "T must be an int >= 2, got float 2.5"),
    (dict(T=True), TypeError, "T must be an int >= 2, got bool True"),
    (dict(T=5, chunk_size=0), ValueError, "chunk_size"),
    (dict(T=5, generator=3), TypeError, "generator"),
    (dict(T=5, return_samples=1), TypeError, "return_samples"),
])
def test_mc_predict_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        db.mc_predict(bn_model(), torch.randn(2, 4, dtype=torch.float64), **kwargs)


def test_mc_predict_rejects_bad_inputs_and_models():
    model = bn_model()
    with pytest.raises(TypeError, match="floating"):
        db.mc_predict(model, torch.ones(2, 4, dtype=torch.int64), T=3)
    with pytest.raises(ValueError, match="batch"):
        db.mc_predict(model, torch.ones(0, 4, dtype=torch.float64), T=3)
    with pytest.raises(ValueError, match="no dropout"):
        db.mc_predict(nn.Linear(4, 2), torch.ones(2, 4), T=3)

    class Pooling(nn.Module):  # returns one row for the whole batch: not row-wise
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(x).sum(0, keepdim=True)

    with pytest.raises(ValueError, match="row per input row"):
        db.mc_predict(Pooling(), torch.ones(2, 4), T=3)


# --------------------------------------------------------------------------------------------
# entropies and mutual information


def test_entropy_scores_on_hand_computed_cases():
    log2 = math.log(2)
    disagree = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)  # confident, opposite
    flat = torch.full((2, 1, 2), 0.5, dtype=torch.float64)  # agree on a coin flip
    certain = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]], dtype=torch.float64)
    cases = {"disagree": (disagree, log2, 0.0, log2), "flat": (flat, log2, log2, 0.0),
             "certain": (certain, 0.0, 0.0, 0.0)}
    for name, (probs, h, eh, mi) in cases.items():
        assert math.isclose(db.predictive_entropy(probs).item(), h, abs_tol=1e-15), name
        assert math.isclose(db.expected_entropy(probs).item(), eh, abs_tol=1e-15), name
        assert math.isclose(db.mutual_information(probs).item(), mi, abs_tol=1e-15), name
    # a three-class case with the formula written out
    probs = torch.tensor([[[0.7, 0.2, 0.1]], [[0.1, 0.3, 0.6]]], dtype=torch.float64)
    mean = probs.mean(0)[0]
    h = -(mean * mean.log()).sum()
    eh = -(probs * probs.log()).sum(-1).mean()
    assert torch.isclose(db.predictive_entropy(probs)[0], h)
    assert torch.isclose(db.expected_entropy(probs)[0], eh)
    assert torch.isclose(db.mutual_information(probs)[0], h - eh)


@given(st.integers(1, 6), st.integers(2, 5), st.integers(0, 10_000), st.floats(0.05, 5.0))
def test_entropy_identities_and_bounds(T, C, seed, concentration):
    with torch.random.fork_rng(devices=[]):  # Dirichlet.sample takes no generator: seed a forked global RNG
        torch.manual_seed(seed)
        probs = torch.distributions.Dirichlet(torch.full((C,), concentration, dtype=torch.float64)).sample((T, 4))
    probs = probs / probs.sum(-1, keepdim=True)
    h, eh, mi = db.predictive_entropy(probs), db.expected_entropy(probs), db.mutual_information(probs)
    assert torch.allclose(h, eh + mi, atol=1e-12)
    assert (mi >= -1e-12).all() and (h <= math.log(C) + 1e-12).all() and (eh >= -1e-12).all()
    same = probs[:1].expand(T, -1, -1)
    assert torch.allclose(db.mutual_information(same), torch.zeros(4, dtype=torch.float64), atol=1e-14)


def test_entropy_is_safe_at_zero_and_one_and_keeps_dtype():
    probs = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]]])
    for fn in (db.predictive_entropy, db.expected_entropy, db.mutual_information):
        out = fn(probs)
        assert torch.isfinite(out).all() and out.dtype == torch.float32 and out.shape == (1,)
    # MI for a 2:1 split between two certain classes is the entropy of (2/3, 1/3)
    expected = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert math.isclose(db.mutual_information(probs).item(), expected, rel_tol=1e-6)


def test_entropy_scores_reject_bad_input_and_do_not_modify_it():
    logits = torch.randn(3, 4, 5)
    with pytest.raises(ValueError, match="sum to 1"):
        db.predictive_entropy(logits.abs() / 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        db.mutual_information(logits)
    with pytest.raises(ValueError, match="shape"):
        db.expected_entropy(torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        db.mutual_information(torch.tensor([[[float("nan"), 1.0]]]))
    with pytest.raises(TypeError, match="floating"):
        db.predictive_entropy(torch.ones(2, 1, 1, dtype=torch.int64))
    probs = logits.softmax(-1)
    before = probs.clone()
    db.mutual_information(probs)
    assert torch.equal(probs, before)


# --------------------------------------------------------------------------------------------
# referral curve


def test_referral_curve_by_hand():
    correct = torch.tensor([1, 0, 1, 1, 0, 1])
    uncertainty = torch.tensor([0.1, 0.9, 0.2, 0.3, 0.8, 0.4], dtype=torch.float64)
    curve = db.referral_curve(correct, uncertainty, [0.0, 1 / 3, 0.5])
    assert torch.allclose(curve, torch.tensor([4 / 6, 1.0, 1.0], dtype=torch.float64))
    reversed_curve = db.referral_curve(correct, -uncertainty, [0.0, 1 / 3])  # refer the sure ones
    assert torch.allclose(reversed_curve, torch.tensor([4 / 6, 0.5], dtype=torch.float64))


def test_referral_curve_rejects_bad_arguments():
    c, u = torch.tensor([True, False]), torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match="fractions"):
        db.referral_curve(c, u, [1.0])
    with pytest.raises(ValueError, match="at least one"):
        db.referral_curve(c, u, [0.9])
    with pytest.raises(ValueError, match="shape"):
        db.referral_curve(c, torch.tensor([0.1]), [0.0])
    with pytest.raises(ValueError, match="0/1"):
        db.referral_curve(torch.tensor([2, 0]), u, [0.0])
    with pytest.raises(TypeError, match="floating"):
        db.referral_curve(c, torch.tensor([1, 2]), [0.0])


class _LSTMLast(nn.Module):
    """An LSTM with weight drop whose prediction is the last hidden state (input (B, T, 3))."""

    def __init__(self):
        super().__init__()
        self.rnn = db.WeightDrop(nn.LSTM(3, 4, batch_first=True), 0.5)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


@pytest.mark.parametrize("make, x", [
    (lambda: db.DropConnectLinear(4, 3, p=0.5), torch.ones(2, 4)),
    (lambda: db.StochasticDepth(nn.Linear(4, 4), 0.5, mode="batch"), torch.ones(2, 4)),
    (_LSTMLast, torch.ones(2, 5, 3)),
], ids=["DropConnectLinear", "StochasticDepth-batch", "WeightDrop"])
def test_mc_predict_runs_modules_with_one_draw_per_batch_a_pass_at_a_time(make, x):
    """Stacking T copies into one forward would give them the module's one draw (identical samples,
    zero variance); mc_predict instead runs such models pass by pass, like the plain loop."""
    torch.manual_seed(0)
    model = make()
    pred = db.mc_predict(model, x, 40, dropout_types=(type(model) if not isinstance(model, _LSTMLast)
                                                       else db.WeightDrop,), return_samples=True,
                         generator=torch.Generator().manual_seed(3))
    distinct = {tuple(s.flatten().tolist()) for s in pred.samples[:, 0]}
    assert len(distinct) > 1 and bool((pred.variance > 0).any())
    looped = db.mc_predict(model, x, 40, chunk_size=1, return_samples=True,
                           dropout_types=(type(model) if not isinstance(model, _LSTMLast) else db.WeightDrop,),
                           generator=torch.Generator().manual_seed(3))
    assert torch.equal(pred.samples, looped.samples)
