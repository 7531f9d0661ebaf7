"""Checkers for the exercises of chapter 4, "Dropout as an ensemble of subnetworks".

Each checker takes the student's function, prints one "Correct: ..." line when the answer is
right, and otherwise raises :class:`~dropoutbook.exercises.CheckFailed` with a message that names
the mistake (for example, "you included the pairs i = j in the mean").
"""

from __future__ import annotations

import math
import numbers

import sympy as sp
import torch

from .. import derivations
from ..ensembles import ambiguity_decomposition, path_survival_probability, subnetwork_average
from ._core import CheckFailed, call_student, passed

__all__ = [
    "check_ensemble_terms", "check_ambiguity_constant", "check_subnetwork_average",
    "check_path_predictions", "PATH_EXERCISE",
]


def _number(value, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{name} should be a number (a float or a 0-d tensor), got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise CheckFailed(f"{name} is {value}; it should be a finite number")
    return value


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# exercise: implement the three terms


def check_ensemble_terms(fn) -> None:
    r"""Check ``fn(preds, target)``, which returns ``(individual_error, ensemble_error, diversity)`` (chapter 4 exercises).

    ``preds`` has shape ``(T, N)`` (member, example) and ``target`` shape ``(N,)``; the three terms
    are :math:`E_{\mathrm{ind}}`, :math:`E_{\mathrm{ens}}` and :math:`D` (mean over pairs
    :math:`i \ne j` of the mean squared difference), compared with
    :func:`~dropoutbook.ambiguity_decomposition`. Recognizes the usual wrong diversities (pairs
    :math:`i = j` included, a sum instead of a mean, absolute differences, the ambiguity) and an
    ensemble error computed as a mean of individual errors.
    """
    what = "your ensemble_terms"
    g = torch.Generator().manual_seed(4)
    T, N = 5, 40
    preds = torch.randn(T, N, generator=g, dtype=torch.float64)
    target = torch.randn(N, generator=g, dtype=torch.float64)
    before = preds.clone(), target.clone()
    out = call_student(fn, preds, target, what=what)
    if not torch.equal(preds, before[0]) or not torch.equal(target, before[1]):
        raise CheckFailed(f"{what} changed its input in place; compute new tensors instead")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"{what} should return a tuple (individual_error, ensemble_error, diversity)")
    ind, ens, div = (_number(v, n) for v, n in zip(out, ("individual_error", "ensemble_error", "diversity")))
    truth = ambiguity_decomposition(preds, target)
    t_ind, t_ens, t_div = (truth.individual_error.item(), truth.ensemble_error.item(), truth.diversity.item())
    if not _close(ind, t_ind):
        if _close(ind, t_ens):
            raise CheckFailed("individual_error is the error of the averaged prediction; E_ind is the mean over "
                              "members of each member's own squared error")
        raise CheckFailed(f"individual_error = {ind:.4g}, expected {t_ind:.4g}: average (f_i - y)² over the "
                          "examples for each member, then over the members")
    if not _close(ens, t_ens):
        if _close(ens, t_ind):
            raise CheckFailed("ensemble_error equals the mean of the individual errors; E_ens is the squared error "
                              "of the ensemble's prediction, the mean over members (f̄ - y)²")
        raise CheckFailed(f"ensemble_error = {ens:.4g}, expected {t_ens:.4g}: average the members' predictions "
                          "first, then take the squared error")
    if _close(div, t_div):
        passed(f"E_ind = {ind:.4f}, E_ens = {ens:.4f}, D = {div:.4f} (T = {T} members)")
        return
    absolute = torch.stack([(preds[i] - preds[j]).abs().mean() for i in range(T) for j in range(T) if i != j]).mean()
    mistakes = [
        (t_div * (T - 1) / T, "you included the pairs i = j (zero differences) in the mean: D averages over the "
                              "T(T-1) pairs with i ≠ j"),
        (t_div * T * (T - 1) / 2, "D is a mean over the pairs, not a sum: divide by the number of pairs"),
        (t_div * T * (T - 1), "D is a mean over the pairs, not a sum: divide by the number of pairs"),
        (t_div * (T - 1) / (2 * T), "that is the ambiguity (1/T)Σ(f_i - f̄)², which equals E_ind - E_ens; D is "
                                    "the mean squared difference between two different members"),
        (absolute.item(), "D uses squared differences (f_i - f_j)², not absolute differences"),
    ]
    for wrong, message in mistakes:
        if _close(div, wrong):
            raise CheckFailed(f"diversity = {div:.4g} is not right: {message}")
    raise CheckFailed(f"diversity = {div:.4g}, expected {t_div:.4g}: the mean over pairs i ≠ j of the mean "
                      "over examples of (f_i - f_j)²")


# ---------------------------------------------------------------------------------------------
# exercise: derive the constant


def check_ambiguity_constant(fn) -> None:
    r"""Check ``fn(T)``, which derives :math:`(E_{\mathrm{ind}} - E_{\mathrm{ens}})/D` with sympy for ``T`` members (chapter 4 exercises).

    It calls ``fn`` for :math:`T = 2, \dots, 6` and compares with
    :func:`~dropoutbook.derivations.ambiguity_terms`; a constant that belongs to another
    definition of :math:`D` (pairs :math:`i = j` included, a sum over pairs) is named.
    """
    what = "your derivation"
    values = {}
    for T in range(2, 7):
        value = call_student(fn, T, what=what)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = sp.nsimplify(value)
        if not isinstance(value, sp.Expr):
            raise CheckFailed(f"{what} should return a sympy number, got {type(value).__name__}")
        if value.free_symbols:
            raise CheckFailed(f"for T = {T} your constant still contains {sorted(map(str, value.free_symbols))}: "
                              "simplify (E_ind - E_ens)/D; the predictions and the target cancel")
        values[T] = value
    constants = {T: derivations.ambiguity_terms(T).constant for T in values}

    def equal(value, expected) -> bool:  # exact for rationals, to rounding for floats
        return abs(float(value - expected)) <= 1e-12

    def matches(expected) -> bool:
        return all(equal(values[T], expected(T)) for T in values)

    if not matches(lambda T: constants[T]["mean over pairs i != j"]):
        shown = ", ".join(str(v) for v in values.values())
        hints = [
            (lambda T: constants[T]["mean over all pairs"], "that is the constant of D averaged over all T² pairs, "
                                                            "i = j included; average over the pairs with i ≠ j only"),
            (lambda T: constants[T]["sum over pairs i < j"], "that is the constant of D summed (not averaged) over "
                                                             "the pairs"),
            (lambda T: 2 * constants[T]["mean over pairs i != j"], "twice the right constant, so your D is half the "
                                                                   "mean: did you divide the sum over unordered pairs by "
                                                                   "the number T(T-1) of ordered pairs?"),
            (lambda T: constants[T]["mean over pairs i != j"] / 2, "half the right constant, so your D is twice the "
                                                                   "mean: did you divide the sum over ordered pairs by "
                                                                   "the number T(T-1)/2 of unordered pairs?"),
        ]
        for expected, message in hints:
            if matches(expected):
                raise CheckFailed(f"for T = 2..6 you get {shown}: {message}")
        wrong = next(T for T in values if not equal(values[T], constants[T]["mean over pairs i != j"]))
        raise CheckFailed(f"for T = {wrong} you get {values[wrong]}, but (E_ind - E_ens)/D = "
                          f"{constants[wrong]['mean over pairs i != j']} there")
    passed(f"(E_ind - E_ens)/D = {', '.join(str(v) for v in values.values())} for T = 2..6")


# ---------------------------------------------------------------------------------------------
# exercise: the exact average over subnetworks


def _test_function(mask: torch.Tensor) -> torch.Tensor:
    """A nonlinear function of a mask of 6 units: a tiny ReLU network with fixed weights."""
    w = torch.tensor([0.9, -1.3, 0.4, 1.1, -0.6, 0.8], dtype=torch.float64)
    h = torch.relu(mask * w - 0.2 * mask.sum())
    return torch.tanh(h.sum() - 0.5)


def check_subnetwork_average(fn, p: float = 0.3) -> None:
    r"""Check ``fn(f, n, p)``, which returns :math:`\sum_{m \in \{0,1\}^n} P(m) f(m)` exactly (chapter 4 exercises).

    ``f`` maps one mask (a float64 tensor of shape ``(n,)``) to a 0-d tensor. The answer is
    compared with :func:`~dropoutbook.subnetwork_average` for a nonlinear ``f``; the usual mistakes
    (equal weights, swapped drop and keep, sampling instead of enumerating, evaluating ``f`` at the
    mean mask) are named.
    """
    if not 0 < p < 1 or math.isclose(p, 0.5):
        raise ValueError(f"p must be in (0, 1) and not 0.5 (where every weight is equal), got {p}")
    what = "your subnetwork average"
    n = 6
    truth = subnetwork_average(lambda masks: torch.stack([_test_function(m) for m in masks]), n, p).item()
    calls = []

    def f(mask):
        if not isinstance(mask, torch.Tensor) or mask.shape != (n,):
            raise CheckFailed(f"f expects one mask, a tensor of shape ({n},); got "
                              f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}")
        calls.append(tuple(mask.tolist()))
        return _test_function(mask.to(torch.float64))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        first = _number(call_student(fn, f, n, p, what=what), "the average")
        second = _number(call_student(fn, f, n, p, what=what), "the average")
    if _close(first, truth) and _close(second, truth):
        passed(f"the exact average over all {2**n} subnetworks is {truth:.4f} (p = {p})")
        return
    if not _close(first, second):
        raise CheckFailed(f"two calls gave different values ({first:.4f}, {second:.4f}): you are sampling masks. "
                          f"The exact average enumerates all 2^n masks, e.g. itertools.product((0, 1), repeat=n)")
    wrong = {
        "uniform": subnetwork_average(lambda ms: torch.stack([_test_function(m) for m in ms]), n, 0.5).item(),
        "swapped": subnetwork_average(lambda ms: torch.stack([_test_function(m) for m in ms]), n, 1 - p).item(),
        "mean mask": _test_function(torch.full((n,), 1 - p, dtype=torch.float64)).item(),
    }
    if _close(first, wrong["uniform"]):
        raise CheckFailed("every subnetwork got the weight 1/2^n: that is the average for p = 1/2 only; weight a mask "
                          "by P(m) = (1-p)^(kept) · p^(dropped)")
    if _close(first, wrong["swapped"]):
        raise CheckFailed("the weights swap drop and keep: a kept unit has probability 1 - p, a dropped one p")
    if _close(first, wrong["mean mask"]):
        raise CheckFailed("you evaluated f at the mean mask (1-p, ..., 1-p), the weight-scaled network; for a "
                          "nonlinear f that differs from the average over subnetworks")
    distinct = len(set(calls))
    if distinct < 2**n:
        raise CheckFailed(f"f was called on {distinct} distinct masks per call; the exact average needs all "
                          f"{2**n} masks of n = {n} units")
    raise CheckFailed(f"your average is {first:.4f}, the exact one is {truth:.4f}: check the weights P(m)")


# ---------------------------------------------------------------------------------------------
# exercise: predict path statistics

#: Widths (inputs, three hidden layers, outputs), hidden and input drop rates of the "predict" exercise.
PATH_EXERCISE = {"widths": (64, 100, 100, 100, 10), "p": 0.5, "input_p": 0.2}


def check_path_predictions(fn) -> None:
    """Check ``fn()``, which predicts ``survival`` (one path) and ``expected_active_paths`` for
    :data:`~dropoutbook.exercises.ch04.PATH_EXERCISE` (chapter 4 exercises).

    The truth comes from :func:`~dropoutbook.path_survival_probability` and the number of paths;
    predictions that count the output as dropped, forget the input dropout, swap drop and keep,
    or forget the input and output widths in the count are named.
    """
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("survival", "expected_active_paths")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    widths, p, p_in = PATH_EXERCISE["widths"], PATH_EXERCISE["p"], PATH_EXERCISE["input_p"]
    depth = len(widths) - 2
    survival = path_survival_probability(p, depth, input_p=p_in)
    total = math.prod(widths)
    got = _number(answer["survival"], "survival")
    if not math.isclose(got, survival, rel_tol=1e-6):
        mistakes = [
            ((1 - p) ** depth, "you left out the input dropout: the path's input feature must be kept too, "
                               "probability 1 - input_p"),
            ((1 - p) ** (depth + 1) * (1 - p_in), "the output unit is never dropped; count the hidden layers "
                                                  "and the input only"),
            (p**depth * p_in, "p is the probability of dropping; a unit survives with probability 1 - p"),
            (p**depth * (1 - p_in), "p is the probability of dropping; a unit survives with probability 1 - p"),
        ]
        for wrong, message in mistakes:
            if math.isclose(got, wrong, rel_tol=1e-6):
                raise CheckFailed(f"survival = {got:.4g} is not right: {message}")
        raise CheckFailed(f"survival = {got:.4g} is not right; multiply the keep probabilities of the droppable "
                          "units on one path")
    count = _number(answer["expected_active_paths"], "expected_active_paths")
    if not math.isclose(count, total * survival, rel_tol=1e-6):
        hidden_only = math.prod(widths[1:-1])
        if math.isclose(count, hidden_only * survival, rel_tol=1e-6):
            raise CheckFailed("expected_active_paths counts paths through the hidden layers only; a path also "
                              "chooses one of the 64 inputs and one of the 10 outputs")
        if math.isclose(count, total, rel_tol=1e-6):
            raise CheckFailed("expected_active_paths = the number of paths without dropout; multiply by the "
                              "probability that a path survives (linearity of expectation)")
        raise CheckFailed(f"expected_active_paths = {count:.4g} is not right: it is (number of paths) × "
                          "P(one path survives)")
    passed(f"survival = {survival:.4g}, expected_active_paths = {total * survival:.4g} of {total:.4g} paths")
