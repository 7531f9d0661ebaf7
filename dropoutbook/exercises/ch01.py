"""Checkers for the exercises of chapter 1, "Inverted dropout".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong (for example, "survivors
are not scaled: did you forget to divide by 1 - p?"). Instructors can reuse them in assignments.
"""

from __future__ import annotations

import math

import torch

from .. import derivations
from ._core import CheckFailed, _check_numbers, _as_output, _same_function, _student_symbols, _survivor_scale_message, call_student, passed

__all__ = [
    "check_inverted_dropout", "check_dropout_variance", "check_test_time_scaling",
    "check_naive_predictor_terms", "NAIVE_PREDICTOR_EXERCISE",
]

_N = 200_000  # elements per call: the standard error of a drop fraction is below 0.0011
_Z = 5.0


def _test_input(n: int = _N, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g, dtype=torch.float64) + 0.5  # values in [0.5, 1.5), never zero


def check_inverted_dropout(fn, p: float = 0.3) -> None:
    """Check an implementation ``fn(x, p, training=True)`` of inverted dropout (chapter 1 exercises).

    It checks, in order: the output's type and shape; that ``x`` is not modified; that every
    survivor is scaled by exactly 1/(1-p); that the fraction of zeros is p within 5 standard
    errors (which catches swapped drop and keep probabilities); that two calls draw different
    masks; that ``training=False`` and ``p = 0`` return the input.
    """
    if not 0 < p < 1 or math.isclose(p, 0.5):
        raise ValueError(f"p must be in (0, 1) and not 0.5 (where 1/p = 1/(1-p)), got {p}")
    what = "your dropout function"
    with torch.random.fork_rng(devices=[]):  # seed for reproducible messages; the caller's RNG state is restored
        torch.manual_seed(1)
        passed(_check_inverted_dropout(fn, p, what))


def _check_inverted_dropout(fn, p: float, what: str) -> str:
    """Run the checks of :func:`check_inverted_dropout`; return the summary of a pass."""
    x = _test_input()
    x_before = x.clone()
    out = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    if not torch.equal(x, x_before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead (avoid x.mul_, x[...] = ...)")
    kept = out != 0
    if kept.any():
        ratios = out[kept] / x[kept]
        spread = (ratios.max() - ratios.min()).item()
        if spread > 1e-6 * ratios.abs().max().item():
            raise CheckFailed(
                f"survivors are scaled by different factors (from {ratios.min().item():.4g} to {ratios.max().item():.4g}); "
                "every kept unit should be multiplied by the same factor 1/(1-p)"
            )
        message = _survivor_scale_message(ratios[0].item(), p)
        if message:
            raise CheckFailed(message)
    dropped = 1.0 - kept.double().mean().item()
    se = math.sqrt(p * (1 - p) / x.numel())
    if abs(dropped - p) > _Z * se:
        if abs(dropped - (1 - p)) <= _Z * se:
            raise CheckFailed(
                f"{dropped:.1%} of the units are zero with p = {p}: you drop with probability 1 - p. "
                "A unit is dropped with probability p and kept with probability 1 - p"
            )
        raise CheckFailed(f"{dropped:.1%} of the units are zero; with p = {p} the fraction should be {p:.0%} (±{_Z * se:.1%})")
    out2 = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    if torch.equal(out2 != 0, kept):
        raise CheckFailed("two calls dropped exactly the same units: draw a new random mask on every call")
    evaluated = _as_output(call_student(fn, x, p, training=False, what=what), x, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        ratio = (evaluated / x).mean().item()
        raise CheckFailed(
            f"with training=False the output should equal the input (the scaling happened in training); "
            f"yours is {ratio:.4g}·x on average"
        )
    zero_p = _as_output(call_student(fn, x, 0.0, training=True, what=what), x, what)
    if not torch.allclose(zero_p, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 nothing is dropped, so the output should equal the input")
    return f"drops {dropped:.1%} (p = {p}), survivors times 1/(1-p), identity in eval"


def check_dropout_variance(fn) -> None:
    r"""Check ``fn()``, which must return :math:`\operatorname{Var}[\tilde h]` of inverted dropout as a sympy expression in ``p`` and ``h``.

    Recognizes the usual wrong answers (standard dropout's variance, :math:`\mathbb E[\tilde h^2]`,
    swapped drop and keep probabilities) and says which one it is. Chapter 1 exercises.
    """
    what = "your derivation"
    expr = call_student(fn, what=what)
    p, h = derivations.drop_rate, derivations.activation
    expr = _student_symbols(expr, {"p": p, "h": h}, what)
    truth = derivations.dropout_unit_moments("inverted").variance
    points = [(0.1, 1.3), (0.3, -0.7), (0.75, 2.0)]
    if _same_function(expr, truth, (p, h), points):
        passed(f"Var[h~] = {derivations.tidy(expr, p)}")
        return
    mistakes = [
        (p * (1 - p) * h**2, "that is the variance of standard dropout m·h (no scaling); with inverted dropout the mask is m/(1-p)"),
        (h**2 / (1 - p), "that is E[h~²] only; the variance is E[h~²] − E[h~]², and E[h~] = h"),
        (h**2 * (1 - p) / p, "that treats p as the keep probability; here p is the drop probability and m ~ Bernoulli(1-p)"),
        (p * h**2 / (1 - p) ** 2, "the variance of m/(1-p) is p(1-p)/(1-p)²: one factor 1-p cancels"),
        (h**2 * p, "that is missing the 1/(1-p) factor from the scaled mask"),
    ]
    for wrong, message in mistakes:
        if _same_function(expr, wrong, (p, h), points):
            raise CheckFailed(message)
    value = float(expr.subs({p: 0.5, h: 1}))
    raise CheckFailed(f"at p = 0.5, h = 1 your expression gives {value:.4g}, but Var[h~] is {float(truth.subs({p: 0.5, h: 1})):.4g} there")


def check_test_time_scaling(fn, p: float = 0.3) -> None:
    """Check the repaired dropout ``fn(x, p, training)`` of the find-the-bug exercise (chapter 1 exercises).

    The test-time output must equal the training-time mean: it compares the mean of training
    outputs (with its standard error) with the evaluation output, names the side that is off,
    and then runs :func:`check_inverted_dropout`.
    """
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is restored afterwards
        torch.manual_seed(2)
        passed(_check_test_time_scaling(fn, p))


def _check_test_time_scaling(fn, p: float) -> str:
    what = "your repaired dropout"
    x = torch.full((_N,), 1.5, dtype=torch.float64)
    train = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    test = _as_output(call_student(fn, x, p, training=False, what=what), x, what)
    train_mean = train.mean().item()
    se = train.std().item() / math.sqrt(train.numel()) if train.std().item() > 0 else 1e-12
    test_mean = test.mean().item()
    if abs(train_mean - 1.5) <= _Z * se and math.isclose(test_mean, 1.5 * (1 - p), rel_tol=1e-6):
        raise CheckFailed(
            f"training outputs average {train_mean:.4f} ≈ x = 1.5 but the test output is {test_mean:.4f} = (1-p)·x: "
            "the survivors were already divided by 1-p in training, so the test-time scaling by 1-p must go"
        )
    if abs(train_mean - 1.5 * (1 - p)) <= _Z * se and math.isclose(test_mean, 1.5 * (1 - p), rel_tol=1e-6):
        raise CheckFailed(
            f"training outputs now average {train_mean:.4f} = (1-p)·x and the test output is (1-p)·x: this is "
            "standard dropout, consistent but not inverted. Keep the division by 1-p in training and make the "
            "test-time output equal to x instead"
        )
    if abs(train_mean - 1.5 * (1 - p)) <= _Z * se and math.isclose(test_mean, 1.5, rel_tol=1e-6):
        raise CheckFailed(
            f"training outputs now average {train_mean:.4f} = (1-p)·x while the test output is x: you removed the "
            "training-time scaling; keep the division by 1-p in training and remove the test-time factor instead"
        )
    if abs(train_mean - test_mean) > _Z * se:
        raise CheckFailed(
            f"the training outputs average {train_mean:.4f} ± {se:.4f} but the test output is {test_mean:.4f}; "
            "the two must agree in expectation"
        )
    _check_inverted_dropout(fn, p, what)
    return f"training mean {train_mean:.3f} ± {se:.3f} matches the test output {test_mean:.3f}"


#: Weights, inputs, drop rate and noise variance of the "predict" exercise of chapter 1.
NAIVE_PREDICTOR_EXERCISE = {"w": (1.0, -2.0, 0.5), "x": (3.0, 1.0, 2.0), "p": 0.2, "noise_variance": 0.25}


def _naive_predictor_values(w, x, p, noise_variance) -> dict:
    dec = derivations.naive_predictor_decomposition(len(w))
    subs = {derivations.drop_rate: p, dec.noise_variance: noise_variance}
    subs.update(zip(dec.w, w))
    subs.update(zip(dec.x, x))
    return {
        "squared_bias": float(dec.squared_bias.subs(subs)),
        "variance": float(dec.variance.subs(subs)),
        "expected_squared_error": float(dec.expected_squared_error.subs(subs)),
    }


def check_naive_predictor_terms(fn) -> None:
    """Check ``fn()``, which returns the predicted ``squared_bias``, ``variance`` and ``expected_squared_error``
    of the naive predictor (chapter 1 exercises) for the numbers in :data:`~dropoutbook.exercises.ch01.NAIVE_PREDICTOR_EXERCISE`."""
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("squared_bias", "variance", "expected_squared_error")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    ex = NAIVE_PREDICTOR_EXERCISE
    truth = _naive_predictor_values(**ex)
    w, x, p, s2 = ex["w"], ex["x"], ex["p"], ex["noise_variance"]
    wx = sum(a * b for a, b in zip(w, x))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, x))
    mistakes = {
        "squared_bias": [
            ((1 - p) ** 2 * wx**2, "E[ŷ] = (1-p)·wᵀx, so the bias is E[ŷ] − wᵀx = −p·wᵀx: square p·wᵀx, not (1-p)·wᵀx"),
            (p * wx**2, "the bias p·wᵀx must be squared as a whole: p²(wᵀx)², not p(wᵀx)²"),
        ],
        "variance": [
            (p * (1 - p) * wx**2, "the masks are independent, so the variances of the terms w_i m_i x_i add: "
                                  "use Σ(w_i x_i)², not (Σ w_i x_i)²"),
            (p * (1 - p) * sum_sq / (1 - p) ** 2, "the naive predictor does not scale by 1/(1-p); that is inverted dropout's variance"),
        ],
        "expected_squared_error": [
            (truth["squared_bias"] + truth["variance"], "you left out the irreducible noise σ²"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from the decomposition")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))
