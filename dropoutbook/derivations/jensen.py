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

from .._validation import check_choice, check_int, check_probability

from ._core import Bernoulli, Identity, ZeroMeanNoise, drop_rate, expectation, tidy, variance

__all__ = [
    "p_keep", "QuadraticJensenGap", "quadratic_jensen_gap",
    "DeltaMethodGap", "delta_method_gap", "ReluSingleUnitGap", "relu_single_unit_gap",
    "ReluDepthGap", "relu_depth_gap", "GaussianReluMean", "gaussian_relu_mean",
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


@dataclass(frozen=True)
class ReluDepthGap:
    r"""The exact Jensen gaps of a chain of ReLU units with two dropout layers, derived by :func:`relu_depth_gap`."""

    p: sp.Expr  #: the drop rate at which the sums were taken (a number, or the symbol :math:`p`)
    first: sp.Expr  #: the gap of the first ReLU after a dropout layer, :math:`\mathbb E[h_2] - \bar h_2`
    second: sp.Expr  #: the gap of the second ReLU after a dropout layer, :math:`\mathbb E[h_3] - \bar h_3`
    units: tuple  #: the sympy expressions :math:`(h_1, h_2, h_3)` of the thinned chain, in the mask symbols
    masks: tuple  #: the mask symbols :math:`(m_1, m_2)`


@functools.lru_cache(maxsize=None)
def relu_depth_gap(p=sp.Rational(1, 2)) -> ReluDepthGap:
    r"""Derive the Jensen gaps of the chain :math:`x \to h_1 \to h_2 \to h_3` of ReLU units with dropout after :math:`h_1` and :math:`h_2`.

    The chain has one unit per layer and inverted dropout (rate :math:`p`, masks
    :math:`m_1, m_2 \sim \mathrm{Bernoulli}(1-p)`) between the layers:

    .. math::

        h_1 = \max(0, x), \quad h_2 = \max\!\Big(0, \frac{m_1}{1-p} h_1 - \tfrac12\Big), \quad
        h_3 = \max\!\Big(0, 5 - \frac{m_2}{1-p} h_2\Big), \qquad x = 1 .

    The deterministic (evaluation-mode) chain sets both masks to their mean; the ensemble averages
    over the four masks (:func:`expectation` with ``method="enumerate"``). The first ReLU after a
    dropout layer has a non-negative gap (Jensen's inequality, its input being linear in
    :math:`m_1`); the second one, whose input is linear in an already biased :math:`h_2` with a
    negative weight, has a negative gap: :math:`+p/2` and :math:`-p/2` for :math:`p \le 1/2`.
    With a number ``p`` (a sympy Rational) the sums are exact rationals; with the symbol
    :math:`p` sympy keeps the ``Max`` terms it cannot resolve. Chapter 3, "The Jensen bias",
    section "Pitfalls and errata".

    Args:
        p: the drop rate, a number in (0, 1) (converted with ``sympy.nsimplify``) or
            the symbol ``dropoutbook.derivations.drop_rate``.

    Examples:
        >>> gaps = relu_depth_gap(sp.Rational(1, 2))
        >>> gaps.first, gaps.second
        (1/4, -1/4)
    """
    if p is not drop_rate:
        check_probability(float(p) if isinstance(p, sp.Number) else p, "p", allow_one=False, allow_zero=False)
        p = sp.nsimplify(p)
    keep = 1 - p
    relu = lambda u: sp.Max(0, u)  # noqa: E731
    m1, m2 = sp.symbols("m1 m2")
    dists = {m1: Bernoulli(keep), m2: Bernoulli(keep)}
    h1 = relu(sp.Integer(1))
    pre2 = m1 * h1 / keep - sp.Rational(1, 2)
    h2 = relu(pre2)
    h3 = relu(5 - m2 * h2 / keep)
    det2 = relu(expectation(pre2, dists, method="enumerate"))
    det3 = relu(5 - det2)  # the mask m2 at its mean (inverted dropout: the evaluation-mode chain)
    first = sp.simplify(expectation(h2, dists, method="enumerate") - det2)
    second = sp.simplify(expectation(h3, dists, method="enumerate") - det3)
    return ReluDepthGap(p, first, second, (h1, h2, h3), (m1, m2))


@dataclass(frozen=True)
class GaussianReluMean:
    r"""The mean of a ReLU of a Gaussian pre-activation, derived by :func:`gaussian_relu_mean`."""

    mu: sp.Symbol
    sigma: sp.Symbol
    density: sp.Expr  #: the density of :math:`z \sim \mathcal N(\mu, \sigma^2)`
    mean: sp.Expr  #: :math:`\mathbb E[\max(0, z)]`, integrated from the definition
    normalisation: sp.Expr  #: :math:`\int p(z)\,dz`, which must be 1

    def gap(self) -> sp.Expr:
        r""":math:`\mathbb E[\max(0, z)] - \max(0, \mu)`, the Jensen gap that moment matching predicts."""
        return self.mean - sp.Max(0, self.mu)

    def identities(self) -> list[Identity]:
        return [Identity(r"\mathbb{E}[\max(0, z)]", self.mean, "E[max(0, z)]")]


@functools.lru_cache(maxsize=None)
def gaussian_relu_mean() -> GaussianReluMean:
    r"""Derive :math:`\mathbb E[\max(0, z)]` for :math:`z \sim \mathcal N(\mu, \sigma^2)` by integrating the definition.

    .. math:: \mathbb E[\max(0, z)] = \int_{-\infty}^{0} 0 \cdot p(z)\,dz + \int_0^\infty z\, p(z)\,dz,
              \qquad p(z) = \frac{1}{\sqrt{2\pi}\sigma} e^{-(z-\mu)^2/(2\sigma^2)} .

    sympy integrates the second piece (the first is zero); the result, rewritten with
    :math:`\operatorname{erf}`, equals :math:`\mu\,\Phi(\mu/\sigma) + \sigma\,\varphi(\mu/\sigma)`
    (the tests compare the two). Replacing the distribution of a dropout pre-activation by the
    Gaussian with its mean and variance is the moment matching of fast dropout
    :cite:`wang2013fast`. Chapter 3, "The Jensen bias", section "Gaussian moment matching".

    Examples:
        >>> r = gaussian_relu_mean()
        >>> sp.simplify(r.mean.subs({r.mu: 0, r.sigma: 1}) - 1 / sp.sqrt(2 * sp.pi))
        0
    """
    z = sp.Symbol("z", real=True)
    mu, sigma = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)
    density = sp.exp(-(z - mu) ** 2 / (2 * sigma**2)) / sp.sqrt(2 * sp.pi * sigma**2)
    positive_part = sp.integrate(z * density, (z, 0, sp.oo), conds="none")
    mean = sp.simplify(positive_part.rewrite(sp.erf))
    normalisation = sp.simplify(sp.integrate(density, (z, -sp.oo, sp.oo), conds="none"))
    return GaussianReluMean(mu, sigma, density, mean, normalisation)
