"""Checkers of chapter 14, "Dropout in modern training": the reference passes, differently written
correct answers pass, the blank starter fails with "not written yet", and typical wrong answers fail
with their specific hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dropoutbook as db
from dropoutbook.exercises import check_layerdrop_forward, check_lora_forward, check_r_drop_loss, check_schedule_rate
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# exercise 1: the rate of a schedule


def ref_rate(t, p, kind, s):
    if kind == "early":
        return p if t < s else 0.0
    if kind == "late":
        return 0.0 if t < s else p
    return p * max(0.0, 1.0 - t / s)


def rate_with_min(t, p, kind, s):  # correct, written differently
    on = {"early": t < s, "late": t >= s, "linear": True}[kind]
    return p * min(1.0, max(0.0, (s - t) / s)) if kind == "linear" else p * float(on)


def rate_inclusive(t, p, kind, s):
    return (p if t <= s else 0.0) if kind == "early" else (0.0 if t <= s else p) if kind == "late" else ref_rate(t, p, kind, s)


def rate_swapped(t, p, kind, s):
    return ref_rate(t, p, {"early": "late", "late": "early"}.get(kind, kind), s)


def rate_keep(t, p, kind, s):
    return 1 - ref_rate(t, p, kind, s)


def rate_negative(t, p, kind, s):
    return p * (1 - t / s) if kind == "linear" else ref_rate(t, p, kind, s)


def rate_wrong_length(t, p, kind, s):
    return p * max(0.0, 1 - t / (2 * s + 2)) if kind == "linear" else ref_rate(t, p, kind, s)


def rate_string(t, p, kind, s):
    return str(ref_rate(t, p, kind, s))


def test_schedule_rate(capsys):
    assert_passes(capsys, check_schedule_rate, ref_rate)
    assert_passes(capsys, check_schedule_rate, rate_with_min)
    assert_passes(capsys, check_schedule_rate, lambda t, p, kind, s: db.DropoutSchedule(
        torch.nn.Dropout(), p, kind=kind, total_steps=t + s + 1, switch_step=s).rate_at(t))
    assert_fails(check_schedule_rate, starter, "not written yet")
    assert_fails(check_schedule_rate, rate_inclusive, "switch step itself is on the wrong side")
    assert_fails(check_schedule_rate, rate_swapped, "Early and late are swapped")
    assert_fails(check_schedule_rate, rate_keep, "keep rate 1 - p")
    assert_fails(check_schedule_rate, rate_negative, "stop at 0 after the switch step")
    assert_fails(check_schedule_rate, rate_wrong_length, "not at the switch step")
    assert_fails(check_schedule_rate, rate_string)
    # new wrong answers (review): each with the hint that names it
    assert_fails(check_schedule_rate, rate_switch_one_early, "switches at step", "off-by-one")
    assert_fails(check_schedule_rate, rate_late_one_late, "switches at step", "off-by-one")
    assert_fails(check_schedule_rate, rate_hard_coded, "do not hard-code a rate")
    assert_fails(check_schedule_rate, rate_kind_ignored, "Early and late are swapped (or kind is ignored)")
    assert_fails(check_schedule_rate, rate_linear_ahead, "one step ahead")
    assert_fails(check_schedule_rate, rate_linear_as_early, "decays from p at t = 0 to 0 at t = s")
    assert_fails(check_schedule_rate, rate_constant, "at every step: it must change with t")
    assert_fails(check_schedule_rate, rate_bool, "should be a number")


def rate_switch_one_early(t, p, kind, s):
    return ref_rate(t, p, kind, s - 1) if kind != "linear" else ref_rate(t, p, kind, s)


def rate_late_one_late(t, p, kind, s):
    return (0.0 if t < s + 1 else p) if kind == "late" else ref_rate(t, p, kind, s)


def rate_hard_coded(t, p, kind, s):
    return ref_rate(t, 0.1, kind, s)


def rate_kind_ignored(t, p, kind, s):
    return ref_rate(t, p, "early", s)


def rate_linear_ahead(t, p, kind, s):
    return p * max(0.0, 1.0 - (t + 1) / s) if kind == "linear" else ref_rate(t, p, kind, s)


def rate_linear_as_early(t, p, kind, s):
    return ref_rate(t, p, "early" if kind == "linear" else kind, s)


def rate_constant(t, p, kind, s):
    return p


def rate_bool(t, p, kind, s):
    return ref_rate(t, p, kind, s) > 0


# --------------------------------------------------------------------------------------------
# exercise 2: the R-Drop loss


def ref_r_drop(a, b, y, alpha):  # the paper's loss: the SUM of the two NLLs plus alpha times the mean KL direction
    la, lb = F.log_softmax(a, dim=1), F.log_softmax(b, dim=1)
    kl = 0.5 * (F.kl_div(lb, la, reduction="batchmean", log_target=True)
                + F.kl_div(la, lb, reduction="batchmean", log_target=True))
    return F.cross_entropy(a, y) + F.cross_entropy(b, y) + alpha * kl


def r_drop_logit_form(a, b, y, alpha):  # correct: the derived form 1/2 sum (P - Q)(a - b), NLL by gather
    kl = 0.5 * ((a.softmax(1) - b.softmax(1)) * (a - b)).sum(1).mean()
    nll = -(a.log_softmax(1).gather(1, y[:, None]) + b.log_softmax(1).gather(1, y[:, None])).mean()
    return nll + alpha * kl


def ref_r_drop_mean(a, b, y, alpha):  # the averaged variant, for check_r_drop_loss(fn, nll="mean")
    return ref_r_drop(a, b, y, alpha) - 0.5 * ref_r_drop(a, b, y, 0.0)


def one_way(a, b, y, alpha):
    return ref_r_drop(a, b, y, 0.0) + alpha * F.kl_div(
        F.log_softmax(b, 1), F.log_softmax(a, 1), reduction="batchmean", log_target=True)


def one_way_halved(a, b, y, alpha):
    return ref_r_drop(a, b, y, 0.0) + alpha * 0.5 * F.kl_div(
        F.log_softmax(a, 1), F.log_softmax(b, 1), reduction="batchmean", log_target=True)


def averaged_ce(a, b, y, alpha):
    return 0.5 * ref_r_drop(a, b, y, 0.0) + alpha * (ref_r_drop(a, b, y, 1.0) - ref_r_drop(a, b, y, 0.0))


def one_pass_ce(a, b, y, alpha):
    return F.cross_entropy(a, y) + alpha * (ref_r_drop(a, b, y, 1.0) - ref_r_drop(a, b, y, 0.0))


def kl_mean_over_classes(a, b, y, alpha):  # kl_div(reduction="mean") also divides by the number of classes
    la, lb = F.log_softmax(a, 1), F.log_softmax(b, 1)
    kl = 0.5 * ((la.exp() * (la - lb)) + (lb.exp() * (lb - la))).mean()  # what reduction="mean" computes
    return ref_r_drop(a, b, y, 0.0) + alpha * kl


def alpha_on_everything(a, b, y, alpha):
    return alpha * ref_r_drop(a, b, y, 1.0)


def both_detached(a, b, y, alpha):  # KL(P_a || sg P_b) + KL(P_b || sg P_a): the right value, the wrong gradient
    la, lb = F.log_softmax(a, 1), F.log_softmax(b, 1)
    kl = 0.5 * (F.kl_div(lb.detach(), la, reduction="batchmean", log_target=True)
                + F.kl_div(la.detach(), lb, reduction="batchmean", log_target=True))
    return ref_r_drop(a, b, y, 0.0) + alpha * kl


def rdrop_per_example(a, b, y, alpha):
    la, lb = F.log_softmax(a, 1), F.log_softmax(b, 1)
    nll = -(la.gather(1, y[:, None]) + lb.gather(1, y[:, None]))[:, 0]
    return nll + alpha * 0.5 * ((la.exp() - lb.exp()) * (la - lb)).sum(1)


def as_float(a, b, y, alpha):
    return ref_r_drop(a, b, y, alpha).item()


def no_half(a, b, y, alpha):
    return ref_r_drop(a, b, y, alpha) + alpha * (ref_r_drop(a, b, y, 1.0) - ref_r_drop(a, b, y, 0.0))


def kl_summed_over_batch(a, b, y, alpha):
    return ref_r_drop(a, b, y, 0.0) + alpha * a.shape[0] * (ref_r_drop(a, b, y, 1.0) - ref_r_drop(a, b, y, 0.0))


def kl_on_probabilities(a, b, y, alpha):
    pa, pb = a.softmax(1), b.softmax(1)
    return ref_r_drop(a, b, y, 0.0) + alpha * 0.5 * (F.kl_div(pa, pb, reduction="batchmean")
                                                     + F.kl_div(pb, pa, reduction="batchmean"))


def detached(a, b, y, alpha):
    return ref_r_drop(a, b, y, 0.0) + alpha * (ref_r_drop(a, b.detach(), y, 1.0) - ref_r_drop(a, b.detach(), y, 0.0))


def alpha_ignored(a, b, y, alpha):
    return ref_r_drop(a, b, y, 1.0)


def library(a, b, y, alpha):
    return db.r_drop_loss(a, b, y, alpha)


def test_r_drop_loss(capsys):
    assert_passes(capsys, check_r_drop_loss, ref_r_drop)
    assert_passes(capsys, check_r_drop_loss, r_drop_logit_form)
    assert_fails(check_r_drop_loss, starter, "not written yet")
    assert_fails(check_r_drop_loss, one_way, "one direction of KL only")
    assert_fails(check_r_drop_loss, no_half, "factor 1/2")
    assert_fails(check_r_drop_loss, averaged_ce, "you average the two cross-entropies", "SUMS them")
    assert_fails(check_r_drop_loss, kl_summed_over_batch, "summed over the batch")
    assert_fails(check_r_drop_loss, kl_on_probabilities, "through log_softmax")
    assert_fails(check_r_drop_loss, detached, "did you detach one pass")
    assert_fails(check_r_drop_loss, alpha_ignored, "alpha is ignored")
    assert_fails(check_r_drop_loss, library, "dropoutbook.r_drop_loss", "forbids")
    # new wrong answers (review)
    assert_fails(check_r_drop_loss, one_way_halved, "one direction of KL only")
    assert_fails(check_r_drop_loss, one_pass_ce, "only one pass's cross-entropy")
    assert_fails(check_r_drop_loss, kl_mean_over_classes, "averaged over the classes")
    assert_fails(check_r_drop_loss, alpha_on_everything, "alpha multiplies the whole loss")
    assert_fails(check_r_drop_loss, both_detached, "did you detach one pass")
    assert_fails(check_r_drop_loss, rdrop_per_example, "one-element tensor")
    assert_fails(check_r_drop_loss, as_float, "one-element tensor")


def test_r_drop_loss_in_the_averaged_variant(capsys):
    def mean_check(fn):
        return check_r_drop_loss(fn, nll="mean")

    assert_passes(capsys, mean_check, ref_r_drop_mean)
    assert_fails(mean_check, ref_r_drop, "you sum the two cross-entropies; this exercise averages them")
    assert_fails(mean_check, lambda a, b, y, alpha: one_way(a, b, y, alpha) - 0.5 * ref_r_drop(a, b, y, 0.0),
                 "one direction of KL only")
    with pytest.raises(ValueError, match="^nll must be 'sum' or 'mean'"):
        check_r_drop_loss(ref_r_drop, nll="average")


# --------------------------------------------------------------------------------------------
# exercise 3: LayerDrop's forward


def ref_layerdrop(layers, x, p, training):
    h = x
    for layer in layers:
        if training and torch.rand(()) < p:
            continue
        h = layer(h)
    return h


def layerdrop_mask_first(layers, x, p, training):  # correct, written differently
    keep = torch.rand(len(layers)) >= p if training else torch.ones(len(layers), dtype=torch.bool)
    for layer, k in zip(layers, keep.tolist()):
        if k:
            x = layer(x)
    return x


def per_example(layers, x, p, training):
    h = x
    for layer in layers:
        keep = (torch.rand(x.shape[0], 1) >= p).to(x.dtype) if training else 1.0
        h = keep * layer(h) + (1 - keep) * h
    return h


def keep_with_p(layers, x, p, training):
    return ref_layerdrop(layers, x, 1 - p, training)


def all_or_nothing(layers, x, p, training):
    if training and torch.rand(()) < p:
        return x.clone()
    return ref_layerdrop(layers, x, 0.0, False)


def rescaled(layers, x, p, training):
    h = x
    for layer in layers:
        if training and torch.rand(()) < p:
            continue
        h = h + (layer(h) - h) / (1 - p) if training else layer(h)
    return h


def zeroed(layers, x, p, training):
    h = x
    for layer in layers:
        h = torch.zeros_like(h) if training and torch.rand(()) < p else layer(h)
    return h


def drops_at_eval(layers, x, p, training):
    return ref_layerdrop(layers, x, p, True)


def same_every_call(layers, x, p, training):
    g = torch.Generator().manual_seed(0)
    h = x
    for layer in layers:
        if training and torch.rand((), generator=g) < p:
            continue
        h = layer(h)
    return h


def test_layerdrop_forward(capsys):
    assert_passes(capsys, check_layerdrop_forward, ref_layerdrop)
    assert_passes(capsys, check_layerdrop_forward, layerdrop_mask_first)
    assert_fails(check_layerdrop_forward, starter, "not written yet")
    assert_fails(check_layerdrop_forward, per_example, "shared by the whole mini-batch")
    assert_fails(check_layerdrop_forward, keep_with_p, "keep probability 1 - p")
    assert_fails(check_layerdrop_forward, all_or_nothing, "all together")
    assert_fails(check_layerdrop_forward, rescaled, "no rescaling")
    assert_fails(check_layerdrop_forward, zeroed, "h, not 0")
    assert_fails(check_layerdrop_forward, drops_at_eval, "training=False every layer is applied")
    assert_fails(check_layerdrop_forward, same_every_call, "new random numbers on every call")
    # new wrong answers (review)
    assert_fails(check_layerdrop_forward, never_skips, "no layer was ever skipped")
    assert_fails(check_layerdrop_forward, applied_to_input, "h = layer(h)", "not to the input x")
    assert_fails(check_layerdrop_forward, fixed_number_kept, "draw the layers independently")
    assert_fails(check_layerdrop_forward, in_place, "changed x in place")
    assert_fails(check_layerdrop_forward, elementwise_branch_dropout, "not the input passed through a subset")
    assert_fails(check_layerdrop_forward, ignores_p, "do not hard-code a rate")


def never_skips(layers, x, p, training):
    return ref_layerdrop(layers, x, 0.0, training)


def applied_to_input(layers, x, p, training):
    h = x
    for layer in layers:
        if training and torch.rand(()) < p:
            continue
        h = layer(x)
    return h


def fixed_number_kept(layers, x, p, training):  # a random subset of round(L(1-p)) layers: not independent
    n = len(layers)
    keep = set(torch.randperm(n)[:round(n * (1 - p))].tolist()) if training else set(range(n))
    h = x
    for i, layer in enumerate(layers):
        if i in keep:
            h = layer(h)
    return h


def in_place(layers, x, p, training):
    out = ref_layerdrop(layers, x, p, training)
    x.copy_(out)
    return x


def elementwise_branch_dropout(layers, x, p, training):  # dropout on the branch's entries, not whole layers
    h = x
    for layer in layers:
        h = h + F.dropout(layer(h) - h, p, training) * (1 - p)
    return h


def ignores_p(layers, x, p, training):  # a hard-coded rate of one half
    return ref_layerdrop(layers, x, 0.5, training)


# --------------------------------------------------------------------------------------------
# exercise 4: LoRA with adapter-input dropout


def ref_lora(x, weight, bias, A, B, scaling, p, training):
    dropped = x * (torch.rand_like(x) >= p) / (1 - p) if training else x
    return x @ weight.T + bias + scaling * (dropped @ A.T) @ B.T


def lora_with_f_dropout(x, weight, bias, A, B, scaling, p, training):  # correct, written differently
    return F.linear(x, weight, bias) + scaling * F.linear(F.linear(F.dropout(x, p, training), A), B)


def whole_input(x, weight, bias, A, B, scaling, p, training):
    x = F.dropout(x, p, training)
    return x @ weight.T + bias + scaling * x @ A.T @ B.T


def no_inverse_scale(x, weight, bias, A, B, scaling, p, training):
    dropped = x * (torch.rand_like(x) >= p) if training else x
    return x @ weight.T + bias + scaling * dropped @ A.T @ B.T


def no_scaling(x, weight, bias, A, B, scaling, p, training):
    return ref_lora(x, weight, bias, A, B, 1.0, p, training)


def on_output(x, weight, bias, A, B, scaling, p, training):
    return x @ weight.T + bias + F.dropout(scaling * x @ A.T @ B.T, p, training)


def on_code(x, weight, bias, A, B, scaling, p, training):
    return x @ weight.T + bias + scaling * F.dropout(x @ A.T, p, training) @ B.T


def shared_draw(x, weight, bias, A, B, scaling, p, training):
    keep = (torch.rand(x.shape[0], 1) >= p).to(x.dtype) / (1 - p) if training else 1.0
    return x @ weight.T + bias + scaling * (keep * x) @ A.T @ B.T


def dropout_at_eval(x, weight, bias, A, B, scaling, p, training):
    return ref_lora(x, weight, bias, A, B, scaling, p, True)


def uses_library(x, weight, bias, A, B, scaling, p, training):
    db.LoRALinear(torch.nn.Linear(2, 2), 1)
    return ref_lora(x, weight, bias, A, B, scaling, p, training)


def test_lora_forward(capsys):
    assert_passes(capsys, check_lora_forward, ref_lora)
    assert_passes(capsys, check_lora_forward, lora_with_f_dropout)
    assert_fails(check_lora_forward, starter, "not written yet")
    assert_fails(check_lora_forward, whole_input, "reaches the frozen path")
    assert_fails(check_lora_forward, no_inverse_scale, "divide the kept inputs by 1 - p")
    assert_fails(check_lora_forward, no_scaling, "not multiplied by scaling")
    assert_fails(check_lora_forward, on_output, "adapter's OUTPUT")
    assert_fails(check_lora_forward, on_code, "rank-r code")
    assert_fails(check_lora_forward, shared_draw, "shared by all input features")
    assert_fails(check_lora_forward, dropout_at_eval, "training=False")
    assert_fails(check_lora_forward, uses_library, "dropoutbook.LoRALinear", "forbids")
    # new wrong answers (review)
    assert_fails(check_lora_forward, base_path_dropped, "reaches the frozen path")
    assert_fails(check_lora_forward, scaling_twice, "multiplied by", "scaling = 1.5 once")
    assert_fails(check_lora_forward, keep_prob_p, "p is the DROP rate")
    assert_fails(check_lora_forward, mask_shared_by_rows, "every row of the batch got the same mask")
    assert_fails(check_lora_forward, in_place_mask, "in place")
    assert_fails(check_lora_forward, no_dropout, "never changes")


def base_path_dropped(x, weight, bias, A, B, scaling, p, training):
    return F.dropout(x, p, training) @ weight.T + bias + scaling * x @ A.T @ B.T


def scaling_twice(x, weight, bias, A, B, scaling, p, training):
    return ref_lora(x, weight, bias, A, B, scaling**2, p, training)


def keep_prob_p(x, weight, bias, A, B, scaling, p, training):
    dropped = x * (torch.rand_like(x) < p) / p if training else x
    return x @ weight.T + bias + scaling * dropped @ A.T @ B.T


def mask_shared_by_rows(x, weight, bias, A, B, scaling, p, training):
    dropped = x * (torch.rand(x.shape[-1]) >= p) / (1 - p) if training else x
    return x @ weight.T + bias + scaling * dropped @ A.T @ B.T


def in_place_mask(x, weight, bias, A, B, scaling, p, training):
    out = x @ weight.T + bias
    if training:
        x.mul_((torch.rand_like(x) >= p) / (1 - p))
    return out + scaling * x @ A.T @ B.T


def no_dropout(x, weight, bias, A, B, scaling, p, training):
    return ref_lora(x, weight, bias, A, B, scaling, p, False)


@pytest.mark.parametrize("check", [check_schedule_rate, check_r_drop_loss, check_layerdrop_forward, check_lora_forward])
def test_a_non_function_fails_clearly(check):
    assert_fails(check, 3, "should be a function")
