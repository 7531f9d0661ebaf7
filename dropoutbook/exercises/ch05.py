"""Checkers for the exercises of chapter 5, "Monte Carlo dropout".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
or raises :class:`~dropoutbook.exercises.CheckFailed` with a message that says what is wrong (for
example, "BatchNorm's running statistics changed: you called model.train()"). The MC-dropout
checker uses models whose submodules are in different modes, with non-default BatchNorm and
dropout hyperparameters, and a pass that raises; the BALD checker tries several shapes; the
library's :mod:`~dropoutbook.uncertainty` is forbidden while the student's code runs; the derive
checker calls the student's function with a second mask distribution.
"""

from __future__ import annotations

import functools
import math
import types

import sympy as sp
import torch
from torch import nn

from .. import _validation, derivations, uncertainty
from ..uncertainty import expected_entropy, mc_predict, mutual_information, predictive_entropy
from ._core import (
    CheckFailed, _agree, _derived_dict, _drawn_rates, _library_forbidden, _real_number, call_student, passed,
)

__all__ = [
    "check_mc_dropout_loop", "check_bald", "check_mc_mean_variance", "check_passes_needed",
    "PASSES_EXERCISE",
]

_Z = 5.0
_SEED = 2028
_HINT = "write the loop yourself"


# --------------------------------------------------------------------------------------------
# exercise 1: the MC-dropout loop


class _InjectedFailure(RuntimeError):
    """Raised by the checker's own module in the middle of the passes, to see the modes restored."""


class _FailsOnCall(nn.Module):
    """The identity, except that its ``n``-th forward pass raises :class:`_InjectedFailure`."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise _InjectedFailure(f"a forward pass raised (the checker's test of pass {self.n})")
        return x


def _exercise_model(rates) -> nn.Sequential:
    """An MLP with BatchNorm (momentum 0.3, eps 1e-3; running statistics far from 0 and 1) and two
    dropout layers of the drop rates ``rates``, one of them inside a nested block."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 16), nn.BatchNorm1d(16, momentum=0.3, eps=1e-3), nn.ReLU(), nn.Dropout(rates[0]),
        nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Dropout(rates[1])),
        nn.Linear(16, 2),
    ).double()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 3, dtype=torch.float64) * 3 + 2)
    return model.eval()


# The modes a model is in before a call: all in evaluation, all in training, and two mixtures
# (BatchNorm frozen in a model that trains; a model in evaluation with its nested block training).
_START_MODES = {
    "evaluation mode": lambda model: model.eval(),
    "training mode": lambda model: model.train(),
    "training mode with BatchNorm frozen in evaluation": lambda model: (model.train(), model[1].eval()),
    "evaluation mode with its nested block in training": lambda model: (model.eval(), model[4].train()),
}


def _state(model: nn.Module):
    """Parameters and buffers, every module's mode, and the hyperparameters a loop could touch."""
    hyper = [(type(m).__name__, getattr(m, "momentum", None), getattr(m, "eps", None), getattr(m, "p", None))
             for m in model.modules()]
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()], hyper)


def _compare_states(before, after, start: str):
    for (name, *old), (_, *new) in zip(before[2], after[2]):
        if old != new:
            labels = ("momentum", "eps", "p")
            what = next(label for label, a, b in zip(labels, old, new) if a != b)
            a, b = (dict(zip(labels, v))[what] for v in (old, new))
            raise CheckFailed(f"the {what} of a {name} changed from {a} to {b} during your call: leave the "
                              "hyperparameters alone, or restore what was there, not a default")
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
            f"the model was in {start} before your call and its modules' modes differ after it: "
            "record each module's `training` flag first and restore it at the end (in a `finally:` block), "
            "rather than calling model.eval() or model.train(), which set every submodule to one mode"
        )


def _as_pair(out, shape, what: str):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailed(f"{what} should return a pair (mean, variance), got {type(out).__name__}")
    mean, var = out
    for name, t in (("mean", mean), ("variance", var)):
        if type(t) is not torch.Tensor:
            raise CheckFailed(f"the {name} should be a torch.Tensor, got {type(t).__name__}")
        if t.shape != shape:
            raise CheckFailed(f"the {name} should have the shape of one model output {tuple(shape)}, got {tuple(t.shape)}"
                              " (average over the T passes, not over the inputs)")
    return mean.detach().double(), var.detach().double()


def check_mc_dropout_loop(fn) -> None:
    """Check ``fn(model, x, T)``, a loop of T MC-dropout passes returning ``(mean, variance)`` (chapter 5 exercises).

    The model has BatchNorm (momentum 0.3, not the default) and two ``torch.nn.Dropout`` layers of
    drop rates drawn from the checker's seeded generator, one in a nested block. The checker
    verifies, in order: the returned shapes; that ``x`` and every parameter and buffer are
    unchanged (BatchNorm's running statistics catch ``model.train()``) and so are the
    hyperparameters; that every module's mode is restored, for a model in evaluation mode, in
    training mode and in two mixtures of modes (restoring only the top-level flag fails), and also
    when a forward pass raises; that the passes differ (dropout active); that the mean agrees with
    :func:`~dropoutbook.mc_predict` within 5 standard errors; and, from many calls with T = 2,
    that the variance divides by T - 1. The library's MC-dropout functions are forbidden while the
    student's code runs.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        summary = _check_mc_dropout_loop(fn)
    passed(summary)


def _student_passes(fn, model, x, T, shape, what):
    with _library_forbidden(uncertainty, _HINT):
        return _as_pair(call_student(fn, model, x, T, what=what), shape, what)


def _check_mc_dropout_loop(fn) -> str:
    what = "your MC-dropout function"
    rates = _drawn_rates([(0.15, 0.4), (0.55, 0.75)], seed=_SEED)
    model = _exercise_model(rates)
    x = torch.randn(6, 3, dtype=torch.float64) * 2 + 1
    shape = (6, 2)
    T = 400
    means = []
    for start, set_modes in _START_MODES.items():
        set_modes(model)
        before = _state(model)
        x_in = x.clone()
        out = _student_passes(fn, model, x_in, T, shape, what)
        if not torch.equal(x_in, x):
            raise CheckFailed("your function changed its input x in place; the passes must leave x as it was")
        _compare_states(before, _state(model), start)
        means.append(out[0])
        if start == "evaluation mode":
            mean, var = out
    _check_restored_on_error(fn, rates, what)
    model.eval()
    if torch.all(var == 0):
        raise CheckFailed("your variance is 0: all T passes gave the same output. Either dropout was not active "
                          "(switch the nn.Dropout modules to training mode, module.train(), during the passes) or "
                          "every pass drew the same mask (do not reseed the random generator inside the loop)")
    if torch.equal(means[0], means[1]):
        raise CheckFailed("two calls returned exactly the same mean: every call draws the same masks. Do not reseed "
                          "the random generator (torch.manual_seed) inside your function, and do not reuse stored "
                          "outputs; every call must draw new masks")
    ref = mc_predict(model, x, T=20_000, generator=torch.Generator().manual_seed(1))
    if torch.allclose(var**2, ref.variance, rtol=0.3):
        raise CheckFailed("your variance is the standard deviation of the passes (its square matches the "
                          "variance): return the variance itself, out.var(0)")
    spread = (var / ref.variance).mean().item()  # about 1 ± 0.03 for T = 400 passes of the right model
    if abs(spread - 1) > 0.25:
        detail = ("less: some nn.Dropout modules did not sample. The checker's model has one inside a nested block; "
                  "find them all with model.modules() (every submodule), not model.children()" if spread < 1 else
                  "more: check that every module but the nn.Dropout ones is in evaluation mode during the passes")
        raise CheckFailed(f"with T = {T} your passes vary {spread:.2f} times as much as MC dropout's passes, far "
                          f"{detail}")
    se = (ref.variance / T).sqrt()
    z = ((mean - ref.mean) / se).abs().max().item()
    if z > _Z:
        raise CheckFailed(f"your mean is {z:.1f} standard errors from the MC-dropout mean: check that BatchNorm "
                          "uses its running statistics (evaluation mode) and that you average over the T passes")
    # the divisor: many calls with T = 2, where T - 1 = 1 and T = 2 differ by a factor of 2
    ratios = []
    for _ in range(150):
        _, v2 = _student_passes(fn, model, x, 2, shape, what)
        ratios.append((v2 / ref.variance).flatten())
    ratios = torch.cat(ratios)
    ratio = ratios.mean().item()
    se_ratio = ratios.std().item() / math.sqrt(ratios.numel())
    if abs(ratio - 0.5) <= _Z * se_ratio:
        raise CheckFailed("with T = 2 your variance is half the variance of one pass on average: you divide by T. "
                          "Divide by T - 1 (torch.var's default, correction=1) for an unbiased estimate")
    if abs(ratio - 1) > _Z * se_ratio:
        _, v400 = _student_passes(fn, model, x, T, shape, what)
        if torch.allclose(v400**2, ref.variance, rtol=0.3):
            raise CheckFailed("your variance is the standard deviation of the passes (its square matches the "
                              "variance): return the variance itself, out.var(0)")
        raise CheckFailed(f"with T = 2 your variance averages {ratio:.3f} times the variance of one pass; "
                          "it should average 1 (the unbiased sample variance)")
    return (f"BN and modes intact (also for mixed modes and after an error), mean within {z:.1f} s.e., "
            f"variance unbiased ({ratio:.2f}); p = {rates[0]} and {rates[1]}")


def _check_restored_on_error(fn, rates, what: str) -> None:
    """Call ``fn`` on a model whose third forward pass raises: every module's mode must be restored."""
    model = _exercise_model(rates)
    model.append(_FailsOnCall(3))
    model.train()
    model[1].eval()
    before = _state(model)
    try:
        _student_passes(fn, model, torch.randn(6, 3, dtype=torch.float64), 10, (6, 2), what)
    except CheckFailed as exc:
        if not isinstance(exc.__cause__, _InjectedFailure):  # only the checker's own failure is expected here
            raise
    after = _state(model)
    if after[1] != before[1]:
        raise CheckFailed("when a forward pass raised an error in the middle of your loop (the checker's model "
                          "fails on its third pass), the modules were left in other modes than before: restore each "
                          "module's `training` flag in a `finally:` block, so that it happens also on an error")


# --------------------------------------------------------------------------------------------
# exercise 2: the BALD score


def _probability_cases() -> list[torch.Tensor]:
    """Stacked probabilities (T, N, C) of several shapes; the first holds the three special inputs."""
    g = torch.Generator().manual_seed(0)
    probs = (torch.randn(8, 30, 4, generator=g, dtype=torch.float64) * 2).softmax(-1)
    probs[:, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # all passes certain and agree
    probs[:4, 1] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # certain, but disagree
    probs[4:, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    probs[:, 2] = 0.25  # agree on a flat distribution
    other = [(torch.randn(3, 5, 2, generator=g, dtype=torch.float64) * 3).softmax(-1),
             (torch.randn(1, 7, 3, generator=g, dtype=torch.float64)).softmax(-1),
             (torch.randn(20, 2, 10, generator=g, dtype=torch.float64) * 2).softmax(-1).float()]
    return [probs, *other]


def check_bald(fn) -> None:
    """Check ``fn(probs)``, the BALD score (mutual information) of stacked probabilities of shape (T, N, C) (chapter 5 exercises).

    Compares with :func:`~dropoutbook.mutual_information` on four inputs of different shapes
    (one pass only, two classes, a float32 input) and on three special inputs: passes that are
    certain and agree (score 0), certain but disagree (score log 2), and agree on a flat
    distribution (score 0). Recognizes the predictive entropy alone, the expected entropy alone,
    the difference taken the wrong way round, NaN from :math:`0 \\log 0`, a mean over classes
    instead of a sum, and entropies in bits. The library is forbidden while the student's code runs.
    """
    what = "your BALD function"
    for case, probs in enumerate(_probability_cases()):
        before = probs.clone()
        with _library_forbidden(uncertainty, "compute the entropies yourself"):
            out = call_student(fn, probs, what=what)
        if not torch.equal(probs, before):
            raise CheckFailed("your function changed its input in place; work on new tensors")
        if type(out) is not torch.Tensor:
            raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
        T, N, C = probs.shape
        if out.shape != (N,):
            raise CheckFailed(f"{what} should return one score per input, shape ({N},) for probs of shape "
                              f"({T}, {N}, {C}), got {tuple(out.shape)}: average over the passes (dim 0) and sum "
                              "over the classes (dim -1)")
        out = out.detach().double()
        if torch.isnan(out).any():
            where = torch.isnan(out).nonzero()[0].item()
            raise CheckFailed(f"your score is NaN for input {where}, whose probabilities include exact zeros: 0·log 0 "
                              "must count as 0. Use torch.special.xlogy(p, p), or add a tiny constant inside the log")
        p64 = probs.double()
        p64 = p64 / p64.sum(-1, keepdim=True)  # a float32 input sums to 1 only to float32 precision
        truth = mutual_information(p64)
        if torch.allclose(out, truth, atol=1e-5 if probs.dtype == torch.float32 else 1e-6):
            if case == 0:
                shown = f"{abs(out[0].item()):.3f} when passes agree, {out[1].item():.3f} = log 2 when they disagree"
            continue
        h, eh = predictive_entropy(p64), expected_entropy(p64)
        mistakes = [
            (h, "that is the predictive entropy H[mean p] alone: subtract the expected entropy (the mean over "
                "passes of each pass's entropy)"),
            (eh, "that is the expected entropy alone; BALD is the predictive entropy minus the expected entropy"),
            (-truth, "the sign is reversed: BALD = H[mean over passes] − mean over passes of H, which is never "
                     "negative"),
            (truth / C, "the entropies must sum over the classes, not average over them"),
            (truth / math.log(2), "those are bits (log base 2); the book's entropies use the natural log, "
                                  "torch.log"),
        ]
        for wrong, message in mistakes:
            if torch.allclose(out, wrong, atol=1e-6) and not torch.allclose(wrong, truth, atol=1e-6):
                raise CheckFailed(f"for probs of shape ({T}, {N}, {C}): {message}")
        worst = (out - truth).abs().argmax().item()
        raise CheckFailed(f"for probs of shape ({T}, {N}, {C}), input {worst}: your score is {out[worst].item():.4f} "
                          f"but the mutual information is {truth[worst].item():.4f}")
    passed(f"BALD matches for 4 shapes; {shown}")


# --------------------------------------------------------------------------------------------
# exercise 3: derive E and Var of mu_T for one input and T = 2


@functools.lru_cache(maxsize=None)
def _linear_estimator(d: int, T: int):
    """The derivation of chapter 5, computed once per (d, T) (sympy is slow)."""
    return derivations.mc_linear_estimator(d, T)


def check_mc_mean_variance(fn) -> None:
    r"""Check ``fn(mask)``, which returns ``{"mean": E[mu_2], "variance": Var[mu_2]}`` for a linear unit with
    one input, as sympy expressions in ``p``, ``w``, ``x`` (chapter 5 exercises).

    The unit is :math:`f_t = w m_t x / (1-p)` with :math:`m_1, m_2` independent with the
    distribution ``mask``, and :math:`\hat\mu_2 = (f_1 + f_2)/2`. With
    ``mask = derivations.Bernoulli(1 - p)`` the answer is compared with
    :func:`~dropoutbook.derivations.mc_linear_estimator`; the checker recognizes the variance of one
    pass (the :math:`1/T` forgotten, or one mask for both passes), :math:`\mathbb E[\hat\mu_2^2]`,
    swapped drop and keep probabilities (a mask that keeps with probability p gives the right
    variance but the wrong mean) and the unscaled mask. It then calls ``fn`` with
    :math:`m_t \sim \mathrm{Bernoulli}(k)`, where a typed-in answer does not follow.
    """
    what = "your derivation"
    p = derivations.drop_rate
    w, x = sp.symbols("w x", real=True)
    keys = ("mean", "variance")
    names = {"p": p, "w": w, "x": x}
    answer = _derived_dict(call_student(fn, derivations.Bernoulli(1 - p), what=what), keys, names, what)
    est = _linear_estimator(1, 2)
    truth = {"mean": w * x, "variance": est.variance.subs({est.w[0]: w, est.x[0]: x})}
    points = [(0.1, 1.3, 0.7), (0.3, -0.7, 2.0), (0.75, 2.0, -1.1)]
    symbols = (p, w, x)
    if not _agree(answer["mean"], truth["mean"], symbols, points):
        mistakes = [
            (p * w * x / (1 - p), "E[mu_2] = p·w·x/(1-p): your masks keep a unit with probability p, as "
                                  "m ~ Bernoulli(p) would; use the distribution passed as mask (here Bernoulli(1-p))"),
            ((1 - p) * w * x, "E[mu_2] = (1-p)·w·x: the passes are not scaled; each pass divides by 1 - p"),
        ]
        _raise_named("the 'mean' entry", answer["mean"], truth["mean"], mistakes, symbols, points)
    if not _agree(answer["variance"], truth["variance"], symbols, points):
        s = w**2 * x**2
        mistakes = [
            (s * p / (1 - p), "that is the variance of one pass; the mean of T = 2 passes with independent masks "
                              "m1 and m2 has half of it (one mask for both passes gives this too)"),
            (s * p / (1 - p) / 2 + (w * x) ** 2, "that is E[mu_2²]; subtract E[mu_2]² = (w x)²"),
            (s * (1 - p) / p / 2, "that treats p as the keep probability; here m ~ Bernoulli(1-p)"),
            (s * p * (1 - p) / 2, "that is missing the inverted-dropout factor 1/(1-p) of each pass"),
            (s * p / (1 - p) / 4, "the variances of two independent passes add: "
                                  "Var[(f1+f2)/2] = (Var f1 + Var f2)/4 = Var f/2"),
        ]
        _raise_named("the 'variance' entry", answer["variance"], truth["variance"], mistakes, symbols, points)
    # a second distribution: the answer must follow the argument
    k = sp.Symbol("k", positive=True)
    m1, m2 = sp.symbols("m1 m2")
    mu = (w * m1 * x / (1 - p) + w * m2 * x / (1 - p)) / 2
    dists = {m1: derivations.Bernoulli(k), m2: derivations.Bernoulli(k)}
    mean_k = derivations.expectation(mu, dists)
    truth_k = {"mean": mean_k, "variance": derivations.expectation(mu**2, dists) - mean_k**2}
    other = _derived_dict(call_student(fn, derivations.Bernoulli(k), what=what), keys, {**names, "k": k}, what)
    points_k = [pt + (kk,) for pt, kk in zip(points, (0.45, 0.9, 0.2))]
    if not all(_agree(other[key], truth_k[key], (*symbols, k), points_k) for key in keys):
        if all(_agree(other[key], truth[key], (*symbols, k), points_k) for key in keys):
            raise CheckFailed(
                "called with another mask distribution, m_t ~ Bernoulli(k), your function returns the same answer as "
                "for Bernoulli(1-p): it was typed in, or computed with a fixed distribution instead of the argument "
                "mask. Let derivations.expectation compute it with {m1: mask, m2: mask}")
        raise CheckFailed("with m_t ~ Bernoulli(k) your mean or variance is not right: compute both with "
                          "derivations.expectation(..., {m1: mask, m2: mask}), keeping f_t = w m_t x / (1 - p)")
    passed(f"E[mu_2] = {answer['mean']}, Var[mu_2] = (1/2)*({derivations.tidy(2 * answer['variance'], p)}), and "
           "your derivation follows the mask distribution")


def _raise_named(label: str, expr, truth, mistakes, symbols, points):
    for wrong, message in mistakes:
        if _agree(expr, wrong, symbols, points):
            raise CheckFailed(f"{label} is not right: {message}")
    at = dict(zip(symbols, (sp.Rational(1, 2), 1, 1)))
    raise CheckFailed(f"{label}: at p = 1/2, w = x = 1 your expression gives {float(expr.subs(at)):.4g}, "
                      f"but the right value is {float(truth.subs(at)):.4g} there")


# --------------------------------------------------------------------------------------------
# exercise 4: predict the number of passes

#: The linear unit, drop rate and target standard error of the "predict" exercise of chapter 5
#: (the defaults of :func:`~dropoutbook.exercises.check_passes_needed`; an instructor may pass others).
PASSES_EXERCISE = types.MappingProxyType(dict(w=(2.0, -1.0, 0.5), x=(1.0, 3.0, 4.0), p=0.25, target_se=0.05))


def _passes_truth(w, x, p, target_se) -> tuple[float, int]:
    est = _linear_estimator(len(w), 1)
    subs = {derivations.drop_rate: sp.nsimplify(p), **dict(zip(est.w, map(sp.nsimplify, w))),
            **dict(zip(est.x, map(sp.nsimplify, x)))}
    pass_var = est.pass_variance.subs(subs)
    T = max(1, int(sp.ceiling(pass_var / sp.nsimplify(target_se) ** 2)))
    return float(pass_var), T


def check_passes_needed(fn, *, w=(2.0, -1.0, 0.5), x=(1.0, 3.0, 4.0), p=0.25, target_se=0.05) -> None:
    """Check ``fn()``, the smallest number of passes T for which the standard error of the MC mean of a
    linear unit with inverted dropout is at most ``target_se`` (chapter 5 exercises).

    The weights, inputs, drop rate and target are the keyword arguments (their defaults are the
    book's, :data:`~dropoutbook.exercises.ch05.PASSES_EXERCISE`). Any whole number is accepted: a Python or NumPy int, a float
    such as 2267.0, a 0-d tensor (``torch.ceil(...)``).
    """
    w = _validation.check_real_vector(w, "w")
    x = _validation.check_real_vector(x, "x", length=len(w), like="w")
    p = _validation.check_probability(p, "p", allow_one=False)
    eps = _validation.check_positive(target_se, "target_se")
    what = "your prediction"
    value = _real_number(call_student(fn, what=what), "the number of passes")
    if value != int(value):
        raise CheckFailed(f"{what} should be a whole number of passes, got {value:g}: round up to the next integer")
    if value < 1:
        raise CheckFailed(f"{what} should be a number of passes, at least 1, got {value:g}")
    answer = int(value)
    pass_var, truth = _passes_truth(w, x, p, eps)
    if answer == truth:
        passed(f"T = {truth}: the standard error is sqrt({pass_var:.4f}/{truth}) = {math.sqrt(pass_var / truth):.4f} "
               f"<= {eps}")
        return
    s = sum((a * b) ** 2 for a, b in zip(w, x))
    wx = sum(a * b for a, b in zip(w, x))
    mistakes = [
        (truth - 1, f"with T = {truth - 1} the standard error is {math.sqrt(pass_var / max(truth - 1, 1)):.5f}, just "
                    f"above {eps}: round up, not down"),
        (math.ceil(pass_var / eps), "the standard error is sqrt(Var/T); solve sqrt(Var/T) <= eps, i.e. T >= Var/eps² "
                                    "(square eps)"),
        (math.ceil(math.sqrt(pass_var) / eps), "T >= Var/eps² with Var the variance of one pass, not its standard "
                                               "deviation"),
        (math.ceil(s * (1 - p) / p / eps**2) if p > 0 else None,
         "that treats p as the keep probability: the variance of one pass is Σ w_i² x_i² · p/(1-p) with p the drop "
         "probability"),
        (math.ceil(wx**2 * p / (1 - p) / eps**2), "the masks are independent, so the variance is Σ w_i² x_i² p/(1-p), "
                                                  "not (Σ w_i x_i)² p/(1-p)"),
        (math.ceil(s * p * (1 - p) / eps**2), "each pass is divided by 1-p (inverted dropout): the variance of one "
                                              "pass is Σ w_i² x_i² p/(1-p), not p(1-p) Σ w_i² x_i²"),
        (math.ceil(s * p / (1 - p) ** 2 / eps**2), "one factor 1/(1-p) too many: Var[m/(1-p)] = p(1-p)/(1-p)² = "
                                                   "p/(1-p), so the variance of one pass is Σ w_i² x_i² p/(1-p)"),
        (truth + 1, "the standard error of the mean of T independent passes is sqrt(Var[one pass]/T), with T, not "
                    "T - 1 (the T - 1 belongs to the estimate of the variance from the passes)"),
    ]
    for wrong, message in mistakes:
        if answer == wrong:
            raise CheckFailed(f"T = {answer} is not right: {message}")
    raise CheckFailed(f"T = {answer} is not right; the standard error of the MC mean with T passes is "
                      "sqrt(Var[one pass]/T)")
