r"""Chapter 14, "Dropout in modern training": R-Drop's KL term, LayerDrop's depth, LoRA dropout's noise, derived.

* :func:`r_drop_kl` -- the symmetric KL divergence between two softmax distributions, from the
  definition of KL, for :math:`K` classes: it equals :math:`\frac12 (P - Q)\cdot(a - b)` in the
  logits, vanishes when the two passes agree (logits equal up to a shift), is positive otherwise,
  has gradient 0 at agreement and Hessian :math:`\operatorname{diag}(P) - PP^\top` there.
* :func:`layerdrop_depth` -- mean and variance of the number of layers LayerDrop computes, from
  the masks.
* :func:`lora_dropout_moments` -- mean and variance of a LoRA layer's output under dropout of the
  adapter input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .._validation import check_int_in_range
from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = ["RDropKL", "r_drop_kl", "LayerDropDepth", "layerdrop_depth", "LoRADropoutMoments", "lora_dropout_moments"]


@dataclass(frozen=True)
class RDropKL:
    r"""The symmetric KL term of R-Drop for :math:`K` classes, derived (see :func:`r_drop_kl`)."""

    a: tuple[sp.Symbol, ...]  #: logits of pass :math:`a`
    b: tuple[sp.Symbol, ...]  #: logits of pass :math:`b`
    P: tuple[sp.Expr, ...]  #: :math:`\operatorname{softmax}(a)`
    Q: tuple[sp.Expr, ...]  #: :math:`\operatorname{softmax}(b)`
    definition: sp.Expr  #: :math:`\frac12(\mathrm{KL}(P\|Q) + \mathrm{KL}(Q\|P))`, from :math:`\sum P \log(P/Q)`
    logit_form: sp.Expr  #: :math:`\frac12 \sum_k (P_k - Q_k)(a_k - b_k)`
    at_shift: sp.Expr  #: the definition at :math:`b = a + c\mathbf 1`, simplified
    term_factor: sp.Expr  #: :math:`(x - y)(\log x - \log y)` at :math:`x = y e^s`, divided by :math:`y`
    negative_set: sp.Set  #: where ``term_factor`` < 0 (empty)
    zero_set: sp.Set  #: where ``term_factor`` = 0 (only :math:`s = 0`)
    gradient_at_agreement: tuple[sp.Expr, ...]  #: :math:`\partial D/\partial a_k` at :math:`b = a`
    hessian_at_agreement: sp.Matrix  #: :math:`\partial^2 D/\partial a_i \partial a_j` at :math:`b = a`
    hessian_in_probabilities: sp.Matrix  #: the same, written in symbols :math:`P_k` once sympy has matched it

    def identities(self) -> list[Identity]:
        """The logit form, the value at a shift, and the Hessian at agreement, for display."""
        k = len(self.a)
        return [
            Identity(r"D(a, b)", sp.Rational(1, 2) * sp.Add(*[(sp.Symbol(f"P_{i + 1}") - sp.Symbol(f"Q_{i + 1}"))
                                                                 * (self.a[i] - self.b[i]) for i in range(k)],
                                                               evaluate=False), "D(a, b)"),
            Identity(r"D(a, a + c\mathbf{1})", self.at_shift, "D(a, a + c 1)"),
            Identity(r"\nabla_a D\,\big|_{b=a}", sp.Matrix(self.gradient_at_agreement).T, "grad_a D at b = a"),
            Identity(r"\nabla_a^2 D\,\big|_{b=a}", self.hessian_in_probabilities, "hess_a D at b = a"),
        ]


def r_drop_kl(n_classes: int = 3) -> RDropKL:
    r"""Derive the properties of R-Drop's symmetric KL term for ``n_classes`` classes.

    With :math:`P = \operatorname{softmax}(a)`, :math:`Q = \operatorname{softmax}(b)` and
    :math:`D = \frac12(\mathrm{KL}(P\|Q) + \mathrm{KL}(Q\|P))` written from the definition
    :math:`\mathrm{KL}(P\|Q) = \sum_k P_k \log(P_k/Q_k)`, sympy finds:

    * :math:`D = \frac12 \sum_k (P_k - Q_k)(a_k - b_k)`: the log-normalizers cancel because
      :math:`\sum_k P_k = \sum_k Q_k = 1`;
    * :math:`D(a, a + c\mathbf 1) = 0`: it vanishes when the passes agree (equal distributions);
    * each term of :math:`\sum_k (P_k - Q_k)(\log P_k - \log Q_k)` is :math:`y\,s(e^s - 1)` with
      :math:`x = y e^s`, which ``solveset`` shows is never negative and zero only at :math:`s = 0`,
      i.e. :math:`P_k = Q_k`; so :math:`D > 0` whenever the distributions differ;
    * the gradient :math:`\nabla_a D` is 0 at agreement, so R-Drop's gradient there is the
      cross-entropy's alone; the Hessian is :math:`\operatorname{diag}(P) - PP^\top`, the Fisher
      information of the softmax, so near agreement :math:`D \approx \frac12 \delta^\top
      (\operatorname{diag}P - PP^\top)\delta` with :math:`\delta = a - b`.

    Args:
        n_classes: :math:`K`, an int from 2 to 4.

    See chapter 14, "Dropout in modern training", section "Derivation"; :cite:`liang2021rdrop`.

    Examples:
        >>> d = r_drop_kl(2)
        >>> d.at_shift, d.negative_set
        (0, EmptySet)
    """
    return _r_drop_kl(check_int_in_range(n_classes, "n_classes", 2, 4, allowed="an int from 2 to 4"))


@lru_cache(maxsize=None)
def _r_drop_kl(k: int) -> RDropKL:
    a = sp.symbols(f"a1:{k + 1}", real=True)
    b = sp.symbols(f"b1:{k + 1}", real=True)
    za, zb = sum(sp.exp(v) for v in a), sum(sp.exp(v) for v in b)
    P = tuple(sp.exp(v) / za for v in a)
    Q = tuple(sp.exp(v) / zb for v in b)

    def kl(u, w):
        return sum(ui * sp.log(ui / wi) for ui, wi in zip(u, w))

    definition = sp.Rational(1, 2) * (kl(P, Q) + kl(Q, P))
    logit_form = sp.Rational(1, 2) * sum((Pi - Qi) * (ai - bi) for Pi, Qi, ai, bi in zip(P, Q, a, b))
    expanded = sp.expand_log(definition, force=True)
    if sp.simplify(expanded - logit_form) != 0:  # pragma: no cover - sympy regression
        raise RuntimeError("sympy did not reduce the symmetric KL to its logit form")
    c = sp.Symbol("c", real=True)
    at_shift = sp.simplify(sp.expand_log(definition.subs({bi: ai + c for ai, bi in zip(a, b)}), force=True))
    x, y = sp.symbols("x y", positive=True)
    s = sp.Symbol("s", real=True)
    term = (x - y) * (sp.log(x) - sp.log(y))
    factor = sp.factor(sp.simplify(sp.expand_log(term.subs(x, y * sp.exp(s)), force=True) / y))
    negative = sp.solveset(factor < 0, s, sp.S.Reals)
    zeros = sp.solveset(factor, s, sp.S.Reals)
    agree = {bi: ai for ai, bi in zip(a, b)}
    grad = tuple(sp.simplify(sp.diff(logit_form, ai).subs(agree)) for ai in a)
    hess = sp.Matrix(k, k, lambda i, j: sp.simplify(sp.diff(logit_form, a[i], a[j]).subs(agree)))
    # Written in the probabilities: the entries of diag(P) - P P^T, accepted only if sympy finds them equal
    p_sym = sp.symbols(f"P_1:{k + 1}", positive=True)
    candidate = sp.Matrix(k, k, lambda i, j: (p_sym[i] if i == j else 0) - p_sym[i] * p_sym[j])
    if sp.simplify(hess - candidate.subs(dict(zip(p_sym, P)))) != sp.zeros(k, k):  # pragma: no cover
        raise RuntimeError("the Hessian at agreement is not diag(P) - P P^T")
    return RDropKL(a, b, P, Q, definition, logit_form, at_shift, factor, negative, zeros, grad, hess, candidate)


@dataclass(frozen=True)
class LayerDropDepth:
    r"""The number of layers LayerDrop computes in a training pass, derived (see :func:`layerdrop_depth`)."""

    n_layers: int  #: :math:`L`
    p: sp.Symbol  #: the drop rate of a layer
    mean: sp.Expr  #: :math:`\mathbb E[N]`
    variance: sp.Expr  #: :math:`\operatorname{Var}[N]`
    none_kept: sp.Expr  #: :math:`P(N = 0)`

    def identities(self) -> list[Identity]:
        p = self.p
        return [Identity(r"\mathbb{E}[N]", tidy(self.mean, p), "E[N]"),
                Identity(r"\operatorname{Var}[N]", tidy(self.variance, p), "Var[N]"),
                Identity(r"P(N = 0)", self.none_kept, "P(N = 0)")]


def layerdrop_depth(n_layers: int = 6) -> LayerDropDepth:
    r"""Mean and variance of the number :math:`N = \sum_l z_l` of layers applied, :math:`z_l \sim \mathrm{Bernoulli}(1-p)`.

    Computed by :func:`~dropoutbook.derivations.expectation` over the :math:`L` layer masks; it
    comes out as :math:`L(1-p)` and :math:`Lp(1-p)`, and the probability that no layer at all is
    applied (the output is the input) as :math:`p^L`, by enumerating the masks.

    Args:
        n_layers: :math:`L`, an int from 1 to 12.

    See chapter 14, section "Derivation"; :cite:`fan2020reducing`.

    Examples:
        >>> layerdrop_depth(4).mean
        4 - 4*p
    """
    return _layerdrop_depth(check_int_in_range(n_layers, "n_layers", 1, 12, allowed="an int from 1 to 12"))


@lru_cache(maxsize=None)
def _layerdrop_depth(n: int) -> LayerDropDepth:
    p = drop_rate
    z = sp.symbols(f"z1:{n + 1}")
    dists = {zi: Bernoulli(1 - p) for zi in z}
    count = sum(z)
    none_kept = sp.factor(expectation(sp.Mul(*[1 - zi for zi in z]), dists))
    return LayerDropDepth(n, p, sp.expand(expectation(count, dists)), sp.factor(variance(count, dists)), none_kept)


@dataclass(frozen=True)
class LoRADropoutMoments:
    r"""Mean and variance of one output of a LoRA layer under adapter-input dropout (see :func:`lora_dropout_moments`)."""

    x: tuple[sp.Symbol, ...]  #: the input :math:`x_k`
    w: tuple[sp.Symbol, ...]  #: the frozen weights :math:`W_{0,jk}` of output :math:`j`
    m: tuple[sp.Symbol, ...]  #: the update :math:`M_{jk} = \frac{\alpha}{r}(BA)_{jk}`
    p: sp.Symbol  #: the drop rate
    output: sp.Expr  #: :math:`y_j = \sum_k W_{0,jk} x_k + \sum_k M_{jk} \frac{\epsilon_k}{1-p} x_k`
    mean: sp.Expr  #: :math:`\mathbb E[y_j]`
    variance: sp.Expr  #: :math:`\operatorname{Var}[y_j]`

    def identities(self) -> list[Identity]:
        p = self.p
        return [Identity(r"\mathbb{E}[y_j]", self.mean, "E[y_j]"),
                Identity(r"\operatorname{Var}[y_j]", tidy(self.variance, p), "Var[y_j]")]


def lora_dropout_moments(in_features: int = 3) -> LoRADropoutMoments:
    r"""Derive the mean and variance of a LoRA output when dropout acts on the adapter's input only.

    Output :math:`j` of :class:`~dropoutbook.LoRALinear` (bias left out) is
    :math:`y_j = \sum_k W_{0,jk} x_k + \sum_k M_{jk}\,\epsilon_k x_k/(1-p)` with independent
    :math:`\epsilon_k \sim \mathrm{Bernoulli}(1-p)`. :func:`~dropoutbook.derivations.expectation`
    gives :math:`\mathbb E[y_j] = \sum_k (W_{0,jk} + M_{jk}) x_k`, the undropped layer, and
    :math:`\operatorname{Var}[y_j] = \frac{p}{1-p}\sum_k M_{jk}^2 x_k^2`: the noise is that of the
    adapter alone, whatever the size of the frozen weights (dropout on the input of the whole layer
    would give :math:`\frac{p}{1-p}\sum_k (W_{0,jk} + M_{jk})^2 x_k^2`).

    Args:
        in_features: the number of inputs, an int from 1 to 6.

    See chapter 14, section "Derivation"; :cite:`hu2022lora`.

    Examples:
        >>> sp.factor(lora_dropout_moments(1).variance)
        -m1**2*p*x1**2/(p - 1)
    """
    return _lora_moments(check_int_in_range(in_features, "in_features", 1, 6, allowed="an int from 1 to 6"))


@lru_cache(maxsize=None)
def _lora_moments(d: int) -> LoRADropoutMoments:
    p = drop_rate
    x = sp.symbols(f"x1:{d + 1}", real=True)
    w = sp.symbols(f"w1:{d + 1}", real=True)
    m = sp.symbols(f"m1:{d + 1}", real=True)
    eps = sp.symbols(f"epsilon1:{d + 1}")
    dists = {e: Bernoulli(1 - p) for e in eps}
    y = sum(wk * xk for wk, xk in zip(w, x)) + sum(mk * ek / (1 - p) * xk for mk, ek, xk in zip(m, eps, x))
    return LoRADropoutMoments(x, w, m, p, y, sp.expand(expectation(y, dists)), sp.factor(variance(y, dists)))
