"""Checkers for the exercises of chapter 3, "The Jensen bias".

Each checker calls the student's function and either prints one "Correct: ..." line or raises
:class:`CheckFailed` with a message that names the mistake (drop and keep probabilities
swapped, the mask probabilities forgotten, the factor 1/2 of the delta method missing, ...).
"""

from __future__ import annotations

import functools
import math

import sympy as sp
import torch

from .. import derivations
from ..jensen import _mask_chunks, jensen_gap
from ._core import CheckFailed, _check_numbers, call_student, passed

__all__ = [
    "check_quadratic_gap", "check_exact_ensemble_mean", "check_delta_prediction",
    "check_mc_jensen_gap", "DELTA_EXERCISE",
]

_Z = 5.0

#: Weights, inputs and drop rate of the "predict" exercise of chapter 3 (a tanh unit).
DELTA_EXERCISE = {"w": (0.5, -1.0, 1.5), "x": (1.0, 0.4, 0.6), "p": 0.2}


# --------------------------------------------------------------------------------------------
# exercise 1: the quadratic gap in both conventions (sympy)


def _as_expression(expr, what: str) -> sp.Expr:
    p, x = derivations.drop_rate, sp.Symbol("x", real=True)
    allowed = {"p": p, "x": x}
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr):
        raise CheckFailed(f"{what} should be a sympy expression, got {type(expr).__name__}")
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
    if unknown:
        raise CheckFailed(f"{what} uses the symbols {unknown}; write it in terms of p (the drop probability) and x only")
    return expr.subs({s: allowed[s.name] for s in expr.free_symbols})


def _equal_as_functions(a: sp.Expr, b: sp.Expr) -> bool:
    p, x = derivations.drop_rate, sp.Symbol("x", real=True)
    points = [(0.1, 1.3), (0.3, -0.7), (0.75, 2.0)]
    return all(math.isclose(float(sp.re(a.subs({p: pp, x: xx}).evalf())), float(sp.re(b.subs({p: pp, x: xx}).evalf())),
                            rel_tol=1e-9, abs_tol=1e-12) for pp, xx in points)


@functools.lru_cache(maxsize=None)
def _quadratic_gap(scaling: str) -> sp.Expr:
    return derivations.quadratic_jensen_gap(scaling).gap


def check_quadratic_gap(fn) -> None:
    r"""Check ``fn()``, which returns ``{"inverted": ..., "standard": ...}``: the Jensen gap
    :math:`\mathbb E[z^2] - \mathbb E[z]^2` of :math:`z = m x / (1-p)` and of :math:`z = m x`,
    :math:`m \sim \mathrm{Bernoulli}(1-p)`, as sympy expressions in ``p`` (drop probability) and ``x``.

    Recognizes the seed's keep-probability formula, the missing subtraction of
    :math:`f(\mathbb E[z])`, a reversed sign and swapped conventions. Chapter 3 exercises.
    """
    what = "your derivation"
    answer = call_student(fn, what=what)
    if not isinstance(answer, dict) or set(answer) != {"inverted", "standard"}:
        raise CheckFailed(f"{what} should return a dict with exactly the keys ['inverted', 'standard']")
    p, x = derivations.drop_rate, sp.Symbol("x", real=True)
    summary = []
    for scaling in ("inverted", "standard"):
        expr = _as_expression(answer[scaling], f"the {scaling!r} entry")
        truth = _quadratic_gap(scaling)
        if _equal_as_functions(expr, truth):
            summary.append(f"{scaling}: {derivations.tidy(expr, p)}")
            continue
        scale = 1 / (1 - p) if scaling == "inverted" else sp.Integer(1)
        other = _quadratic_gap("standard" if scaling == "inverted" else "inverted")
        mistakes = [
            (-truth, "the sign is reversed: the gap is E[f(z)] − f(E[z]), and for the convex f(z) = z² it is ≥ 0"),
            ((1 - p) * x**2 * scale**2, "that is E[f(z)] = E[z²] only; subtract f(E[z]) = E[z]²"),
            (other, "that is the gap of the other scaling: 'inverted' divides the survivors by 1 - p, "
                    "'standard' does not"),
        ]
        if scaling == "inverted":
            mistakes.append((x**2 * (1 - p) / p, "that is the formula with p as the KEEP probability (the seed's "
                             "convention); here p is the drop probability and m ~ Bernoulli(1-p)"))
            mistakes.append((p * x**2 / (1 - p) ** 2, "E[m/(1-p)]² and E[m²/(1-p)²] share the factor 1/(1-p)²; "
                             "one factor 1 - p cancels in E[m²] = 1 - p"))
        for wrong, message in mistakes:
            if _equal_as_functions(expr, wrong):
                raise CheckFailed(f"the {scaling!r} gap {sp.sstr(expr)} is not right: {message}")
        value = float(expr.subs({p: 0.25, x: 1.0}))
        raise CheckFailed(f"the {scaling!r} gap is {value:.4g} at p = 0.25, x = 1, but it should be "
                          f"{float(truth.subs({p: 0.25, x: 1.0})):.4g} there")
    passed("; ".join(summary))


# --------------------------------------------------------------------------------------------
# exercise 2: the exact average over all masks


def _enumerated(f, w, x, keep: float, scale: float, *, uniform: bool = False) -> float:
    """E[f(sum_i w_i m_i x_i * scale)] over m_i ~ Bernoulli(keep) (or the unweighted mean over masks)."""
    total = 0.0
    for masks, probs in _mask_chunks(x.numel(), keep):
        values = f((masks * (w * x * scale)).sum(dim=1))
        weights = torch.full_like(probs, 2.0 ** -x.numel()) if uniform else probs
        total += (weights * values).sum().item()
    return total


def _as_number(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} should return one number (a float or a one-element tensor), "
                              f"got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise CheckFailed(f"{what} should return a number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should return a number, got {type(value).__name__}") from None


_EXACT_CASES = [
    (torch.tanh, "tanh", (0.8, -1.2, 0.5, 1.1, -0.3), (1.0, 0.5, -1.5, 0.7, 2.0), 0.3),
    (torch.relu, "relu", (1.0, -0.6, 0.9, 0.4), (0.5, 1.5, -1.0, 2.0), 0.2),
    (torch.sigmoid, "sigmoid", (2.0, -1.0, 1.0, 0.5, 1.5, -2.0), (0.5, 1.0, 1.0, -1.0, 0.3, 0.2), 0.6),
]


def check_exact_ensemble_mean(fn) -> None:
    r"""Check ``fn(f, w, x, p)``, which must return :math:`\mathbb E_m[f(z)]` exactly, for inverted dropout
    :math:`z = \sum_i w_i m_i x_i / (1-p)`, :math:`m_i \sim \mathrm{Bernoulli}(1-p)`, by summing over all masks.

    It compares with :func:`~dropoutbook.jensen_gap` for tanh, ReLU and sigmoid units at
    :math:`p \ne 0.5`, and names the usual mistakes: an unweighted mean over the masks, drop and
    keep probabilities swapped, no rescaling, or the deterministic output :math:`f(\mathbb E z)`.
    Chapter 3 exercises.
    """
    what = "your ensemble mean"
    for f, name, w, x, p in _EXACT_CASES:
        w_t, x_t = torch.tensor(w, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)
        w_before, x_before = w_t.clone(), x_t.clone()
        value = _as_number(call_student(fn, f, w_t, x_t, p, what=what), what)
        if not (torch.equal(w_t, w_before) and torch.equal(x_t, x_before)):
            raise CheckFailed(f"{what} changed w or x in place; compute with new tensors instead")
        truth = jensen_gap(f, w_t, x_t, p, method="exact").ensemble_mean.item()
        if math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-9):
            continue
        q = 1 - p
        mistakes = [
            (_enumerated(f, w_t, x_t, q, 1 / q, uniform=True),
             f"every mask has the same weight 1/2^N in your sum; a mask that keeps k of the N units has "
             f"probability (1-p)^k p^(N-k) (the two agree only at p = 0.5; here p = {p})"),
            (_enumerated(f, w_t, x_t, p, 1 / q),
             "your mask keeps a unit with probability p; a unit is dropped with probability p and kept with 1 - p"),
            (_enumerated(f, w_t, x_t, q, 1.0),
             "the survivors are not divided by 1 - p; with inverted dropout z = Σ w_i m_i x_i / (1-p)"),
            (f(w_t @ x_t).item(),
             "that is f(E[z]), the deterministic output of the weight-scaled network; average f(z) over the masks instead"),
        ]
        for wrong, message in mistakes:
            if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-9):
                raise CheckFailed(f"for the {name} unit (p = {p}) you return {value:.6f}: {message}")
        raise CheckFailed(f"for the {name} unit with w = {w}, x = {x}, p = {p} you return {value:.6f}, "
                          f"but E[f(z)] = {truth:.6f}")
    passed("E[f(z)] matches the sum over all masks for tanh, relu and sigmoid units")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the delta-method approximation


@functools.lru_cache(maxsize=None)
def _delta_values(w: tuple, x: tuple, p: float) -> dict:
    dec = derivations.delta_method_gap(len(w), "inverted")
    subs = {derivations.drop_rate: sp.nsimplify(p)}
    subs.update({s: sp.nsimplify(v) for s, v in zip(dec.w, w)})
    subs.update({s: sp.nsimplify(v) for s, v in zip(dec.x, x)})
    mean = dec.mean.subs(subs)
    var = dec.variance.subs(subs)
    delta = dec.approximation(sp.tanh).subs({dec.mu: mean, dec.var: var})
    return {"mean": float(mean), "variance": float(var), "delta": float(delta)}


def check_delta_prediction(fn) -> None:
    r"""Check ``fn()``, which returns the predicted ``mean`` :math:`\mu`, ``variance`` :math:`\operatorname{Var}[z]`
    and second-order gap ``delta`` :math:`\tfrac12 \tanh''(\mu)\operatorname{Var}[z]` of the tanh unit in
    :data:`~dropoutbook.exercises.ch03.DELTA_EXERCISE` (inverted dropout). Chapter 3 exercises."""
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("mean", "variance", "delta")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    ex = DELTA_EXERCISE
    w, x, p = ex["w"], ex["x"], ex["p"]
    truth = _delta_values(w, x, p)
    mu = sum(a * b for a, b in zip(w, x))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, x))
    t = math.tanh(truth["mean"])
    second = -2 * t * (1 - t**2)
    mistakes = {
        "mean": [
            ((1 - p) * mu, "with inverted dropout E[z] = Σ w_i x_i: the factor 1/(1-p) cancels E[m_i] = 1 - p"),
        ],
        "variance": [
            (p * (1 - p) * sum_sq, "that is the variance without rescaling; inverted dropout adds a factor 1/(1-p)²"),
            (p / (1 - p) * mu**2, "the masks are independent, so the variances of the terms add: "
                                  "use Σ (w_i x_i)², not (Σ w_i x_i)²"),
            ((1 - p) / p * sum_sq, "that uses p as the keep probability; here p is the drop probability"),
        ],
        "delta": [
            (second * truth["variance"], "the second-order term is ½ f''(μ) Var[z]: you left out the ½"),
            (-0.5 * second * truth["variance"], "the sign is wrong: tanh is concave for z > 0, "
                                                "tanh''(μ) = −2 tanh(μ)(1 − tanh²(μ)) < 0"),
            (0.5 * (1 - t**2) * truth["variance"], "you used the first derivative 1 − tanh²(μ); "
                                                   "the delta method needs the second, −2 tanh(μ)(1 − tanh²(μ))"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from μ = E[z], "
                          "Var[z] = p/(1-p) Σ (w_i x_i)² and ½ f''(μ) Var[z]")
    passed(", ".join(f"{k} = {truth[k]:.4f}" for k in keys))


# --------------------------------------------------------------------------------------------
# exercise 4: a Monte-Carlo estimate of the gap with its standard error

_MC_CASE = (torch.tanh, (0.7, 0.6, -2.0, -2.2, 0.6, 0.9, 0.1, 1.4), (0.3, 0.9, 0.1, 1.2, -0.2, 0.3, 0.1, 0.5), 0.5)
_MC_N = 20_000


def _moments_of_f(f, w, x, p) -> tuple[float, float]:
    """Exact E[f(z)] and Var[f(z)] for inverted dropout, by enumeration."""
    q = 1 - p
    first = second = 0.0
    for masks, probs in _mask_chunks(x.numel(), q):
        values = f(masks @ (w * x / q))
        first += (probs * values).sum().item()
        second += (probs * values**2).sum().item()
    return first, second - first**2


def _as_pair(out, what: str) -> tuple[float, float]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"{what} should return a pair (gap, stderr), got {type(out).__name__}")
    return _as_number(out[0], "the gap"), _as_number(out[1], "the standard error")


def check_mc_jensen_gap(fn) -> None:
    r"""Check ``fn(f, w, x, p, n, generator)``, which must return a Monte-Carlo estimate of the Jensen gap
    :math:`\mathbb E[f(z)] - f(\mathbb E z)` of inverted dropout from ``n`` random masks, and its standard error.

    The estimate must lie within 5 standard errors of the exact gap, the standard error must be
    within 30% of the true :math:`\sqrt{\operatorname{Var}[f(z)]/n}`, and the result must be
    reproducible from the generator. Names the usual mistakes: the standard deviation instead of
    the standard error, averaging :math:`z` before applying :math:`f`, no rescaling. Chapter 3 exercises.
    """
    what = "your Monte-Carlo estimate"
    f, w, x, p = _MC_CASE
    w_t, x_t = torch.tensor(w, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)
    mean_f, var_f = _moments_of_f(f, w_t, x_t, p)
    exact_gap = mean_f - f(w_t @ x_t).item()
    true_se = math.sqrt(var_f / _MC_N)
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is restored afterwards
        torch.manual_seed(3)
        gap, se = _as_pair(call_student(fn, f, w_t, x_t, p, _MC_N, torch.Generator().manual_seed(11), what=what), what)
        again, se_again = _as_pair(call_student(fn, f, w_t, x_t, p, _MC_N, torch.Generator().manual_seed(11), what=what), what)
    if not (math.isfinite(gap) and math.isfinite(se)):
        raise CheckFailed(f"{what} returned a non-finite value: gap {gap}, stderr {se}")
    if se <= 0:
        raise CheckFailed(f"the standard error is {se:.3g}; it must be positive (did all samples use the same mask?)")
    if math.isclose(se / true_se, math.sqrt(_MC_N), rel_tol=0.3):
        raise CheckFailed(f"your standard error {se:.3g} is the standard deviation of f(z); "
                          f"the standard error of a mean of n samples divides it by √n (n = {_MC_N})")
    q = 1 - p
    standard_gap = _enumerated(f, w_t, x_t, q, 1.0) - f(q * (w_t @ x_t)).item()
    if abs(gap - exact_gap) > _Z * se:
        if abs(gap - standard_gap) <= _Z * se:
            raise CheckFailed(f"your gap {gap:.4f} ± {se:.4f} is the gap without rescaling; divide the "
                              "survivors by 1 - p (inverted dropout), so that E[z] = Σ w_i x_i")
        if abs(gap) <= _Z * max(se, true_se) and abs(exact_gap) > 2 * _Z * true_se:
            raise CheckFailed(f"your gap {gap:.4f} is about 0, but the exact gap is {exact_gap:.4f}: did you average "
                              "z over the masks before applying f? That is f(E[z]) again; average f(z) instead")
        raise CheckFailed(f"your gap {gap:.4f} ± {se:.4f} is {abs(gap - exact_gap) / se:.1f} standard errors "
                          f"from the exact gap {exact_gap:.4f}")
    if not 0.7 <= se / true_se <= 1.3:
        raise CheckFailed(f"your standard error {se:.3g} should be close to √(Var[f(z)]/n) = {true_se:.3g}; "
                          "use the sample standard deviation of f(z) over the n masks, divided by √n")
    if gap != again or se != se_again:
        raise CheckFailed("two calls with generators of the same seed gave different results: draw every mask "
                          "with the generator argument (torch.rand(..., generator=generator))")
    passed(f"gap {gap:.4f} ± {se:.4f}, exact {exact_gap:.4f} ({(gap - exact_gap) / se:+.2f} s.e.)")
