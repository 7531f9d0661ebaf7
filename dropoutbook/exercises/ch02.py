"""Checkers for the exercises of chapter 2, "Dropout as implicit L2 regularization".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
or raises :class:`CheckFailed` with a message that names the usual mistake (the 1/n instead of
1/(2n) constant, drop and keep swapped, one lambda for all features, ...). The implement checkers
try several shapes of ``X`` with drop rates drawn from their own seeded generator and forbid the
library's functions; the derive checker calls the student's function with a second mask
distribution, so that a typed-in answer fails.
"""

from __future__ import annotations

import functools
import math
import types

import sympy as sp
import torch

from .. import _validation, derivations, implicit_l2
from ..implicit_l2 import dropout_penalty, dropout_ridge_solution, logistic_dropout_penalty
from ._core import (
    CheckFailed, _agree, _answer_dict, _drawn_rates, _library_forbidden, _real_number, _student_symbols, call_student,
    passed,
)

__all__ = [
    "check_dropout_penalty", "check_derived_penalty", "check_dropout_ridge", "check_shrinkage_prediction",
    "check_logistic_penalty", "SHRINKAGE_EXERCISE",
]

#: Drop rate, sums of squares of two orthogonal features and weight decay of the "predict" exercise of
#: chapter 2 (the defaults of :func:`~dropoutbook.exercises.check_shrinkage_prediction`; an instructor may pass others).
SHRINKAGE_EXERCISE = types.MappingProxyType(dict(p=0.2, sum_of_squares=(1.0, 100.0), weight_decay=10.0))

_SEED = 2025
_HINT = "write it with plain torch operations"
# shapes (n, d) of the implement exercises, one feature alone among them; a drop rate is drawn for each
_RATE_RANGES = [(0.1, 0.4), (0.55, 0.85), (0.15, 0.45), (0.6, 0.8)]


def _problem(seed: int, n: int = 7, d: int = 3):
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([0.3, 1.0, 4.0, 2.0][:d], dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = X @ w + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y, w


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)


def _student_number(fn, args, what: str) -> float:
    """Call ``fn(*args)`` with the library's chapter-2 functions forbidden, and read one number."""
    with _library_forbidden(implicit_l2, _HINT):
        return _real_number(call_student(fn, *args, what=what), what)


def _unchanged(tensors, copies) -> bool:
    return all(torch.equal(a, b) for a, b in zip(tensors, copies))


def _rate_ignored(fn, args, p: float, other: float, value: float, what: str) -> bool:
    """Whether ``fn`` gives the same ``value`` at another drop rate: the rate is hard-coded."""
    again = _student_number(fn, (*args, other), what)
    return math.isclose(again, value, rel_tol=1e-12) and not _close(value, 0.0)


_PENALTY_CASES = [(7, 3), (12, 1), (5, 4), (20, 2)]


def check_dropout_penalty(fn) -> None:
    r"""Check ``fn(w, X, p)``, the dropout penalty :math:`\frac{p}{2n(1-p)}\sum_{i,j} w_j^2 x_{ij}^2` (chapter 2 exercises).

    It compares with :func:`~dropoutbook.dropout_penalty` on four problems of different shapes
    (one of them with a single feature), each with a drop rate drawn from the checker's seeded
    generator, and names the usual mistakes: the constant of the 1/n or the sum convention, drop
    and keep swapped, a missing 1/(1-p), the square of the prediction instead of the sum of squared
    terms, a mean over all entries, a number of examples or a rate typed in. The library's
    functions are forbidden while the student's code runs.
    """
    what = "your penalty"
    rates = _drawn_rates(_RATE_RANGES, seed=_SEED)
    results = []
    for case, ((n, d), p) in enumerate(zip(_PENALTY_CASES, rates)):
        X, _, w = _problem(case, n, d)
        copies = X.clone(), w.clone()
        value = _student_number(fn, (w, X, p), what)
        if not _unchanged((X, w), copies):
            raise CheckFailed("your function changed w or X in place; compute the penalty without modifying them")
        sum_sq = ((X * w) ** 2).sum().item()
        truth = dropout_penalty(w, X, p).item()
        if _close(value, truth):
            results.append(f"{value:.4f} at p = {p}")
            continue
        at = f"with p = {p} and X of shape ({n}, {d})"
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
            (truth / (1 - p), "one factor 1/(1-p) too many: Var[m/(1-p)] = p(1-p)/(1-p)² = p/(1-p)"),
            (p / (2 * n * (1 - p)) * ((X @ w) ** 2).sum().item(),
             "you squared the whole prediction (Σ_j w_j x_ij)²; the masks are independent, so the variances "
             "of the terms add: Σ_j w_j² x_ij²"),
            (truth / 2, "half the book's penalty: check the constant p/(2n(1-p))"),
            (truth / d, "that divides by n·d, a mean over all entries of (X·w)²; the book's loss averages over "
                        "the n examples only: sum over the features, divide by 2n"),
            (truth * n / d, "you divided by the number of features X.shape[1] instead of the number of examples "
                            "X.shape[0]"),
        ]
        for wrong, message in mistakes:
            if _close(value, wrong):
                raise CheckFailed(f"{at}: {message}")
        other = rates[(case + 1) % len(rates)]
        if _rate_ignored(fn, (w, X), p, other, value, what):
            raise CheckFailed(f"your penalty does not change with p (the same value at p = {p} and p = {other}): "
                              "the drop rate is hard-coded; use the argument p")
        typed_n = n * truth / value if value else 0.0
        if value and abs(typed_n - round(typed_n)) < 1e-9 and round(typed_n) >= 1:
            raise CheckFailed(f"{at} your penalty is {value:.6g}, {n}/{round(typed_n)} of the right value: it does not "
                              f"follow the number of examples. Is n = {round(typed_n)} typed in? Use n = X.shape[0]")
        raise CheckFailed(f"{at} your penalty is {value:.6g}, but it should be {truth:.6g}")
    X, _, w = _problem(9)
    zero = _student_number(fn, (w, X, 0.0), what)
    if zero != 0:
        raise CheckFailed(f"with p = 0 nothing is dropped and the penalty must be 0, got {zero:.6g}")
    passed(f"penalty {', '.join(results[:2])} and on two more shapes, 0 at p = 0")


@functools.lru_cache(maxsize=1)
def _one_example_derivation():
    """The reference derivation (n = 1, d = 2), computed once per session."""
    return derivations.linear_dropout_regression(1, 2)


@functools.lru_cache(maxsize=4)
def _one_example_penalty(mask_of) -> sp.Expr:
    """E[L_drop] - L for one example and two features, masks m1, m2 ~ ``mask_of`` (a distribution), derived once."""
    ref = _one_example_derivation()
    p = derivations.drop_rate
    m1, m2 = sp.symbols("m1 m2")
    (w1, w2), (x1, x2), y = ref.w, (ref.X[0, 0], ref.X[0, 1]), ref.y[0]
    dropped = sp.Rational(1, 2) * (y - w1 * m1 * x1 / (1 - p) - w2 * m2 * x2 / (1 - p)) ** 2
    return derivations.expectation(dropped, {m1: mask_of, m2: mask_of}) - ref.plain_loss


def check_derived_penalty(fn) -> None:
    r"""Check ``fn(mask)``, which returns :math:`\mathbb E_m[L_{\mathrm{drop}}] - L` for one example with two features (chapter 2 exercises).

    The loss is :math:`\frac12 (y - w_1\tilde x_1 - w_2\tilde x_2)^2` with
    :math:`\tilde x_j = m_j x_j/(1-p)`, the masks independent with the distribution ``mask``; the
    answer is a sympy expression in ``w1, w2, x1, x2, y, p``. With
    ``mask = derivations.Bernoulli(1 - p)`` it is compared with
    :func:`~dropoutbook.derivations.linear_dropout_regression` (``n = 1``, ``d = 2``) and the usual
    mistakes are named; then ``fn`` is called with :math:`m_j \sim \mathrm{Bernoulli}(k)`, where a
    typed-in answer (or one computed with a fixed distribution) does not follow.
    """
    what = "your derivation"
    ref = _one_example_derivation()
    p = derivations.drop_rate
    (w1, w2), (x1, x2), y = ref.w, (ref.X[0, 0], ref.X[0, 1]), ref.y[0]
    names = {"w1": w1, "w2": w2, "x1": x1, "x2": x2, "y": y, "p": p}
    expr = _student_symbols(call_student(fn, derivations.Bernoulli(1 - p), what=what), names, what)
    symbols = (p, w1, w2, x1, x2, y)
    points = [(0.3, 1.2, -0.7, 0.5, 2.0, 0.4), (0.6, -0.4, 1.1, -1.5, 0.3, -2.0), (0.1, 2.0, 0.5, 1.0, -1.0, 1.5)]

    def same(a, b=None):
        return _agree(expr if b is None else b, a, symbols, points)

    if not same(ref.penalty):
        shifted = [pt[:-1] + (pt[-1] + 1.7,) for pt in points]
        depends_on_y = not _agree(expr, expr.subs(y, y + sp.Rational(17, 10)), symbols, points + shifted)
        s = w1**2 * x1**2 + w2**2 * x2**2
        if depends_on_y:
            m1, m2 = sp.symbols("m1 m2")
            standard = sp.Rational(1, 2) * (y - w1 * m1 * x1 - w2 * m2 * x2) ** 2
            dists = {m1: derivations.Bernoulli(1 - p), m2: derivations.Bernoulli(1 - p)}
            plain = ref.plain_loss
            mistakes = [
                (ref.expected_loss, "that is the whole expected loss E[L_drop]; the penalty is E[L_drop] minus the "
                                    "plain loss L"),
                (ref.expected_loss - 2 * plain, "the plain loss you subtract lacks the ½: L = ½ (y - w1 x1 - w2 x2)², "
                                                "with the same constant as L_drop, so that the terms in y cancel"),
                (2 * ref.expected_loss - plain, "L_drop lacks the ½: L_drop = ½ (y - w1 x~1 - w2 x~2)², with the same "
                                                "constant as the plain loss, so that the terms in y cancel"),
                (derivations.expectation(standard, dists) - ref.plain_loss,
                 "the inputs are not scaled by 1/(1-p): without it E[x~] = (1-p)x, and the penalty picks up terms in "
                 "y. Use x~_j = m_j x_j / (1 - p)"),
                (_one_example_penalty(derivations.Bernoulli(p)),
                 "drop and keep are swapped: your masks are Bernoulli(p), kept with probability p, so E[x~] ≠ x and "
                 "terms in y remain; use the distribution passed as mask (here Bernoulli(1 - p))"),
            ]
            for wrong, message in mistakes:
                if same(wrong):
                    raise CheckFailed(message)
            raise CheckFailed("your penalty depends on y; with inverted dropout E[x~] = x, so all terms in y cancel")
        mistakes = [
            (p / (1 - p) * s, "twice too large: the loss has the factor ½ in front"),
            ((1 - p) / (2 * p) * s, "drop and keep are swapped: m_j ~ Bernoulli(1 - p), so E[m_j] = 1 - p"),
            (p / (2 * (1 - p) ** 2) * s, "one factor 1/(1-p) too many: E[(m/(1-p))²] = 1/(1-p)"),
            (s / (2 * (1 - p)), "that is ½ Σ_j E[(w_j x~_j)²]; the penalty is ½ Σ_j Var[w_j x~_j]: subtract the "
                                "squared means (w_j x_j)²"),
            (p / (2 * (1 - p)) * (w1 * x1 + w2 * x2) ** 2,
             "you used one mask for both features; the features have independent masks m1 and m2, so the cross "
             "term 2·w1x1·w2x2 has no variance"),
        ]
        for wrong, message in mistakes:
            if same(wrong):
                raise CheckFailed(message)
        value = float(expr.subs(dict(zip(symbols, points[0]))))
        truth = float(ref.penalty.subs(dict(zip(symbols, points[0]))))
        raise CheckFailed(f"at p = 0.3, w = (1.2, -0.7), x = (0.5, 2), y = 0.4 your expression gives {value:.4g}; "
                          f"the penalty is {truth:.4g} there")
    # a second distribution of the masks: the answer must follow the argument
    k = sp.Symbol("k", positive=True)
    other = _student_symbols(call_student(fn, derivations.Bernoulli(k), what=what), {**names, "k": k}, what)
    symbols_k = (*symbols, k)
    points_k = [pt + (kk,) for pt, kk in zip(points, (0.45, 0.9, 0.2))]
    if not _agree(other, _one_example_penalty(derivations.Bernoulli(k)), symbols_k, points_k):
        if _agree(other, ref.penalty, symbols_k, points_k):
            raise CheckFailed(
                "called with another mask distribution, m_j ~ Bernoulli(k), your function returns the same penalty as "
                "for Bernoulli(1-p): it was typed in, or computed with a fixed distribution instead of the argument "
                "mask. Let derivations.expectation compute it with {m1: mask, m2: mask}")
        raise CheckFailed("with m_j ~ Bernoulli(k) your expression is not E[L_drop] − L: compute E[L_drop] with "
                          "derivations.expectation(..., {m1: mask, m2: mask}) and keep x~_j = m_j x_j / (1 - p)")
    readable = {sym: sp.Symbol(name) for name, sym in names.items() if name != "p"}
    passed(f"E[L_drop] - L = {ref.identities()[0].rhs.subs(readable)}, and your derivation follows the mask "
           "distribution")


_RIDGE_CASES = [(12, 3), (9, 1), (15, 4), (10, 2)]


def check_dropout_ridge(fn) -> None:
    r"""Check ``fn(X, y, p)``, the minimiser :math:`(X^\top X + \frac{p}{1-p}\operatorname{diag}(X^\top X))^{-1}X^\top y` (chapter 2 exercises).

    Four problems with different numbers of features (one alone), features of very different
    scales, and drop rates drawn from the checker's seeded generator make weight decay (one
    :math:`\lambda` for all), a typed-in rate or number of features and the other usual mistakes
    distinguishable; each is named. The library's functions are forbidden while the student's code runs.
    """
    what = "your solution"
    rates = _drawn_rates(_RATE_RANGES, seed=_SEED + 1)
    for case, ((n, d), p) in enumerate(zip(_RIDGE_CASES, rates)):
        X, y, _ = _problem(10 + case, n=n, d=d)
        copies = X.clone(), y.clone()
        out = _student_weights(fn, X, y, p, what)
        if not _unchanged((X, y), copies):
            raise CheckFailed("your function changed X or y in place")
        truth = dropout_ridge_solution(X, y, p)
        if torch.allclose(out, truth, rtol=1e-6, atol=1e-9):
            continue
        gram, rhs = X.T @ X, X.T @ y
        eye = torch.eye(d, dtype=torch.float64)
        diag = torch.diag(torch.diagonal(gram))
        mistakes = [
            (torch.linalg.solve(gram + p / (1 - p) * eye, rhs),
             "that is weight decay with λ = p/(1-p) for every feature; dropout's penalty on w_j is "
             "λ_j = p/(1-p) Σ_i x_ij², which follows the scale of feature j: use diag(XᵀX)"),
            (torch.linalg.solve(gram + n * p / (1 - p) * eye, rhs),
             "that is weight decay with one λ = n p/(1-p); dropout's λ_j = p/(1-p) Σ_i x_ij² differs per feature"),
            (torch.linalg.solve(gram + p * diag, rhs),
             "the penalty factor is p/(1-p), not p"),
            (torch.linalg.solve(gram + n * p / (1 - p) * diag, rhs),
             "the 1/n of the loss is on one side only: the gradient of 1/(2n) Σ (y - wᵀx)² is 1/n (XᵀX w - Xᵀy), and "
             "the penalty's is p/(n(1-p)) diag(XᵀX) w, so the n cancels: (XᵀX + p/(1-p) diag(XᵀX)) w = Xᵀy"),
            (torch.linalg.solve(gram + p / (n * (1 - p)) * diag, rhs),
             "the penalty is divided by n once too often: the gradient of 1/(2n) Σ (y - wᵀx)² is 1/n (XᵀX w - Xᵀy) "
             "and the penalty's is p/(n(1-p)) diag(XᵀX) w; multiply both by n"),
            (torch.linalg.solve(gram + p / (2 * (1 - p)) * diag, rhs),
             "half the penalty: the gradient of the penalty p/(2n(1-p)) Σ_j w_j² s_j is p/(n(1-p)) s_j w_j (the ½ "
             "goes with the square)"),
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
        other = rates[(case + 1) % len(rates)]
        if torch.equal(_student_weights(fn, X, y, other, what), out):
            raise CheckFailed(f"your solution does not change with p (the same weights at p = {p} and p = {other}): the drop "
                              "rate is hard-coded; use the argument p")
        raise CheckFailed(f"with p = {p} and X of shape ({n}, {d}) your weights are {out.numpy().round(4).tolist()}, "
                          f"expected {truth.numpy().round(4).tolist()}")
    passed("matches (XᵀX + p/(1-p) diag(XᵀX))⁻¹ Xᵀy, one penalty per feature, for 1 to 4 features")


def _student_weights(fn, X, y, p, what: str) -> torch.Tensor:
    """Call ``fn(X, y, p)`` with the library forbidden; return its weights, a tensor of shape (d,), as float64."""
    n, d = X.shape
    with _library_forbidden(implicit_l2, _HINT):
        out = call_student(fn, X, y, p, what=f"{what}, on X of shape ({n}, {d}) ({d} features),")
    if type(out) is not torch.Tensor:
        raise CheckFailed(f"{what} should return a torch.Tensor of shape ({d},), got {type(out).__name__}")
    if out.shape != (d,):
        raise CheckFailed(f"{what} should return one weight per feature, a tensor of shape ({d},) for X of shape "
                          f"({n}, {d}); got shape {tuple(out.shape)}")
    if out.dtype != X.dtype:
        raise CheckFailed(f"{what} returns dtype {out.dtype} for X of dtype {X.dtype}: compute in the dtype of X "
                          "(a conversion to float32 loses the digits the check compares)")
    return out.detach().to(torch.float64)


def _shrinkage_truth(p: float, sums: tuple, lam: float) -> dict:
    """Shrink factors w_j / w_ols_j for two orthogonal features, computed with the library."""
    X = torch.diag(torch.tensor([math.sqrt(s) for s in sums], dtype=torch.float64))
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    ols = dropout_ridge_solution(X, y, 0.0)
    drop = dropout_ridge_solution(X, y, p)
    decay = torch.linalg.solve(X.T @ X + lam * torch.eye(2, dtype=torch.float64), X.T @ y)
    return {"dropout": tuple((drop / ols).tolist()), "weight_decay": tuple((decay / ols).tolist())}


def _real_pair(value, name: str) -> tuple[float, float]:
    """A pair of real numbers: a tuple, list, array or tensor of two entries."""
    if isinstance(value, torch.Tensor) or hasattr(value, "__array__"):
        value = list(value.reshape(-1)) if getattr(value, "ndim", 0) else [value]
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailed(f"{name} should be a pair of numbers (one shrink factor per feature), got {value!r}")
    return tuple(_real_number(v, f"{name}[{i}]") for i, v in enumerate(value))


def check_shrinkage_prediction(fn, *, p=0.2, sum_of_squares=(1.0, 100.0), weight_decay=10.0) -> None:
    """Check ``fn()``, the predicted shrink factors of two orthogonal features under dropout ridge and weight decay (chapter 2 exercises).

    The answer is a dict ``{"dropout": (a1, a2), "weight_decay": (b1, b2)}`` of the ratios
    :math:`w_j / w_j^{\\mathrm{OLS}}` for the drop rate ``p``, the sums of squares
    :math:`s_j = \\sum_i x_{ij}^2` of the two features and the weight decay :math:`\\lambda`
    (the defaults are the book's, :data:`~dropoutbook.exercises.ch02.SHRINKAGE_EXERCISE`; an instructor may pass others).
    """
    p = _validation.check_probability(p, "p", allow_one=False)
    sums = _validation.check_real_vector(sum_of_squares, "sum_of_squares", length=2)
    sums = tuple(_validation.check_positive(s, f"sum_of_squares[{i}]") for i, s in enumerate(sums))
    lam = _validation.check_nonnegative(weight_decay, "weight_decay")
    what = "your prediction"
    keys = ("dropout", "weight_decay")
    answer = _answer_dict(call_student(fn, what=what), keys, what)
    values = {key: _real_pair(answer[key], key) for key in keys}
    truth = _shrinkage_truth(p, sums, lam)
    mistakes = {
        "dropout": [
            ((1 / (1 - p),) * 2, "dropout shrinks: the diagonal of XᵀX grows by 1/(1-p), so w_j = (1-p)·w_ols_j"),
            ((p, p), "the factor is the keep probability 1 - p, not p"),
            (tuple(s / (s + p / (1 - p)) for s in sums),
             "dropout's λ_j is p/(1-p)·Σ_i x_ij², not p/(1-p): it grows with the feature's scale"),
            (truth["weight_decay"], "those are weight decay's factors; dropout's do not depend on the scale"),
        ],
        "weight_decay": [
            (tuple(lam / (s + lam) for s in sums), "that is the fraction removed, λ/(s+λ); the factor kept is s/(s+λ)"
             + (" (with these numbers it is also the right factors in reverse order: feature 1 comes first)"
                if all(_close(lam / (s + lam), t) for s, t in zip(sums, reversed(truth["weight_decay"]))) else "")),
            (tuple(reversed(truth["weight_decay"])), "the right factors in the wrong order: the first entry is feature "
                                                      "1's, s_1/(s_1+λ)"),
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


_LOGISTIC_CASES = [(9, 3), (6, 1), (14, 2)]


def check_logistic_penalty(fn) -> None:
    r"""Check ``fn(w, X, p)``, the quadratic dropout penalty of logistic regression (chapter 2 exercises).

    .. math:: R^q(w) = \frac{p}{2(1-p)} \sum_j w_j^2 \sum_i \pi_i(1-\pi_i) x_{ij}^2, \qquad \pi_i = \sigma(w^\top x_i),

    the sum convention of :cite:`wager2013dropout`. It is compared with
    :func:`~dropoutbook.logistic_dropout_penalty` on three problems of different shapes, each with
    a drop rate drawn from the checker's seeded generator; the usual mistakes (the probability
    instead of the curvature, a mean over examples, the linear-regression penalty, a rate typed in)
    are named. The library's functions are forbidden while the student's code runs.
    """
    what = "your penalty"
    rates = _drawn_rates(_RATE_RANGES[:3], seed=_SEED + 2)
    results = []
    for case, ((n, d), p) in enumerate(zip(_LOGISTIC_CASES, rates)):
        X, _, w = _problem(20 + case, n=n, d=d)
        copies = X.clone(), w.clone()
        value = _student_number(fn, (w, X, p), what)
        if not _unchanged((X, w), copies):
            raise CheckFailed("your function changed w or X in place")
        truth = logistic_dropout_penalty(w, X, p).item()
        if _close(value, truth):
            results.append(f"{value:.4f} at p = {p}")
            continue
        prob = torch.sigmoid(X @ w)
        factor = p / (2 * (1 - p))

        def form(weights, factor=factor):
            return factor * (w**2 * (weights[:, None] * X**2).sum(0)).sum().item()

        curvature = prob * (1 - prob)
        mistakes = [
            (form(prob), "you weighted each example by π_i; the curvature of the logistic loss is A''(z_i) = π_i(1-π_i)"),
            (form(torch.ones(n, dtype=X.dtype)), "that is the linear-regression penalty (A'' = 1) with the sum convention; "
                                                 "weight each example by π_i(1-π_i)"),
            (truth / n, "that is the mean over examples; Wager et al.'s loss, and this exercise, use the sum"),
            (2 * truth, "twice too large: the quadratic approximation has ½ A''(z) Var[z~]"),
            (form(curvature, p / 2), "the factor is p/(2(1-p)), not p/2: Var[z~] = p/(1-p) Σ_j w_j² x_j²"),
            (form(curvature, (1 - p) / (2 * p)), "drop and keep are swapped: the variance factor of inverted dropout "
                                                 "is p/(1-p), with p the drop probability"),
            (factor * (curvature * (X @ w) ** 2).sum().item(),
             "you squared the whole linear predictor (wᵀx_i)²; the masks are independent, so Var[z~_i] = "
             "p/(1-p) Σ_j w_j² x_ij²"),
            (truth / (1 - p), "one factor 1/(1-p) too many: Var[m/(1-p)] = p(1-p)/(1-p)² = p/(1-p)"),
            (form(curvature.mean().expand(n)),
             "each example has its own π_i(1-π_i); do not average it over examples first"),
        ]
        for wrong, message in mistakes:
            if _close(value, wrong):
                raise CheckFailed(f"with p = {p}: {message}")
        other = rates[(case + 1) % len(rates)]
        if _rate_ignored(fn, (w, X), p, other, value, what):
            raise CheckFailed(f"your penalty does not change with p (the same value at p = {p} and p = {other}): "
                              "the drop rate is hard-coded; use the argument p")
        raise CheckFailed(f"with p = {p} and X of shape ({n}, {d}) your penalty is {value:.6g}, but it should be "
                          f"{truth:.6g}")
    passed(f"R^q = {' and '.join(results[:2])}, and on one more shape")
