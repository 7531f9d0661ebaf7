"""Checkers for the exercises of chapter 14, "Dropout in modern training".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line or
raises :class:`CheckFailed` with a message that says what is wrong, for example "at t = s the rate
is still p: early dropout stops *at* the switch step".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import lora as _lora
from .. import rdrop as _rdrop
from ..schedules import DropoutSchedule
from .._validation import check_choice
from ._core import CheckFailed, _drawn_rates, _library_forbidden, _real_number, call_student, passed

__all__ = ["check_schedule_rate", "check_r_drop_loss", "check_layerdrop_forward", "check_lora_forward"]

_Z = 5.0


def _reference_rate(kind: str, t: int, p: float, s: int, total: int) -> float:
    model = torch.nn.Sequential(torch.nn.Dropout(0.0))
    return DropoutSchedule(model, p, kind=kind, total_steps=total, switch_step=s).rate_at(t)


# --------------------------------------------------------------------------------------------
# exercise 1: the rate of a schedule at step t


def check_schedule_rate(fn) -> None:
    """Check ``fn(t, p, kind, switch_step)``, the drop rate at step ``t`` of the early, late and linear schedules.

    Several peak rates and switch steps are drawn per call (never only one); every step from 0 to
    twice the switch step is compared with :class:`~dropoutbook.DropoutSchedule`. Recognized
    mistakes (diagnosed from the whole schedule, not one step): the switch step off by one (e.g.
    ``t <= s``), early and late swapped (or ``kind`` ignored), the keep rate ``1 - p`` returned, a
    hard-coded rate in place of ``p``, a rate that does not change with ``t``, a linear ramp that
    goes below zero after ``s``, decays over the wrong length or is one step ahead, and a result
    that is not a real number.

    Exercise of chapter 14, "Dropout in modern training".
    """
    ps = _drawn_rates([(0.05, 0.3), (0.3, 0.6), (0.1, 0.5)], seed=14)
    switches = (3, 7, 10)
    shown = []
    for p, s in zip(ps, switches):
        total = 2 * s + 2
        for kind in ("early", "late", "linear"):
            want = [_reference_rate(kind, t, p, s, total) for t in range(total + 1)]
            got = [_real_number(call_student(fn, t, p, kind, s, what="your rate_at"), "the rate")
                   for t in range(total + 1)]
            if not all(math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12) for u, v in zip(got, want)):
                raise CheckFailed(_rate_hint(kind, p, s, total, got, want))
        shown.append(f"p = {p}, s = {s}")
    passed("early, late and linear rates at every step for " + "; ".join(shown))


def _same(u, v) -> bool:
    return all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(u, v))


def _rate_hint(kind: str, p: float, s: int, total: int, got: list, want: list) -> str:
    """Name the mistake from the student's whole schedule (every step), not from one step."""
    t = next(i for i, (u, v) in enumerate(zip(got, want)) if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12))
    where = (f"{kind} schedule with p = {p}, s = {s}, step t = {t}: you return {got[t]:.6g}, it should be "
             f"{want[t]:.6g}")
    steps = range(total + 1)
    step_at = {"early": lambda c, q: [q if i < c else 0.0 for i in steps],
               "late": lambda c, q: [0.0 if i < c else q for i in steps]}
    if _same(got, [1 - v for v in want]):
        return where + ". That is the keep rate 1 - p; return the drop rate"
    if kind in step_at:
        other = "late" if kind == "early" else "early"
        if _same(got, step_at[other](s, p)):
            return where + (". Early and late are swapped (or kind is ignored): early dropout is on at the START "
                            "of training, for t < s, late dropout from t = s on")
    if all(math.isclose(v, got[0], abs_tol=1e-12) for v in got) and len(set(want)) > 1:
        return where + f". Your rate is {got[0]:.6g} at every step: it must change with t (and s)"
    if kind in step_at:
        for c in range(1, total + 1):
            if c != s and _same(got, step_at[kind](c, p)):
                return where + (f". Your schedule switches at step {c} instead of s = {s}"
                                + (": an off-by-one" if abs(c - s) == 1 else "") + ". Early dropout "
                                "is on for t < s (steps 0 to s - 1) and off from t = s on; late dropout is off for t < s "
                                "and on from t = s" + (" (the switch step itself is on the wrong side: t <= s)"
                                                       if c == s + 1 else ""))
    for q in sorted({0.05, 0.1, 0.2, 0.25, 0.3, 0.5} - {p}):
        if _same(got, [_reference_rate(kind, i, q, s, total) for i in steps]):
            return where + f". Your rates are those of p = {q}: use the argument p, do not hard-code a rate"
    if kind == "linear":
        if any(v < 0 for v in got):
            return where + ". The linear ramp must stop at 0 after the switch step: use max(0, 1 - t/s)"
        for length in range(1, 3 * total):
            if length != s and _same(got, [p * max(0.0, 1.0 - i / length) for i in steps]):
                return where + (f". Your ramp reaches 0 at step {length}, not at the switch step s = {s}: "
                                "p·max(0, 1 - t/s)")
        if _same(got, [p * max(0.0, 1.0 - (i + 1) / s) for i in steps]):
            return where + ". Your ramp is one step ahead (it starts below p at t = 0): p·max(0, 1 - t/s)"
        return where + ". The linear schedule decays from p at t = 0 to 0 at t = s: p·max(0, 1 - t/s)"
    return where


# --------------------------------------------------------------------------------------------
# exercise 2: the R-Drop loss


def check_r_drop_loss(fn, *, nll: str = "sum") -> None:
    """Check ``fn(logits_a, logits_b, target, alpha)``, the R-Drop loss, written in plain torch.

    Compared with :func:`~dropoutbook.r_drop_loss` with the same ``nll`` (the library's is forbidden
    during the check) on several batch sizes, numbers of classes and weights ``alpha``, in value and
    in the gradients with respect to *both* logits. ``nll="sum"`` (default) asks for the paper's
    loss, the sum of the two cross-entropies; an instructor who states the averaged variant passes
    ``nll="mean"``. Recognized mistakes: one direction of KL only, the KL without its factor 1/2,
    the two cross-entropies averaged where they are summed (or the reverse), the KL summed over the
    batch, the KL computed on the logits or on the probabilities in place of their logarithms, one
    pass detached (stop-gradient), ``alpha`` ignored, and one cross-entropy only.

    Exercise of chapter 14, "Dropout in modern training".
    """
    nll = check_choice(nll, "nll", ("sum", "mean"))
    g = torch.Generator().manual_seed(141)
    alphas = _drawn_rates([(0.3, 1.0), (1.5, 4.0), (0.5, 2.0)], seed=142)
    cases = [(16, 3, alphas[0]), (5, 10, alphas[1]), (1, 2, alphas[2])]
    with _library_forbidden(_rdrop, "write the loss with torch.nn.functional"):
        for n, k, alpha in cases:
            a = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
            b = a + torch.randn(n, k, generator=g, dtype=torch.float64)
            y = torch.randint(0, k, (n,), generator=g)
            _check_one_r_drop(fn, a, b, y, alpha, nll)
    passed("R-Drop loss and its gradients for " + ", ".join(f"(batch {n}, {k} classes, alpha = {al})"
                                                            for n, k, al in cases))


def _r_drop_parts(a, b, y, nll):
    la, lb = F.log_softmax(a, 1), F.log_softmax(b, 1)
    kl_ab = (la.exp() * (la - lb)).sum(1)
    kl_ba = (lb.exp() * (lb - la)).sum(1)
    ce = (1.0 if nll == "sum" else 0.5) * (F.cross_entropy(a, y) + F.cross_entropy(b, y))
    return ce, kl_ab, kl_ba


def _check_one_r_drop(fn, a, b, y, alpha, nll):
    a_s, b_s = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    a0, b0 = a_s.detach().clone(), b_s.detach().clone()
    out = call_student(fn, a_s, b_s, y, alpha, what="your r_drop_loss")
    if type(out) is not torch.Tensor or out.numel() != 1:
        raise CheckFailed(f"your r_drop_loss should return a one-element tensor (the mean loss), got "
                          f"{type(out).__name__}{' of shape ' + str(tuple(out.shape)) if isinstance(out, torch.Tensor) else ''}")
    if not torch.equal(a_s.detach(), a0) or not torch.equal(b_s.detach(), b0):
        raise CheckFailed("your r_drop_loss changed the logits in place")
    value = out.detach().double().reshape(()).item()
    ce, kl_ab, kl_ba = _r_drop_parts(a, b, y, nll)
    sym = 0.5 * (kl_ab + kl_ba).mean()
    other = 0.5 * ce if nll == "sum" else 2 * ce  # the two cross-entropies reduced the other way
    ce_a, ce_b = F.cross_entropy(a, y), F.cross_entropy(b, y)
    truth = (ce + alpha * sym).item()
    where = f" (batch {a.shape[0]}, {a.shape[1]} classes, alpha = {alpha})"
    if not math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-9):
        pa, pb = a.softmax(1), b.softmax(1)
        mistakes = {
            "you use one direction of KL only; R-Drop averages KL(P_a||P_b) and KL(P_b||P_a)":
                [ce + alpha * kl_ab.mean(), ce + alpha * kl_ba.mean(), ce + alpha * 0.5 * kl_ab.mean(),
                 ce + alpha * 0.5 * kl_ba.mean()],
            "the KL term lacks its factor 1/2: the symmetric KL is (KL(P_a||P_b) + KL(P_b||P_a)) / 2":
                [ce + alpha * (kl_ab + kl_ba).mean()],
            ("you average the two cross-entropies; the paper's loss SUMS them, CE_a + CE_b (averaging them with "
             "the same alpha doubles the weight of the KL term)" if nll == "sum" else
             "you sum the two cross-entropies; this exercise averages them, (CE_a + CE_b) / 2"):
                [other + alpha * sym, other + 0.5 * alpha * sym, other + 2 * alpha * sym],
            "only one pass's cross-entropy is in your loss: R-Drop trains both passes, CE_a and CE_b":
                [c + alpha * sym for c in (ce_a, ce_b, 2 * ce_a, 2 * ce_b)],
            "the KL is summed over the batch; average it over the examples, as the cross-entropy is":
                [ce + alpha * 0.5 * (kl_ab + kl_ba).sum()],
            "the KL must compare the softmax distributions, through log_softmax, not the raw logits or probabilities":
                [ce + alpha * 0.5 * ((a - b) ** 2).sum(1).mean(), ce + alpha * 0.5 * ((pa - pb) ** 2).sum(1).mean(),
                 ce + alpha * 0.5 * ((pb * (pb.log() - pa)).sum(1) + (pa * (pa.log() - pb)).sum(1)).mean()],
            "alpha is ignored: the KL term is multiplied by alpha": [ce + sym, ce],
            "the KL is averaged over the classes too (kl_div with reduction='mean'): sum it over the classes and "
            "average over the batch (reduction='batchmean')": [ce + alpha * sym / a.shape[1]],
            "alpha multiplies the whole loss; it weights the KL term only: CE + alpha · KL":
                [alpha * (ce + sym), alpha * ce + sym],
        }
        for hint, candidates in mistakes.items():
            if any(math.isclose(value, float(c), rel_tol=1e-6, abs_tol=1e-9) for c in candidates):
                raise CheckFailed(hint + where)
        raise CheckFailed(f"your loss is {value:.6g}, it should be {truth:.6g}{where}")
    if not out.requires_grad:
        raise CheckFailed("your loss has no gradient: compute it from the logits with torch operations" + where)
    grads = torch.autograd.grad(out, (a_s, b_s), allow_unused=True)
    ra, rb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ce_r, kab, kba = _r_drop_parts(ra, rb, y, nll)
    want = torch.autograd.grad(ce_r + alpha * 0.5 * (kab + kba).mean(), (ra, rb))
    for name, got, w in zip(("logits_a", "logits_b"), grads, want):
        if got is None or not torch.allclose(got.double(), w, rtol=1e-5, atol=1e-8):
            raise CheckFailed(f"the gradient with respect to {name} is wrong: did you detach one pass (a "
                              "stop-gradient)? R-Drop differentiates both directions of the KL through both passes" + where)


# --------------------------------------------------------------------------------------------
# exercise 3: LayerDrop's forward pass


class _Tagged(torch.nn.Module):
    """A residual layer that adds 2**i, so that the output of a row says which layers it went through."""

    def __init__(self, i: int) -> None:
        super().__init__()
        self.i = i

    def forward(self, h):
        return h + float(2**self.i)


def _applied_sets(out: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Per row, the integer whose bits are the layers applied (the input is 1/2 everywhere)."""
    out = out - 0.5
    codes = out[:, 0].round()
    if not torch.allclose(out, codes[:, None].expand_as(out), atol=1e-9) or not torch.allclose(
            out[:, 0], codes, atol=1e-6) or codes.min() < 0 or codes.max() >= 2**n_layers:
        raise CheckFailed("the output is not the input passed through a subset of the layers: a skipped layer must "
                          "leave h unchanged (h, not 0), and a kept one is applied as it is, with no rescaling by 1/(1-p)")
    return codes.long()


def check_layerdrop_forward(fn) -> None:
    """Check ``fn(layers, x, p, training)``: apply each layer of the list, skipping each with probability ``p`` in training.

    The layers add :math:`2^i`, so the output tells which layers each row went through. Several
    numbers of layers and rates are drawn. Checked: one draw per layer *shared by the whole batch*,
    independent across layers and across calls; a layer is skipped with probability ``p`` (not
    ``1 - p``); nothing is rescaled; every layer applied with ``training=False``; ``x`` not
    modified. The library's :class:`~dropoutbook.LayerDrop` is not forbidden but not needed.

    Exercise of chapter 14, "Dropout in modern training".
    """
    with torch.random.fork_rng(devices=[]):  # reproducible messages; the caller's RNG state is restored
        torch.manual_seed(14)
        shown = _check_layerdrop(fn)
    passed("; ".join(shown) + "; one draw per layer, shared by the batch")


def _check_layerdrop(fn) -> list[str]:
    rates = _drawn_rates([(0.15, 0.35), (0.45, 0.7)], seed=143)
    shown = []
    for n_layers, p in zip((3, 5), rates):
        layers = torch.nn.ModuleList(_Tagged(i) for i in range(n_layers))
        x = torch.full((16, 2), 0.5, dtype=torch.float64)
        before = x.clone()
        codes = []
        for _ in range(1500):
            out = call_student(fn, layers, x, p, True, what="your layerdrop_forward")
            if type(out) is not torch.Tensor or out.shape != x.shape:
                raise CheckFailed(f"your layerdrop_forward should return a tensor of the input's shape {tuple(x.shape)}")
            if not torch.equal(x, before):
                raise CheckFailed("your layerdrop_forward changed x in place; return a new tensor")
            row_codes = _applied_sets(out.detach().double(), n_layers)
            if not bool((row_codes == row_codes[0]).all()):
                raise CheckFailed("rows of one batch went through different layers: LayerDrop draws one Bernoulli per "
                                  "LAYER per pass, shared by the whole mini-batch, not one per example")
            codes.append(int(row_codes[0]))
        codes_t = torch.tensor(codes)
        bits = torch.stack([(codes_t >> i) & 1 for i in range(n_layers)], 1).double()
        if set(codes) == {2**n_layers - 1}:
            raise CheckFailed(f"no layer was ever skipped in training with p = {p}: skip each layer with probability p "
                              "when training is True")
        if len(set(codes)) == 1:
            raise CheckFailed("every call applied the same layers: draw new random numbers on every call")
        if all(c & (c - 1) == 0 for c in codes):
            raise CheckFailed("no pass went through more than one layer: each layer must be applied to the output of "
                              "the previous one (h = layer(h)), not to the input x")
        kept = bits.mean().item()
        se = math.sqrt((1 - p) * p / bits.numel())
        if abs(kept - (1 - p)) > _Z * se:
            if abs(kept - p) <= _Z * se:
                raise CheckFailed(f"{kept:.1%} of the layers are applied with p = {p}: you skip a layer with the keep "
                                  "probability 1 - p; p is the probability of SKIPPING a layer")
            for q in (0.1, 0.2, 0.25, 0.3, 0.5):
                if abs(kept - (1 - q)) <= _Z * se:
                    raise CheckFailed(f"{kept:.1%} of the layers are applied with p = {p}, as if the rate were {q}: use "
                                      "the argument p, do not hard-code a rate")
            raise CheckFailed(f"{kept:.1%} of the layers are applied; with p = {p} it should be {1 - p:.1%}")
        all_or_none = ((bits.sum(1) == 0) | (bits.sum(1) == n_layers)).double().mean().item()
        if all_or_none > 0.99:
            raise CheckFailed("the layers are kept or skipped all together: draw one Bernoulli per layer, independently")
        both = (bits[:, 0] * bits[:, 1]).mean().item()
        se2 = math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / len(codes))
        if abs(both - (1 - p) ** 2) > _Z * se2:
            raise CheckFailed(f"layers 0 and 1 are both applied in {both:.1%} of the passes; independent draws give "
                              f"(1-p)^2 = {(1 - p) ** 2:.1%}: draw the layers independently")
        out = call_student(fn, layers, x, p, False, what="your layerdrop_forward")
        if type(out) is not torch.Tensor or not torch.allclose(out.detach().double(),
                                                              torch.full_like(x, 2.0**n_layers - 0.5)):
            raise CheckFailed("with training=False every layer is applied (no layer is skipped at inference, unless "
                              "one prunes on purpose)")
        shown.append(f"{n_layers} layers, p = {p}: {kept:.1%} applied")
    return shown


# --------------------------------------------------------------------------------------------
# exercise 4: LoRA with dropout on the adapter's input


def check_lora_forward(fn) -> None:
    """Check ``fn(x, weight, bias, A, B, scaling, p, training)``: ``x W^T + b + scaling · drop_p(x) A^T B^T``.

    The library's :class:`~dropoutbook.LoRALinear` is forbidden during the check. Several shapes
    and rates are drawn. Checked: the frozen path sees the clean input (with ``B = 0`` the output
    is the base layer's exactly, also in training); the evaluation output; the scaling; the mean
    and the variance of the output under dropout agree with the derived
    :math:`\\frac{p}{1-p}\\sum_k M_{jk}^2 x_k^2` within 5 standard errors, which tells dropout on the
    adapter's input from dropout on its output, on the rank-``r`` code, or on the whole layer's
    input; fresh masks per call; inputs not modified.

    Exercise of chapter 14, "Dropout in modern training".
    """
    rates = _drawn_rates([(0.1, 0.3), (0.4, 0.6)], seed=144)
    g = torch.Generator().manual_seed(145)
    shown = []
    with _library_forbidden(_lora, "write the forward pass with torch operations"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(14)  # reproducible messages; the caller's RNG state is restored
        for (d_in, d_out, r), p in zip(((5, 3, 2), (8, 4, 3)), rates):
            shown.append(_check_one_lora(fn, d_in, d_out, r, p, g))
    passed("; ".join(shown))


def _check_one_lora(fn, d_in, d_out, r, p, g):
    what = "your lora_forward"
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    bias = torch.randn(d_out, generator=g, dtype=torch.float64)
    A = torch.randn(r, d_in, generator=g, dtype=torch.float64)
    B = torch.randn(d_out, r, generator=g, dtype=torch.float64)
    scaling = 1.5
    x = torch.randn(1, d_in, generator=g, dtype=torch.float64)
    inputs = [t.clone() for t in (x, W, bias, A, B)]
    base = x @ W.T + bias
    M = scaling * B @ A
    where = f" (d_in = {d_in}, rank {r}, p = {p})"
    out = call_student(fn, x, W, bias, A, torch.zeros_like(B), scaling, p, True, what=what)
    for t, t0 in zip((x, W, bias, A), inputs):
        if not torch.equal(t, t0):
            raise CheckFailed(f"{what} changed one of its inputs in place (x, the weights or A); return a new tensor" + where)
    if type(out) is not torch.Tensor or out.shape != base.shape:
        raise CheckFailed(f"{what} should return a tensor of shape {tuple(base.shape)}" + where)
    if not torch.allclose(out.double(), base, rtol=1e-10, atol=1e-12):
        raise CheckFailed("with B = 0 the output in training differs from the base layer x W^T + b: your dropout also "
                          "reaches the frozen path. Drop only the adapter's input: x W^T + b + scaling·drop(x) A^T B^T" + where)
    evaluated = call_student(fn, x, W, bias, A, B, scaling, p, False, what=what)
    want = base + x @ M.T
    if type(evaluated) is not torch.Tensor or not torch.allclose(evaluated.double(), want, rtol=1e-9, atol=1e-10):
        if isinstance(evaluated, torch.Tensor) and torch.allclose(evaluated.double(), base + x @ (B @ A).T, rtol=1e-9):
            raise CheckFailed("the adapter's output is not multiplied by scaling (alpha / r)" + where)
        if isinstance(evaluated, torch.Tensor) and evaluated.shape == base.shape:
            adapter, unit = evaluated.double() - base, x @ (B @ A).T
            factor = float((adapter * unit).sum() / (unit * unit).sum())
            if torch.allclose(adapter, factor * unit, rtol=1e-8, atol=1e-10):
                raise CheckFailed(f"the adapter's output is multiplied by {factor:.6g}; it should be multiplied by "
                                  f"scaling = {scaling} once (x W^T + b + scaling · x A^T B^T)" + where)
        raise CheckFailed("with training=False the output should be x W^T + b + scaling · x A^T B^T, no dropout" + where)
    n = 20_000
    xs = x.expand(n, d_in).contiguous()
    samples = call_student(fn, xs, W, bias, A, B, scaling, p, True, what=what)
    if type(samples) is not torch.Tensor or samples.shape != (n, d_out):
        raise CheckFailed(f"{what} should return a tensor of shape (batch, {d_out})" + where)
    for t, t0 in zip((x, W, bias, A, B), inputs):
        if not torch.equal(t, t0):
            raise CheckFailed(f"{what} changed one of its inputs in place" + where)
    y = samples.detach().double()[:, 0]
    if float(y.std()) <= 1e-10 * (1.0 + float(y.abs().max())):  # constant up to rounding of the matmul
        if not math.isclose(y[0].item(), want[0, 0].item(), rel_tol=1e-9, abs_tol=1e-10):
            raise CheckFailed("every row of the batch got the same mask: draw an independent mask for each example "
                              "(a mask of the shape of x), not one for the whole batch" + where)
        raise CheckFailed("in training the output never changes: apply dropout to the adapter's input" + where)
    mean, var = y.mean().item(), y.var().item()
    se_mean = math.sqrt(var / n)
    m0, x0 = M[0], x[0]
    truth_mean = want[0, 0].item()
    if abs(mean - truth_mean) > _Z * se_mean:
        if abs(mean - (base[0, 0] + (1 - p) * (x0 @ m0)).item()) <= _Z * se_mean:
            raise CheckFailed("the mean of the output is base + (1-p)·M x: divide the kept inputs by 1 - p" + where)
        raise CheckFailed(f"the mean output is {mean:.4f}, it should be {truth_mean:.4f}" + where)
    truth_var = p / (1 - p) * float(((m0 * x0) ** 2).sum())
    # the sample variance of n draws has standard error about sqrt(2/(n-1)) * sd^2 for a near-normal output;
    # with a few discrete values use the fourth moment
    se_var = math.sqrt(max(((y - mean) ** 4).mean().item() - var**2, 1e-30) / n)
    if abs(var - truth_var) > _Z * se_var:
        adapter = samples.detach().double() - base
        if abs(var - p / (1 - p) * float((m0 @ x0) ** 2)) <= _Z * se_var:
            silent = adapter.abs() < 1e-12
            if bool((silent == silent[:, :1]).all()):
                raise CheckFailed("one draw is shared by all input features (the whole adapter input is kept or "
                                  "dropped): draw each feature of x independently" + where)
            raise CheckFailed("dropout acts on the adapter's OUTPUT (one draw per output unit); it should act on its "
                              "input x, one draw per input feature" + where)
        if abs(var - (1 - p) / p * float(((m0 * x0) ** 2).sum())) <= _Z * se_var:
            raise CheckFailed(f"the variance is (1-p)/p·sum_k M_jk^2 x_k^2: you keep each input with probability p = {p} "
                              "(and divide by p); p is the DROP rate, keep with probability 1 - p" + where)
        if abs(var - p / (1 - p) * float(((scaling * B[0] * (A @ x0)) ** 2).sum())) <= _Z * se_var:
            raise CheckFailed("dropout acts on the rank-r code A x; it should act on the input x, before A" + where)
        raise CheckFailed(f"the variance of the output is {var:.4f}, it should be p/(1-p)·sum_k M_jk^2 x_k^2 = "
                          f"{truth_var:.4f}" + where)
    again = call_student(fn, xs[:50], W, bias, A, B, scaling, p, True, what=what)
    if torch.equal(again, samples[:50]):
        raise CheckFailed("two calls gave the same output: draw new masks on every call" + where)
    return f"mean {mean:.3f} and variance {var:.3f} as derived (d_in = {d_in}, rank {r}, p = {p})"
