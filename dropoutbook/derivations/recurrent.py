r"""Chapter 11, "Dropout in recurrent networks": derivations.

* :func:`signal_survival` -- a value carried through :math:`k` steps of a masked recurrent
  connection: the probability that it survives, and the mean and variance of its inverted-dropout
  gain, with a fresh mask per step and with one mask per sequence.
* :func:`dropconnect_moments` -- the mean and variance of an output unit and the covariance of
  two output units of a linear layer, under dropout of its inputs and under DropConnect.
* :func:`zoneout_moments` -- the mean (the test-time rule) and variance of a zoned-out state.

Everything is computed with :func:`~dropoutbook.derivations.expectation` from the definitions;
nothing is typed in. ``p`` is the drop probability (for zoneout: the probability of keeping the
previous state).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .._validation import check_int_in_range

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = [
    "n_steps", "SignalSurvival", "signal_survival", "DropConnectMoments", "dropconnect_moments",
    "ZoneoutMoments", "zoneout_moments",
]

#: The number :math:`k` of time steps a value is carried through.
n_steps = sp.Symbol("k", positive=True, integer=True)


@dataclass(frozen=True)
class SignalSurvival:
    r"""A value carried through :math:`k` masked steps, with per-step masks and with one locked mask (see :func:`signal_survival`)."""

    per_step_survival: sp.Expr  #: :math:`P(m_1 \cdots m_k = 1)`
    locked_survival: sp.Expr  #: :math:`P(m^k = 1)`
    per_step_gain_mean: sp.Expr  #: :math:`\mathbb E[\prod_t m_t/(1-p)]`
    per_step_gain_variance: sp.Expr
    locked_gain_mean: sp.Expr  #: :math:`\mathbb E[(m/(1-p))^k]`
    locked_gain_variance: sp.Expr

    def identities(self) -> list[Identity]:
        p = drop_rate
        per_step_var = self.per_step_gain_variance.replace(  # show (1/(1-p))**k as (1 - p)**(-k)
            lambda e: e.is_Pow and sp.simplify(e.base - 1 / (1 - p)) == 0, lambda e: (1 - p) ** (-e.exp))
        assert sp.simplify(per_step_var - self.per_step_gain_variance) == 0
        return [
            Identity(r"P(\text{survives } k \text{ steps})_{\text{per step}}", self.per_step_survival,
                     "P(survives k steps), per-step masks"),
            Identity(r"P(\text{survives } k \text{ steps})_{\text{locked}}", self.locked_survival,
                     "P(survives k steps), one mask per sequence"),
            Identity(r"\mathbb{E}[G_k]_{\text{per step}}", self.per_step_gain_mean, "E[gain], per-step masks"),
            Identity(r"\operatorname{Var}[G_k]_{\text{per step}}", per_step_var,
                     "Var[gain], per-step masks"),
            Identity(r"\mathbb{E}[G_k]_{\text{locked}}", tidy(self.locked_gain_mean, p), "E[gain], one mask"),
            Identity(r"\operatorname{Var}[G_k]_{\text{locked}}", self.locked_gain_variance, "Var[gain], one mask"),
        ]


def signal_survival() -> SignalSurvival:
    r"""Derive what :math:`k` steps of a masked recurrent connection do to the value of one unit.

    The value passes the mask :math:`k` times. With a fresh mask at every step it is multiplied by
    :math:`m_1 m_2 \cdots m_k`, :math:`m_t \sim \mathrm{Bernoulli}(1-p)` independent; with one mask
    per sequence (locked) by :math:`m^k`, the same :math:`m` every time. The survival probability
    is the expectation of that product (an indicator): for per-step masks the product of the
    :math:`k` one-step expectations (independence, ``sympy.product`` over :math:`t = 1..k`), for the
    locked mask the expectation of :math:`m^k` by summing over :math:`m \in \{0, 1\}` with a
    symbolic :math:`k`. They come out as :math:`(1-p)^k` and :math:`1-p`.

    With inverted scaling, a surviving value is also multiplied by :math:`1/(1-p)` at every step;
    the *gain* :math:`G_k` is the product of the :math:`k` factors :math:`m_t/(1-p)`. Its mean is
    1 for per-step masks (and its variance :math:`(1-p)^{-k} - 1` grows with :math:`k`), but
    :math:`(1-p)^{1-k}` for a locked mask applied at every step to a carried state.

    The result is cached (it is immutable). See chapter 11, "Dropout in recurrent networks",
    section "Derivation".

    Examples:
        >>> signal_survival().per_step_survival
        (1 - p)**k
    """
    return _signal_survival()


@lru_cache(maxsize=None)
def _signal_survival() -> SignalSurvival:
    p, k = drop_rate, n_steps
    t = sp.Symbol("t", positive=True, integer=True)
    m = sp.Symbol("m")
    one_mask = {m: Bernoulli(1 - p)}
    gain = m / (1 - p)

    def over_steps(one_step):  # independent masks: the expectation of the product is the product
        return sp.powsimp(sp.product(one_step, (t, 1, k)), force=True)

    per_step_survival = over_steps(expectation(m, one_mask))
    per_step_mean = over_steps(expectation(gain, one_mask))
    per_step_second = over_steps(expectation(gain**2, one_mask))
    locked_survival = expectation(m**k, one_mask, method="enumerate")
    locked_mean = expectation(gain**k, one_mask, method="enumerate")
    locked_second = expectation(gain**(2 * k), one_mask, method="enumerate")
    return SignalSurvival(
        per_step_survival, locked_survival,
        per_step_mean, per_step_second - per_step_mean**2,
        sp.simplify(locked_mean), sp.simplify(locked_second - locked_mean**2),
    )


@dataclass(frozen=True)
class DropConnectMoments:
    r"""Moments of the outputs :math:`y_1, y_2` of a linear layer under input dropout and DropConnect (see :func:`dropconnect_moments`)."""

    n: int
    weights: tuple  #: ``(w1, w2)``, each a tuple of the symbols :math:`w_{j,i}`
    inputs: tuple  #: the symbols :math:`x_i`
    input_dropout_mean: sp.Expr
    input_dropout_variance: sp.Expr
    input_dropout_covariance: sp.Expr
    dropconnect_mean: sp.Expr
    dropconnect_variance: sp.Expr
    dropconnect_covariance: sp.Expr

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\mathbb{E}[y_1]_{\text{input dropout}}", self.input_dropout_mean, "E[y1], input dropout"),
            Identity(r"\mathbb{E}[y_1]_{\text{DropConnect}}", self.dropconnect_mean, "E[y1], DropConnect"),
            Identity(r"\operatorname{Var}[y_1]_{\text{input dropout}}", tidy(self.input_dropout_variance, p),
                     "Var[y1], input dropout"),
            Identity(r"\operatorname{Var}[y_1]_{\text{DropConnect}}", tidy(self.dropconnect_variance, p),
                     "Var[y1], DropConnect"),
            Identity(r"\operatorname{Cov}[y_1, y_2]_{\text{input dropout}}", tidy(self.input_dropout_covariance, p),
                     "Cov[y1, y2], input dropout"),
            Identity(r"\operatorname{Cov}[y_1, y_2]_{\text{DropConnect}}", self.dropconnect_covariance,
                     "Cov[y1, y2], DropConnect"),
        ]


def dropconnect_moments(n: int = 3) -> DropConnectMoments:
    r"""Derive the mean, variance and covariance of two output units under input dropout and DropConnect.

    A linear layer with ``n`` inputs :math:`x_i` and two output units,
    :math:`y_j = \sum_i w_{j,i} x_i`. *Input dropout* multiplies input :math:`i` by
    :math:`m_i/(1-p)`, one mask per input, shared by both units; *DropConnect* multiplies weight
    :math:`w_{j,i}` by :math:`M_{j,i}/(1-p)`, one mask per weight. All masks are
    :math:`\mathrm{Bernoulli}(1-p)` and independent. :func:`~dropoutbook.derivations.expectation`
    computes :math:`\mathbb E[y_1]`, :math:`\operatorname{Var}[y_1]` and
    :math:`\operatorname{Cov}[y_1, y_2] = \mathbb E[y_1 y_2] - \mathbb E[y_1]\mathbb E[y_2]`.
    The means and variances agree, :math:`\sum_i w_{1,i} x_i` and
    :math:`\frac{p}{1-p}\sum_i w_{1,i}^2 x_i^2`; the covariance is
    :math:`\frac{p}{1-p}\sum_i w_{1,i} w_{2,i} x_i^2` under input dropout and 0 under DropConnect.

    Args:
        n: number of inputs, an int from 1 to 6.

    The result is cached. See chapter 11, "Dropout in recurrent networks", section "Derivation";
    :cite:`wan2013regularization`.

    Examples:
        >>> dropconnect_moments(1).dropconnect_covariance
        0
    """
    return _dropconnect_moments(check_int_in_range(n, "n", 1, 6))


@lru_cache(maxsize=None)
def _dropconnect_moments(n: int) -> DropConnectMoments:
    p = drop_rate
    x = sp.symbols(f"x1:{n + 1}", real=True)
    w1 = sp.symbols(f"w1_1:{n + 1}", real=True)
    w2 = sp.symbols(f"w2_1:{n + 1}", real=True)
    m = sp.symbols(f"m1:{n + 1}")
    M1 = sp.symbols(f"M1_1:{n + 1}")
    M2 = sp.symbols(f"M2_1:{n + 1}")
    keep = Bernoulli(1 - p)

    def moments(y1, y2, masks):
        dists = {s: keep for s in masks}
        mean1, mean2 = expectation(y1, dists), expectation(y2, dists)
        cov = sp.simplify(expectation(y1 * y2, dists) - mean1 * mean2)
        return sp.expand(mean1), sp.factor(variance(y1, dists)), sp.factor(cov)

    inp = moments(sum(w * mi * xi for w, mi, xi in zip(w1, m, x)) / (1 - p),
                  sum(w * mi * xi for w, mi, xi in zip(w2, m, x)) / (1 - p), m)
    dc = moments(sum(w * Mi * xi for w, Mi, xi in zip(w1, M1, x)) / (1 - p),
                 sum(w * Mi * xi for w, Mi, xi in zip(w2, M2, x)) / (1 - p), M1 + M2)
    return DropConnectMoments(n, (w1, w2), x, *inp, *dc)


@dataclass(frozen=True)
class ZoneoutMoments:
    r"""Mean and variance of the zoned-out state :math:`d\,h_{\text{prev}} + (1-d)\,h_{\text{new}}` (see :func:`zoneout_moments`)."""

    definition: sp.Expr
    mask: sp.Symbol
    h_prev: sp.Symbol
    h_new: sp.Symbol
    mean: sp.Expr  #: the test-time rule
    variance: sp.Expr

    def identities(self) -> list[Identity]:
        return [Identity(r"\mathbb{E}[h_t]", self.mean, "E[h_t]"),
                Identity(r"\operatorname{Var}[h_t]", tidy(self.variance, drop_rate), "Var[h_t]")]


def zoneout_moments() -> ZoneoutMoments:
    r"""Derive the mean and variance of one zoned-out unit, :math:`h_t = d\,h_{t-1} + (1-d)\,\hat h_t`.

    The zoneout mask :math:`d \sim \mathrm{Bernoulli}(p)` keeps the previous value with probability
    :math:`p` (Krueger et al. :cite:`krueger2017zoneout`); :math:`h_{t-1}` and the cell's new value
    :math:`\hat h_t` are held fixed. The mean, :math:`p\,h_{t-1} + (1-p)\,\hat h_t`, is the
    deterministic rule used at test time; the variance is :math:`p(1-p)(h_{t-1} - \hat h_t)^2`.

    See chapter 11, "Dropout in recurrent networks", section "Derivation".

    Examples:
        >>> zoneout_moments().mean
        h_new*(1 - p) + h_prev*p
    """
    p = drop_rate
    d = sp.Symbol("d")
    h_prev, h_new = sp.symbols("h_prev h_new", real=True)
    state = d * h_prev + (1 - d) * h_new
    dists = {d: Bernoulli(p)}
    mean = sp.collect(sp.expand(expectation(state, dists)), [h_prev, h_new], lambda c: sp.factor(-(-c)))
    return ZoneoutMoments(state, d, h_prev, h_new, mean, sp.factor(variance(state, dists)))
