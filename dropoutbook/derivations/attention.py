r"""Chapter 9, "Dropout in transformers": derivations.

:func:`attention_row_moments` derives what attention dropout does to one row of attention
weights: the mean and variance of its sum and of the attention output.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = ["AttentionRowMoments", "attention_row_moments"]


@dataclass(frozen=True)
class AttentionRowMoments:
    r"""Moments of one row of attention weights after attention dropout (see :func:`attention_row_moments`)."""

    n: int
    weights: tuple  #: :math:`a_1, \dots, a_n`
    values: tuple  #: :math:`v_1, \dots, v_n` (one coordinate of the value vectors)
    masks: tuple
    row_sum_mean_any_weights: sp.Expr  #: :math:`\mathbb E[S]` before the constraint :math:`\sum_j a_j = 1`
    row_sum_mean: sp.Expr  #: :math:`\mathbb E[S]` on the simplex (:math:`a_n = 1 - \sum_{j<n} a_j`)
    row_sum_variance: sp.Expr
    output_mean: sp.Expr
    output_variance: sp.Expr
    uniform_row_sum_variance: sp.Expr  #: the row-sum variance for uniform weights :math:`a_j = 1/n`

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\mathbb{E}\Big[\sum_j \tilde a_j\Big]", self.row_sum_mean_any_weights, "E[row sum]"),
            Identity(r"\mathbb{E}\Big[\sum_j \tilde a_j\Big]_{\sum_j a_j = 1}", self.row_sum_mean,
                     "E[row sum], on the simplex"),
            Identity(r"\operatorname{Var}\Big[\sum_j \tilde a_j\Big]", tidy(self.row_sum_variance, p),
                     "Var[row sum]"),
            Identity(r"\mathbb{E}\Big[\sum_j \tilde a_j v_j\Big]", self.output_mean, "E[output]"),
            Identity(r"\operatorname{Var}\Big[\sum_j \tilde a_j v_j\Big]", tidy(self.output_variance, p),
                     "Var[output]"),
        ]


def attention_row_moments(n: int = 3) -> AttentionRowMoments:
    r"""Derive the mean and variance of the sum of a dropped row of attention weights, and of the output.

    A row of attention weights :math:`a_1, \dots, a_n` sums to one (a softmax output). Attention dropout gives :math:`\tilde a_j = m_j a_j / (1-p)`, :math:`m_j \sim
    \mathrm{Bernoulli}(1-p)` independent. The function computes, with
    :func:`~dropoutbook.derivations.expectation` and :func:`~dropoutbook.derivations.variance`,
    the mean and variance of the row sum :math:`S = \sum_j \tilde a_j` and of the output
    :math:`o = \sum_j \tilde a_j v_j` (one coordinate). They come out as
    :math:`\mathbb E[S] = \sum_j a_j`, which is 1 once :math:`a_n = 1 - \sum_{j<n} a_j` is
    substituted, :math:`\operatorname{Var}[S] = \frac{p}{1-p}\sum_j a_j^2`
    (:math:`\frac{p}{(1-p)n}` for uniform weights), :math:`\mathbb E[o] = \sum_j a_j v_j` and
    :math:`\operatorname{Var}[o] = \frac{p}{1-p}\sum_j a_j^2 v_j^2`. Cached.

    Args:
        n: number of keys, an int from 1 to 8.

    See chapter 9, "Dropout in transformers", section "Derivation".

    Examples:
        >>> attention_row_moments(2).row_sum_mean
        1
    """
    n = check_int(n, "n", minimum=1, maximum=8)
    return _attention_row_moments(int(n))


@lru_cache(maxsize=None)
def _attention_row_moments(n: int) -> AttentionRowMoments:
    p = drop_rate
    a = sp.symbols(f"a1:{n + 1}", positive=True)
    v = sp.symbols(f"v1:{n + 1}", real=True)
    m = sp.symbols(f"m1:{n + 1}")
    dists = {mj: Bernoulli(1 - p) for mj in m}
    dropped = [mj * aj / (1 - p) for mj, aj in zip(m, a)]
    row_sum = sum(dropped)
    output = sum(dj * vj for dj, vj in zip(dropped, v))
    # a softmax row sums to one: impose it by substituting the last weight
    on_simplex = {a[-1]: 1 - sum(a[:-1])}
    row_mean = expectation(row_sum, dists)
    row_var = variance(row_sum, dists)
    uniform = sp.simplify(row_var.subs({aj: sp.Rational(1, n) for aj in a}))
    return AttentionRowMoments(
        n, a, v, m,
        row_sum_mean_any_weights=row_mean,
        row_sum_mean=sp.simplify(row_mean.subs(on_simplex)),
        row_sum_variance=row_var,
        output_mean=expectation(output, dists),
        output_variance=variance(output, dists),
        uniform_row_sum_variance=uniform,
    )
