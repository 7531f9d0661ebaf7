r"""Chapter 14, "Dropout in modern training": R-Drop, the disagreement of two dropout passes as a loss.

R-Drop :cite:`liang2021rdrop` feeds each mini-batch twice through a network with dropout, so that
two masks give two predictive distributions :math:`P_a` and :math:`P_b`, and adds to the
negative log-likelihoods of both passes (summed, as in the paper) the symmetric Kullback-Leibler
divergence between them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_class_targets, check_logits_pair, check_real

__all__ = ["r_drop_loss", "symmetric_kl"]

_NLL = ("sum", "mean")


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    r"""The symmetric KL divergence between the softmax distributions of two passes, averaged over the batch.

    .. math:: D(a, b) = \frac{1}{n}\sum_{i=1}^{n} \frac12\Big(\mathrm{KL}(P_{a,i}\,\|\,P_{b,i})
              + \mathrm{KL}(P_{b,i}\,\|\,P_{a,i})\Big)
              = \frac{1}{n}\sum_{i=1}^{n} \frac12 \sum_{k} (P_{a,ik} - P_{b,ik})(\log P_{a,ik} - \log P_{b,ik}),

    with :math:`P_{a,i} = \operatorname{softmax}(a_i)`. Both directions are differentiated (no
    stop-gradient), as in R-Drop :cite:`liang2021rdrop`. It is zero exactly when the two passes give
    the same distribution for every example, and positive otherwise (chapter 14, section
    "Derivation"). Computed from ``log_softmax``, so that it stays finite for large logits.

    Args:
        logits_a, logits_b: floating tensors of shape ``(batch, n_classes)``, of one dtype.

    Returns:
        A 0-d tensor of the dtype of the logits.

    Examples:
        >>> a = torch.tensor([[2.0, 0.0, -1.0]])
        >>> float(symmetric_kl(a, a)), float(symmetric_kl(a, a + 5.0))
        (0.0, 0.0)
        >>> bool(symmetric_kl(a, a.flip(1)) > 0)
        True
    """
    check_logits_pair(logits_a, logits_b)
    log_a, log_b = logits_a.log_softmax(dim=1), logits_b.log_softmax(dim=1)
    per_example = 0.5 * ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(dim=1)
    return per_example.mean()


def r_drop_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, target: torch.Tensor,
                alpha: float = 1.0, *, nll: str = "sum") -> torch.Tensor:
    r"""R-Drop: the negative log-likelihoods of two dropout passes plus ``alpha`` times their symmetric KL.

    With the default ``nll="sum"`` this is Liang et al.'s loss :cite:`liang2021rdrop`,

    .. math:: L = \mathrm{CE}(a, y) + \mathrm{CE}(b, y) + \alpha\, D(a, b),

    the *sum* of the two passes' negative log-likelihoods plus ``alpha`` times the *average* of the
    two KL directions; with ``nll="mean"`` the two cross-entropies are averaged instead,

    .. math:: L_{\text{mean}} = \tfrac12\big(\mathrm{CE}(a, y) + \mathrm{CE}(b, y)\big) + \alpha\, D(a, b).

    :math:`\mathrm{CE}` is the cross-entropy averaged over the batch and :math:`D` is
    :func:`symmetric_kl`, :math:`\frac12(\mathrm{KL}(P_a\|P_b) + \mathrm{KL}(P_b\|P_a))` averaged over
    the batch. ``logits_a`` and ``logits_b`` are two forward passes of the *same* inputs with
    independent dropout masks.

    The two weightings are not interchangeable at the same ``alpha``: :math:`L_{\text{mean}}` with
    weight :math:`\alpha` is half of the paper's loss with weight :math:`2\alpha`, so an
    ``alpha`` taken from the paper reproduces the paper's loss only with ``nll="sum"`` (with
    ``nll="mean"``, use ``alpha / 2``). See chapter 14, "Dropout in modern training", section
    "R-Drop" and the erratum on its weighting.

    Args:
        logits_a, logits_b: floating tensors of shape ``(batch, n_classes)``, of one dtype.
        target: int64 class indices of shape ``(batch,)``, in ``[0, n_classes)``.
        alpha: the weight of the KL term, a finite real number >= 0.
        nll: ``"sum"`` (the paper's weighting, default) or ``"mean"`` of the two cross-entropies.

    Returns:
        A 0-d tensor of the dtype of the logits, differentiable in both logits.

    Examples:
        >>> a = torch.tensor([[2.0, 0.0], [0.0, 1.0]]); y = torch.tensor([0, 1])
        >>> torch.allclose(r_drop_loss(a, a, y, alpha=3.0), 2 * F.cross_entropy(a, y))
        True
        >>> torch.allclose(r_drop_loss(a, a, y, alpha=3.0, nll="mean"), F.cross_entropy(a, y))
        True
    """
    check_logits_pair(logits_a, logits_b)
    check_class_targets(target, *logits_a.shape)
    alpha = check_real(alpha, "alpha", minimum=0.0)
    nll = check_choice(nll, "nll", _NLL)
    ce = F.cross_entropy(logits_a, target) + F.cross_entropy(logits_b, target)
    if nll == "mean":
        ce = 0.5 * ce
    return ce + alpha * symmetric_kl(logits_a, logits_b)
