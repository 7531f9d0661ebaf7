r"""Chapter 13, "Learning the dropout rate": the relaxed Bernoulli mask of Concrete dropout, derived.

The mask is :math:`z = \sigma\bigl((\operatorname{logit} q + L)/t\bigr)` with
:math:`L = \log u - \log(1-u)`, :math:`u \sim \mathrm U(0, 1)`, keep probability :math:`q` and
temperature :math:`t`. Everything below starts from the uniform distribution of :math:`u`:

* :func:`concrete_mask_distribution` -- the distribution of :math:`L` (solving :math:`L(u) = l` for
  :math:`u`), the CDF of :math:`z` (solving :math:`z(L) = s` for :math:`L`), :math:`P(z > 1/2)`, the
  limits of the CDF as :math:`t \to 0` (a Bernoulli(:math:`q`)) and :math:`t \to \infty` (a point
  mass at 1/2), the density by differentiation of the CDF, and the mean
  :math:`\mathbb E[z] = \int_0^1 (1 - F_z(s))\,ds`, in closed form at :math:`t = 1` and otherwise as
  an integral that sympy does not evaluate (:meth:`ConcreteMaskDistribution.mean_at` evaluates it
  numerically with mpmath).
* :func:`concrete_regularizer` -- the Bernoulli entropy from its definition, the weight term of the
  KL after the change of variables :math:`M = W/(1-p)` of inverted dropout, and the regularizer's
  derivative in the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from .._validation import check_positive, check_probability
from ._core import Identity, drop_rate, keep_rate, tidy

__all__ = ["temperature", "ConcreteMaskDistribution", "concrete_mask_distribution",
           "ConcreteRegularizer", "concrete_regularizer"]

#: The temperature :math:`t > 0` of the relaxation.
temperature = sp.Symbol("t", positive=True)
_s = sp.Symbol("s", positive=True)  # a value of the mask, 0 < s < 1
_u = sp.Symbol("u", positive=True)  # the uniform, 0 < u < 1
_l = sp.Symbol("l", real=True)  # a value of the logistic noise


def _logit(x):
    return sp.log(x) - sp.log(1 - x)


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def _only_solution(equation, symbol) -> sp.Expr:
    solutions = sp.solve(equation, symbol)
    if len(solutions) != 1:  # pragma: no cover - a sympy that finds another branch
        raise RuntimeError(f"expected one solution of {equation} for {symbol}, got {solutions}")
    return sp.simplify(solutions[0])


@dataclass(frozen=True)
class ConcreteMaskDistribution:
    r"""The relaxed Bernoulli mask :math:`z`, derived from :math:`u \sim \mathrm U(0,1)` (see :func:`concrete_mask_distribution`)."""

    q: sp.Symbol  #: the keep probability
    t: sp.Symbol  #: the temperature
    s: sp.Symbol  #: a value of the mask in (0, 1)
    mask: sp.Expr  #: :math:`z` as a function of :math:`u`
    noise_cdf: sp.Expr  #: :math:`F_L(l) = P(L \le l)`, in the symbol ``l``
    cdf: sp.Expr  #: :math:`F_z(s) = P(z \le s)`
    prob_above_half: sp.Expr  #: :math:`P(z > 1/2)`
    cdf_limit_cold: sp.Expr  #: :math:`\lim_{t \to 0} F_z(s)` for :math:`0 < s < 1`
    density: sp.Expr  #: :math:`f_z(s) = dF_z/ds`
    mean_integrand: sp.Expr  #: :math:`1 - F_z(s)`, whose integral over (0, 1) is :math:`\mathbb E[z]`
    mean_at_one: sp.Expr  #: :math:`\mathbb E[z]` at :math:`t = 1`, by sympy's integral
    pathwise_gradient: sp.Expr  #: :math:`\partial z / \partial \operatorname{logit} q` for fixed :math:`u`, in terms of :math:`z`

    def identities(self) -> list[Identity]:
        """The CDF, P(z > 1/2), the cold limit, the density and the mean at t = 1, for display."""
        q = self.q
        return [
            Identity(r"P(z \le s)", tidy(self.cdf, q), "P(z <= s)"),
            Identity(r"P\left(z > \tfrac12\right)", self.prob_above_half, "P(z > 1/2)"),
            Identity(r"\lim_{t \to 0^+} P(z \le s)", tidy(self.cdf_limit_cold, q), "lim_{t->0} P(z <= s)"),
            Identity(r"f_z(s)", tidy(self.density, q), "f_z(s)"),
            Identity(r"\mathbb{E}[z]\big|_{t=1}", self.mean_at_one, "E[z] at t = 1"),
            Identity(r"\frac{\partial z}{\partial \operatorname{logit} q}\Big|_u", tidy(self.pathwise_gradient,
                     *self.pathwise_gradient.free_symbols - {self.t}), "dz/dlogit(q) at fixed u"),
        ]

    def cdf_at(self, s: float, q: float, t: float) -> float:
        """:math:`P(z \\le s)` for numbers, from the derived ``cdf``."""
        return float(self.cdf.subs({self.s: s, self.q: q, self.t: t}))

    def mean_at(self, q: float, t: float, *, digits: int = 30) -> float:
        r""":math:`\mathbb E[z] = \int_0^1 (1 - F_z(s))\,ds` for numbers, by mpmath's quadrature of the derived ``mean_integrand``.

        The integrand is smooth on (0, 1) and bounded by 1; it changes fastest near :math:`s = 1/2`
        at small :math:`t`, so the interval is split there. ``digits`` is the working precision.
        """
        q = check_probability(q, "q", allow_zero=False, allow_one=False)
        t = check_positive(t, "t")
        f = sp.lambdify(self.s, self.mean_integrand.subs({self.q: sp.nsimplify(q), self.t: sp.nsimplify(t)}), "mpmath")
        with mpmath.workdps(digits):
            return float(mpmath.quad(f, [0, mpmath.mpf(1) / 2, 1]))


@lru_cache(maxsize=None)
def concrete_mask_distribution() -> ConcreteMaskDistribution:
    r"""Derive the distribution of the relaxed Bernoulli mask of Concrete dropout from the uniform noise.

    1. :math:`L = \log u - \log(1-u)` is increasing in :math:`u`; solving :math:`L(u) = l` gives
       :math:`u = \sigma(l)`, so :math:`F_L(l) = P(u \le \sigma(l)) = \sigma(l)` (the logistic law).
    2. :math:`z = \sigma((\operatorname{logit} q + L)/t)` is increasing in :math:`L`; solving
       :math:`z = s` gives :math:`L = t \operatorname{logit} s - \operatorname{logit} q`, so
       :math:`F_z(s) = F_L(t\operatorname{logit} s - \operatorname{logit} q)`.
    3. :math:`P(z > 1/2) = 1 - F_z(1/2)`, the limit of :math:`F_z(s)` as :math:`t \to 0^+` (by
       ``sympy.limit``), the density :math:`dF_z/ds`, and the mean as the integral of the survival
       function, by ``sympy.integrate`` at :math:`t = 1`.

    Sympy finds no closed form of :math:`\mathbb E[z]` for a symbolic :math:`t` (the integral is of
    hypergeometric type); :meth:`ConcreteMaskDistribution.mean_at` evaluates it numerically.
    Chapter 13, section "Derivation".
    """
    q, t, s, u, l = keep_rate, temperature, _s, _u, _l
    r = sp.Symbol("r", positive=True)  # 1 - s, kept as its own symbol so that (1 - s)**t stays a power
    noise = _logit(u)
    u_of_l = _only_solution(sp.Eq(noise, l), u)
    noise_cdf = sp.simplify(u_of_l)  # P(u <= u(l)) = u(l) for a uniform u
    mask = _sigmoid((_logit(q) + noise) / t)
    # z = s  <=>  (logit q + L)/t = logit s = log s - log r
    l_of_s = _only_solution(sp.Eq(_logit(q) + l, t * (sp.log(s) - sp.log(r))), l)
    cdf_sr = sp.factor(sp.powsimp(sp.expand_power_base(sp.simplify(noise_cdf.subs(l, l_of_s)), force=True), force=True))
    density_sr = sp.factor(sp.simplify(sp.diff(cdf_sr, s) - sp.diff(cdf_sr, r)))  # d/ds with r = 1 - s
    cdf, density = cdf_sr.subs(r, 1 - s), density_sr.subs(r, 1 - s)
    prob_above_half = sp.simplify(1 - cdf.subs(s, sp.Rational(1, 2)))
    cdf_limit_cold = sp.simplify(sp.limit(cdf_sr, t, 0, "+"))
    integrand = sp.simplify(1 - cdf)
    mean_at_one = sp.factor(sp.simplify(sp.integrate(integrand.subs(t, 1), (s, 0, 1), conds="none")))
    mean_at_one = sp.factor(sp.logcombine(sp.expand_log(mean_at_one.subs(q, 1 - drop_rate), force=True),
                                          force=True).subs(drop_rate, 1 - q))
    a = sp.Symbol("a", real=True)  # logit q, for the pathwise derivative at fixed noise l
    zs = sp.Symbol("z", positive=True)
    pathwise = sp.diff(_sigmoid((a + l) / t), a).subs(l, t * _logit(zs) - a)
    pathwise = sp.factor(sp.simplify(pathwise))
    return ConcreteMaskDistribution(q, t, s, mask, noise_cdf, cdf, prob_above_half, cdf_limit_cold, density,
                                    integrand, mean_at_one, pathwise)


@dataclass(frozen=True)
class ConcreteRegularizer:
    r"""The regularizer of Concrete dropout, derived (see :func:`concrete_regularizer`)."""

    p: sp.Symbol  #: the drop rate
    entropy: sp.Expr  #: :math:`H(p)` of a Bernoulli(:math:`p`), from its definition
    weight_term: sp.Expr  #: :math:`\frac{l^2 (1-p)}{2}\lVert M \rVert^2` with :math:`M = W/(1-p)`, in terms of :math:`\lVert W\rVert^2`
    regularizer: sp.Expr  #: :math:`\lambda_w \lVert W\rVert^2/(1-p) - \lambda_p K H(p)`
    derivative: sp.Expr  #: :math:`\partial R / \partial p`
    logit_derivative: sp.Expr  #: :math:`\partial R / \partial \theta` with :math:`p = \sigma(\theta)`
    entropy_minimizer: sp.Expr  #: the :math:`p` that minimizes the dropout term alone
    symbols: dict  #: the other symbols: ``l``, ``W2`` (:math:`\lVert W\rVert^2`), ``lw``, ``lp``, ``K``, ``theta``

    def identities(self) -> list[Identity]:
        return [
            Identity(r"H(p)", self.entropy, "H(p)"),
            Identity(r"\frac{l^2 (1-p)}{2}\left\lVert \frac{W}{1-p} \right\rVert^2", self.weight_term, "weight term"),
            Identity(r"R(p)", self.regularizer, "R(p)"),
            Identity(r"\frac{\partial R}{\partial p}", tidy(self.derivative, self.p), "dR/dp"),
        ]


@lru_cache(maxsize=None)
def concrete_regularizer() -> ConcreteRegularizer:
    r"""Derive the regularizer of Concrete dropout and its derivative in the rate.

    The entropy of a Bernoulli(:math:`p`) is the sum over its two outcomes of
    :math:`-P(x)\log P(x)`. The KL term of Gal et al. :cite:`gal2017concrete` is, per layer,
    :math:`\frac{l^2(1-p)}{2}\lVert M\rVert^2 - K H(p)` for the weights :math:`M` of the *unscaled*
    dropout :math:`M\,\mathrm{diag}(m)\,x`; a layer after inverted dropout computes
    :math:`W\,\mathrm{diag}(m)\,x/(1-p)`, so :math:`M = W/(1-p)` is substituted. Divided by the
    number :math:`N` of training examples it is the regularizer with :math:`\lambda_w = l^2/(2N)`
    and :math:`\lambda_p = 1/N`. Chapter 13, section "Derivation".
    """
    p = drop_rate
    ell, W2, lw, lp, K, theta = sp.symbols("l W2 lambda_w lambda_p K theta", positive=True)
    outcomes = {1: p, 0: 1 - p}
    entropy = sp.simplify(-sum(P * sp.log(P) for P in outcomes.values()))
    M2 = W2 / (1 - p) ** 2  # ||W/(1-p)||^2
    weight_term = sp.simplify(ell**2 * (1 - p) / 2 * M2)
    regularizer = lw * W2 / (1 - p) - lp * K * entropy
    derivative = sp.simplify(sp.diff(regularizer, p))
    sig = 1 / (1 + sp.exp(-theta))
    logit_derivative = sp.simplify(sp.diff(regularizer.subs(p, sig), theta))
    dropout_only = sp.diff(-entropy, p)
    minimizer = _only_solution(sp.Eq(dropout_only, 0), p)
    return ConcreteRegularizer(p, entropy, weight_term, sp.expand(regularizer), derivative, logit_derivative,
                               minimizer, dict(l=ell, W2=W2, lw=lw, lp=lp, K=K, theta=theta))
