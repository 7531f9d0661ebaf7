"""Checkers for the exercises of chapter 2, "Dropout as implicit L2 regularization".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that names the usual mistake
(the 1/n instead of 1/(2n) constant, drop and keep swapped, one lambda for all features, ...).
"""

from __future__ import annotations

import functools
import math

import sympy as sp
import torch

from .. import derivations
from ..implicit_l2 import dropout_penalty, dropout_ridge_solution, logistic_dropout_penalty
from ._core import CheckFailed, _same_function, _student_symbols, call_student, passed

__all__ = [
    "check_dropout_penalty", "check_derived_penalty", "check_dropout_ridge", "check_shrinkage_prediction",
    "check_logistic_penalty", "SHRINKAGE_EXERCISE",
]

#: Drop rate, sums of squares of two orthogonal features and weight decay of the "predict" exercise of chapter 2.
SHRINKAGE_EXERCISE = {"p": 0.2, "sum_of_squares": (1.0, 100.0), "weight_decay": 10.0}


def _problem(seed: int, n: int = 7, d: int = 3):
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([0.3, 1.0, 4.0][:d], dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = X @ w + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y, w


def _as_number(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} should be a single number (a 0-dim tensor or a float), got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, str, bytes)):
        raise CheckFailed(f"{what} should be a number, got {type(value).__name__}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} should return a number, got {type(value).__name__}") from None
    return float(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)


def check_dropout_penalty(fn) -> None:
    r"""Check ``fn(w, X, p)``, the dropout penalty :math:`\frac{p}{2n(1-p)}\sum_{i,j} w_j^2 x_{ij}^2` (chapter 2 exercises).

    It compares with :func:`~dropoutbook.dropout_penalty` on three problems and names the usual
    mistakes: the constant of the 1/n or the sum convention, drop and keep swapped, a missing
    1/(1-p), and the square of the prediction instead of the sum of squared terms.
    """
    what = "your penalty"
    results = []
    for seed, p in [(0, 0.3), (1, 0.6), (2, 0.1)]:
        X, _, w = _problem(seed)
        X_before, w_before = X.clone(), w.clone()
        value = _as_number(call_student(fn, w, X, p, what=what), what)
        if not (torch.equal(X, X_before) and torch.equal(w, w_before)):
            raise CheckFailed("your function changed w or X in place; compute the penalty without modifying them")
        n = X.shape[0]
        sum_sq = ((X * w) ** 2).sum().item()
        truth = dropout_penalty(w, X, p).item()
        if _close(value, truth):
            results.append(value)
            continue
        mistakes = [
            (2 * truth, "twice the book's penalty: the loss is 1/(2n) Σ (y - wᵀx)², so the constant is "
                        "p/(2n(1-p)); p/(n(1-p)) belongs to the loss 1/n Σ (y - wᵀx)²"),
            (n * truth, "n times the book's penalty: that is the constant of the loss ½ Σ (y - wᵀx)² "
                        "(a sum, as in Wager et al.); the book's loss is a mean, 1/(2n) Σ"),
            ((1 - p) / (2 * n * p) * sum_sq, "drop and keep are swapped: p is the drop probability, "
                                             "and the variance factor of inverted dropout is p/(1-p)"),
            (p / (2 * n) * sum_sq, "the factor 1/(1-p) is missing: the dropped inputs are scaled by 1/(1-p), "
                                   "so the variance factor is p/(1-p), not p"),
            (p * (1 - p) / (2 * n) * sum_sq, "p(1-p) is the variance factor of standard dropout (no scaling); "
                                             "inverted dropout's is p/(1-p)"),
            (p / (2 * n * (1 - p)) * ((X @ w) ** 2).sum().item(),
             "you squared the whole prediction (Σ_j w_j x_ij)²; the masks are independent, so the variances "
             "of the terms add: Σ_j w_j² x_ij²"),
            (truth / 2, "half the book's penalty: check the constant p/(2n(1-p))"),
        ]
        for wrong, message in mistakes:
            if _close(value, wrong):
                raise CheckFailed(f"with p = {p}: {message}")
        raise CheckFailed(f"with p = {p} your penalty is {value:.6g}, but it should be {truth:.6g}")
    X, _, w = _problem(3)
    zero = _as_number(call_student(fn, w, X, 0.0, what=what), what)
    if zero != 0:
        raise CheckFailed(f"with p = 0 nothing is dropped and the penalty must be 0, got {zero:.6g}")
    passed(f"penalty {results[0]:.4f} at p = 0.3, {results[1]:.4f} at p = 0.6, 0 at p = 0")


@functools.lru_cache(maxsize=1)
def _one_example_derivation():
    """The reference derivation (n = 1, d = 2), computed once per session."""
    return derivations.linear_dropout_regression(1, 2)


def check_derived_penalty(fn) -> None:
    r"""Check ``fn()``, which must return :math:`\mathbb E_m[L_{\mathrm{drop}}] - L` for one example with two features (chapter 2 exercises).

    The loss is :math:`\frac12 (y - w_1\tilde x_1 - w_2\tilde x_2)^2`; the answer is a sympy
    expression in ``w1, w2, x1, x2, y, p``. It is compared with
    :func:`~dropoutbook.derivations.linear_dropout_regression` (``n = 1``, ``d = 2``).
    """
    what = "your derivation"
    expr = call_student(fn, what=what)
    ref = _one_example_derivation()
    p = derivations.drop_rate
    names = {"w1": ref.w[0], "w2": ref.w[1], "x1": ref.X[0, 0], "x2": ref.X[0, 1], "y": ref.y[0], "p": p}
    expr = _student_symbols(expr, names, what)
    symbols = (p, ref.w[0], ref.w[1], ref.X[0, 0], ref.X[0, 1], ref.y[0])
    points = [(0.3, 1.2, -0.7, 0.5, 2.0, 0.4), (0.6, -0.4, 1.1, -1.5, 0.3, -2.0), (0.1, 2.0, 0.5, 1.0, -1.0, 1.5)]

    def same(candidate):
        return _same_function(expr, candidate, symbols, points)

    if same(ref.penalty):
        readable = {sym: sp.Symbol(name) for name, sym in names.items() if name != "p"}
        passed(f"E[L_drop] - L = {ref.identities()[0].rhs.subs(readable)}")
        return
    if (expr.free_symbols & {ref.y[0]}) and not same(ref.penalty):
        m1, m2 = sp.symbols("m1 m2")
        standard = sp.Rational(1, 2) * (ref.y[0] - ref.w[0] * m1 * ref.X[0, 0] - ref.w[1] * m2 * ref.X[0, 1]) ** 2
        dists = {m1: derivations.Bernoulli(1 - p), m2: derivations.Bernoulli(1 - p)}
        standard_penalty = derivations.expectation(standard, dists) - ref.plain_loss
        if same(ref.expected_loss):
            raise CheckFailed("that is the whole expected loss E[L_drop]; the penalty is E[L_drop] minus the plain loss L")
        if same(standard_penalty):
            raise CheckFailed("the inputs are not scaled by 1/(1-p): without it E[x~] = (1-p)x, and the penalty "
                              "picks up terms in y. Use x~_j = m_j x_j / (1 - p)")
        raise CheckFailed("your penalty depends on y; with inverted dropout E[x~] = x, so all terms in y cancel")
    s = ref.w[0] ** 2 * ref.X[0, 0] ** 2 + ref.w[1] ** 2 * ref.X[0, 1] ** 2
    mistakes = [
        (p / (1 - p) * s, "twice too large: the loss has the factor ½ in front"),
        ((1 - p) / (2 * p) * s, "drop and keep are swapped: m_j ~ Bernoulli(1 - p), so E[m_j] = 1 - p"),
        (p / (2 * (1 - p) ** 2) * s, "one factor 1/(1-p) too many: E[(m/(1-p))²] = 1/(1-p)"),
        (s / (2 * (1 - p)), "that is ½ Σ_j E[(w_j x~_j)²]; the penalty is ½ Σ_j Var[w_j x~_j]: subtract the "
                            "squared means (w_j x_j)²"),
    ]
    for wrong, message in mistakes:
        if same(wrong):
            raise CheckFailed(message)
    value = float(expr.subs(dict(zip(symbols, points[0]))))
    truth = float(ref.penalty.subs(dict(zip(symbols, points[0]))))
    raise CheckFailed(f"at p = 0.3, w = (1.2, -0.7), x = (0.5, 2), y = 0.4 your expression gives {value:.4g}; "
                      f"the penalty is {truth:.4g} there")


def check_dropout_ridge(fn) -> None:
    r"""Check ``fn(X, y, p)``, the minimiser :math:`(X^\top X + \frac{p}{1-p}\operatorname{diag}(X^\top X))^{-1}X^\top y` (chapter 2 exercises).

    Features of very different scales make weight decay (one :math:`\lambda` for all) and the
    other usual mistakes distinguishable; each is named.
    """
    what = "your solution"
    for seed, p in [(10, 0.3), (11, 0.7)]:
        X, y, _ = _problem(seed, n=12, d=3)
        X_before, y_before = X.clone(), y.clone()
        out = call_student(fn, X, y, p, what=what)
        if not isinstance(out, torch.Tensor):
            raise CheckFailed(f"{what} should return a torch.Tensor of shape (3,), got {type(out).__name__}")
        if not (torch.equal(X, X_before) and torch.equal(y, y_before)):
            raise CheckFailed("your function changed X or y in place")
        out = out.detach().to(torch.float64).reshape(-1) if out.numel() == 3 else out
        if out.shape != (3,):
            raise CheckFailed(f"{what} should have shape (3,), one weight per feature, got {tuple(out.shape)}")
        truth = dropout_ridge_solution(X, y, p)
        if torch.allclose(out, truth, rtol=1e-6, atol=1e-9):
            continue
        gram, rhs = X.T @ X, X.T @ y
        eye = torch.eye(3, dtype=torch.float64)
        diag = torch.diag(torch.diagonal(gram))
        n = X.shape[0]
        mistakes = [
            (torch.linalg.solve(gram + p / (1 - p) * eye, rhs),
             "that is weight decay with λ = p/(1-p) for every feature; dropout's penalty on w_j is "
             "λ_j = p/(1-p) Σ_i x_ij², which follows the scale of feature j: use diag(XᵀX)"),
            (torch.linalg.solve(gram + n * p / (1 - p) * eye, rhs),
             "that is weight decay with one λ = n p/(1-p); dropout's λ_j = p/(1-p) Σ_i x_ij² differs per feature"),
            (torch.linalg.solve(gram + p * diag, rhs),
             "the penalty factor is p/(1-p), not p"),
            (torch.linalg.solve(gram + (1 - p) / p * diag, rhs),
             "drop and keep are swapped: the factor is p/(1-p)"),
            (torch.linalg.solve(gram / (1 - p), rhs),
             "you multiplied all of XᵀX by 1/(1-p); dropout adds p/(1-p) times the diagonal only, the "
             "off-diagonal entries of XᵀX stay"),
            (torch.linalg.solve(gram, rhs), "that is least squares: the dropout penalty is missing"),
        ]
        for wrong, message in mistakes:
            if torch.allclose(out, wrong, rtol=1e-6, atol=1e-9):
                raise CheckFailed(f"with p = {p}: {message}")
        raise CheckFailed(f"with p = {p} your weights are {out.numpy().round(4).tolist()}, "
                          f"expected {truth.numpy().round(4).tolist()}")
    passed("matches (XᵀX + p/(1-p) diag(XᵀX))⁻¹ Xᵀy, one penalty per feature")


def _shrinkage_truth(p: float, sums: tuple, lam: float) -> dict:
    """Shrink factors w_j / w_ols_j for two orthogonal features, computed with the library."""
    X = torch.diag(torch.tensor([math.sqrt(s) for s in sums], dtype=torch.float64))
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    ols = dropout_ridge_solution(X, y, 0.0)
    drop = dropout_ridge_solution(X, y, p)
    decay = torch.linalg.solve(X.T @ X + lam * torch.eye(2, dtype=torch.float64), X.T @ y)
    return {"dropout": tuple((drop / ols).tolist()), "weight_decay": tuple((decay / ols).tolist())}


def check_shrinkage_prediction(fn) -> None:
    """Check ``fn()``, the predicted shrink factors of two orthogonal features under dropout ridge and weight decay (chapter 2 exercises).

    The answer is a dict ``{"dropout": (a1, a2), "weight_decay": (b1, b2)}`` of the ratios
    :math:`w_j / w_j^{\\mathrm{OLS}}` for the numbers in :data:`~dropoutbook.exercises.ch02.SHRINKAGE_EXERCISE`.
    """
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("dropout", "weight_decay")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    ex = SHRINKAGE_EXERCISE
    p, sums, lam = ex["p"], ex["sum_of_squares"], ex["weight_decay"]
    truth = _shrinkage_truth(p, sums, lam)
    values = {}
    for key in keys:
        pair = answer[key]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise CheckFailed(f"{key} should be a pair of numbers (one shrink factor per feature), got {pair!r}")
        values[key] = tuple(_as_number(v, f"{key}") for v in pair)
    mistakes = {
        "dropout": [
            ((1 / (1 - p),) * 2, "dropout shrinks: the diagonal of XᵀX grows by 1/(1-p), so w_j = (1-p)·w_ols_j"),
            ((p, p), "the factor is the keep probability 1 - p, not p"),
            (tuple(s / (s + p / (1 - p)) for s in sums),
             "dropout's λ_j is p/(1-p)·Σ_i x_ij², not p/(1-p): it grows with the feature's scale"),
            (truth["weight_decay"], "those are weight decay's factors; dropout's do not depend on the scale"),
        ],
        "weight_decay": [
            (tuple(lam / (s + lam) for s in sums), "that is the fraction removed, λ/(s+λ); the factor kept is s/(s+λ)"),
            ((1 / (1 + lam),) * 2, "weight decay's factor s_j/(s_j+λ) depends on each feature's Σ x²"),
            (truth["dropout"], "those are dropout's factors; weight decay's are s_j/(s_j+λ)"),
        ],
    }
    for key in keys:
        if all(_close(a, b) for a, b in zip(values[key], truth[key])):
            continue
        for wrong, message in mistakes[key]:
            if all(_close(a, b) for a, b in zip(values[key], wrong)):
                raise CheckFailed(f"{key} = {values[key]}: {message}")
        raise CheckFailed(f"{key} = {values[key]} is not right; for orthogonal features w_j = "
                          "s_j/(s_j + λ_j)·w_ols_j with s_j = Σ_i x_ij²")
    d, w = truth["dropout"], truth["weight_decay"]
    passed(f"dropout keeps {d[0]:.3g} and {d[1]:.3g} of w_ols, weight decay {w[0]:.3g} and {w[1]:.3g}")


def check_logistic_penalty(fn) -> None:
    r"""Check ``fn(w, X, p)``, the quadratic dropout penalty of logistic regression (chapter 2 exercises).

    .. math:: R^q(w) = \frac{p}{2(1-p)} \sum_j w_j^2 \sum_i \pi_i(1-\pi_i) x_{ij}^2, \qquad \pi_i = \sigma(w^\top x_i),

    the sum convention of :cite:`wager2013dropout`. It is compared with
    :func:`~dropoutbook.logistic_dropout_penalty`; the usual mistakes (the probability instead of
    the curvature, a mean over examples, the linear-regression penalty) are named.
    """
    what = "your penalty"
    results = []
    for seed, p in [(20, 0.3), (21, 0.6)]:
        X, _, w = _problem(seed, n=9, d=3)
        X_before, w_before = X.clone(), w.clone()
        value = _as_number(call_student(fn, w, X, p, what=what), what)
        if not (torch.equal(X, X_before) and torch.equal(w, w_before)):
            raise CheckFailed("your function changed w or X in place")
        truth = logistic_dropout_penalty(w, X, p).item()
        if _close(value, truth):
            results.append(value)
            continue
        n = X.shape[0]
        prob = torch.sigmoid(X @ w)
        factor = p / (2 * (1 - p))

        def form(weights):
            return factor * (w**2 * (weights[:, None] * X**2).sum(0)).sum().item()

        mistakes = [
            (form(prob), "you weighted each example by π_i; the curvature of the logistic loss is A''(z_i) = π_i(1-π_i)"),
            (form(torch.ones(n, dtype=X.dtype)), "that is the linear-regression penalty (A'' = 1) with the sum convention; "
                                                 "weight each example by π_i(1-π_i)"),
            (truth / n, "that is the mean over examples; Wager et al.'s loss, and this exercise, use the sum"),
            (2 * truth, "twice too large: the quadratic approximation has ½ A''(z) Var[z~]"),
            (p / 2 * (w**2 * ((prob * (1 - prob))[:, None] * X**2).sum(0)).sum().item(),
             "the factor is p/(2(1-p)), not p/2: Var[z~] = p/(1-p) Σ_j w_j² x_j²"),
            (form(torch.sigmoid(X @ w).mul(1 - torch.sigmoid(X @ w)).mean().expand(n)),
             "each example has its own π_i(1-π_i); do not average it over examples first"),
        ]
        for wrong, message in mistakes:
            if _close(value, wrong):
                raise CheckFailed(f"with p = {p}: {message}")
        raise CheckFailed(f"with p = {p} your penalty is {value:.6g}, but it should be {truth:.6g}")
    passed(f"R^q = {results[0]:.4f} at p = 0.3 and {results[1]:.4f} at p = 0.6")
