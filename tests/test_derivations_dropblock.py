"""Symbolic layer of chapter 7 (DropBlock): what dropoutbook.derivations derives equals what the
chapter states, and plausible wrong closed forms are told apart.

The closed forms typed here are the chapter's stated formulas; the library derives them.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import dropoutbook as db
from dropoutbook import derivations as d
from helpers import same

p, gamma, c = d.drop_rate, d.seed_rate_symbol, d.coverage_symbol
H, W, b = sp.symbols("H W b", positive=True, integer=True)

STATED_COVERAGE_PROBABILITY = 1 - (1 - gamma) ** c
STATED_PAPER_GAMMA = p / b**2 * H * W / ((H - b + 1) * (W - b + 1))
STATED_PADDED_GAMMA = 1 - (1 - p) ** (1 / b**2)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_coverage_probability(n):
    derived = d.block_coverage_probability(n)
    assert same(derived.general, STATED_COVERAGE_PROBABILITY)
    # the explicit expectation over all seed values agrees with the general form at c = n
    assert same(derived.explicit, STATED_COVERAGE_PROBABILITY.subs(c, n))
    # plausible wrong forms: c*gamma (no overlaps), 1 - (1 - gamma*c), gamma^c
    for wrong in (c * gamma, gamma**c, (1 - gamma) ** c):
        assert not same(derived.general, wrong)
    if n > 1:
        assert not same(derived.explicit, n * gamma)


def test_coverage_probability_is_the_enumerated_expectation():
    derived = d.block_coverage_probability(3)
    dists = {s: d.Bernoulli(gamma) for s in derived.seeds}
    assert same(d.expectation(derived.dropped, dists, method="enumerate"), derived.explicit)


def stated_fraction(height, width, block):
    counts = db.coverage_counts(height, width, block).tolist()
    return sum(STATED_COVERAGE_PROBABILITY.subs(c, k) for row in counts for k in row) / (height * width)


@pytest.mark.parametrize("height, width, block", [(4, 6, 3), (4, 5, 3), (3, 3, 3), (5, 4, 5)])
def test_drop_fraction_of_a_small_map(height, width, block):
    derived = d.block_drop_fraction_exact(height, width, block)
    assert np.array_equal(np.array(derived.counts.tolist(), dtype=np.int64),
                          db.coverage_counts(height, width, block).numpy())
    assert same(derived.fraction, sp.expand(stated_fraction(height, width, block)))
    mean_count = sp.Rational(sum(sum(r) for r in derived.counts.tolist()), height * width)
    assert same(derived.slope_at_zero, mean_count)
    # the library's numerical D(gamma) is this polynomial
    assert float(derived.fraction.subs(gamma, 0.137)) == pytest.approx(
        db.block_drop_fraction(0.137, height, width, block), rel=1e-12)


def test_drop_fraction_rejects_the_first_order_formula():
    derived = d.block_drop_fraction_exact(4, 5, 3)
    assert not same(derived.fraction, derived.slope_at_zero * gamma)
    # second-order term: -gamma^2/2 * mean(c (c - 1)) (the overlap the paper's rate ignores)
    counts = [k for row in derived.counts.tolist() for k in row]
    assert same(derived.curvature_at_zero, -sp.Rational(sum(k * (k - 1) for k in counts), 20))


def test_paper_seed_rate_derivation():
    derived = d.paper_seed_rate_derivation()
    assert same(derived.gamma, STATED_PAPER_GAMMA)
    assert same(derived.newton_first_step, STATED_PAPER_GAMMA)
    assert same(derived.centres, (H - b + 1) * (W - b + 1))
    assert same(derived.total_coverage, b**2 * (H - b + 1) * (W - b + 1))
    assert same(derived.first_order_probability, c * gamma)
    # the commonly quoted p/b^2 and a version without the border correction are told apart
    for wrong in (p / b**2, p / b**2 * H * W / ((H - b) * (W - b)), p * H * W / ((H - b + 1) * (W - b + 1))):
        assert not same(derived.gamma, wrong)
    # and the library's number is this formula
    value = float(derived.gamma.subs({p: 0.1, H: 28, W: 20, b: 7}))
    assert value == pytest.approx(db.paper_seed_rate(0.1, 28, 20, 7), rel=1e-12)


def test_padded_seed_rate():
    derived = d.padded_seed_rate()
    assert same(derived, STATED_PADDED_GAMMA)
    for wrong in (p / b**2, 1 - (1 - p) ** (b**2), (1 - p) ** (1 / b**2)):
        assert not same(derived, wrong)


@pytest.mark.parametrize("height, width, block", [(3, 4, 3), (5, 5, 3), (6, 4, 3), (4, 4, 1), (5, 7, 5)])
def test_position_keep_probability_from_the_seed_layout(height, width, block):
    derived = d.position_scale_exact(height, width, block)
    counts = db.coverage_counts(height, width, block).tolist()
    assert derived.enumerated  # small maps: also averaged over every pattern of the covering seeds
    assert np.array_equal(np.array(derived.counts.tolist(), dtype=np.int64), np.array(counts))
    for i in range(height):
        for j in range(width):
            assert same(derived.keep[i, j], (1 - gamma) ** counts[i][j])
            if counts[i][j] > 1:  # the first-order keep probability is a plausible wrong form
                assert not same(derived.keep[i, j], 1 - counts[i][j] * gamma)
            assert same(derived.position_scale[i, j], 1)
    # the mean keep probability is 1 - D(gamma), with D summed over every seed pattern of the map
    assert same(derived.kept_fraction, 1 - d.block_drop_fraction_exact(height, width, block).fraction)


def test_position_scale_is_biased_per_position_but_not_on_average():
    # 14 x 14, b = 7, p = 0.1: 64 seeds, too many to enumerate the map; the product form is used
    derived = d.position_scale_exact(14, 14, 7)
    assert not derived.enumerated
    g = db.seed_rate(0.1, 14, 14, 7)
    scale = np.array(derived.numeric(g))
    assert scale.mean() == pytest.approx(1.0, abs=1e-12)  # exact on average over the map
    assert round(scale[7, 7], 3) == 0.797 and round(scale[0, 0], 3) == 1.104
    kappa = db.position_keep_probability(0.1, 14, 14, 7).numpy()
    np.testing.assert_allclose(scale, kappa / 0.9, rtol=1e-12)
    np.testing.assert_allclose(np.array(derived.numeric(g, "keep")), kappa, rtol=1e-12)
    # a uniform factor 1 is the plausible wrong belief, off by a fifth in the middle
    assert abs(scale[7, 7] - 1) > 0.2 and abs(scale[0, 0] - 1) > 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="64 x 64 or fewer"):
        d.position_scale_exact(65, 64, 3)
    with pytest.raises(ValueError, match="block_size must be an odd"):
        d.position_scale_exact(5, 5, 2)
    with pytest.raises(ValueError, match="c must be a positive int"):
        d.block_coverage_probability(0)
    with pytest.raises(ValueError, match=r"block_size must be an odd positive int \(a block is centred on its seed\), got 2"):
        d.block_drop_fraction_exact(5, 5, 2)
    with pytest.raises(ValueError, match="40 or fewer"):
        d.block_drop_fraction_exact(12, 12, 3)
