r"""Chapter 8, "Stochastic depth": derivations.

* :func:`residual_block_moments` -- mean and variance of one residual block :math:`x + b f`
  with a surviving branch, in the original form (test-time scaling by the survival
  probability) and the inverted form.
* :func:`linear_survival_schedule` -- the survival probability :math:`p_l`, solved from
  "linear in :math:`l`, 1 at the input, :math:`p_L` at the last block".
* :func:`sampled_depth` -- the number of surviving blocks :math:`D = \sum_l b_l`: its mean,
  variance and distribution (probability generating function) for survival probabilities
  :math:`s_1, \dots, s_L`, and, for the linear schedule, closed forms in :math:`L` and
  :math:`p_L`.

Huang et al. :cite:`huang2016deep` write :math:`p_l` for a *survival* probability; the book's
drop probability of block :math:`l` is :math:`1 - p_l`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .._validation import check_choice, check_int

from ._core import Bernoulli, Identity, expectation, tidy, variance

__all__ = [
    "survival_last", "block_index", "n_blocks",
    "ResidualBlockMoments", "residual_block_moments",
    "linear_survival_schedule",
    "SampledDepth", "sampled_depth",
]

#: Huang et al.'s survival probability :math:`p_L` of the last block.
survival_last = sp.Symbol("p_L", positive=True)
#: The index :math:`l` of a residual block.
block_index = sp.Symbol("l", positive=True, integer=True)
#: The number :math:`L` of residual blocks.
n_blocks = sp.Symbol("L", positive=True, integer=True)


@dataclass(frozen=True)
class ResidualBlockMoments:
    r"""Mean and variance of :math:`y = x + c\, b f` with :math:`b \sim \mathrm{Bernoulli}(s)`, and the test-time block."""

    convention: str
    survival: sp.Symbol
    definition: sp.Expr  #: the training-time block output, in the mask symbol
    mask: sp.Symbol
    mean: sp.Expr
    variance: sp.Expr
    test_time: sp.Expr  #: the deterministic test-time block whose output equals the training mean

    def identities(self) -> list[Identity]:
        s = self.survival
        return [
            Identity(r"\mathbb{E}[y]", tidy(self.mean, s), "E[y]"),
            Identity(r"\operatorname{Var}[y]", tidy(self.variance, s), "Var[y]"),
        ]


def residual_block_moments(convention: str = "original") -> ResidualBlockMoments:
    r"""Derive the mean and variance of a residual block with stochastic depth.

    The block is :math:`y = x + b f` (``"original"``, Huang et al.) or :math:`y = x + b f / s`
    (``"inverted"``), with :math:`b \sim \mathrm{Bernoulli}(s)` and :math:`s` the block's survival
    probability; :math:`x` and the branch output :math:`f` are fixed. The mean is computed by
    :func:`~dropoutbook.derivations.expectation`; the test-time block is the deterministic
    block :math:`x + c f` whose coefficient :math:`c` solves :math:`x + c f = \mathbb E[y]`
    (``sympy.solve``). It comes out as :math:`c = s` for the original form ("scale the branch by
    its survival probability at test time") and :math:`c = 1` for the inverted form.

    See chapter 8, "Stochastic depth", section "Derivation".

    Examples:
        >>> residual_block_moments("original").test_time
        f*s + x
    """
    convention = check_choice(convention, "convention", ("original", "inverted"))
    b, c = sp.Symbol("b"), sp.Symbol("c")
    s = sp.Symbol("s", positive=True)
    x, f = sp.symbols("x f", real=True)
    scale = sp.Integer(1) if convention == "original" else 1 / s
    block = x + b * f * scale
    dists = {b: Bernoulli(s)}
    mean = expectation(block, dists)
    (coefficient,) = sp.solve(sp.Eq(x + c * f, mean), c)
    return ResidualBlockMoments(convention, s, block, b, mean, variance(block, dists),
                                sp.expand(x + coefficient * f))


def linear_survival_schedule() -> sp.Expr:
    r"""Solve for the linear survival schedule :math:`p_l = a + c\,l` with :math:`p_0 = 1` and :math:`p_L` at block :math:`L`.

    The two conditions (the input always survives; the last block survives with probability
    :math:`p_L`) are solved for :math:`a` and :math:`c` by ``sympy.solve``; the result is
    :math:`p_l = 1 - \frac{l}{L}(1 - p_L)`, in the symbols
    :data:`~dropoutbook.derivations.stochastic_depth.block_index`,
    :data:`~dropoutbook.derivations.stochastic_depth.n_blocks` and
    :data:`~dropoutbook.derivations.stochastic_depth.survival_last`.

    See chapter 8, "Stochastic depth", section "Derivation"; :cite:`huang2016deep`.

    Examples:
        >>> linear_survival_schedule().subs({n_blocks: 4, block_index: 2, survival_last: sp.Rational(1, 2)})
        3/4
    """
    a, c = sp.symbols("a c")
    l, L, p_L = block_index, n_blocks, survival_last
    rule = a + c * l
    solution = sp.solve([sp.Eq(rule.subs(l, 0), 1), sp.Eq(rule.subs(l, L), p_L)], [a, c], dict=True)[0]
    return sp.simplify(rule.subs(solution))


@dataclass(frozen=True)
class SampledDepth:
    r"""The number of surviving blocks :math:`D = \sum_{l=1}^{L} b_l`, derived (see :func:`sampled_depth`)."""

    L: int
    survival: tuple  #: the symbols :math:`s_1, \dots, s_L`
    masks: tuple  #: the symbols :math:`b_1, \dots, b_L`
    mean: sp.Expr  #: :math:`\mathbb E[D]` for general survival probabilities
    variance: sp.Expr  #: :math:`\operatorname{Var}[D]`
    pgf_variable: sp.Symbol
    pgf: sp.Expr  #: :math:`\mathbb E[z^D]`
    pmf: tuple  #: :math:`P(D = k)`, :math:`k = 0, \dots, L`
    schedule: sp.Expr  #: :math:`p_l` of the linear schedule
    linear_mean: sp.Expr  #: :math:`\mathbb E[D]` for the linear schedule, any :math:`L`
    linear_variance: sp.Expr  #: :math:`\operatorname{Var}[D]` for the linear schedule, any :math:`L`
    skipped_fraction: sp.Expr  #: :math:`1 - \mathbb E[D]/L`, the expected fraction of branches not computed

    def identities(self) -> list[Identity]:
        """The derived mean, variance and generating function, for display (only the printed form is rearranged)."""
        by_block = sp.Add(*[tidy(sum(t for t in sp.Add.make_args(self.variance) if t.free_symbols == {s}), s)
                            for s in self.survival])
        assert sp.expand(by_block - self.variance) == 0
        return [
            Identity(r"\mathbb{E}[D]", self.mean, "E[D]"),
            Identity(r"\operatorname{Var}[D]", by_block, "Var[D]"),
            Identity(r"\mathbb{E}\left[z^{D}\right]", sp.factor(self.pgf), "E[z^D]"),
        ]

    def linear_identities(self) -> list[Identity]:
        """The linear schedule and its depth moments for any L, for display."""
        p_L, L = survival_last, n_blocks
        return [
            Identity(r"p_l", 1 - tidy(1 - self.schedule, p_L), "p_l"),
            Identity(r"\mathbb{E}[D]", L - tidy(L - self.linear_mean, p_L), "E[D]"),
            Identity(r"\operatorname{Var}[D]", tidy(self.linear_variance, survival_last), "Var[D]"),
            Identity(r"1 - \mathbb{E}[D]/L", tidy(self.skipped_fraction, survival_last), "1 - E[D]/L"),
        ]


@lru_cache(maxsize=None)
def _linear_schedule_depth() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    """The linear schedule and the mean, variance and skipped fraction of D for any L (cached)."""
    schedule = linear_survival_schedule()
    bl = sp.Symbol("b_l")
    one_block = {bl: Bernoulli(schedule)}
    l, Ls = block_index, n_blocks
    linear_mean = sp.simplify(sp.summation(expectation(bl, one_block), (l, 1, Ls)))
    linear_var = sp.simplify(sp.summation(sp.expand(variance(bl, one_block)), (l, 1, Ls)))
    return schedule, linear_mean, linear_var, sp.simplify(1 - linear_mean / Ls)


def sampled_depth(L: int = 3) -> SampledDepth:
    r"""Derive the distribution of the number of surviving blocks of a network with stochastic depth.

    Block :math:`l` survives when :math:`b_l = 1`, :math:`b_l \sim \mathrm{Bernoulli}(s_l)`
    independently; the sampled network has :math:`D = \sum_{l=1}^{L} b_l` residual blocks.

    * For ``L`` concrete blocks with symbolic survival probabilities :math:`s_l`, it computes
      :math:`\mathbb E[D]`, :math:`\operatorname{Var}[D]` and the probability generating function
      :math:`\mathbb E[z^D]` by summing over all :math:`2^L` masks (``method="enumerate"``), and
      reads :math:`P(D = k)` off the coefficients of :math:`z^k`. They come out as
      :math:`\sum_l s_l`, :math:`\sum_l s_l(1 - s_l)` and :math:`\prod_l (1 - s_l + s_l z)`.
    * For the linear schedule (:func:`linear_survival_schedule`) and *any* :math:`L`, it takes
      the mean and variance of one block's :math:`b_l` with :func:`~dropoutbook.derivations.expectation`
      and :func:`~dropoutbook.derivations.variance`, and sums them over :math:`l = 1, \dots, L`
      with ``sympy.summation`` (means add; variances add because the blocks are independent,
      which the enumeration above confirms for each concrete :math:`L`). With
      :math:`p_L = 1/2` and :math:`L = 54` (the 110-layer ResNet of :cite:`huang2016deep`) the
      mean is 40.25 blocks.

    The result is cached (it is immutable).

    Args:
        L: number of blocks for the enumeration, an int from 1 to 10 (:math:`2^L` terms).

    See chapter 8, "Stochastic depth", section "Derivation".

    Examples:
        >>> sampled_depth(2).mean
        s1 + s2
    """
    L = check_int(L, "L", minimum=1, maximum=10)
    return _sampled_depth(int(L))


@lru_cache(maxsize=None)
def _sampled_depth(L: int) -> SampledDepth:
    s = sp.symbols(f"s1:{L + 1}", positive=True)
    b = sp.symbols(f"b1:{L + 1}")
    z = sp.Symbol("z")
    dists = {bi: Bernoulli(si) for bi, si in zip(b, s)}
    depth = sum(b)
    mean = expectation(depth, dists, method="enumerate")
    var = variance(depth, dists, method="enumerate")
    pgf = sp.expand(expectation(z**depth, dists, method="enumerate"))
    poly = sp.Poly(pgf, z)
    pmf = tuple(sp.factor(poly.coeff_monomial(z**k)) for k in range(L + 1))

    schedule, linear_mean, linear_var, skipped = _linear_schedule_depth()  # for any number of blocks
    return SampledDepth(L, s, b, sp.expand(mean), sp.expand(var), z, pgf, pmf, schedule,
                        linear_mean, linear_var, skipped)
