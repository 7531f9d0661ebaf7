r"""Chapter 10, "Variational dropout and sparsification": derivations.

Four closed forms of the chapter, each computed from its definition:

* :func:`gaussian_dropout_match`: the variance :math:`\alpha` of Gaussian dropout whose mean and
  variance equal those of Bernoulli dropout, :math:`\alpha = p/(1-p)`, by taking both pairs of
  moments with :func:`~dropoutbook.derivations.expectation` and solving for :math:`\alpha`;
* :func:`local_reparameterization_moments`: mean, variance and covariances of the
  pre-activations of a linear layer with Gaussian weights (the local reparameterization trick);
* :func:`log_uniform_kl`: the negative KL divergence of :math:`\mathcal N(\theta, \alpha\theta^2)` from the
  log-uniform prior, :math:`\tfrac12\log\alpha - \mathbb E\log|\varepsilon| + \text{const}`, free of :math:`\theta`;
* :func:`kl_large_alpha_limit`: the value that the exact :math:`-\mathrm{KL}` of sparse variational
  dropout (up to its constant) tends to as :math:`\alpha \to \infty`, :math:`\tfrac12(\gamma + \log 2)`,
  from the moments :math:`\mathbb E|z|^s` of a standard normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, ZeroMeanNoise, activation, drop_rate, expectation, tidy, variance

__all__ = [
    "gaussian_noise_variance", "GaussianDropoutMatch", "gaussian_dropout_match",
    "LocalReparameterizationMoments", "local_reparameterization_moments",
    "KLLargeAlphaLimit", "kl_large_alpha_limit", "LogUniformKL", "log_uniform_kl",
]

#: The variance :math:`\alpha > 0` of the multiplicative noise of Gaussian dropout.
gaussian_noise_variance = sp.Symbol("alpha", positive=True)


@dataclass(frozen=True)
class GaussianDropoutMatch:
    """Moments of Bernoulli and Gaussian dropout of one unit, and the :math:`\\alpha` that matches them."""

    bernoulli_mean: sp.Expr  #: :math:`\mathbb E[m h/(1-p)]`
    bernoulli_variance: sp.Expr  #: :math:`\operatorname{Var}[m h/(1-p)]`
    gaussian_mean: sp.Expr  #: :math:`\mathbb E[h(1 + \sqrt\alpha\,\varepsilon)]`
    gaussian_variance: sp.Expr  #: :math:`\operatorname{Var}[h(1 + \sqrt\alpha\,\varepsilon)]`
    alpha: sp.Expr  #: the solution of "Gaussian variance = Bernoulli variance" for :math:`\alpha`
    standard_squared_cv: sp.Expr  #: :math:`\operatorname{Var}/\mathbb E^2` of standard dropout :math:`m h`

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\mathbb{E}\left[\tfrac{m}{1-p} h\right]", tidy(self.bernoulli_mean, p), "E[m h/(1-p)]"),
            Identity(r"\operatorname{Var}\left[\tfrac{m}{1-p} h\right]", tidy(self.bernoulli_variance, p),
                     "Var[m h/(1-p)]"),
            Identity(r"\mathbb{E}[\xi h]", self.gaussian_mean, "E[xi h]"),
            Identity(r"\operatorname{Var}[\xi h]", self.gaussian_variance, "Var[xi h]"),
            Identity(r"\alpha", tidy(self.alpha, p), "alpha"),
        ]


def gaussian_dropout_match() -> GaussianDropoutMatch:
    r"""Derive the Gaussian dropout that has the mean and the variance of inverted Bernoulli dropout.

    Inverted dropout: :math:`\tilde h = m h/(1-p)`, :math:`m \sim \mathrm{Bernoulli}(1-p)`.
    Gaussian dropout: :math:`\tilde h = \xi h`, :math:`\xi = 1 + \sqrt\alpha\,\varepsilon` with
    :math:`\mathbb E\varepsilon = 0`, :math:`\mathbb E\varepsilon^2 = 1`. Both means come out as
    :math:`h`; equating the variances and solving for :math:`\alpha` gives :math:`\alpha = p/(1-p)`.
    The squared coefficient of variation :math:`\operatorname{Var}/\mathbb E^2` of standard dropout
    :math:`m h` is the same :math:`p/(1-p)`, so the matching does not depend on where the factor
    :math:`1-p` is put. Chapter 10, section "Derivation"; :cite:`srivastava2014dropout`,
    :cite:`kingma2015variational`.

    Examples:
        >>> gaussian_dropout_match().alpha
        -p/(p - 1)
    """
    p, h, alpha = drop_rate, activation, gaussian_noise_variance
    m, eps = sp.Symbol("m"), sp.Symbol("varepsilon", real=True)
    bern = {m: Bernoulli(1 - p)}
    gauss = {eps: ZeroMeanNoise(1)}
    inverted = m * h / (1 - p)
    gaussian = (1 + sp.sqrt(alpha) * eps) * h
    b_mean, b_var = expectation(inverted, bern), variance(inverted, bern)
    g_mean, g_var = expectation(gaussian, gauss), variance(gaussian, gauss)
    solutions = sp.solve(sp.Eq(g_var, b_var), alpha)
    if len(solutions) != 1:  # pragma: no cover - a guard on sympy, not on the mathematics
        raise RuntimeError(f"expected one positive alpha, sympy found {solutions}")
    standard = m * h
    cv2 = sp.simplify(variance(standard, bern) / expectation(standard, bern) ** 2)
    return GaussianDropoutMatch(b_mean, b_var, g_mean, g_var, sp.simplify(solutions[0]), cv2)


@dataclass(frozen=True)
class LocalReparameterizationMoments:
    r"""Moments of two pre-activations :math:`b_j = \sum_i x_i w_{ji}` of a layer with Gaussian weights."""

    d: int
    x: tuple  #: inputs :math:`x_1, \dots, x_d`
    theta: tuple  #: weight means :math:`\theta_{1i}` of output 1
    theta2: tuple  #: weight means :math:`\theta_{2i}` of output 2
    alpha: tuple  #: noise variances :math:`\alpha_i` (relative, :math:`\sigma^2 = \alpha\theta^2`)
    mean: sp.Expr  #: :math:`\mathbb E[b_1]`
    variance: sp.Expr  #: :math:`\operatorname{Var}[b_1]` with independent weight noise
    covariance_independent: sp.Expr  #: :math:`\operatorname{Cov}[b_1, b_2]`, independent weight noise
    covariance_shared: sp.Expr  #: :math:`\operatorname{Cov}[b_1, b_2]`, one noise per input unit (dropout on the inputs)
    variance_shared: sp.Expr  #: :math:`\operatorname{Var}[b_1]`, one noise per input unit

    def identities(self) -> list[Identity]:
        return [
            Identity(r"\mathbb{E}[b_1]", self.mean, "E[b1]"),
            Identity(r"\operatorname{Var}[b_1]", self.variance, "Var[b1]"),
            Identity(r"\operatorname{Cov}[b_1, b_2]", self.covariance_independent, "Cov[b1,b2]"),
        ]


def local_reparameterization_moments(d: int = 3) -> LocalReparameterizationMoments:
    r"""Derive the mean and variance of a pre-activation under Gaussian weight noise (the local reparameterization trick).

    Two outputs :math:`b_1 = \sum_i x_i w_{1i}`, :math:`b_2 = \sum_i x_i w_{2i}` of a layer with
    :math:`d` fixed inputs. With independent multiplicative weight noise,
    :math:`w_{ji} = \theta_{ji}(1 + \sqrt{\alpha_i}\,\varepsilon_{ji})`, the expectation over the
    noise gives :math:`\mathbb E[b_1] = \sum_i x_i\theta_{1i}`,
    :math:`\operatorname{Var}[b_1] = \sum_i \alpha_i \theta_{1i}^2 x_i^2` and
    :math:`\operatorname{Cov}[b_1, b_2] = 0`: the pre-activations can be sampled independently
    from :math:`\mathcal N(\mu, v)`, which is the trick :cite:`kingma2015variational`. With one noise
    per *input unit* shared by all outputs (Gaussian dropout on the layer's input), the variance is
    the same but the covariance is :math:`\sum_i \alpha_i x_i^2 \theta_{1i}\theta_{2i} \ne 0`, so sampling each
    output independently changes the model. Chapter 10, section "Derivation".

    Args:
        d: number of inputs, a positive int (small: the expressions are expanded).
    """
    d = check_int(d, "d", minimum=1, maximum=8)
    x = sp.symbols(f"x1:{d + 1}", real=True)
    t1 = tuple(sp.Symbol(f"theta_1{i}", real=True) for i in range(1, d + 1))
    t2 = tuple(sp.Symbol(f"theta_2{i}", real=True) for i in range(1, d + 1))
    a = sp.symbols(f"alpha1:{d + 1}", positive=True)
    e1 = tuple(sp.Symbol(f"varepsilon_1{i}", real=True) for i in range(1, d + 1))
    e2 = tuple(sp.Symbol(f"varepsilon_2{i}", real=True) for i in range(1, d + 1))
    noise = {e: ZeroMeanNoise(1) for e in (*e1, *e2)}
    b1 = sum(xi * ti * (1 + sp.sqrt(ai) * ei) for xi, ti, ai, ei in zip(x, t1, a, e1))
    b2 = sum(xi * ti * (1 + sp.sqrt(ai) * ei) for xi, ti, ai, ei in zip(x, t2, a, e2))
    mean1 = expectation(b1, noise)
    cov = sp.expand(expectation(b1 * b2, noise) - mean1 * expectation(b2, noise))
    # shared: output 2 sees the same noise as output 1 on every input unit
    b2_shared = sum(xi * ti * (1 + sp.sqrt(ai) * ei) for xi, ti, ai, ei in zip(x, t2, a, e1))
    noise1 = {e: ZeroMeanNoise(1) for e in e1}
    cov_shared = sp.expand(expectation(b1 * b2_shared, noise1) - mean1 * expectation(b2_shared, noise1))
    var1 = sp.expand(variance(b1, noise))
    return LocalReparameterizationMoments(
        d, x, t1, t2, a,
        mean=sp.expand(mean1),
        variance=var1,
        covariance_independent=sp.simplify(cov),
        covariance_shared=cov_shared,
        variance_shared=sp.expand(variance(b1, noise1)),
    )


@dataclass(frozen=True)
class KLLargeAlphaLimit:
    r"""The limit of :math:`\tfrac12\log\alpha - \mathbb E_{\varepsilon\sim\mathcal N(1,\alpha)}\log|\varepsilon|` as :math:`\alpha\to\infty`."""

    absolute_moment: sp.Expr  #: :math:`\mathbb E|z|^s` of :math:`z \sim \mathcal N(0,1)`, as a function of :math:`s`
    expected_log_abs: sp.Expr  #: :math:`\mathbb E\log|z| = \frac{d}{ds}\mathbb E|z|^s` at :math:`s = 0`
    limit: sp.Expr  #: :math:`-\mathbb E\log|z|`

    def identities(self) -> list[Identity]:
        return [
            Identity(r"\mathbb{E}\,|z|^s", self.absolute_moment, "E|z|^s"),
            Identity(r"\mathbb{E}\log|z|", self.expected_log_abs, "E log|z|"),
        ]


def kl_large_alpha_limit() -> KLLargeAlphaLimit:
    r"""Derive the large-:math:`\alpha` limit of the exact :math:`-\mathrm{KL}` of sparse variational dropout (without its constant).

    With :math:`\varepsilon = 1 + \sqrt\alpha\,z`, :math:`\tfrac12\log\alpha - \mathbb E\log|\varepsilon|
    = -\mathbb E\log|\alpha^{-1/2} + z| \to -\mathbb E\log|z|` as :math:`\alpha \to \infty`. Sympy
    integrates :math:`\mathbb E|z|^s = \int_0^\infty x^s\, 2\phi(x)\,dx` and differentiates it at
    :math:`s = 0`, since :math:`\frac{d}{ds}|z|^s = |z|^s \log|z|`; the result is
    :math:`\mathbb E\log|z| = -\tfrac12(\gamma + \log 2)`. An approximation with :math:`C = -k_1` tends to
    0 only if :math:`k_1` equals this limit, :math:`\tfrac12(\gamma + \log 2) \approx 0.63518`; the
    fitted :math:`k_1 = 0.63576` of :cite:`molchanov2017variational` is :math:`5.8 \cdot 10^{-4}` larger.
    Chapter 10, section "Derivation".

    Examples:
        >>> round(float(kl_large_alpha_limit().limit), 6)
        0.635181
    """
    x, s = sp.Symbol("x", positive=True), sp.Symbol("s", positive=True)
    density = 2 * sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)  # of |z|, on x > 0
    moment = sp.simplify(sp.integrate(x**s * density, (x, 0, sp.oo)))
    e_log = sp.simplify(sp.expand_func(sp.diff(moment, s).subs(s, 0)))
    return KLLargeAlphaLimit(moment, e_log, sp.simplify(-e_log))


@dataclass(frozen=True)
class LogUniformKL:
    r"""The negative KL divergence of :math:`q(w) = \mathcal N(\theta, \alpha\theta^2)` from the log-uniform prior, up to its expectation."""

    change_of_variables: sp.Expr  #: :math:`\log q(\theta\varepsilon) - \log q_\varepsilon(\varepsilon)`
    entropy: sp.Expr  #: entropy of :math:`\varepsilon \sim \mathcal N(1, \alpha)`
    expected_log_abs: sp.Symbol  #: the symbol standing for :math:`\mathbb E\log|\varepsilon|` (no closed form)
    prior_constant: sp.Symbol  #: the constant :math:`c` of the improper prior :math:`\log p(w) = -\log|w| + c`
    neg_kl: sp.Expr  #: :math:`-\mathrm{KL} = \mathbb E_q[\log p(w) - \log q(w)]`

    def identities(self) -> list[Identity]:
        return [
            Identity(r"\log q(\theta\varepsilon) - \log q_\varepsilon(\varepsilon)", self.change_of_variables,
                     "log q(theta eps) - log q_eps(eps)"),
            Identity(r"H[\mathcal N(1, \alpha)]", self.entropy, "H[N(1, alpha)]"),
            Identity(r"-\mathrm{KL}(q \,\|\, p)", self.neg_kl, "-KL(q || p)"),
        ]


def log_uniform_kl() -> LogUniformKL:
    r"""Derive :math:`-\mathrm{KL}(q\,\|\,p)` for :math:`q(w) = \mathcal N(\theta, \alpha\theta^2)` and :math:`p(w) \propto 1/|w|`.

    Write :math:`w = \theta\varepsilon`, :math:`\varepsilon \sim \mathcal N(1, \alpha)`. Sympy expands the log
    density of :math:`q` at :math:`\theta\varepsilon` against the log density of :math:`\varepsilon` (they differ by
    :math:`-\log|\theta|`), integrates the entropy of :math:`\mathcal N(1, \alpha)`, and assembles
    :math:`\mathbb E_q[\log p(w) - \log q(w)]` with :math:`\log p(w) = -\log|\theta| - \log|\varepsilon| + c`; the
    expectation :math:`\mathbb E\log|\varepsilon|`, which has no closed form, stays a symbol. The result,
    :math:`\tfrac12\log\alpha - \mathbb E\log|\varepsilon| + \tfrac12\log(2\pi e) + c`, does not depend on
    :math:`\theta` :cite:`molchanov2017variational`. Chapter 10, section "Derivation".

    Examples:
        >>> result = log_uniform_kl()
        >>> result.neg_kl.free_symbols == {result.expected_log_abs, result.prior_constant, gaussian_noise_variance}
        True
    """
    alpha = gaussian_noise_variance
    theta = sp.Symbol("theta", positive=True)  # the prior and q are symmetric under w -> -w: |theta|
    eps, x, w = sp.Symbol("varepsilon", real=True), sp.Symbol("x", real=True), sp.Symbol("w", real=True)
    e_log, c = sp.Symbol(r"\mathbb{E}\log|\varepsilon|"), sp.Symbol("c")

    def log_normal(v, mean, var):
        return sp.expand_log(sp.log(sp.exp(-(v - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)), force=True)

    change = sp.simplify(log_normal(w, theta, alpha * theta**2).subs(w, theta * eps) - log_normal(eps, 1, alpha))
    density = sp.exp(-(x - 1) ** 2 / (2 * alpha)) / sp.sqrt(2 * sp.pi * alpha)
    entropy = sp.simplify(-sp.integrate(density * log_normal(x, 1, alpha), (x, -sp.oo, sp.oo)))
    # E_q[log p(w)] = -log|theta| - E log|eps| + c;  E_q[log q(w)] = E[log q_eps(eps)] + change = -H + change
    expected_log_prior = sp.expand_log(-sp.log(theta), force=True) - e_log + c
    neg_kl = sp.expand(expected_log_prior - (-entropy + change))
    return LogUniformKL(change, entropy, e_log, c, neg_kl)
