r"""Chapter 15, "Applications": the moments of zero-inflated negative-binomial counts, derived.

* :func:`zinb_moments` -- the mean, the variance and the probability of a zero of a count
  :math:`X = B\,Y` with :math:`B \sim \mathrm{Bernoulli}(1 - \pi)` (a technical zero when
  :math:`B = 0`) and :math:`Y \sim \mathrm{NB}(\mu, \theta)` written as a Gamma-Poisson mixture.
  Every step is computed from a definition: the Poisson moments by summing the probability mass
  function, the Gamma moments by integrating the density, the mask by
  :func:`~dropoutbook.derivations.expectation` over its Bernoulli distribution, as for dropout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ._core import Bernoulli, Identity, expectation, tidy

__all__ = ["ZINBMoments", "zinb_moments"]


@dataclass(frozen=True)
class ZINBMoments:
    r"""The moments of a zero-inflated negative-binomial count, derived (see :func:`zinb_moments`)."""

    mu: sp.Symbol  #: the NB mean :math:`\mu`
    theta: sp.Symbol  #: the NB dispersion :math:`\theta` (variance :math:`\mu + \mu^2/\theta`)
    pi: sp.Symbol  #: the zero-inflation probability :math:`\pi`
    poisson_moments: tuple[sp.Expr, sp.Expr]  #: :math:`\mathbb E[Y \mid \lambda]`, :math:`\mathbb E[Y^2 \mid \lambda]`, summed from the pmf
    nb_mean: sp.Expr  #: :math:`\mathbb E[Y]`, integrated over the Gamma density
    nb_variance: sp.Expr  #: :math:`\operatorname{Var}[Y]`
    nb_zero: sp.Expr  #: :math:`P(Y = 0) = \mathbb E[e^{-\lambda}]`
    mean: sp.Expr  #: :math:`\mathbb E[X]`
    variance: sp.Expr  #: :math:`\operatorname{Var}[X]`
    zero_probability: sp.Expr  #: :math:`P(X = 0)`
    variance_terms: sp.Expr  #: ``variance`` written as NB part plus mixture part, accepted once sympy finds it equal
    zero_terms: sp.Expr  #: ``zero_probability`` written as :math:`\pi + (1-\pi)P(Y=0)`, accepted the same way

    def identities(self) -> list[Identity]:
        """The NB variance and the three ZINB results, for display."""
        return [Identity(r"\operatorname{Var}[Y]", self.nb_variance, "Var[Y]"),
                Identity(r"\mathbb{E}[X]", self.mean, "E[X]"),
                Identity(r"\operatorname{Var}[X]", self.variance_terms, "Var[X]"),
                Identity(r"P(X = 0)", self.zero_terms, "P(X = 0)")]


def zinb_moments() -> ZINBMoments:
    r"""Derive the mean, variance and zero probability of a zero-inflated negative-binomial count.

    The count is :math:`X = B\,Y`, with :math:`B \sim \mathrm{Bernoulli}(1-\pi)` independent of
    :math:`Y`, and :math:`Y \mid \lambda \sim \mathrm{Poisson}(\lambda)`,
    :math:`\lambda \sim \mathrm{Gamma}(\theta, \text{rate } \theta/\mu)`. sympy

    * sums :math:`\sum_k k^j \lambda^k e^{-\lambda}/k!` for :math:`j = 1, 2`, giving :math:`\lambda`
      and :math:`\lambda + \lambda^2`;
    * integrates these and :math:`e^{-\lambda}` against the Gamma density, giving
      :math:`\mathbb E[Y] = \mu`, :math:`\operatorname{Var}[Y] = \mu + \mu^2/\theta` and
      :math:`P(Y = 0) = (\theta/(\theta+\mu))^\theta`;
    * takes the expectation over the mask with :func:`~dropoutbook.derivations.expectation`
      (:math:`B^2 = B`), giving

    .. math::
        \mathbb E[X] = (1-\pi)\mu, \quad
        \operatorname{Var}[X] = (1-\pi)\mu\Bigl(1 + \frac{\mu}{\theta}\Bigr) + \pi(1-\pi)\mu^2, \quad
        P(X = 0) = \pi + (1-\pi)\Bigl(\frac{\theta}{\theta+\mu}\Bigr)^{\theta}.

    The technical zeros are standard (unscaled) dropout of the counts with rate :math:`\pi`: the
    mean shrinks by :math:`1-\pi`, and a model fitted to the observed counts by squared error
    learns :math:`(1-\pi)\mu`, not :math:`\mu`. See chapter 15, "Applications", section
    "Derivation"; :cite:`eraslan2019single`.

    Examples:
        >>> z = zinb_moments()
        >>> z.mean
        mu*(1 - pi)
    """
    return _zinb_moments()


@lru_cache(maxsize=None)
def _zinb_moments() -> ZINBMoments:
    mu, theta = sp.symbols("mu theta", positive=True)
    pi = sp.Symbol("pi", positive=True)
    lam = sp.Symbol("lambda", positive=True)
    k = sp.Symbol("k", integer=True, nonnegative=True)
    pmf = lam**k * sp.exp(-lam) / sp.factorial(k)
    y1, y2 = (sp.simplify(sp.summation(k**j * pmf, (k, 0, sp.oo))) for j in (1, 2))
    density = (theta / mu) ** theta * lam ** (theta - 1) * sp.exp(-theta * lam / mu) / sp.gamma(theta)

    def over_gamma(f):
        return sp.simplify(sp.integrate(f * density, (lam, 0, sp.oo)))

    if over_gamma(sp.Integer(1)) != 1:  # pragma: no cover - sympy regression
        raise RuntimeError("the Gamma density does not integrate to 1")
    nb1, nb2, nb0 = over_gamma(y1), over_gamma(y2), over_gamma(sp.exp(-lam))
    b = sp.Symbol("b")
    mask = {b: Bernoulli(1 - pi)}
    mean = tidy(expectation(b, mask) * nb1, pi)
    second = expectation(b**2, mask) * nb2
    var = sp.simplify(second - mean**2)
    zero = sp.simplify(expectation(1 - b + b * sp.Symbol("z0"), mask).subs(sp.Symbol("z0"), nb0))
    nb_var = sp.simplify(nb2 - nb1**2)
    # The forms the book displays, each accepted only if sympy finds it equal to the derived expression
    one = sp.UnevaluatedExpr(1 - pi)
    var_terms = one * mu * (1 + mu / theta) + pi * one * mu**2
    zero_terms = pi + one * nb0
    if sp.simplify(var_terms.doit() - var) != 0 or sp.simplify(zero_terms.doit() - zero) != 0:  # pragma: no cover
        raise RuntimeError("the displayed forms of the ZINB variance or zero probability differ from the derived ones")
    return ZINBMoments(mu, theta, pi, (y1, y2), nb1, nb_var, nb0, mean, var, zero, var_terms, zero_terms)
