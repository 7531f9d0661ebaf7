"""Checkers for the exercises of chapter 6, "Dropout and BatchNorm: the variance shift".

Each checker prints one "Correct: ..." line or raises :class:`CheckFailed` with a message that
says what is wrong (for example, "dropout was on during your statistics pass").
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math

import sympy as sp
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .. import derivations
from .._validation import check_probability
from .. import selu
from ..batchnorm import measure_variance_shift, recalibrate_batchnorm
from ._core import (
    _SHIFT, CheckFailed, _as_output, _derivation_calls, _drawn_rates, _forbidden, _library_forbidden,
    _not_following_message, _patched, _real_number, _shifted_masks, _student_symbols, _typed_message, call_student,
    passed,
)

__all__ = [
    "check_train_variance", "check_scale_error", "check_recalibration", "check_dropout_placement",
    "recalibration_exercise_model", "SCALE_ERROR_POINTS", "check_alpha_dropout",
]


# --------------------------------------------------------------------------------------------
# exercise 1: derive the training-time variance


@functools.lru_cache(maxsize=1)
def _derived():
    """The chapter's derivation, computed once (sympy takes about half a second)."""
    return derivations.variance_shift()


def check_train_variance(fn) -> None:
    r"""Check ``fn()``, which computes :math:`\operatorname{Var}[\tilde x]` for inverted dropout directly
    before BatchNorm with :func:`~dropoutbook.derivations.expectation` (or
    :func:`~dropoutbook.derivations.variance`) and returns it as a sympy expression in ``mu``,
    ``sigma2`` and ``q`` (chapter 6 exercises).

    An answer typed in without calling those functions fails, and so does one that does not follow
    the mask distribution it passes to them (the checker runs ``fn`` a second time with every
    Bernoulli(k) mask drawn as Bernoulli(k/2): a typed answer next to an irrelevant call stays put). Recognizes the usual wrong answers
    (the mean term forgotten, :math:`\mathbb E[\tilde x^2]` instead of the variance, a missing
    :math:`1/q`, the mask drawn as Bernoulli(1 - q), drop and keep swapped, standard dropout, the
    noise left out) and names the mistake.
    """
    what = "your derivation"
    with _derivation_calls() as calls:
        expr = call_student(fn, what=what)
    mu, s2, q = sp.symbols("mu sigma2 q")
    expr = _student_symbols(expr, {"mu": mu, "sigma2": s2, "sigma^2": s2, "q": q}, what)
    if not calls:
        raise CheckFailed(_typed_message(what, "derivations.expectation or derivations.variance"))
    derived = _derived()
    truth = derived.train_variance.subs({derived.mean: mu, derived.sigma2: s2, derivations.keep_rate: q})
    points = [(0.7, 1.3, 0.8), (-1.5, 0.4, 0.35), (2.0, 2.5, 0.6)]

    def value(e, pt):
        return float(e.subs({mu: pt[0], s2: pt[1], q: pt[2]}))

    def same(a, b):
        return all(math.isclose(value(a, pt), value(b, pt), rel_tol=1e-9, abs_tol=1e-12) for pt in points)

    if same(expr, truth):
        with _shifted_masks():
            moved = _student_symbols(call_student(fn, what=what), {"mu": mu, "sigma2": s2, "sigma^2": s2, "q": q},
                                     what)
        m, eps = sp.symbols("m varepsilon")
        shifted = derivations.variance(m * (mu + eps) / q, {m: derivations.Bernoulli(q * _SHIFT),
                                                            eps: derivations.ZeroMeanNoise(s2)})
        if not same(moved, shifted):
            raise CheckFailed(_not_following_message(what))
        passed("Var[x~] = sigma2/q + mu**2*(1 - q)/q")
        return
    mistakes = [
        (s2 / q, "that is only the noise σ²/q; the mask also adds noise to the mean: "
                 "E[x̃²] = (σ² + μ²)/q, so Var[x̃] = (σ² + μ²)/q − μ²"),
        (mu**2 * (1 - q) / q, "that leaves out the noise ε: the unit is x = μ + ε, so its variance σ² "
                              "enters too"),
        ((s2 + mu**2) / q, "that is E[x̃²]; the variance is E[x̃²] − E[x̃]², and E[x̃] = μ"),
        (s2 / q + mu**2 * (1 - q), "the mean term lacks its 1/q: E[x̃²] = (σ² + μ²)/q, so it is μ²(1−q)/q"),
        ((1 - q) * (s2 + mu**2) / q**2 - (1 - q) ** 2 * mu**2 / q**2,
         "your mask keeps with probability 1 − q (m ~ Bernoulli(1 - q)); q is the keep probability: "
         "m ~ Bernoulli(q), and x̃ = m·x/q"),
        (s2 / (1 - q) + mu**2 * q / (1 - q), "that treats q as the drop probability; q is the keep "
                                             "probability, m ~ Bernoulli(q), and x̃ = m·x/q"),
        (q * s2 + q * (1 - q) * mu**2, "that is standard dropout m·x; inverted dropout divides by q"),
        (s2 / q**2 + mu**2 * (1 - q) / q**2, "E[(m/q)²] = q/q² = 1/q: one factor q cancels"),
    ]
    for wrong, message in mistakes:
        if same(expr, wrong):
            raise CheckFailed(message)
    pt = next(pt for pt in points if not math.isclose(value(expr, pt), value(truth, pt), rel_tol=1e-9, abs_tol=1e-12))
    raise CheckFailed(f"at mu = {pt[0]}, sigma2 = {pt[1]}, q = {pt[2]} your expression gives {value(expr, pt):.4g}, "
                      f"but Var[x̃] is {value(truth, pt):.4g} there")


# --------------------------------------------------------------------------------------------
# exercise 2: predict the scale error k

#: (mu, sigma2, p) settings at which :func:`~dropoutbook.exercises.check_scale_error` evaluates the
#: student's k (it adds four settings of its own, the same on every call).
SCALE_ERROR_POINTS = ((0.0, 1.0, 0.3), (1.0, 1.0, 0.5), (2.0, 0.5, 0.2), (-1.0, 3.0, 0.6))


def check_scale_error(fn) -> None:
    r"""Check ``fn(mu, sigma2, p)``, which returns the scale error :math:`k` of a BatchNorm layer directly
    after inverted dropout with drop probability ``p`` (chapter 6 exercises).

    :math:`k = \sqrt{\operatorname{Var}_\text{train}/\operatorname{Var}_\text{test}}`, so that the
    test-time normalized output has standard deviation :math:`1/k`. The answer is evaluated at
    :data:`~dropoutbook.exercises.ch06.SCALE_ERROR_POINTS` and at four settings drawn by the checker's own seeded generator;
    any real number type is accepted. Wrong answers recognized: the variance ratio :math:`k^2`,
    the output scale :math:`1/k`, :math:`\sqrt{1/q}` (mean ignored), and the keep probability
    used as ``p``.
    """
    what = "your scale_error"
    mus, s2s, ps = (_drawn_rates([r] * 4, seed=60 + i) for i, r in enumerate([(-2.0, 2.0), (0.2, 3.0), (0.05, 0.8)]))
    points = [*SCALE_ERROR_POINTS, *zip(mus, s2s, ps)]
    derived = _derived()
    k_exact = sp.lambdify((derived.mean, derived.sigma2, derivations.keep_rate), derived.scale_error)
    answers, truths = [], []
    for mu, s2, p in points:
        value = call_student(fn, mu, s2, p, what=what)
        answers.append(_real_number(value, f"{what}({mu}, {s2}, {p})"))
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
            [math.sqrt(1 / (1 - p)) for _, _, p in points],
        "that uses p as the keep probability; p is the drop probability, q = 1 − p":
            [float(k_exact(m, s, p)) for m, s, p in points],
    }
    for message, values in candidates.items():
        if all(math.isclose(a, v, rel_tol=1e-6) for a, v in zip(answers, values)):
            raise CheckFailed(message)
    (m, s, p), a, t = next(((pt, a, t) for pt, a, t in zip(points, answers, truths)
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
    """The running statistics of ``a`` and ``b`` agree to rounding (a replay of a known mistake)."""
    return all(torch.allclose(x[1], y[1], rtol=1e-4) and torch.allclose(x[0], y[0], rtol=1e-4, atol=1e-6)
               for x, y in zip(_stats(a), _stats(b)))


#: How far a recalibration may be from the plain average of the per-batch statistics: the exact
#: pooled statistics of the 1024 inputs (biased or not), or batch statistics taken with a later
#: layer normalized by running rather than batch statistics, differ from it by up to 2 % in the
#: variance; the known mistakes differ by 40 % or more.
_MEAN_TOL, _VAR_TOL = 0.03, 0.05


def _recalibrated(net, reference) -> bool:
    for (m1, v1), (m2, v2) in zip(_stats(net), _stats(reference)):
        if not (torch.isfinite(m1).all() and torch.isfinite(v1).all()):
            return False
        if ((m1 - m2).abs() / v2.sqrt()).max().item() > _MEAN_TOL or ((v1 / v2) - 1).abs().max().item() > _VAR_TOL:
            return False
    return True


def _hook_counts(module: nn.Module) -> tuple[int, int]:
    return len(module._forward_hooks), len(module._forward_pre_hooks)


def _mixed_setup(net: nn.Module, g: torch.Generator) -> None:
    """Give every module its own training flag (the model and its dropout disagree, the BatchNorm
    layers too) and every BatchNorm layer a momentum other than the default, some None."""
    flags = torch.rand(len(list(net.modules())), generator=g) < 0.5
    for m, flag in zip(net.modules(), flags.tolist()):
        m.training = flag
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    net.training, net[3].training = not net.training, net.training  # the top level and dropout differ
    norms[0].training, norms[1].training = True, False
    for i, m in enumerate(norms):
        m.momentum = None if torch.rand((), generator=g).item() < 0.3 else round(0.02 + 0.4 * torch.rand(
            (), generator=g).item(), 3)
    if all(m.momentum is None for m in norms):
        norms[0].momentum = 0.25


def check_recalibration(fn) -> None:
    """Check ``fn(model, batches)``, which must recompute the running statistics of every BatchNorm
    layer of ``model`` with dropout off, as the plain average over ``batches``, and leave the model's
    modes, momenta and parameters as they were (chapter 6 exercises).

    The model comes with mixed training flags (the model, its dropout and its BatchNorm layers do
    not all agree) and momenta other than the default 0.1, drawn by the checker's own seeded
    generator, so restoring only the top-level mode or a hard-coded momentum fails. The statistics
    are compared with :func:`~dropoutbook.recalibrate_batchnorm` (2 % of the variance and 3 % of a
    standard deviation in the mean: the exact pooled statistics pass too), and the usual mistakes
    are named: dropout on during the pass, the default momentum kept, statistics not reset,
    BatchNorm not in training mode, modes or momenta not restored, a layer left with its old
    statistics, hooks left registered, ``requires_grad`` changed.
    """
    what = "your recalibration"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        passed(_check_recalibration(fn, what))


def _check_recalibration(fn, what: str) -> str:
    g = torch.Generator().manual_seed(6)
    for _ in range(2):
        net, batches = recalibration_exercise_model()
        _mixed_setup(net, g)
        original = copy.deepcopy(net)
        reference = recalibrate_batchnorm(copy.deepcopy(net), batches)
        before = {name: m.training for name, m in net.named_modules()}
        momenta = {name: m.momentum for name, m in net.named_modules() if isinstance(m, _BatchNorm)}
        settings = {name: (m.eps, m.affine, m.track_running_stats) for name, m in net.named_modules()
                    if isinstance(m, _BatchNorm)}
        hooks = {name: _hook_counts(m) for name, m in net.named_modules()}
        grads = [t.requires_grad for t in net.parameters()]
        params = [p.detach().clone() for p in net.parameters()]
        call_student(fn, net, batches, what=what)
        after = {name: m.training for name, m in net.named_modules()}
        changed = [n or "the model" for n in before if before[n] != after[n]]
        if changed:
            shown = ", ".join(f"{n or 'the model'}: {'train' if t else 'eval'}" for n, t in before.items())
            if len(set(after.values())) == 1:
                raise CheckFailed(f"the modules started in mixed modes ({shown}) and your function left them all in "
                                  f"{'train' if after[''] else 'eval'} mode: model.train(...) and model.eval() set "
                                  "every submodule to one mode. Remember each module's own flag, e.g. "
                                  "{m: m.training for m in model.modules()}, and restore each one")
            raise CheckFailed(f"your function left the modes of {changed} changed (they started as {shown}); "
                              "remember every module's mode and restore it at the end")
        if not all(torch.equal(a, b) for a, b in zip(params, net.parameters())):
            raise CheckFailed("the parameters changed: recalibration only recomputes running statistics "
                              "(no optimizer step, no gradients)")
        for name, m in net.named_modules():
            if isinstance(m, _BatchNorm) and m.momentum != momenta[name]:
                raise CheckFailed(f"BatchNorm layer {name} has momentum {m.momentum} afterwards, but it had "
                                  f"{momenta[name]} before: remember each layer's own momentum and restore it "
                                  "(it need not be the default 0.1)")
        for name, m in net.named_modules():
            if isinstance(m, _BatchNorm) and (m.eps, m.affine, m.track_running_stats) != settings[name]:
                raise CheckFailed(f"BatchNorm layer {name} has (eps, affine, track_running_stats) = "
                                  f"{(m.eps, m.affine, m.track_running_stats)} afterwards, but had {settings[name]}: "
                                  "recalibration changes only the running statistics")
        if {name: _hook_counts(m) for name, m in net.named_modules()} != hooks:
            raise CheckFailed("your function left hooks registered on the model (or removed some): remove every hook "
                              "you register (handle.remove()), also when the pass fails")
        if [t.requires_grad for t in net.parameters()] != grads:
            raise CheckFailed("your function changed requires_grad of the parameters: use torch.no_grad() for the "
                              "pass instead, which leaves the parameters as they were")
        if _recalibrated(net, reference):
            continue
        if _close(net, original):
            raise CheckFailed("the running statistics did not change (the layer behind dropout, '5', still has its "
                              "shifted ones): BatchNorm layers update them only in training mode, so put every "
                              "BatchNorm layer (and only them) in train mode for the pass")
        norms = [(n, m) for n, m in net.named_modules() if isinstance(m, _BatchNorm)]
        stale = [name for (name, m), (m0, v0), (_, v_ref) in zip(norms, _stats(original), _stats(reference))
                 if torch.equal(m.running_mean, m0) and torch.equal(m.running_var, v0)
                 and ((v0 / v_ref) - 1).abs().max().item() > _VAR_TOL]  # unchanged, and wrong
        if stale:
            raise CheckFailed(f"the BatchNorm layer(s) {stale} kept their old running statistics: recompute the "
                              "statistics of every BatchNorm layer: reset each one and put every BatchNorm layer (and "
                              "only them) in train mode for the pass")
        if all(torch.equal(v, torch.ones_like(v)) and torch.equal(m, torch.zeros_like(m)) for m, v in _stats(net)):
            raise CheckFailed("the running statistics were reset but not estimated again (mean 0, variance 1): "
                              "BatchNorm layers update them only in training mode, so put the BatchNorm layers "
                              "(and only them) in train mode for the pass")
        if any(_close(net, _statistics_pass(original, batches, reset=True, momentum=mom))
               for mom in {0.1, *(v for v in momenta.values() if v is not None)}):
            raise CheckFailed("your running statistics are an exponential average with a momentum, which after "
                              "8 batches still gives the reset value a large weight (0.9**8 = 0.43 for momentum "
                              "0.1); set momentum=None during the pass (a plain average) and restore it afterwards")
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


def _argument(args, kwargs, index: int, name: str, default):
    return args[index] if len(args) > index else kwargs.get(name, default)


#: The functional dropouts whose calls the placement check records, with the default of ``training``.
_DROPOUTS = {"dropout": True, "dropout1d": True, "dropout2d": True, "alpha_dropout": False}


def _forward_events(model: nn.Module, x: torch.Tensor, train: bool = True) -> tuple[list, object]:
    """Run ``model(x)`` in training mode (or eval mode) and record, in order, every call of ``F.batch_norm``,
    ``F.layer_norm``, the functional dropouts and ``F.linear`` (so modules and functional calls
    alike count), each with the name of the innermost module that made it."""
    events: list = []
    stack: list[str] = []
    originals = {name: getattr(F, name) for name in ("batch_norm", "layer_norm", "linear", *_DROPOUTS)}

    def recorder(kind):
        def record(*args, **kwargs):
            where = stack[-1] if stack else ""
            if kind in _DROPOUTS:
                events.append(("dropout", where, float(_argument(args, kwargs, 1, "p", 0.5)),
                               bool(_argument(args, kwargs, 2, "training", _DROPOUTS[kind])), kind))
            elif kind == "linear":
                events.append((kind, where, tuple(_argument(args, kwargs, 1, "weight", None).shape), None))
            else:
                events.append((kind, where, None, None))
            return originals[kind](*args, **kwargs)
        return record

    def enter(name):
        def hook(module, args):
            stack.append(name)
        return hook

    def leave(module, args, out):
        stack.pop()

    handles = []
    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(enter(name)))
        handles.append(m.register_forward_hook(leave))
    try:
        with contextlib.ExitStack() as patches:
            for name in originals:
                patches.enter_context(_patched(F, name, recorder(name)))
            model.train(train)
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(0)
                out = call_student(model, x, what="your model")
    finally:
        for h in handles:
            h.remove()
    return events, out


def check_dropout_placement(fn, *, p: float = 0.3) -> None:
    """Check ``fn(p)``, which must build the digit classifier (64 inputs, 10 outputs) with its three
    BatchNorm layers and dropout of rate ``p`` placed where no BatchNorm layer comes after it
    (chapter 6 exercises).

    ``fn`` is called with ``p`` and with two more rates drawn by the checker's own seeded generator,
    so a hard-coded rate fails. The order of the operations is taken from an actual forward pass in
    training mode (every call of BatchNorm, dropout and linear layers is recorded, ``nn.Dropout``
    modules and ``F.dropout`` calls alike), so any module structure works; a channel dropout
    (``nn.Dropout1d``/``nn.Dropout2d``), other layer widths, and dropout that stays on in eval mode
    (``F.dropout`` without ``training=self.training``) fail.
    """
    p = check_probability(p, "p", allow_zero=False, allow_one=False)
    what = "your build function"
    rates = [p, *_drawn_rates([(0.1, 0.25), (0.35, 0.48)], seed=64)]  # never the default 0.3
    counts = {_check_placement(fn, rate, what) for rate in rates}
    passed(f"{'/'.join(map(str, sorted(counts)))} dropout layer(s) of rate p, all after the last BatchNorm layer "
           f"(p = {', '.join(f'{r:g}' for r in rates)})")


def _check_placement(fn, p: float, what: str) -> int:
    model = call_student(fn, p, what=what)
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{what} should return a torch.nn.Module, got {type(model).__name__}")
    dtype = next((t.dtype for t in model.parameters() if t.is_floating_point()), torch.float32)
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0), dtype=dtype)
    try:
        events, out = _forward_events(model, x)
    except CheckFailed as exc:
        raise CheckFailed(f"the model did not run on a batch of shape (16, 64): {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.shape != (16, 10):
        raise CheckFailed(f"the model should map (16, 64) inputs to (16, 10) logits, got {getattr(out, 'shape', out)}")
    norms = [i for i, ev in enumerate(events) if ev[0] == "batch_norm"]
    drops = [(i, ev) for i, ev in enumerate(events) if ev[0] == "dropout"]
    if any(ev[0] == "layer_norm" for ev in events) or len(norms) != 3:
        raise CheckFailed(f"keep the three BatchNorm layers (found {len(norms)}); the exercise is about where "
                          "dropout goes, not about removing or replacing the normalization")
    if not drops:
        raise CheckFailed("there is no dropout left; keep dropout with rate p, but behind the last BatchNorm layer")
    widths = [ev[2] for ev in events if ev[0] == "linear"]
    if widths != [(64, 64), (64, 64), (64, 64), (10, 64)]:
        raise CheckFailed(f"the linear layers have the weight shapes {widths}; the exercise keeps the network: three "
                          "hidden layers Linear(64, 64) and the output layer Linear(64, 10)")
    for _, (_, where, rate, training, kind) in drops:
        name = f"dropout {where!r}" if where else "the dropout in your forward"
        if not math.isclose(rate, p):
            raise CheckFailed(f"{name} has rate {rate:g}, but build was called with p = {p:g}: use the rate p "
                              "that build receives (the checker tries several)")
        if not training:
            raise CheckFailed(f"{name} is called with training=False in training mode; pass the module's "
                              "self.training so that it is on in training")
        if kind in ("dropout1d", "dropout2d"):
            raise CheckFailed(f"{name} is a channel dropout ({kind}): on the (N, 64) features it drops whole "
                              "samples or channels together. Use nn.Dropout(p) (F.dropout), one draw per unit")
    last_norm = norms[-1]
    early = [ev[1] or "in your forward" for i, ev in drops if i < last_norm]
    if early:
        raise CheckFailed(f"dropout {early} still runs before the last BatchNorm layer "
                          f"{events[last_norm][1] or ''}: its running variance would learn the dropout noise. "
                          "Put dropout after the last BatchNorm layer")
    if not any(ev[0] == "linear" for ev in events[drops[-1][0]:]):
        raise CheckFailed("dropout is the last layer, so it drops logits; put it before the final Linear layer")
    on_in_eval = [ev[1] or "in your forward" for ev in _forward_events(model, x, train=False)[0]
                  if ev[0] == "dropout" and ev[3]]
    if on_in_eval:
        raise CheckFailed(f"dropout {on_in_eval} is still on in eval mode: F.dropout's training argument defaults to "
                          "True; pass training=self.training (or use nn.Dropout) so that it is off at test time")
    return len(drops)



# --------------------------------------------------------------------------------------------
# exercise 5: implement AlphaDropout


def _alpha_coefficients(q: float, saturation: float) -> tuple[float, float]:
    """(a, b) of AlphaDropout for keep probability ``q`` and dropped value ``saturation`` (chapter 6, eq-alpha-dropout)."""
    a = (q + saturation**2 * q * (1 - q)) ** -0.5
    return a, -a * (1 - q) * saturation


def _alpha_mistakes(p: float) -> list[tuple[tuple[float, float, float], str]]:
    """(a, b, dropped value) of the usual wrong AlphaDropouts, each with its hint."""
    q, sat = 1 - p, selu.SELU_SATURATION
    a, b = _alpha_coefficients(q, sat)
    a_swap, b_swap = _alpha_coefficients(p, sat)
    a_m2 = (q + sat**2 * (1 - q)) ** -0.5
    a_alpha, b_alpha = _alpha_coefficients(q, -selu.SELU_ALPHA)
    return [
        ((1.0, 0.0, sat), "there is no affine correction (a = 1, b = 0): dropping to α' moves the mean to (1−q)α' and "
                          "changes the variance; apply y = a·x̃ + b with a = (q + α'²q(1−q))^(-1/2), b = −a(1−q)α'"),
        ((a_swap, b_swap, a_swap * sat + b_swap), "your a and b use the drop probability where the keep probability "
                                                  "q = 1 − p belongs (q and 1 − q swapped)"),
        ((a_m2, -a_m2 * (1 - q) * sat, a_m2 * q * sat),
         "your a comes from the second moment q + (1−q)α'² of x̃; the variance is E[x̃²] − E[x̃]² = q + α'²q(1−q)"),
        ((a_alpha, b_alpha, a_alpha * q * -selu.SELU_ALPHA), "dropped units go to α' = −λα ≈ −1.758, SELU's negative "
                                                             "saturation; you used −α (the λ is missing)"),
        ((a, b, sat), "the affine map applies to the dropped units too: they become a·α' + b, not α'"),
        ((a, b, b), "a dropped unit is set to α' = −λα before the affine map; yours was set to 0 (it came out as b)"),
        ((a * a, -a * a * (1 - q) * sat, a * a * q * sat),
         "your a is 1/Var[x̃], not 1/sqrt(Var[x̃]): scaling by a multiplies the variance by a², so "
         "a = (q + α'²q(1−q))^(-1/2) (the square root is missing)"),
        ((q ** -0.5, -(q ** -0.5) * (1 - q) * sat, q ** 0.5 * sat),
         "your a = 1/sqrt(q) is inverted dropout's correction; the dropped units also add variance: "
         "Var[x̃] = q + α'²q(1−q), so a = (q + α'²q(1−q))^(-1/2)"),
        (((1 + sat**2 * q * (1 - q)) ** -0.5, -((1 + sat**2 * q * (1 - q)) ** -0.5) * (1 - q) * sat,
          (1 + sat**2 * q * (1 - q)) ** -0.5 * q * sat),
         "your Var[x̃] uses Var[m·x] = 1; for a standard-normal x, E[(m x)²] = q, so Var[x̃] = q + α'²q(1−q)"),
        ((a, -b, a * sat - b), "your b has the wrong sign: E[a·x̃ + b] = a(1−q)α' + b = 0 gives b = −a(1−q)α' "
                               "(positive, since α' < 0)"),
        ((a, -(1 - q) * sat, a * sat - (1 - q) * sat),
         "your b = −(1−q)α' lacks the factor a: the mean a(1−q)α' of a·x̃ is cancelled by b = −a(1−q)α'"),
        ((a, -b, -a * q * sat), "your α' has the wrong sign: SELU saturates at α' = −λα ≈ −1.758, a negative value"),
        ((a, b, -a * sat + b), "your dropped units are set to +λα before the affine map; SELU's saturation is "
                               "α' = −λα ≈ −1.758, a negative value"),
    ]


def _close_to(values, target, tol) -> bool:
    return all(math.isclose(v, t, rel_tol=tol, abs_tol=tol) for v, t in zip(values, target))


def _alpha_analysis(x: torch.Tensor, out: torch.Tensor, p: float, what: str):
    """Split ``out`` into dropped entries (one repeated value) and kept ones (an affine function of ``x``)."""
    values, counts = torch.unique(out, return_counts=True)
    if counts.max().item() < 2:
        raise CheckFailed(f"{what} dropped no unit (no output value repeats) at p = {p}: every dropped unit takes "
                          "the same value, a·α' + b")
    dropped_value = values[counts.argmax()].item()
    dropped = out == dropped_value
    kept = ~dropped
    xs, ys = x.to(torch.float64)[kept], out[kept]
    if xs.numel() < 2:
        raise CheckFailed(f"{what} dropped (almost) every unit at p = {p}")
    a = (((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum()).item()
    b = (ys.mean() - a * xs.mean()).item()
    residual = (ys - (a * xs + b)).abs().max().item()
    return dropped, a, b, dropped_value, residual


def check_alpha_dropout(fn) -> None:
    r"""Check ``fn(x, p)``, a from-scratch AlphaDropout in training mode (chapter 6 exercises).

    Each entry must be dropped with probability ``p``, independently, to :math:`\alpha' = -\lambda\alpha`
    and then every entry mapped by :math:`a\tilde x + b` with :math:`a = (q + \alpha'^2 q(1-q))^{-1/2}`,
    :math:`b = -a(1-q)\alpha'`. The checker calls ``fn`` on 1-D, 2-D and 4-D standard-normal inputs (float64
    and float32) at several rates, reads the dropped value and the affine map off the output, and names
    the usual mistakes: no affine correction, q and 1 − q swapped, :math:`a` from the second moment,
    :math:`-\alpha` instead of :math:`-\lambda\alpha`, dropped units left at :math:`\alpha'` or set to 0, drop
    and keep swapped, :math:`a` without its square root or equal to inverted dropout's :math:`1/\sqrt q`,
    :math:`b` with the wrong sign or without the factor :math:`a`, :math:`\alpha'` with the wrong sign, the
    :math:`a, b` of another (hard-coded) rate, one mask shared by the rows, the features or the channels or by
    every call, the input changed in place. ``torch.nn.functional.alpha_dropout`` (and its feature and
    in-place forms, also through ``torch`` and ``torch._VF``) and ``dropoutbook.selu`` are forbidden.
    """
    what = "your alpha_dropout"
    hint = "write AlphaDropout from torch.rand and arithmetic"
    rates = _drawn_rates([(0.08, 0.15), (0.2, 0.3), (0.32, 0.42)], seed=66)
    shapes = [(6000,), (60, 100), (4, 3, 20, 25)]
    with torch.random.fork_rng(devices=[]), contextlib.ExitStack() as stack:
        torch.manual_seed(16)
        stack.enter_context(_patched(F, "alpha_dropout", _forbidden("torch.nn.functional.alpha_dropout", hint)))
        stack.enter_context(_patched(torch, "alpha_dropout", _forbidden("torch.alpha_dropout", hint)))
        stack.enter_context(_patched(F, "feature_alpha_dropout",
                                     _forbidden("torch.nn.functional.feature_alpha_dropout", hint)))
        for name in ("feature_alpha_dropout", "alpha_dropout_", "feature_alpha_dropout_"):
            stack.enter_context(_patched(torch, name, _forbidden(f"torch.{name}", hint)))
        for name in ("alpha_dropout", "feature_alpha_dropout", "alpha_dropout_", "feature_alpha_dropout_"):
            stack.enter_context(_patched(torch._VF, name, _forbidden(f"torch._VF.{name}", hint)))
        stack.enter_context(_library_forbidden(selu, hint))
        g = torch.Generator().manual_seed(17)
        patterns = []
        for shape, p, dtype in [(shapes[0], rates[0], torch.float64), (shapes[1], rates[1], torch.float64),
                                (shapes[2], rates[2], torch.float64), (shapes[1], rates[0], torch.float32),
                                (shapes[1], rates[1], torch.float64)]:
            x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
            before = x.clone()
            raw = call_student(fn, x, p, what=what)
            if not torch.equal(x, before):
                raise CheckFailed(f"{what} changed its input x in place; return a new tensor and leave x as it was")
            out = _as_output(raw, x, what)
            if raw.dtype != x.dtype:
                raise CheckFailed(f"{what} returned dtype {raw.dtype} for an input of dtype {x.dtype}; keep the input's dtype")
            dropped, a, b, c, residual = _alpha_analysis(x, out, p, what)
            tol = 1e-9 if dtype == torch.float64 else 2e-5
            scale = 1 + abs(a) + abs(b)
            if residual > 1e3 * tol * scale:
                raise CheckFailed(f"at p = {p} the kept units are not an affine function a·x + b of the input "
                                  f"(largest deviation {residual:.3g}): a kept unit becomes a·x + b, with the same "
                                  "a and b for every entry")
            if dropped.dim() >= 2 and all(torch.equal(dropped[0], row) for row in dropped[1:]):
                raise CheckFailed(f"{what} uses one mask for every row of the batch (shape {tuple(x.shape)}): draw an "
                                  "independent mask entry for every element, torch.rand(x.shape)")
            for d in range(1, dropped.dim()):
                if dropped.shape[d] > 1 and torch.equal(dropped, dropped.narrow(d, 0, 1).expand_as(dropped)):
                    raise CheckFailed(f"{what} uses one mask entry for all {dropped.shape[d]} entries along dimension "
                                      f"{d} of an input of shape {tuple(x.shape)} (e.g. one per row or per channel): "
                                      "draw an independent mask entry for every element, torch.rand(x.shape)")
            frac, n = dropped.double().mean().item(), dropped.numel()
            se = math.sqrt(p * (1 - p) / n)
            if abs(frac - (1 - p)) < 5 * se:
                raise CheckFailed(f"{what} drops a fraction {frac:.3f} of the units at p = {p}: that is 1 − p; p is the "
                                  "drop probability (keep an entry when the uniform is >= p)")
            if abs(frac - p) > 5 * se:
                raise CheckFailed(f"{what} drops a fraction {frac:.3f} of the units at p = {p}, more than 5 standard "
                                  f"errors ({se:.4f}) from p")
            truth = (*_alpha_coefficients(1 - p, selu.SELU_SATURATION),)
            truth = (truth[0], truth[1], truth[0] * (1 - p) * selu.SELU_SATURATION)
            found = (a, b, c)
            if not _close_to(found, truth, 1e-6 if dtype == torch.float64 else 1e-4):
                for wrong, message in _alpha_mistakes(p):
                    if _close_to(found, wrong, 1e-6 if dtype == torch.float64 else 1e-4):
                        raise CheckFailed(f"at p = {p}: {message}")
                other_p = -b / (a * selu.SELU_SATURATION) if a != 0 else math.nan
                if 0 < other_p < 1 and abs(other_p - p) > 1e-3:
                    at_other = _alpha_coefficients(1 - other_p, selu.SELU_SATURATION)
                    if _close_to(found, (*at_other, at_other[0] * (1 - other_p) * selu.SELU_SATURATION),
                                 1e-6 if dtype == torch.float64 else 1e-4):
                        raise CheckFailed(f"at p = {p} your a and b are AlphaDropout's for p = {other_p:.4g}: compute "
                                          "them from the p passed to your function (is a rate hard-coded?)")
                if abs(c) < 1e-12:
                    raise CheckFailed(f"at p = {p} your dropped units are 0: AlphaDropout drops to α' = −λα and then "
                                      "applies a·x̃ + b, so a dropped unit becomes a·α' + b = a·q·α'")
                raise CheckFailed(f"at p = {p} your output is a·x + b with a = {a:.5g}, b = {b:.5g} for kept units and "
                                  f"{c:.5g} for dropped ones; AlphaDropout gives a = {truth[0]:.5g}, b = {truth[1]:.5g} "
                                  f"and {truth[2]:.5g}")
            patterns.append((shape, p, dropped))
        (s1, p1, d1), (s2, p2, d2) = patterns[1], patterns[4]
        if torch.equal(d1, d2):
            raise CheckFailed(f"{what} dropped exactly the same entries on two calls: the mask must be new on every "
                              "call (do not seed the generator inside the function)")
    passed("AlphaDropout: drop to −λα, then a·x̃ + b keeps mean 0 and variance 1")
