r"""Chapter 6, section "AlphaDropout": the affine correction of dropout for SELU networks, derived.

AlphaDropout :cite:`klambauer2017self` sets a dropped unit to SELU's negative saturation value
:math:`\alpha' = -\lambda\alpha` instead of 0 and then applies an affine map :math:`a\,\tilde x + b`
chosen so that a standardized input (mean 0, variance 1) leaves with mean 0 and variance 1.
:func:`alpha_dropout_affine` computes the moments of the masked variable from its definition and
solves the two moment conditions for :math:`a` and :math:`b`. Here :math:`q = 1 - p` is the keep
probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ._core import Bernoulli, Identity, ZeroMeanNoise, expectation, keep_rate, tidy, variance

__all__ = ["AlphaDropoutDerivation", "alpha_dropout_affine"]


@dataclass(frozen=True)
class AlphaDropoutDerivation:
    r"""The moments of AlphaDropout's output and the affine correction that standardizes it."""

    definition: sp.Expr  #: the output :math:`a\,(m x + \alpha'(1 - m)) + b`, with :math:`x = \mu + \varepsilon`
    mask: sp.Symbol
    noise: sp.Symbol
    mean: sp.Symbol  #: :math:`\mu`, the input's mean
    sigma2: sp.Symbol  #: :math:`\sigma^2`, the input's variance
    saturation: sp.Symbol  #: :math:`\alpha'`, the value a dropped unit takes before the affine map
    a: sp.Symbol
    b: sp.Symbol
    masked_mean: sp.Expr  #: :math:`\mathbb E[m x + \alpha'(1-m)]`
    masked_variance: sp.Expr  #: :math:`\operatorname{Var}[m x + \alpha'(1-m)]`
    output_mean: sp.Expr  #: :math:`\mathbb E[y]` for any :math:`\mu, \sigma^2, a, b`
    output_variance: sp.Expr  #: :math:`\operatorname{Var}[y]` for any :math:`\mu, \sigma^2, a, b`
    a_solution: sp.Expr  #: the positive :math:`a` with :math:`\operatorname{Var}[y] = 1` at :math:`\mu = 0, \sigma^2 = 1`
    b_solution: sp.Expr  #: the :math:`b` with :math:`\mathbb E[y] = 0` there
    dropped_output: sp.Expr  #: :math:`a\alpha' + b`, the value of every dropped unit after the affine map

    def identities(self) -> list[Identity]:
        q = keep_rate
        return [
            Identity(r"\mathbb{E}[\tilde x]", self.masked_mean, "E[x~]"),
            Identity(r"\operatorname{Var}[\tilde x]", self.masked_variance, "Var[x~]"),
            Identity("a", self.a_solution, "a"),
            Identity("b", self.b_solution, "b"),
            Identity(r"a\alpha' + b", self.dropped_output, "a*alpha' + b"),
        ]


def alpha_dropout_affine() -> AlphaDropoutDerivation:
    r"""Derive AlphaDropout's affine correction :math:`a, b` from the definition (chapter 6, "AlphaDropout").

    The input is :math:`x = \mu + \varepsilon` with :math:`\mathbb E\varepsilon = 0`,
    :math:`\mathbb E\varepsilon^2 = \sigma^2` (any distribution); the mask :math:`m \sim
    \mathrm{Bernoulli}(q)` is independent of it; the masked variable is
    :math:`\tilde x = m x + \alpha'(1 - m)` and the output :math:`y = a\tilde x + b`. The
    moments are computed by :func:`~dropoutbook.derivations.expectation` and
    :func:`~dropoutbook.derivations.variance`,

    .. math:: \mathbb E\tilde x = q\mu + (1-q)\alpha', \qquad
              \operatorname{Var}\tilde x = q\sigma^2 + q(1-q)(\mu - \alpha')^2,

    and sympy solves :math:`\mathbb E y = 0`, :math:`\operatorname{Var} y = 1` at :math:`\mu = 0`,
    :math:`\sigma^2 = 1` for :math:`a > 0` and :math:`b`:

    .. math:: a = \bigl(q + \alpha'^2 q (1-q)\bigr)^{-1/2}, \qquad b = -a (1-q)\alpha',

    the values of :cite:`klambauer2017self`. A dropped unit leaves as :math:`a\alpha' + b = a q \alpha'`.

    Examples:
        >>> d = alpha_dropout_affine()
        >>> d.a_solution
        1/sqrt(alpha'**2*q*(1 - q) + q)
    """
    q = keep_rate
    m, eps = sp.Symbol("m"), sp.Symbol("varepsilon", real=True)
    mu, sigma2 = sp.Symbol("mu", real=True), sp.Symbol("sigma^2", positive=True)
    sat = sp.Symbol("alpha'", real=True)
    a, b = sp.Symbol("a", positive=True), sp.Symbol("b", real=True)
    dists = {m: Bernoulli(q), eps: ZeroMeanNoise(sigma2)}
    x = mu + eps
    masked = m * x + sat * (1 - m)
    y = a * masked + b
    masked_mean = expectation(masked, dists)
    masked_var = variance(masked, dists)
    out_mean = expectation(y, dists)
    out_var = variance(y, dists)
    standardized = {mu: 0, sigma2: 1}
    solutions = sp.solve([sp.Eq(out_mean.subs(standardized), 0), sp.Eq(out_var.subs(standardized), 1)],
                         [a, b], dict=True)
    point = {q: sp.Rational(1, 2), sat: -1}  # the two roots are a and -a: keep the positive one
    positive = [s for s in solutions if s[a].subs(point) > 0]
    if len(positive) != 1:
        raise RuntimeError(f"expected one solution with a > 0, got {solutions}")
    a_sol = _shown(positive[0][a], 1 / sp.sqrt(q + sat**2 * q * (1 - q)))
    b_sol = _shown(positive[0][b], -a_sol * (1 - q) * sat)
    return AlphaDropoutDerivation(
        definition=y, mask=m, noise=eps, mean=mu, sigma2=sigma2, saturation=sat, a=a, b=b,
        masked_mean=_shown(masked_mean, sp.Add(q * mu, tidy(1 - q, q) * sat, evaluate=False), mu), masked_variance=_grouped(masked_var, q, mu, sat, sigma2),
        output_mean=out_mean, output_variance=out_var,
        a_solution=a_sol, b_solution=b_sol, dropped_output=_shown(sp.simplify(a_sol * sat + b_sol), q * sat * a_sol),
    )


def _shown(solved: sp.Expr, readable: sp.Expr, *others: sp.Symbol) -> sp.Expr:
    """``readable`` if it equals sympy's ``solved`` identically (their difference simplifies to 0, or
    is below 1e-40 at seven rational points of 0 < q < 1, evaluated to 50 digits, when simplification
    stalls on the square roots), otherwise
    ``solved``: the form shown is checked, never assumed."""
    q = keep_rate
    symbols = sorted(solved.free_symbols | readable.free_symbols, key=str)
    if sp.simplify(solved - readable) == 0:
        return readable
    g = [sp.Rational(k, 11) for k in range(1, 8)]
    for i, value in enumerate(g):
        point = {s: (value if s == q else -sp.Rational(7 + i, 4) + j) for j, s in enumerate(symbols)}
        if abs(sp.N((solved - readable).subs(point), 50)) > 1e-40:
            return solved
    return readable


def _grouped(expr: sp.Expr, q: sp.Symbol, mu: sp.Symbol, sat: sp.Symbol, sigma2: sp.Symbol) -> sp.Expr:
    r"""Show :math:`\operatorname{Var}\tilde x` as :math:`q\sigma^2 + q(1-q)(\mu - \alpha')^2` when it equals it
    (checked here, never assumed), otherwise as sympy gives it."""
    shown = sp.Add(q * sigma2, tidy(q * (1 - q), q) * (mu - sat) ** 2, evaluate=False)
    return shown if sp.simplify(sp.expand(expr) - sp.expand(shown)) == 0 else expr
