"""DropBlock (chapter 7): coverage counts, seed rates, the sampler's distribution, the module.

Monte-Carlo tests use fixed seeds, a tolerance of helpers.Z standard errors, and enough maps
that the plausible wrong seed rates (the paper's, p/b^2) are rejected: check_agrees_and_rejects
asserts that power.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dropoutbook as db
from dropoutbook.dropblock import DropBlock2d, LinearSchedule
from helpers import Z, check_agrees_and_rejects


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brute_force_counts(height: int, width: int, b: int) -> np.ndarray:
    """Coverage counts by enumerating every block that fits (block clipped to the map)."""
    bh, bw = min(b, height), min(b, width)
    counts = np.zeros((height, width), dtype=np.int64)
    for a in range(height - bh + 1):
        for e in range(width - bw + 1):
            counts[a:a + bh, e:e + bw] += 1
    return counts


def dropped_fractions(shape, p, b, seed):
    """Per-map dropped fractions of drop_block2d on a map of ones."""
    out = db.drop_block2d(torch.ones(shape), p, b, generator=gen(seed))
    return (out == 0).double().mean(dim=(-2, -1)).flatten()


# --------------------------------------------------------------------------------------------
# coverage counts and the seed rate


@settings(max_examples=40)
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 5, 7, 9]))
def test_coverage_counts_match_enumeration_and_stated_formula(height, width, b):
    counts = db.coverage_counts(height, width, b)
    assert counts.dtype == torch.int64 and counts.shape == (height, width)
    assert np.array_equal(counts.numpy(), brute_force_counts(height, width, b))
    bh, bw = min(b, height), min(b, width)

    def r(n, bb, i):  # the closed form stated in the chapter
        return min(i + 1, bb, n - bb + 1, n - i)

    stated = np.array([[r(height, bh, i) * r(width, bw, j) for j in range(width)] for i in range(height)])
    assert np.array_equal(counts.numpy(), stated)
    assert counts.sum().item() == bh * bw * (height - bh + 1) * (width - bw + 1)


def test_coverage_counts_reject_a_wrong_formula():
    # "every position is covered by b^2 seeds" (ignores the border) is told apart
    assert not torch.all(db.coverage_counts(14, 14, 7) == 49)
    assert db.coverage_counts(14, 14, 7)[0, 0].item() == 1


@pytest.mark.parametrize("p", [0.0, 1e-6, 0.05, 0.1, 0.3, 0.7, 0.99, 1.0])
@pytest.mark.parametrize("size", [(7, 7), (14, 14), (28, 28), (56, 56), (7, 20), (14, 9), (5, 30), (1, 1)])
def test_seed_rate_solves_the_drop_fraction_equation(p, size):
    g = db.seed_rate(p, *size, 7)
    assert 0.0 <= g <= 1.0
    assert db.block_drop_fraction(g, *size, 7) == pytest.approx(p, abs=1e-13)


@settings(max_examples=60)
@given(st.floats(0.0, 0.999), st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 5, 7]))
def test_seed_rate_property(p, height, width, b):
    g = db.seed_rate(p, height, width, b)
    assert db.block_drop_fraction(g, height, width, b) == pytest.approx(p, abs=1e-12)
    # D is concave with D(0) = 0, so the first-order (paper's) rate is never above the exact one
    assert db.paper_seed_rate(p, height, width, b) <= g * (1 + 1e-12) + 1e-300


def test_block_drop_fraction_is_the_mean_of_the_stated_probability():
    g = 0.013
    counts = db.coverage_counts(14, 9, 5).double()
    stated = (1 - (1 - g) ** counts).mean().item()
    assert db.block_drop_fraction(g, 14, 9, 5) == pytest.approx(stated, rel=1e-12)
    assert db.block_drop_fraction(0.0, 14, 9, 5) == 0.0
    assert db.block_drop_fraction(1.0, 14, 9, 5) == 1.0


def test_seed_rate_on_a_map_the_size_of_the_block_is_p():
    # one block position: the block is the whole map, dropped with probability gamma
    assert db.seed_rate(0.1, 7, 7, 7) == pytest.approx(0.1, abs=1e-15)
    assert db.paper_seed_rate(0.1, 7, 7, 7) == pytest.approx(0.1, abs=1e-15)


def test_paper_seed_rate_formula():
    p, H, W, b = 0.1, 28, 20, 7
    assert db.paper_seed_rate(p, H, W, b) == pytest.approx(p / b**2 * H * W / ((H - b + 1) * (W - b + 1)))
    # clipped block: 5 rows, 7 columns
    assert db.paper_seed_rate(0.2, 5, 30, 7) == pytest.approx(0.2 * 5 * 30 / (5 * 7 * 1 * 24))


@pytest.mark.parametrize("size", [14, 28, 56])
def test_paper_seed_rate_misses_p(size):
    # the deterministic fact behind the errata: D(gamma_paper) < p whenever blocks overlap
    achieved = db.block_drop_fraction(db.paper_seed_rate(0.1, size, size, 7), size, size, 7)
    assert 0.09 < achieved < 0.0955


# --------------------------------------------------------------------------------------------
# Monte Carlo: the achieved drop rate


@pytest.mark.parametrize("shape", [(1000, 7, 7), (20000, 14, 14), (8000, 28, 28), (2200, 56, 56),
                                   (11000, 14, 28), (14000, 21, 14), (3000, 5, 30)])
def test_achieved_drop_rate_equals_p(shape):
    p, b = 0.1, 7
    est = db.estimate_mean(dropped_fractions(shape, p, b, seed=sum(shape)))
    height, width = shape[1:]
    wrong = {"gamma = p/b^2": db.block_drop_fraction(p / b**2, height, width, b)}
    if min(height, width) > b:  # blocks overlap and the maps are large enough to resolve the paper's miss
        wrong["paper's gamma"] = db.block_drop_fraction(db.paper_seed_rate(p, height, width, b), height, width, b)
    check_agrees_and_rejects(est, p, wrong)


@pytest.mark.parametrize("size", [14, 28])
def test_paper_gamma_misses_p_by_more_than_the_monte_carlo_error(size):
    p, b, n = 0.1, 7, 20000 if size == 14 else 8000
    gamma = db.paper_seed_rate(p, size, size, b)
    keep = db.dropblock_mask((n, size, size), gamma, b, generator=gen(size))
    est = db.estimate_mean(1 - keep.double().mean(dim=(-2, -1)))
    # the simulation agrees with D(gamma_paper) and rejects p
    check_agrees_and_rejects(est, db.block_drop_fraction(gamma, size, size, b), {"target p": p})
    assert est.value < p - Z * est.stderr


def test_drop_probability_of_each_position():
    # P(dropped at (i, j)) = 1 - (1 - gamma)^c(i, j), position by position (corner, edge, centre)
    p, b, size, n = 0.2, 5, 9, 40000
    gamma = db.seed_rate(p, size, size, b)
    keep = db.dropblock_mask((n, size, size), gamma, b, generator=gen(3)).double()
    counts = db.coverage_counts(size, size, b)
    for i, j in [(0, 0), (0, 4), (2, 2), (4, 4), (1, 7)]:
        c = counts[i, j].item()
        est = db.estimate_mean(1 - keep[:, i, j])
        exact = 1 - (1 - gamma) ** c
        wrong = {}
        if abs(exact - p) > 0.02:  # positions whose rate differs visibly from the map's mean
            wrong["uniform p"] = p
        if gamma * c - exact > 0.01:  # positions covered by several seeds: overlaps matter
            wrong["gamma * c (no overlaps)"] = gamma * c
        check_agrees_and_rejects(est, exact, wrong)
    assert counts[0, 0] == 1 and counts[4, 4] == 25  # both kinds of position were tested


def test_expected_sum_of_a_constant_map_is_preserved():
    p, b, n = 0.15, 3, 20000
    out = db.drop_block2d(torch.full((n, 1, 8, 8), 2.0, dtype=torch.float64), p, b, generator=gen(4))
    est = db.estimate_mean(out.sum(dim=(-2, -1)))
    realised_gap = db.block_drop_fraction(db.paper_seed_rate(p, 8, 8, b), 8, 8, b)
    check_agrees_and_rejects(est, 2.0 * 64, {"no rescaling": 2.0 * 64 * (1 - p),
                                              "paper's gamma": 2.0 * 64 * (1 - realised_gap) / (1 - p)})


def test_expected_output_is_biased_per_position_with_one_over_one_minus_p():
    # E[out_ij] / x_ij = kappa_ij / (1 - p): below 1 in the middle, above 1 at the corner
    p, b, size, n = 0.1, 7, 14, 20000
    out = db.drop_block2d(torch.ones(n, 1, size, size, dtype=torch.float64), p, b, generator=gen(21))
    kappa = db.position_keep_probability(p, size, size, b)
    for i, j in [(7, 7), (0, 0), (1, 1), (0, 7), (7, 3)]:
        est = db.estimate_mean(out[:, 0, i, j])
        check_agrees_and_rejects(est, kappa[i, j].item() / (1 - p), {"unbiased": 1.0})


def test_position_normalization_is_unbiased_at_every_position():
    p, b, size, n = 0.1, 7, 14, 20000
    x = torch.full((n, 1, size, size), 2.0, dtype=torch.float64)
    out = db.drop_block2d(x, p, b, normalize="position", generator=gen(22))
    kappa = db.position_keep_probability(p, size, size, b)
    rejected = 0
    for i in range(size):
        for j in range(size):
            est = db.estimate_mean(out[:, 0, i, j])
            wrong = {}
            if abs(kappa[i, j].item() / (1 - p) - 1) > 0.05:  # where the map's scale is visibly biased
                wrong["divided by 1 - p"] = 2.0 * kappa[i, j].item() / (1 - p)
                rejected += 1
            check_agrees_and_rejects(est, 2.0, wrong)
    assert rejected > size * size // 2
    # survivors are divided by their own keep probability; blocks are still whole
    survivors = out[0, 0] != 0
    torch.testing.assert_close(out[0, 0][survivors], (2.0 / kappa)[survivors], rtol=1e-12, atol=0)


def test_position_normalization_in_the_module_and_its_gradient():
    layer = DropBlock2d(0.2, 3, normalize="position", generator=gen(5))
    assert "normalize='position'" in repr(layer)
    x = torch.ones(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    kappa = db.position_keep_probability(0.2, 8, 8, 3)
    assert torch.equal(x.grad, out.detach())  # d out / d x is the mask m_ij / kappa_ij
    assert set(torch.unique((out.detach() * kappa).round(decimals=12)).tolist()) <= {0.0, 1.0}
    assert torch.equal(layer.eval()(x), x)


def test_position_keep_probability_mean_is_one_minus_p():
    for size, b in [(14, 7), (9, 3), (5, 30 // 6)]:
        kappa = db.position_keep_probability(0.15, size, size, b)
        assert kappa.mean().item() == pytest.approx(0.85, abs=1e-12)
        counts = db.coverage_counts(size, size, b).double()
        torch.testing.assert_close(kappa, (1 - db.seed_rate(0.15, size, size, b)) ** counts, rtol=1e-12, atol=0)
    assert torch.equal(db.position_keep_probability(1.0, 4, 4, 3), torch.zeros(4, 4, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# drop_block2d: the deterministic contract


def test_survivors_are_scaled_by_one_over_one_minus_p_and_blocks_are_whole():
    x = torch.rand(4, 3, 12, 12, generator=gen(0), dtype=torch.float64) + 0.5
    out = db.drop_block2d(x, 0.3, 5, generator=gen(1))
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / 0.7, rtol=1e-12)
    # every dropped position lies in a fully dropped 5x5 block that fits in the map
    dropped = (~kept).double().reshape(-1, 1, 12, 12)
    full = torch.nn.functional.avg_pool2d(dropped, 5, stride=1) > 1 - 1e-9  # block corners fully dropped
    covered = torch.nn.functional.max_pool2d(torch.nn.functional.pad(full.double(), (4, 4, 4, 4)), 5, stride=1)
    assert torch.equal(covered.bool(), dropped.bool())


@settings(max_examples=25)
@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3, 5]), st.integers(0, 2**31 - 1))
def test_dropped_set_is_a_union_of_blocks(height, width, b, seed):
    keep = db.dropblock_mask((3, height, width), 0.3, b, generator=gen(seed), dtype=torch.float64)
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    bh, bw = min(b, height), min(b, width)
    dropped = (1 - keep).unsqueeze(1)
    full = torch.nn.functional.avg_pool2d(dropped, (bh, bw), stride=1) > 1 - 1e-9
    covered = torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(full.double(), (bw - 1, bw - 1, bh - 1, bh - 1)), (bh, bw), stride=1)
    assert torch.equal(covered.bool(), dropped.bool())


def test_block_larger_than_the_map_drops_whole_maps():
    out = db.drop_block2d(torch.ones(2000, 1, 4, 6), 0.25, 7, generator=gen(2))
    per_map = (out == 0).double().mean(dim=(-2, -1)).flatten()
    # clipped to 4 x 6 along each axis: one block position, the whole map
    assert set(per_map.tolist()) == {0.0, 1.0}
    assert abs(per_map.mean().item() - 0.25) < Z * math.sqrt(0.25 * 0.75 / 2000)


def test_masks_are_per_channel_and_per_sample():
    out = db.drop_block2d(torch.ones(2, 50, 14, 14), 0.3, 3, generator=gen(5))
    masks = (out == 0).reshape(100, -1)
    assert len({tuple(m.tolist()) for m in masks}) > 90


def test_reproducible_with_a_generator_and_input_unchanged():
    x = torch.randn(2, 3, 10, 10, generator=gen(0))
    before = x.clone()
    a = db.drop_block2d(x, 0.2, 3, generator=gen(7))
    b = db.drop_block2d(x, 0.2, 3, generator=gen(7))
    c = db.drop_block2d(x, 0.2, 3, generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_shape_and_three_dimensional_input(dtype):
    x = torch.ones(3, 9, 11, dtype=dtype)
    out = db.drop_block2d(x, 0.2, 3, generator=gen(0))
    assert out.dtype == dtype and out.shape == x.shape and out.device == x.device
    values = out.double().unique()
    assert values[0] == 0.0 and values[1:].tolist() == [pytest.approx(1 / 0.8, rel=1e-2)]


def test_gradient_is_the_scaled_mask():
    x = torch.rand(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    out = db.drop_block2d(x, 0.25, 3, generator=gen(3))
    out.sum().backward()
    mask = (out.detach() != 0).double() / 0.75
    assert torch.allclose(x.grad, mask)


def test_identity_cases_return_copies_and_p_one_gives_zeros():
    x = torch.randn(2, 3, 6, 6, generator=gen(0))
    for out in (db.drop_block2d(x, 0.4, 3, training=False), db.drop_block2d(x, 0.0, 3)):
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    assert torch.equal(db.drop_block2d(x, 1.0, 3), torch.zeros_like(x))
    empty = torch.ones(0, 3, 6, 6)
    assert db.drop_block2d(empty, 0.3, 3).shape == empty.shape


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(block_size=4), ValueError, r"^block_size must be an odd positive int \(a block is centred on its seed\), got 4$"),
    (dict(block_size=0), ValueError, r"block_size must be an odd positive int"),
    (dict(block_size=3.0), TypeError, r"block_size must be an odd positive int"),
    (dict(block_size=True), TypeError, r"block_size must be an odd positive int"),
    (dict(p=1.5), ValueError, r"p must be in \[0, 1\]"),
    (dict(p=float("nan")), ValueError, r"p must be a number"),
    (dict(p="0.1"), TypeError, r"p must be a number"),
    (dict(generator=1), TypeError, r"generator must be a torch.Generator"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(p=0.1, block_size=3)
    args.update(kwargs)
    generator = args.pop("generator", None)
    with pytest.raises(exc, match=match):
        db.drop_block2d(torch.ones(1, 1, 8, 8), args["p"], args["block_size"], generator=generator)


def test_bad_inputs():
    with pytest.raises(TypeError, match="floating dtype"):
        db.drop_block2d(torch.ones(1, 1, 8, 8, dtype=torch.int64), 0.1, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\) or \(C, H, W\)"):
        db.drop_block2d(torch.ones(8, 8), 0.1, 3)
    with pytest.raises(ValueError, match="height must be a positive int"):
        db.seed_rate(0.1, 0, 5, 3)
    with pytest.raises(ValueError, match="gamma must be in"):
        db.block_drop_fraction(-0.1, 5, 5, 3)
    with pytest.raises(ValueError, match="block_size must be an odd"):
        db.coverage_counts(5, 5, 2)
    with pytest.raises(ValueError, match="at least two dimensions"):
        db.dropblock_mask((5,), 0.1, 3)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        db.dropblock_mask((5, 5), 0.1, 3, dtype=torch.int32)


# --------------------------------------------------------------------------------------------
# the module and the schedule


def test_linear_schedule_values_and_errors():
    schedule = LinearSchedule(0.0, 0.2, steps=4)
    assert [schedule(t) for t in range(7)] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert LinearSchedule(0.3, 0.1, 2)(1) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        LinearSchedule(0.0, 0.1, 0)
    with pytest.raises(ValueError, match="end must be in"):
        LinearSchedule(0.0, 1.1, 10)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        schedule(-1)


def test_module_follows_the_schedule_in_training_only():
    schedule = LinearSchedule(0.0, 0.3, steps=3)
    layer = DropBlock2d(schedule, 3, generator=gen(0))
    x = torch.randn(2, 4, 9, 9, generator=gen(1))
    reference = gen(0)
    for t in range(5):
        out = layer(x)
        assert torch.equal(out, db.drop_block2d(x, schedule(t), 3, generator=reference))
        assert torch.equal(layer.eval()(x), x)  # evaluation does not advance the schedule
        layer.train()
    assert layer.step == 5 and layer.current_p == pytest.approx(0.3)
    assert "LinearSchedule" in repr(layer) and "block_size=3" in repr(layer)


def test_module_with_a_fixed_rate():
    layer = DropBlock2d(0.2, 5)
    assert layer.current_p == 0.2 and "p=0.2, block_size=5" in repr(layer)
    with pytest.raises(ValueError, match="block_size must be an odd"):
        DropBlock2d(0.2, 6)
    with pytest.raises(ValueError, match="p must be in"):
        DropBlock2d(-0.2, 3)


# --------------------------------------------------------------------------------------------
# neighbour_fill


def test_neighbour_fill():
    x = torch.arange(16.0).reshape(4, 4)
    keep = torch.ones(4, 4)
    keep[1, 1] = 0
    keep[3, 3] = 0
    filled, isolated = db.neighbour_fill(x, keep)
    assert filled[1, 1].item() == pytest.approx((0 + 1 + 2 + 4 + 6 + 8 + 9 + 10) / 8)
    assert filled[3, 3].item() == pytest.approx((10 + 11 + 14) / 3)
    assert torch.equal(filled[keep == 1], x[keep == 1]) and not isolated.any()
    keep = torch.ones(4, 4)
    keep[:3, :3] = 0
    filled, isolated = db.neighbour_fill(x, keep)
    assert isolated.sum().item() == 4 and filled[0, 0].item() == 0.0


def test_neighbour_fill_errors():
    with pytest.raises(ValueError, match="keep must have the shape of x"):
        db.neighbour_fill(torch.ones(3, 3), torch.ones(3, 4))
    with pytest.raises(ValueError, match="only 0/1"):
        db.neighbour_fill(torch.ones(3, 3), torch.full((3, 3), 0.5))
    with pytest.raises(TypeError, match="keep must be a torch.Tensor"):
        db.neighbour_fill(torch.ones(3, 3), [[1]])


def test_position_normalization_on_a_map_smaller_than_the_block():
    # a 3 x 10 map with b = 7: the block is clipped to 3 x 7, axis by axis, in the mask and in kappa alike
    p, b, n = 0.2, 7, 40000
    kappa = db.position_keep_probability(p, 3, 10, b)
    assert torch.equal(kappa[0], kappa[2]) and kappa[0, 0] > kappa[0, 4]  # the rows are alike, the columns are not
    out = db.drop_block2d(torch.full((n, 1, 3, 10), 2.0, dtype=torch.float64), p, b, normalize="position",
                          generator=gen(23))
    for j in range(10):
        est = db.estimate_mean(out[:, 0, 1, j])
        check_agrees_and_rejects(est, 2.0, {"divided by 1 - p": 2.0 * kappa[1, j].item() / (1 - p)})
