r"""Imputing technical zeros with a denoising autoencoder trained by input dropout (chapter 15).

In single-cell RNA sequencing, "dropout" names the technical zeros of a count matrix: a gene
expressed in a cell but not detected. An autoencoder can fill them in from the other genes of
the cell; the deep count autoencoder :cite:`eraslan2019single` does so by fitting a ZINB likelihood
to the whole, unmasked matrix. Here the network is trained instead with dropout in its original
sense, on the *input*: some observed entries are hidden, and the network is asked to predict them
from the rest, scored on the hidden entries only, the self-supervised objective of Noise2Self
:cite:`batson2019noise2self` (which its authors also apply to single-cell gene expression).
:func:`masked_reconstruction_loss` is that training loss. See chapter 15, "Applications",
section "Biology: two meanings of dropout".
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_generator, check_matrix, check_module, check_output_like, check_probability

__all__ = ["masked_reconstruction_loss"]


def masked_reconstruction_loss(model: nn.Module, x: torch.Tensor, p: float, *,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Squared error of a denoising autoencoder on the entries that its input dropout hid.

    .. math::
        m_{ij} \sim \mathrm{Bernoulli}(1 - p), \qquad \hat x = f\Bigl(\frac{m \odot x}{1-p}\Bigr), \qquad
        L = \frac{\sum_{ij} (1 - m_{ij})(\hat x_{ij} - x_{ij})^2}{\sum_{ij} (1 - m_{ij})},

    with an independent mask entry for every entry of the batch (every cell and gene). The loss is
    taken on the hidden entries only: on the visible ones the network could copy its input, which
    teaches it nothing about imputation. The survivors are scaled by :math:`1/(1-p)` (inverted
    dropout), so that the input the network sees in training has the expected magnitude of the
    unmasked input it sees when it imputes. The target is the *observed* matrix, technical zeros
    included: the network learns :math:`\mathbb E[x \mid \text{rest}]`, which for zero-inflated
    counts is :math:`(1-\pi)` times the expected true value (chapter 15, section "Derivation").
    When no entry is hidden (possible for small inputs or small ``p``), the loss is 0 with a
    gradient of zeros. Hiding entries and scoring only the hidden ones is the objective of Noise2Self
    :cite:`batson2019noise2self`. See chapter 15, "Applications", section "Biology".

    Args:
        model: the autoencoder, mapping a batch of shape ``(B, G)`` to the same shape.
        x: the observed (e.g. ``log1p``-transformed) counts, a floating tensor of shape ``(B, G)``; not modified.
        p: the probability of hiding an entry, in :math:`(0, 1)`.
        generator: optional ``torch.Generator`` for the mask (default: torch's global generator).

    Returns:
        0-d tensor, differentiable with respect to the model's parameters.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Linear(5, 5)
        >>> loss = masked_reconstruction_loss(model, torch.rand(8, 5), 0.3, generator=torch.Generator().manual_seed(1))
        >>> loss.shape, loss.requires_grad
        (torch.Size([]), True)
    """
    check_module(model)
    check_matrix(x, "x", rows_are="cell (columns: genes)")
    p = check_probability(p, "p", allow_zero=False, allow_one=False)
    check_generator(generator)
    hidden = torch.rand(x.shape, generator=generator, device=x.device) < p
    try:
        out = model(x * ~hidden / (1 - p))
    except RuntimeError as exc:
        raise ValueError(f"x must fit the model: on x of shape {tuple(x.shape)} the model raised: {exc}") from exc
    check_output_like(out, x, "model")
    squared = (out - x) ** 2 * hidden
    return squared.sum() / hidden.sum().clamp(min=1)
