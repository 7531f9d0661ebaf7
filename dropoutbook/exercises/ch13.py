"""Checkers for the exercises of chapter 13, "Learning the dropout rate".

Each checker takes the student's function (or class), calls it, and either prints one
"Correct: ..." line or raises :class:`CheckFailed` with a message that says what is wrong, for
example "the temperature multiplies the logit: it divides it".
"""

from __future__ import annotations

import math

import sympy as sp
import torch
from torch import nn

from .. import derivations
from ..uncertainty import mc_dropout
from ._core import CheckFailed, _drawn_rates, _real_number, _reused_draws, _student_symbols, call_student, passed

__all__ = ["check_concrete_mask", "check_concrete_cold_limit", "check_concrete_regularizer",
           "check_learned_rate_dropout"]

_Z = 5.0


def _mean_at(q: float, t: float) -> float:
    return derivations.concrete_mask_distribution().mean_at(q, t)


# --------------------------------------------------------------------------------------------
# exercise 1: sample a relaxed Bernoulli mask


def check_concrete_mask(fn) -> None:
    r"""Check ``fn(shape, q, t, generator=None)``, a sampler of the binary Concrete keep mask (chapter 13 exercises).

    :math:`z = \sigma((\operatorname{logit} q + \log u - \log(1-u))/t)` with keep probability ``q``
    and temperature ``t``, independently for every entry. Checked for three shapes (1-D, 2-D, 3-D)
    with keep probabilities and temperatures drawn per call: type, shape, values in [0, 1], the input
    arguments only; :math:`P(z > 1/2) = q` and the mean :math:`\mathbb E[z]` at that temperature (from
    :func:`~dropoutbook.derivations.concrete_mask_distribution`) within 5 standard errors; entries
    independent (no noise shared across rows or entries); a new draw on every call; the same
    mask for two generators with the same seed.
    """
    qs = _drawn_rates([(0.62, 0.85), (0.2, 0.4), (0.55, 0.75)], seed=131)
    ts = _drawn_rates([(0.08, 0.2), (0.4, 0.7), (1.5, 2.5)], seed=132)
    shown = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(13)
        for shape, q, t in zip([(40_000,), (400, 100), (40, 25, 40)], qs, ts):
            shown.append(_check_one_mask(fn, shape, q, t))
    passed("; ".join(shown))


def _mask(fn, shape, q, t, what, generator=None):
    out = call_student(fn, shape, q, t, generator=generator, what=what)
    if type(out) is not torch.Tensor:
        raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise CheckFailed(f"{what} should return a tensor of shape {tuple(shape)}, got {tuple(out.shape)}")
    if not out.is_floating_point():
        raise CheckFailed(f"{what} should return a floating tensor, got dtype {out.dtype}")
    z = out.detach().to(torch.float64)
    if not bool(((z >= 0) & (z <= 1)).all()):
        raise CheckFailed(f"{what} returned values outside [0, 1] (from {z.min().item():.3g} to {z.max().item():.3g}): "
                          "z is a sigmoid, a relaxed keep mask in (0, 1)")
    return z


def _check_one_mask(fn, shape, q: float, t: float) -> str:
    what = "your concrete_mask"
    z = _mask(fn, shape, q, t, what)
    n = z.numel()
    if bool(((z == 0) | (z == 1)).all()):
        raise CheckFailed(f"at t = {t} every value is exactly 0 or 1: that is a hard threshold (a Bernoulli mask). The "
                          "relaxed mask is sigmoid((logit q + noise)/t), a number strictly between 0 and 1")
    again = _mask(fn, shape, q, t, what)
    if bool((z == z.flatten()[0]).all()):
        if torch.equal(z, again):
            raise CheckFailed(f"all {n} entries are equal and the same on every call ({z.flatten()[0].item():.4g}): there "
                              "is no logistic noise. Add log(u) - log(1 - u) with u ~ U(0, 1) before dividing by t")
        raise CheckFailed(f"all {n} entries of one call are equal: you drew one noise value and shared it across the "
                          "whole batch. Draw one uniform u per entry")
    if z.dim() >= 2 and bool((z == z[:1]).all()):
        raise CheckFailed("every row of the mask is the same: one noise vector is shared across the batch. Draw an "
                          "independent uniform for every entry")
    if torch.equal(z, again):
        raise CheckFailed("two calls returned exactly the same mask: draw new random numbers on every call (no fixed "
                          "seed inside the function)")
    reused = _reused_draws(z)
    if reused is not None:
        shift, where, agree, expected = reused
        raise CheckFailed(f"entries {shift} apart along {where} are equal {agree:.1%} of the time: the noise is reused "
                          "across entries. Draw one independent uniform per entry")
    above = (z > 0.5).double().mean().item()
    se = math.sqrt(q * (1 - q) / n)
    if abs(above - q) > _Z * se:
        if abs(above - (1 - q)) <= _Z * se:
            raise CheckFailed(f"P(z > 1/2) is {above:.3f} for q = {q}: that is 1 - q. q and 1 - q are swapped: the logit "
                              "of the KEEP probability, log q - log(1 - q), is added to the noise")
        raise CheckFailed(f"P(z > 1/2) is {above:.3f} for q = {q}; it should be q (± {_Z * se:.3f}): z > 1/2 exactly when "
                          "logit q + noise > 0")
    mean, sd = z.mean().item(), z.std().item()
    want, se = _mean_at(q, t), max(sd, 1e-6) / math.sqrt(n)
    if abs(mean - want) > _Z * se:
        if abs(mean - _mean_at(q, 1 / t)) <= _Z * se:
            raise CheckFailed(f"the mean of the mask is {mean:.4f} for q = {q}, t = {t}, that of sigmoid((logit q + noise)"
                              f"·t): the temperature multiplies. It divides: sigmoid((logit q + noise)/t)")
        raise CheckFailed(f"the mean of the mask is {mean:.4f} for q = {q}, t = {t}; the derived E[z] is {want:.4f} "
                          f"(± {_Z * se:.4f})")
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    if not torch.equal(_mask(fn, shape, q, t, what, g1), _mask(fn, shape, q, t, what, g2)):
        raise CheckFailed("two generators with the same seed gave different masks: draw the uniforms with "
                          "torch.rand(..., generator=generator)")
    return f"P(z > 1/2) = {above:.3f}, E[z] = {mean:.3f} for q = {q}, t = {t}, shape {tuple(shape)}"


# --------------------------------------------------------------------------------------------
# exercise 2: derive the cold limit of P(z > s)


def _logit(x):
    return sp.log(x) - sp.log(1 - x)


def _cauchy_cdf(l):
    return sp.Rational(1, 2) + sp.atan(l) / sp.pi


def _logistic_cdf(l):
    return 1 / (1 + sp.exp(-l))


def check_concrete_cold_limit(fn) -> None:
    r"""Check ``fn(q, t, s, noise_cdf)``, which derives :math:`\lim_{t \to 0^+} P(z > s)` with sympy (chapter 13 exercises).

    :math:`z = \sigma((\operatorname{logit} q + L)/t)` with noise :math:`L` whose CDF is the given
    ``noise_cdf`` (a function of a sympy expression); ``q``, ``t``, ``s`` are positive sympy
    symbols, fresh on every call (:math:`0 < s < 1`). The answer must follow from ``noise_cdf``: the
    checker calls ``fn`` with the logistic CDF (the limit is :math:`q`, as
    :func:`~dropoutbook.derivations.concrete_mask_distribution` derives) and with a Cauchy CDF
    (the limit is :math:`1 - F(-\operatorname{logit} q)`), so a typed :math:`q` fails; an answer in a
    symbol that was not passed, or that keeps :math:`t` or :math:`s`, is refused.
    """
    what = "your derivation"
    derived = 1 - derivations.concrete_mask_distribution().cdf_limit_cold  # in the library's q
    q_lib = derivations.concrete_mask_distribution().q
    shown = ""
    for law, cdf, names in [("logistic", _logistic_cdf, ("k", "tau", "v")), ("Cauchy", _cauchy_cdf, ("a", "b", "c"))]:
        q, t, s = (sp.Symbol(n, positive=True) for n in names)
        answer = call_student(fn, q, t, s, cdf, what=what)
        got = _student_symbols(answer, {q.name: q, t.name: t, s.name: s}, "your answer")
        if t in got.free_symbols:
            raise CheckFailed("your answer still depends on the temperature t: take the limit t -> 0+ of P(z > s), "
                              "e.g. sympy.limit(expr, t, 0, '+')")
        if s in got.free_symbols:
            raise CheckFailed("your answer depends on s: for every 0 < s < 1 the cold limit is the same (the mask becomes "
                              "0 or 1); check the sign of logit s as t -> 0 and that t divides")
        truth = derived.subs(q_lib, q) if law == "logistic" else 1 - cdf(-_logit(q))
        points = [0.15, 0.4, 0.8]
        if _agrees(got, truth, q, points):
            if law == "logistic":
                shown = sp.sstr(got.subs(q, sp.Symbol("q")))  # in the statement's name of the keep probability
            continue
        if law == "Cauchy" and _agrees(got, q, q, points):
            raise CheckFailed("with a Cauchy noise your answer is still q: it was typed in, not derived from the "
                              "noise_cdf you were given. P(z > s) = 1 - F(t·logit s - logit q); take its limit")
        mistakes = [(1 - truth, "that is the limit of P(z <= s), or the sign of logit q is wrong: z > s exactly when "
                                "L > t·logit s - logit q, so P(z > s) = 1 - F_L(t·logit s - logit q)"),
                    (sp.Rational(1, 2), "1/2 is the limit of the mask itself as t -> oo; the exercise asks for t -> 0+")]
        for wrong, message in mistakes:
            if _agrees(got, wrong, q, points):
                raise CheckFailed(f"with the {law} noise: {message}")
        value, expected = float(got.subs(q, sp.Rational(3, 10))), float(truth.subs(q, sp.Rational(3, 10)))
        raise CheckFailed(f"with the {law} noise your limit is {value:.4g} at q = 0.3; it should be {expected:.4g}")
    passed(f"lim_(t->0+) P(z > s) = {shown} for the logistic noise, and 1 - F(-logit q) for a Cauchy noise")


def _agrees(a, b, symbol, points) -> bool:
    try:
        return all(math.isclose(complex(sp.N(a.subs(symbol, v))).real, complex(sp.N(sp.sympify(b).subs(symbol, v))).real,
                                rel_tol=1e-9, abs_tol=1e-12) for v in points)
    except (TypeError, ValueError, ZeroDivisionError):
        return False


# --------------------------------------------------------------------------------------------
# exercise 3: the regularizer


def check_concrete_regularizer(fn) -> None:
    r"""Check ``fn(p_logit, weight_sq, K, weight_regularizer, dropout_regularizer)``, Concrete dropout's regularizer (chapter 13 exercises).

    .. math:: R = \frac{\lambda_w \lVert W\rVert^2}{1-p} + \lambda_p K \bigl(p\log p + (1-p)\log(1-p)\bigr),
              \qquad p = \sigma(\theta),

    with ``p_logit`` :math:`\theta` a 0-d float64 tensor that requires a gradient, ``weight_sq``
    :math:`\lVert W\rVert^2` a 0-d tensor, ``K`` an int. Checked for several drawn settings (rates
    below and above 1/2, so that p and 1 - p differ): a 0-d tensor, equal to
    :func:`~dropoutbook.derivations.concrete_regularizer`'s ``regularizer``, with the derivative in
    :math:`\theta` of its ``logit_derivative`` (autograd through the logit); the inputs unchanged.
    """
    r = derivations.concrete_regularizer()
    sy = r.symbols
    g = torch.Generator().manual_seed(133)
    settings = []
    for p in _drawn_rates([(0.05, 0.2), (0.6, 0.8), (0.3, 0.45)], seed=134):
        w2 = 0.5 + 4 * torch.rand((), generator=g, dtype=torch.float64).item()
        k = int(torch.randint(3, 60, (), generator=g))
        lw, lp = 10 ** (-1 - torch.rand((), generator=g).item()), 10 ** (-1 - torch.rand((), generator=g).item())
        settings.append((p, round(w2, 3), k, round(lw, 4), round(lp, 4)))
    what = "your regularizer"
    for p, w2, k, lw, lp in settings:
        theta = torch.tensor(math.log(p / (1 - p)), dtype=torch.float64, requires_grad=True)
        weight_sq = torch.tensor(w2, dtype=torch.float64)
        out = call_student(fn, theta, weight_sq, k, lw, lp, what=what)
        if type(out) is not torch.Tensor or out.numel() != 1:
            raise CheckFailed(f"{what} should return a one-element torch.Tensor (to add to the loss), got "
                              f"{type(out).__name__}")
        if theta.detach().item() != math.log(p / (1 - p)) or weight_sq.item() != w2:
            raise CheckFailed("your function changed its inputs in place; compute a new tensor instead")
        value = _real_number(out.detach(), "the regularizer")
        subs = {sy["W2"]: w2, sy["K"]: k, sy["lw"]: lw, sy["lp"]: lp}
        truth = float(r.regularizer.subs(subs).subs(r.p, p))
        setting = f"p = {p}, ||W||^2 = {w2}, K = {k}, lambda_w = {lw}, lambda_p = {lp}"
        if not math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-12):
            neg = p * math.log(p) + (1 - p) * math.log(1 - p)
            mistakes = [
                (lw * w2 + lp * k * neg, "the weight term is lambda_w ||W||^2 / (1 - p): the 1/(1-p) is missing (it comes "
                                         "from M = W/(1-p) of inverted dropout)"),
                (lw * w2 / (1 - p) - lp * k * neg, "the sign of the entropy term is flipped: add lambda_p K (p log p + "
                                                   "(1-p) log(1-p)) = -lambda_p K H(p), which pulls p towards 1/2"),
                (lw * w2 / (1 - p) + lp * neg, "K is missing: the entropy term is multiplied by the number K of units "
                                               "dropped per example"),
                (lw * w2 / p + lp * k * neg, "p and 1 - p are swapped (the keep probability used where the drop rate "
                                             "belongs): p = sigmoid(p_logit) is the DROP rate, and the weight term divides "
                                             "by the keep probability 1 - p"),
                (lw * w2 * (1 - p) + lp * k * neg, "the weight term is multiplied by the keep probability 1 - p; it is "
                                                   "divided by it"),
            ]
            for wrong, message in mistakes:
                if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-12):
                    raise CheckFailed(f"for {setting}: {message}")
            raise CheckFailed(f"for {setting} your regularizer is {value:.6g}; it should be {truth:.6g}")
        if not out.requires_grad:
            raise CheckFailed("your regularizer has no gradient with respect to p_logit: compute it from p_logit with "
                              "torch operations (no .item(), float() or .detach())")
        (grad,) = torch.autograd.grad(out.sum(), theta, allow_unused=True)
        want = float(r.logit_derivative.subs(subs).subs(sy["theta"], math.log(p / (1 - p))))
        if grad is None or not math.isclose(grad.item(), want, rel_tol=1e-6, abs_tol=1e-12):
            got = "no gradient" if grad is None else f"{grad.item():.6g}"
            raise CheckFailed(f"for {setting} the gradient with respect to p_logit is {got}; it should be {want:.6g}: "
                              "part of your regularizer does not depend on p_logit through autograd")
    passed(f"R and dR/dp_logit for {len(settings)} settings, e.g. R = {truth:.5g} for {setting}")


# --------------------------------------------------------------------------------------------
# exercise 4: a module with a learned rate


def _network(cls, p_init: float, t: float, d: int) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), call_student(cls, p_init, t, what="your class"),
                          nn.Linear(d, 2))
    model[1].train()  # mixed modes: BatchNorm in training mode, the rest in evaluation mode
    model[0].eval()
    model[3].eval()
    model[2].eval()
    return model


def check_learned_rate_dropout(cls) -> None:
    r"""Check a class ``cls(p_init, temperature)``: stand-alone Concrete dropout with a learned rate (chapter 13 exercises).

    The instance must hold the logit of the drop rate as a parameter ``p_logit``, expose the rate as
    ``p`` (read from the logit), multiply its input by :math:`z/(1-p)` with a fresh relaxed keep mask
    :math:`z` in training mode, return its input unchanged in evaluation mode, and have the classmethod
    ``cls.mc_passes(model, x, T)``: ``T`` stochastic forward passes (stacked) with every ``cls``
    module of ``model`` in training mode and every other module in evaluation mode, restoring every
    module's own mode afterwards. Checked with rates and temperatures drawn per call: the mean of
    the output (the derived :math:`\mathbb E[z]/(1-p)`), a gradient reaching ``p_logit`` and an
    optimizer step moving ``p``, the evaluation mode, ``mc_passes`` and :func:`~dropoutbook.mc_dropout`
    on a network with mixed modes (passes that differ, modes restored, BatchNorm's statistics untouched).
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckFailed(f"the answer should be a subclass of torch.nn.Module, got {cls!r}")
    shown = []
    with torch.random.fork_rng(devices=[]):
        for p, t in zip(_drawn_rates([(0.15, 0.3), (0.4, 0.6)], seed=135), _drawn_rates([(0.1, 0.2), (0.3, 0.5)],
                                                                                         seed=136)):
            shown.append(_check_learned(cls, p, t))
    passed("; ".join(shown))


def _check_learned(cls, p: float, t: float) -> str:
    torch.manual_seed(14)
    module = call_student(cls, p, t, what="your class")
    logit = getattr(module, "p_logit", None)
    if not isinstance(logit, nn.Parameter) or not any(logit is w for w in module.parameters()):
        raise CheckFailed("p_logit should be a torch.nn.Parameter of the module (module.parameters() contains it): a rate "
                          "stored as a plain float or tensor is never trained")
    rate = _real_number(module.p, "module.p")
    if not math.isclose(rate, p, rel_tol=1e-5):
        raise CheckFailed(f"module.p is {rate:.4g} for p_init = {p}: p is the drop rate, sigmoid(p_logit), "
                          "initialized to p_init")
    module.train()
    x = torch.rand(400, 100, dtype=torch.float32) + 0.5
    before = x.clone()
    y = call_student(module, x, what="your module")
    if type(y) is not torch.Tensor or y.shape != x.shape:
        raise CheckFailed(f"your module should return a tensor of the input's shape {tuple(x.shape)}")
    if not torch.equal(x, before):
        raise CheckFailed("your module changed its input in place; return a new tensor")
    ratio = (y.detach().double() / x.double())
    mean, se = ratio.mean().item(), ratio.std().item() / math.sqrt(ratio.numel())
    want = _mean_at(1 - p, t) / (1 - p)
    if abs(mean - want) > _Z * se:
        if abs(mean - want * (1 - p) / p) <= _Z * se:
            raise CheckFailed(f"the output is on average {mean:.4f}·x for p = {p}: you scale by 1/p. Inverted dropout "
                              "divides by the keep probability 1 - p")
        if abs(mean - want * (1 - p)) <= _Z * se:
            raise CheckFailed(f"the output is on average {mean:.4f}·x for p = {p}: the mask is not divided by 1 - p")
        raise CheckFailed(f"the output is on average {mean:.4f}·x for p = {p}, t = {t}; it should be E[z]/(1-p) = "
                          f"{want:.4f} (± {_Z * se:.4f}) with z the relaxed keep mask")
    if not y.requires_grad:
        raise CheckFailed("the output has no gradient: compute the mask from p_logit with torch operations")
    (grad,) = torch.autograd.grad(y.pow(2).mean(), logit, allow_unused=True)
    if grad is None or grad.item() == 0 or not math.isfinite(grad.item()):
        raise CheckFailed("the loss has no gradient with respect to p_logit (the logit is detached, or the rate is read "
                          "as a float): the mask must be a differentiable function of p_logit")
    with torch.no_grad():
        logit.sub_(0.5)
    if math.isclose(_real_number(module.p, "module.p"), rate, rel_tol=1e-9):
        raise CheckFailed("after p_logit changed, module.p is still the initial rate: the rate is stored as a plain "
                          "float. Make p a property that returns sigmoid(p_logit)")
    with torch.no_grad():
        logit.add_(0.5)
    module.eval()
    out = call_student(module, x, what="your module in evaluation mode")
    if not (type(out) is torch.Tensor and torch.allclose(out, x)):
        raise CheckFailed("in evaluation mode the module should return its input unchanged: dropout is applied in "
                          "training only (check self.training)")
    return f"p = {p}, t = {t}: E[output/x] = {mean:.3f}, " + _check_passes(cls, p, t)


def _modes(model):
    return [m.training for m in model.modules()]


def _check_passes(cls, p: float, t: float) -> str:
    model = _network(cls, p, t, 8)
    x = torch.randn(16, 8)
    modes, stats = _modes(model), [b.clone() for b in model[1].buffers()]
    mc_passes = getattr(cls, "mc_passes", None)
    if mc_passes is None:
        raise CheckFailed("your class has no classmethod mc_passes(model, x, T)")
    with torch.no_grad():
        samples = call_student(mc_passes, model, x, 5, what="your mc_passes")
    if type(samples) is not torch.Tensor or samples.shape != (5, 16, 2):
        raise CheckFailed("mc_passes(model, x, T) should return the T outputs stacked, a tensor of shape (T, batch, "
                          "outputs)")
    if _modes(model) != modes:
        raise CheckFailed("after mc_passes the modules' modes differ from before: restore every module's own mode "
                          "(model.train(was_training) restores only the top-level mode and sets every submodule to it)")
    if any(not torch.equal(a, b) for a, b in zip(stats, model[1].buffers())):
        raise CheckFailed("mc_passes changed BatchNorm's running statistics: every module but the dropout ones must be "
                          "in evaluation mode during the passes")
    if torch.equal(samples[0], samples[1]):
        raise CheckFailed("the passes of mc_passes are all the same: put the dropout modules in training mode")
    with torch.no_grad(), mc_dropout(model, dropout_types=(cls,)):
        a, b = model(x), model(x)
    if torch.equal(a, b) or _modes(model) != modes:
        raise CheckFailed("under db.mc_dropout(model, dropout_types=(YourClass,)) two passes should differ and the modes "
                          "be restored afterwards")
    return "mc_passes and db.mc_dropout sample and restore the modes"
