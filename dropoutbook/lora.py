r"""Chapter 14, "Dropout in modern training": LoRA adapters with dropout on the adapter's input.

Low-rank adaptation (LoRA) :cite:`hu2022lora` fine-tunes a pretrained linear layer :math:`W_0` by
learning only a low-rank update :math:`BA`. The common implementation applies dropout to the
input of the low-rank path only, so that the frozen path sees the clean input.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import (check_float_tensor, check_generator, check_int, check_module, check_probability,
                          check_real, check_same_dtype)
from .masks import InvertedDropout

__all__ = ["LoRALinear"]


class LoRALinear(nn.Module):
    r"""A pretrained ``torch.nn.Linear`` plus a trainable low-rank update whose input goes through dropout.

    .. math:: y = W_0 x + b_0 + \frac{\alpha}{r}\, B A\, \operatorname{drop}_p(x),

    with :math:`A \in \mathbb R^{r \times d_\text{in}}`, :math:`B \in \mathbb R^{d_\text{out} \times r}`
    and :math:`\operatorname{drop}_p` inverted dropout (an :class:`~dropoutbook.InvertedDropout`
    submodule ``lora_dropout``, so :func:`~dropoutbook.mc_dropout` and
    :class:`~dropoutbook.DropoutSchedule` find it). The frozen path :math:`W_0 x + b_0` sees the clean
    input; only the adapter path is dropped, as in the widespread PEFT implementation of LoRA
    :cite:`hu2022lora`. :math:`A` is initialized as ``torch.nn.Linear`` initializes a weight (as the widespread
    implementation does; the paper draws :math:`A` from a Gaussian) and :math:`B = 0`, so that the
    wrapped layer starts as the pretrained one. Since the mask is inverted,
    :math:`\mathbb E[y] = W_0 x + b_0 + \frac{\alpha}{r}BAx`; the variance it adds to output :math:`j` is
    :math:`\frac{p}{1-p}\left(\frac{\alpha}{r}\right)^2 \sum_k (BA)_{jk}^2 x_k^2` (chapter 14, section
    "Derivation").

    The base layer is *not* modified: its parameters keep their ``requires_grad``; train only
    :meth:`lora_parameters` (pass them alone to the optimizer) to fine-tune LoRA-style.

    Args:
        base: the pretrained ``torch.nn.Linear``; it is held, not copied.
        rank: :math:`r`, a positive int.
        alpha: the scale numerator :math:`\alpha`, a finite real > 0 (default: :math:`r`, scale 1).
        dropout: :math:`p`, the drop rate of the adapter's input, in [0, 1].
        generator: optional ``torch.Generator`` for the initialization of :math:`A` and the masks.

    Shape:
        Input ``(..., in_features)``, of the base layer's dtype; output ``(..., out_features)``.

    Examples:
        >>> base = nn.Linear(4, 3)
        >>> lora = LoRALinear(base, rank=2, dropout=0.1)
        >>> x = torch.randn(5, 4)
        >>> torch.equal(lora(x), base(x))  # B = 0 at the start
        True
        >>> [tuple(p.shape) for p in lora.lora_parameters()]
        [(2, 4), (3, 2)]
    """

    def __init__(self, base: torch.nn.Linear, rank: int, *, alpha: float | None = None, dropout: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.base = check_module(base, "base", nn.Linear)
        self.rank = check_int(rank, "rank", minimum=1, maximum=min(base.in_features, base.out_features),
                              why="at most min(in_features, out_features)")
        self.alpha = float(self.rank) if alpha is None else check_real(alpha, "alpha", positive=True)
        check_generator(generator)
        self.lora_dropout = InvertedDropout(check_probability(dropout, "dropout"), generator=generator)
        w = base.weight
        bound = 1.0 / math.sqrt(base.in_features)  # the uniform bound of nn.Linear's kaiming_uniform_(a=sqrt(5))
        a = (torch.rand(self.rank, base.in_features, generator=generator, dtype=w.dtype) * 2 - 1) * bound
        self.lora_A = nn.Parameter(a.to(w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.rank, dtype=w.dtype, device=w.device))

    @property
    def scaling(self) -> float:
        r""":math:`\alpha / r`."""
        return self.alpha / self.rank

    @property
    def dropout(self) -> float:
        """The drop rate of the adapter's input (the rate of ``lora_dropout``)."""
        return self.lora_dropout.p

    def lora_parameters(self) -> list[nn.Parameter]:
        """The adapter's parameters :math:`A` and :math:`B`, the only ones LoRA trains."""
        return [self.lora_A, self.lora_B]

    def delta_weight(self) -> torch.Tensor:
        r"""The update :math:`\frac{\alpha}{r} BA`, of the shape of the base weight."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        check_same_dtype("the base layer's weight", self.base.weight, x=x)
        if x.dim() == 0 or x.shape[-1] != self.base.in_features:
            raise ValueError(f"x must have shape (..., {self.base.in_features}), got {tuple(x.shape)}")
        dropped = self.lora_dropout(x)
        return self.base(x) + self.scaling * ((dropped @ self.lora_A.T) @ self.lora_B.T)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, dropout={self.dropout}"
