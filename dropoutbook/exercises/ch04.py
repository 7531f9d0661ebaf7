"""Checkers for the exercises of chapter 4, "Dropout as an ensemble of subnetworks".

Each checker takes the student's function, prints one "Correct: ..." line when the answer is
right, and otherwise raises :class:`~dropoutbook.exercises.CheckFailed` with a message that names
the mistake (for example, "you included the pairs i = j in the mean"). The implement checkers try
several ensemble sizes, numbers of units and drop rates (drawn from their own seeded generator) and
forbid the library's :mod:`~dropoutbook.ensembles`; the derive checker passes fresh symbols and
asks for the terms as well as the constant, so that a typed-in number fails.
"""

from __future__ import annotations

import itertools
import math
import types

import sympy as sp
import torch

from .. import _validation, derivations, ensembles
from ..ensembles import ambiguity_decomposition, path_survival_probability, subnetwork_average
from ._core import (
    CheckFailed, _agree, _derived_dict, _drawn_rates, _library_forbidden, _number_dict, _real_number, call_student,
    passed,
)

__all__ = [
    "check_ensemble_terms", "check_ambiguity_constant", "check_subnetwork_average",
    "check_path_predictions", "PATH_EXERCISE",
]

_SEED = 2027
_HINT = "write it with plain torch operations"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# exercise: implement the three terms

_TERMS_SHAPES = [(5, 40), (2, 7), (7, 3), (3, 25)]  # (members T, examples N), T != N
_TARGET_SHIFT = 1e6  # the diversity must not change when only the target moves


def _student_terms(fn, preds, target, what: str) -> tuple[float, float, float]:
    T, N = preds.shape
    with _library_forbidden(ensembles, _HINT):
        out = call_student(fn, preds, target, what=f"{what}, on preds of shape ({T}, {N}) ({T} members),")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"{what} should return a tuple (individual_error, ensemble_error, diversity)")
    for v, name in zip(out, ("individual_error", "ensemble_error", "diversity")):
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != preds.dtype:
            raise CheckFailed(f"{name} has dtype {v.dtype} for preds of dtype {preds.dtype}: compute in the dtype of "
                              "the inputs (a conversion to float32 loses the digits the check compares)")
    return tuple(_real_number(v, n) for v, n in zip(out, ("individual_error", "ensemble_error", "diversity")))


def check_ensemble_terms(fn) -> None:
    r"""Check ``fn(preds, target)``, which returns ``(individual_error, ensemble_error, diversity)`` (chapter 4 exercises).

    ``preds`` has shape ``(T, N)`` (member, example) and ``target`` shape ``(N,)``; the three terms
    are :math:`E_{\mathrm{ind}}`, :math:`E_{\mathrm{ens}}` and :math:`D` (mean over pairs
    :math:`i \ne j` of the mean squared difference), compared with
    :func:`~dropoutbook.ambiguity_decomposition` for four shapes (2 to 7 members, never as many
    as examples). Recognizes the usual wrong diversities (pairs :math:`i = j` included, a sum
    instead of a mean, absolute differences, the ambiguity), an ensemble error computed as a mean
    of individual errors, and a diversity computed from the identity it should verify (it changes
    when only the target moves). The library is forbidden while the student's code runs.
    """
    what = "your ensemble_terms"
    g = torch.Generator().manual_seed(4)
    for T, N in _TERMS_SHAPES:
        preds = torch.randn(T, N, generator=g, dtype=torch.float64)
        target = torch.randn(N, generator=g, dtype=torch.float64)
        before = preds.clone(), target.clone()
        ind, ens, div = _student_terms(fn, preds, target, what)
        if not torch.equal(preds, before[0]) or not torch.equal(target, before[1]):
            raise CheckFailed(f"{what} changed its input in place; compute new tensors instead")
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
                raise CheckFailed("ensemble_error equals the mean of the individual errors; E_ens is the squared "
                                  "error of the ensemble's prediction, the mean over members (f̄ - y)²")
            raise CheckFailed(f"ensemble_error = {ens:.4g}, expected {t_ens:.4g}: average the members' predictions "
                              "first, then take the squared error")
        if not _close(div, t_div):
            _raise_diversity_mistake(div, t_div, preds)
        shifted = _student_terms(fn, preds, target + _TARGET_SHIFT, what)[2]
        if not _close(shifted, div):
            raise CheckFailed(
                f"your diversity changes when only the target changes (target shifted by {_TARGET_SHIFT:g}: D went "
                f"from {div:.6g} to {shifted:.6g}): D compares the members with each other and does not involve the "
                "target. Compute it from the pairs (f_i − f_j)², not from E_ind − E_ens")
    passed(f"E_ind = {ind:.4f}, E_ens = {ens:.4f}, D = {div:.4f} for the last of {len(_TERMS_SHAPES)} ensembles "
           "(2 to 7 members); D does not depend on the target")


def _raise_diversity_mistake(div: float, t_div: float, preds: torch.Tensor):
    T = preds.shape[0]
    absolute = torch.stack([(preds[i] - preds[j]).abs().mean() for i in range(T) for j in range(T) if i != j]).mean()
    mistakes = [
        (t_div * (T - 1) / T, "you included the pairs i = j (zero differences) in the mean (the same value as "
                              "twice the biased variance over the members, var(unbiased=False)): D averages over the "
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
    raise CheckFailed(f"diversity = {div:.4g}, expected {t_div:.4g} ({T} members): the mean over pairs i ≠ j of the "
                      "mean over examples of (f_i - f_j)²")


# ---------------------------------------------------------------------------------------------
# exercise: derive the constant


def check_ambiguity_constant(fn) -> None:
    r"""Check ``fn(f, y)``, which builds :math:`E_{\mathrm{ind}}`, :math:`E_{\mathrm{ens}}` and :math:`D` for the
    prediction symbols ``f`` and the target symbol ``y`` it is given and derives their constant with sympy (chapter 4 exercises).

    The answer is ``{"individual": ..., "ensemble": ..., "diversity": ..., "constant": ...}``. The
    checker calls ``fn`` for :math:`T = 2, \dots, 6` with fresh symbols (not the notebook's ``f1``,
    ``y``), compares each term with :func:`~dropoutbook.derivations.ambiguity_terms` and the constant
    with the ratio of the student's own terms; a diversity of another definition (pairs
    :math:`i = j` included, a sum over pairs, a wrong count of pairs) is named, and a number
    returned alone (typed in) fails with a message that says so.
    """
    what = "your derivation"
    keys = ("individual", "ensemble", "diversity", "constant")
    shown = []
    for T in range(2, 7):
        f = sp.symbols(f"a1:{T + 1}", real=True)
        y = sp.Symbol("t", real=True)
        answer = call_student(fn, f, y, what=what)
        if isinstance(answer, (int, float, sp.Number)) and not isinstance(answer, bool):
            raise CheckFailed(
                f"for T = {T} your function returns the number {answer} alone: return the dict with the keys "
                f"{list(keys)}, the three terms built with sympy from the f and y passed to your function and the "
                "ratio sympy computed from them. A typed-in constant is not a derivation")
        names = {s.name: s for s in (*f, y)}
        answer = _derived_dict(_with_hint(answer, names), keys, names, what)
        lib = derivations.ambiguity_terms(T)
        rename = dict(zip((*lib.predictions, lib.target), (*f, y)))
        truth = {"individual": lib.individual_error.subs(rename), "ensemble": lib.ensemble_error.subs(rename),
                 "diversity": lib.diversity["mean over pairs i != j"].subs(rename)}
        symbols = (*f, y)
        g = torch.Generator().manual_seed(T)
        points = [tuple(torch.randn(T + 1, generator=g, dtype=torch.float64).tolist()) for _ in range(3)]

        def same(a, b):
            return _agree(a, b, symbols, points)

        if not same(answer["individual"], truth["individual"]):
            raise CheckFailed(f"for T = {T} the 'individual' entry is not E_ind: average (f_i − y)² over the members "
                              "(divide the sum by T)")
        if not same(answer["ensemble"], truth["ensemble"]):
            raise CheckFailed(f"for T = {T} the 'ensemble' entry is not E_ens = (f̄ - y)², the squared error of the "
                              "members' average f̄ = (1/T) Σ f_i")
        if not same(answer["diversity"], truth["diversity"]):
            mistakes = [
                ("mean over all pairs", 1, "that is D averaged over all T² pairs, i = j included; average over the "
                                           "pairs with i ≠ j only"),
                ("sum over pairs i < j", 1, "that is D summed (not averaged) over the pairs"),
                ("mean over pairs i != j", 2, "that is twice the mean: did you divide the sum over ordered pairs "
                                              "by the number T(T-1)/2 of unordered pairs?"),
                ("mean over pairs i != j", sp.Rational(1, 2), "that is half the mean: did you divide the sum over "
                                                               "unordered pairs by the number T(T-1) of ordered pairs?"),
            ]
            named = [message for name, factor, message in mistakes
                     if same(answer["diversity"], factor * lib.diversity[name].subs(rename))]
            if named:  # for T = 2 two definitions coincide
                raise CheckFailed(f"for T = {T} the 'diversity' entry is not right: {'; or '.join(named)}")
            raise CheckFailed(f"for T = {T} the 'diversity' entry is not the mean of (f_i − f_j)² over the pairs i ≠ j")
        constant = answer["constant"]
        if constant.free_symbols:
            raise CheckFailed(f"for T = {T} the 'constant' still contains {sorted(map(str, constant.free_symbols))}: "
                              "simplify (E_ind - E_ens)/D; the predictions and the target cancel")
        own = sp.cancel(sp.expand(answer["individual"] - answer["ensemble"]) / sp.expand(answer["diversity"]))
        if abs(float(constant - own)) > 1e-12:
            raise CheckFailed(f"for T = {T} the 'constant' {constant} is not (individual − ensemble)/diversity of your "
                              f"own terms, which is {own}: let sympy compute the ratio (sp.cancel)")
        shown.append(str(constant))
    passed(f"(E_ind - E_ens)/D = {', '.join(shown)} for T = 2..6, from the terms you built")


def _with_hint(answer, names: dict):
    """Say which symbols to use when an answer is built from symbols the checker did not pass."""
    if isinstance(answer, dict):
        used = set()
        for value in answer.values():
            if isinstance(value, sp.Basic):
                used |= {s.name for s in value.free_symbols}
        foreign = sorted(used - set(names))
        if foreign:
            raise CheckFailed(f"your derivation uses the symbols {foreign}; build the terms from the predictions f "
                              f"and the target y passed to your function ({sorted(names)} in this call)")
    return answer


# ---------------------------------------------------------------------------------------------
# exercise: the exact average over subnetworks

_AVERAGE_SIZES = [6, 4, 5]
_AVERAGE_RATES = [(0.15, 0.4), (0.6, 0.85), (0.2, 0.35)]


def _test_function(n: int):
    """A nonlinear function of a mask of ``n`` units: a tiny ReLU network with fixed weights."""
    w = torch.tensor([0.9, -1.3, 0.4, 1.1, -0.6, 0.8, 1.2][:n], dtype=torch.float64)

    def f(mask: torch.Tensor) -> torch.Tensor:
        h = torch.relu(mask * w - 0.2 * mask.sum())
        return torch.tanh(h.sum() - 0.5)
    return f


def _exact_average(f, n: int, p: float) -> float:
    return subnetwork_average(lambda masks: torch.stack([f(m) for m in masks]), n, p).item()


def check_subnetwork_average(fn) -> None:
    r"""Check ``fn(f, n, p)``, which returns :math:`\sum_{m \in \{0,1\}^n} P(m) f(m)` exactly (chapter 4 exercises).

    ``f`` maps one mask (a float64 tensor of shape ``(n,)``) to a 0-d tensor. The answer is
    compared with :func:`~dropoutbook.subnetwork_average` for nonlinear functions of 4 to 6 units,
    each with a drop rate drawn from the checker's seeded generator (never 0.5, where every weight
    is equal); the usual mistakes (equal weights, swapped drop and keep, sampling instead of
    enumerating, evaluating ``f`` at the mean mask, a rate or a number of units typed in) are named.
    The library is forbidden while the student's code runs.
    """
    what = "your subnetwork average"
    rates = _drawn_rates(_AVERAGE_RATES, seed=_SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        for case, (n, p) in enumerate(zip(_AVERAGE_SIZES, rates)):
            f = _test_function(n)
            truth = _exact_average(f, n, p)
            calls = []
            first = _student_average(fn, f, n, p, calls, what)
            if _close(first, truth):
                continue
            second = _student_average(fn, f, n, p, [], what)
            if not _close(first, second):
                raise CheckFailed(f"two calls gave different values ({first:.4f}, {second:.4f}): you are sampling "
                                  "masks. The exact average enumerates all 2^n masks, e.g. "
                                  "itertools.product((0, 1), repeat=n)")
            if _close(first, _exact_average(f, n, 0.5)):
                raise CheckFailed("every subnetwork got the weight 1/2^n: that is the average for p = 1/2 only; "
                                  "weight a mask by P(m) = (1-p)^(kept) · p^(dropped)")
            if _close(first, _exact_average(f, n, 1 - p)):
                raise CheckFailed("the weights swap drop and keep: a kept unit has probability 1 - p, a dropped one p")
            keep_only = sum((1 - p) ** sum(m) * f(torch.tensor(m, dtype=torch.float64)).item()
                            for m in itertools.product((0.0, 1.0), repeat=n))
            if _close(first, keep_only):
                raise CheckFailed("your weights are (1-p)^(kept) only: the dropped units contribute their probability "
                                  "too, P(m) = (1-p)^(kept) · p^(dropped)")
            if _close(first, f(torch.full((n,), 1 - p, dtype=torch.float64)).item()):
                raise CheckFailed("you evaluated f at the mean mask (1-p, ..., 1-p), the weight-scaled network; for "
                                  "a nonlinear f that differs from the average over subnetworks")
            distinct = len(set(calls))
            if distinct < 2**n:
                raise CheckFailed(f"f was called on {distinct} distinct masks of n = {n} units; the exact average "
                                  f"needs all 2^n = {2**n} masks")
            other = rates[(case + 1) % len(rates)]
            if _close(_student_average(fn, f, n, other, [], what), first):
                raise CheckFailed(f"your average does not change with p (the same at p = {p} and p = {other}): the "
                                  "drop rate is hard-coded; use the argument p")
            if abs(first - truth) <= 0.02 * max(1.0, abs(truth)):
                raise CheckFailed(f"your average {first:.4f} is close to the exact one, {truth:.4f} (n = {n}, p = {p}), "
                                  "but not equal: are you sampling masks (with a fixed seed)? A sample only "
                                  "approximates the sum; enumerate all 2^n masks with their weights P(m)")
            raise CheckFailed(f"your average is {first:.4f}, the exact one is {truth:.4f} (n = {n}, p = {p}): check "
                              "the weights P(m)")
    passed(f"the exact averages over all 2^n subnetworks match for n = {', '.join(map(str, _AVERAGE_SIZES))} "
           f"(p = {', '.join(map(str, rates))})")


def _student_average(fn, f, n: int, p: float, calls: list, what: str) -> float:
    """Call ``fn`` with a wrapper of ``f`` that checks and records every mask it gets."""
    def observed(mask):
        if not isinstance(mask, torch.Tensor) or mask.shape != (n,):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise CheckFailed(f"f expects one mask, a tensor of shape ({n},) for n = {n}; got {got}")
        calls.append(tuple(mask.tolist()))
        return f(mask.to(torch.float64))

    with _library_forbidden(ensembles, "enumerate the masks yourself, e.g. with itertools.product"):
        return _real_number(call_student(fn, observed, n, p, what=what), "the average")


# ---------------------------------------------------------------------------------------------
# exercise: predict path statistics

#: Widths (inputs, three hidden layers, outputs), hidden and input drop rates of the "predict"
#: exercise of chapter 4 (the defaults of :func:`~dropoutbook.exercises.check_path_predictions`; an instructor may pass
#: others). The hidden rate is not 0.5, where dropping and keeping have the same probability and a
#: swap of the two would go unnoticed.
PATH_EXERCISE = types.MappingProxyType(dict(widths=(64, 100, 100, 100, 10), p=0.4, input_p=0.2))


def check_path_predictions(fn, *, widths=(64, 100, 100, 100, 10), p=0.4, input_p=0.2) -> None:
    """Check ``fn()``, which predicts ``survival`` (one path) and ``expected_active_paths`` of a fully connected
    network with dropout of rate ``p`` on the hidden units and ``input_p`` on the inputs (chapter 4 exercises).

    The widths and rates are the keyword arguments (their defaults are the book's,
    :data:`~dropoutbook.exercises.ch04.PATH_EXERCISE`). The truth comes from :func:`~dropoutbook.path_survival_probability` and
    the number of paths; predictions that count the output as dropped, forget the input dropout,
    swap drop and keep, or forget the input and output widths in the count are named.
    """
    widths = _validation.check_positive_ints(widths, "widths", min_length=3)
    p = _validation.check_probability(p, "p", allow_one=False)
    input_p = _validation.check_probability(input_p, "input_p", allow_one=False)
    what = "your prediction"
    keys = ("survival", "expected_active_paths")
    answer = _number_dict(call_student(fn, what=what), keys, what)
    depth = len(widths) - 2
    survival = path_survival_probability(p, depth, input_p=input_p)
    total = math.prod(widths)
    got = answer["survival"]
    if not math.isclose(got, survival, rel_tol=1e-6):
        mistakes = [
            ((1 - p) ** depth, "you left out the input dropout: the path's input feature must be kept too, "
                               "probability 1 - input_p"),
            ((1 - p) ** (depth + 1) * (1 - input_p), "the output unit is never dropped; count the hidden layers "
                                                     "and the input only"),
            (p**depth * input_p, "p is the probability of dropping; a unit survives with probability 1 - p"),
            (p**depth * (1 - input_p), "p is the probability of dropping; a unit survives with probability 1 - p"),
            ((1 - p) ** depth * input_p, "input_p is the probability of dropping an input; it is kept with "
                                         "probability 1 - input_p"),
        ]
        for wrong, message in mistakes:
            if math.isclose(got, wrong, rel_tol=1e-6):
                raise CheckFailed(f"survival = {got:.4g} is not right: {message}")
        raise CheckFailed(f"survival = {got:.4g} is not right; multiply the keep probabilities of the droppable "
                          "units on one path")
    count = answer["expected_active_paths"]
    if not math.isclose(count, total * survival, rel_tol=1e-6):
        hidden_only = math.prod(widths[1:-1])
        if math.isclose(count, hidden_only * survival, rel_tol=1e-6):
            raise CheckFailed(f"expected_active_paths counts paths through the hidden layers only; a path also "
                              f"chooses one of the {widths[0]} inputs and one of the {widths[-1]} outputs")
        for left_out, width in (("outputs", widths[-1]), ("inputs", widths[0])):
            if math.isclose(count, total / width * survival, rel_tol=1e-6):
                raise CheckFailed(f"expected_active_paths leaves out the {width} {left_out}: a path chooses one unit in "
                                  "every layer, inputs and outputs included, so there are Π widths paths")
        if math.isclose(count, sum(widths) * survival, rel_tol=1e-6):
            raise CheckFailed("expected_active_paths uses the sum of the widths; a path chooses one unit in every layer, "
                              "so the number of paths is the product of the widths")
        if math.isclose(count, total, rel_tol=1e-6):
            raise CheckFailed("expected_active_paths = the number of paths without dropout; multiply by the "
                              "probability that a path survives (linearity of expectation)")
        raise CheckFailed(f"expected_active_paths = {count:.4g} is not right: it is (number of paths) × "
                          "P(one path survives)")
    passed(f"survival = {survival:.4g}, expected_active_paths = {total * survival:.4g} of {total:.4g} paths")
