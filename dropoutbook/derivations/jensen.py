r"""Chapter 3, "The Jensen bias": derivations.

Every result is computed from its definition with :func:`~dropoutbook.derivations.expectation`
(a sum over Bernoulli masks) or with sympy's differentiation and series expansion; nothing is
typed in. The tests in ``tests/test_derivations_jensen.py`` compare these objects with the
formulas printed in the chapter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from .._validation import check_choice, check_int

from ._core import Bernoulli, Identity, ZeroMeanNoise, drop_rate, expectation, tidy, variance

__all__ = [
    "p_keep", "QuadraticJensenGap", "quadratic_jensen_gap",
    "DeltaMethodGap", "delta_method_gap", "ReluSingleUnitGap", "relu_single_unit_gap",
]

#: The keep probability, for formulas written with p as the keep rate (:math:`p_{\mathrm{keep}} = 1 - p`), as in :cite:`srivastava2014dropout`.
p_keep = sp.Symbol("p_keep", positive=True)

_SCALINGS = ("inverted", "standard")
_CONVENTIONS = ("drop", "keep")


@dataclass(frozen=True)
class QuadraticJensenGap:
    r"""The Jensen gap of :math:`f(z) = z^2` for one dropped input, derived by :func:`quadratic_jensen_gap`."""

    scaling: str
    convention: str
    rate: sp.Symbol  #: the probability symbol of the formula: :math:`p` (drop) or :math:`p_{\mathrm{keep}}`
    x: sp.Symbol
    definition: sp.Expr  #: :math:`z = m x / s` as an expression in the mask symbol
    mean_of_square: sp.Expr  #: :math:`\mathbb E[f(z)] = \mathbb E[z^2]`
    square_of_mean: sp.Expr  #: :math:`f(\mathbb E[z]) = \mathbb E[z]^2`
    gap: sp.Expr  #: :math:`\mathbb E[z^2] - \mathbb E[z]^2`

    def identities(self) -> list[Identity]:
        rate = self.rate
        return [
            Identity(r"\mathbb{E}[f(z)]", tidy(self.mean_of_square, rate), "E[f(z)]"),
            Identity(r"f(\mathbb{E}[z])", tidy(self.square_of_mean, rate), "f(E[z])"),
            Identity(r"\mathbb{E}[f(z)] - f(\mathbb{E}[z])", tidy(self.gap, rate), "gap"),
        ]


@functools.lru_cache(maxsize=None)  # the results are immutable; sympy is slow
def quadratic_jensen_gap(scaling: str = "inverted", convention: str = "drop") -> QuadraticJensenGap:
    r"""Derive :math:`\mathbb E[f(z)] - f(\mathbb E[z])` for :math:`f(z) = z^2` and :math:`z = m x / s`.

    The mask is :math:`m \sim \mathrm{Bernoulli}(k)` with keep probability :math:`k`; the scale is
    :math:`s = k` for inverted dropout and :math:`s = 1` without scaling (``"standard"``).
    ``convention="drop"`` writes the result in the book's drop probability :math:`p`
    (:math:`k = 1-p`); ``convention="keep"`` in the keep probability :math:`p_{\mathrm{keep}}`
    (:math:`k = p_{\mathrm{keep}}`), the convention of Srivastava et al. :cite:`srivastava2014dropout`. Both
    expectations are sums over the two mask values (:func:`expectation`). The results are
    :math:`p(1-p)x^2` (standard, either convention), :math:`\frac{p}{1-p}x^2` (inverted, drop
    convention) and :math:`\frac{1-p_{\mathrm{keep}}}{p_{\mathrm{keep}}}x^2` (inverted, keep
    convention). Chapter 3, "The Jensen bias", section "Derivation".

    Examples:
        >>> quadratic_jensen_gap("standard").gap
        p*x**2*(1 - p)
    """
    scaling = check_choice(scaling, "scaling", _SCALINGS)
    convention = check_choice(convention, "convention", _CONVENTIONS)
    rate = drop_rate if convention == "drop" else p_keep
    keep = 1 - rate if convention == "drop" else rate
    m, x = sp.Symbol("m"), sp.Symbol("x", real=True)
    z = m * x / keep if scaling == "inverted" else m * x
    dists = {m: Bernoulli(keep)}
    mean_of_square = expectation(z**2, dists, method="enumerate")
    square_of_mean = sp.simplify(expectation(z, dists, method="enumerate") ** 2)
    return QuadraticJensenGap(scaling, convention, rate, x, z, mean_of_square, square_of_mean,
                              sp.simplify(mean_of_square - square_of_mean))


@dataclass(frozen=True)
class DeltaMethodGap:
    r"""The second-order (delta-method) approximation of the Jensen gap, derived by :func:`delta_method_gap`."""

    d: int
    scaling: str
    w: tuple
    x: tuple
    masks: tuple
    mean: sp.Expr  #: :math:`\mu = \mathbb E[z]`
    variance: sp.Expr  #: :math:`\operatorname{Var}[z]`
    function: sp.Function  #: the generic activation :math:`f`
    taylor: sp.Expr  #: :math:`\mathbb E` of the second-order Taylor polynomial of :math:`f(\mu + \delta)`, minus :math:`f(\mu)`
    quadratic_exact_gap: sp.Expr  #: the exact gap of :math:`f(z) = z^2`, :math:`\mathbb E[z^2] - \mathbb E[z]^2`, by enumeration
    mu: sp.Symbol  #: the symbol :math:`\mu` that ``taylor`` is written in
    var: sp.Symbol  #: the symbol :math:`\sigma^2_z` that ``taylor`` is written in

    def approximation(self, f) -> sp.Expr:
        r"""The approximation :math:`\tfrac12 f''(\mu)\operatorname{Var}[z]` for a concrete sympy function ``f`` of one argument."""
        u = sp.Symbol("u", real=True)
        second = sp.diff(f(u), u, 2)
        return sp.simplify(self.taylor.subs(sp.Derivative(self.function(self.mu), (self.mu, 2)), second.subs(u, self.mu)).doit())

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\mu = \mathbb{E}[z]", tidy(self.mean, p), "mu"),
            Identity(r"\sigma_z^2 = \operatorname{Var}[z]", tidy(self.variance, p), "Var[z]"),
            Identity(r"\mathbb{E}[f(\mu + \delta)] - f(\mu)", self.taylor, "E[f(mu + delta)] - f(mu)"),
        ]


@functools.lru_cache(maxsize=None)
def delta_method_gap(d: int = 2, scaling: str = "inverted") -> DeltaMethodGap:
    r"""Derive the second-order approximation :math:`\tfrac12 f''(\mu)\operatorname{Var}[z]` of the Jensen gap.

    For :math:`z = \sum_{i=1}^d w_i m_i x_i / s` with :math:`m_i \sim \mathrm{Bernoulli}(1-p)`
    independent (:math:`s = 1-p` inverted, :math:`s = 1` standard), it computes :math:`\mu` and
    :math:`\operatorname{Var}[z]` by :func:`expectation` and :func:`variance`, then expands
    :math:`f(\mu + \delta)` to second order with sympy's series and takes the expectation with
    :math:`\mathbb E[\delta] = 0`, :math:`\mathbb E[\delta^2] = \sigma_z^2` (a
    :class:`ZeroMeanNoise`). It also computes the exact gap of :math:`f(z) = z^2` by summing over
    all :math:`2^d` masks, which the tests compare with the approximation (they agree: the
    Taylor polynomial of a quadratic is the quadratic). Chapter 3, "The Jensen bias".

    Args:
        d: number of dropped inputs, an int in [1, 6].
        scaling: ``"inverted"`` or ``"standard"``.
    """
    d = check_int(d, "d", minimum=1, maximum=6)
    scaling = check_choice(scaling, "scaling", _SCALINGS)
    p = drop_rate
    w = sp.symbols(f"w1:{d + 1}", real=True)
    x = sp.symbols(f"x1:{d + 1}", real=True)
    m = sp.symbols(f"m1:{d + 1}")
    s = 1 - p if scaling == "inverted" else sp.Integer(1)
    z = sum(wi * mi * xi for wi, mi, xi in zip(w, m, x)) / s
    dists = {mi: Bernoulli(1 - p) for mi in m}
    mean, var = expectation(z, dists), variance(z, dists)
    mu, var_symbol, delta = sp.Symbol("mu", real=True), sp.Symbol("sigma_z^2", positive=True), sp.Symbol("delta", real=True)
    f = sp.Function("f")
    polynomial = f(mu + delta).series(delta, 0, 3).removeO().doit()
    taylor = sp.simplify(expectation(polynomial, {delta: ZeroMeanNoise(var_symbol)}, method="moments") - f(mu))
    exact_quadratic = sp.simplify(expectation(z**2, dists, method="enumerate")
                                  - expectation(z, dists, method="enumerate") ** 2)
    return DeltaMethodGap(d, scaling, w, x, m, mean, var, f, taylor, exact_quadratic, mu, var_symbol)


@dataclass(frozen=True)
class ReluSingleUnitGap:
    r"""The exact Jensen gap of one ReLU unit fed by one inverted-dropout input, derived by :func:`relu_single_unit_gap`."""

    positive_input: sp.Expr  #: the gap when :math:`a = w x > 0`
    negative_input: sp.Expr  #: the gap when :math:`a = w x < 0`
    second_derivative: sp.Expr  #: :math:`\frac{d^2}{dz^2}\max(0, z)` as sympy computes it


@functools.lru_cache(maxsize=None)
def relu_single_unit_gap() -> ReluSingleUnitGap:
    r"""Derive the exact Jensen gap of :math:`\max(0, z)`, :math:`z = m a/(1-p)`, :math:`m \sim \mathrm{Bernoulli}(1-p)`.

    The expectation is the sum over the two mask values (:func:`expectation` with
    ``method="enumerate"``), for :math:`a = wx > 0` and for :math:`a < 0`. Both gaps are 0,
    because the ReLU is positively homogeneous: :math:`\max(0, c a) = c \max(0, a)` for
    :math:`c \ge 0`. (With a bias, or with two or more inputs, the gap is positive; the chapter
    computes such cases numerically with :func:`~dropoutbook.jensen_gap`.) The second
    derivative of the ReLU, :math:`\delta(z)` (``DiracDelta``), vanishes for every
    :math:`z \ne 0`, so the delta method predicts a zero gap in all these cases. Chapter 3,
    "The Jensen bias", section "Pitfalls and errata".
    """
    keep = sp.Symbol("k", positive=True)  # the keep probability 1 - p; positive so that signs are known
    m = sp.Symbol("m")
    dists = {m: Bernoulli(keep)}
    relu = lambda u: sp.Max(0, u)  # noqa: E731
    gaps = []
    for a in (sp.Symbol("a", positive=True), -sp.Symbol("a", positive=True)):
        ensemble = expectation(relu(m * a / keep), dists, method="enumerate")
        gaps.append(sp.simplify(ensemble - relu(expectation(m * a / keep, dists))))
    p = drop_rate
    z = sp.Symbol("z", real=True)
    return ReluSingleUnitGap(
        positive_input=sp.simplify(gaps[0].subs(keep, 1 - p)),
        negative_input=sp.simplify(gaps[1].subs(keep, 1 - p)),
        second_derivative=sp.diff(sp.Max(0, z), z, 2),
    )
