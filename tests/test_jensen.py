"""Library and statistical layers of chapter 3, "The Jensen bias" (dropoutbook.jensen).

The closed forms come from dropoutbook.derivations; Monte-Carlo checks use fixed seeds, accept
within Z = 5 standard errors, and assert their power against plausible wrong formulas.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook import derivations, inverted_dropout, jensen_gap, layerwise_jensen_gap, standard_dropout
from dropoutbook.jensen import _mask_chunks
from helpers import check_agrees_and_rejects

W = torch.tensor([0.8, -1.2, 0.5, 1.1], dtype=torch.float64)
X = torch.tensor([1.0, 0.5, -1.5, 0.7], dtype=torch.float64)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def derived_quadratic_gap(w, x, p, scaling):
    """The derived Var[z] (= exact gap of z^2) substituted at numbers."""
    dec = derivations.delta_method_gap(len(w), scaling)
    subs = {derivations.drop_rate: p, **dict(zip(dec.w, w.tolist())), **dict(zip(dec.x, x.tolist()))}
    return float(dec.quadratic_exact_gap.subs(subs))


# --------------------------------------------------------------------------------------------
# statistical layer: the chapter-1 samplers against the exact values


@pytest.mark.parametrize("scaling, sampler", [("inverted", inverted_dropout), ("standard", standard_dropout)])
def test_quadratic_gap_closed_form_against_the_dropout_sampler(scaling, sampler):
    p, n, w, x = 0.3, 100_000, W[:3], X[:3]
    truth = derived_quadratic_gap(w, x, p, scaling)
    z = sampler(x.expand(n, -1), p, generator=gen(1)) @ w
    mu = (1 - p if scaling == "standard" else 1.0) * (w @ x)
    est = db.estimate_mean(z**2 - mu**2)
    s2 = float(((w * x) ** 2).sum())
    check_agrees_and_rejects(est, truth, {
        "the other scaling": p * (1 - p) * s2 if scaling == "inverted" else p / (1 - p) * s2,
        "keep-probability formula (1-p)/p read with p = drop": (1 - p) / p * s2,
        "(sum w x)^2 instead of sum (w x)^2": truth / s2 * float(w @ x) ** 2,
    })
    assert jensen_gap("square", w, x, p, scaling=scaling).gap.item() == pytest.approx(truth, rel=1e-12)


@pytest.mark.parametrize("f", ["relu", "tanh", "sigmoid"])
def test_exact_gap_against_the_dropout_sampler(f):
    p, n = 0.4, 400_000
    exact = jensen_gap(f, W, X, p)
    z = inverted_dropout(X.expand(n, -1), p, generator=gen(2)) @ W
    fn = getattr(torch, f)
    est = db.estimate_mean(fn(z) - exact.weight_scaled)
    delta = jensen_gap(f, W, X, p, method="delta").gap.item()
    wrong = {"no gap": 0.0, "the gap of standard dropout": jensen_gap(f, W, X, p, scaling="standard").gap.item()}
    if abs(delta - exact.gap.item()) > 0.01:
        wrong["the delta-method approximation"] = delta
    check_agrees_and_rejects(est, exact.gap.item(), wrong)


@pytest.mark.parametrize("f", ["relu", "tanh", "sigmoid", "square"])
def test_mc_method_agrees_with_exact_and_reports_its_error(f):
    exact = jensen_gap(f, W, X, 0.25).gap.item()
    mc = jensen_gap(f, W, X, 0.25, method="mc", n_samples=100_000, generator=gen(3))
    est = db.Estimate(mc.gap.item(), mc.stderr.item(), mc.n)
    check_agrees_and_rejects(est, exact, {"no gap": 0.0})
    again = jensen_gap(f, W, X, 0.25, method="mc", n_samples=100_000, generator=gen(3))
    assert torch.equal(again.gap, mc.gap)


def test_delta_method_is_accurate_for_small_contributions_only():
    w = torch.tensor([0.1, -0.05, 0.08, 0.06], dtype=torch.float64)
    x = torch.ones(4, dtype=torch.float64)
    for f in ("tanh", "sigmoid"):
        small = jensen_gap(f, w, x, 0.5, bias=0.5), jensen_gap(f, w, x, 0.5, bias=0.5, method="delta")
        assert small[1].gap.item() == pytest.approx(small[0].gap.item(), rel=0.1)
        large = jensen_gap(f, W, X, 0.5), jensen_gap(f, W, X, 0.5, method="delta")
        assert abs(large[1].gap.item() - large[0].gap.item()) > 0.3 * abs(large[0].gap.item())
    relu_exact, relu_delta = jensen_gap("relu", W, X, 0.3), jensen_gap("relu", W, X, 0.3, method="delta")
    assert relu_delta.gap.item() == 0.0 and relu_exact.gap.item() > 0.05


# --------------------------------------------------------------------------------------------
# exact enumeration


def test_mask_chunks_cover_every_mask_once_with_probabilities_summing_to_one():
    seen, total = set(), 0.0
    for masks, probs in _mask_chunks(5, 0.3, chunk_size=7):
        seen.update(tuple(int(v) for v in row) for row in masks.tolist())
        total += probs.sum().item()
        kept = masks.sum(1)
        assert torch.allclose(probs, 0.3**kept * 0.7 ** (5 - kept))
    assert len(seen) == 32 and total == pytest.approx(1.0, abs=1e-12)


def test_exact_enumeration_limit_and_twenty_units_stay_cheap():
    w, x = torch.ones(21, dtype=torch.float64), torch.ones(21, dtype=torch.float64)
    with pytest.raises(ValueError, match="at most N = 20.*method='mc'"):
        jensen_gap("tanh", w, x, 0.5)
    gap = jensen_gap("square", w[:20] / 4, x[:20], 0.5)  # 2**20 masks, in chunks
    assert gap.n == 2**20 and gap.gap.item() == pytest.approx(20 / 16, rel=1e-9)
    assert gap.gap.item() == pytest.approx(gap.variance.item(), rel=1e-9)
    with pytest.raises(ValueError, match="at most N = 20"):
        next(_mask_chunks(21, 0.5))


# --------------------------------------------------------------------------------------------
# properties (hypothesis)

vectors = st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-2, 2, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.floats(-2, 2, allow_nan=False), min_size=n, max_size=n)))
rates = st.floats(0.0, 0.9, allow_nan=False)


@settings(max_examples=15)
@given(vectors, rates, st.sampled_from(["inverted", "standard"]))
def test_square_gap_is_the_variance_and_convex_gaps_are_nonnegative(wx, p, scaling):
    w, x = (torch.tensor(v, dtype=torch.float64) for v in wx)
    sq = jensen_gap("square", w, x, p, scaling=scaling)
    assert sq.gap.item() == pytest.approx(sq.variance.item(), rel=1e-9, abs=1e-12)
    assert jensen_gap("square", w, x, p, method="delta", scaling=scaling).gap.item() == pytest.approx(
        sq.gap.item(), rel=1e-9, abs=1e-12)
    assert jensen_gap("relu", w, x, p, scaling=scaling).gap.item() >= -1e-12  # Jensen: relu is convex
    linear = jensen_gap(lambda z: 3 * z - 1, w, x, p, scaling=scaling)
    assert linear.gap.item() == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=15)
@given(vectors, st.floats(0.05, 0.9, allow_nan=False))
def test_relu_gap_scales_with_the_mask_scale(wx, p):
    # relu is positively homogeneous and z_inverted = z_standard / (1-p) without a bias
    w, x = (torch.tensor(v, dtype=torch.float64) for v in wx)
    inv = jensen_gap("relu", w, x, p).gap.item()
    std = jensen_gap("relu", w, x, p, scaling="standard").gap.item()
    assert inv == pytest.approx(std / (1 - p), rel=1e-9, abs=1e-12)


@settings(max_examples=10)
@given(st.sampled_from([torch.float32, torch.float64]), st.integers(1, 3), rates)
def test_keeps_dtype_shape_and_inputs(dtype, k, p):
    w = torch.linspace(-1, 1, 4 * k, dtype=dtype).reshape(k, 4)
    x = torch.tensor([0.5, 1.0, -1.0, 2.0], dtype=dtype)
    w0, x0 = w.clone(), x.clone()
    for method in ("exact", "mc", "delta"):
        out = jensen_gap(torch.tanh, w, x, p, method=method, n_samples=50, generator=gen(0))
        assert out.gap.shape == (k,) and out.gap.dtype == dtype and out.stderr.dtype == dtype
    assert torch.equal(w, w0) and torch.equal(x, x0)
    assert jensen_gap("tanh", w[0], x, p).gap.shape == ()


def test_bias_enters_the_mean_only():
    g = jensen_gap("relu", W, X, 0.3, bias=0.7)
    assert g.mean.item() == pytest.approx((W @ X).item() + 0.7)
    assert g.variance.item() == pytest.approx(jensen_gap("relu", W, X, 0.3).variance.item())
    # a single relu input has no gap without bias, and one with a bias
    one_w, one_x = torch.tensor([1.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64)
    assert jensen_gap("relu", one_w, one_x, 0.5).gap.item() == 0.0
    assert jensen_gap("relu", one_w, one_x, 0.5, bias=1.5).gap.item() == pytest.approx(0.5 * 1.5 - 0.5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(f="softplus"), ValueError, "f must be"),
    (dict(f=3), TypeError, "f must be"),
    (dict(p=1.0), ValueError, r"p must be in \[0, 1\)"),
    (dict(p=float("nan")), ValueError, "p must be"),
    (dict(method="taylor"), ValueError, "method must be"),
    (dict(scaling="keep"), ValueError, "scaling must be"),
    (dict(x=torch.ones(3, dtype=torch.int64)), TypeError, "x must have a floating dtype"),
    (dict(x=torch.ones(3, dtype=torch.float64)), ValueError, "w must have shape"),
    (dict(x=torch.ones(2, 4, dtype=torch.float64)), ValueError, "1-D"),
    (dict(x=torch.ones(4, dtype=torch.float32)), TypeError, r"x must have the dtype and device of w \(torch.float64"),
    (dict(method="mc", n_samples=1), ValueError, "n_samples"),
    (dict(method="mc", generator=0), TypeError, "generator"),
    (dict(bias=torch.ones(3)), ValueError, "bias"),
    (dict(f=lambda z: z.sum()), TypeError, "same shape"),
    (dict(f=lambda z: 1.0), TypeError, "elementwise"),
])
def test_jensen_gap_rejects_bad_input(kwargs, error, match):
    args = dict(f="tanh", w=W, x=X, p=0.3)
    args.update(kwargs)
    f, w, x, p = args.pop("f"), args.pop("w"), args.pop("x"), args.pop("p")
    with pytest.raises(error, match=match):
        jensen_gap(f, w, x, p, **args)


# --------------------------------------------------------------------------------------------
# layer by layer


def small_net(activation=nn.Tanh, dropout=nn.Dropout, p=0.5, depth=3, width=3) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(2, width), activation()]
    for _ in range(depth - 1):
        layers += [dropout(p), nn.Linear(width, width), activation()]
    layers += [dropout(p), nn.Linear(width, 1)]
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("dropout", [nn.Dropout, db.StandardDropout])
def test_layerwise_exact_agrees_with_mc(dropout):
    net = small_net(dropout=dropout, p=0.3)  # p != 0.5, so that swapping drop and keep is detected
    x = torch.tensor([[0.5, -1.0], [1.5, 0.3]], dtype=torch.float64)
    exact = layerwise_jensen_gap(net, x, method="exact")
    mc = layerwise_jensen_gap(net, x, method="mc", n_samples=20_000, generator=gen(4))
    assert exact.n_dropped == 9 and exact.n == 2**9 and exact.names == mc.names
    gaps = torch.cat([g.flatten() for g in exact.gaps()])
    assert gaps.abs().max() > 0.003  # there is a gap to find (1e-15 where there is none)
    for e, m, s in zip(exact.ensemble, mc.ensemble, mc.stderr):
        nonzero = s > 0
        z = ((m - e)[nonzero] / s[nonzero]).abs()
        assert z.max() < 5, z
        assert torch.allclose(m[~nonzero], e[~nonzero])  # stages before the first dropout are deterministic
    # power: the Monte-Carlo estimate tells the ensemble average from the weight-scaled network
    detectable = [((m - d)[s > 0] / s[s > 0]).abs().max() for m, d, s in zip(mc.ensemble, mc.weight_scaled, mc.stderr)
                  if (s > 0).any()]
    assert max(detectable) > 5


@pytest.mark.parametrize("dropout", [nn.Dropout, db.InvertedDropout, db.StandardDropout])
def test_layerwise_linear_network_has_no_gap(dropout):
    net = small_net(activation=nn.Identity, dropout=dropout, p=0.3)
    x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    avg = layerwise_jensen_gap(net, x, method="exact")
    for gap in avg.gaps():
        assert gap.abs().max() < 1e-12


def test_layerwise_first_dropout_stage_matches_jensen_gap():
    net = small_net(depth=2, width=3)
    x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    avg = layerwise_jensen_gap(net, x, method="exact")
    h1 = torch.tanh(net[0](x))[0]
    expected = jensen_gap(torch.tanh, net[3].weight.detach(), h1.detach(), 0.5, bias=net[3].bias.detach())
    assert torch.allclose(avg.ensemble[3][0], expected.ensemble_mean)
    assert torch.allclose(avg.weight_scaled[3][0], expected.weight_scaled)


def test_layerwise_restores_modes_and_changes_no_parameter():
    net = small_net().train()
    net[1].eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    layerwise_jensen_gap(net, x, method="mc", n_samples=10, generator=gen(0))
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_layerwise_rejects_bad_input():
    x = torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="nn.Sequential"):
        layerwise_jensen_gap(nn.Linear(2, 2), x)
    with pytest.raises(ValueError, match="no dropout layer"):
        layerwise_jensen_gap(nn.Sequential(nn.Linear(2, 2).double()), x)
    with pytest.raises(TypeError, match="element-wise"):
        layerwise_jensen_gap(nn.Sequential(nn.Dropout2d(0.5)), x)
    with pytest.raises(ValueError, match="at most N = 20"):
        layerwise_jensen_gap(small_net(width=8), x, method="exact")
    with pytest.raises(ValueError, match="method must be"):
        layerwise_jensen_gap(small_net(), x, method="delta")
    with pytest.raises(ValueError, match="batch"):
        layerwise_jensen_gap(small_net(), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        layerwise_jensen_gap(small_net(), torch.zeros(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        layerwise_jensen_gap(small_net(p=1.0), x)


@pytest.mark.parametrize("name, sympy_f", [
    ("tanh", sp.tanh), ("sigmoid", lambda u: 1 / (1 + sp.exp(-u))), ("square", lambda u: u**2),
])
def test_library_delta_method_is_the_derived_approximation(name, sympy_f):
    dec = derivations.delta_method_gap(1)
    lib = jensen_gap(name, W, X, 0.3, method="delta", bias=0.2)
    derived = dec.approximation(sympy_f).subs({dec.mu: lib.mean.item(), dec.var: lib.variance.item()})
    assert lib.gap.item() == pytest.approx(float(derived), rel=1e-9)
    s2 = float(((W * X) ** 2).sum())
    assert lib.variance.item() == pytest.approx(0.3 / 0.7 * s2, rel=1e-12)  # derived: p/(1-p) sum (w x)^2


# --- Gaussian moment matching (method="gaussian") and the sign of the gap in depth ---

@pytest.mark.parametrize("bias", [-1.0, 0.0, 0.7])
def test_gaussian_method_relu_is_the_derived_closed_form(bias):
    derived = derivations.gaussian_relu_mean()
    closed = sp.lambdify((derived.mu, derived.sigma), derived.mean)
    r = jensen_gap("relu", W, X, 0.3, bias=bias, method="gaussian")
    assert r.n == 0 and r.stderr.item() == 0
    expected = closed(r.mean.item(), r.variance.sqrt().item())
    assert abs(r.ensemble_mean.item() - expected) < 1e-12
    assert abs(r.gap.item() - (expected - max(r.mean.item(), 0.0))) < 1e-12


def test_gaussian_method_uses_the_closed_form_for_every_spelling_of_relu():
    reference = jensen_gap("relu", W, X, 0.3, bias=-0.4, method="gaussian").ensemble_mean.item()
    for f in (torch.relu, torch.nn.functional.relu, nn.ReLU()):
        assert jensen_gap(f, W, X, 0.3, bias=-0.4, method="gaussian").ensemble_mean.item() == reference
    # a ReLU the library cannot recognise goes through quadrature, which is close but not exact at the kink
    hermite = jensen_gap(lambda z: z.clamp(min=0), W, X, 0.3, bias=-0.4, method="gaussian").ensemble_mean.item()
    assert hermite != reference and abs(hermite - reference) < 0.05 * abs(reference)  # 1.4% here
    for dtype in (torch.float16, torch.bfloat16):  # half precision runs and keeps its dtype
        r = jensen_gap("relu", W.to(dtype), X.to(dtype), 0.3, bias=-0.4, method="gaussian")
        assert r.ensemble_mean.dtype == dtype and abs(r.ensemble_mean.item() - reference) < 0.02 * abs(reference) + 0.02


def test_gaussian_method_agrees_with_monte_carlo_of_a_normal_preactivation():
    # Gauss-Hermite quadrature for tanh against sampling z ~ N(mu, Var[z]) directly
    r = jensen_gap("tanh", W, X, 0.4, bias=0.2, method="gaussian")
    z = r.mean + r.variance.sqrt() * torch.randn(400_000, generator=gen(21), dtype=torch.float64)
    est = db.estimate_mean(torch.tanh(z))
    check_agrees_and_rejects(est, r.ensemble_mean.item(), {
        "the weight-scaled output tanh(mu)": r.weight_scaled.item(),
        "the delta method": jensen_gap("tanh", W, X, 0.4, bias=0.2, method="delta").ensemble_mean.item(),
    })


def test_gaussian_method_is_exact_for_the_square_and_for_no_dropout():
    r = jensen_gap("square", W, X, 0.3, method="gaussian")
    assert abs(r.gap.item() - r.variance.item()) < 1e-10
    for f in ("relu", "tanh"):
        none = jensen_gap(f, W, X, 0.0, bias=0.1, method="gaussian")
        assert none.gap.abs().item() < 1e-12


def test_gaussian_method_improves_with_many_small_inputs():
    # the Gaussian assumption needs many small contributions: the error shrinks as N grows
    errors = []
    for n in (1, 4, 16):
        w = torch.full((n,), 1.0 / math.sqrt(n), dtype=torch.float64)
        x = torch.ones(n, dtype=torch.float64)
        bias = 0.1 - math.sqrt(n)  # mu = 0.1 and Var[z] = 1 for every n
        exact = jensen_gap("relu", w, x, 0.5, bias=bias).gap.item()
        gauss = jensen_gap("relu", w, x, 0.5, bias=bias, method="gaussian").gap.item()
        errors.append(abs(gauss - exact) / exact)
    assert errors[0] > errors[1] > errors[2], errors


def _relu_net_with_two_dropout_layers(seed: int, p: float) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(p), nn.Linear(4, 4), nn.ReLU(),
                         nn.Dropout(p), nn.Linear(4, 3), nn.ReLU()).double()


def test_exact_layerwise_gap_matches_a_direct_enumeration_of_two_dropout_layers():
    import itertools

    net = _relu_net_with_two_dropout_layers(5, 0.4)
    x = torch.randn(2, 3, generator=gen(4), dtype=torch.float64)
    avg = layerwise_jensen_gap(net, x, method="exact")
    l1, _, _, l2, _, _, l3, _ = net
    total = torch.zeros(2, 3, dtype=torch.float64)
    with torch.no_grad():
        for bits in itertools.product((0.0, 1.0), repeat=8):
            m = torch.tensor(bits, dtype=torch.float64)
            prob = (m * 0.6 + (1 - m) * 0.4).prod()
            h = torch.relu(l1(x)) * m[:4] / 0.6
            h = torch.relu(l2(h)) * m[4:] / 0.6
            total += prob * torch.relu(l3(h))
    assert torch.allclose(avg.ensemble[-1], total, atol=1e-12, rtol=0)


def test_the_gap_is_non_negative_only_at_the_first_relu_after_dropout():
    first, second = [], []
    for seed in range(40):
        net = _relu_net_with_two_dropout_layers(seed, 0.5)
        x = torch.randn(4, 3, generator=gen(100 + seed), dtype=torch.float64)
        gaps = dict(zip(*[layerwise_jensen_gap(net, x, method="exact").names,
                          layerwise_jensen_gap(net, x, method="exact").gaps()]))
        first.append(gaps["4: ReLU"].flatten())
        second.append(gaps["7: ReLU"].flatten())
    first, second = torch.cat(first), torch.cat(second)
    assert first.min().item() > -1e-12  # Jensen: its input is linear in the masks
    assert (second < -1e-3).sum().item() >= 5  # from the second dropped layer on: no fixed sign
    assert (second > 1e-3).sum().item() >= 5
