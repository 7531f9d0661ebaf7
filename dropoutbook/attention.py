r"""Chapter 9, "Dropout in transformers": attention, residual and embedding dropout in a small transformer.

Three places of a transformer drop units (:cite:`vaswani2017attention`, :cite:`radford2018improving`):

* *attention dropout*: the attention weights, after the softmax (:func:`attention_dropout`);
* *residual dropout*: the output of each sub-layer, before it is added to the residual stream;
* *embedding dropout*: the sum of the token and position embeddings.

All three are inverted dropout (chapter 1) with the book's convention: ``p`` is the drop
probability. :func:`self_attention` computes single- or multi-head scaled dot-product attention
with attention dropout and can return the weights; :class:`TransformerBlock` and
:class:`TinyTransformer` assemble a small pre-norm transformer with the three rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ._validation import (check_bool, check_float_tensor, check_generator, check_int, check_probability,
                          check_same_dtype, check_seed)
from .data import Split
from .masks import InvertedDropout, inverted_dropout

__all__ = ["attention_dropout", "self_attention", "TransformerBlock", "TinyTransformer", "counting_task"]


def attention_dropout(weights: torch.Tensor, p: float, *, training: bool = True,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Attention dropout: inverted dropout of the attention weights, after the softmax.

    .. math:: \tilde a_{ij} = \frac{m_{ij}\, a_{ij}}{1-p}, \qquad m_{ij} \sim \mathrm{Bernoulli}(1-p).

    A row of attention weights sums to one; after dropout it does not. Its sum
    :math:`S_i = \sum_j \tilde a_{ij}` has :math:`\mathbb E[S_i] = 1` and
    :math:`\operatorname{Var}[S_i] = \frac{p}{1-p} \sum_j a_{ij}^2`, derived in chapter 9,
    "Dropout in transformers", section "Derivation". The rows are *not* renormalized.

    Args:
        weights: floating tensor of attention weights, shape ``(..., n_queries, n_keys)``;
            never modified.
        p: drop probability in [0, 1].
        training: drop if ``True``, the identity otherwise.
        generator: optional ``torch.Generator``.

    Shape:
        Output has the shape, dtype and device of ``weights``.

    Examples:
        >>> w = torch.full((2, 4), 0.25)
        >>> attention_dropout(w, 0.5, training=False).sum(-1)
        tensor([1., 1.])
    """
    check_float_tensor(weights, "weights")
    if weights.dim() < 2:
        raise ValueError(f"weights must have shape (..., n_queries, n_keys), got {tuple(weights.shape)}")
    return inverted_dropout(weights, p, training=check_bool(training, "training"), generator=generator)


def self_attention(x: torch.Tensor, w_qkv: torch.Tensor, *, n_heads: int = 1, attn_dropout: float = 0.0,
                   training: bool = True, causal: bool = False, generator: torch.Generator | None = None,
                   return_weights: bool = False):
    r"""Scaled dot-product self-attention with attention dropout after the softmax.

    With :math:`Q, K, V` the three column blocks of :math:`x W_{qkv}`, split into ``n_heads``
    heads of size :math:`d_h`,

    .. math:: A = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_h}}\Big), \qquad
              \text{output} = \operatorname{dropout}_p(A)\, V

    (:cite:`vaswani2017attention`; attention dropout as in GPT, :cite:`radford2018improving`). With
    ``causal=True`` query :math:`i` attends to keys :math:`j \le i` only.

    Args:
        x: floating tensor of shape ``(batch, n, d)``; never modified.
        w_qkv: floating tensor of shape ``(d, 3 d)``.
        n_heads: number of heads, a positive int dividing ``d``.
        attn_dropout: drop probability of the attention weights, in [0, 1].
        training: apply attention dropout if ``True``.
        causal: mask the future.
        generator: optional ``torch.Generator`` for the dropout mask.
        return_weights: also return the attention weights after dropout, shape
            ``(batch, n_heads, n, n)``.

    Returns:
        The output ``(batch, n, d)`` (heads concatenated), and the weights if asked.

    See chapter 9, "Dropout in transformers".

    Examples:
        >>> x = torch.randn(2, 5, 4)
        >>> out, w = self_attention(x, torch.randn(4, 12), n_heads=2, return_weights=True)
        >>> out.shape, w.shape
        (torch.Size([2, 5, 4]), torch.Size([2, 2, 5, 5]))
    """
    check_float_tensor(x)
    check_float_tensor(w_qkv, "w_qkv")
    check_same_dtype("x", x, w_qkv=w_qkv)
    if x.dim() != 3:
        raise ValueError(f"x must have shape (batch, n, d), got {tuple(x.shape)}")
    d = x.shape[-1]
    if tuple(w_qkv.shape) != (d, 3 * d):
        raise ValueError(f"w_qkv must have shape (d, 3d) = ({d}, {3 * d}), got {tuple(w_qkv.shape)}")
    n_heads = check_int(n_heads, "n_heads", minimum=1)
    if d % n_heads:
        raise ValueError(f"n_heads must divide the model width d = {d}, got {n_heads}")
    p = check_probability(attn_dropout, "attn_dropout")
    training = check_bool(training, "training")
    causal = check_bool(causal, "causal")
    return_weights = check_bool(return_weights, "return_weights")
    check_generator(generator)
    out, weights = _attention(x, w_qkv, n_heads, causal,
                              lambda a: attention_dropout(a, p, training=training, generator=generator))
    return (out, weights) if return_weights else out


def _attention(x: torch.Tensor, w_qkv: torch.Tensor, n_heads: int, causal: bool,
               drop: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head scaled dot-product self-attention of checked arguments; ``drop`` is applied to
    the softmax weights (a function, or the dropout module of a :class:`TransformerBlock`)."""
    batch, n, d = x.shape
    dh = d // n_heads
    q, k, v = (x @ w_qkv).split(d, dim=-1)
    q, k, v = (t.reshape(batch, n, n_heads, dh).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
    if causal:
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = drop(scores.softmax(dim=-1))
    out = (weights @ v).transpose(1, 2).reshape(batch, n, d)
    return out, weights


class TransformerBlock(nn.Module):
    r"""A pre-norm transformer block with attention dropout and residual dropout.

    .. math:: h = x + \operatorname{drop}_{r}\big(\operatorname{Attn}_{a}(\operatorname{LN}(x))\, W_o\big),
              \qquad y = h + \operatorname{drop}_{r}\big(\operatorname{MLP}(\operatorname{LN}(h))\big),

    where :math:`\operatorname{Attn}_a` applies attention dropout with rate ``attn_dropout``
    (as :func:`self_attention` does) and :math:`\operatorname{drop}_r` is inverted dropout with rate
    ``resid_dropout`` on each sub-layer's output before it is added to the residual stream
    (:cite:`vaswani2017attention`, who place the norm after the addition). See chapter 9,
    "Dropout in transformers".

    Both rates are applied by dropout modules, :class:`~dropoutbook.InvertedDropout` submodules
    ``attn_drop`` and ``resid_drop`` (the latter used at both residual additions), so the block
    follows ``train()``/``eval()`` like any ``torch.nn`` model and :func:`~dropoutbook.mc_dropout`
    and :func:`~dropoutbook.mc_predict` find them. ``attn_dropout`` and ``resid_dropout`` read and
    set their rates.

    Args:
        d_model: model width; n_heads: number of heads (dividing ``d_model``);
        d_ff: hidden width of the MLP; all three positive ints.
        attn_dropout, resid_dropout: drop probabilities in [0, 1].
        causal: mask the future in the attention.
        generator: optional ``torch.Generator`` for every dropout mask of the block.

    Shape:
        Input ``(batch, n, d_model)``, floating; output of the same shape.

    Examples:
        >>> block = TransformerBlock(8, 2, 16, attn_dropout=0.1, resid_dropout=0.1)
        >>> block(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, attn_dropout: float = 0.0,
                 resid_dropout: float = 0.0, causal: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        d_model, n_heads, d_ff = (check_int(v, name, minimum=1) for v, name in
                                  ((d_model, "d_model"), (n_heads, "n_heads"), (d_ff, "d_ff")))
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model = {d_model}, got {n_heads}")
        self.d_model, self.n_heads, self.causal = d_model, n_heads, check_bool(causal, "causal")
        self.generator = check_generator(generator)
        self.attn_drop = InvertedDropout(check_probability(attn_dropout, "attn_dropout"), generator=generator)
        self.resid_drop = InvertedDropout(check_probability(resid_dropout, "resid_dropout"), generator=generator)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.w_qkv = nn.Parameter(torch.randn(d_model, 3 * d_model) / math.sqrt(d_model))
        self.out = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.last_weights: torch.Tensor | None = None  #: attention weights (after dropout) of the last call

    @property
    def attn_dropout(self) -> float:
        """The drop probability of the attention weights (the rate of ``attn_drop``)."""
        return self.attn_drop.p

    @attn_dropout.setter
    def attn_dropout(self, value: float) -> None:
        self.attn_drop.p = check_probability(value, "attn_dropout")

    @property
    def resid_dropout(self) -> float:
        """The drop probability of the sub-layers' outputs (the rate of ``resid_drop``)."""
        return self.resid_drop.p

    @resid_dropout.setter
    def resid_dropout(self, value: float) -> None:
        self.resid_drop.p = check_probability(value, "resid_dropout")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (batch, n, {self.d_model}), got {tuple(x.shape)}")
        check_same_dtype("the block's parameters", self.w_qkv, x=x)
        attn, weights = _attention(self.norm1(x), self.w_qkv, self.n_heads, self.causal, self.attn_drop)
        self.last_weights = weights.detach()
        h = x + self.resid_drop(self.out(attn))
        return h + self.resid_drop(self.mlp(self.norm2(h)))

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, attn_dropout={self.attn_dropout}, resid_dropout={self.resid_dropout}"


class TinyTransformer(nn.Module):
    r"""A small transformer classifier of token sequences, with embedding, attention and residual dropout.

    Token and learned position embeddings are added, the sum goes through embedding dropout
    (rate ``embed_dropout``, as in :cite:`vaswani2017attention` and :cite:`devlin2019bert`),
    then ``n_layers`` :class:`TransformerBlock` s, a final LayerNorm, the mean over positions
    and a linear layer to ``n_classes`` logits. Every rate is applied by an
    :class:`~dropoutbook.InvertedDropout` submodule (``embed_drop`` and those of the blocks), so
    :func:`~dropoutbook.mc_predict` runs Monte Carlo dropout on it. See chapter 9, "Dropout in
    transformers", section "Experiment".

    Args:
        vocab_size, seq_len, n_classes, d_model, n_heads, n_layers, d_ff: positive ints.
        embed_dropout, attn_dropout, resid_dropout: drop probabilities in [0, 1].
        generator: optional ``torch.Generator`` for every dropout mask.

    Shape:
        Input: int64 tokens ``(batch, seq_len)``; output: logits ``(batch, n_classes)``.

    Examples:
        >>> model = TinyTransformer(10, 6, 2, d_model=8, n_heads=2, n_layers=1, d_ff=16)
        >>> model(torch.zeros(3, 6, dtype=torch.int64)).shape
        torch.Size([3, 2])
    """

    def __init__(self, vocab_size: int, seq_len: int, n_classes: int, *, d_model: int = 32, n_heads: int = 2,
                 n_layers: int = 1, d_ff: int = 64, embed_dropout: float = 0.0, attn_dropout: float = 0.0,
                 resid_dropout: float = 0.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        vocab_size, seq_len, n_classes, d_model, n_heads, n_layers, d_ff = (
            check_int(value, name, minimum=1) for value, name in (
                (vocab_size, "vocab_size"), (seq_len, "seq_len"), (n_classes, "n_classes"),
                (d_model, "d_model"), (n_heads, "n_heads"), (n_layers, "n_layers"), (d_ff, "d_ff")))
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model = {d_model}, got {n_heads}")
        attn_dropout = check_probability(attn_dropout, "attn_dropout")
        resid_dropout = check_probability(resid_dropout, "resid_dropout")
        self.seq_len = seq_len
        self.generator = check_generator(generator)
        self.embed_drop = InvertedDropout(check_probability(embed_dropout, "embed_dropout"), generator=generator)
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, attn_dropout=attn_dropout, resid_dropout=resid_dropout,
                             generator=generator)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    @property
    def embed_dropout(self) -> float:
        """The drop probability of the embeddings (the rate of ``embed_drop``)."""
        return self.embed_drop.p

    @embed_dropout.setter
    def embed_dropout(self, value: float) -> None:
        self.embed_drop.p = check_probability(value, "embed_dropout")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64:
            got = f"dtype {tokens.dtype}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise TypeError(f"tokens must be an int64 tensor of shape (batch, seq_len), got {got}")
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise ValueError(f"tokens must have shape (batch, {self.seq_len}), got {tuple(tokens.shape)}")
        if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < self.tokens.num_embeddings:
            raise ValueError(f"tokens must be ids in [0, {self.tokens.num_embeddings - 1}] (vocab_size "
                             f"{self.tokens.num_embeddings}), got values from {int(tokens.min())} to {int(tokens.max())}")
        h = self.tokens(tokens) + self.positions.to(self.tokens.weight.dtype)
        h = self.embed_drop(h)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h).mean(dim=1))


def counting_task(n_train: int, n_test: int = 500, *, seq_len: int = 12, vocab_size: int = 8,
                  label_noise: float = 0.0, seed: int = 0) -> Split:
    r"""A toy sequence task: does token 0 occur more often than token 1?

    Each sequence has ``seq_len`` tokens drawn uniformly from ``{0, ..., vocab_size - 1}``; its
    label is 1 when token 0 occurs more often than token 1 and 0 otherwise (ties included). With
    probability ``label_noise`` a *training* label is flipped; test labels are clean. Used in
    chapter 9, "Dropout in transformers", section "Experiment".

    Args:
        n_train, n_test: numbers of sequences, positive ints.
        seq_len: length of a sequence; vocab_size: number of tokens (at least 2).
        label_noise: probability in [0, 1] that a training label is flipped.
        seed: seed of the draw (training and test sets are independent draws).

    Returns:
        A :class:`~dropoutbook.data.Split` with int64 tokens ``(n, seq_len)`` and int64 labels.

    Examples:
        >>> split = counting_task(100, 50, seed=1)
        >>> split.x_train.shape, split.x_test.dtype
        (torch.Size([100, 12]), torch.int64)
    """
    n_train, n_test, seq_len = (check_int(value, name, minimum=1) for value, name in (
        (n_train, "n_train"), (n_test, "n_test"), (seq_len, "seq_len")))
    vocab_size = check_int(vocab_size, "vocab_size", minimum=2)
    label_noise = check_probability(label_noise, "label_noise")
    g = torch.Generator().manual_seed(check_seed(seed))

    def draw(n):
        x = torch.randint(0, vocab_size, (n, seq_len), generator=g)
        return x, ((x == 0).sum(1) > (x == 1).sum(1)).long()

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    flip = torch.rand(n_train, generator=g) < label_noise
    return Split(x_train, torch.where(flip, 1 - y_train, y_train), x_test, y_test)
