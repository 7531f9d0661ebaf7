"""The machinery of :mod:`dropoutbook.derivations`: random symbols, expectation, variance, display.

See chapter 1, "Inverted dropout", section "Derivation".
"""


from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .._validation import check_choice

__all__ = [
    "Bernoulli", "ZeroMeanNoise", "expectation", "variance", "tidy", "Identity",
    "drop_rate", "keep_rate", "activation",
]

#: The drop probability :math:`p` (a positive symbol; results hold for :math:`0 < p < 1`).
drop_rate = sp.Symbol("p", positive=True)
#: The keep probability :math:`q = 1 - p`, for results stated in :math:`q` (chapters 5 and 6).
keep_rate = sp.Symbol("q", positive=True)
#: A pre-dropout activation :math:`h`.
activation = sp.Symbol("h", real=True)


@dataclass(frozen=True)
class Bernoulli:
    """Distribution of a mask symbol: 1 with probability ``keep``, 0 otherwise."""

    keep: sp.Expr

    def moment(self, k: int) -> sp.Expr:
        """:math:`\\mathbb E[m^k]`: 1 for :math:`k = 0` and ``keep`` for every :math:`k \\ge 1`, since :math:`m^k = m`."""
        return sp.Integer(1) if k == 0 else sp.sympify(self.keep)


@dataclass(frozen=True)
class ZeroMeanNoise:
    """Distribution of a noise symbol known only through :math:`\\mathbb E[\\varepsilon] = 0` and :math:`\\mathbb E[\\varepsilon^2]` = ``variance``."""

    variance: sp.Expr

    def moment(self, k: int) -> sp.Expr:
        if k == 0:
            return sp.Integer(1)
        if k == 1:
            return sp.Integer(0)
        if k == 2:
            return sp.sympify(self.variance)
        raise ValueError(f"ZeroMeanNoise knows moments up to order 2; the expression needs order {k}")


class _NotPolynomial(ValueError):
    """The expression is not a polynomial in the random symbols (so enumeration may still work)."""


def _check_distributions(distributions) -> dict:
    if not isinstance(distributions, Mapping) or not distributions:
        raise TypeError("distributions must be a non-empty mapping {sympy.Symbol: Bernoulli | ZeroMeanNoise}")
    for s, d in distributions.items():
        if not isinstance(s, sp.Symbol):
            raise TypeError(f"distributions keys must be sympy Symbols, got {s!r}")
        if not hasattr(d, "moment"):
            raise TypeError(f"distribution of {s} must be Bernoulli or ZeroMeanNoise, got {type(d).__name__}")
    return dict(distributions)


def _expectation_by_moments(expr: sp.Expr, dists: dict) -> sp.Expr:
    symbols = list(dists)
    try:
        poly = sp.Poly(sp.expand(expr), *symbols)
    except sp.PolynomialError as exc:
        raise _NotPolynomial(
            "method='moments' needs an expression that is a polynomial in the random symbols; "
            "use method='enumerate' for other expressions of Bernoulli masks"
        ) from exc
    total = sp.Integer(0)
    for exponents, coeff in poly.terms():
        term = coeff
        for s, k in zip(symbols, exponents):
            term *= dists[s].moment(k)
        total += term
    return total


def _expectation_by_enumeration(expr: sp.Expr, dists: dict) -> sp.Expr:
    symbols = list(dists)
    for s in symbols:
        if not isinstance(dists[s], Bernoulli):
            raise ValueError(f"method='enumerate' needs Bernoulli symbols only; {s} is {type(dists[s]).__name__}")
    if len(symbols) > 20:
        raise ValueError(f"method='enumerate' sums 2**n terms; n = {len(symbols)} is above the limit of 20")
    total = sp.Integer(0)
    for values in itertools.product((0, 1), repeat=len(symbols)):
        prob = sp.Integer(1)
        for s, v in zip(symbols, values):
            q = sp.sympify(dists[s].keep)
            prob *= q if v else 1 - q
        total += prob * expr.subs(dict(zip(symbols, values)))
    return total


def expectation(expr, distributions: Mapping, *, method: str = "auto") -> sp.Expr:
    r"""Expectation of ``expr`` over independent random symbols.

    Args:
        expr: a sympy expression in the random symbols and any other (fixed) symbols.
        distributions: mapping from each random symbol to its distribution,
            :class:`Bernoulli` or :class:`ZeroMeanNoise`; symbols are independent.
        method: ``"moments"`` (polynomial expansion and moments), ``"enumerate"`` (sum over all
            :math:`2^n` mask values, Bernoulli symbols only) or ``"auto"`` (moments when the
            expression is a polynomial in the random symbols, enumeration otherwise).

    Returns:
        The expectation, simplified.

    Examples:
        >>> m = sp.Symbol("m"); q = sp.Symbol("q")
        >>> expectation(m**3 + 2, {m: Bernoulli(q)})
        q + 2
    """
    dists = _check_distributions(distributions)
    expr = sp.sympify(expr)
    method = check_choice(method, "method", ("auto", "moments", "enumerate"))
    if method == "moments":
        result = _expectation_by_moments(expr, dists)
    elif method == "enumerate":
        result = _expectation_by_enumeration(expr, dists)
    else:
        try:
            result = _expectation_by_moments(expr, dists)
        except _NotPolynomial:
            result = _expectation_by_enumeration(expr, dists)
    return sp.simplify(result)


def variance(expr, distributions: Mapping, *, method: str = "auto") -> sp.Expr:
    r""":math:`\operatorname{Var}[X] = \mathbb E[X^2] - \mathbb E[X]^2`, both expectations computed by :func:`expectation`.

    Args:
        expr: the random quantity :math:`X`, a sympy expression in the random symbols.
        distributions: mapping from each random symbol to :class:`Bernoulli` or :class:`ZeroMeanNoise`.
        method: ``"auto"``, ``"moments"`` or ``"enumerate"``, as for :func:`expectation`.

    Examples:
        >>> m, q = sp.Symbol("m"), sp.Symbol("q")
        >>> sp.factor(variance(m, {m: Bernoulli(q)}))
        -q*(q - 1)
    """
    second = expectation(sp.sympify(expr) ** 2, distributions, method=method)
    first = expectation(expr, distributions, method=method)
    return sp.simplify(second - first**2)


def tidy(expr, *probabilities: sp.Symbol) -> sp.Expr:
    r"""Rewrite ``expr`` for reading: factored, with every factor :math:`(s - 1)` shown as :math:`(1 - s)`.

    Only the printed form changes; ``sp.simplify(tidy(e, p) - e) == 0``.

    Args:
        expr: a sympy expression.
        *probabilities: the symbols :math:`s` whose factors :math:`s - 1` are to be flipped.

    Examples:
        >>> p, h = sp.symbols("p h", positive=True)
        >>> tidy(h**2 / (1 - p) - h**2, p)
        h**2*p/(1 - p)
    """
    expr = sp.factor(sp.simplify(expr))
    num, den = sp.fraction(expr)
    sign = sp.Integer(1)

    def flip(part):
        nonlocal sign
        out = []
        for factor in sp.Mul.make_args(part):
            base, exp = factor.as_base_exp()
            for s in probabilities:
                if sp.expand(base - (s - 1)) == 0:
                    base, sign = 1 - s, sign * (-1) ** exp
            out.append(base**exp)
        return sp.Mul(*out)

    num, den = flip(num), flip(den)
    return sign * num / den


@dataclass(frozen=True)
class Identity:
    """A derived equation ``lhs = rhs`` that displays as LaTeX in a notebook and as text elsewhere."""

    lhs: str
    rhs: sp.Expr
    lhs_text: str = ""

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.lhs} = {sp.latex(self.rhs)}$"

    def __repr__(self) -> str:
        return f"{self.lhs_text or self.lhs} = {sp.sstr(self.rhs)}"
