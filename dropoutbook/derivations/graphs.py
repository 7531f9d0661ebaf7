r"""Chapter 12, "Dropout on graphs": what DropEdge does to a GCN's renormalized propagation, derived.

A node of degree :math:`d` keeps each of its edges with probability :math:`q = 1 - p`, independently
(DropEdge); its degree in the sampled graph is :math:`K = \sum_{j=1}^{d} m_j \sim \mathrm{Bin}(d, q)`.
The renormalized adjacency of a GCN gives the node the self-loop weight :math:`1/(1 + K)`, in the
symmetric and in the random-walk normalization alike.

* :func:`dropedge_self_weight` -- :math:`\mathbb E[1/(1+K)]` by ``sympy.summation`` over the
  binomial distribution of :math:`K` (any :math:`d`), and by summing over all :math:`2^d` edge masks
  for a concrete :math:`d` (the definition); compared with the weight :math:`1/(1+d)` of the full
  graph and with the plug-in value :math:`1/(1 + (1-p)d)`; and the expected neighbour weight of the
  random-walk normalization.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .._validation import check_int_in_range

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = ["node_degree", "DropEdgeSelfWeight", "dropedge_self_weight", "self_weight_by_enumeration"]

#: The degree :math:`d` of a node in the full graph.
node_degree = sp.Symbol("d", positive=True, integer=True)


def _finite_binomial_sum(term, k: sp.Symbol, upper) -> sp.Expr:
    r"""``sympy.summation`` of ``term`` over :math:`k = 0, \dots, \text{upper}`, for a symbolic upper limit.

    sympy evaluates the sum through a hypergeometric series and returns a ``Piecewise`` whose
    first branch is the closed form, valid under a convergence condition on :math:`p` (for
    example :math:`p \ge 1/2`). The sum is finite, so both sides are polynomials in :math:`p`
    (times the same power of :math:`p`) for every :math:`d`; agreeing on an interval, they agree
    for every :math:`p`. The closed form is therefore taken; the enumeration over all masks in
    :func:`self_weight_by_enumeration` and the tests confirm it for each concrete :math:`d`.
    """
    total = sp.summation(term, (k, 0, upper))
    for piece in total.atoms(sp.Piecewise):
        total = total.subs(piece, piece.args[0][0])
    if total.has(sp.Sum):  # pragma: no cover - a sympy that could not sum it
        raise RuntimeError(f"sympy did not find a closed form for the sum of {term}")
    return sp.factor(sp.simplify(sp.powsimp(sp.expand_power_base(total, force=True), force=True)))


@dataclass(frozen=True)
class DropEdgeSelfWeight:
    r"""The self-loop weight :math:`1/(1+K)` of a node under DropEdge, derived (see :func:`dropedge_self_weight`)."""

    degree: sp.Symbol  #: :math:`d`
    p: sp.Symbol  #: the drop probability of an edge
    definition: sp.Expr  #: the summand :math:`\binom{d}{k} q^k p^{d-k} / (1 + k)`
    mean: sp.Expr  #: :math:`\mathbb E[1/(1+K)]`
    undropped: sp.Expr  #: :math:`1/(1+d)`, the weight in the full graph
    plug_in: sp.Expr  #: :math:`1/(1 + (1-p)d)`, the weight at the mean degree
    ratio: sp.Expr  #: :math:`\mathbb E[1/(1+K)]\,(1+d)`, the factor by which DropEdge inflates the self weight
    ratio_limit: sp.Expr  #: the limit of ``ratio`` for :math:`d \to \infty`
    neighbour_mean: sp.Expr  #: :math:`\mathbb E[m_j/(1+K)]`, a neighbour's weight in :math:`\hat D^{-1}\hat A`
    degree_mean: sp.Expr  #: :math:`\mathbb E[K]`
    degree_variance: sp.Expr  #: :math:`\operatorname{Var}[K]`

    def identities(self) -> list[Identity]:
        """The derived mean, the inflation factor and its limit, and the neighbour weight, for display."""
        p = self.p
        return [
            Identity(r"\mathbb{E}\left[\frac{1}{1+K}\right]", sp.powsimp(tidy(self.mean, p)), "E[1/(1+K)]"),
            Identity(r"(1+d)\,\mathbb{E}\left[\frac{1}{1+K}\right]", sp.powsimp(tidy(self.ratio, p)), "(1+d) E[1/(1+K)]"),
            Identity(r"\lim_{d\to\infty}(1+d)\,\mathbb{E}\left[\frac{1}{1+K}\right]", tidy(self.ratio_limit, p),
                     "lim (1+d) E[1/(1+K)]"),
            Identity(r"\mathbb{E}\left[\frac{m_j}{1+K}\right]", sp.powsimp(tidy(self.neighbour_mean, p)), "E[m_j/(1+K)]"),
        ]


def dropedge_self_weight() -> DropEdgeSelfWeight:
    r"""Derive the expected self-loop weight of a GCN's renormalized adjacency after DropEdge.

    With :math:`K \sim \mathrm{Bin}(d, q)`, :math:`q = 1 - p`, the expectation is the binomial sum

    .. math:: \mathbb E\left[\frac{1}{1+K}\right] = \sum_{k=0}^{d} \binom{d}{k} q^k p^{d-k} \frac{1}{1+k},

    evaluated by ``sympy.summation`` for a symbolic :math:`d`. It comes out as
    :math:`(1 - p^{d+1}) / ((d+1)(1-p))`. Divided by the full graph's weight :math:`1/(1+d)` it gives
    the factor :math:`(1 - p^{d+1})/(1-p) = 1 + p + \dots + p^d > 1`, which tends to :math:`1/(1-p)`
    for large degrees: the renormalized adjacency of the sampled graph is *not* an unbiased estimate
    of the full graph's. By Jensen's inequality the mean is also above the plug-in
    :math:`1/(1 + (1-p)d)`. The neighbour weight of the random-walk normalization,
    :math:`\mathbb E[m_j/(1+K)] = q\,\mathbb E[1/(2 + K')]` with :math:`K' \sim \mathrm{Bin}(d-1, q)`,
    is summed the same way. The degree's mean and variance come from
    :func:`~dropoutbook.derivations.expectation` over the edge masks. The result is cached.

    See chapter 12, "Dropout on graphs", section "Derivation"; :cite:`rong2020dropedge`, :cite:`kipf2017semi`.

    Examples:
        >>> w = dropedge_self_weight()
        >>> w.ratio.subs({w.degree: 2, w.p: sp.Rational(1, 2)})
        7/4
    """
    return _dropedge_self_weight()


@lru_cache(maxsize=None)
def _dropedge_self_weight() -> DropEdgeSelfWeight:
    p, d = drop_rate, node_degree
    q = 1 - p
    k = sp.Symbol("k", integer=True, nonnegative=True)
    summand = sp.binomial(d, k) * q**k * p ** (d - k) / (1 + k)
    mean = _finite_binomial_sum(summand, k, d)
    neighbour = sp.factor(sp.simplify(
        q * _finite_binomial_sum(sp.binomial(d - 1, k) * q**k * p ** (d - 1 - k) / (2 + k), k, d - 1)))
    undropped = 1 / (1 + d)
    ratio = sp.factor(sp.simplify(mean / undropped))
    rate = sp.Symbol("lambda", positive=True)  # p = exp(-lambda) tells sympy that 0 < p < 1
    limit = sp.factor(sp.limit(ratio.subs(p, sp.exp(-rate)), d, sp.oo).subs(rate, -sp.log(p)))
    m = sp.symbols("m1:4")
    edge = {m[0]: Bernoulli(q)}
    degree_mean = expectation(m[0], edge) * d  # K is a sum of d such masks: means add
    degree_var = sp.factor(variance(m[0], edge) * d)  # independent masks: variances add
    return DropEdgeSelfWeight(d, p, summand, mean, undropped, 1 / (1 + q * d), ratio, limit, neighbour,
                              sp.expand(degree_mean), degree_var)


def self_weight_by_enumeration(d: int) -> tuple[sp.Expr, sp.Expr]:
    r"""For a concrete degree ``d``, :math:`\mathbb E[1/(1+\sum_j m_j)]` and :math:`\mathbb E[m_1/(1+\sum_j m_j)]` from the definition.

    Each of the node's ``d`` edges has its own mask symbol :math:`m_j \sim \mathrm{Bernoulli}(1-p)`,
    and :func:`~dropoutbook.derivations.expectation` sums over all :math:`2^d` masks
    (``method="enumerate"``), with no binomial distribution assumed.

    Args:
        d: the degree, an int from 1 to 10.

    Returns:
        ``(self weight, neighbour weight)``, rational functions of :math:`p`.

    See chapter 12, "Dropout on graphs", section "Derivation".

    Examples:
        >>> sp.factor(self_weight_by_enumeration(1)[0])
        (p + 1)/2
    """
    return _by_enumeration(check_int_in_range(d, "d", 1, 10, allowed="an int from 1 to 10 (2**d terms)"))


@lru_cache(maxsize=None)
def _by_enumeration(d: int) -> tuple[sp.Expr, sp.Expr]:
    q = 1 - drop_rate
    masks = sp.symbols(f"m1:{d + 1}")
    dists = {m: Bernoulli(q) for m in masks}
    degree = sum(masks)
    return (sp.factor(expectation(1 / (1 + degree), dists, method="enumerate")),
            sp.factor(expectation(masks[0] / (1 + degree), dists, method="enumerate")))
