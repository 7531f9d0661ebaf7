"""Chapter 1, "Inverted dropout": the moments of one dropped unit and the naive predictor."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._validation import check_choice, check_int

from ._core import Bernoulli, Identity, ZeroMeanNoise, activation, drop_rate, expectation, tidy, variance

__all__ = [
    "DropoutUnitMoments", "dropout_unit_moments",
    "NaivePredictorDecomposition", "naive_predictor_decomposition",
]


@dataclass(frozen=True)
class DropoutUnitMoments:
    """Mean and variance of one dropped unit, derived from its definition."""

    convention: str
    definition: sp.Expr  #: the random output as an expression in the mask symbol
    mask: sp.Symbol
    mean: sp.Expr
    variance: sp.Expr

    def identities(self) -> list[Identity]:
        return [
            Identity(r"\mathbb{E}[\tilde h]", tidy(self.mean, drop_rate), "E[h~]"),
            Identity(r"\operatorname{Var}[\tilde h]", tidy(self.variance, drop_rate), "Var[h~]"),
        ]


def dropout_unit_moments(convention: str = "inverted") -> DropoutUnitMoments:
    r"""Derive :math:`\mathbb E[\tilde h]` and :math:`\operatorname{Var}[\tilde h]` for one unit.

    The unit is :math:`\tilde h = m h / (1-p)` (``"inverted"``) or :math:`\tilde h = m h`
    (``"standard"``), with :math:`m \sim \mathrm{Bernoulli}(1-p)`. The moments are computed by
    :func:`expectation` and :func:`variance`; for inverted dropout they come out as
    :math:`h` and :math:`\frac{p}{1-p} h^2`.

    Examples:
        >>> dropout_unit_moments().mean
        h
    """
    convention = check_choice(convention, "convention", ("inverted", "standard"))
    m, p, h = sp.Symbol("m"), drop_rate, activation
    scale = 1 / (1 - p) if convention == "inverted" else sp.Integer(1)
    unit = m * h * scale
    dists = {m: Bernoulli(1 - p)}
    return DropoutUnitMoments(convention, unit, m, expectation(unit, dists), variance(unit, dists))


@dataclass(frozen=True)
class NaivePredictorDecomposition:
    r"""Bias-variance decomposition of :math:`\hat y = w^\top (m \odot x)` against :math:`y = w^\top x + \varepsilon`."""

    d: int
    w: tuple
    x: tuple
    masks: tuple
    noise_variance: sp.Symbol
    prediction_mean: sp.Expr
    squared_bias: sp.Expr
    variance: sp.Expr
    noise: sp.Expr
    expected_squared_error: sp.Expr

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\operatorname{Bias}^2", tidy(self.squared_bias, p), "Bias^2"),
            Identity(r"\operatorname{Var}[\hat y]", tidy(self.variance, p), "Var[y^]"),
            Identity(r"\operatorname{Var}[y]", self.noise, "Var[y]"),
        ]


def naive_predictor_decomposition(d: int) -> NaivePredictorDecomposition:
    r"""Derive the error decomposition of the naive dropout predictor for a d-dimensional linear model.

    With :math:`m_i \sim \mathrm{Bernoulli}(1-p)` independent, :math:`\hat y = \sum_i w_i m_i x_i`
    and :math:`y = \sum_i w_i x_i + \varepsilon`, :math:`\mathbb E[\varepsilon] = 0`,
    :math:`\mathbb E[\varepsilon^2] = \sigma^2`, it computes the mean :math:`\mathbb E\hat y`, the squared bias
    :math:`(\mathbb E\hat y - \mathbb E y)^2`, the variance :math:`\operatorname{Var}[\hat y]`,
    the noise :math:`\operatorname{Var}[y]` and, separately, :math:`\mathbb E[(\hat y - y)^2]`.
    They come out as :math:`p^2 (w^\top x)^2`, :math:`p(1-p)\sum_i (w_i x_i)^2`, :math:`\sigma^2`
    and their sum. The analysis is a classic one for dropout on the inputs of a linear model
    (:cite:`srivastava2014dropout` study the linear case).

    Args:
        d: number of input features, a positive int (the sum over 2**d masks stays symbolic).
    """
    d = check_int(d, "d", minimum=1)
    p = drop_rate
    w = sp.symbols(f"w1:{d + 1}", real=True)
    x = sp.symbols(f"x1:{d + 1}", real=True)
    m = sp.symbols(f"m1:{d + 1}")
    eps, sigma2 = sp.Symbol("varepsilon", real=True), sp.Symbol("sigma^2", positive=True)
    dists = {mi: Bernoulli(1 - p) for mi in m}
    dists[eps] = ZeroMeanNoise(sigma2)
    y_hat = sum(wi * mi * xi for wi, mi, xi in zip(w, m, x))
    y = sum(wi * xi for wi, xi in zip(w, x)) + eps
    mean = expectation(y_hat, dists)
    bias2 = sp.simplify((mean - expectation(y, dists)) ** 2)
    return NaivePredictorDecomposition(
        d, w, x, m, sigma2,
        prediction_mean=mean,
        squared_bias=bias2,
        variance=variance(y_hat, dists),
        noise=variance(y, dists),
        expected_squared_error=expectation((y_hat - y) ** 2, dists),
    )
