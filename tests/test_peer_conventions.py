"""The library keeps the conventions of PyTorch where they overlap, compared with torch itself.

* p = 1 keeps the autograd graph, with a zero gradient, as ``torch.nn.functional.dropout`` does;
* memory layout: channels-last and permuted inputs keep their strides, as ``torch.nn.Dropout``
  does (PyTorch's own tests check that the output strides equal the input's and that each
  element is either 0 or ``x / (1 - p)``);
* ``subnetwork_forward`` computes what the torch modules compute for a fixed mask, also with an
  evaluation-mode ``BatchNorm1d`` in the model;
* BatchNorm recalibration agrees with ``torch.optim.swa_utils.update_bn`` on the layers the
  forward reaches and leaves the other layers alone;
* AlphaDropout draws from the distribution of ``torch.nn.functional.alpha_dropout``: the same two
  output values per entry (a kept ``a*x + b`` and one dropped constant), the same drop rate and
  the same moments (not the same random stream); at p = 1 it refuses with the reason, where torch
  returns zeros (variance 0, the one rate at which AlphaDropout's promise cannot hold);
* the chapter-9 transformer applies dropout through modules, as ``torch.nn.TransformerEncoderLayer``
  does, so that Monte Carlo dropout runs on it.
"""

from __future__ import annotations

import copy
import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropoutbook as db

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# item 1: p = 1 keeps the graph


def test_drop_path_at_p_one_gives_zero_with_a_zero_gradient_like_f_dropout():
    x = torch.randn(4, 3, dtype=F64, requires_grad=True)
    reference_x = x.detach().clone().requires_grad_(True)
    y = db.drop_path(x, 1.0, generator=gen(0))
    reference = F.dropout(reference_x, 1.0, training=True)
    assert torch.equal(y, torch.zeros_like(x)) and torch.equal(reference.abs(), torch.zeros_like(x))
    assert y.requires_grad == reference.requires_grad
    y.sum().backward()  # raised "does not require grad" when p = 1 returned a detached zeros_like
    reference.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, reference_x.grad)
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("make", [
    lambda: db.DropPath(1.0),
    lambda: db.StochasticDepth(nn.Identity(), 1.0, mode="sample"),
], ids=["DropPath", "StochasticDepth-sample"])
def test_branch_dropped_with_p_one_gets_zero_gradients_like_nn_dropout(make):
    torch.manual_seed(0)
    branch = nn.Linear(3, 3).double()
    reference_branch = copy.deepcopy(branch)
    layer = make()
    x = torch.randn(5, 3, dtype=F64)
    if isinstance(layer, db.StochasticDepth):
        layer.branch = branch
        out = layer(x)
    else:
        out = x + layer(branch(x))
    (out**2).sum().backward()
    reference = x + nn.Dropout(1.0)(reference_branch(x))
    (reference**2).sum().backward()
    for ours, theirs in zip(branch.parameters(), reference_branch.parameters()):
        assert ours.grad is not None, "the branch's weights were cut off from autograd"
        assert torch.equal(ours.grad, theirs.grad)
        assert torch.equal(ours.grad, torch.zeros_like(ours))


# --------------------------------------------------------------------------------------------
# item 4: memory layout, as torch.nn.Dropout keeps it


def _elementwise(fn_name: str):
    """(call(x, generator), scale) for each element-wise dropout of the library at p = 0.4."""
    p = 0.4
    calls = {
        "inverted_dropout": (lambda x, g: db.inverted_dropout(x, p, generator=g), 1 / (1 - p)),
        "standard_dropout": (lambda x, g: db.standard_dropout(x, p, generator=g), 1.0),
        "InvertedDropout": (lambda x, g: db.InvertedDropout(p, generator=g)(x), 1 / (1 - p)),
        "StandardDropout": (lambda x, g: db.StandardDropout(p, generator=g)(x), 1.0),
        "attention_dropout": (lambda x, g: db.attention_dropout(x, p, generator=g), 1 / (1 - p)),
        "drop_block2d": (lambda x, g: db.drop_block2d(x, p, 3, generator=g), 1 / (1 - p)),
        "DropBlock2d": (lambda x, g: db.DropBlock2d(p, 3, generator=g)(x), 1 / (1 - p)),
    }
    return calls[fn_name]


ELEMENTWISE = ["inverted_dropout", "standard_dropout", "InvertedDropout", "StandardDropout",
               "attention_dropout", "drop_block2d", "DropBlock2d"]


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_permuted_inputs_keep_their_strides_and_each_element_is_zero_or_scaled(name, grad):
    """Port of the idea of PyTorch's ``test_Dropout_stride_mean_preserve``: for all 24 orders of
    the dimensions of a 4-d tensor, the output has the strides of the input (as ``nn.Dropout``)
    and every element is either 0 or the input element times the survivor scale."""
    call, scale = _elementwise(name)
    for seed, perm in enumerate(itertools.permutations(range(4))):
        base = torch.randn(2, 3, 5, 6, generator=gen(seed), dtype=F64) + 3.0  # no zeros
        x = base.permute(perm)
        x.requires_grad_(grad)
        torch_out = nn.Dropout(0.4)(x)
        out = call(x, gen(100 + seed))
        assert out.stride() == x.stride() == torch_out.stride(), (perm, out.stride(), x.stride())
        ratio = (out / x).detach()
        kept = ratio != 0
        assert torch.allclose(ratio[kept], torch.full_like(ratio[kept], scale), rtol=1e-12)
        assert 0 < kept.sum() < x.numel()


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_channels_last_input_stays_channels_last_with_the_draws_of_the_row_major_input(name, grad):
    """PyTorch's ``test_Dropout_discontiguous_channels_last``: a channels-last input gives a
    channels-last output. The library draws its mask in logical order, so the values are those
    of the same input in row-major layout with the same generator state."""
    call, _ = _elementwise(name)
    x = torch.randn(2, 3, 7, 7, generator=gen(1)) + 3.0
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_(grad)
    assert nn.Dropout(0.4)(x_cl).is_contiguous(memory_format=torch.channels_last)
    out = call(x_cl, gen(5))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out.detach(), call(x, gen(5)).detach())


@pytest.mark.parametrize("name", ["inverted_dropout", "drop_block2d", "drop_path"])
def test_p_one_keeps_the_layout(name):
    fn = {"inverted_dropout": lambda x: db.inverted_dropout(x, 1.0),
          "drop_block2d": lambda x: db.drop_block2d(x, 1.0, 3),
          "drop_path": lambda x: db.drop_path(x, 1.0)}[name]
    x = torch.randn(2, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    assert fn(x).stride() == x.stride() == F.dropout(x, 1.0).stride()


# --------------------------------------------------------------------------------------------
# item 2: subnetwork_forward with an evaluation-mode BatchNorm1d


def _bn_model() -> nn.Sequential:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2)).double()
    with torch.no_grad():  # running statistics far from 0 and 1, so that a wrong axis shows
        model[1].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.1]))
        model[1].running_var.copy_(torch.tensor([0.25, 4.0, 1.5, 0.8]))
    return model.eval()


@pytest.mark.parametrize("n_examples", [4, 3, 1], ids=["N=d", "N!=d", "N=1"])
def test_subnetwork_forward_with_batchnorm_is_what_torch_computes_for_the_fixed_mask(n_examples):
    model = _bn_model()
    x = torch.randn(n_examples, 4, generator=gen(0), dtype=F64)
    masks = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=F64)
    out = db.subnetwork_forward(model, x, [masks])
    with torch.no_grad():
        hidden = model[2](model[1](model[0](x)))  # the torch modules, in evaluation mode, on (N, d)
        expected = torch.stack([model[4](hidden * m / 0.5) for m in masks])
    assert out.shape == (3, n_examples, 2)
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12), (out - expected).abs().max()
    assert not model.training and not model[1].training


def test_subnetwork_forward_reproduces_training_mode_nn_dropout_under_mc_dropout():
    """The mask that ``nn.Dropout`` draws for one example in a Monte Carlo pass, given to
    ``subnetwork_forward``, reproduces that pass's output for that example."""
    model = _bn_model()
    x = torch.randn(4, 4, generator=gen(2), dtype=F64)
    seen = {}
    hook = model[3].register_forward_hook(lambda m, args, out: seen.update(mask=(out != 0).to(F64)))
    with db.mc_dropout(model), torch.no_grad():
        torch.manual_seed(7)
        passed = model(x)
    hook.remove()
    for n in range(4):
        row = db.subnetwork_forward(model, x, [seen["mask"][n:n + 1]])[0, n]
        assert torch.allclose(row, passed[n], rtol=1e-12, atol=1e-12)


def test_subnetwork_forward_refuses_batchnorm_of_images():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm2d(4), nn.Dropout(0.5)).eval()
    with pytest.raises(ValueError, match="BatchNorm2d"):
        db.subnetwork_forward(model, torch.randn(2, 4), [torch.ones(1, 4)])


# --------------------------------------------------------------------------------------------
# item 3: BatchNorm layers the forward never reaches


class _WithUnusedHead(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.Dropout(dropout), nn.BatchNorm1d(3))
        self.unused = nn.BatchNorm1d(3)  # e.g. a head that this forward does not call

    def forward(self, x):
        return self.body(x)


def _with_stats(model: _WithUnusedHead) -> _WithUnusedHead:
    with torch.no_grad():
        for bn in (model.body[2], model.unused):
            bn.running_mean.fill_(0.7)
            bn.running_var.fill_(2.5)
            bn.num_batches_tracked.fill_(11)
    return model


def test_recalibrate_agrees_with_update_bn_and_leaves_unreached_layers_alone():
    torch.manual_seed(0)
    ours = _with_stats(_WithUnusedHead(0.0))  # no dropout: torch's update_bn computes the same thing
    theirs = copy.deepcopy(ours)
    batches = [torch.randn(64, 3) + 1.0 for _ in range(4)]
    with pytest.warns(UserWarning, match=r"'unused' never ran.*left unchanged"):
        db.recalibrate_batchnorm(ours, batches)
    torch.optim.swa_utils.update_bn(batches, theirs)
    assert torch.allclose(ours.body[2].running_mean, theirs.body[2].running_mean, rtol=1e-6, atol=1e-7)
    assert torch.allclose(ours.body[2].running_var, theirs.body[2].running_var, rtol=1e-6, atol=1e-7)
    # update_bn resets the unreached layer to mean 0, variance 1; the library keeps what it had
    assert torch.equal(ours.unused.running_mean, torch.full((3,), 0.7))
    assert torch.equal(ours.unused.running_var, torch.full((3,), 2.5))
    assert int(ours.unused.num_batches_tracked) == 11


def test_measure_variance_shift_skips_unreached_layers_with_a_warning():
    torch.manual_seed(0)
    model = _with_stats(_WithUnusedHead(0.3))
    with pytest.warns(UserWarning, match=r"'unused' never ran.*left out"):
        shift = db.measure_variance_shift(model, [torch.randn(32, 3)])
    assert list(shift) == ["body.2"]
    assert torch.isfinite(shift["body.2"].ratio).all()


def test_measure_variance_shift_refuses_a_model_whose_batchnorm_never_runs():
    model = nn.ModuleDict({"bn": nn.BatchNorm1d(2)})
    model.forward = lambda x: x  # a forward that calls none of the layers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="no BatchNorm layer of the model ran"):
            db.measure_variance_shift(model, [torch.randn(8, 2)])


# --------------------------------------------------------------------------------------------
# item 15: the chapter-9 transformer applies dropout through modules


def _reference_tiny_transformer(model: db.TinyTransformer, tokens: torch.Tensor, generator, training: bool):
    """The forward of chapter 9 written with the public functions, as it was before the dropout
    sites became modules: the draws must come in the same order from the same generator."""
    h = model.tokens(tokens) + model.positions
    h = db.inverted_dropout(h, model.embed_dropout, training=training, generator=generator)
    for block in model.blocks:
        attn = db.self_attention(block.norm1(h), block.w_qkv, n_heads=block.n_heads,
                                 attn_dropout=block.attn_dropout, training=training, generator=generator)
        h = h + db.inverted_dropout(block.out(attn), block.resid_dropout, training=training, generator=generator)
        h = h + db.inverted_dropout(block.mlp(block.norm2(h)), block.resid_dropout, training=training,
                                    generator=generator)
    return model.head(model.norm(h).mean(dim=1))


def test_tiny_transformer_draws_the_same_masks_in_the_same_order_as_the_functional_forward():
    torch.manual_seed(0)
    g_model = gen(11)
    model = db.TinyTransformer(8, 6, 2, d_model=8, n_heads=2, n_layers=2, d_ff=16, embed_dropout=0.2,
                               attn_dropout=0.3, resid_dropout=0.25, generator=g_model).double()
    tokens = torch.randint(0, 8, (5, 6), generator=gen(1))
    for training in (True, False):
        model.train(training)
        g_model.manual_seed(42)
        ours = model(tokens)
        expected = _reference_tiny_transformer(model, tokens, gen(42), training)
        assert torch.equal(ours, expected)


def test_mc_dropout_runs_on_the_tiny_transformer_as_on_torch_transformer_layers():
    torch.manual_seed(0)
    ours = db.TinyTransformer(8, 6, 2, d_model=8, n_heads=2, n_layers=2, d_ff=16, embed_dropout=0.1,
                              attn_dropout=0.1, resid_dropout=0.1).eval()
    theirs = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True).eval()
    assert len(db.dropout_modules(theirs)) == 3  # torch's layer: dropout modules
    assert len(db.dropout_modules(ours)) == 1 + 2 * 2  # embedding, and attention + residual per block
    tokens = torch.randint(0, 8, (4, 6), generator=gen(2))
    with db.mc_dropout(ours):
        assert all(m.training for m in db.dropout_modules(ours))
        assert not ours.training and not ours.blocks[0].norm1.training
    assert not any(m.training for m in ours.modules())
    pred = db.mc_predict(ours, tokens, T=30, generator=gen(3))
    assert pred.mean.shape == (4, 2) and (pred.variance > 0).all()
    with torch.no_grad():
        deterministic = ours(tokens)
    assert not torch.allclose(pred.mean, deterministic)
    reference = db.mc_predict(theirs, torch.randn(4, 6, 8, generator=gen(4)), T=30, generator=gen(3))
    assert (reference.variance > 0).all()


def test_transformer_rates_read_and_set_the_dropout_modules():
    model = db.TinyTransformer(8, 6, 2, d_model=8, n_heads=2, embed_dropout=0.1, attn_dropout=0.2, resid_dropout=0.3)
    block = model.blocks[0]
    assert (model.embed_dropout, block.attn_dropout, block.resid_dropout) == (0.1, 0.2, 0.3)
    assert (model.embed_drop.p, block.attn_drop.p, block.resid_drop.p) == (0.1, 0.2, 0.3)
    block.attn_dropout = 0.5
    assert block.attn_drop.p == 0.5
    with pytest.raises(ValueError, match=r"^attn_dropout must be in \[0, 1\]"):
        block.attn_dropout = 1.5
    assert "attn_dropout=0.5" in repr(block)
    assert model.state_dict().keys() == {
        "positions", "tokens.weight", "norm.weight", "norm.bias", "head.weight", "head.bias",
        *(f"blocks.0.{k}" for k in ("w_qkv", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
                                    "out.weight", "out.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight",
                                    "mlp.2.bias"))}


# --------------------------------------------------------------------------------------------
# AlphaDropout (chapter 6): the distribution of torch.nn.functional.alpha_dropout


@pytest.mark.parametrize("p", [0.1, 0.35])
def test_alpha_dropout_has_the_distribution_of_torchs(p):
    torch.manual_seed(7)
    x = torch.randn(400_000, dtype=F64)
    ours = db.alpha_dropout(x, p, generator=gen(8))
    theirs = F.alpha_dropout(x, p, training=True)
    a, b = db.alpha_dropout_affine(p)
    dropped_value = a * (1 - p) * db.selu.SELU_SATURATION
    for y in (ours, theirs):  # each entry is a*x + b (kept) or the one dropped constant, nothing else
        kept = torch.isclose(y, a * x + b, rtol=0, atol=1e-9)
        dropped = torch.isclose(y, torch.full_like(y, dropped_value), rtol=0, atol=1e-9)
        assert bool((kept | dropped).all())
        se = (p * (1 - p) / x.numel()) ** 0.5
        assert abs(dropped.double().mean().item() - p) < 5 * se
    # same moments: the difference of the two estimates is within 5 standard errors of 0
    for stat in (db.estimate_mean, db.estimate_variance):
        e1, e2 = stat(ours), stat(theirs)
        assert abs(e1.value - e2.value) < 5 * (e1.stderr**2 + e2.stderr**2) ** 0.5, (stat.__name__, e1, e2)
    assert not torch.equal(ours, theirs)  # a different random stream, as documented


def test_alpha_dropout_refuses_p_one_where_torch_returns_zeros():
    x = torch.randn(1000, dtype=F64)
    theirs = F.alpha_dropout(x, 1.0, training=True)
    assert bool((theirs == 0).all()) and theirs.var().item() == 0.0  # torch: zeros, variance 0 instead of 1
    for call in (lambda: db.alpha_dropout(x, 1.0), lambda: db.AlphaDropout(1.0), lambda: db.alpha_dropout_affine(1.0)):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\) for AlphaDropout, got 1.0: .*no affine "
                                             r"correction restores variance 1.*alpha_dropout returns zeros"):
            call()
