r"""Checkers for the exercises of chapter 11, "Dropout in recurrent networks".

Each checker takes the student's function, calls it through :func:`call_student`, and either
prints one "Correct: ..." line at the end or raises :class:`CheckFailed` with a message that says
what is wrong, for example "the mask changes from one time step to the next: a locked mask is
drawn once per sequence". The shapes and drop probabilities of the implement exercises are drawn
on every call from the checker's own seeded generator, so a hard-coded ``p`` or a shape taken for
granted is caught; instructors change the draw with ``seed=``.
"""

from __future__ import annotations

import functools
import math
import numbers
import types

import sympy as sp
import torch

from .. import derivations
from .._validation import check_positive_int, check_probability, check_real_sequence
from ._core import _CHECKER_SYMPY_CLASSES, CheckFailed, _as_output, _check_numbers, _same_function, _student_symbols, _survivor_scale_message, call_student, passed

__all__ = [
    "check_locked_dropout", "check_gain_moments", "check_connect_covariance", "check_zoneout_test_time",
    "CONNECT_EXERCISE",
]

_Z = 5.0


def _draw_probabilities(g: torch.Generator, n: int) -> list[float]:
    """``n`` different drop probabilities in [0.1, 0.75], each at least 0.1 away from 0.5 (where p = 1 - p)."""
    values: list[float] = []
    while len(values) < n:
        p = round(0.1 + 0.65 * torch.rand((), generator=g, dtype=torch.float64).item(), 2)
        if abs(p - 0.5) >= 0.1 and all(abs(p - q) >= 0.1 for q in values):
            values.append(p)
    return values


def _draw_int(g: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (), generator=g))


def _check_rate(rate: float, p: float, n: int, *, what: str, swapped: str) -> None:
    """Fail unless ``rate``, a fraction of ``n`` independent draws, is ``p`` within 5 standard errors; name a swap of p and 1 - p."""
    se = math.sqrt(p * (1 - p) / n)
    if abs(rate - p) <= _Z * se:
        return
    if abs(rate - (1 - p)) <= _Z * se:
        raise CheckFailed(f"with p = {p}, {rate:.1%} of the {what}: {swapped}")
    raise CheckFailed(f"with p = {p}, {rate:.1%} of the {what}; it should be {p:.0%} (± {_Z * se:.1%})")


def _unchanged(before: dict, after: dict) -> None:
    for name, tensor in after.items():
        if not torch.equal(tensor, before[name]):
            raise CheckFailed(f"your function changed its input {name} in place; return a new tensor instead "
                              f"(avoid {name}.mul_(...), {name}[...] = ...)")


def _gradients(fn, inputs: dict, args: tuple, kwargs: dict, what: str):
    """Call ``fn`` on copies of ``inputs`` that require grad; return the output and the gradient of its sum
    with respect to each copy, or fail when no gradient reaches them (a detached or NumPy computation)."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in inputs.items()}
    out = call_student(fn, *leaves.values(), *args, what=what, **kwargs)
    names = ", ".join(leaves)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise CheckFailed(f"your output carries no gradient back to {names}: in a network the loss must reach "
                          f"them through dropout. Compute with torch operations on the tensors themselves (no "
                          f"{next(iter(leaves))}.detach(), .data, .numpy() or torch.tensor(...) copies)")
    grads = torch.autograd.grad(out.sum(), list(leaves.values()), allow_unused=True)
    return out.detach().to(torch.float64), {n: (torch.zeros_like(t) if g is None else g).to(torch.float64)
                                            for (n, t), g in zip(leaves.items(), grads)}


# --------------------------------------------------------------------------------------------
# exercise 1: implement locked dropout for (T, B, D) and (B, T, D) input


def check_locked_dropout(fn, *, seed: int = 11) -> None:
    """Check ``fn(x, p, batch_first=False, training=True)``, an implementation of locked dropout (chapter 11 exercises).

    Three inputs with shapes and drop probabilities drawn from a generator seeded with ``seed``
    (time-major and batch-first, float32 and float64). In order: output type and shape; inputs
    not modified; one mask per sequence and feature, the same at every time step (with the time
    axis where ``batch_first`` puts it); masks not shared over the batch or over the features;
    survivors scaled by exactly 1/(1-p) for the ``p`` passed; the fraction of dropped
    (sequence, feature) pairs is ``p`` within 5 standard errors; a new mask on every call; the
    identity with ``training=False`` and with ``p = 0``.
    """
    seed = check_positive_int(seed, "seed")
    with torch.random.fork_rng(devices=[]):  # reproducible messages; the caller's RNG state is restored
        torch.manual_seed(seed)
        message = _check_locked_dropout(fn, torch.Generator().manual_seed(seed))
    passed(message)


def _locked_cases(g: torch.Generator) -> list[tuple[torch.Tensor, float, bool]]:
    cases = []
    for p, batch_first, dtype in zip(_draw_probabilities(g, 3), (False, True, True),
                                     (torch.float64, torch.float32, torch.float64)):
        T, B, D = _draw_int(g, 3, 7), _draw_int(g, 60, 140), _draw_int(g, 40, 90)
        shape = (B, T, D) if batch_first else (T, B, D)
        x = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(dtype)  # never zero
        cases.append((x, p, batch_first))
    return cases


def _check_locked_dropout(fn, g: torch.Generator) -> str:
    what = "your locked dropout"
    cases = _locked_cases(g)
    scales, masks = [], []
    for x, p, batch_first in cases:
        before = x.clone()
        raw = call_student(fn, x, p, batch_first=batch_first, training=True, what=what)
        out = _as_output(raw, x, what)
        _unchanged({"x": before}, {"x": x})
        if raw.dtype != x.dtype:
            raise CheckFailed(f"for a {x.dtype} input your function returns {raw.dtype}; keep the input's dtype")
        kept = out != 0
        time_major = kept.transpose(0, 1) if batch_first else kept  # (T, B, D)
        layout = "(B, T, D) with batch_first=True" if batch_first else "(T, B, D)"
        if not (time_major == time_major[:1]).all():
            if batch_first and (kept == kept[:1]).all():
                raise CheckFailed(
                    f"for x of shape {tuple(x.shape)} = {layout} your mask is the same along dimension 0 and changes "
                    "along dimension 1, the time axis: batch_first was ignored. With batch_first=True the "
                    "mask has shape (B, 1, D)")
            if (time_major == time_major[:, :1]).all():
                raise CheckFailed(
                    f"for x of shape {tuple(x.shape)} = {layout} your mask is the same for every sequence of the batch "
                    "and changes from one time step to the next: it has the shape (T, 1, D), as if the time axis "
                    f"were the batch axis. The locked mask has the shape {'(B, 1, D)' if batch_first else '(1, B, D)'}:"
                    " one per sequence and feature, shared by all steps")
            changing = int((time_major != time_major[:1]).any(0).sum())
            raise CheckFailed(
                f"for x of shape {tuple(x.shape)} = {layout} the mask changes from one time step to the next for "
                f"{changing} of the {time_major[0].numel()} (sequence, feature) pairs: that is a mask drawn per time "
                "step, ordinary dropout. A locked mask is drawn ONCE per sequence and feature and shared by all steps")
        mask = time_major[0]  # (B, D)
        if (mask == mask[:1]).all():
            raise CheckFailed(
                f"for x of shape {tuple(x.shape)} = {layout} every sequence of the batch has the same mask: the mask "
                "is shared over the batch. Draw one per sequence and feature, of shape "
                f"{'(B, 1, D)' if batch_first else '(1, B, D)'}")
        if (mask == mask[:, :1]).all():
            raise CheckFailed(
                f"for x of shape {tuple(x.shape)} = {layout} each sequence keeps or drops all its features together: "
                "the mask is shared over the features. Draw one per sequence AND feature")
        ratios = out[kept] / before.to(torch.float64)[kept]
        if ratios.numel() and (ratios.max() - ratios.min()).item() > 1e-5 * ratios.abs().max().item():
            raise CheckFailed("kept values are scaled by different factors; every survivor is multiplied by 1/(1-p)")
        scales.append(ratios[0].item() if ratios.numel() else float("nan"))
        masks.append(mask)
    ps = [p for _, p, _ in cases]
    if all(math.isclose(s, scales[0], rel_tol=1e-5) for s in scales) and not math.isclose(scales[0], 1.0, rel_tol=1e-5) \
            and not all(math.isclose(s, 1 / (1 - p), rel_tol=1e-4) for s, p in zip(scales, ps)):
        raise CheckFailed(
            f"the survivors are scaled by {scales[0]:.4g} for every p ({', '.join(map(str, ps))}): your function "
            "ignores its argument p (a hard-coded p?). Use the p it is given")
    for p, scale in zip(ps, scales):
        message = _survivor_scale_message(scale, p)
        if message:
            raise CheckFailed(f"with p = {p}: {message}")
    fractions = []
    for p, mask in zip(ps, masks):
        dropped = 1.0 - mask.double().mean().item()
        _check_rate(dropped, p, mask.numel(), what="(sequence, feature) pairs are dropped",
                    swapped="you keep with probability p and drop with 1 - p. In the book's convention p is the "
                            "DROP probability")
        fractions.append(dropped)
    x, p, batch_first = cases[0]
    first = call_student(fn, x, p, batch_first=batch_first, training=True, what=what)
    second = call_student(fn, x, p, batch_first=batch_first, training=True, what=what)
    if torch.equal(first != 0, second != 0):
        raise CheckFailed("two calls drew exactly the same mask: draw new random numbers on every call")
    for x, p, batch_first in cases[:2]:
        for p_used, training in ((p, False), (0.0, True)):
            out = _as_output(call_student(fn, x, p_used, batch_first=batch_first, training=training, what=what), x, what)
            if not torch.allclose(out, x.to(torch.float64), rtol=1e-6, atol=0):
                case = "with training=False" if not training else "with p = 0"
                raise CheckFailed(f"{case} the output should equal the input (inverted scaling needs no test-time "
                                  f"factor); yours is {(out / x.to(torch.float64)).mean().item():.4g}·x on average")
    x, p, batch_first = cases[1]
    out, grads = _gradients(fn, {"x": x}, (p,), {"batch_first": batch_first, "training": True}, what)
    if not torch.allclose(grads["x"] * x.to(torch.float64), out, rtol=1e-5, atol=0):
        raise CheckFailed("the gradient of your output with respect to x is not the mask m/(1-p) that multiplies x: "
                          "keep the product x * mask in the computation graph")
    summary = ", ".join(f"p = {p}: {f:.1%}" for (_, p, _), f in zip(cases, fractions))
    return f"one mask per sequence and feature, shared over time (both layouts); dropped {summary}"


# --------------------------------------------------------------------------------------------
# exercise 2: derive the mean and variance of the gain over k steps


class _Derived(sp.Symbol):
    """A symbol that prints and computes like its namesake, put by the recorder into what the expectation returns:
    an answer built from those results carries it, an answer typed in from ``keep`` does not."""


_CHECKER_SYMPY_CLASSES.add(_Derived)  # the checker's own marker, not a class of the submission


class _RecordedExpectation:
    """The library's :func:`~dropoutbook.derivations.expectation`, handed to the student; remembers each call
    and marks the symbols of its results (:class:`_Derived`)."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, expr, distributions, **kwargs):
        result = derivations.expectation(expr, distributions, **kwargs)
        self.calls.append(dict(distributions))
        return result.xreplace({s: _Derived(s.name, **s.assumptions0) for s in result.free_symbols
                                if type(s) is sp.Symbol})


@functools.lru_cache(maxsize=1)
def _gain_truth():
    s = derivations.signal_survival()
    return {"per_step_mean": s.per_step_gain_mean, "per_step_variance": s.per_step_gain_variance,
            "locked_mean": s.locked_gain_mean, "locked_variance": s.locked_gain_variance}


_GAIN_KEYS = ("per_step_mean", "per_step_variance", "locked_mean", "locked_variance")


def _gain_mistakes(keep, k: int) -> dict:
    q = keep
    one_step = (1 - q) / q
    per_mean, per_var = sp.Integer(1), q**-k - 1
    locked_mean, locked_var = q ** (1 - k), q ** (1 - 2 * k) - q ** (2 - 2 * k)
    swapped = "the per-step and the locked results are swapped: with a fresh mask at every step the gain is " \
              "Π m_t/keep (independent factors), with a locked mask (m/keep)^k, the same m every time"
    return {
        "per_step_mean": [
            (q**k, "that is the survival probability keep^k; the gain also carries the factor 1/keep of every step"),
            (((1 - q) / q) ** k, "drop and keep are swapped: m_t ~ Bernoulli(keep), so E[m_t] = keep"),
            (locked_mean, swapped),
        ],
        "per_step_variance": [
            (k * one_step, "the variance of a product is not the sum of the variances of its factors: "
                           "Var[G] = E[G²] − E[G]² with E[G²] = Π_t E[(m_t/keep)²]"),
            (q**-k, "that is E[G²]; the variance subtracts E[G]²"),
            (one_step, "that is the variance of ONE step; the gain multiplies k of them"),
            (q**k * (1 - q**k), "that is the variance of the survival indicator, without the factors 1/keep"),
            (locked_var, swapped),
        ],
        "locked_mean": [
            (per_mean, "a locked mask is the same m at every step, so G = (m/keep)^k = m/keep^k (m^k = m), whose mean "
                       "is keep^(1−k), not 1: the scaling compounds on a surviving value"),
            (q, "that is the survival probability keep; the gain also carries the factor 1/keep of every step"),
            ((1 - q) / q**k, "drop and keep are swapped: m ~ Bernoulli(keep), so E[m] = keep"),
        ],
        "locked_variance": [
            (one_step, "that is the variance of ONE step, m/keep; with a locked mask the gain is (m/keep)^k"),
            (q ** (1 - 2 * k), "that is E[G²]; the variance subtracts E[G]²"),
            (k * one_step, "the variance of a product is not the sum of the variances of its factors; with a locked "
                           "mask G = (m/keep)^k, the same m every time"),
            (per_var, swapped),
        ],
    }


def check_gain_moments(fn) -> None:
    r"""Check ``fn(k, keep, expectation)``, which derives the mean and variance of the gain over ``k`` steps (chapter 11 exercises).

    ``fn`` returns a dict with the keys ``per_step_mean``, ``per_step_variance``, ``locked_mean``,
    ``locked_variance``: the moments of :math:`G = \prod_{t=1}^k m_t/q` (fresh masks) and of
    :math:`G = (m/q)^k` (one locked mask), :math:`m \sim \mathrm{Bernoulli}(q)`, as sympy
    expressions of the keep probability ``keep`` it is given. It is called for several ``k`` and
    with ``keep`` = :math:`1 - p` and = a fresh symbol :math:`q`, and must compute with the
    ``expectation`` it receives (the library's): an answer typed in, that does not follow the
    ``keep`` passed, makes no call, or has an entry into which none of the calls' results enters
    (one irrelevant call and the rest typed), is refused. The truth is
    :func:`~dropoutbook.derivations.signal_survival`.
    """
    what = "your derivation"
    p = derivations.drop_rate
    q = sp.Symbol("q", positive=True)
    truth = _gain_truth()
    shown = []
    for k, keep, allowed in [(2, 1 - p, {"p": p}), (3, q, {"q": q}), (5, 1 - p, {"p": p}), (4, q, {"q": q})]:
        recorder = _RecordedExpectation()
        answer = call_student(fn, k, keep, recorder, what=what)
        if not isinstance(answer, dict) or set(answer) != set(_GAIN_KEYS):
            raise CheckFailed(f"{what} should return a dict with exactly the keys {list(_GAIN_KEYS)}")
        if not recorder.calls:
            raise CheckFailed(
                f"{what} never called the expectation it was given: the answer was typed in. Derive it: build the gain "
                "from mask symbols distributed as derivations.Bernoulli(keep) and take E[G] and E[G²] with expectation")
        name = sp.sstr(keep)
        got, derived = {}, {}
        for key in _GAIN_KEYS:
            expr = answer[key]
            if isinstance(expr, sp.Expr) and keep == q and any(s.name == "p" for s in expr.free_symbols):
                raise CheckFailed(
                    f"for keep = q your {key} is written in p: it was typed in, not derived from the keep "
                    "probability your function was given. Build the gain from mask symbols with "
                    "derivations.Bernoulli(keep) and take its moments with the expectation argument")
            got[key] = _student_symbols(expr, allowed, f"the {key!r} entry")
            derived[key] = any(isinstance(s, _Derived) for s in sp.sympify(expr).free_symbols)
        used = {sp.simplify(d.keep) for call in recorder.calls for d in call.values() if hasattr(d, "keep")}
        if used and all(sp.simplify(u - (1 - keep)) == 0 for u in used):
            raise CheckFailed(f"your masks are Bernoulli(1 - keep): drop and keep are swapped. A mask is 1 (kept) "
                              f"with probability keep = {name}")
        sub = {p: 1 - keep} if keep == q else {}
        points = [(0.25,), (0.6,), (0.85,)]
        symbol = q if keep == q else p
        for key in _GAIN_KEYS:
            correct = truth[key].subs(derivations.n_steps, k).subs(sub)
            if _same_function(got[key], correct, (symbol,), points):
                if correct.free_symbols and not derived[key]:  # right, but none of the expectation's results in it
                    raise CheckFailed(
                        f"your {key} for k = {k} is not computed by the expectation you were given: none of its "
                        "results enters it, so it was typed in. Build the gain from mask symbols distributed as "
                        "derivations.Bernoulli(keep) and take this moment with the expectation argument")
                continue
            for wrong, message in _gain_mistakes(keep, k)[key]:
                if _same_function(got[key], wrong, (symbol,), points):
                    raise CheckFailed(f"for k = {k}, keep = {name}, {key} = {sp.sstr(got[key])} is not right: {message}")
            value = float(got[key].subs(symbol, sp.Rational(1, 4)))
            expected = float(correct.subs(symbol, sp.Rational(1, 4)))
            raise CheckFailed(f"for k = {k}, keep = {name}, {key} is {value:.4g} at {symbol} = 1/4; it should be "
                              f"{expected:.4g} there")
        if k == 3:
            shown = [f"{key} = {sp.sstr(sp.simplify(got[key]))}" for key in _GAIN_KEYS]
    passed(f"for k = 3, keep = q: {'; '.join(shown)}")


# --------------------------------------------------------------------------------------------
# exercise 3: predict variance and covariance under input dropout and DropConnect

#: The weights, input and drop probability of the "predict" exercise of chapter 11 (the defaults
#: of :func:`~dropoutbook.exercises.check_connect_covariance`; printed by the notebook, never read by the checker).
CONNECT_EXERCISE = types.MappingProxyType(dict(w1=(0.5, -1.0, 1.5), w2=(2.0, 0.5, -1.0), x=(1.0, 2.0, -0.5), p=0.3))

_CONNECT_KEYS = ("input_variance", "input_covariance", "connect_variance", "connect_covariance")


def check_connect_covariance(fn, *, w1=(0.5, -1.0, 1.5), w2=(2.0, 0.5, -1.0), x=(1.0, 2.0, -0.5), p: float = 0.3) -> None:
    r"""Check ``fn()``, the predicted variance of :math:`y_1` and covariance of :math:`y_1, y_2` under input dropout and DropConnect (chapter 11 exercises).

    The layer is :math:`y_j = \sum_i w_{j,i} x_i` with the rows ``w1``, ``w2``, the input ``x`` and
    the drop probability ``p`` (keyword arguments; the defaults are
    :data:`~dropoutbook.exercises.ch11.CONNECT_EXERCISE`). ``fn`` returns a dict with the keys
    ``input_variance``, ``input_covariance``, ``connect_variance``, ``connect_covariance``; any
    real number type is accepted. The truth is
    :func:`~dropoutbook.derivations.dropconnect_moments` at these values.
    """
    w1 = check_real_sequence(w1, "w1", max_length=6)
    w2 = check_real_sequence(w2, "w2", max_length=6)
    x = check_real_sequence(x, "x", max_length=6)
    if not len(w1) == len(w2) == len(x):
        raise ValueError(f"w1, w2 and x must have the same length, got {len(w1)}, {len(w2)} and {len(x)}")
    p = check_probability(p, allow_zero=False, allow_one=False)
    if math.isclose(p, 0.5):
        raise ValueError("p must not be 0.5, where p/(1-p) = (1-p)/p and swapped probabilities cannot be told apart")
    what = "your prediction"
    answer = call_student(fn, what=what)
    if not isinstance(answer, dict) or set(answer) != set(_CONNECT_KEYS):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(_CONNECT_KEYS)}")
    m = derivations.dropconnect_moments(len(x))
    values = dict(zip(m.weights[0] + m.weights[1] + m.inputs, (*w1, *w2, *x)))
    values = {s: sp.nsimplify(v) for s, v in values.items()}
    values[derivations.drop_rate] = sp.nsimplify(p)
    truth = {
        "input_variance": float(m.input_dropout_variance.subs(values)),
        "input_covariance": float(m.input_dropout_covariance.subs(values)),
        "connect_variance": float(m.dropconnect_variance.subs(values)),
        "connect_covariance": float(m.dropconnect_covariance.subs(values)),
    }
    sq = sum((a * b) ** 2 for a, b in zip(w1, x))
    cross = sum(a * b * c * c for a, b, c in zip(w1, w2, x))
    full = sum(a * b for a, b in zip(w1, x)) ** 2
    both = sum(a * c for a, c in zip(w1, x)) * sum(b * c for b, c in zip(w2, x))
    r = p / (1 - p)
    variance_mistakes = [
        (p * (1 - p) * sq, "that is the variance without the 1/(1-p) scaling (standard dropout); the layer uses "
                           "inverted dropout, so each surviving term is divided by 1 - p"),
        ((1 - p) / p * sq, "drop and keep are swapped: a mask is 1 with probability 1 - p, and "
                           "Var[m/(1-p)] = p/(1-p)"),
        (p / (1 - p) ** 2 * sq, "one factor 1/(1-p) too many: Var[m/(1-p)] = p/(1-p)"),
        (r * full, "each input (or weight) has its own mask, so the variances of the terms add: "
                   "p/(1-p) Σ_i w_1i² x_i², not p/(1-p)(Σ_i w_1i x_i)²"),
        (0.0, "a dropped unit or weight changes y_1, so its variance is not 0"),
    ]
    mistakes = {
        "input_variance": variance_mistakes,
        "connect_variance": variance_mistakes,
        "input_covariance": [
            (0.0, "under input dropout both units see the SAME input mask: a dropped x_i is missing from y_1 and y_2 "
                  "at once, which correlates them, Cov = p/(1-p) Σ_i w_1i w_2i x_i²"),
            (r * both, "the masks of different inputs are independent, so only the terms with the same i covary: "
                       "p/(1-p) Σ_i w_1i w_2i x_i²"),
            (p * (1 - p) * cross, "that is the covariance without the 1/(1-p) scaling; the layer uses inverted dropout"),
            ((1 - p) / p * cross, "drop and keep are swapped: Var[m/(1-p)] = p/(1-p)"),
        ],
        "connect_covariance": [
            (r * cross, "that is the covariance of INPUT dropout. Under DropConnect every weight has its own mask, the "
                        "two units share none, and their covariance is 0"),
            (r * both, "under DropConnect the two units share no mask: their covariance is 0"),
        ],
    }
    for key in _CONNECT_KEYS:
        value = answer[key]
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(float(value)):
            raise CheckFailed(f"{key} is {float(value)}: a variance or covariance of this layer is a finite number; "
                              "did a division by zero or an undefined value creep in?")
    _check_numbers(answer, truth, _CONNECT_KEYS, mistakes, retry="recompute it term by term from the chapter's "
                   "derivation: only terms that share a mask covary")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in _CONNECT_KEYS))


# --------------------------------------------------------------------------------------------
# exercise 4: find the bug in a zoneout step (its test-time rule)


def check_zoneout_test_time(fn, *, seed: int = 13) -> None:
    """Check the repaired zoneout step ``fn(h_prev, h_new, p, training=True)`` of the find-the-bug exercise (chapter 11 exercises).

    States of two shapes and two zoneout probabilities are drawn from a generator seeded with
    ``seed``. In training each unit must take either its previous value (with probability ``p``,
    within 5 standard errors) or the new one, unscaled, independently per unit and anew on every
    call; at test time the output must be the training mean :math:`p\\,h_{prev} + (1-p)\\,h_{new}`.
    Neither input may be modified.
    """
    seed = check_positive_int(seed, "seed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        message = _check_zoneout_test_time(fn, torch.Generator().manual_seed(seed))
    passed(message)


def _check_zoneout_test_time(fn, g: torch.Generator) -> str:
    what = "your repaired zoneout"
    cases = []
    for p, dims in zip(_draw_probabilities(g, 2), (2, 3)):
        shape = (_draw_int(g, 40, 80), _draw_int(g, 30, 60)) + ((_draw_int(g, 2, 4),) if dims == 3 else ())
        h_prev = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
        h_new = -(torch.rand(shape, generator=g, dtype=torch.float64) + 0.5)  # never equal to h_prev
        cases.append((h_prev, h_new, p))
    coefficients = []
    for h_prev, h_new, p in cases:
        before = {"h_prev": h_prev.clone(), "h_new": h_new.clone()}
        raw = call_student(fn, h_prev, h_new, p, training=True, what=what)
        out = _as_output(raw, h_new, what)
        _unchanged(before, {"h_prev": h_prev, "h_new": h_new})
        if raw.dtype != h_new.dtype:
            raise CheckFailed(f"for {h_new.dtype} states your function returns {raw.dtype}; keep the input's dtype")
        old = torch.isclose(out, h_prev, rtol=1e-9, atol=0)  # h_prev > 0 > h_new: never both
        new = torch.isclose(out, h_new, rtol=1e-9, atol=0)
        neither = ~(old | new)
        if neither.any():
            rescaled = torch.isclose(out, h_new / (1 - p), rtol=1e-6, atol=0) | \
                torch.isclose(out, h_prev / (1 - p), rtol=1e-6, atol=0)
            if rescaled.any():
                raise CheckFailed("in training some units are divided by 1 - p: zoneout does not rescale like "
                                  "dropout; a unit takes either its old value or its new one, unchanged")
            if (out[neither] == 0).any():
                raise CheckFailed("in training some units are set to 0: that is dropout. Zoneout never zeros a unit; "
                                  "it keeps the previous value instead of the new one")
            raise CheckFailed(
                f"in training {int(neither.sum())} units are neither their previous value nor their new one: "
                "zoneout copies one of the two (training samples; only the test time uses the mixture)")
        if (old == old.flatten()[0]).all():
            raise CheckFailed("all units made the same choice in one call: draw one Bernoulli per unit, not one "
                              "for the whole state")
        if (old == old[:1]).all():
            raise CheckFailed("every row of the batch zoned out the same units: the mask is shared over the batch; "
                              "draw it per sequence and unit")
        if (old == old[:, :1]).all():
            raise CheckFailed("each row zoned out all its units together: the mask is shared over the units; "
                              "draw it per sequence and unit")
        frac = old.double().mean().item()
        again = _as_output(call_student(fn, h_prev, h_new, p, training=True, what=what), h_new, what)
        if torch.equal(torch.isclose(again, h_prev, rtol=1e-9, atol=0), old):
            raise CheckFailed("two calls zoned out exactly the same units: draw new random numbers on every call")
        test = _as_output(call_student(fn, h_prev, h_new, p, training=False, what=what), h_new, what)
        _unchanged(before, {"h_prev": h_prev, "h_new": h_new})
        repeat = _as_output(call_student(fn, h_prev, h_new, p, training=False, what=what), h_new, what)
        if not torch.equal(test, repeat):
            raise CheckFailed("at test time your function is random (two calls differ); the test-time rule is the "
                              "deterministic expectation of the training step")
        # the output as a mixture c·h_prev + (1 - c)·h_new, c read off the first unit and checked on all
        c = ((test - h_new) / (h_prev - h_new)).flatten()
        if not torch.allclose(test, c[0] * h_prev + (1 - c[0]) * h_new, rtol=1e-6, atol=1e-9):
            raise CheckFailed(f"at test time (p = {p}) your output is not of the form c·h_prev + (1 − c)·h_new: the "
                              "training step picks h_prev or h_new, so its mean mixes the two")
        coefficients.append((p, c[0].item(), frac, old.numel()))
    (p1, c1, f1, n1), (p2, c2, f2, n2) = coefficients
    se1, se2 = math.sqrt(p1 * (1 - p1) / n1), math.sqrt(p2 * (1 - p2) / n2)
    fractions_alike = abs(f1 - f2) <= _Z * math.hypot(se1, se2)
    tests_alike = math.isclose(c1, c2, rel_tol=1e-9) and not any(math.isclose(c1, v, abs_tol=1e-9) for v in (0.0, 1.0))
    training_right = abs(f1 - p1) <= _Z * se1 and abs(f2 - p2) <= _Z * se2
    if tests_alike and training_right and not fractions_alike:
        raise CheckFailed(f"at test time your function uses the same mixture {c1:.3g}·h_prev + {1 - c1:.3g}·h_new for "
                          f"every p (here p = {p1} and p = {p2}), while training keeps h_prev with probability p: the "
                          "test-time rule is the training mean p·h_prev + (1 − p)·h_new")
    if (fractions_alike and not training_right) or \
            (tests_alike and not (math.isclose(c1, p1) and math.isclose(c2, p2))):
        raise CheckFailed(f"your function behaves the same for p = {p1} and p = {p2} (training keeps h_prev for "
                          f"{f1:.1%} and {f2:.1%} of the units, test {c1:.3g}·h_prev and {c2:.3g}·h_prev): the "
                          "argument p is ignored (a hard-coded p?)")
    for p, c, frac, n in coefficients:
        _check_rate(frac, p, n, what="units keep their previous value",
                    swapped="keep and change are swapped. Zoneout keeps the OLD value with probability p")
        if math.isclose(c, 0.0, abs_tol=1e-9):
            raise CheckFailed(
                f"with p = {p} the test-time output is h_new, the plain cell (the original bug): in training a unit "
                f"keeps h_prev with probability p, so the training mean is p·h_prev + (1 − p)·h_new, and the "
                "test-time rule must equal it")
        if math.isclose(c, 1.0, rel_tol=1e-9):
            raise CheckFailed(f"with p = {p} the test-time output is h_prev: the state would never change. The "
                              "test-time rule is the training mean p·h_prev + (1 − p)·h_new")
        if math.isclose(c, 1 - p, rel_tol=1e-6):
            raise CheckFailed(f"with p = {p} the test-time output is {1 - p:.2g}·h_prev + {p:.2g}·h_new: p and 1 − p are "
                              "swapped. The previous value is kept with probability p")
        if not math.isclose(c, p, rel_tol=1e-6):
            raise CheckFailed(f"with p = {p} the training steps keep h_prev for {frac:.1%} of the units but the test "
                              f"output is {c:.4g}·h_prev + {1 - c:.4g}·h_new; the two must agree in expectation: "
                              f"{p}·h_prev + {1 - p:.2g}·h_new")
    h_prev, h_new, p = cases[0]
    out, grads = _gradients(fn, {"h_prev": h_prev, "h_new": h_new}, (p,), {"training": True}, what)
    took_old = torch.isclose(out, h_prev, rtol=1e-9, atol=0).to(torch.float64)
    if not (torch.equal(grads["h_prev"], took_old) and torch.equal(grads["h_new"], 1 - took_old)):
        raise CheckFailed("the gradient of your output is not 1 for the state each unit copied and 0 for the other: "
                          "select with torch.where (or mix with the 0/1 mask) so that both states stay in the graph")
    summary = "; ".join(f"p = {p}: {frac:.1%} kept in training, test {c:.2f}·h_prev + {1 - c:.2f}·h_new"
                        for p, c, frac, _ in coefficients)
    return summary
