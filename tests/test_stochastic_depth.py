"""Chapter 8, "Stochastic depth": the library (dropoutbook.stochastic_depth) and its Monte-Carlo checks.

Deterministic contract first (shapes, dtypes, per-sample structure, errors), then the statistical
layer: the samplers agree with the closed forms derived by dropoutbook.derivations (|z| <= Z) and
reject the plausible wrong formulas, above all the seed's mix-up of drop and survival
probabilities, by more than Z standard errors.
"""

from __future__ import annotations


import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dropoutbook import DropPath, StochasticDepth, depth_distribution, drop_path, residual_mlp, stochastic_depth_survival
from dropoutbook.derivations import block_index, n_blocks, residual_block_moments, sampled_depth, survival_last
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import check_agrees_and_rejects

SD = sampled_depth(3)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def huang_survival(L: int, p_L: float) -> list[float]:
    """The formula stated in the chapter, typed in here (the library must compute the same)."""
    return [1 - (l / L) * (1 - p_L) for l in range(1, L + 1)]


# --------------------------------------------------------------------------------------------
# the survival schedule


@pytest.mark.parametrize("L, p_L", [(1, 0.5), (4, 0.5), (54, 0.5), (12, 0.8), (7, 0.0), (5, 1.0)])
def test_survival_schedule_is_the_stated_formula(L, p_L):
    got = stochastic_depth_survival(L, p_L)
    assert len(got) == L
    assert got == pytest.approx(huang_survival(L, p_L), abs=1e-15)
    assert got[-1] == pytest.approx(p_L)
    assert all(a >= b for a, b in zip(got, got[1:]))  # decreasing with depth


def test_survival_schedule_matches_the_derived_expression():
    schedule = SD.schedule
    for L, p_L in [(4, sp.Rational(1, 2)), (10, sp.Rational(4, 5))]:
        derived = [float(schedule.subs({block_index: l, n_blocks: L, survival_last: p_L})) for l in range(1, L + 1)]
        assert stochastic_depth_survival(L, float(p_L)) == pytest.approx(derived, abs=1e-15)


def test_survival_schedule_is_not_the_seed_formula():
    # the seed's "drop probability (l/L) p_L" agrees with Huang et al. only when p_L = 1/2
    seed_survival = [1 - (l / 10) * 0.8 for l in range(1, 11)]
    assert stochastic_depth_survival(10, 0.8) != pytest.approx(seed_survival, abs=0.05)
    assert stochastic_depth_survival(10, 0.5) == pytest.approx([1 - (l / 10) * 0.5 for l in range(1, 11)])


@pytest.mark.parametrize("L, exc, match", [
    (0, ValueError, r"^L must be a positive int"),
    (-2, ValueError, r"^L must be a positive int"),
    (2.0, TypeError, r"^L must be a positive int"),
    (True, TypeError, r"^L must be a positive int"),
])
def test_survival_schedule_bad_L(L, exc, match):
    with pytest.raises(exc, match=match):
        stochastic_depth_survival(L, 0.5)


@pytest.mark.parametrize("p_L, exc, match", [
    (1.5, ValueError, r"^p_L must be in \[0, 1\]"),
    (-0.1, ValueError, r"^p_L must be in \[0, 1\]"),
    (float("nan"), ValueError, r"^p_L must be a number in \[0, 1\], got nan"),
    ("0.5", TypeError, r"^p_L must be a number"),
])
def test_survival_schedule_bad_p_L(p_L, exc, match):
    with pytest.raises(exc, match=match):
        stochastic_depth_survival(4, p_L)


# --------------------------------------------------------------------------------------------
# drop_path: deterministic contract

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@settings(max_examples=40)
@given(shape=shapes, p=st.floats(0.0, 0.95), seed=st.integers(0, 10_000),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]), inverted=st.booleans())
def test_drop_path_is_per_sample_and_keeps_dtype(shape, p, seed, dtype, inverted):
    g = gen(seed)
    x = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    before = x.clone()
    out = drop_path(x, p, inverted=inverted, generator=gen(seed + 1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(x, before)
    assert out.data_ptr() != x.data_ptr()
    scale = 1 / (1 - p) if inverted else 1.0
    for n in range(shape[0]):
        ratio = (out[n].double() / x[n].double()).flatten()
        kept = bool(ratio[0] != 0)
        expected = torch.full_like(ratio, scale if kept else 0.0)
        assert torch.allclose(ratio, expected, rtol=4 * torch.finfo(dtype).eps, atol=0), "one draw per sample"


def test_drop_path_test_time_rules():
    x = torch.randn(6, 3, generator=gen(0))
    assert torch.equal(drop_path(x, 0.3, training=False), x)
    assert torch.allclose(drop_path(x, 0.3, training=False, inverted=False), 0.7 * x)
    assert torch.equal(drop_path(x, 0.0), x)
    assert torch.equal(drop_path(x, 1.0), torch.zeros_like(x))
    assert drop_path(x, 0.3, training=False).data_ptr() != x.data_ptr()


def test_drop_path_reproducible_and_gradient():
    x = torch.ones(50, 4, dtype=torch.float64, requires_grad=True)
    a = drop_path(x, 0.4, generator=gen(3))
    b = drop_path(x, 0.4, generator=gen(3))
    assert torch.equal(a, b)
    a.sum().backward()
    per_sample = x.grad[:, 0]
    assert torch.equal(x.grad, per_sample[:, None].expand(50, 4))
    assert set(per_sample.tolist()) == {0.0, 1 / 0.6}


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=torch.ones(3), p=1.2), ValueError, r"^p must be in \[0, 1\]"),
    (dict(x=torch.ones(3), p=float("nan")), ValueError, r"^p must be a number in \[0, 1\], got nan"),
    (dict(x=torch.ones(3, dtype=torch.int64), p=0.2), TypeError, r"^x must have a floating dtype"),
    (dict(x=[1.0, 2.0], p=0.2), TypeError, r"^x must be a torch.Tensor"),
    (dict(x=torch.tensor(1.0), p=0.2), ValueError, r"^x must have a batch dimension"),
    (dict(x=torch.ones(3), p=0.2, generator=0), TypeError, r"^generator must be a torch.Generator"),
    (dict(x=torch.ones(3), p=0.2, inverted=1), TypeError, r"^inverted must be a bool"),
])
def test_drop_path_bad_input(kwargs, exc, match):
    x, p = kwargs.pop("x"), kwargs.pop("p")
    with pytest.raises(exc, match=match):
        drop_path(x, p, **kwargs)


def test_drop_path_module():
    layer = DropPath(0.25, generator=gen(0))
    assert "p=0.25" in repr(layer)
    y = layer(torch.ones(1000, 2, dtype=torch.float64))
    assert set(y.unique().tolist()) == {0.0, 4 / 3}
    assert torch.equal(layer.eval()(torch.ones(3, 2)), torch.ones(3, 2))
    assert torch.allclose(DropPath(0.25, inverted=False).eval()(torch.ones(3, 2)), torch.full((3, 2), 0.75))
    with pytest.raises(ValueError, match=r"^p must be in"):
        DropPath(2.0)
    with pytest.raises(TypeError, match=r"^inverted must be a bool"):
        DropPath(0.1, inverted="yes")


# --------------------------------------------------------------------------------------------
# StochasticDepth blocks and the residual MLP


class Counting(nn.Module):
    """A branch f(x) = 2x that counts how often it is computed."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2 * x


def test_stochastic_depth_block_batch_mode_skips_the_branch():
    branch = Counting()
    block = StochasticDepth(branch, 0.3, generator=gen(0))
    x = torch.ones(4, 2)
    outs = [block(x) for _ in range(2000)]
    skipped = sum(torch.equal(o, x) for o in outs)
    assert branch.calls + skipped == 2000  # a dropped branch is not computed
    for o in outs:  # survivors: x + f(x)/(1-p), the same for the whole batch
        assert torch.equal(o, x) or torch.allclose(o, x + 2 * x / 0.7)
    est = estimate_mean([float(torch.equal(o, x)) for o in outs])
    check_agrees_and_rejects(est, 0.3, wrong={"drop with the survival probability": 0.7})


def test_stochastic_depth_block_modes_and_test_time():
    x = torch.ones(6, 2)
    sample_branch = Counting()
    block = StochasticDepth(sample_branch, 0.5, mode="sample", generator=gen(1))
    for _ in range(10):
        block(x)
    assert sample_branch.calls == 10  # per-sample DropPath always computes the branch
    original = StochasticDepth(Counting(), 0.25, inverted=False).eval()
    assert torch.allclose(original(x), x + 0.75 * 2 * x)  # scaled by the survival probability
    inverted = StochasticDepth(Counting(), 0.25).eval()
    assert torch.allclose(inverted(x), 3 * x)
    assert "mode='sample'" in repr(block)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(branch=lambda x: x, p=0.1), TypeError, r"^branch must be a torch.nn.Module"),
    (dict(branch=nn.Identity(), p=0.1, mode="layer"), ValueError, r"^mode must be 'batch' or 'sample'"),
    (dict(branch=nn.Identity(), p=-0.1), ValueError, r"^p must be in \[0, 1\]"),
    (dict(branch=nn.Identity(), p=0.1, inverted=None), TypeError, r"^inverted must be a bool"),
])
def test_stochastic_depth_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        StochasticDepth(**kwargs)


def test_residual_mlp_follows_the_schedule():
    model = residual_mlp(64, 16, 6, 10, p_L=0.4)
    blocks = [m for m in model if isinstance(m, StochasticDepth)]
    assert [b.p for b in blocks] == pytest.approx([1 - s for s in huang_survival(6, 0.4)])
    assert all(b.mode == "batch" for b in blocks)
    assert model(torch.randn(3, 64)).shape == (3, 10)
    plain = residual_mlp(8, 4, 3, 2)
    assert all(m.p == 0.0 for m in plain if isinstance(m, StochasticDepth))
    with pytest.raises(ValueError, match=r"^width must be a positive int"):
        residual_mlp(8, 0, 3, 2)
    with pytest.raises(ValueError, match=r"^p_L must be in"):
        residual_mlp(8, 4, 3, 2, p_L=1.5)


# --------------------------------------------------------------------------------------------
# depth_distribution


def test_depth_distribution_equals_the_derived_generating_function():
    probs = [sp.Rational(9, 10), sp.Rational(3, 5), sp.Rational(1, 4)]
    subs = dict(zip(SD.survival, probs))
    derived = [float(term.subs(subs)) for term in SD.pmf]
    got = depth_distribution([float(s) for s in probs])
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx(derived, abs=1e-15)
    assert float(got.sum()) == pytest.approx(1.0)


def test_depth_distribution_moments_match_the_linear_closed_forms():
    for L, p_L in [(54, 0.5), (12, 0.8)]:
        pmf = depth_distribution(stochastic_depth_survival(L, p_L))
        k = torch.arange(L + 1, dtype=torch.float64)
        mean = float((k * pmf).sum())
        var = float((k**2 * pmf).sum()) - mean**2
        subs = {n_blocks: L, survival_last: sp.nsimplify(p_L)}
        assert mean == pytest.approx(float(SD.linear_mean.subs(subs)), rel=1e-12)
        assert var == pytest.approx(float(SD.linear_variance.subs(subs)), rel=1e-10)
    assert float(SD.linear_mean.subs({n_blocks: 54, survival_last: sp.Rational(1, 2)})) == 40.25


@pytest.mark.parametrize("survival, exc, match", [
    ([], ValueError, r"^survival must hold at least one"),
    ([0.5, 1.2], ValueError, r"^survival\[1\] must be in \[0, 1\]"),
    (0.5, TypeError, r"^survival must be a sequence"),
    (torch.ones(2, 2), ValueError, r"^survival must be one-dimensional"),
])
def test_depth_distribution_bad_input(survival, exc, match):
    with pytest.raises(exc, match=match):
        depth_distribution(survival)


# --------------------------------------------------------------------------------------------
# Monte Carlo: the samplers against the derived closed forms, with power against the mix-ups


@pytest.mark.parametrize("p_L", [0.2, 0.8])
def test_simulated_survival_per_block_follows_huang_not_the_seed(p_L):
    """Each block of residual_mlp is kept with probability p_l = 1 - (l/L)(1 - p_L): drop_path
    with the block's p, 200,000 samples per block. The seed's 'drop with (l/L) p_L' and the
    reversed reading 'survive with (l/L) p_L' are both rejected."""
    L, n = 4, 200_000
    blocks = [m for m in residual_mlp(4, 2, L, 2, p_L=p_L) if isinstance(m, StochasticDepth)]
    g = gen(int(p_L * 100))
    for l, block in enumerate(blocks, start=1):
        kept = drop_path(torch.ones(n, 1, dtype=torch.float64), block.p, generator=g)[:, 0] != 0
        est = estimate_mean(kept.double())
        truth = float(SD.schedule.subs({block_index: l, n_blocks: L, survival_last: sp.nsimplify(p_L)}))
        wrong = {"seed: dropped with (l/L) p_L": 1 - (l / L) * p_L, "survival (l/L) p_L": (l / L) * p_L}
        wrong = {name: w for name, w in wrong.items() if abs(w - truth) > 1e-9}  # equal at some l
        assert wrong
        check_agrees_and_rejects(est, truth, wrong=wrong)


def test_simulated_depth_moments_and_distribution():
    """D = number of surviving blocks of a 12-block network, 10**6 draws: mean, variance and
    P(D = k) agree with the derived forms; the seed's schedule (mean) and a binomial with the
    average survival probability (variance) are rejected."""
    L, p_L, n = 12, 0.8, 10**6
    survival = torch.tensor(stochastic_depth_survival(L, p_L), dtype=torch.float64)
    g = gen(12)
    depth = (torch.rand(n, L, generator=g, dtype=torch.float64) < survival).sum(1).double()
    subs = {n_blocks: L, survival_last: sp.Rational(4, 5)}
    mean, var = float(SD.linear_mean.subs(subs)), float(SD.linear_variance.subs(subs))
    seed_mean = sum(1 - (l / L) * p_L for l in range(1, L + 1))
    avg = float(survival.mean())
    check_agrees_and_rejects(estimate_mean(depth), mean, wrong={"seed schedule": seed_mean, "L p_L": L * p_L})
    check_agrees_and_rejects(estimate_variance(depth), var, wrong={"binomial(L, mean p_l)": L * avg * (1 - avg)})
    pmf = depth_distribution(survival)
    for k in range(L + 1):
        if pmf[k] > 1e-3:
            est = estimate_mean((depth == k).double())
            check_agrees_and_rejects(est, float(pmf[k]), wrong={})


@pytest.mark.parametrize("convention, inverted", [("original", False), ("inverted", True)])
def test_simulated_block_moments(convention, inverted):
    """y = x + b f (original) or x + b f / s (inverted), 10**6 samples through drop_path: the mean
    and variance agree with residual_block_moments; forgetting the scaling is rejected."""
    moments = residual_block_moments(convention)
    s_value, x_value, f_value, n = 0.75, 0.5, 2.0, 10**6
    f = torch.full((n, 1), f_value, dtype=torch.float64)
    y = (x_value + drop_path(f, 1 - s_value, inverted=inverted, generator=gen(5)))[:, 0]
    x, fs = sp.symbols("x f", real=True)
    subs = {moments.survival: sp.Rational(3, 4), x: sp.Rational(1, 2), fs: 2}
    wrong_mean = x_value + f_value * (s_value if inverted else 1)
    check_agrees_and_rejects(estimate_mean(y), float(moments.mean.subs(subs)), wrong={"other convention": wrong_mean})
    other = residual_block_moments("original" if inverted else "inverted")
    check_agrees_and_rejects(estimate_variance(y), float(moments.variance.subs(subs)),
                             wrong={"other convention": float(other.variance.subs(subs))})


def test_fraction_of_skipped_branches_in_batch_mode():
    """Over many training steps of an 8-block network with p_L = 1/2, the fraction of branch
    computations that are skipped is 1 - E[D]/L = (1 - p_L)(L + 1)/(2L); the naive guess
    (1 - p_L)/2 is rejected."""
    L, steps = 8, 2000
    branches = [Counting() for _ in range(L)]
    survival = stochastic_depth_survival(L, 0.5)
    blocks = [StochasticDepth(b, 1 - s, generator=gen(100 + i)) for i, (b, s) in enumerate(zip(branches, survival))]
    model = nn.Sequential(*blocks)
    x = torch.zeros(1, 1)
    for _ in range(steps):
        model(x)
    per_block = [1 - b.calls / steps for b in branches]
    skipped = torch.tensor([[1.0] * (steps - b.calls) + [0.0] * b.calls for b in branches]).flatten()
    est = estimate_mean(skipped)
    truth = float(SD.skipped_fraction.subs({n_blocks: L, survival_last: sp.Rational(1, 2)}))
    assert truth == pytest.approx(0.28125)
    assert len(per_block) == L
    check_agrees_and_rejects(est, truth, wrong={"(1 - p_L)/2": 0.25, "1 - p_L": 0.5})
