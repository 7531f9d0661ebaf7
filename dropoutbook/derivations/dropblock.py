r"""Chapter 7, "DropBlock": derivations.

Seeds :math:`s_k \sim \mathrm{Bernoulli}(\gamma)` are drawn on the positions where a block fits;
a position is dropped when some seed whose block covers it is 1. From this definition sympy
derives the probability that a position is dropped, the expected dropped fraction of a small map
(summing over every seed pattern), the keep probability and the expected output scale of every
position of a map, the paper's seed rate as the solution of the first-order equation, and the
seed rate of the variant whose seeds may lie off the map.
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
    "PositionScale", "position_scale_exact",
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


def _seed_layout(height: int, width: int, block_size: int):
    """Seed symbols at every block corner where a whole block fits, and for every position the
    seeds whose block covers it (the definition of the sampler, counted, not a formula)."""
    bh, bw = min(block_size, height), min(block_size, width)
    corners = [(a, b) for a in range(height - bh + 1) for b in range(width - bw + 1)]
    seeds = {corner: sp.Symbol(f"s_{corner[0]}_{corner[1]}") for corner in corners}
    covering = {(i, j): [seeds[(a, b)] for (a, b) in corners if a <= i < a + bh and b <= j < b + bw]
                for i in range(height) for j in range(width)}
    return seeds, covering


def _check_map(height, width, block_size) -> tuple[int, int, int]:
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    block_size = check_int(block_size, "block_size", minimum=1, odd=True, why="a block is centred on its seed")
    return height, width, block_size


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
    height, width, block_size = _check_map(height, width, block_size)
    seeds, covering = _seed_layout(height, width, block_size)
    if len(seeds) > 40:
        raise ValueError(f"the map has {len(seeds)} seed positions; keep it at 40 or fewer")
    gamma = seed_rate_symbol
    dropped = sum(1 - sp.Mul(*[1 - s for s in ss]) for ss in covering.values())
    fraction = sp.expand(expectation(dropped, {s: Bernoulli(gamma) for s in seeds.values()})
                         / (height * width))
    counts = sp.Matrix(height, width, lambda i, j: len(covering[(i, j)]))
    return DropFraction(height, width, block_size, counts, fraction,
                        sp.diff(fraction, gamma).subs(gamma, 0),
                        sp.diff(fraction, gamma, 2).subs(gamma, 0))


@dataclass(frozen=True)
class PositionScale:
    r"""Keep probability and expected output scale of every position of an :math:`H \times W` map."""

    height: int
    width: int
    block_size: int
    counts: sp.Matrix  #: c(i, j): seeds whose block covers (i, j), counted from the seed layout
    keep: sp.Matrix  #: P((i, j) kept) = E[prod_k (1 - s_k)], a polynomial in gamma per position
    enumerated: bool  #: True if ``keep`` was also computed by expanding over all covering seeds
    kept_fraction: sp.Expr  #: mean of ``keep`` over the map, 1 - D(gamma)
    expected_scale: sp.Matrix  #: E[m_ij / (1 - D)] = keep / (1 - D): the output factor of 1/(1 - p)
    position_scale: sp.Matrix  #: E[m_ij / keep_ij]: the output factor of the per-position rescaling

    def identities(self) -> list[Identity]:
        i, j = self.height // 2, self.width // 2
        return [Identity(rf"P(({i}, {j}) \text{{ kept}})", self.keep[i, j], f"P(({i}, {j}) kept)"),
                Identity(rf"\mathbb E[\tilde x_{{{i}{j}}}] / x_{{{i}{j}}}", self.expected_scale[i, j],
                         f"E[out({i}, {j})]/x")]

    def numeric(self, gamma: float, which: str = "expected_scale"):
        """The matrix ``which`` (``keep``, ``expected_scale`` or ``position_scale``) at a number gamma, as floats."""
        matrix = getattr(self, which)
        return [[float(matrix[r, c].subs(seed_rate_symbol, gamma)) for c in range(self.width)]
                for r in range(self.height)]


@functools.lru_cache(maxsize=None)
def position_scale_exact(height: int, width: int, block_size: int) -> PositionScale:
    r"""Derive, position by position, :math:`P(\text{kept})` and the expected output scale of DropBlock.

    From the definition of the sampler: a position is kept exactly when no seed whose block covers
    it is drawn, i.e. no seed lies in the :math:`b \times b` window around it, clipped where the
    window leaves the region of seeds. Its keep indicator is :math:`\prod_{k \ni (i,j)} (1 - s_k)`
    over those seeds (counted from the layout). The expectation is the product of the per-seed
    expectations :math:`\mathbb E[1 - s_k]` (independence; each one computed by
    :func:`expectation`); where a position has at most 9 covering seeds the whole product is also
    expanded and averaged over every seed pattern, and the two must agree. Then the expected output
    factor :math:`\mathbb E[m_{ij}]/(1 - D(\gamma))` of the rescaling by the map's kept fraction,
    and :math:`\mathbb E[m_{ij}]/P(\text{kept})` of the per-position rescaling. Chapter 7, section
    "Rescaling, position by position"; :cite:`ghiasi2018dropblock`.

    Args:
        height, width: map size, positive ints (at most 64 x 64).
        block_size: odd positive int.

    Examples:
        >>> position_scale_exact(3, 4, 3).keep
        Matrix([
        [1 - gamma, (1 - gamma)**2, (1 - gamma)**2, 1 - gamma],
        [1 - gamma, (1 - gamma)**2, (1 - gamma)**2, 1 - gamma],
        [1 - gamma, (1 - gamma)**2, (1 - gamma)**2, 1 - gamma]])
    """
    height, width, block_size = _check_map(height, width, block_size)
    if height * width > 64 * 64:
        raise ValueError(f"the map has {height * width} positions; keep it at 64 x 64 or fewer")
    gamma = seed_rate_symbol
    seeds, covering = _seed_layout(height, width, block_size)
    s = sp.Symbol("s")
    kept_one = expectation(1 - s, {s: Bernoulli(gamma)})  # E[1 - s_k] of one seed
    keep = sp.Matrix(height, width, lambda i, j: kept_one ** len(covering[(i, j)]))
    enumerated = all(len(ss) <= 9 for ss in covering.values())
    if enumerated:
        for (i, j), ss in covering.items():
            full = expectation(sp.Mul(*[1 - t for t in ss]), {t: Bernoulli(gamma) for t in ss})
            if sp.expand(full - keep[i, j]) != 0:
                raise RuntimeError(f"the expanded expectation at {(i, j)} differs from the product")
    kept_fraction = sum(keep) / (height * width)
    counts = sp.Matrix(height, width, lambda i, j: len(covering[(i, j)]))
    expected_scale = keep / kept_fraction
    position_scale = sp.Matrix(height, width, lambda i, j: sp.cancel(keep[i, j] / keep[i, j]))
    return PositionScale(height, width, block_size, counts, keep, enumerated, kept_fraction,
                         expected_scale, position_scale)


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
