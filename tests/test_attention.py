"""Chapter 9, "Dropout in transformers": the library (dropoutbook.attention), its derivations, and
the Monte-Carlo checks of attention dropout's row sums.

The stated closed forms (typed in here only) are compared with what dropoutbook.derivations
derives; the sampler is compared with the derived forms within Z standard errors, with power
against the plausible wrong formulas (rows renormalized, no 1/(1-p) scaling, the uniform-row
variance used for a peaked row).
"""

from __future__ import annotations


import pytest
import sympy as sp
import torch

from dropoutbook import TinyTransformer, TransformerBlock, attention_dropout, counting_task, self_attention
from dropoutbook.derivations import attention_row_moments, drop_rate
from dropoutbook.montecarlo import estimate_mean, estimate_variance
from helpers import check_agrees_and_rejects, same

p = drop_rate


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# derivations


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_row_moments_are_the_stated_formulas(n):
    r = attention_row_moments(n)
    a, v = r.weights, r.values
    assert same(r.row_sum_mean_any_weights, sum(a))
    assert r.row_sum_mean == 1
    assert same(r.row_sum_variance, p / (1 - p) * sum(x**2 for x in a))
    assert same(r.output_mean, sum(x * y for x, y in zip(a, v)))
    assert same(r.output_variance, p / (1 - p) * sum((x * y) ** 2 for x, y in zip(a, v)))
    assert same(r.uniform_row_sum_variance, p / ((1 - p) * n))
    # plausible wrong formulas are told apart
    assert not same(r.row_sum_variance, p * (1 - p) * sum(x**2 for x in a))  # no 1/(1-p) scaling
    if n > 1:  # for one key the squared sum is the sum of squares
        assert not same(r.row_sum_variance, p / (1 - p) * sum(a) ** 2)
        assert not same(r.output_variance, p / (1 - p) * sum(x * y for x, y in zip(a, v)) ** 2)


def test_row_moments_identities_and_errors():
    r = attention_row_moments(2)
    assert [i.lhs_text for i in r.identities()] == [
        "E[row sum]", "E[row sum], on the simplex", "Var[row sum]", "E[output]", "Var[output]"]
    assert repr(r.identities()[2]) == "Var[row sum] = p*(a1**2 + a2**2)/(1 - p)"
    for bad in (0, 9, 2.5, True):
        with pytest.raises(TypeError if isinstance(bad, (bool, float)) else ValueError,
                           match=r"n must be an int in \[1, 8\]"):
            attention_row_moments(bad)


# --------------------------------------------------------------------------------------------
# attention_dropout and self_attention: contract


def test_attention_dropout_is_inverted_dropout_of_the_weights():
    w = torch.softmax(torch.randn(4, 6, 6, generator=gen(0), dtype=torch.float64), -1)
    before = w.clone()
    out = attention_dropout(w, 0.25, generator=gen(1))
    assert torch.equal(w, before)
    kept = out != 0
    assert torch.allclose(out[kept], w[kept] / 0.75)
    assert torch.equal(attention_dropout(w, 0.25, training=False), w)
    assert not torch.allclose(out.sum(-1), torch.ones(4, 6, dtype=torch.float64))  # rows are not renormalized


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(weights=torch.ones(3), p=0.1), ValueError, r"^weights must have shape"),
    (dict(weights=torch.ones(2, 2, dtype=torch.int64), p=0.1), TypeError, r"^weights must have a floating dtype"),
    (dict(weights=torch.ones(2, 2), p=1.5), ValueError, r"^p must be in \[0, 1\]"),
])
def test_attention_dropout_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        attention_dropout(kwargs["weights"], kwargs["p"])


def test_self_attention_matches_torch_without_dropout():
    x = torch.randn(2, 5, 8, generator=gen(2), dtype=torch.float64)
    w = torch.randn(8, 24, generator=gen(3), dtype=torch.float64) / 3
    for causal in (False, True):
        out, weights = self_attention(x, w, n_heads=2, causal=causal, return_weights=True)
        q, k, v = (x @ w).split(8, -1)
        split = lambda t: t.reshape(2, 5, 2, 4).transpose(1, 2)  # noqa: E731
        ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
        assert torch.allclose(out, ref.transpose(1, 2).reshape(2, 5, 8), atol=1e-12)
        assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 5, dtype=torch.float64))
        if causal:
            assert torch.all(weights[..., 0, 1:] == 0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=torch.ones(5, 4), w=torch.ones(4, 12)), ValueError, r"^x must have shape \(batch, n, d\)"),
    (dict(x=torch.ones(1, 5, 4), w=torch.ones(4, 8)), ValueError, r"^w_qkv must have shape"),
    (dict(x=torch.ones(1, 5, 4), w=torch.ones(4, 12), n_heads=3), ValueError, r"^n_heads must divide"),
    (dict(x=torch.ones(1, 5, 4), w=torch.ones(4, 12), attn_dropout=-1), ValueError, r"^attn_dropout must be in"),
    (dict(x=torch.ones(1, 5, 4, dtype=torch.int64), w=torch.ones(4, 12)), TypeError, r"^x must have a floating"),
])
def test_self_attention_bad_input(kwargs, exc, match):
    x, w = kwargs.pop("x"), kwargs.pop("w")
    with pytest.raises(exc, match=match):
        self_attention(x, w, **kwargs)


def test_transformer_modules():
    torch.manual_seed(0)
    model = TinyTransformer(8, 6, 3, d_model=8, n_heads=2, n_layers=2, d_ff=16,
                            embed_dropout=0.1, attn_dropout=0.2, resid_dropout=0.3)
    tokens = torch.randint(0, 8, (4, 6))
    assert model(tokens).shape == (4, 3)
    block = model.blocks[0]
    assert "attn_dropout=0.2" in repr(block) and "resid_dropout=0.3" in repr(block)
    row_sums = block.last_weights.sum(-1)
    assert not torch.allclose(row_sums, torch.ones_like(row_sums))  # training: rows do not sum to one
    model.eval()
    a, b = model(tokens), model(tokens)
    assert torch.equal(a, b)
    assert torch.allclose(block.last_weights.sum(-1), torch.ones_like(row_sums))
    with pytest.raises(TypeError, match="tokens must be an int64 tensor"):
        model(tokens.float())
    with pytest.raises(ValueError, match=r"tokens must have shape \(batch, 6\)"):
        model(tokens[:, :5])
    with pytest.raises(ValueError, match=r"tokens must be ids in \[0, 7\]"):
        model(torch.full((2, 6), 8))
    with pytest.raises(ValueError, match=r"tokens must be ids in \[0, 7\]"):
        model(torch.full((2, 6), -1))
    with pytest.raises(ValueError, match="n_heads must divide d_model"):
        TransformerBlock(8, 3, 16)
    with pytest.raises(ValueError, match="resid_dropout must be in"):
        TransformerBlock(8, 2, 16, resid_dropout=2)
    with pytest.raises(ValueError, match="embed_dropout must be in"):
        TinyTransformer(8, 6, 3, embed_dropout=-0.5)


def test_counting_task():
    split = counting_task(400, 300, label_noise=0.25, seed=3)
    clean = counting_task(400, 300, label_noise=0.0, seed=3)
    assert split.x_train.shape == (400, 12) and split.x_test.shape == (300, 12)
    truth = ((split.x_train == 0).sum(1) > (split.x_train == 1).sum(1)).long()
    assert torch.equal(clean.y_train, truth)
    assert (split.y_train != truth).any()
    # the flipped fraction is label_noise (flipped, not resampled: that would flip half as many)
    big = counting_task(4000, 10, label_noise=0.25, seed=4)
    big_truth = ((big.x_train == 0).sum(1) > (big.x_train == 1).sum(1)).long()
    flipped = (big.y_train != big_truth).double()
    check_agrees_and_rejects(estimate_mean(flipped), 0.25, wrong={"labels resampled, not flipped": 0.125})
    assert torch.equal(split.y_test, ((split.x_test == 0).sum(1) > (split.x_test == 1).sum(1)).long())
    with pytest.raises(ValueError, match="vocab_size must be an int >= 2"):
        counting_task(10, vocab_size=1)
    with pytest.raises(ValueError, match="label_noise must be in"):
        counting_task(10, label_noise=1.5)


# --------------------------------------------------------------------------------------------
# Monte Carlo: row sums of dropped attention weights


@pytest.mark.parametrize("p_value", [0.1, 0.3])
def test_simulated_row_sums_agree_with_the_derived_moments(p_value):
    """One peaked row a = (0.7, 0.2, 0.1), 200,000 dropped copies through attention_dropout. Mean and variance of the row sum
    agree with the derivation; renormalized rows (variance 0, caught by the mean's z if no
    scaling), no scaling (mean 1 - p) and the uniform-row variance p/((1-p) n) are rejected."""
    r = attention_row_moments(3)
    row = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    n = 200_000
    weights = attention_dropout(row.expand(n, 1, 3), p_value, generator=gen(int(p_value * 10)))
    sums = weights.sum(-1).flatten()
    subs = {p: sp.nsimplify(p_value), **{a: sp.nsimplify(float(v)) for a, v in zip(r.weights, row)}}
    exact_var = float(r.row_sum_variance.subs(subs))
    check_agrees_and_rejects(estimate_mean(sums), 1.0, wrong={"no 1/(1-p) scaling": 1 - p_value})
    check_agrees_and_rejects(estimate_variance(sums), exact_var, wrong={
        "uniform-row variance p/((1-p) n)": float(r.uniform_row_sum_variance.subs(p, sp.nsimplify(p_value))),
        "no scaling p(1-p) sum a^2": p_value * (1 - p_value) * float((row**2).sum()),
    })


def test_simulated_rows_inside_self_attention():
    """The weights returned by self_attention in training: every row sum has mean 1 and the
    derived variance p/(1-p) sum_j a_j^2, with a_j the weights in evaluation mode."""
    x = torch.randn(1, 4, 4, generator=gen(7), dtype=torch.float64)
    w = torch.randn(4, 12, generator=gen(8), dtype=torch.float64)
    _, clean = self_attention(x, w, training=False, return_weights=True)
    reps = 50_000
    xs = x.expand(reps, 4, 4)
    _, dropped = self_attention(xs, w, attn_dropout=0.2, generator=gen(9), return_weights=True)
    sums = dropped.sum(-1)[:, 0, :]  # (reps, 4 queries)
    for i in range(4):
        a = clean[0, 0, i]
        exact_var = 0.2 / 0.8 * float((a**2).sum())
        check_agrees_and_rejects(estimate_mean(sums[:, i]), 1.0, wrong={"no scaling": 0.8})
        check_agrees_and_rejects(estimate_variance(sums[:, i]), exact_var,
                                 wrong={"uniform row": 0.2 / 0.8 / 4} if abs(exact_var - 0.0625) > 0.01 else {})


def test_simulated_attention_output_agrees_with_the_derived_moments():
    """The output o = sum_j ã_j v_j of one query: mean sum_j a_j v_j and the derived variance
    p/(1-p) sum_j a_j^2 v_j^2; the variance of the squared sum, p/(1-p) (sum_j a_j v_j)^2, and
    the unscaled mean (1-p) sum_j a_j v_j are rejected."""
    r = attention_row_moments(3)
    row = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    values = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    p_value = 0.3
    weights = attention_dropout(row.expand(200_000, 1, 3), p_value, generator=gen(12))
    out = (weights @ values).flatten()
    subs = {p: sp.nsimplify(p_value),
            **{a: sp.nsimplify(float(x)) for a, x in zip(r.weights, row)},
            **{v: sp.nsimplify(float(x)) for v, x in zip(r.values, values)}}
    mean, var = float(r.output_mean.subs(subs)), float(r.output_variance.subs(subs))
    check_agrees_and_rejects(estimate_mean(out), mean, wrong={"no 1/(1-p) scaling": (1 - p_value) * mean})
    check_agrees_and_rejects(estimate_variance(out), var, wrong={
        "p/(1-p) (sum a_j v_j)^2": p_value / (1 - p_value) * mean**2,
    })
