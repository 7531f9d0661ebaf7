r"""Chapter 6, "Dropout and BatchNorm: the variance shift": derivations.

Two settings, kept apart because their formulas differ:

* :func:`variance_shift`: inverted dropout *directly* before BatchNorm, one unit, no layer in
  between. The shift ratio depends only on :math:`q` and :math:`\mu^2/\sigma^2`.
* :func:`linear_variance_shift`: dropout, then a linear unit :math:`z = w^\top \tilde x`, then
  BatchNorm. The shift depends on the weights and on the correlation of the inputs.

Here :math:`q = 1 - p` is the keep probability (the book's :math:`p` is the drop probability).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, ZeroMeanNoise, expectation, keep_rate, tidy, variance

__all__ = [
    "VarianceShiftDerivation", "variance_shift",
    "LinearVarianceShiftDerivation", "linear_variance_shift",
]

@dataclass(frozen=True)
class VarianceShiftDerivation:
    r"""Moments of a unit before BatchNorm in training and at test time, and what BatchNorm makes of them."""

    definition: sp.Expr  #: the training-time input of BatchNorm, :math:`m(\mu + \varepsilon)/q`
    mask: sp.Symbol
    noise: sp.Symbol
    mean: sp.Symbol  #: :math:`\mu`
    sigma2: sp.Symbol  #: :math:`\sigma^2`
    train_mean: sp.Expr
    train_variance: sp.Expr
    test_mean: sp.Expr
    test_variance: sp.Expr
    ratio: sp.Expr  #: train over test variance
    test_output_variance: sp.Expr  #: variance of the normalized output at test time (running statistics)
    train_output_variance: sp.Expr  #: the same in training (it is 1)
    scale_error: sp.Expr  #: :math:`k`, the train over test standard deviation of the output

    def identities(self) -> list[Identity]:
        q = keep_rate
        return [
            Identity(r"\mathbb{E}_\text{train}[\tilde x]", self.train_mean, "E_train[x~]"),
            Identity(r"\operatorname{Var}_\text{train}[\tilde x]", _collect(self.train_variance, q), "Var_train[x~]"),
            Identity(r"\operatorname{Var}_\text{test}[x]", self.test_variance, "Var_test[x]"),
            Identity(r"\frac{\operatorname{Var}_\text{train}}{\operatorname{Var}_\text{test}}",
                     _collect(self.ratio, q), "ratio"),
            Identity(r"\operatorname{Var}_\text{test}[\hat y]",
                     sp.Pow(_collect(1 / self.test_output_variance, q), -1, evaluate=False), "Var_test[y^]"),
            Identity("k", sp.sqrt(_collect(self.scale_error**2, q), evaluate=False), "k"),
        ]


def _collect(expr: sp.Expr, q: sp.Symbol) -> sp.Expr:
    """Show a sum as its terms, each tidied (e.g. ``sigma2/q + mu**2*(1 - q)/q``)."""
    expr = sp.expand(expr)
    groups: dict = {}
    for term in sp.Add.make_args(expr):
        key = tuple(sorted((s for s in term.free_symbols if s != q), key=str))
        groups[key] = groups.get(key, 0) + term
    return sp.Add(*(tidy(g, q) for g in groups.values()), evaluate=False)


def variance_shift() -> VarianceShiftDerivation:
    r"""Derive the variance shift of a unit that passes through inverted dropout straight into BatchNorm.

    The unit is :math:`x = \mu + \varepsilon` with :math:`\mathbb E\varepsilon = 0`,
    :math:`\mathbb E\varepsilon^2 = \sigma^2` (any distribution), and the layer's training-time
    input is :math:`\tilde x = m x / q`, :math:`m \sim \mathrm{Bernoulli}(q)` independent of
    :math:`x`. Computed by :func:`~dropoutbook.derivations.expectation` and
    :func:`~dropoutbook.derivations.variance`:

    * training: :math:`\mathbb E\tilde x = \mu`,
      :math:`\operatorname{Var}\tilde x = \sigma^2/q + \mu^2(1-q)/q`;
    * test (dropout off): mean :math:`\mu`, variance :math:`\sigma^2`; their ratio;
    * BatchNorm's normalized test-time output :math:`\hat y = (x - \mu_\text{run})/\sqrt{\sigma^2_\text{run}}`
      with the running statistics equal to the training moments (their limit; BatchNorm's
      :math:`\epsilon` ignored): its variance is :math:`\sigma^2/\operatorname{Var}\tilde x`, against 1
      in training, so its standard deviation is off by the factor :math:`1/k`,
      :math:`k = \sqrt{\operatorname{Var}\tilde x/\sigma^2}` (the :math:`k` of chapter 6 and
      :cite:`li2019understanding`).

    Examples:
        >>> variance_shift().train_mean
        mu
    """
    q = keep_rate
    m, eps = sp.Symbol("m"), sp.Symbol("varepsilon", real=True)
    mu, sigma2 = sp.Symbol("mu", real=True), sp.Symbol("sigma^2", positive=True)
    dists = {m: Bernoulli(q), eps: ZeroMeanNoise(sigma2)}
    x = mu + eps
    dropped = m * x / q
    train_mean = expectation(dropped, dists)
    train_var = variance(dropped, dists)
    test_mean = expectation(x, dists)
    test_var = variance(x, dists)
    ratio = sp.simplify(train_var / test_var)
    # BatchNorm at test time normalizes with the running statistics = the training moments
    test_out = variance((x - train_mean) / sp.sqrt(train_var), dists)
    train_out = variance((dropped - train_mean) / sp.sqrt(train_var), dists)
    scale_error = sp.simplify(sp.sqrt(train_out / test_out))
    return VarianceShiftDerivation(
        definition=dropped, mask=m, noise=eps, mean=mu, sigma2=sigma2,
        train_mean=train_mean, train_variance=train_var, test_mean=test_mean, test_variance=test_var,
        ratio=ratio, test_output_variance=sp.simplify(test_out), train_output_variance=sp.simplify(train_out),
        scale_error=scale_error,
    )


@dataclass(frozen=True)
class LinearVarianceShiftDerivation:
    r"""Variance of a linear unit :math:`z = w^\top \tilde x` before BatchNorm, with and without dropout on its inputs."""

    d: int
    w: tuple
    mu: tuple
    loadings: tuple  #: :math:`c_i`, each input's loading on a shared unit-variance factor (correlation)
    sigma2: tuple  #: each input's own variance :math:`\sigma_i^2`
    train_variance: sp.Expr
    test_variance: sp.Expr
    excess: sp.Expr  #: train minus test variance
    ratio: sp.Expr

    def identities(self) -> list[Identity]:
        q = keep_rate
        return [
            Identity(r"\operatorname{Var}_\text{test}[z]", sp.factor(self.test_variance), "Var_test[z]"),
            Identity(r"\operatorname{Var}_\text{train}[z] - \operatorname{Var}_\text{test}[z]",
                     tidy(self.excess, q), "Var_train[z] - Var_test[z]"),
        ]


def linear_variance_shift(d: int) -> LinearVarianceShiftDerivation:
    r"""Derive the variance shift when a linear layer sits between dropout and BatchNorm.

    Inputs :math:`x_i = \mu_i + c_i \eta + \varepsilon_i` (:math:`i = 1..d`), with a shared factor
    :math:`\eta` of variance 1 (so :math:`\operatorname{Cov}(x_i, x_j) = c_i c_j` for :math:`i \ne j`)
    and own noises :math:`\varepsilon_i` of variance :math:`\sigma_i^2`, all independent and of
    mean zero. BatchNorm sees :math:`z = \sum_i w_i m_i x_i / q` in training and
    :math:`z = \sum_i w_i x_i` at test time. The computation gives
    :math:`\operatorname{Var}_\text{test} = (\sum_i w_i c_i)^2 + \sum_i w_i^2\sigma_i^2 = w^\top\Sigma w` and
    :math:`\operatorname{Var}_\text{train} - \operatorname{Var}_\text{test} = \frac{1-q}{q}\sum_i w_i^2\,\mathbb E[x_i^2]`:
    the excess does not depend on the correlations, the test variance does, so the ratio depends on
    the weights. Chapter 6, "Dropout and BatchNorm: the variance shift".

    Args:
        d: number of inputs of the linear unit, a positive int.
    """
    d = check_int(d, "d", minimum=1)
    q = keep_rate
    w = sp.symbols(f"w1:{d + 1}", real=True)
    mu = sp.symbols(f"mu1:{d + 1}", real=True)
    c = sp.symbols(f"c1:{d + 1}", real=True)
    s2 = sp.symbols(f"sigma^2_1:{d + 1}", positive=True)
    m = sp.symbols(f"m1:{d + 1}")
    e = sp.symbols(f"varepsilon1:{d + 1}", real=True)
    eta = sp.Symbol("eta", real=True)
    dists = {mi: Bernoulli(q) for mi in m}
    dists.update({ei: ZeroMeanNoise(si) for ei, si in zip(e, s2)})
    dists[eta] = ZeroMeanNoise(sp.Integer(1))
    x = [mi_ + ci * eta + ei for mi_, ci, ei in zip(mu, c, e)]
    train = sum(wi * mi * xi for wi, mi, xi in zip(w, m, x)) / q
    test = sum(wi * xi for wi, xi in zip(w, x))
    train_var = variance(train, dists)
    test_var = variance(test, dists)
    return LinearVarianceShiftDerivation(
        d=d, w=w, mu=mu, loadings=c, sigma2=s2,
        train_variance=train_var, test_variance=test_var,
        excess=sp.simplify(train_var - test_var), ratio=sp.simplify(train_var / test_var),
    )
