r"""Chapter 2, "Dropout as implicit L2 regularization": derivations.

Two models, each written down from its definition and averaged over the dropout masks by
:func:`~dropoutbook.derivations.expectation`:

* :func:`linear_dropout_regression`: linear regression with inverted dropout on the inputs. It
  derives the expected loss, the penalty (expected minus plain loss), the gradient, the Hessian,
  the per-feature ridge penalties, and the minimiser.
* :func:`logistic_dropout_penalty_derivation`: one example of logistic regression. It derives the
  quadratic (second-order Taylor) approximation of the dropout penalty of :cite:`wager2013dropout`,
  the curvature :math:`A''(z)` of the log-partition function, and the exact penalty by enumerating
  the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._validation import check_int

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy, variance

__all__ = [
    "LinearDropoutRegression", "linear_dropout_regression",
    "LogisticDropoutPenalty", "logistic_dropout_penalty_derivation",
]

#: The loss normalisations :func:`linear_dropout_regression` knows: the factor in front of
#: :math:`\sum_i (y_i - w^\top x_i)^2`, as a function of n.
NORMALISATIONS = {
    "half_mean": lambda n: sp.Rational(1, 2 * n),  # 1/(2n) sum, the book's convention
    "mean": lambda n: sp.Rational(1, n),            # 1/n sum, "mean squared error"
    "half_sum": lambda n: sp.Rational(1, 2),        # 1/2 sum, as in Wager et al. (2013)
}


def _show(expr, *others: sp.Symbol) -> sp.Expr:
    r"""Display form of an expression proportional to :math:`p/(1-p)`: ``c * p/(1-p) * rest`` (printing only).

    Sympy distributes a number over a sum, so :math:`4(p-1)` prints as :math:`4p - 4`; this keeps the
    factor :math:`\frac{p}{1-p}` visible. Falls back to :func:`tidy` for other expressions.
    """
    p = drop_rate
    ratio = sp.factor(sp.simplify(expr * (1 - p) / p))
    if p in ratio.free_symbols:
        return tidy(expr, p, *others)
    coeff, rest = ratio.as_coeff_Mul()
    return sp.Mul(coeff * p / (1 - p), tidy(rest, *others) if others else rest)


@dataclass(frozen=True)
class LinearDropoutRegression:
    r"""Linear regression under inverted input dropout, derived for symbolic data of size :math:`n \times d`."""

    n: int
    d: int
    normalisation: str
    X: sp.Matrix          #: the inputs :math:`x_{ij}`, an n x d matrix of symbols
    y: sp.Matrix          #: the targets, an n x 1 matrix of symbols
    w: sp.Matrix          #: the weights, a d x 1 matrix of symbols
    masks: sp.Matrix      #: the masks :math:`m_{ij} \sim \mathrm{Bernoulli}(1-p)`, n x d
    dropout_loss: sp.Expr  #: the loss with dropped inputs, a random expression in the masks
    plain_loss: sp.Expr    #: the loss without dropout
    expected_loss: sp.Expr  #: :math:`\mathbb E_m` of ``dropout_loss``, derived
    penalty: sp.Expr       #: ``expected_loss - plain_loss``, simplified
    gradient: sp.Matrix    #: gradient of ``expected_loss`` with respect to ``w``
    hessian: sp.Matrix     #: Hessian of ``expected_loss``
    plain_hessian: sp.Matrix  #: Hessian of ``plain_loss``
    ridge_penalties: tuple  #: :math:`\lambda_j` such that expected loss :math:`= c\,(\|y - Xw\|^2 + \sum_j \lambda_j w_j^2)`

    def minimiser(self, values: dict | None = None) -> sp.Matrix:
        r"""Solve :math:`\nabla_w \mathbb E[L] = 0` for ``w`` (after substituting ``values``, if given).

        With ``values`` mapping every data symbol (and ``p``) to numbers the solve is exact and
        fast; without, it is symbolic, which is practical for :math:`d \le 2`.
        """
        grad = self.gradient if values is None else self.gradient.subs(values)
        solution = sp.solve(list(grad), list(self.w), dict=True)
        if len(solution) != 1:
            raise ValueError(f"the gradient has {len(solution)} zeros; give values for which the system is regular")
        return sp.Matrix([sp.factor(sp.cancel(solution[0][wj])) for wj in self.w])

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\mathbb{E}_m[L_{\mathrm{drop}}(w)] - L(w)", _show(self.penalty), "E[L_drop] - L"),
        ]

    def ridge_identities(self) -> list[Identity]:
        return [Identity(rf"\lambda_{{{j + 1}}}", _show(lam), f"lambda_{j + 1}")
                for j, lam in enumerate(self.ridge_penalties)]

    def hessian_identities(self) -> list[Identity]:
        change = (self.hessian - self.plain_hessian).applyfunc(lambda e: _show(e) if e != 0 else e)
        return [Identity(r"\nabla^2 \mathbb{E}_m[L_{\mathrm{drop}}] - \nabla^2 L", change, "H_drop - H")]


def linear_dropout_regression(n: int, d: int, normalisation: str = "half_mean") -> LinearDropoutRegression:
    r"""Derive the expected loss of linear regression with inverted dropout on the inputs.

    The data are symbols :math:`x_{ij}`, :math:`y_i` (:math:`i \le n`, :math:`j \le d`), the masks
    :math:`m_{ij} \sim \mathrm{Bernoulli}(1-p)` are independent, and the loss is

    .. math:: L_{\mathrm{drop}}(w) = c_n \sum_{i=1}^n \Big(y_i - \sum_j w_j \frac{m_{ij} x_{ij}}{1-p}\Big)^2

    with :math:`c_n = 1/(2n)` (``"half_mean"``, the book's convention), :math:`1/n` (``"mean"``) or
    :math:`1/2` (``"half_sum"``). Its expectation over the masks is computed by
    :func:`~dropoutbook.derivations.expectation`; the penalty, gradient and Hessian follow by sympy
    subtraction and differentiation, and the per-feature ridge penalties :math:`\lambda_j` by reading
    off the coefficient of :math:`w_j^2` in the penalty relative to the coefficient :math:`c_n` of
    :math:`y_1^2` in the plain loss. The book states the results as
    :math:`\frac{p}{2n(1-p)}\sum_{i,j} w_j^2 x_{ij}^2` (``"half_mean"``) and
    :math:`\lambda_j = \frac{p}{1-p}\sum_i x_{ij}^2`.

    See chapter 2, "Dropout as implicit L2 regularization", section "Derivation".

    Args:
        n: number of examples, a positive int (the derivation is exact for any n; keep it small).
        d: number of features, a positive int.
        normalisation: ``"half_mean"``, ``"mean"`` or ``"half_sum"``.
    """
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}, got {normalisation!r}")
    c = NORMALISATIONS[normalisation](n)
    p = drop_rate
    X = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"x_{i + 1}{j + 1}", real=True))
    y = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"y_{i + 1}", real=True))
    w = sp.Matrix(d, 1, lambda j, _: sp.Symbol(f"w_{j + 1}", real=True))
    masks = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"m_{i + 1}{j + 1}"))
    dropped = sp.Matrix(n, d, lambda i, j: masks[i, j] * X[i, j] / (1 - p))
    residual = lambda inputs, i: y[i] - sum(w[j] * inputs[i, j] for j in range(d))  # noqa: E731
    dropout_loss = c * sum(residual(dropped, i) ** 2 for i in range(n))
    plain_loss = c * sum(residual(X, i) ** 2 for i in range(n))
    # E over all masks, taken example by example: the loss is a sum over examples and example i
    # involves only its own masks m_i1..m_id (linearity of expectation; smaller sympy problems)
    expected = sum(
        (expectation(c * residual(dropped, i) ** 2, {masks[i, j]: Bernoulli(1 - p) for j in range(d)},
                     method="moments") for i in range(n)),
        sp.Integer(0),
    )
    penalty = sp.factor(sp.cancel(sp.together(expected - plain_loss)))
    gradient = sp.Matrix([sp.cancel(sp.diff(expected, wj)) for wj in w])
    hessian = sp.hessian(expected, list(w)).applyfunc(sp.cancel)
    plain_hessian = sp.hessian(plain_loss, list(w)).applyfunc(sp.cancel)
    data_coefficient = sp.Poly(sp.expand(plain_loss), y[0]).coeff_monomial(y[0] ** 2)
    expanded_penalty = sp.expand(penalty)
    lambdas = tuple(
        sp.factor(sp.cancel(sp.Poly(expanded_penalty, wj).coeff_monomial(wj**2) / data_coefficient)) for wj in w
    )
    return LinearDropoutRegression(
        n, d, normalisation, X, y, w, masks, dropout_loss, plain_loss, expected, penalty,
        gradient, hessian, plain_hessian, lambdas,
    )


@dataclass(frozen=True)
class LogisticDropoutPenalty:
    r"""Dropout penalty of one example of logistic regression, :math:`\ell(z) = A(z) - yz`, :math:`A(z) = \log(1 + e^z)`."""

    d: int
    w: tuple
    x: tuple
    masks: tuple
    label: sp.Symbol
    logit: sp.Expr               #: :math:`z = w^\top x`
    dropped_logit: sp.Expr       #: :math:`\tilde z = \sum_j w_j m_j x_j/(1-p)`
    curvature: sp.Expr           #: :math:`A''(z)`, derived by differentiating :math:`A`
    curvature_minus_pi_one_minus_pi: sp.Expr  #: :math:`A''(z) - \sigma(z)(1 - \sigma(z))`, simplified (0)
    label_term: sp.Expr          #: :math:`\mathbb E[-y\tilde z] - (-yz)`, derived (0: labels drop out)
    logit_variance: sp.Expr      #: :math:`\operatorname{Var}[\tilde z]`, derived
    quadratic_penalty: sp.Expr   #: :math:`\mathbb E[\text{2nd-order Taylor of } A(\tilde z)] - A(z)`
    quadratic_in_curvature: sp.Expr  #: the same, with :math:`A''(z)` left as the symbol ``curvature_symbol``
    curvature_symbol: sp.Symbol
    exact_penalty: sp.Expr       #: :math:`\mathbb E[A(\tilde z)] - A(z)` by enumeration of the :math:`2^d` masks
    probability: sp.Symbol       #: the symbol :math:`\pi` used for display

    def small_p_slopes(self) -> tuple[sp.Expr, sp.Expr]:
        r"""The slopes :math:`\partial/\partial p` at :math:`p = 0` of the exact and of the quadratic penalty.

        Both penalties vanish at :math:`p = 0`; for small :math:`p` they are about :math:`p` times
        these slopes. The slopes differ (the exact one involves :math:`A(z - w_j x_j)`, the value when
        feature :math:`j` is dropped), so the ratio of the two penalties does not tend to 1 as
        :math:`p \to 0`. Chapter 2, "Pitfalls and errata".
        """
        p = drop_rate
        return (sp.diff(self.exact_penalty, p).subs(p, 0), sp.diff(self.quadratic_penalty, p).subs(p, 0))

    def identities(self) -> list[Identity]:
        pi = self.probability
        in_pi = self.quadratic_in_curvature.subs(self.curvature_symbol, pi * (1 - pi))
        return [
            Identity(r"A''(z)", self.curvature, "A''(z)"),
            Identity(r"\operatorname{Var}[\tilde z]", _show(self.logit_variance), "Var[z~]"),
            Identity(r"R^{q}", _show(in_pi, pi), "R^q"),
        ]


def logistic_dropout_penalty_derivation(d: int) -> LogisticDropoutPenalty:
    r"""Derive the quadratic approximation of the logistic dropout penalty for one example with d features.

    With :math:`\tilde z = \sum_j w_j m_j x_j / (1-p)`, :math:`m_j \sim \mathrm{Bernoulli}(1-p)`, and
    the loss :math:`\ell(z) = A(z) - yz`:

    * the label term :math:`\mathbb E[-y\tilde z] + yz` comes out as 0, so the penalty
      :math:`\mathbb E[\ell(\tilde z)] - \ell(z) = \mathbb E[A(\tilde z)] - A(z)` does not depend on :math:`y`;
    * :math:`A''(z)` is computed by differentiating :math:`A` twice, and shown to equal
      :math:`\sigma(z)(1-\sigma(z))`;
    * the quadratic penalty is the expectation over the masks of the second-order Taylor
      polynomial of :math:`A` at :math:`z`, minus :math:`A(z)`; it comes out as
      :math:`\frac12 A''(z)\operatorname{Var}[\tilde z] = \frac{p}{2(1-p)}\pi(1-\pi)\sum_j w_j^2 x_j^2`
      :cite:`wager2013dropout`;
    * the exact penalty is the expectation of :math:`A(\tilde z)` by enumerating the :math:`2^d` masks.

    Summing over examples gives :func:`~dropoutbook.logistic_dropout_penalty` and
    :func:`~dropoutbook.exact_logistic_dropout_penalty`.

    See chapter 2, "Dropout as implicit L2 regularization", section "Derivation".

    Args:
        d: number of features, a positive int (the exact penalty sums :math:`2^d` terms; keep it small).
    """
    d = check_int(d, "d", minimum=1)
    p = drop_rate
    w = sp.symbols(f"w_1:{d + 1}", real=True)
    x = sp.symbols(f"x_1:{d + 1}", real=True)
    m = sp.symbols(f"m_1:{d + 1}")
    y = sp.Symbol("y", real=True)
    t = sp.Symbol("t", real=True)
    dists = {mj: Bernoulli(1 - p) for mj in m}
    A = sp.log(1 + sp.exp(t))
    z = sum(wj * xj for wj, xj in zip(w, x))
    z_tilde = sum(wj * mj * xj for wj, mj, xj in zip(w, m, x)) / (1 - p)
    curvature = sp.factor(sp.diff(A, t, 2)).subs(t, z)
    sigma = sp.exp(z) / (1 + sp.exp(z))  # the logistic function, sigma(z) = 1/(1 + e^-z)
    u = sp.Symbol("u", positive=True)  # compare as rational functions of u = e^z
    curvature_check = sp.cancel(sp.together((curvature - sigma * (1 - sigma)).subs(sp.exp(z), u)))
    label_term = sp.simplify(expectation(-y * z_tilde, dists) - (-y * z))
    # Taylor polynomial of A at z, with symbols for A(z), A'(z), A''(z) so that it is a polynomial in the masks
    a0, a1, a2 = sp.symbols("a0 a1 a2", real=True)
    taylor = a0 + a1 * (z_tilde - z) + a2 / 2 * (z_tilde - z) ** 2
    in_curvature = sp.factor(sp.simplify(expectation(taylor, dists, method="moments") - a0))
    quadratic = in_curvature.subs(a2, curvature)
    exact = expectation(A.subs(t, z_tilde), dists, method="enumerate") - A.subs(t, z)
    return LogisticDropoutPenalty(
        d, w, x, m, y, z, z_tilde, curvature, curvature_check, label_term,
        variance(z_tilde, dists), quadratic, in_curvature, a2, exact, sp.Symbol("pi", positive=True),
    )
