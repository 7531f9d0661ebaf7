r"""Chapter 7, "DropBlock": derivations.

Seeds :math:`s_k \sim \mathrm{Bernoulli}(\gamma)` are drawn on the positions where a block fits;
a position is dropped when some seed whose block covers it is 1. From this definition sympy
derives the probability that a position is dropped, the expected dropped fraction of a small map
(summing over every seed pattern), the paper's seed rate as the solution of the first-order
equation, and the seed rate of the variant whose seeds may lie off the map.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, drop_rate, expectation

__all__ = [
    "seed_rate_symbol", "coverage_symbol",
    "CoverageProbability", "block_coverage_probability",
    "DropFraction", "block_drop_fraction_exact",
    "PaperSeedRate", "paper_seed_rate_derivation",
    "padded_seed_rate",
]

#: The seed rate :math:`\gamma` (chapter 7).
seed_rate_symbol = sp.Symbol("gamma", positive=True)
#: The coverage count :math:`c` of a position, the number of seeds whose blocks cover it (chapter 7).
coverage_symbol = sp.Symbol("c", positive=True, integer=True)


@dataclass(frozen=True)
class CoverageProbability:
    """Probability that a position covered by ``c`` seeds is dropped, derived two ways."""

    c: int
    seeds: tuple  #: the seed symbols s_1..s_c of the explicit case
    dropped: sp.Expr  #: the dropped indicator 1 - prod(1 - s_k), in the seed symbols
    explicit: sp.Expr  #: its expectation for the given c, by :func:`expectation`
    general: sp.Expr  #: the same for a symbolic count c, as a product of per-seed expectations

    def identities(self) -> list[Identity]:
        return [Identity(r"P(\text{position dropped})", self.general, "P(dropped)")]


@functools.lru_cache(maxsize=None)
def block_coverage_probability(c: int = 3) -> CoverageProbability:
    r"""Derive :math:`P(\text{dropped}) = 1 - (1-\gamma)^c` for a position covered by :math:`c` seeds.

    The position is kept exactly when every covering seed is 0, so the dropped indicator is
    :math:`1 - \prod_{k=1}^{c} (1 - s_k)` with independent :math:`s_k \sim \mathrm{Bernoulli}(\gamma)`.
    For the given small ``c`` the expectation is computed by :func:`expectation` over all seeds;
    for a symbolic :math:`c`, by independence, as the product of the :math:`c` per-seed
    expectations :math:`\mathbb E[1 - s_k]` (sympy evaluates the product). Chapter 7,
    section "Derivation"; :cite:`ghiasi2018dropblock`.

    Args:
        c: a positive int, the number of seeds of the explicit case.

    Examples:
        >>> block_coverage_probability(2).general
        1 - (1 - gamma)**c
    """
    c = check_int(c, "c", minimum=1)
    gamma = seed_rate_symbol
    seeds = sp.symbols(f"s1:{c + 1}")
    dropped = 1 - sp.Mul(*[1 - s for s in seeds])
    explicit = sp.factor(expectation(dropped, {s: Bernoulli(gamma) for s in seeds}))
    s, k = sp.Symbol("s"), sp.Symbol("k", integer=True, positive=True)
    kept_one = expectation(1 - s, {s: Bernoulli(gamma)})  # E[1 - s_k] for one seed
    general = 1 - sp.Product(kept_one, (k, 1, coverage_symbol)).doit()
    return CoverageProbability(c, seeds, dropped, explicit, general)


@dataclass(frozen=True)
class DropFraction:
    """Expected dropped fraction of an explicit small map, derived by summing over seed patterns."""

    height: int
    width: int
    block_size: int
    counts: sp.Matrix  #: coverage counts c(i, j), counted from the seed layout
    fraction: sp.Expr  #: E[dropped positions] / (H W), a polynomial in gamma
    slope_at_zero: sp.Expr  #: dD/dgamma at gamma = 0 (the mean coverage count)
    curvature_at_zero: sp.Expr  #: d2D/dgamma2 at gamma = 0

    def identities(self) -> list[Identity]:
        return [Identity(r"D(\gamma)", self.fraction, "D(gamma)")]


@functools.lru_cache(maxsize=None)
def block_drop_fraction_exact(height: int, width: int, block_size: int) -> DropFraction:
    r"""Derive the expected dropped fraction :math:`D(\gamma)` of an :math:`H \times W` map.

    One Bernoulli(:math:`\gamma`) seed symbol per position where a :math:`b \times b` block fits
    (block clipped to the map); position :math:`(i, j)` is dropped when a seed whose block covers
    it is 1. The dropped fraction :math:`\frac{1}{HW}\sum_{ij} [1 - \prod_{k \ni (i,j)} (1 - s_k)]`
    is averaged over all seed patterns by :func:`expectation`. The coverage counts are counted
    from the same layout. Keep the map small (a few dozen seeds at most). Chapter 7, section
    "Derivation"; :cite:`ghiasi2018dropblock`.

    Args:
        height, width: map size, positive ints.
        block_size: odd positive int.

    Examples:
        >>> block_drop_fraction_exact(3, 3, 3).fraction
        gamma
    """
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    block_size = check_int(block_size, "block_size", minimum=1, odd=True, why="a block is centred on its seed")
    bh, bw = min(block_size, height), min(block_size, width)
    corners = [(a, b) for a in range(height - bh + 1) for b in range(width - bw + 1)]
    if len(corners) > 40:
        raise ValueError(f"the map has {len(corners)} seed positions; keep it at 40 or fewer")
    gamma = seed_rate_symbol
    seeds = {corner: sp.Symbol(f"s_{corner[0]}_{corner[1]}") for corner in corners}
    covering = {(i, j): [seeds[(a, b)] for (a, b) in corners if a <= i < a + bh and b <= j < b + bw]
                for i in range(height) for j in range(width)}
    dropped = sum(1 - sp.Mul(*[1 - s for s in ss]) for ss in covering.values())
    fraction = sp.expand(expectation(dropped, {s: Bernoulli(gamma) for s in seeds.values()})
                         / (height * width))
    counts = sp.Matrix(height, width, lambda i, j: len(covering[(i, j)]))
    return DropFraction(height, width, block_size, counts, fraction,
                        sp.diff(fraction, gamma).subs(gamma, 0),
                        sp.diff(fraction, gamma, 2).subs(gamma, 0))


@dataclass(frozen=True)
class PaperSeedRate:
    r"""The paper's seed rate, derived as the solution of the first-order equation."""

    centres: sp.Expr  #: number of seed positions, (H - b + 1)(W - b + 1)
    total_coverage: sp.Expr  #: sum of c(i, j) over the map, by double counting
    first_order_probability: sp.Expr  #: P(dropped) to first order in gamma: c gamma
    gamma: sp.Expr  #: solution of mean(c) gamma = p
    newton_first_step: sp.Expr  #: first Newton step from gamma = 0 of D(gamma) = p

    def identities(self) -> list[Identity]:
        return [Identity(r"\gamma_{\text{paper}}", self.gamma, "gamma_paper")]


@functools.lru_cache(maxsize=None)
def paper_seed_rate_derivation() -> PaperSeedRate:
    r"""Derive :math:`\gamma_{\text{paper}} = \frac{p}{b^2}\frac{HW}{(H-b+1)(W-b+1)}` of Ghiasi et al.

    Steps, each computed by sympy: the number of seed positions (a sum over block corners); the
    total coverage :math:`\sum_{ij} c(i,j)`, counted seed by seed (each seed covers :math:`b^2`
    positions: a double sum over its block); the first-order term of
    :math:`1 - (1-\gamma)^c` (series at :math:`\gamma = 0`, from
    :func:`block_coverage_probability`); then :math:`\gamma` solving
    :math:`\frac{1}{HW}\sum_{ij} c(i,j)\,\gamma = p`. Also the first Newton step from
    :math:`\gamma_0 = 0` for the exact equation :math:`D(\gamma) = p`, which is the same number
    (:math:`D(0) = 0`, :math:`D'(0) = \overline c`). Chapter 7, section "Derivation";
    :cite:`ghiasi2018dropblock`.
    """
    p, gamma = drop_rate, seed_rate_symbol
    H, W, b = sp.symbols("H W b", positive=True, integer=True)
    a, e, i, j = sp.symbols("a e i j", integer=True)
    rows = sp.summation(1, (a, 0, H - b))  # block corners along the height
    cols = sp.summation(1, (e, 0, W - b))
    centres = rows * cols
    block_area = sp.summation(sp.summation(1, (i, a, a + b - 1)), (j, e, e + b - 1))
    total = centres * block_area  # every seed position contributes its block
    c = coverage_symbol
    general = block_coverage_probability(1).general
    first_order = sp.series(general, gamma, 0, 2).removeO()
    linear_fraction = sp.expand(first_order.subs(c, 1)) * total / (H * W)  # sum_ij c_ij gamma / HW
    solution = sp.solve(sp.Eq(linear_fraction, p), gamma)
    if len(solution) != 1:
        raise RuntimeError(f"expected one solution, got {solution}")
    # Newton from 0: gamma_1 = (p - D(0)) / D'(0) with D'(0) = sum_ij c_ij / HW.
    slope = sp.diff(general, gamma).subs(gamma, 0)  # = c per position
    newton = (p - general.subs(gamma, 0)) / (slope.subs(c, 1) * total / (H * W))
    return PaperSeedRate(centres, total, first_order, sp.factor(solution[0], H), sp.factor(newton, H))


@functools.lru_cache(maxsize=None)
def padded_seed_rate() -> sp.Expr:
    r"""Seed rate of the variant whose seeds may lie off the map: :math:`1 - (1-p)^{1/b^2}`.

    If seeds are drawn on the map padded by :math:`(b-1)/2` on every side, every position is
    covered by exactly :math:`b^2` seeds, and :math:`1 - (1-\gamma)^{b^2} = p` (from
    :func:`block_coverage_probability`) is solved by sympy. Chapter 7, exercises.

    Examples:
        >>> padded_seed_rate()
        1 - (1 - p)**(b**(-2))
    """
    p, gamma = drop_rate, seed_rate_symbol
    b = sp.Symbol("b", positive=True, integer=True)
    general = block_coverage_probability(1).general.subs(coverage_symbol, b**2)
    solutions = sp.solve(sp.Eq(general, p), gamma)
    if len(solutions) != 1:
        raise RuntimeError(f"expected one solution, got {solutions}")
    return solutions[0]
