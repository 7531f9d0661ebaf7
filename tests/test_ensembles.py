"""Chapter 4, "Dropout as an ensemble of subnetworks": the library dropoutbook.ensembles.

Three layers: unit and property tests of the deterministic contract (shapes, dtypes, errors, no
modification of inputs); exact checks against the expressions derived by
dropoutbook.derivations (values substituted into the derived objects, never typed in); and
Monte-Carlo checks of the closed forms with fixed seeds, |z| <= 5, and power against plausible
wrong formulas (check_agrees_and_rejects).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook import derivations as d
from dropoutbook.ensembles import (
    ambiguity_decomposition,
    count_active_paths,
    enumerate_masks,
    path_survival_probability,
    subnetwork_average,
    subnetwork_forward,
)
from dropoutbook.training import mlp
from helpers import check_agrees_and_rejects

P = d.drop_rate


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# enumerate_masks


@pytest.mark.parametrize("n", [0, 1, 3, 7])
def test_enumerate_masks_lists_every_mask_once(n):
    masks = enumerate_masks(n)
    assert masks.shape == (2**n, n) and masks.dtype == torch.float64
    assert len({tuple(row) for row in masks.tolist()}) == 2**n
    kept = masks.sum(1)
    for k in range(n + 1):  # binomial counts of masks keeping k units
        assert int((kept == k).sum()) == math.comb(n, k)


def test_enumerate_masks_bool_and_order():
    masks = enumerate_masks(3, dtype=torch.bool)
    assert masks.dtype == torch.bool
    assert not masks[0].any() and masks[-1].all()
    assert masks[1].tolist() == [False, False, True]


@pytest.mark.parametrize("n, exc, match", [
    (25, ValueError, r"n_units must be an int in \[0, 24\]"),
    (-1, ValueError, r"n_units must be an int in \[0, 24\]"),
    (2.0, TypeError, "n_units must be an int"),
    (True, TypeError, "n_units must be an int"),
])
def test_enumerate_masks_rejects_bad_n(n, exc, match):
    with pytest.raises(exc, match=match):
        enumerate_masks(n)


def test_enumerate_masks_rejects_integer_dtype():
    with pytest.raises(TypeError, match="dtype must be a floating dtype or torch.bool"):
        enumerate_masks(2, dtype=torch.int64)


# --------------------------------------------------------------------------------------------
# subnetwork_average: exact checks


def linear_values(n: int, seed: int = 0):
    g = gen(seed)
    w = torch.randn(n, generator=g, dtype=torch.float64)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    return w, x


def derived_linear_average(w, x, p) -> float:
    """The average over all subnetworks as derived by sympy (N = 6), evaluated at w, x, p."""
    derived = d.linear_subnetwork_average(6)
    subs = {P: sp.nsimplify(p), **dict(zip(derived.w, w.tolist())), **dict(zip(derived.x, x.tolist()))}
    return float(derived.average.subs(subs))


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_linear_model_average_equals_derived_weight_scaled_output(p):
    w, x = linear_values(6)
    exact = subnetwork_average(lambda m: (m * w * x).sum(-1), 6, p)
    assert exact.item() == pytest.approx(derived_linear_average(w, x, p), rel=1e-12, abs=1e-12)
    if 0 < p < 1:  # power: the full network without scaling, and the uniform average, differ
        assert not math.isclose(exact.item(), (w @ x).item(), rel_tol=1e-3)
        if p != 0.5:
            assert not math.isclose(exact.item(), 0.5 * (w @ x).item(), rel_tol=1e-3)


@pytest.mark.parametrize("n", [12, 16])
def test_linear_model_average_by_enumeration_for_larger_n(n):
    # sympy derives the result for N <= 6 in the tests; enumeration checks it numerically beyond.
    w, x = linear_values(n, seed=n)
    p = 0.3
    exact = subnetwork_average(lambda m: m @ (w * x), n, p, chunk_size=1000)
    assert exact.item() == pytest.approx((1 - p) * (w @ x).item(), rel=1e-10)


def relu_net(seed: int = 0, n_hidden: int = 10):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, n_hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(n_hidden, 2),
                         nn.Tanh()).double()


def test_subnetwork_average_of_a_network_matches_its_definition():
    # the weighted sum, written out with itertools over every mask, for a nonlinear network
    net, x = relu_net(), torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    p = 0.3
    fn = lambda m: subnetwork_forward(net, x, [m])[:, 0, :]  # noqa: E731
    exact = subnetwork_average(fn, 10, p, chunk_size=100)
    total = torch.zeros(2, dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=10):
        m = torch.tensor([bits], dtype=torch.float64)
        weight = math.prod((1 - p) if b else p for b in bits)
        total += weight * fn(m)[0]
    assert torch.allclose(exact, total, rtol=1e-12, atol=1e-14)


def test_subnetwork_average_of_a_linear_readout_is_the_weight_scaled_network():
    # dropout only before the last linear layer: the output is linear in the dropped units,
    # so the average of the subnetworks' logits equals the plain network's logits (inverted scaling)
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.4), nn.Linear(8, 3)).double().eval()
    x = torch.randn(5, 4, dtype=torch.float64, generator=gen(0))
    avg = subnetwork_average(lambda m: subnetwork_forward(net, x, [m]), 8, 0.4)
    assert torch.allclose(avg, net(x), rtol=1e-12, atol=1e-12)
    # but not the average of the softmax probabilities (Jensen)
    probs = subnetwork_average(lambda m: subnetwork_forward(net, x, [m]).softmax(-1), 8, 0.4)
    assert (probs - net(x).softmax(-1)).abs().max() > 1e-3


@settings(max_examples=25)
@given(n=st.integers(1, 8), p=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_subnetwork_average_properties(n, p, seed):
    w, x = linear_values(n, seed)
    linear = subnetwork_average(lambda m: m @ (w * x), n, p)
    assert linear.item() == pytest.approx((1 - p) * (w @ x).item(), rel=1e-9, abs=1e-12)
    # the average is linear in the function averaged, and the weights sum to one
    f = lambda m: torch.tanh(m @ w)  # noqa: E731
    g = lambda m: (m * x).sum(-1) ** 2  # noqa: E731
    combined = subnetwork_average(lambda m: 2 * f(m) - 3 * g(m), n, p)
    separate = 2 * subnetwork_average(f, n, p) - 3 * subnetwork_average(g, n, p)
    assert combined.item() == pytest.approx(separate.item(), rel=1e-9, abs=1e-12)
    ones = lambda m: torch.ones(len(m), dtype=torch.float64)  # noqa: E731
    assert subnetwork_average(ones, n, p).item() == pytest.approx(1.0, rel=1e-12)


def test_subnetwork_average_endpoints_and_constants():
    fn = lambda m: m.sum(-1, keepdim=True) ** 2  # noqa: E731
    assert subnetwork_average(fn, 5, 0.0).item() == 25.0  # nothing dropped: the full network
    assert subnetwork_average(fn, 5, 1.0).item() == 0.0  # everything dropped
    assert subnetwork_average(lambda m: torch.ones(len(m), 2), 4, 0.37).tolist() == pytest.approx([1.0, 1.0])
    # E[(sum m)^2] = n q (1 - q) + (n q)^2 for a binomial count
    assert subnetwork_average(fn, 5, 0.4).item() == pytest.approx(5 * 0.6 * 0.4 + 3.0**2, rel=1e-12)


def test_subnetwork_average_keeps_the_output_dtype():
    out = subnetwork_average(lambda m: m.float().sum(-1), 3, 0.5)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(fn=3, n_units=2, p=0.5), TypeError, "fn must be callable"),
    (dict(n_units=2, p=1.5), ValueError, r"p must be in \[0, 1\]"),
    (dict(n_units=2, p=float("nan")), ValueError, "p must be a number"),
    (dict(n_units=30, p=0.5), ValueError, r"n_units must be an int in \[0, 24\]"),
    (dict(n_units=2, p=0.5, chunk_size=0), ValueError, "chunk_size must be a positive int, got 0"),
    (dict(n_units=2, p=0.5, dtype=torch.int32), TypeError, "dtype must be a floating"),
    (dict(fn=lambda m: m.sum(), n_units=2, p=0.5), ValueError, "one output per mask"),
    (dict(fn=lambda m: m.long(), n_units=2, p=0.5), TypeError, "floating torch.Tensor"),
    (dict(fn=lambda m: 1.0, n_units=2, p=0.5), TypeError, "floating torch.Tensor, got float"),
])
def test_subnetwork_average_rejects_bad_input(kwargs, exc, match):
    kwargs.setdefault("fn", lambda m: m.sum(-1))
    with pytest.raises(exc, match=match):
        subnetwork_average(**kwargs)


# --------------------------------------------------------------------------------------------
# subnetwork_average: Monte Carlo


def test_subnetwork_average_agrees_with_random_subnetworks():
    """Sampled subnetworks of a nonlinear net average to the exact enumeration; the weight-scaled
    output and the uniform average over subnetworks are rejected (p = 0.3, not 0.5)."""
    net, x = relu_net(1), torch.tensor([[1.0, -0.5, 0.8]], dtype=torch.float64)
    p, n = 0.3, 10
    fn = lambda m: subnetwork_forward(net, x, [m])[:, 0, 0]  # noqa: E731
    exact = subnetwork_average(fn, n, p).item()
    with torch.no_grad():
        samples = fn(db.bernoulli_mask((200_000, n), 1 - p, generator=gen(4), dtype=torch.float64))
        weight_scaled = net.eval()(x)[0, 0].item()
        uniform = subnetwork_average(fn, n, 0.5).item()
    check_agrees_and_rejects(db.estimate_mean(samples), exact, {
        "weight-scaled network (exact only for linear models)": weight_scaled,
        "uniform average over the 2^N subnetworks": uniform,
    })


def test_linear_model_by_random_subnetworks():
    """Sampled subnetworks of a linear model average to the derived (1-p) w'x; the unscaled
    w'x and the drop/keep-swapped p w'x are rejected."""
    w, x = linear_values(6, seed=5)
    p = 0.3
    masks = db.bernoulli_mask((200_000, 6), 1 - p, generator=gen(6), dtype=torch.float64)
    est = db.estimate_mean(masks @ (w * x))
    wx = (w @ x).item()
    check_agrees_and_rejects(est, derived_linear_average(w, x, p), {
        "the unscaled network w'x": wx,
        "drop and keep swapped, p w'x": p * wx,
    })


# --------------------------------------------------------------------------------------------
# subnetwork_forward


def test_subnetwork_forward_matches_dropout_with_the_same_mask():
    torch.manual_seed(0)
    net = mlp([5, 6, 4, 3], dropout=0.25).double()
    x = torch.randn(7, 5, dtype=torch.float64, generator=gen(1))
    m1 = torch.tensor([[1, 0, 1, 1, 0, 1]], dtype=torch.float64)
    m2 = torch.tensor([[0, 1, 1, 1]], dtype=torch.float64)
    out = subnetwork_forward(net, x, [m1, m2])
    lin1, _, _, lin2, _, _, lin3 = net
    h = torch.relu(lin1(x)) * m1 / 0.75
    h = torch.relu(lin2(h)) * m2 / 0.75
    assert out.shape == (1, 7, 3)
    assert torch.allclose(out[0], lin3(h), rtol=1e-12)
    # T subnetworks in one call: row t of the output is subnetwork t alone
    other = [torch.ones(1, 6, dtype=torch.float64), torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)]
    both = subnetwork_forward(net, x, [torch.cat([m1, other[0]]), torch.cat([m2, other[1]])])
    assert torch.allclose(both[0], out[0], rtol=1e-12, atol=1e-15)
    assert torch.allclose(both[1], subnetwork_forward(net, x, other)[0], rtol=1e-12, atol=1e-15)


def test_subnetwork_forward_scales_as_the_dropout_layer_does():
    lin = nn.Linear(2, 2).double()
    x = torch.ones(1, 2, dtype=torch.float64)
    ones = [torch.ones(1, 2, dtype=torch.float64)]
    inverted = subnetwork_forward(nn.Sequential(lin, db.InvertedDropout(0.5)), x, ones)
    standard = subnetwork_forward(nn.Sequential(lin, db.StandardDropout(0.5)), x, ones)
    assert torch.allclose(inverted, 2 * standard)


def test_subnetwork_forward_leaves_model_and_input_alone():
    net = relu_net()
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(3, 3, dtype=torch.float64, generator=gen(2))
    x0 = x.clone()
    subnetwork_forward(net, x, [torch.ones(4, 10, dtype=torch.float64)])
    assert net.training and torch.equal(x, x0)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("model, x, masks, exc, match", [
    (nn.Linear(2, 2), torch.ones(1, 2), [], TypeError, "must be a torch.nn.Sequential"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(1, 2, dtype=torch.int64), [torch.ones(1, 2)],
     TypeError, "x must have a floating dtype"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(2), [torch.ones(1, 2)], ValueError, r"shape \(N, d\)"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(1, 2), [], ValueError, "the model has 1, got 0"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(1, 2), torch.ones(1, 2), TypeError, "list of tensors"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(1, 2), [torch.ones(1, 3)], ValueError, "has 3 units"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), torch.ones(1, 2), [torch.full((1, 2), 0.5)], ValueError,
     "only 0 and 1"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Dropout(0.5)), torch.ones(1, 2),
     [torch.ones(1, 2), torch.ones(2, 2)], ValueError, "same number of rows"),
    (nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5)), torch.ones(1, 2), [torch.ones(1, 2)],
     ValueError, "batch-norm layer in training mode"),
])
def test_subnetwork_forward_rejects_bad_input(model, x, masks, exc, match):
    with pytest.raises(exc, match=match):
        subnetwork_forward(model, x, masks)


# --------------------------------------------------------------------------------------------
# ambiguity_decomposition


def brute_force_terms(preds: np.ndarray, target: np.ndarray):
    """The definitions, written out with loops over the members and over the unordered pairs."""
    t = preds.shape[0]
    individual = np.mean([np.mean(np.sum((preds[i] - target) ** 2, -1)) for i in range(t)])
    ensemble = np.mean(np.sum((preds.mean(0) - target) ** 2, -1))
    pairs = [np.mean(np.sum((preds[i] - preds[j]) ** 2, -1)) for i in range(t) for j in range(i + 1, t)]
    return individual, ensemble, np.mean(pairs)


@pytest.mark.parametrize("t", [2, 3, 5, 8])
def test_ambiguity_decomposition_matches_the_definitions(t):
    rng = np.random.default_rng(t)
    preds, target = rng.normal(size=(t, 20, 4)), rng.normal(size=(20, 4))
    terms = ambiguity_decomposition(torch.from_numpy(preds), torch.from_numpy(target), event_dims=1)
    expected = brute_force_terms(preds, target)
    got = (terms.individual_error.item(), terms.ensemble_error.item(), terms.diversity.item())
    assert got == pytest.approx(expected, rel=1e-12)
    assert terms.n_members == t


@pytest.mark.parametrize("t", range(2, 9))
def test_ambiguity_identity_holds_with_the_derived_constant_only(t):
    """E_ind - E_ens = c(T)·D to rounding with the constant sympy derives for D = mean over
    pairs i != j; the constants of the other definitions of D (and (T-1)/T) are rejected."""
    rng = np.random.default_rng(100 + t)
    terms = ambiguity_decomposition(rng.normal(size=(t, 50)), rng.normal(size=50))
    gain = (terms.individual_error - terms.ensemble_error).item()
    derived = d.ambiguity_terms(t).constant
    c = float(derived["mean over pairs i != j"])
    assert gain == pytest.approx(c * terms.diversity.item(), rel=1e-10)
    wrong = {"mean over all pairs": float(derived["mean over all pairs"]),
             "sum over pairs i < j": float(derived["sum over pairs i < j"]), "(T-1)/T": (t - 1) / t}
    for name, value in wrong.items():
        if name == "sum over pairs i < j" and t == 2:
            continue  # one pair: its sum and its mean coincide
        assert not math.isclose(gain, value * terms.diversity.item(), rel_tol=1e-3), name


def test_ambiguity_identity_holds_on_random_dropout_subnetworks_in_float32():
    torch.manual_seed(0)
    net = mlp([8, 16, 3], dropout=0.5).eval()
    x = torch.randn(40, 8, generator=gen(1))
    masks = [db.bernoulli_mask((6, 16), 0.5, generator=gen(2))]
    with torch.no_grad():
        probs = subnetwork_forward(net, x, masks).softmax(-1)
    target = nn.functional.one_hot(torch.arange(40) % 3, 3).float()
    terms = ambiguity_decomposition(probs, target, event_dims=1)
    assert terms.diversity.dtype == torch.float32
    gain = terms.individual_error - terms.ensemble_error
    assert gain.item() == pytest.approx(5 / 12 * terms.diversity.item(), rel=1e-4)


def test_zero_one_loss_breaks_the_identity():
    """The counter-example of the chapter, checked exhaustively: three binary classifiers, one
    example with label 0, every pattern of predictions, majority vote as the ensemble. With the
    0/1 loss and D the disagreement rate, the identity fails for some patterns (and the gain can
    be negative, which (T-1)/(2T)·D >= 0 can never be)."""
    t, c = 3, 1 / 3
    failures, negative = 0, 0
    for votes in itertools.product((0, 1), repeat=t):
        individual = np.mean([v != 0 for v in votes])
        ensemble = float((sum(votes) > t / 2) != 0)
        disagreement = np.mean([votes[i] != votes[j] for i in range(t) for j in range(t) if i != j])
        failures += not math.isclose(individual - ensemble, c * disagreement, abs_tol=1e-12)
        negative += individual - ensemble < 0
    assert failures == 6 and negative == 3


@settings(max_examples=25)
@given(t=st.integers(2, 6), n=st.integers(1, 5), k=st.integers(1, 3), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_ambiguity_decomposition_properties(t, n, k, seed, dtype):
    g = gen(seed)
    preds = torch.randn(t, n, k, generator=g, dtype=torch.float64).to(dtype)
    target = torch.randn(n, k, generator=g, dtype=torch.float64).to(dtype)
    before = preds.clone(), target.clone()
    terms = ambiguity_decomposition(preds, target, event_dims=1)
    assert torch.equal(preds, before[0]) and torch.equal(target, before[1])
    assert terms.individual_error.dtype == dtype and terms.individual_error.ndim == 0
    assert terms.diversity >= 0 and terms.ensemble_error <= terms.individual_error * (1 + 1e-5) + 1e-6
    gain = (terms.individual_error - terms.ensemble_error).double().item()
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    assert gain == pytest.approx((t - 1) / (2 * t) * terms.diversity.item(), rel=tol, abs=tol)
    # the members' order does not matter
    perm = torch.randperm(t, generator=g)
    shuffled = ambiguity_decomposition(preds[perm], target, event_dims=1)
    assert torch.allclose(shuffled.diversity, terms.diversity, rtol=tol)
    # event_dims=1 sums over the event dimension, event_dims=0 averages over it
    flat = ambiguity_decomposition(preds, target)
    assert torch.allclose(flat.diversity * k, terms.diversity, rtol=tol)


def test_ambiguity_decomposition_accepts_numpy_and_broadcasts_the_target():
    preds = np.array([[1.0, 2.0], [3.0, 2.0]])
    terms = ambiguity_decomposition(preds, np.array(2.0))
    assert terms.individual_error.item() == pytest.approx(0.5)
    assert terms.ensemble_error.item() == pytest.approx(0.0)
    assert terms.diversity.item() == pytest.approx(2.0)


@pytest.mark.parametrize("preds, target, kwargs, exc, match", [
    (torch.ones(1, 3), torch.ones(3), {}, ValueError, "T >= 2 members"),
    (torch.ones(2, 3, dtype=torch.int64), torch.ones(3), {}, TypeError, "preds must have a floating dtype"),
    ([[1.0], [2.0]], torch.ones(1), {}, TypeError, "preds must be a torch.Tensor"),
    (torch.ones(2, 3), [1.0], {}, TypeError, "target must be a torch.Tensor or a numpy array"),
    (torch.ones(2, 3), torch.ones(4), {}, ValueError, r"does not broadcast to the prediction shape \(3,\)"),
    (torch.ones(2, 0), torch.ones(0), {}, ValueError, "no examples"),
    (torch.ones(2, 3), torch.ones(3), dict(event_dims=2), ValueError, r"event_dims must be an int in \[0, 1\]"),
    (torch.ones(2, 3), torch.ones(3), dict(event_dims=-1), ValueError, "event_dims"),
])
def test_ambiguity_decomposition_rejects_bad_input(preds, target, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ambiguity_decomposition(preds, target, **kwargs)


# --------------------------------------------------------------------------------------------
# paths


def derived_survival(depth: int, input_dropout: bool = False) -> sp.Expr:
    return d.path_survival((2,) + (1,) * depth + (1,), input_dropout=input_dropout).survival


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_path_survival_probability_equals_the_derived_expression(p, depth):
    expected = 1.0 if depth == 0 else float(derived_survival(depth).subs(P, sp.nsimplify(p)))
    assert path_survival_probability(p, depth) == pytest.approx(expected, rel=1e-12)


def test_path_survival_probability_with_input_dropout_equals_the_derived_expression():
    derived = derived_survival(3, input_dropout=True)
    value = float(derived.subs({P: sp.Rational(3, 10), d.ensembles.input_drop_rate: sp.Rational(1, 5)}))
    assert path_survival_probability(0.3, 3, input_p=0.2) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("p, depth", [(0.4, 3), (0.2, 6), (0.3, 2)])
def test_path_survival_by_simulation(p, depth):
    """One path through `depth` hidden layers, inputs not dropped: the product of its masks."""
    masks = db.bernoulli_mask((200_000, depth), 1 - p, generator=gen(depth), dtype=torch.float64)
    alive = masks.prod(dim=1)
    check_agrees_and_rejects(db.estimate_mean(alive), path_survival_probability(p, depth), {
        "(1-p)^(L+1): input or output counted as dropped": (1 - p) ** (depth + 1),
        "(1-p)^(L-1)": (1 - p) ** (depth - 1),
        "p^L: drop and keep swapped": p**depth,
    })


def test_expected_active_paths_by_simulation():
    """Widths (64, 32, 32, 32, 10), dropout 0.5 on the hidden layers: the mean number of active
    paths over sampled masks agrees with the derived total·(1-p)^L."""
    widths, p = (64, 32, 32, 32, 10), 0.5
    small = d.path_survival((2, 2, 2, 2, 1))  # the derivation, for widths small enough for sympy
    factor = small.expected_active_paths / small.total_paths
    assert factor == small.survival  # derived: E[count] = (number of paths) · P(one path active)
    total = math.prod(widths)
    exact = total * float(factor.subs(P, sp.nsimplify(p)))
    g, n = gen(11), 20_000
    masks = [torch.ones(n, 64)] + [db.bernoulli_mask((n, 32), 1 - p, generator=g) for _ in range(3)] \
        + [torch.ones(n, 10)]
    counts = count_active_paths(masks)
    check_agrees_and_rejects(db.estimate_mean(counts), exact, {
        "input dropped too: total·(1-p)^(L+1)": total * (1 - p) ** 4,
        "total·(1-p)^(L-1)": total * (1 - p) ** 2,
    })


def test_probability_that_some_path_survives_by_simulation():
    widths, p = (1, 2, 2, 2, 1), 0.5
    derived = d.path_survival(widths)
    exact = float(derived.any_path.subs(P, sp.Rational(1, 2)))
    g, n = gen(12), 100_000
    masks = [torch.ones(n, 1)] + [db.bernoulli_mask((n, 2), 1 - p, generator=g) for _ in range(3)] \
        + [torch.ones(n, 1)]
    some = (count_active_paths(masks) > 0).double()
    check_agrees_and_rejects(db.estimate_mean(some), exact, {
        "P(one given path) (1-p)^L": (1 - p) ** 3,
        "1 - p^L": 1 - p**3,
    })


def test_count_active_paths_counts_paths():
    assert count_active_paths([torch.ones(5), torch.ones(4), torch.ones(2)]).item() == 40
    masks = [torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])]
    assert count_active_paths(masks).tolist() == [3.0, 0.0]


@settings(max_examples=30)
@given(widths=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_count_active_paths_equals_enumerated_paths(widths, seed):
    g = gen(seed)
    masks = [db.bernoulli_mask(w, 0.5, generator=g) for w in widths]
    paths = itertools.product(*[range(w) for w in widths])
    brute = sum(all(masks[k][i] == 1 for k, i in enumerate(path)) for path in paths)
    assert count_active_paths(masks).item() == brute


@settings(max_examples=30)
@given(p=st.floats(0.0, 1.0), depth=st.integers(0, 20), input_p=st.floats(0.0, 1.0))
def test_path_survival_probability_properties(p, depth, input_p):
    value = path_survival_probability(p, depth, input_p=input_p)
    assert 0.0 <= value <= 1.0
    assert path_survival_probability(p, depth + 1, input_p=input_p) <= value
    assert value <= path_survival_probability(p, depth)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((1.2, 2), {}, ValueError, r"p must be in \[0, 1\]"),
    ((0.5, -1), {}, ValueError, "depth must be a non-negative int, got -1"),
    ((0.5, 2.0), {}, TypeError, "depth must be a non-negative int, got float 2.0"),
    ((0.5, 2), dict(input_p=-0.1), ValueError, r"input_p must be in \[0, 1\]"),
    (("0.5", 2), {}, TypeError, "p must be a number"),
])
def test_path_survival_probability_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        path_survival_probability(*args, **kwargs)


@pytest.mark.parametrize("masks, exc, match", [
    ([], TypeError, "non-empty list"),
    (torch.ones(3), TypeError, "non-empty list"),
    ([torch.ones(2), torch.tensor(1.0)], TypeError, r"masks\[1\] must be a tensor"),
    ([torch.tensor([0.5, 1.0])], ValueError, "only 0 and 1"),
    ([torch.ones(2, 3), torch.ones(3, 3)], ValueError, "batch shape"),
])
def test_count_active_paths_rejects_bad_input(masks, exc, match):
    with pytest.raises(exc, match=match):
        count_active_paths(masks)
