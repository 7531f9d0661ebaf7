"""Checkers for the exercises of chapter 6, "Dropout and BatchNorm: the variance shift".

Each checker prints one "Correct: ..." line or raises :class:`CheckFailed` with a message that
says what is wrong (for example, "dropout was on during your statistics pass").
"""

from __future__ import annotations

import copy
import functools
import math

import sympy as sp
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .. import derivations
from ..batchnorm import measure_variance_shift, recalibrate_batchnorm
from ._core import CheckFailed, call_student, passed

__all__ = [
    "check_train_variance", "check_scale_error", "check_recalibration", "check_dropout_placement",
    "recalibration_exercise_model", "SCALE_ERROR_POINTS",
]


# --------------------------------------------------------------------------------------------
# exercise 1: derive the training-time variance


@functools.lru_cache(maxsize=1)
def _derived():
    """The chapter's derivation, computed once (sympy takes about half a second)."""
    return derivations.variance_shift()


def check_train_variance(fn) -> None:
    r"""Check ``fn()``, which returns :math:`\operatorname{Var}[\tilde x]` for inverted dropout directly
    before BatchNorm as a sympy expression in ``mu``, ``sigma2`` and ``q`` (chapter 6 exercises).

    Recognizes the usual wrong answers (the mean term forgotten, :math:`\mathbb E[\tilde x^2]`
    instead of the variance, a missing :math:`1/q`, drop and keep swapped, standard dropout) and
    names the mistake.
    """
    what = "your derivation"
    expr = call_student(fn, what=what)
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr):
        raise CheckFailed(f"{what} should return a sympy expression, got {type(expr).__name__}")
    derived = _derived()
    mu, s2, q = sp.symbols("mu sigma2 q")
    names = {"mu": mu, "sigma2": s2, "sigma^2": s2, "q": q}
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in names)
    if unknown:
        raise CheckFailed(f"{what} uses the symbols {unknown}; write it in terms of mu, sigma2 and q only")
    expr = expr.subs({s: names[s.name] for s in expr.free_symbols})
    truth = derived.train_variance.subs({derived.mean: mu, derived.sigma2: s2, derivations.keep_rate: q})
    points = [(0.7, 1.3, 0.8), (-1.5, 0.4, 0.35), (2.0, 2.5, 0.6)]

    def same(a, b):
        return all(math.isclose(float(a.subs({mu: m, s2: v, q: k})), float(b.subs({mu: m, s2: v, q: k})),
                                rel_tol=1e-9, abs_tol=1e-12) for m, v, k in points)

    if same(expr, truth):
        passed("Var[x~] = sigma2/q + mu**2*(1 - q)/q")
        return
    mistakes = [
        (s2 / q, "that is only the noise σ²/q; the mask also adds noise to the mean: "
                 "E[x̃²] = (σ² + μ²)/q, so Var[x̃] = (σ² + μ²)/q − μ²"),
        ((s2 + mu**2) / q, "that is E[x̃²]; the variance is E[x̃²] − E[x̃]², and E[x̃] = μ"),
        (s2 / q + mu**2 * (1 - q), "the mean term lacks its 1/q: E[x̃²] = (σ² + μ²)/q, so it is μ²(1−q)/q"),
        (s2 / (1 - q) + mu**2 * q / (1 - q), "that treats q as the drop probability; q is the keep "
                                             "probability, m ~ Bernoulli(q), and x̃ = m·x/q"),
        (q * s2 + q * (1 - q) * mu**2, "that is standard dropout m·x; inverted dropout divides by q"),
        (s2 / q**2 + mu**2 * (1 - q) / q**2, "E[(m/q)²] = q/q² = 1/q: one factor q cancels"),
    ]
    for wrong, message in mistakes:
        if same(expr, wrong):
            raise CheckFailed(message)
    at = {mu: 1, s2: 1, q: sp.Rational(1, 2)}
    raise CheckFailed(f"at mu = 1, sigma2 = 1, q = 1/2 your expression gives {float(expr.subs(at)):.4g}, "
                      f"but Var[x̃] is {float(truth.subs(at)):.4g} there")


# --------------------------------------------------------------------------------------------
# exercise 2: predict the scale error k

#: (mu, sigma2, p) settings at which :func:`~dropoutbook.exercises.check_scale_error` evaluates the student's k.
SCALE_ERROR_POINTS = [(0.0, 1.0, 0.3), (1.0, 1.0, 0.5), (2.0, 0.5, 0.2), (-1.0, 3.0, 0.6)]


def check_scale_error(fn) -> None:
    r"""Check ``fn(mu, sigma2, p)``, which returns the scale error :math:`k` of a BatchNorm layer directly
    after inverted dropout with drop probability ``p`` (chapter 6 exercises).

    :math:`k = \sqrt{\operatorname{Var}_\text{train}/\operatorname{Var}_\text{test}}`, so that the
    test-time normalized output has standard deviation :math:`1/k`. Wrong answers recognized: the
    variance ratio :math:`k^2`, the output scale :math:`1/k`, :math:`\sqrt{1/q}` (mean ignored),
    and the keep probability used as ``p``.
    """
    what = "your scale_error"
    derived = _derived()
    k_exact = sp.lambdify((derived.mean, derived.sigma2, derivations.keep_rate), derived.scale_error)
    answers, truths = [], []
    for mu, s2, p in SCALE_ERROR_POINTS:
        value = call_student(fn, mu, s2, p, what=what)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckFailed(f"{what} should return a number, got {type(value).__name__}")
        answers.append(float(value))
        truths.append(float(k_exact(mu, s2, 1 - p)))
    if all(math.isclose(a, t, rel_tol=1e-6) for a, t in zip(answers, truths)):
        passed(f"k = sqrt(1/q + mu**2*(1-q)/(q*sigma2)), {truths[1]:.3f} at mu=sigma2=1, p=0.5")
        return
    candidates = {
        "that is k², the ratio of the variances; k is its square root (a ratio of standard deviations)":
            [t**2 for t in truths],
        "that is 1/k, the factor by which BatchNorm's test-time output is scaled; k itself is above 1":
            [1 / t for t in truths],
        "that is sqrt(1/q), right only for a unit of mean 0; the mean adds μ²(1−q)/(qσ²) to k²":
            [math.sqrt(1 / (1 - p)) for _, _, p in SCALE_ERROR_POINTS],
        "that uses p as the keep probability; p is the drop probability, q = 1 − p":
            [float(k_exact(m, s, p)) for m, s, p in SCALE_ERROR_POINTS],
    }
    for message, values in candidates.items():
        if all(math.isclose(a, v, rel_tol=1e-6) for a, v in zip(answers, values)):
            raise CheckFailed(message)
    (m, s, p), a, t = next(((pt, a, t) for pt, a, t in zip(SCALE_ERROR_POINTS, answers, truths)
                            if not math.isclose(a, t, rel_tol=1e-6)))
    raise CheckFailed(f"at mu = {m}, sigma2 = {s}, p = {p} you give k = {a:.4g}, but k = {t:.4g}")


# --------------------------------------------------------------------------------------------
# exercise 3: recalibrate BatchNorm


def recalibration_exercise_model(seed: int = 0) -> tuple[nn.Module, list[torch.Tensor]]:
    """The network and batches of the recalibration exercise (chapter 6 exercises): an MLP with
    dropout in front of its second BatchNorm layer, whose running statistics were accumulated in
    training mode, and 8 batches of 128 inputs."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                        nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    batches = [torch.randn(128, 8, generator=g) + 0.5 for _ in range(8)]
    with torch.no_grad():
        for bn in (net[1], net[5]):
            bn.momentum = None
        net.train()
        for x in batches:
            net(x)
        for bn in (net[1], net[5]):
            bn.momentum = 0.1
    return net, batches


def _stats(net):
    return [(m.running_mean.clone(), m.running_var.clone()) for m in net.modules() if isinstance(m, _BatchNorm)]


def check_recalibration(fn) -> None:
    """Check ``fn(model, batches)``, which must recompute the running statistics of every BatchNorm
    layer of ``model`` with dropout off, as the plain average over ``batches``, and leave the model's
    modes, momenta and parameters as they were (chapter 6 exercises).

    Compares with :func:`~dropoutbook.recalibrate_batchnorm` and names the usual mistakes: dropout on
    during the pass, the default momentum kept, statistics not reset, BatchNorm not in training
    mode, modes not restored.
    """
    what = "your recalibration"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        passed(_check_recalibration(fn, what))


def _statistics_pass(net: nn.Module, batches, *, reset: bool, momentum) -> nn.Module:
    """A copy of ``net`` after a statistics pass with dropout off, with or without reset, at ``momentum``."""
    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _BatchNorm):
                if reset:
                    m.reset_running_stats()
                m.momentum = momentum
                m.train()
        for x in batches:
            net(x)
    return net


def _close(a, b) -> bool:
    return all(torch.allclose(x[1], y[1], rtol=1e-4) and torch.allclose(x[0], y[0], rtol=1e-4, atol=1e-6)
               for x, y in zip(_stats(a), _stats(b)))


def _check_recalibration(fn, what: str) -> str:
    for start_mode in ("eval", "train"):
        net, batches = recalibration_exercise_model()
        net.train(start_mode == "train")
        original = copy.deepcopy(net)
        reference = recalibrate_batchnorm(copy.deepcopy(net), batches)
        before = {name: m.training for name, m in net.named_modules()}
        params = [p.detach().clone() for p in net.parameters()]
        call_student(fn, net, batches, what=what)
        after = {name: m.training for name, m in net.named_modules()}
        changed = [n or "the model" for n in before if before[n] != after[n]]
        if changed:
            raise CheckFailed(f"the model started in {start_mode} mode and your function left the modes of "
                              f"{changed} changed; remember every module's mode and restore it at the end")
        if not all(torch.equal(a, b) for a, b in zip(params, net.parameters())):
            raise CheckFailed("the parameters changed: recalibration only recomputes running statistics "
                              "(no optimizer step, no gradients)")
        for name, m in net.named_modules():
            if isinstance(m, _BatchNorm) and m.momentum != 0.1:
                raise CheckFailed(f"BatchNorm layer {name} has momentum {m.momentum} afterwards; "
                                  "set it back to its old value (0.1)")
        if _close(net, reference):
            continue
        if _close(net, original):
            raise CheckFailed("the running statistics did not change: BatchNorm layers update them only in "
                              "training mode, so put the BatchNorm layers (and only them) in train mode")
        if all(torch.equal(v, torch.ones_like(v)) and torch.equal(m, torch.zeros_like(m)) for m, v in _stats(net)):
            raise CheckFailed("the running statistics were reset but not estimated again (mean 0, variance 1): "
                              "BatchNorm layers update them only in training mode, so put the BatchNorm layers "
                              "(and only them) in train mode for the pass")
        if _close(net, _statistics_pass(original, batches, reset=True, momentum=0.1)):
            raise CheckFailed("your running statistics are an exponential average with momentum 0.1, which "
                              "after 8 batches still gives the reset value weight 0.9**8 = 0.43; set "
                              "momentum=None during the pass (a plain average) and restore it afterwards")
        if _close(net, _statistics_pass(original, batches, reset=False, momentum=None)) or \
                _close(net, _statistics_pass(original, batches, reset=False, momentum=0.1)):
            raise CheckFailed("your pass continued the old running statistics: call reset_running_stats() on "
                              "every BatchNorm layer first, so that the shifted training statistics are discarded")
        ratio = measure_variance_shift(net, batches)["5"].mean_ratio
        if ratio > 1.15:
            raise CheckFailed(f"after your recalibration the BatchNorm layer behind dropout still records "
                              f"{ratio:.2f} times the test-time variance: dropout was on during your pass "
                              "(model.train()); put the model in eval mode and only the BatchNorm layers in train mode")
        raise CheckFailed("your running statistics differ from the plain average of the dropout-free batch "
                          f"statistics (variance ratio behind dropout after your pass: {ratio:.3f})")
    return "statistics recomputed with dropout off; modes and momenta restored"


# --------------------------------------------------------------------------------------------
# exercise 4: move dropout behind the last BatchNorm layer


def check_dropout_placement(fn, p: float = 0.3) -> None:
    """Check ``fn(p)``, which must build the digit classifier (64 inputs, 10 outputs) with its three
    BatchNorm layers and dropout of rate ``p`` placed where no BatchNorm layer comes after it
    (chapter 6 exercises).

    The order of the layers is taken from an actual forward pass (forward hooks), so any module
    structure works.
    """
    what = "your build function"
    model = call_student(fn, p, what=what)
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{what} should return a torch.nn.Module, got {type(model).__name__}")
    order: list[tuple[str, nn.Module]] = []
    handles = [m.register_forward_hook(lambda mod, args, out, _n=name: order.append((_n, mod)))
               for name, m in model.named_modules() if name]
    try:
        model.train()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            x = torch.randn(16, 64, dtype=next(model.parameters()).dtype)
            out = model(x)
    except Exception as exc:
        raise CheckFailed(f"the model did not run on a batch of shape (16, 64): {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.shape != (16, 10):
        raise CheckFailed(f"the model should map (16, 64) inputs to (16, 10) logits, got {getattr(out, 'shape', out)}")
    norms = [(i, n) for i, (n, m) in enumerate(order) if isinstance(m, _BatchNorm)]
    drops = [(i, n, m) for i, (n, m) in enumerate(order) if isinstance(m, nn.Dropout)]
    if any(isinstance(m, nn.LayerNorm) for _, m in order) or len(norms) != 3:
        raise CheckFailed(f"keep the three BatchNorm layers (found {len(norms)}); the exercise is about where "
                          "dropout goes, not about removing or replacing the normalization")
    if not drops:
        raise CheckFailed("there is no dropout left; keep dropout with rate p, but behind the last BatchNorm layer")
    for _, name, m in drops:
        if not math.isclose(m.p, p):
            raise CheckFailed(f"dropout {name} has rate {m.p}; use the rate p = {p} that build receives")
    last_norm = norms[-1][0]
    early = [name for i, name, _ in drops if i < last_norm]
    if early:
        raise CheckFailed(f"dropout {early} still runs before the BatchNorm layer {norms[-1][1]}: its running "
                          "variance would learn the dropout noise. Put dropout after the last BatchNorm layer")
    if isinstance(order[-1][1], nn.Dropout):
        raise CheckFailed("dropout is the last layer, so it drops logits; put it before the final Linear layer")
    passed(f"{len(drops)} dropout layer(s) of rate {p}, all after the last BatchNorm layer")
