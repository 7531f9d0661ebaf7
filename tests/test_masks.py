"""Unit and property tests of dropoutbook.masks (chapter 1): the deterministic contract.

The distribution of the masks (drop fraction, mean, variance) is checked in test_montecarlo.py;
here: shapes, dtypes, devices, values, gradients, reproducibility, module behaviour and errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dropoutbook as db
from dropoutbook import InvertedDropout, StandardDropout, bernoulli_mask, inverted_dropout, standard_dropout

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])
DROPOUTS = [inverted_dropout, standard_dropout]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rel_tol(dtype: torch.dtype) -> float:
    """Four rounding errors of ``dtype``: one for 1/(1-p), one for the product, and slack."""
    return 4 * torch.finfo(dtype).eps


def nonzero_input(shape, dtype=torch.float64, seed=0) -> torch.Tensor:
    """Values in [0.5, 1.5) with random signs: never zero, so 'out != 0' is exactly 'kept'."""
    g = gen(seed)
    mag = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).double()
    return (mag * sign).to(dtype)


# --------------------------------------------------------------------------------------------
# hypothesis strategies

shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)
# p away from 1 so that values/(1-p) stay far from float16 overflow; p == 1 has its own tests.
probs = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9]), st.floats(0.0, 0.95, allow_nan=False))
dtypes = st.sampled_from(FLOAT_DTYPES)
seeds = st.integers(0, 2**31 - 1)


def tensor_from(shape, dtype, seed) -> torch.Tensor:
    g = gen(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 10).to(dtype)


# --------------------------------------------------------------------------------------------
# bernoulli_mask


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [torch.bool])
def test_bernoulli_mask_shape_dtype_values(dtype):
    mask = bernoulli_mask((3, 4, 5), 0.4, generator=gen(0), dtype=dtype)
    assert mask.shape == (3, 4, 5)
    assert mask.dtype == dtype
    assert mask.device.type == "cpu"
    values = set(mask.double().unique().tolist())
    assert values == {0.0, 1.0}  # 60 entries at q = 0.4: both values occur with this seed


def test_bernoulli_mask_default_dtype_is_float32():
    assert bernoulli_mask(4, 0.5, generator=gen(0)).dtype == torch.float32


@pytest.mark.parametrize("shape, expected", [(5, (5,)), ((), ()), ([2, 3], (2, 3)), (torch.Size([4, 1]), (4, 1)),
                                             ((0, 3), (0, 3)), ((np.int64(2), 3), (2, 3))])
def test_bernoulli_mask_accepts_int_and_sequences(shape, expected):
    assert tuple(bernoulli_mask(shape, 0.5, generator=gen(0)).shape) == expected


@pytest.mark.parametrize("device", DEVICES)
def test_bernoulli_mask_device(device):
    mask = bernoulli_mask((2, 3), 0.5, device=device)
    assert mask.device.type == device
    assert mask.shape == (2, 3)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [torch.bool])
def test_bernoulli_mask_extreme_keep_probs(dtype):
    ones = bernoulli_mask(1000, 1.0, generator=gen(0), dtype=dtype)
    zeros = bernoulli_mask(1000, 0.0, generator=gen(0), dtype=dtype)
    assert bool(ones.all())
    assert not bool(zeros.any())


def test_bernoulli_mask_reproducible_with_generator():
    a = bernoulli_mask(1000, 0.5, generator=gen(7))
    b = bernoulli_mask(1000, 0.5, generator=gen(7))
    c = bernoulli_mask(1000, 0.5, generator=gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bernoulli_mask_bool_and_float_masks_agree_for_same_seed():
    as_bool = bernoulli_mask(500, 0.3, generator=gen(3), dtype=torch.bool)
    as_float = bernoulli_mask(500, 0.3, generator=gen(3), dtype=torch.float32)
    assert torch.equal(as_bool.float(), as_float)


@pytest.mark.parametrize("shape, exc, match", [
    ((2, -1), ValueError, r"shape\[1\] must be a non-negative int"),
    (-3, ValueError, r"shape\[0\] must be a non-negative int"),
    ((2, 2.5), TypeError, r"shape\[1\] must be a non-negative int"),
    ((True, 2), TypeError, r"shape\[0\] must be a non-negative int"),
    (2.0, TypeError, r"^shape must be an int or a sequence"),
    ("23", TypeError, r"^shape must be an int or a sequence"),
    (None, TypeError, r"^shape must be an int or a sequence"),
])
def test_bernoulli_mask_bad_shape(shape, exc, match):
    with pytest.raises(exc, match=match):
        bernoulli_mask(shape, 0.5)


@pytest.mark.parametrize("keep_prob, exc, match", [
    (-0.1, ValueError, r"^keep_prob must be in \[0, 1\]"),
    (1.5, ValueError, r"^keep_prob must be in \[0, 1\]"),
    (float("nan"), ValueError, r"^keep_prob must be a number in \[0, 1\], got nan"),
    (True, TypeError, r"^keep_prob must be a number.*got bool"),
    ("0.5", TypeError, r"^keep_prob must be a number.*got str"),
    (None, TypeError, r"^keep_prob must be a number"),
    (torch.tensor([0.2, 0.3]), TypeError, r"^keep_prob must be a number.*tensor of shape"),
])
def test_bernoulli_mask_bad_keep_prob(keep_prob, exc, match):
    with pytest.raises(exc, match=match):
        bernoulli_mask(3, keep_prob)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.complex64, "float32", float])
def test_bernoulli_mask_bad_dtype(dtype):
    with pytest.raises(TypeError, match=r"^dtype must be a floating dtype or torch.bool"):
        bernoulli_mask(3, 0.5, dtype=dtype)


@pytest.mark.parametrize("generator", [0, "seed", np.random.default_rng(0)])
def test_bernoulli_mask_bad_generator(generator):
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None"):
        bernoulli_mask(3, 0.5, generator=generator)


def test_bernoulli_mask_accepts_one_element_tensor_keep_prob():
    a = bernoulli_mask(100, torch.tensor(0.25), generator=gen(0))
    b = bernoulli_mask(100, 0.25, generator=gen(0))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------
# inverted_dropout / standard_dropout: properties


@settings(max_examples=60)
@given(shape=shapes, p=probs, dtype=dtypes, seed=seeds, training=st.booleans())
def test_output_keeps_shape_dtype_device_and_never_modifies_input(shape, p, dtype, seed, training):
    x = tensor_from(shape, dtype, seed)
    before = x.clone()
    for fn in DROPOUTS:
        out = fn(x, p, training=training, generator=gen(seed))
        assert out.shape == x.shape
        assert out.dtype == x.dtype
        assert out.device == x.device
        assert torch.equal(x, before), f"{fn.__name__} modified its input"
        if x.numel():
            assert out.data_ptr() != x.data_ptr(), f"{fn.__name__} returned storage shared with x"


@settings(max_examples=60)
@given(shape=nonempty_shapes, p=probs, dtype=dtypes, seed=seeds)
def test_inverted_dropout_values_are_zero_or_scaled_input(shape, p, dtype, seed):
    x = nonzero_input(shape, dtype, seed)
    out = inverted_dropout(x, p, generator=gen(seed + 1)).double()
    xd = x.double()
    kept = out != 0
    expected = xd[kept] / (1 - p)
    assert torch.allclose(out[kept], expected, rtol=rel_tol(dtype), atol=0)


@settings(max_examples=60)
@given(shape=nonempty_shapes, p=probs, dtype=dtypes, seed=seeds)
def test_standard_dropout_values_are_zero_or_input(shape, p, dtype, seed):
    x = nonzero_input(shape, dtype, seed)
    out = standard_dropout(x, p, generator=gen(seed + 1))
    kept = out != 0
    assert torch.equal(out[kept], x[kept])  # no scaling at all in training


@settings(max_examples=40)
@given(shape=nonempty_shapes, p=probs, seed=seeds)
def test_inverted_and_standard_dropout_use_the_same_mask_for_the_same_seed(shape, p, seed):
    x = nonzero_input(shape, torch.float64, seed)
    inv = inverted_dropout(x, p, generator=gen(seed))
    std = standard_dropout(x, p, generator=gen(seed))
    assert torch.equal(inv != 0, std != 0)
    assert torch.allclose(inv, std / (1 - p), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", DROPOUTS)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_dtype_and_device_kept(fn, dtype, device, p, training):
    x = torch.ones(4, 3, dtype=dtype, device=device)
    out = fn(x, p, training=training)
    assert (out.shape, out.dtype, out.device) == (x.shape, x.dtype, x.device)


def test_keeps_non_contiguous_layout_semantics():
    x = torch.arange(12.0).reshape(3, 4).t()  # non-contiguous view
    out = inverted_dropout(x, 0.5, generator=gen(0))
    assert out.shape == (4, 3)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] * 2.0)


# --------------------------------------------------------------------------------------------
# eval mode, p == 0, p == 1


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", ["eval", "p0"])
def test_inverted_identity_returns_a_new_tensor(case, dtype):
    x = nonzero_input((5, 7), dtype)
    before = x.clone()
    out = inverted_dropout(x, 0.0 if case == "p0" else 0.4, training=(case == "p0"))
    assert torch.equal(out, x)
    out.add_(1.0)  # the caller may modify the output ...
    out[0, 0] = 123.0
    assert torch.equal(x, before)  # ... without touching x


def test_inverted_identity_on_expanded_input_is_writable_and_independent():
    x = torch.ones(1).expand(6)  # a view whose elements share one memory location
    out = inverted_dropout(x, 0.5, training=False)
    out[0] = 5.0
    assert x.tolist() == [1.0] * 6
    assert out.tolist() == [5.0] + [1.0] * 5


def test_standard_p0_training_returns_new_tensor():
    x = nonzero_input((10,))
    before = x.clone()
    out = standard_dropout(x, 0.0)
    assert torch.equal(out, x)
    out.mul_(3.0)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_standard_dropout_eval_scales_by_keep_prob(p, dtype):
    x = nonzero_input((50,), dtype)
    before = x.clone()
    out = standard_dropout(x, p, training=False)
    assert torch.allclose(out.double(), x.double() * (1 - p), rtol=rel_tol(dtype), atol=0)
    out.add_(1.0)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn", DROPOUTS)
def test_p_one_gives_zeros(fn, dtype):
    x = nonzero_input((20, 3), dtype)
    before = x.clone()
    out = fn(x, 1.0, generator=gen(0))
    assert out.dtype == dtype
    assert torch.equal(out, torch.zeros_like(x))
    out.add_(1.0)  # a fresh tensor: writing to it leaves x alone
    assert torch.equal(x, before)


def test_inverted_p_one_eval_is_identity():
    x = nonzero_input((8,))
    assert torch.equal(inverted_dropout(x, 1.0, training=False), x)


@pytest.mark.parametrize("p", [0, 1, np.float64(0.25), torch.tensor(0.25)])
def test_p_accepts_ints_numpy_and_one_element_tensors(p):
    x = nonzero_input((200,))
    out = inverted_dropout(x, p, generator=gen(0))
    pf = float(p)
    if pf == 1.0:
        assert torch.equal(out, torch.zeros_like(x))
    elif pf == 0.0:
        assert torch.equal(out, x)
    else:
        assert torch.equal(out, inverted_dropout(x, 0.25, generator=gen(0)))


# --------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_inverted_dropout_gradient_is_mask_over_keep_prob(p, dtype):
    x = nonzero_input((40, 25), dtype).requires_grad_(True)
    out = inverted_dropout(x, p, generator=gen(11))
    out.sum().backward()
    kept = (out != 0).to(dtype)
    expected = kept / (1 - p)
    assert x.grad is not None and x.grad.dtype == dtype
    assert 0 < kept.sum().item() < kept.numel()  # both kinds of units occur
    torch.testing.assert_close(x.grad.double(), expected.double(), rtol=rel_tol(dtype), atol=0)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_standard_dropout_gradient_is_mask(p):
    x = nonzero_input((1000,)).requires_grad_(True)
    out = standard_dropout(x, p, generator=gen(5))
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).double())


@pytest.mark.parametrize("p, expected", [(0.0, 1.0), (1.0, 0.0)])
def test_inverted_dropout_gradient_at_extreme_p(p, expected):
    x = nonzero_input((30,)).requires_grad_(True)
    inverted_dropout(x, p).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, expected))


def test_eval_gradient_is_identity_for_inverted_and_keep_prob_for_standard():
    x = nonzero_input((30,)).requires_grad_(True)
    inverted_dropout(x, 0.4, training=False).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    x.grad = None
    standard_dropout(x, 0.4, training=False).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.6), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------------------------
# reproducibility


@pytest.mark.parametrize("fn", DROPOUTS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_same_seed_same_output_different_seed_different_output(fn, dtype):
    x = nonzero_input((2000,), dtype)
    a = fn(x, 0.5, generator=gen(42))
    b = fn(x, 0.5, generator=gen(42))
    c = fn(x, 0.5, generator=gen(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("fn", DROPOUTS)
def test_generator_advances_between_calls(fn):
    g = gen(0)
    x = nonzero_input((2000,))
    assert not torch.equal(fn(x, 0.5, generator=g), fn(x, 0.5, generator=g))


@pytest.mark.parametrize("fn", DROPOUTS)
def test_global_seed_reproducible_without_generator(fn):
    x = nonzero_input((2000,))
    torch.manual_seed(3)
    a = fn(x, 0.5)
    torch.manual_seed(3)
    b = fn(x, 0.5)
    assert torch.equal(a, b)


def test_elements_get_independent_masks():
    # Identical inputs must not share one mask: with 2000 elements at p = 0.5, both values appear.
    out = inverted_dropout(torch.ones(2000, dtype=torch.float64), 0.5, generator=gen(0))
    assert set(out.unique().tolist()) == {0.0, 2.0}


# --------------------------------------------------------------------------------------------
# modules


@pytest.mark.parametrize("module_cls, fn", [(InvertedDropout, inverted_dropout), (StandardDropout, standard_dropout)])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.7, 1.0])
def test_module_matches_functional_form(module_cls, fn, p):
    x = nonzero_input((64, 8))
    layer = module_cls(p, generator=gen(9))
    g = gen(9)
    assert layer.training
    for _ in range(2):  # the module keeps using (and advancing) its generator
        assert torch.equal(layer(x), fn(x, p, training=True, generator=g))
    layer.eval()
    assert torch.equal(layer(x), fn(x, p, training=False))


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_inverted_module_behaves_like_nn_dropout(p):
    x = nonzero_input((300, 7))
    ours, theirs = InvertedDropout(p, generator=gen(1)), nn.Dropout(p)
    # evaluation: identity for both
    ours.eval(), theirs.eval()
    assert torch.equal(ours(x), x)
    assert torch.equal(theirs(x), ours(x))
    # training: same support {0, x/(1-p)} (zeros everywhere at p = 1, identity at p = 0)
    ours.train(), theirs.train()
    torch.manual_seed(0)
    for out in (ours(x), theirs(x)):
        kept = out != 0
        if p == 1.0:
            assert not kept.any()
        else:
            assert torch.allclose(out[kept], x[kept] / (1 - p), rtol=1e-12, atol=0)
        if p == 0.0:
            assert torch.equal(out, x)


def test_module_mode_follows_parent_train_eval():
    inner = InvertedDropout(0.5, generator=gen(0))
    model = nn.Sequential(nn.Identity(), inner)
    x = nonzero_input((100,))
    model.eval()
    assert not inner.training
    assert torch.equal(model(x), x)
    model.train()
    assert inner.training
    assert not torch.equal(model(x), x)


def test_standard_module_eval_scales_by_keep_prob():
    x = nonzero_input((10,))
    layer = StandardDropout(0.25).eval()
    assert torch.allclose(layer(x), 0.75 * x, rtol=1e-15, atol=0)


@pytest.mark.parametrize("module_cls", [InvertedDropout, StandardDropout])
def test_module_defaults_and_repr(module_cls):
    layer = module_cls()
    assert layer.p == 0.5
    assert layer.generator is None
    assert "p=0.5" in repr(layer)
    assert module_cls(0.3).extra_repr() == "p=0.3"
    assert list(layer.parameters()) == []


@pytest.mark.parametrize("module_cls", [InvertedDropout, StandardDropout])
def test_module_never_modifies_input(module_cls):
    x = nonzero_input((100,))
    before = x.clone()
    module_cls(0.5, generator=gen(0))(x)
    module_cls(0.5).eval()(x)
    assert torch.equal(x, before)


# --------------------------------------------------------------------------------------------
# errors


BAD_P = [
    (-0.1, ValueError, r"^p must be in \[0, 1\], got -0.1"),
    (1.0001, ValueError, r"^p must be in \[0, 1\], got 1.0001"),
    (float("inf"), ValueError, r"^p must be in \[0, 1\]"),
    (float("nan"), ValueError, r"^p must be a number in \[0, 1\], got nan"),
    (True, TypeError, r"^p must be a number in \[0, 1\], got bool"),
    (False, TypeError, r"^p must be a number in \[0, 1\], got bool"),
    ("0.5", TypeError, r"^p must be a number in \[0, 1\], got str"),
    (None, TypeError, r"^p must be a number in \[0, 1\], got NoneType"),
    (1j, TypeError, r"^p must be a number in \[0, 1\], got complex"),
    (torch.tensor([0.1, 0.2]), TypeError, r"^p must be a number in \[0, 1\], got a tensor of shape \(2,\)"),
]


@pytest.mark.parametrize("p, exc, match", BAD_P)
@pytest.mark.parametrize("fn", DROPOUTS)
@pytest.mark.parametrize("training", [True, False])
def test_bad_p_functional(fn, p, exc, match, training):
    with pytest.raises(exc, match=match):
        fn(torch.ones(3), p, training=training)


@pytest.mark.parametrize("p, exc, match", BAD_P)
@pytest.mark.parametrize("module_cls", [InvertedDropout, StandardDropout])
def test_bad_p_module(module_cls, p, exc, match):
    with pytest.raises(exc, match=match):
        module_cls(p)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("fn", DROPOUTS)
def test_integer_tensor_x_rejected(fn, dtype):
    with pytest.raises(TypeError, match=r"^x must have a floating dtype.*got torch\."):
        fn(torch.ones(3, dtype=dtype), 0.5)


@pytest.mark.parametrize("x", [[1.0, 2.0], np.ones(3), 1.0, None])
@pytest.mark.parametrize("fn", DROPOUTS)
def test_non_tensor_x_rejected(fn, x):
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor"):
        fn(x, 0.5)


@pytest.mark.parametrize("generator", [0, "seed", np.random.default_rng(0)])
@pytest.mark.parametrize("fn", DROPOUTS)
def test_bad_generator_functional(fn, generator):
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None"):
        fn(torch.ones(3), 0.5, generator=generator)


@pytest.mark.parametrize("module_cls", [InvertedDropout, StandardDropout])
def test_bad_generator_module(module_cls):
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None"):
        module_cls(0.5, generator=123)


@pytest.mark.parametrize("fn", DROPOUTS)
def test_module_rejects_integer_input_at_call_time(fn):
    layer = InvertedDropout(0.5) if fn is inverted_dropout else StandardDropout(0.5)
    with pytest.raises(TypeError, match=r"^x must have a floating dtype"):
        layer(torch.ones(3, dtype=torch.long))


def test_public_api_exported_from_package():
    for name in ["bernoulli_mask", "inverted_dropout", "standard_dropout", "InvertedDropout", "StandardDropout"]:
        assert getattr(db, name) is getattr(db.masks, name)
        assert name in db.__all__
        assert getattr(db, name).__doc__ and len(getattr(db, name).__doc__) > 50
