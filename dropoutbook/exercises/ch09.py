"""Checkers for the exercises of chapter 9, "Dropout in transformers".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong, for
example "the rows of your weights sum to exactly one: do not renormalize after dropout".
"""

from __future__ import annotations

import math
import types

import sympy as sp
import torch

from .. import derivations
from .._validation import check_probability
from ._core import (
    _SHIFT, CheckFailed, _answer_dict, _check_numbers, _derivation_calls, _drawn_rates, _not_following_message,
    _number_dict, _same_function, _shifted_masks, _student_symbols, _typed_message, call_student, passed,
)

__all__ = ["check_attention_with_dropout", "check_row_sum_variance", "check_row_sum_prediction", "ROW_EXERCISE"]

_Z = 5.0

#: The attention row and drop rate of the "predict" exercise of chapter 9 (the defaults of
#: :func:`~dropoutbook.exercises.check_row_sum_prediction`; the notebook prints them).
ROW_EXERCISE = types.MappingProxyType(dict(weights=(0.5, 0.25, 0.125, 0.125), p=0.1))


# --------------------------------------------------------------------------------------------
# exercise 1: attention with dropout after the softmax


def _pair(answer, shapes, what, dtype=torch.float64):
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise CheckFailed(f"{what} should return a pair (output, weights), got {type(answer).__name__}")
    out = []
    for tensor, shape, name in zip(answer, shapes, ("output", "weights")):
        if type(tensor) is not torch.Tensor:
            raise CheckFailed(f"the {name} should be a torch.Tensor, got {type(tensor).__name__}")
        if tuple(tensor.shape) != shape:
            raise CheckFailed(f"the {name} should have shape {shape}, got {tuple(tensor.shape)}")
        if tensor.dtype != dtype:
            raise CheckFailed(f"the {name} has dtype {tensor.dtype} for inputs of dtype {dtype}: keep the dtype of "
                              "q, k and v (torch.rand_like(weights) draws in the weights' dtype)")
        out.append(tensor.detach().to(torch.float64))
    return out


def check_attention_with_dropout(fn, *, p: float = 0.3) -> None:
    r"""Check ``fn(q, k, v, p, training=True)``, which returns ``(output, weights)`` of scaled dot-product
    attention with attention dropout after the softmax (chapter 9 exercises).

    In evaluation mode the weights must be :math:`\operatorname{softmax}(q k^\top/\sqrt d)` over the
    keys and the output their product with ``v``. In training each weight must be 0 or
    :math:`a_{ij}/(1-p)`, with a fraction p of zeros, rows not renormalized, the output computed
    from the dropped weights, one independent draw per weight (not one mask shared by the batch,
    by a query row, by a key column, by the two halves of the batch or by the weights (i, j) and
    (j, i)) and a new mask on every call; outputs keep the inputs' dtype; ``q``, ``k`` and ``v`` must
    not change. It runs with ``p`` and two rates drawn by the checker's own seeded generator, on
    batches of three sizes and three feature dimensions d (a hard-coded sqrt(4) fails).
    """
    p = check_probability(p, "p", allow_zero=False, allow_one=False)
    if math.isclose(p, 0.5):
        raise ValueError(f"p must not be 0.5 (where p = 1 - p hides a keep/drop swap), got {p}")
    rates = [p, *_drawn_rates([(0.1, 0.22), (0.36, 0.45)], seed=90)]  # never the default 0.3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        summaries = [_check_attention(fn, rate, b, d) for rate, b, d in zip(rates, (128, 96, 160), (4, 9, 6))]
    passed(summaries[0])


def _check_attention(fn, p: float, b: int, d: int) -> str:
    what = "your attention"
    g = torch.Generator().manual_seed(b)
    n = 8
    q, k, v = (torch.randn(b, n, d, generator=g, dtype=torch.float64) for _ in range(3))
    inputs = [t.clone() for t in (q, k, v)]
    shapes = ((b, n, d), (b, n, n))
    scores = q @ k.transpose(-2, -1)
    a = torch.softmax(scores / math.sqrt(d), dim=-1)

    def call(training):
        answer = _pair(call_student(fn, q, k, v, p, training=training, what=what), shapes, what)
        if not all(torch.equal(t, t0) for t, t0 in zip((q, k, v), inputs)):
            raise CheckFailed("your function changed q, k or v in place; compute new tensors instead")
        return answer

    out, w = call(False)
    if not torch.allclose(w, a, atol=1e-6):
        if any(torch.allclose(w, torch.softmax(scores / math.sqrt(other), dim=-1), atol=1e-6) for other in (4, n)):
            raise CheckFailed(f"for q and k of shape {tuple(q.shape)} your weights are softmax(q kᵀ / sqrt(4)) or "
                              f"softmax(q kᵀ / sqrt(n)): divide by the square root of d = q.shape[-1] = {d}, "
                              "the feature dimension, not by a fixed number or the sequence length")
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
    out, w = call(True)
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
    if kept.any() and not torch.allclose(ratio, torch.full_like(ratio, ratio[0].item()), rtol=1e-6):
        raise CheckFailed("the kept weights are not the softmax weights times one common factor: apply dropout to the "
                          "weights AFTER the softmax (dropping scores before it changes every weight of the row)")
    factor = ratio[0].item()
    dropped = 1 - kept.double().mean().item()
    se = math.sqrt(p * (1 - p) / kept.numel())
    if math.isclose(factor, 1.0, rel_tol=1e-6):
        raise CheckFailed("kept weights are not scaled: divide them by 1 - p, so that every row sums to one on average")
    fixed = 1 - 1 / factor if factor > 1 else None
    if fixed is not None and not math.isclose(fixed, p, rel_tol=1e-4) and abs(dropped - fixed) <= _Z * se:
        raise CheckFailed(f"with p = {p} your function drops {dropped:.1%} of the weights and scales the others by "
                          f"1/(1 - {fixed:.3g}): it uses the rate {fixed:.3g}, not the p it receives")
    if not math.isclose(factor, 1 / (1 - p), rel_tol=1e-6):
        raise CheckFailed(f"kept weights are multiplied by {factor:.4g}; inverted dropout divides them by 1 - p = {1 - p:.4g}")
    shared = [
        (kept == kept[:1]).all(), "the same mask for every example of the batch: draw one Bernoulli per weight, a "
                                  "mask of the weights' full shape (batch, n, n), e.g. torch.rand_like(weights)",
        (kept == kept[..., :1]).all(), "one draw per query row: a whole row of weights is dropped or kept together. "
                                       "Draw one Bernoulli per weight, e.g. torch.rand_like(weights)",
        (kept == kept[..., :1, :]).all(), "one draw per key column: a key is dropped for every query together. "
                                          "Draw one Bernoulli per weight, e.g. torch.rand_like(weights)",
    ]
    for same, message in zip(shared[::2], shared[1::2]):
        if same:
            raise CheckFailed(message)
    if abs(dropped - p) > _Z * se:
        if abs(dropped - (1 - p)) <= _Z * se:
            raise CheckFailed(f"{dropped:.1%} of the weights are dropped with p = {p}: you keep with probability p. "
                              "p is the drop probability")
        raise CheckFailed(f"{dropped:.1%} of the weights are dropped; with p = {p} it should be {p:.0%} (±{_Z * se:.1%})")
    _check_independent(kept.double(), 1 - p)
    if not torch.allclose(out, w @ v, atol=1e-6):
        if torch.allclose(out, a @ v, atol=1e-6):
            raise CheckFailed("the output ignores the dropout: compute it from the dropped weights, output = weights @ v")
        raise CheckFailed("the output should be the dropped weights times v")
    _, w2 = call(True)
    if torch.equal(w2 != 0, kept):
        raise CheckFailed("two calls dropped the same weights: draw a new mask on every call (do not reseed inside "
                          "the function)")
    sums = w.sum(-1)
    return f"dropped {dropped:.1%} of the weights; row sums {sums.min():.2f} to {sums.max():.2f}, mean {sums.mean():.3f}"


def _check_independent(kept: torch.Tensor, keep: float) -> None:
    """Two weights of different examples, of one row or of one column are both kept with probability
    keep² when the draws are independent (5 standard errors)."""
    half = kept.shape[0] // 2
    upper = torch.triu_indices(kept.shape[-1], kept.shape[-1], offset=1)
    pairs = {
        "examples of the batch": kept[0::2] * kept[1::2][: kept[0::2].shape[0]],
        "halves of the batch": kept[:half] * kept[half:2 * half],
        "weights (i, j) and (j, i)": kept[..., upper[0], upper[1]] * kept[..., upper[1], upper[0]],
        "keys of one query row": kept[..., 0::2] * kept[..., 1::2],
        "queries of one key column": kept[..., 0::2, :] * kept[..., 1::2, :],
    }
    for name, both in pairs.items():
        se = math.sqrt(keep**2 * (1 - keep**2) / both.numel())
        share = both.mean().item()
        if abs(share - keep**2) > _Z * se:
            raise CheckFailed(f"the masks of different {name} are not independent: two of them are both kept in "
                              f"{share:.1%} of the cases, not (1 - p)² = {keep**2:.1%}. Draw one independent "
                              "Bernoulli per weight")


# --------------------------------------------------------------------------------------------
# exercise 2: derive the variance of a row sum


def check_row_sum_variance(fn) -> None:
    r"""Check ``fn()``, which computes the mean and the variance of :math:`\sum_j \tilde a_j` for a row of
    three weights with :func:`~dropoutbook.derivations.expectation` or
    :func:`~dropoutbook.derivations.variance` and returns them in a dict with the keys ``"mean"`` and
    ``"variance"``, sympy expressions in ``p``, ``a1``, ``a2``, ``a3`` (chapter 9 exercises).

    The truth is :func:`~dropoutbook.derivations.attention_row_moments`; an answer that is equal
    once :math:`a_3 = 1 - a_1 - a_2` is substituted is accepted too. An answer typed in without
    calling those functions fails, and so does one that does not follow the mask distribution it
    passes to them (a second run draws every Bernoulli(k) mask as Bernoulli(k/2): a typed mean of 1
    or a typed variance next to an irrelevant call stays put). The mean exposes a mask written as
    Bernoulli(p), which gives the right variance; the usual mistakes are named.
    """
    what = "your derivation"
    with _derivation_calls() as calls:
        answer = call_student(fn, what=what)
    answer = _answer_dict(answer, ("mean", "variance"), what)
    r = derivations.attention_row_moments(3)
    p = derivations.drop_rate
    a1, a2, a3 = r.weights
    symbols = {"p": p, "a1": a1, "a2": a2, "a3": a3}
    mean = _student_symbols(answer["mean"], symbols, f"the mean of {what}")
    var = _student_symbols(answer["variance"], symbols, f"the variance of {what}")
    if not calls:
        raise CheckFailed(_typed_message(what, "derivations.expectation or derivations.variance"))
    on_simplex = {a3: 1 - a1 - a2}
    points = [(0.1, 0.5, 0.3), (0.3, 0.2, 0.2), (0.6, 0.7, 0.1)]

    def same(x, y):
        return _same_function(sp.sympify(x).subs(on_simplex), sp.sympify(y).subs(on_simplex), (p, a1, a2), points)

    total = a1 + a2 + a3
    if not same(mean, total):
        mean_mistakes = [
            (p / (1 - p) * total, "your masks keep with probability p (m_j ~ Bernoulli(p)); p is the drop "
                                  "probability, m_j ~ Bernoulli(1 - p). The variance alone would not show it"),
            ((1 - p) * total, "the mean is (1 - p)·Σ a_j: that is without the 1/(1-p) scaling; attention dropout "
                              "divides the kept weights by 1 - p"),
            ((1 - p) / p * total, "the kept weights are divided by p; divide them by the keep probability 1 - p"),
        ]
        for wrong, message in mean_mistakes:
            if same(mean, wrong):
                raise CheckFailed(message)
        raise CheckFailed("the mean of the row sum should be Σ a_j (1 on the simplex): the kept weights are divided "
                          "by the keep probability 1 - p")
    truth = r.row_sum_variance
    squares = a1**2 + a2**2 + a3**2
    if same(var, truth):
        with _shifted_masks():
            moved = _answer_dict(call_student(fn, what=what), ("mean", "variance"), what)
        keep = (1 - p) * _SHIFT  # the mask the shifted run draws; the scaling stays 1/(1-p)
        if not (same(_student_symbols(moved["mean"], symbols, f"the mean of {what}"), keep / (1 - p) * total)
                and same(_student_symbols(moved["variance"], symbols, f"the variance of {what}"),
                         keep * (1 - keep) / (1 - p) ** 2 * squares)):
            raise CheckFailed(_not_following_message(what))
        passed(f"E[row sum] = a1 + a2 + a3 = 1, Var[row sum] = {derivations.tidy(truth, p)}")
        return
    mistakes = [
        (p * (1 - p) * squares, "that is the variance without the 1/(1-p) scaling; attention dropout divides the kept "
                                "weights by 1 - p"),
        (p / (1 - p), "the weights are not all 1: each term m_j a_j/(1-p) has variance p/(1-p)·a_j²"),
        (p / (1 - p) * total**2, "the masks are independent, so the variances of the terms add: "
                                 "Σ a_j², not (Σ a_j)²"),
        (p / (3 * (1 - p)), "p/(3(1-p)) holds for a uniform row a_j = 1/3 only; keep the weights a_j"),
        (p / (1 - p) * squares + 1, "that is E[S²]; the variance is E[S²] − E[S]², and E[S] = 1"),
        (squares / (1 - p), "that is E[S²] without the cross terms; subtract E[S]² and keep the cross terms"),
    ]
    for wrong, message in mistakes:
        if same(var, wrong):
            raise CheckFailed(message)
    at = {p: sp.Rational(1, 5), a1: sp.Rational(1, 2), a2: sp.Rational(1, 4), a3: sp.Rational(1, 4)}
    raise CheckFailed(f"at p = 0.2, a = (0.5, 0.25, 0.25) your variance gives {float(var.subs(at)):.4g}; "
                      f"the variance is {float(truth.subs(at)):.4g}")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the row sum of a dropped row


def check_row_sum_prediction(fn, *, weights=(0.5, 0.25, 0.125, 0.125), p: float = 0.1) -> None:
    """Check ``fn()``, which returns a dict with the predicted ``"mean"`` and ``"variance"`` of the sum of
    the attention row ``weights`` after attention dropout of rate ``p``, and the ``"uniform_variance"``
    of a uniform row of the same length (chapter 9 exercises; the defaults are
    :data:`~dropoutbook.exercises.ch09.ROW_EXERCISE`). Any real number type is accepted."""
    weights, p_value = _attention_row(weights), check_probability(p, "p", allow_one=False)
    what = "your prediction"
    keys = ("mean", "variance", "uniform_variance")
    answer = _number_dict(call_student(fn, what=what), keys, what)
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
            (p_value * squares, "p·Σ a_j² forgets the scaling: each term m_j a_j/(1-p) has variance "
                                "p(1-p)·a_j²/(1-p)² = p/(1-p)·a_j²"),
            (math.sqrt(truth["variance"]), "that is the standard deviation; the variance is its square"),
            (1 + truth["variance"], "that is E[S²]; the variance is E[S²] − E[S]², and E[S] = 1"),
            ((1 - p_value) / p_value * squares, "(1-p)/p treats p as the keep probability; p is the drop probability"),
        ],
        "uniform_variance": [
            (p_value / (1 - p_value), "for a uniform row Σ a_j² = n·(1/n)² = 1/n: the variance is p/((1-p) n)"),
            (p_value * (1 - p_value) / n, "that is missing the 1/(1-p) scaling: p/((1-p) n)"),
            (p_value / ((1 - p_value) * n * n), "for a uniform row Σ a_j² = n·(1/n)² = 1/n, not 1/n²: the variance "
                                                "is p/((1-p) n)"),
            (math.sqrt(truth["uniform_variance"]), "that is the standard deviation; the variance is its square"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from the derived moments", abs_tol=1e-12)
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))


def _attention_row(weights) -> tuple[float, ...]:
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__") or not 1 <= len(weights) <= 8:
        raise ValueError(f"weights must be a sequence of 1 to 8 probabilities that sum to 1, got {weights!r}")
    row = tuple(check_probability(w, f"weights[{i}]") for i, w in enumerate(weights))
    if not math.isclose(sum(row), 1.0, rel_tol=1e-9):
        raise ValueError(f"weights must sum to 1 (a row of attention weights), got {sum(row)!r}")
    return row
