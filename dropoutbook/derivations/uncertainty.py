r"""Chapter 5, "Monte Carlo dropout": derivations.

* :func:`mc_linear_estimator`: the MC-dropout estimator of a linear unit with inverted dropout on
  its inputs, :math:`\hat\mu_T = \frac1T \sum_t \sum_i w_i m_{ti} x_i / q` with
  :math:`m_{ti} \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`: its mean, its variance, and the
  expectations of the two sample variances (divisors :math:`T` and :math:`T - 1`).
* :func:`mc_quadratic_unit`: the same estimator for the squared unit, the simplest nonlinearity,
  whose MC mean is biased for the deterministic output.

Everything is computed with :func:`~dropoutbook.derivations.expectation` over all
:math:`T \cdot d` mask symbols, for concrete :math:`d` and :math:`T`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = ["MCLinearEstimator", "mc_linear_estimator", "MCQuadraticUnit", "mc_quadratic_unit"]


def _symbols(d: int, T: int):
    w = sp.symbols(f"w1:{d + 1}", real=True)
    x = sp.symbols(f"x1:{d + 1}", real=True)
    m = tuple(tuple(sp.symbols(f"m{t + 1}_1:{d + 1}")) for t in range(T))
    return w, x, m


@dataclass(frozen=True)
class _Scaled(Identity):
    """``lhs = factor · rhs``, displayed with the factor in front (``rhs`` holds the rest)."""

    factor: sp.Expr = sp.Integer(1)

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.lhs} = {sp.latex(self.factor)} \cdot {sp.latex(self.rhs)}$"

    def __repr__(self) -> str:
        return f"{self.lhs_text or self.lhs} = ({self.factor})*({sp.sstr(self.rhs)})"


def _pull_out(lhs: str, expr: sp.Expr, factor: sp.Rational, text: str) -> Identity:
    """An identity ``lhs = factor · rest`` with ``factor · rest == expr``."""
    return _Scaled(lhs, tidy(expr / factor, drop_rate), text, factor)


@dataclass(frozen=True)
class MCLinearEstimator:
    r"""Moments of the MC-dropout mean of a linear unit, derived from the definition (chapter 5)."""

    d: int
    T: int
    w: tuple
    x: tuple
    masks: tuple  #: masks[t][i] is the mask of input i in pass t
    passes: tuple  #: the T stochastic outputs f_t as expressions in the masks
    deterministic: sp.Expr  #: the output of the network in evaluation mode, w·x
    estimator: sp.Expr  #: the MC mean (1/T) Σ_t f_t
    mean: sp.Expr  #: E[MC mean]
    variance: sp.Expr  #: Var[MC mean]
    pass_variance: sp.Expr  #: Var[f_t] of one pass
    expected_plugin_variance: sp.Expr | None  #: E[(1/T) Σ (f_t - MC mean)²], None for T = 1
    expected_sample_variance: sp.Expr | None  #: E[(1/(T-1)) Σ (f_t - MC mean)²], None for T = 1

    def identities(self) -> list[Identity]:
        """The derived results for display, with the factors 1/T and (T-1)/T pulled out front."""
        T = self.T
        out = [
            Identity(rf"\mathbb{{E}}[\hat\mu_{{{T}}}]", self.mean, f"E[mu_{T}]"),
            _pull_out(rf"\operatorname{{Var}}[\hat\mu_{{{T}}}]", self.variance, sp.Rational(1, T),
                      f"Var[mu_{T}]"),
        ]
        if self.expected_plugin_variance is not None:
            out.append(_pull_out(rf"\mathbb{{E}}\Bigl[\tfrac1{{{T}}} \sum_t (f_t - \hat\mu_{{{T}}})^2\Bigr]",
                                 self.expected_plugin_variance, sp.Rational(T - 1, T), "E[plug-in variance]"))
            out.append(Identity(rf"\mathbb{{E}}\Bigl[\tfrac{{1}}{{{T - 1}}} \sum_t (f_t - \hat\mu_{{{T}}})^2\Bigr]",
                                tidy(self.expected_sample_variance, drop_rate), "E[sample variance]"))
        return out


def mc_linear_estimator(d: int = 2, T: int = 3) -> MCLinearEstimator:
    r"""Derive the mean and variance of the MC-dropout estimate of a linear unit.

    Pass :math:`t` computes :math:`f_t = \sum_{i=1}^d w_i m_{ti} x_i / q` with independent masks
    :math:`m_{ti} \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`; the MC estimate is
    :math:`\hat\mu_T = \frac1T \sum_t f_t`. The function computes, by expectation over all
    :math:`T d` masks, :math:`\mathbb E[\hat\mu_T]`, :math:`\operatorname{Var}[\hat\mu_T]`, the
    variance of one pass, and the expected plug-in (divisor :math:`T`) and sample
    (divisor :math:`T-1`) variances. They come out as :math:`w^\top x` (unbiased for the
    deterministic output), :math:`\frac1T \sum_i w_i^2 x_i^2 \frac{1-q}{q}`, :math:`\sum_i w_i^2 x_i^2
    \frac{1-q}{q}`, :math:`\frac{T-1}{T}` times that, and that. See chapter 5, "Monte Carlo dropout";
    :cite:`gal2016dropout`.

    Args:
        d: number of inputs, an int in [1, 4].
        T: number of passes, an int in [1, 4] (the sum runs over :math:`T d` mask symbols).

    Examples:
        >>> mc_linear_estimator(1, 2).mean
        w1*x1
    """
    d = check_int(d, "d", minimum=1, maximum=4)
    T = check_int(T, "T", minimum=1, maximum=4)
    p = drop_rate
    q = 1 - p
    w, x, m = _symbols(d, T)
    dists = {mi: Bernoulli(q) for row in m for mi in row}
    passes = tuple(sum(wi * mi * xi for wi, mi, xi in zip(w, row, x)) / q for row in m)
    estimator = sum(passes) / T
    deterministic = sum(wi * xi for wi, xi in zip(w, x))
    first = {mi: Bernoulli(q) for mi in m[0]}
    plugin = sample = None
    if T > 1:
        squares = sum((f - estimator) ** 2 for f in passes)
        plugin = expectation(squares / T, dists)
        sample = expectation(squares / (T - 1), dists)
    return MCLinearEstimator(
        d, T, w, x, m, passes, deterministic, estimator,
        mean=expectation(estimator, dists),
        variance=variance(estimator, dists),
        pass_variance=variance(passes[0], first),
        expected_plugin_variance=plugin,
        expected_sample_variance=sample,
    )


@dataclass(frozen=True)
class MCQuadraticUnit:
    r"""The MC-dropout mean of a squared unit against its deterministic output (chapter 5)."""

    d: int
    w: tuple
    x: tuple
    masks: tuple
    definition: sp.Expr  #: one stochastic pass, (Σ_i w_i m_i x_i / q)²
    deterministic: sp.Expr  #: the output in evaluation mode, (w·x)²
    mean: sp.Expr  #: E[one pass] = E[MC mean] for every T
    gap: sp.Expr  #: mean - deterministic

    def identities(self) -> list[Identity]:
        return [
            Identity(r"\mathbb{E}[\hat\mu_T] - f(x)", tidy(self.gap, drop_rate), "E[mu_T] - f(x)"),
        ]


def mc_quadratic_unit(d: int = 2) -> MCQuadraticUnit:
    r"""Derive the bias of the MC-dropout mean for the squared unit :math:`f = (w^\top x)^2`.

    One pass computes :math:`(\sum_i w_i m_i x_i / q)^2`; every pass has the same mean, so
    :math:`\mathbb E[\hat\mu_T]` equals it for every :math:`T`. The gap to the deterministic output
    comes out as :math:`\frac{p}{1-p} \sum_i w_i^2 x_i^2`, which is not 0: for a nonlinear
    network the MC mean estimates the average over subnetworks, not the deterministic output.
    See chapter 5, "Monte Carlo dropout", section "Derivation".

    Args:
        d: number of inputs, an int in [1, 6].

    Examples:
        >>> mc_quadratic_unit(1).gap
        p*w1**2*x1**2/(1 - p)
    """
    d = check_int(d, "d", minimum=1, maximum=6)
    p = drop_rate
    q = 1 - p
    w, x, (m,) = _symbols(d, 1)
    unit = (sum(wi * mi * xi for wi, mi, xi in zip(w, m, x)) / q) ** 2
    deterministic = sum(wi * xi for wi, xi in zip(w, x)) ** 2
    mean = expectation(unit, {mi: Bernoulli(q) for mi in m})
    return MCQuadraticUnit(d, w, x, m, unit, deterministic, mean, tidy(mean - deterministic, p))
