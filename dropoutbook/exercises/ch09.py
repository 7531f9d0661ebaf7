"""Checkers for the exercises of chapter 9, "Dropout in transformers".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong, for
example "the rows of your weights sum to exactly one: do not renormalize after dropout".
"""

from __future__ import annotations

import math

import sympy as sp
import torch

from .. import derivations
from ._core import CheckFailed, _check_numbers, _same_function, _student_symbols, call_student, passed

__all__ = ["check_attention_with_dropout", "check_row_sum_variance", "check_row_sum_prediction", "ROW_EXERCISE"]

_Z = 5.0

#: The attention row and drop rate of the "predict" exercise of chapter 9.
ROW_EXERCISE = {"weights": (0.5, 0.25, 0.125, 0.125), "p": 0.1}


# --------------------------------------------------------------------------------------------
# exercise 1: attention with dropout after the softmax


def _pair(answer, shapes, what):
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise CheckFailed(f"{what} should return a pair (output, weights), got {type(answer).__name__}")
    out = []
    for tensor, shape, name in zip(answer, shapes, ("output", "weights")):
        if not isinstance(tensor, torch.Tensor):
            raise CheckFailed(f"the {name} should be a torch.Tensor, got {type(tensor).__name__}")
        if tuple(tensor.shape) != shape:
            raise CheckFailed(f"the {name} should have shape {shape}, got {tuple(tensor.shape)}")
        out.append(tensor.detach().to(torch.float64))
    return out


def check_attention_with_dropout(fn, p: float = 0.3) -> None:
    r"""Check ``fn(q, k, v, p, training=True)``, which returns ``(output, weights)`` of scaled dot-product
    attention with attention dropout after the softmax (chapter 9 exercises).

    In evaluation mode the weights must be :math:`\operatorname{softmax}(q k^\top/\sqrt d)` over the
    keys and the output their product with ``v``. In training each weight must be 0 or
    :math:`a_{ij}/(1-p)`, with a fraction p of zeros, rows not renormalized, the output computed
    from the dropped weights, and a new mask on every call.
    """
    if not 0 < p < 1 or math.isclose(p, 0.5):
        raise ValueError(f"p must be in (0, 1) and not 0.5, got {p}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        passed(_check_attention(fn, p))


def _check_attention(fn, p: float) -> str:
    what = "your attention"
    g = torch.Generator().manual_seed(0)
    b, n, d = 64, 8, 4
    q, k, v = (torch.randn(b, n, d, generator=g, dtype=torch.float64) for _ in range(3))
    shapes = ((b, n, d), (b, n, n))
    scores = q @ k.transpose(-2, -1)
    a = torch.softmax(scores / math.sqrt(d), dim=-1)
    out, w = _pair(call_student(fn, q, k, v, p, training=False, what=what), shapes, what)
    if not torch.allclose(w, a, atol=1e-6):
        if torch.allclose(w, torch.softmax(scores, dim=-1), atol=1e-6):
            raise CheckFailed("the scores must be divided by sqrt(d) before the softmax (scaled dot-product attention)")
        if torch.allclose(w, torch.softmax(scores / math.sqrt(d), dim=-2), atol=1e-6):
            raise CheckFailed("your softmax normalizes over the queries; take it over the keys (the last dimension), "
                              "so that each row sums to one")
        if torch.allclose(w, a * (1 - p), atol=1e-6):
            raise CheckFailed("with training=False the weights should be the plain softmax; you scaled them by 1 - p "
                              "(inverted dropout needs no test-time factor)")
        raise CheckFailed("with training=False your weights are not softmax(q kᵀ / sqrt(d)) over the keys")
    if not torch.allclose(out, a @ v, atol=1e-6):
        raise CheckFailed("with training=False the output should be weights @ v")
    out, w = _pair(call_student(fn, q, k, v, p, training=True, what=what), shapes, what)
    kept = w != 0
    if not kept.all() and torch.allclose(w.sum(-1), torch.ones(b, n, dtype=torch.float64), atol=1e-9):
        raise CheckFailed("some weights are dropped but every row still sums to exactly one: you renormalized the rows "
                          "after dropout. Attention dropout does not renormalize; a row sums to one only on average")
    if kept.all():
        if not torch.allclose(w, a, atol=1e-9):
            raise CheckFailed("no weight is zero, yet the weights differ from the softmax: you dropped the scores "
                              "before the softmax. Apply dropout to the weights AFTER the softmax")
        raise CheckFailed("in training no weight was dropped: apply dropout with probability p to the weights")
    ratio = w[kept] / a[kept]
    if not kept.all() and kept.any() and not torch.allclose(ratio, torch.full_like(ratio, ratio[0].item()), rtol=1e-6):
        raise CheckFailed("the kept weights are not the softmax weights times one common factor: apply dropout to the "
                          "weights AFTER the softmax (dropping scores before it changes every weight of the row)")
    factor = ratio[0].item()
    if math.isclose(factor, 1.0, rel_tol=1e-6):
        raise CheckFailed("kept weights are not scaled: divide them by 1 - p, so that every row sums to one on average")
    if not math.isclose(factor, 1 / (1 - p), rel_tol=1e-6):
        raise CheckFailed(f"kept weights are multiplied by {factor:.4g}; inverted dropout divides them by 1 - p = {1 - p:.4g}")
    dropped = 1 - kept.double().mean().item()
    se = math.sqrt(p * (1 - p) / kept.numel())
    if abs(dropped - p) > _Z * se:
        if abs(dropped - (1 - p)) <= _Z * se:
            raise CheckFailed(f"{dropped:.1%} of the weights are dropped with p = {p}: you keep with probability p. "
                              "p is the drop probability")
        raise CheckFailed(f"{dropped:.1%} of the weights are dropped; with p = {p} it should be {p:.0%} (±{_Z * se:.1%})")
    if not torch.allclose(out, w @ v, atol=1e-6):
        if torch.allclose(out, a @ v, atol=1e-6):
            raise CheckFailed("the output ignores the dropout: compute it from the dropped weights, output = weights @ v")
        raise CheckFailed("the output should be the dropped weights times v")
    _, w2 = _pair(call_student(fn, q, k, v, p, training=True, what=what), shapes, what)
    if torch.equal(w2 != 0, kept):
        raise CheckFailed("two calls dropped the same weights: draw a new mask on every call")
    sums = w.sum(-1)
    return f"dropped {dropped:.1%} of the weights; row sums {sums.min():.2f} to {sums.max():.2f}, mean {sums.mean():.3f}"


# --------------------------------------------------------------------------------------------
# exercise 2: derive the variance of a row sum


def check_row_sum_variance(fn) -> None:
    r"""Check ``fn()``, which returns :math:`\operatorname{Var}[\sum_j \tilde a_j]` for a row of three weights
    as a sympy expression in ``p``, ``a1``, ``a2``, ``a3`` (chapter 9 exercises).

    The truth is :func:`~dropoutbook.derivations.attention_row_moments`; an answer that is equal
    once :math:`a_3 = 1 - a_1 - a_2` is substituted is accepted too. Names the usual mistakes.
    """
    what = "your derivation"
    expr = call_student(fn, what=what)
    r = derivations.attention_row_moments(3)
    p = derivations.drop_rate
    a1, a2, a3 = r.weights
    expr = _student_symbols(expr, {"p": p, "a1": a1, "a2": a2, "a3": a3}, what)
    truth = r.row_sum_variance
    on_simplex = {a3: 1 - a1 - a2}
    symbols = (p, a1, a2)
    points = [(0.1, 0.5, 0.3), (0.3, 0.2, 0.2), (0.6, 0.7, 0.1)]

    def same(x, y):
        return _same_function(sp.sympify(x).subs(on_simplex), sp.sympify(y).subs(on_simplex), symbols, points)

    if same(expr, truth):
        passed(f"Var[row sum] = {derivations.tidy(truth, p)}")
        return
    squares = a1**2 + a2**2 + a3**2
    mistakes = [
        (p * (1 - p) * squares, "that is the variance without the 1/(1-p) scaling; attention dropout divides the kept "
                                "weights by 1 - p"),
        (p / (1 - p), "the weights are not all 1: each term m_j a_j/(1-p) has variance p/(1-p)·a_j²"),
        (p / (1 - p) * (a1 + a2 + a3) ** 2, "the masks are independent, so the variances of the terms add: "
                                            "Σ a_j², not (Σ a_j)²"),
        (p / (3 * (1 - p)), "p/(3(1-p)) holds for a uniform row a_j = 1/3 only; keep the weights a_j"),
        (p / (1 - p) * squares + 1, "that is E[S²]; the variance is E[S²] − E[S]², and E[S] = 1"),
        (squares / (1 - p), "that is E[S²] without the cross terms; subtract E[S]² and keep the cross terms"),
    ]
    for wrong, message in mistakes:
        if same(expr, wrong):
            raise CheckFailed(message)
    value = float(expr.subs({p: sp.Rational(1, 5), a1: sp.Rational(1, 2), a2: sp.Rational(1, 4),
                             a3: sp.Rational(1, 4)}))
    exact = float(truth.subs({p: sp.Rational(1, 5), a1: sp.Rational(1, 2), a2: sp.Rational(1, 4), a3: sp.Rational(1, 4)}))
    raise CheckFailed(f"at p = 0.2, a = (0.5, 0.25, 0.25) your expression gives {value:.4g}; the variance is {exact:.4g}")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the row sum of a dropped row


def check_row_sum_prediction(fn) -> None:
    """Check ``fn()``, which returns the predicted ``mean`` and ``variance`` of the sum of the row
    :data:`~dropoutbook.exercises.ch09.ROW_EXERCISE` after attention dropout, and the ``uniform_variance``
    of a uniform row of the same length (chapter 9 exercises)."""
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("mean", "variance", "uniform_variance")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    weights, p_value = ROW_EXERCISE["weights"], ROW_EXERCISE["p"]
    n = len(weights)
    r = derivations.attention_row_moments(n)
    subs = {derivations.drop_rate: sp.nsimplify(p_value)}
    subs.update({a: sp.nsimplify(w) for a, w in zip(r.weights, weights)})
    truth = {
        "mean": float(r.row_sum_mean_any_weights.subs(subs)),
        "variance": float(r.row_sum_variance.subs(subs)),
        "uniform_variance": float(r.uniform_row_sum_variance.subs(derivations.drop_rate, sp.nsimplify(p_value))),
    }
    squares = sum(w * w for w in weights)
    mistakes = {
        "mean": [(1 - p_value, "the kept weights are divided by 1 - p, so the row sum is 1 on average, not 1 - p")],
        "variance": [
            (0.0, "the rows are not renormalized after dropout, so the row sum varies"),
            (p_value * (1 - p_value) * squares, "that is the variance without the 1/(1-p) scaling"),
            (p_value / (1 - p_value), "the variance is p/(1-p)·Σ a_j², not p/(1-p)"),
            (truth["uniform_variance"], "that is the variance of a uniform row; this row is peaked, use Σ a_j²"),
        ],
        "uniform_variance": [
            (p_value / (1 - p_value), "for a uniform row Σ a_j² = n·(1/n)² = 1/n: the variance is p/((1-p) n)"),
            (p_value * (1 - p_value) / n, "that is missing the 1/(1-p) scaling: p/((1-p) n)"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from the derived moments", abs_tol=1e-12)
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))
