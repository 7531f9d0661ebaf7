"""Checkers for the exercises of chapter 5, "Monte Carlo dropout".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`~dropoutbook.exercises.CheckFailed` with a message that says
what is wrong (for example, "BatchNorm's running statistics changed: you called model.train()").
"""

from __future__ import annotations

import functools
import math

import sympy as sp
import torch
from torch import nn

from .. import derivations
from ..uncertainty import expected_entropy, mc_predict, mutual_information, predictive_entropy
from ._core import CheckFailed, _same_function, _student_symbols, call_student, passed

__all__ = [
    "check_mc_dropout_loop", "check_bald", "check_mc_mean_variance", "check_passes_needed",
    "PASSES_EXERCISE",
]

_Z = 5.0


# --------------------------------------------------------------------------------------------
# exercise 1: the MC-dropout loop


def _exercise_model() -> nn.Module:
    """An MLP with BatchNorm and dropout whose running statistics are far from 0 and 1."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.4),
                          nn.Linear(16, 2)).double()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 3, dtype=torch.float64) * 3 + 2)
    return model.eval()


def _state(model: nn.Module):
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()])


def _as_pair(out, shape, what: str):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailed(f"{what} should return a pair (mean, variance), got {type(out).__name__}")
    mean, var = out
    for name, t in (("mean", mean), ("variance", var)):
        if not isinstance(t, torch.Tensor):
            raise CheckFailed(f"the {name} should be a torch.Tensor, got {type(t).__name__}")
        if t.shape != shape:
            raise CheckFailed(f"the {name} should have the shape of one model output {tuple(shape)}, got {tuple(t.shape)}"
                              " (average over the T passes, not over the inputs)")
    return mean.detach().double(), var.detach().double()


def check_mc_dropout_loop(fn) -> None:
    """Check ``fn(model, x, T)``, a loop of T MC-dropout passes returning ``(mean, variance)`` (chapter 5 exercises).

    The model has BatchNorm and ``torch.nn.Dropout``. The checker verifies, in order: the returned
    shapes; that no parameter or buffer changed (BatchNorm's running statistics catch
    ``model.train()``); that every module's mode is restored, for a model in evaluation mode and for
    one in training mode; that the passes differ (dropout active); that the mean agrees with
    :func:`~dropoutbook.mc_predict` within 5 standard errors; and, from many calls with T = 2, that
    the variance divides by T - 1.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        passed(_check_mc_dropout_loop(fn))


def _check_mc_dropout_loop(fn) -> str:
    what = "your MC-dropout function"
    model = _exercise_model()
    x = torch.randn(6, 3, dtype=torch.float64) * 2 + 1
    shape = (6, 2)
    T = 400
    for start_mode in ("evaluation", "training"):
        model.train(start_mode == "training")
        before = _state(model)
        out = _as_pair(call_student(fn, model, x.clone(), T, what=what), shape, what)
        after = _state(model)
        changed = [k for k in before[0] if not torch.equal(before[0][k], after[0][k])]
        if changed:
            bn = any("running" in k or "num_batches" in k for k in changed)
            raise CheckFailed(
                f"the model's {', '.join(changed[:3])} changed during your passes"
                + (": BatchNorm was in training mode, so it normalized with batch statistics and updated its "
                   "running averages. Do not call model.train(); put only the nn.Dropout modules in "
                   "training mode" if bn else "; MC dropout must not change any parameter")
            )
        if after[1] != before[1]:
            raise CheckFailed(
                f"the model was in {start_mode} mode before your call and its modules' modes differ after it: "
                "record each module's `training` flag first and restore it at the end (in a `finally:` block), "
                "rather than calling model.eval() or model.train()"
            )
        if start_mode == "evaluation":
            mean, var = out
    if torch.all(var == 0):
        raise CheckFailed("your variance is 0: all T passes gave the same output, so dropout was not active. "
                          "Switch the nn.Dropout modules to training mode (module.train()) during the passes")
    ref = mc_predict(model, x, T=20_000, generator=torch.Generator().manual_seed(1))
    se = (ref.variance / T).sqrt()
    z = ((mean - ref.mean) / se).abs().max().item()
    if z > _Z:
        raise CheckFailed(f"your mean is {z:.1f} standard errors from the MC-dropout mean: check that BatchNorm "
                          "uses its running statistics (evaluation mode) and that you average over the T passes")
    # the divisor: many calls with T = 2, where T - 1 = 1 and T = 2 differ by a factor of 2
    ratios = []
    for _ in range(150):
        _, v2 = _as_pair(call_student(fn, model, x, 2, what=what), shape, what)
        ratios.append((v2 / ref.variance).flatten())
    ratios = torch.cat(ratios)
    ratio = ratios.mean().item()
    se_ratio = ratios.std().item() / math.sqrt(ratios.numel())
    if abs(ratio - 0.5) <= _Z * se_ratio:
        raise CheckFailed("with T = 2 your variance is half the variance of one pass on average: you divide by T. "
                          "Divide by T - 1 (torch.var's default, correction=1) for an unbiased estimate")
    if abs(ratio - 1) > _Z * se_ratio:
        raise CheckFailed(f"with T = 2 your variance averages {ratio:.3f} times the variance of one pass; "
                          "it should average 1 (the unbiased sample variance). Did you return a standard deviation?")
    return f"BN and modes intact, mean within {z:.1f} s.e., variance unbiased ({ratio:.2f})"


# --------------------------------------------------------------------------------------------
# exercise 2: the BALD score


def _probability_cases() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 30, 4, generator=g, dtype=torch.float64) * 2
    probs = logits.softmax(-1)
    probs[:, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # all passes certain and agree
    probs[:4, 1] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # certain, but disagree
    probs[4:, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    probs[:, 2] = 0.25  # agree on a flat distribution
    return probs


def check_bald(fn) -> None:
    """Check ``fn(probs)``, the BALD score (mutual information) of stacked probabilities of shape (T, N, C) (chapter 5 exercises).

    Compares with :func:`~dropoutbook.mutual_information` on random probabilities and on three
    special inputs: passes that are certain and agree (score 0), certain but disagree (score
    log 2), and agree on a flat distribution (score 0). Recognizes the predictive entropy alone, the
    expected entropy alone, the difference taken the wrong way round, NaN from :math:`0 \\log 0`, and
    a mean over classes instead of a sum.
    """
    what = "your BALD function"
    probs = _probability_cases()
    before = probs.clone()
    out = call_student(fn, probs, what=what)
    if not torch.equal(probs, before):
        raise CheckFailed("your function changed its input in place; work on new tensors")
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
    if out.shape != probs.shape[1:2]:
        raise CheckFailed(f"{what} should return one score per input, shape {tuple(probs.shape[1:2])}, got {tuple(out.shape)}: "
                          "average over the passes (dim 0) and sum over the classes (dim -1)")
    out = out.detach().double()
    if torch.isnan(out).any():
        where = torch.isnan(out).nonzero()[0].item()
        raise CheckFailed(f"your score is NaN for input {where}, whose probabilities include exact zeros: 0·log 0 must "
                          "count as 0. Use torch.special.xlogy(p, p), or add a tiny constant inside the log")
    truth = mutual_information(probs)
    if torch.allclose(out, truth, atol=1e-6):
        passed(f"BALD matches; {abs(out[0].item()):.3f} when passes agree, "
               f"{out[1].item():.3f} = log 2 when they disagree")
        return
    h, eh = predictive_entropy(probs), expected_entropy(probs)
    mistakes = [
        (h, "that is the predictive entropy H[mean p] alone: subtract the expected entropy (the mean over passes "
            "of each pass's entropy)"),
        (eh, "that is the expected entropy alone; BALD is the predictive entropy minus the expected entropy"),
        (-truth, "the sign is reversed: BALD = H[mean over passes] − mean over passes of H, which is never negative"),
        (truth / probs.shape[-1], "the entropies must sum over the classes, not average over them"),
    ]
    for wrong, message in mistakes:
        if torch.allclose(out, wrong, atol=1e-6):
            raise CheckFailed(message)
    worst = (out - truth).abs().argmax().item()
    raise CheckFailed(f"for input {worst} your score is {out[worst].item():.4f} but the mutual information is "
                      f"{truth[worst].item():.4f}")


# --------------------------------------------------------------------------------------------
# exercise 3: derive Var[mu_T] for one input and T = 2


@functools.lru_cache(maxsize=None)
def _linear_estimator(d: int, T: int):
    """The derivation of chapter 5, computed once per (d, T) (sympy is slow)."""
    return derivations.mc_linear_estimator(d, T)


def check_mc_mean_variance(fn) -> None:
    r"""Check ``fn()``, which returns :math:`\operatorname{Var}[\hat\mu_2]` for a linear unit with one input as a sympy expression in ``p``, ``w``, ``x`` (chapter 5 exercises).

    The unit is :math:`f_t = w m_t x / (1-p)`, :math:`m_t \sim \mathrm{Bernoulli}(1-p)`, and
    :math:`\hat\mu_2 = (f_1 + f_2)/2`. Recognizes the variance of one pass (the :math:`1/T`
    forgotten), :math:`\mathbb E[\hat\mu_2^2]`, swapped drop and keep probabilities and the unscaled mask.
    """
    what = "your derivation"
    expr = call_student(fn, what=what)
    p = derivations.drop_rate
    w, x = sp.symbols("w x", real=True)
    expr = _student_symbols(expr, {"p": p, "w": w, "x": x}, what)
    est = _linear_estimator(1, 2)
    truth = est.variance.subs({est.w[0]: w, est.x[0]: x})
    points = [(0.1, 1.3, 0.7), (0.3, -0.7, 2.0), (0.75, 2.0, -1.1)]
    symbols = (p, w, x)
    if _same_function(expr, truth, symbols, points):
        passed(f"Var[mu_2] = (1/2)*({derivations.tidy(2 * expr, p)})")
        return
    s = w**2 * x**2
    mistakes = [
        (s * p / (1 - p), "that is the variance of one pass; the mean of T = 2 independent passes has half of it"),
        (s * p / (1 - p) / 2 + (w * x) ** 2, "that is E[mu_2²]; subtract E[mu_2]² = (w x)²"),
        (s * (1 - p) / p / 2, "that treats p as the keep probability; here m ~ Bernoulli(1-p)"),
        (s * p * (1 - p) / 2, "that is missing the inverted-dropout factor 1/(1-p) of each pass"),
        (s * p / (1 - p) / 4, "the variances of two independent passes add: Var[(f1+f2)/2] = (Var f1 + Var f2)/4 = Var f/2"),
    ]
    for wrong, message in mistakes:
        if _same_function(expr, wrong, symbols, points):
            raise CheckFailed(message)
    at = {p: sp.Rational(1, 2), w: 1, x: 1}
    raise CheckFailed(f"at p = 1/2, w = x = 1 your expression gives {float(expr.subs(at)):.4g}, "
                      f"but Var[mu_2] is {float(truth.subs(at)):.4g} there")


# --------------------------------------------------------------------------------------------
# exercise 4: predict the number of passes

#: The linear unit, drop rate and target standard error of the "predict" exercise of chapter 5.
PASSES_EXERCISE = {"w": (2.0, -1.0, 0.5), "x": (1.0, 3.0, 4.0), "p": 0.25, "target_se": 0.05}


def _passes_truth(w, x, p, target_se) -> tuple[float, int]:
    est = _linear_estimator(len(w), 1)
    subs = {derivations.drop_rate: sp.nsimplify(p), **dict(zip(est.w, map(sp.nsimplify, w))),
            **dict(zip(est.x, map(sp.nsimplify, x)))}
    pass_var = est.pass_variance.subs(subs)
    T = int(sp.ceiling(pass_var / sp.nsimplify(target_se) ** 2))
    return float(pass_var), T


def check_passes_needed(fn) -> None:
    """Check ``fn()``, the smallest number of passes T for which the standard error of the MC mean is at most
    ``target_se`` (chapter 5 exercises), for the numbers in :data:`~dropoutbook.exercises.ch05.PASSES_EXERCISE`."""
    what = "your prediction"
    answer = call_student(fn, what=what)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or answer != int(answer):
        raise CheckFailed(f"{what} should be a whole number of passes (an int), got {answer!r}")
    answer = int(answer)
    ex = PASSES_EXERCISE
    pass_var, truth = _passes_truth(**ex)
    if answer == truth:
        passed(f"T = {truth}: the standard error is sqrt({pass_var:.4f}/{truth}) = {math.sqrt(pass_var / truth):.4f} "
               f"<= {ex['target_se']}")
        return
    w, x, p, eps = ex["w"], ex["x"], ex["p"], ex["target_se"]
    s = sum((a * b) ** 2 for a, b in zip(w, x))
    wx = sum(a * b for a, b in zip(w, x))
    mistakes = [
        (truth - 1, f"with T = {truth - 1} the standard error is {math.sqrt(pass_var / (truth - 1)):.5f}, just above "
                    f"{eps}: round up, not down"),
        (math.ceil(pass_var / eps), "the standard error is sqrt(Var/T); solve sqrt(Var/T) <= eps, i.e. T >= Var/eps² "
                                    "(square eps)"),
        (math.ceil(math.sqrt(pass_var) / eps), "T >= Var/eps² with Var the variance of one pass, not its standard deviation"),
        (math.ceil(s * (1 - p) / p / eps**2), "that treats p as the keep probability: the variance of one pass is "
                                              "Σ w_i² x_i² · p/(1-p) with p the drop probability"),
        (math.ceil(wx**2 * p / (1 - p) / eps**2), "the masks are independent, so the variance is Σ w_i² x_i² p/(1-p), "
                                                  "not (Σ w_i x_i)² p/(1-p)"),
        (math.ceil(s * p * (1 - p) / eps**2), "each pass is divided by 1-p (inverted dropout): the variance of one pass "
                                              "is Σ w_i² x_i² p/(1-p), not p(1-p) Σ w_i² x_i²"),
    ]
    for wrong, message in mistakes:
        if answer == wrong:
            raise CheckFailed(f"T = {answer} is not right: {message}")
    raise CheckFailed(f"T = {answer} is not right; the standard error of the MC mean with T passes is "
                      "sqrt(Var[one pass]/T)")
