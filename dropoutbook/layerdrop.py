r"""Chapter 14, "Dropout in modern training": LayerDrop, dropping whole layers and pruning them at inference.

LayerDrop :cite:`fan2020reducing` skips each residual layer of a deep network with probability
:math:`p` in every training step, so that the trained network still works when layers are removed
at inference: a smaller model is had without retraining, by pruning every other layer.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import (check_float_tensor, check_generator, check_int, check_layer_subset, check_module_list,
                          check_probability, check_same_dtype)

__all__ = ["LayerDrop", "every_other_layer"]


def every_other_layer(n_layers: int, rate: float = 0.5) -> tuple[int, ...]:
    r"""The layers kept by Fan et al.'s "every other" pruning rule, as 0-based indices.

    To prune a fraction ``rate`` :math:`= r` of the layers, the layers at depth
    :math:`d \equiv 0 \pmod{\lfloor 1/r \rfloor}` (depths counted from 1) are removed
    :cite:`fan2020reducing`: with :math:`r = 1/2` the 2nd, 4th, ... layers go, the 1st, 3rd, ...
    stay. ``rate = 0`` keeps every layer. The fraction actually removed is about
    :math:`1/\lfloor 1/r \rfloor`, not :math:`r` (``rate = 0.4`` removes every second layer, like
    ``0.5``); a rate above 1/2 would remove every layer and is refused. See chapter 14, section
    "LayerDrop".

    Args:
        n_layers: the number of layers :math:`L`, a positive int.
        rate: the fraction to prune, in [0, 1/2].

    Returns:
        The sorted indices of the kept layers.

    Examples:
        >>> every_other_layer(6), every_other_layer(6, 1 / 3), every_other_layer(6, 0.0)
        ((0, 2, 4), (0, 1, 3, 4), (0, 1, 2, 3, 4, 5))
    """
    n_layers = check_int(n_layers, "n_layers", minimum=1)
    rate = check_probability(rate, "rate", allow_one=False)
    if rate > 0.5:
        raise ValueError(f"rate must be in [0, 1/2] for the every-other rule, got {rate}: with rate > 1/2, "
                         f"floor(1/rate) = 1 and the rule would remove every layer; choose the kept layers "
                         f"with LayerDrop.prune")
    if rate == 0.0:
        return tuple(range(n_layers))
    period = int(1.0 / rate + 1e-9)  # floor(1/r), robust to 1/(1/3) = 2.9999...
    return tuple(i for i in range(n_layers) if (i + 1) % period != 0)


class LayerDrop(nn.Module):
    r"""A stack of residual layers, each skipped with probability ``p`` in training; a chosen subset at inference.

    In training, a forward pass draws one Bernoulli variable per layer,
    :math:`z_l \sim \mathrm{Bernoulli}(1 - p)`, shared by the whole mini-batch, and computes

    .. math:: h_l = \begin{cases} f_l(h_{l-1}) & z_l = 1 \\ h_{l-1} & z_l = 0, \end{cases}

    so a dropped layer is not computed at all and nothing is rescaled (as in Fan et al.
    :cite:`fan2020reducing`; each :math:`f_l` is a *whole* residual block, :math:`f_l(h) = h + g_l(h)`,
    such as :class:`~dropoutbook.TransformerBlock`). The expected number of layers computed is
    :math:`L(1 - p)` (chapter 14, section "Derivation"). In evaluation mode the layers listed in
    ``kept`` are applied (all of them by default); :meth:`prune` chooses them, e.g. with
    :func:`every_other_layer`. The layers applied in the last forward pass are in
    ``last_applied``.

    Unlike :class:`~dropoutbook.StochasticDepth` (chapter 8), which drops the residual *branch*
    :math:`g_l` and, in the inverted form, rescales it, LayerDrop keeps the rate constant over
    depth and is meant for pruning. See chapter 14, "Dropout in modern training", section
    "LayerDrop".

    Args:
        layers: a non-empty sequence (or ``torch.nn.ModuleList``) of ``torch.nn.Module`` s, each
            mapping its input to an output of the same shape.
        p: the probability that a layer is skipped in a training pass, in [0, 1].
        generator: optional ``torch.Generator`` for the draws.

    Shape:
        Input: any floating tensor the layers accept; output of the same shape (a copy of the input,
        not the input itself, when no layer is applied).

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> stack = LayerDrop([nn.Linear(4, 4) for _ in range(6)], p=0.5)
        >>> _ = stack(torch.randn(2, 4)); len(stack.last_applied) <= 6
        True
        >>> _ = stack.prune(every_other_layer(6)).eval()(torch.randn(2, 4)); stack.last_applied
        (0, 2, 4)
    """

    def __init__(self, layers, p: float = 0.2, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        layers = check_module_list(layers, "layers")
        self.layers = layers if isinstance(layers, nn.ModuleList) else nn.ModuleList(layers)
        self.p = check_probability(p)
        self.generator = check_generator(generator)
        self.kept: tuple[int, ...] = tuple(range(len(self.layers)))  #: layers applied in evaluation mode
        self.last_applied: tuple[int, ...] = ()  #: layers applied in the last forward pass

    def prune(self, kept) -> LayerDrop:
        """Choose the layers applied in evaluation mode: sorted distinct indices (an empty tuple skips all). Returns ``self``."""
        self.kept = check_layer_subset(kept, "kept", len(self.layers))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        weight = next((w for w in self.parameters() if w.is_floating_point()), None)
        if weight is not None:
            check_same_dtype("the layers' parameters", weight, x=x)
        if self.training and self.p > 0:
            u = torch.rand(len(self.layers), generator=self.generator, device=x.device)
            applied = tuple(i for i in range(len(self.layers)) if float(u[i]) >= self.p)
        elif self.training:
            applied = tuple(range(len(self.layers)))
        else:
            applied = self.kept
        self.last_applied = applied
        h = x
        for i in applied:
            out = self.layers[i](h)
            if not isinstance(out, torch.Tensor) or out.shape != h.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"layers[{i}] must map its input to a tensor of the same shape {tuple(h.shape)} "
                                 f"(a residual block), got {got}")
            h = out
        return x.clone() if h is x else h  # no layer applied: a new tensor, never the caller's own

    def extra_repr(self) -> str:
        return f"p={self.p}, kept={self.kept}"
