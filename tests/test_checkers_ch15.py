"""Checkers of chapter 15, "Applications": the reference passes, differently written correct answers
pass, the blank starter fails with "not written yet", and typical wrong answers fail with their
specific hint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dropoutbook as db
from dropoutbook import masked_reconstruction_loss, mc_cate, referral_curve, sample_zinb
from dropoutbook.exercises import check_masked_loss, check_mc_cate, check_referral_curve, check_zinb_sampler
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# exercise 1: the referral curve


def ref_referral(correct, uncertainty, fractions):
    order = torch.argsort(uncertainty)  # most certain first
    n = len(correct)
    return [correct[order[:round(n * (1 - r))]].double().mean().item() for r in fractions]


def referral_numpy(correct, uncertainty, fractions):  # correct: numpy, descending sort and cut the top
    c, u = np.asarray(correct), np.asarray(uncertainty)
    order = np.argsort(-u)
    out = []
    for r in fractions:
        referred = int(round(len(c) * r))
        out.append(c[order[referred:]].mean())
    return np.array(out)


def referral_cumsum(correct, uncertainty, fractions):  # correct: a cumulative sum, as the library does
    ranked = correct[torch.sort(uncertainty).indices].double()
    kept = torch.tensor([round(len(correct) * (1 - r)) for r in fractions])
    return torch.cumsum(ranked, 0)[kept - 1] / kept


def referral_most_certain(correct, uncertainty, fractions):
    return ref_referral(correct, -uncertainty, fractions)


def referral_all(correct, uncertainty, fractions):
    return [correct.double().mean().item() for _ in fractions]


def referral_referred(correct, uncertainty, fractions):
    order = torch.argsort(uncertainty)
    n = len(correct)
    return [correct[order[round(n * (1 - r)):]].double().mean().item() for r in fractions]


def referral_keep_r(correct, uncertainty, fractions):
    order = torch.argsort(uncertainty)
    return [correct[order[:max(round(len(correct) * r), 1)]].double().mean().item() for r in fractions]


def referral_floor(correct, uncertainty, fractions):
    order = torch.argsort(uncertainty)
    return [correct[order[:math.floor(len(correct) * (1 - r))]].double().mean().item() for r in fractions]


def referral_one_too_few(correct, uncertainty, fractions):
    order = torch.argsort(uncertainty)
    return [correct[order[:round(len(correct) * (1 - r)) - 1]].double().mean().item() for r in fractions]


def referral_error_rate(correct, uncertainty, fractions):
    return [1 - a for a in ref_referral(correct, uncertainty, fractions)]


def referral_in_place(correct, uncertainty, fractions):
    uncertainty[:] = uncertainty.sort().values
    return ref_referral(correct, uncertainty, fractions)


# --------------------------------------------------------------------------------------------
# exercise 2: the ZINB sampler


def ref_zinb(mu, theta, pi, n):  # Gamma-Poisson, then the technical zeros
    rate = torch.distributions.Gamma(theta, theta / mu).sample((n,))
    counts = torch.poisson(rate)
    return counts * (torch.rand(n) >= pi)


def zinb_negative_binomial(mu, theta, pi, n):  # correct: torch's NegativeBinomial (total_count theta)
    y = torch.distributions.NegativeBinomial(total_count=theta, probs=mu / (mu + theta)).sample((n,))
    return torch.where(torch.rand(n) < pi, torch.zeros(n), y)


def zinb_numpy(mu, theta, pi, n):  # correct: a numpy generator, returned as a list of ints
    rng = np.random.default_rng(int(torch.randint(0, 2**31, ())))
    y = rng.negative_binomial(theta, theta / (theta + mu), size=n)
    return (y * (rng.random(n) >= pi)).tolist()


def zinb_swapped(mu, theta, pi, n):
    return ref_zinb(mu, theta, 1 - pi, n)


def zinb_no_inflation(mu, theta, pi, n):
    return ref_zinb(mu, theta, 0.0, n)


def zinb_theta_upside_down(mu, theta, pi, n):
    return ref_zinb(mu, 1 / theta, pi, n)


def zinb_poisson(mu, theta, pi, n):
    return torch.poisson(torch.full((n,), mu)) * (torch.rand(n) >= pi)


def zinb_rate_scale(mu, theta, pi, n):
    rate = torch.distributions.Gamma(theta, mu / theta).sample((n,))  # rate and scale confused
    return torch.poisson(rate) * (torch.rand(n) >= pi)


def zinb_inverted(mu, theta, pi, n):
    return ref_zinb(mu, theta, pi, n) / (1 - pi)


# --------------------------------------------------------------------------------------------
# exercise 3: the MC-dropout treatment effect


def ref_mc_cate(model, x, T):
    samples = db.mc_predict(model, x, T, return_samples=True).samples
    tau = samples[..., 1] - samples[..., 0]
    return tau.mean(0), tau.var(0)


def mc_cate_loop(model, x, T):  # correct: a plain loop under mc_dropout, plug-in variance
    with db.mc_dropout(model), torch.no_grad():
        taus = torch.stack([(lambda out: out[:, 1] - out[:, 0])(model(x)) for _ in range(T)])
    return taus.mean(0), taus.var(0, correction=0)


def mc_cate_train_mode(model, x, T):  # correct: switch to train mode and back by hand
    was = model.training
    model.train()
    try:
        with torch.no_grad():
            taus = torch.stack([model(x) @ torch.tensor([-1.0, 1.0], dtype=x.dtype) for _ in range(T)])
    finally:
        model.train(was)
    return taus.mean(0), taus.var(0)


def mc_cate_swapped(model, x, T):
    mean, var = ref_mc_cate(model, x, T)
    return -mean, var


def mc_cate_eval(model, x, T):
    with torch.no_grad():
        taus = torch.stack([model(x)[:, 1] - model(x)[:, 0] for _ in range(T)])
    return taus.mean(0), taus.var(0)


def mc_cate_summed(model, x, T):
    samples = db.mc_predict(model, x, T, return_samples=True).samples
    return (samples[..., 1] - samples[..., 0]).mean(0), samples[..., 0].var(0) + samples[..., 1].var(0)


def mc_cate_independent_masks(model, x, T):  # each head from its own pass
    a = db.mc_predict(model, x, T, return_samples=True).samples
    b = db.mc_predict(model, x, T, return_samples=True).samples
    tau = b[..., 1] - a[..., 0]
    return tau.mean(0), tau.var(0)


def mc_cate_std(model, x, T):
    mean, var = ref_mc_cate(model, x, T)
    return mean, var.sqrt()


def mc_cate_of_mean(model, x, T):
    mean, var = ref_mc_cate(model, x, T)
    return mean, var / T


def mc_cate_left_training(model, x, T):
    model.train()
    with torch.no_grad():
        taus = torch.stack([(lambda out: out[:, 1] - out[:, 0])(model(x)) for _ in range(T)])
    return taus.mean(0), taus.var(0)


def mc_cate_one_mask(model, x, T):
    with db.mc_dropout(model), torch.no_grad():
        out = model(x)
    tau = (out[:, 1] - out[:, 0]).expand(T, -1)
    return tau.mean(0), tau.var(0)


# --------------------------------------------------------------------------------------------
# exercise 4: the masked reconstruction loss


def ref_masked(model, x, p):
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_weighted(model, x, p):  # correct: a keep mask and a weighted mean
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    out = model(x * keep / (1 - p))
    drop = 1 - keep
    return ((out - x) ** 2 * drop).sum() / drop.sum()


def masked_bernoulli(model, x, p):  # correct: torch.bernoulli, mse_loss on the selected entries
    hidden = torch.bernoulli(torch.full_like(x, p)).bool()
    out = model(torch.where(hidden, torch.zeros_like(x), x / (1 - p)))
    return torch.nn.functional.mse_loss(out[hidden], x[hidden])


def masked_swapped(model, x, p):
    return ref_masked(model, x, 1 - p)


def masked_no_scale(model, x, p):
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden)
    return ((out - x) ** 2)[hidden].mean()


def masked_shared(model, x, p):
    hidden = (torch.rand(x.shape[1]) < p).expand_as(x)
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_rows(model, x, p):
    hidden = (torch.rand(x.shape[0], 1) < p).expand_as(x)
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_all_entries(model, x, p):
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2).mean()


def masked_visible(model, x, p):
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[~hidden].mean()


def masked_corrupted_target(model, x, p):
    hidden = torch.rand(x.shape) < p
    corrupted = x * ~hidden / (1 - p)
    return ((model(corrupted) - corrupted) ** 2)[hidden].mean()


def masked_sum(model, x, p):
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].sum()


def masked_clean(model, x, p):
    hidden = torch.rand(x.shape) < p
    return ((model(x) - x) ** 2)[hidden].mean()


def masked_detached(model, x, p):
    return ref_masked(model, x, p).detach()


def masked_twice(model, x, p):
    model(x)
    return ref_masked(model, x, p)


# --------------------------------------------------------------------------------------------
# more wrong answers: library functions imported by name, outliers, reused draws, the usual mix-ups


def referral_imported(correct, uncertainty, fractions):  # the library, through a name imported earlier
    return referral_curve(correct, uncertainty, fractions)


def referral_sorted_fractions(correct, uncertainty, fractions):  # the values in the order of sorted(fractions)
    return ref_referral(correct, uncertainty, sorted(fractions))


def referral_strings(correct, uncertainty, fractions):
    return np.array([str(v) for v in ref_referral(correct, uncertainty, fractions)])


def referral_complex(correct, uncertainty, fractions):
    return np.array(ref_referral(correct, uncertainty, fractions)) + 0j


def zinb_imported(mu, theta, pi, n):
    return sample_zinb(torch.full((n,), mu), theta, pi, seed=int(torch.randint(0, 2**31, ()))).counts


def zinb_doubled_outlier(mu, theta, pi, n):  # every count doubled, one huge count to widen a tolerance
    y = ref_zinb(mu, theta, pi, n) * 2
    y[0] = 1e6
    return y


def zinb_block_zeros(mu, theta, pi, n):  # the technical zeros at fixed positions
    y = ref_zinb(mu, theta, 0.0, n)
    y[:round(pi * n)] = 0
    return y


def zinb_sorted(mu, theta, pi, n):
    return ref_zinb(mu, theta, pi, n).sort().values


def zinb_fixed_seed(mu, theta, pi, n):  # a private generator seeded inside: the same sample on every call
    g = torch.Generator().manual_seed(0)
    rate = torch._standard_gamma(torch.full((n,), float(theta)), generator=g) * mu / theta
    return torch.poisson(rate, generator=g) * (torch.rand(n, generator=g) >= pi)


def zinb_matrix(mu, theta, pi, n):
    return ref_zinb(mu, theta, pi, n).reshape(1000, n // 1000)


def zinb_torch_probs(mu, theta, pi, n):  # torch's probs is the success probability: mu / (mu + theta)
    y = torch.distributions.NegativeBinomial(total_count=theta, probs=theta / (theta + mu)).sample((n,))
    return y * (torch.rand(n) >= pi)


def zinb_one_bernoulli(mu, theta, pi, n):  # one Bernoulli for the whole vector
    rate = torch.distributions.Gamma(theta, theta / mu).sample((n,))
    return torch.poisson(rate) * (torch.rand(1) >= pi)


def mc_cate_imported(model, x, T):
    return tuple(mc_cate(model, x, T)[:2])


def mc_cate_swapped_outlier(model, x, T):  # wrong sign, one huge row to widen a tolerance
    mean, var = ref_mc_cate(model, x, T)
    mean, var = -mean, var.clone()
    mean[0] = var[0] = 1e30
    return mean, var


def mc_cate_summed_outlier(model, x, T):
    mean, var = mc_cate_summed(model, x, T)
    var = var.clone()
    var[0] = 1e30
    return mean, var


def mc_cate_two_passes(model, x, T):  # T ignored
    return ref_mc_cate(model, x, 2)


def mc_cate_one_pass_short(model, x, T):
    return ref_mc_cate(model, x, T - 1)


def mc_cate_difference_of_variances(model, x, T):
    samples = db.mc_predict(model, x, T, return_samples=True).samples
    return (samples[..., 1] - samples[..., 0]).mean(0), (samples[..., 1].var(0) - samples[..., 0].var(0)).abs()


def mc_cate_standard_error(model, x, T):
    mean, var = ref_mc_cate(model, x, T)
    return mean, (var / T).sqrt()


def mc_cate_always_eval_after(model, x, T):  # model.train() ... model.eval(): the mode is not restored
    model.train()
    with torch.no_grad():
        taus = torch.stack([(lambda out: out[:, 1] - out[:, 0])(model(x)) for _ in range(T)])
    model.eval()
    return taus.mean(0), taus.var(0)


def masked_imported(model, x, p):
    return masked_reconstruction_loss(model, x, p)


def masked_fixed_seed(model, x, p):  # the same mask on every call
    g = torch.Generator().manual_seed(0)
    hidden = torch.rand(x.shape, generator=g, dtype=x.dtype) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


_MASKS: dict = {}


def masked_cached(model, x, p):  # one mask per shape, drawn once
    hidden = _MASKS.setdefault((tuple(x.shape), p), torch.rand(x.shape) < p)
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_halves(model, x, p):  # the second half of the rows copies the mask of the first
    half = torch.rand(x.shape[0] // 2, x.shape[1]) < p
    hidden = torch.cat([half, half, half[: x.shape[0] % 2]])
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_mse_of_masked(model, x, p):  # F.mse_loss of masked tensors divides by every entry
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return torch.nn.functional.mse_loss(out * hidden, x * hidden)


def masked_expected_count(model, x, p):  # divides by the expected number p N of hidden entries
    hidden = torch.rand(x.shape) < p
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2 * hidden).sum() / (p * x.numel())


# --------------------------------------------------------------------------------------------
# the verdicts

CORRECT = [
    (check_referral_curve, ref_referral),
    (check_referral_curve, referral_numpy),
    (check_referral_curve, referral_cumsum),
    (check_zinb_sampler, ref_zinb),
    (check_zinb_sampler, zinb_negative_binomial),
    (check_zinb_sampler, zinb_numpy),
    (check_mc_cate, ref_mc_cate),
    (check_mc_cate, mc_cate_loop),
    (check_mc_cate, mc_cate_train_mode),
    (check_masked_loss, ref_masked),
    (check_masked_loss, masked_weighted),
    (check_masked_loss, masked_bernoulli),
]

def mc_cate_trains_the_model(model, x, T):  # right numbers, then a parameter changed in place
    out = ref_mc_cate(model, x, T)
    with torch.no_grad():
        next(model.parameters()).mul_(1.01)
    return out


def masked_exact_count(model, x, p):  # exactly round(p N) entries hidden, chosen at random
    n = x.numel()
    hidden = torch.zeros(n, dtype=torch.bool)
    hidden[torch.randperm(n)[:round(p * n)]] = True
    hidden = hidden.reshape(x.shape)
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


def masked_exact_per_row(model, x, p):  # exactly round(p G) entries hidden in every row
    g = x.shape[1]
    hidden = torch.argsort(torch.rand(x.shape), dim=1) < round(p * g)
    out = model(x * ~hidden / (1 - p))
    return ((out - x) ** 2)[hidden].mean()


WRONG = [  # (checker, answer, the hints its message must contain)
    (check_mc_cate, mc_cate_trains_the_model, ("changed the model's weights",)),
    (check_masked_loss, masked_exact_count, ("p N rounded", "on every call")),
    (check_masked_loss, masked_exact_per_row, ("every row (cell) of your mask hides exactly",)),
    (check_referral_curve, referral_most_certain, ("you refer the most CERTAIN cases",)),
    (check_referral_curve, referral_all, ("accuracy of all N cases",)),
    (check_referral_curve, referral_referred, ("accuracy of the referred cases",)),
    (check_referral_curve, referral_keep_r, ("you KEEP a fraction r",)),
    (check_referral_curve, referral_floor, ("rounded down",)),
    (check_referral_curve, referral_one_too_few, ("off by one: you keep one case too few",)),
    (check_referral_curve, referral_error_rate, ("error rate",)),
    (check_referral_curve, referral_in_place, ("changed its inputs in place",)),
    (check_referral_curve, lambda c, u, f: ref_referral(c, u, f)[:-1], ("should return 4 numbers",)),
    (check_referral_curve, lambda c, u, f: db.referral_curve(c, u, f), ("forbids",)),
    (check_zinb_sampler, zinb_swapped, ("pi and 1 - pi are swapped",)),
    (check_zinb_sampler, zinb_no_inflation, ("there are no technical zeros",)),
    (check_zinb_sampler, zinb_theta_upside_down, ("mu + mu^2 theta",)),
    (check_zinb_sampler, zinb_poisson, ("your counts are Poisson",)),
    (check_zinb_sampler, zinb_rate_scale, ("rate and scale are confused",)),
    (check_zinb_sampler, zinb_inverted, ("non-negative whole numbers", "divide the survivors by 1 - pi",)),
    (check_zinb_sampler, lambda mu, theta, pi, n: ref_zinb(mu, theta, pi, n)[:10], ("should return 100000",)),
    (check_mc_cate, mc_cate_swapped, ("wrong sign",)),
    (check_mc_cate, mc_cate_eval, ("dropout is off",)),
    (check_mc_cate, mc_cate_summed, ("variance of the DIFFERENCE",)),
    (check_mc_cate, mc_cate_independent_masks, ("independent masks",)),
    (check_mc_cate, mc_cate_std, ("standard deviation",)),
    (check_mc_cate, mc_cate_of_mean, ("variance of the MEAN",)),
    (check_mc_cate, mc_cate_left_training, ("left the model in training mode",)),
    (check_mc_cate, mc_cate_one_mask, ("every pass uses the same mask",)),
    (check_mc_cate, lambda model, x, T: ref_mc_cate(model, x, T)[0], ("should return a pair",)),
    (check_mc_cate, lambda model, x, T: db.mc_cate(model, x, T)[:2], ("forbids",)),
    (check_masked_loss, masked_swapped, ("keep and drop are swapped",)),
    (check_masked_loss, masked_no_scale, ("survivors are not rescaled",)),
    (check_masked_loss, masked_shared, ("every row (cell) has the same mask",)),
    (check_masked_loss, masked_rows, ("you hide whole rows",)),
    (check_masked_loss, masked_all_entries, ("over ALL entries",)),
    (check_masked_loss, masked_visible, ("you score the VISIBLE entries",)),
    (check_masked_loss, masked_corrupted_target, ("your target is the corrupted input",)),
    (check_masked_loss, masked_sum, ("you sum the squared errors",)),
    (check_masked_loss, masked_clean, ("the model sees the clean x",)),
    (check_masked_loss, masked_detached, ("no gradient",)),
    (check_masked_loss, masked_twice, ("called the model 2 times",)),
    (check_masked_loss, lambda model, x, p: db.masked_reconstruction_loss(model, x, p), ("forbids",)),
    (check_referral_curve, referral_imported, ("calls dropoutbook.referral_curve, which the statement forbids",)),
    (check_referral_curve, referral_sorted_fractions, ("in the order of the sorted fractions",)),
    (check_referral_curve, referral_strings, ("should return numbers",)),
    (check_referral_curve, referral_complex, ("should return real numbers",)),
    (check_referral_curve, lambda c, u, f: [torch.ones(2)] * len(f), ("should return numbers",)),
    (check_referral_curve, lambda c, u, f: np.array([None] * len(f)), ("should return numbers",)),
    (check_zinb_sampler, zinb_imported, ("calls dropoutbook.sample_zinb, which the statement forbids",)),
    (check_zinb_sampler, zinb_doubled_outlier, ("do not have the moments of the ZINB",)),
    (check_zinb_sampler, zinb_block_zeros, ("the technical zeros are at fixed positions",)),
    (check_zinb_sampler, zinb_sorted, ("your counts are sorted",)),
    (check_zinb_sampler, zinb_fixed_seed, ("the same counts on every call",)),
    (check_zinb_sampler, zinb_matrix, ("shape (100000,)", "got shape (1000, 100)")),
    (check_zinb_sampler, zinb_torch_probs, ("torch's NegativeBinomial", "probs = mu / (theta + mu)")),
    (check_zinb_sampler, zinb_one_bernoulli, ("one Bernoulli for the whole vector",)),
    (check_mc_cate, mc_cate_imported, ("calls dropoutbook.mc_cate, which the statement forbids",)),
    (check_mc_cate, mc_cate_swapped_outlier, ("outside", "range of the effects")),
    (check_mc_cate, mc_cate_summed_outlier, ("outside", "range of the variances")),
    (check_mc_cate, mc_cate_two_passes, ("ran 2 passes with dropout on",)),
    (check_mc_cate, mc_cate_one_pass_short, ("passes with dropout on", "T = ")),
    (check_mc_cate, mc_cate_difference_of_variances, ("your variance is not that of the sampled effects",)),
    (check_mc_cate, mc_cate_standard_error, ("standard error",)),
    (check_mc_cate, mc_cate_always_eval_after, ("given in training mode",)),
    (check_masked_loss, masked_imported, ("calls dropoutbook.masked_reconstruction_loss, which the statement forbids",)),
    (check_masked_loss, masked_fixed_seed, ("the same mask on every call",)),
    (check_masked_loss, masked_cached, ("the same mask on every call",)),
    (check_masked_loss, masked_halves, ("reuses its draws",)),
    (check_masked_loss, masked_mse_of_masked, ("number of ALL entries",)),
    (check_masked_loss, masked_expected_count, ("expected number p N",)),
]


@pytest.mark.parametrize("check, answer", CORRECT, ids=lambda v: getattr(v, "__name__", ""))
def test_a_correct_answer_passes(capsys, check, answer):
    assert_passes(capsys, check, answer)


@pytest.mark.parametrize("check, answer, hints", WRONG, ids=lambda v: getattr(v, "__name__", "") if callable(v) else "")
def test_a_wrong_answer_fails_with_its_hint(check, answer, hints):
    assert_fails(check, answer, *hints)


CHECKS = [check_referral_curve, check_zinb_sampler, check_mc_cate, check_masked_loss]


@pytest.mark.parametrize("check", CHECKS)
def test_the_starter_fails_as_not_written_yet(check):
    assert_fails(check, starter, "not written yet")


def test_every_exercise_has_five_wrong_answers_and_two_other_correct_ones():
    for check in CHECKS:
        assert sum(c is check for c, _, _ in WRONG) >= 5
        assert sum(c is check for c, _ in CORRECT) >= 3  # the reference and two written differently


@pytest.mark.parametrize("check", CHECKS)
def test_a_non_function_fails_clearly(check):
    assert_fails(check, "not a function", "should be a function")


@pytest.mark.parametrize("check, answer", [(check_referral_curve, ref_referral), (check_zinb_sampler, ref_zinb),
                                           (check_mc_cate, ref_mc_cate), (check_masked_loss, ref_masked)])
def test_a_check_leaves_the_global_generator_as_it_found_it(capsys, check, answer):
    torch.manual_seed(5)
    state = torch.get_rng_state()
    check(answer)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("check, answer", [(check_referral_curve, referral_imported), (check_mc_cate, mc_cate_imported)])
def test_the_library_works_again_after_a_check(check, answer):
    assert_fails(check, answer, "forbids")
    correct = torch.tensor([True, False, True])
    assert torch.allclose(referral_curve(correct, torch.tensor([0.1, 0.9, 0.2]), [0.0]), torch.tensor([2 / 3]).double())
