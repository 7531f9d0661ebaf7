r"""Calibration of class probabilities and the quality of an uncertainty score (chapter 5).

A classifier that outputs probabilities :math:`\hat p_{ic}` for :math:`N` inputs and :math:`C`
classes is *calibrated* when, among the inputs it predicts with confidence :math:`c`, a fraction
:math:`c` is right. This module measures it, for any predictor (a deterministic softmax, the MC
average of :func:`~dropoutbook.mc_predict`, a deep ensemble):

* :func:`negative_log_likelihood` and :func:`brier_score`, the two proper scoring rules;
* :func:`reliability_diagram` (the data of the diagram, on equal-width confidence bins; the plot is
  :func:`dropoutbook.plotting.reliability_plot`) and :func:`expected_calibration_error`;
* :func:`error_detection_auroc`, how well an uncertainty score ranks the model's own errors above
  its correct predictions.

Every function takes probabilities of shape :math:`(N, C)` (each row summing to 1) and labels of
shape :math:`(N,)`, as tensors or NumPy arrays, and modifies neither. See chapter 5, "Monte Carlo
dropout", section "Calibration".
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._validation import as_float_tensor, check_class_labels, check_int, like_input
from .uncertainty import _check_correct_uncertainty, _check_probs

__all__ = [
    "negative_log_likelihood", "brier_score", "ReliabilityDiagram", "reliability_diagram",
    "expected_calibration_error", "error_detection_auroc",
]


def _check_probs_labels(probs, labels):
    probs, was_numpy = _check_probs(probs)
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, C), one row of class probabilities per input; got shape "
                         f"{tuple(probs.shape)} (average MC samples over their first dimension first)")
    labels = check_class_labels(labels, "labels", n=probs.shape[0], num_classes=probs.shape[1])
    return probs, labels.to(probs.device), was_numpy


def negative_log_likelihood(probs, labels) -> torch.Tensor:
    r"""Mean negative log-likelihood of the labels, :math:`-\frac1N \sum_i \log \hat p_{i y_i}`, in nats.

    A proper scoring rule: its expectation is smallest when the probabilities are the true
    conditional probabilities. A probability of exactly 0 on the true label gives ``inf`` (nothing
    is clamped). See chapter 5, "Monte Carlo dropout", section "Calibration".

    Args:
        probs: class probabilities, shape :math:`(N, C)`, rows summing to 1 (a tensor or NumPy array).
        labels: integer class indices, shape :math:`(N,)`.

    Returns:
        0-d tensor in the dtype of ``probs`` (a NumPy scalar for NumPy ``probs``).

    Examples:
        >>> negative_log_likelihood(torch.tensor([[0.5, 0.5], [0.8, 0.2]]), torch.tensor([0, 1]))
        tensor(1.1513)
    """
    probs, labels, was_numpy = _check_probs_labels(probs, labels)
    picked = probs.gather(1, labels[:, None])[:, 0]
    return like_input(-torch.log(picked).mean(), was_numpy)


def brier_score(probs, labels) -> torch.Tensor:
    r"""Multi-class Brier score, :math:`\frac1N \sum_i \sum_c (\hat p_{ic} - [y_i = c])^2`.

    The mean squared distance between the predicted probabilities and the one-hot label, a proper
    scoring rule between 0 (certain and right) and 2 (certain and wrong) :cite:`brier1950verification`.
    Some texts divide by :math:`C` as well; this function does not. See chapter 5, "Monte Carlo
    dropout", section "Calibration".

    Args:
        probs: class probabilities, shape :math:`(N, C)` (a tensor or NumPy array).
        labels: integer class indices, shape :math:`(N,)`.

    Returns:
        0-d tensor in the dtype of ``probs`` (a NumPy scalar for NumPy ``probs``).

    Examples:
        >>> brier_score(torch.tensor([[0.5, 0.5], [0.8, 0.2]]), torch.tensor([0, 1]))
        tensor(0.8900)
    """
    probs, labels, was_numpy = _check_probs_labels(probs, labels)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return like_input(((probs - onehot) ** 2).sum(dim=1).mean(), was_numpy)


class ReliabilityDiagram(NamedTuple):
    """Result of :func:`reliability_diagram` (chapter 5, "Monte Carlo dropout").

    Attributes:
        edges: the ``n_bins + 1`` bin edges, equal-width on [0, 1] (float64).
        confidence: mean confidence of the predictions in each bin (NaN for an empty bin), float64.
        accuracy: fraction of correct predictions in each bin (NaN for an empty bin), float64.
        count: number of predictions in each bin (int64).
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor


def reliability_diagram(probs, labels, n_bins: int = 10) -> ReliabilityDiagram:
    r"""The data of a reliability diagram: accuracy against confidence on equal-width bins.

    Each input's prediction is the class of largest probability (the first one on a tie) and its
    confidence that probability, :math:`\hat c_i = \max_c \hat p_{ic}`. The interval [0, 1] is cut
    into ``n_bins`` bins of equal width; bin :math:`b` holds the confidences in
    :math:`(b/B, (b+1)/B]`, the first bin also 0. For each bin the mean confidence and the accuracy
    are reported :cite:`guo2017calibration`; a calibrated predictor has accuracy close to
    confidence in every well-filled bin. Plot it with :func:`dropoutbook.plotting.reliability_plot`.
    See chapter 5, "Monte Carlo dropout", section "Calibration".

    Args:
        probs: class probabilities, shape :math:`(N, C)` (a tensor or NumPy array).
        labels: integer class indices, shape :math:`(N,)`.
        n_bins: number of equal-width bins, an int >= 1.

    Returns:
        :class:`ReliabilityDiagram` of float64 (counts int64) tensors of length ``n_bins``
        (``edges``: ``n_bins + 1``).

    Examples:
        >>> d = reliability_diagram(torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]),
        ...                         torch.tensor([0, 0, 0]), n_bins=2)
        >>> d.count, d.accuracy
        (tensor([0, 3]), tensor([   nan, 0.6667], dtype=torch.float64))
    """
    probs, labels, _ = _check_probs_labels(probs, labels)
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    confidence, predicted = probs.detach().double().cpu().max(dim=1)
    correct = (predicted == labels.cpu()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin b holds (edges[b], edges[b+1]]; confidence 0 (impossible for C >= 1 rows summing to 1) goes to bin 0
    index = (torch.searchsorted(edges, confidence, right=False) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins)
    sum_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence)
    sum_corr = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    filled = count.double()
    nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
    mean_conf = torch.where(count > 0, sum_conf / filled.clamp(min=1), nan)
    accuracy = torch.where(count > 0, sum_corr / filled.clamp(min=1), nan)
    return ReliabilityDiagram(edges, mean_conf, accuracy, count)


def expected_calibration_error(probs, labels, n_bins: int = 10) -> torch.Tensor:
    r"""Expected calibration error on equal-width confidence bins.

    .. math::
        \mathrm{ECE} = \sum_{b=1}^{B} \frac{n_b}{N}\,\bigl|\mathrm{acc}_b - \mathrm{conf}_b\bigr|,

    the weighted mean distance between accuracy and mean confidence over the bins of
    :func:`reliability_diagram` (empty bins contribute nothing) :cite:`naeini2015obtaining,guo2017calibration`.
    It is 0 for a perfectly calibrated predictor only in the limit of many inputs per bin: with
    :math:`n_b` inputs a bin's accuracy has a sampling error of order
    :math:`\sqrt{\mathrm{conf}_b(1-\mathrm{conf}_b)/n_b}`, so the ECE of a finite sample is biased
    upward, and more bins mean a larger bias. Compare predictors on the same inputs and bins.
    See chapter 5, "Monte Carlo dropout", section "Calibration".

    Args:
        probs: class probabilities, shape :math:`(N, C)` (a tensor or NumPy array).
        labels: integer class indices, shape :math:`(N,)`.
        n_bins: number of equal-width bins, an int >= 1.

    Returns:
        0-d float64 tensor (a NumPy scalar for NumPy ``probs``).

    Examples:
        >>> expected_calibration_error(torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]),
        ...                            torch.tensor([0, 0, 0]), n_bins=2)
        tensor(0.0667, dtype=torch.float64)
    """
    _, was_numpy = as_float_tensor(probs, "probs")
    diagram = reliability_diagram(probs, labels, n_bins)
    filled = diagram.count > 0
    weights = diagram.count[filled].double() / diagram.count.sum()
    ece = (weights * (diagram.accuracy[filled] - diagram.confidence[filled]).abs()).sum()
    return like_input(ece, was_numpy)


def error_detection_auroc(correct, uncertainty) -> float:
    r"""AUROC of an uncertainty score for detecting the model's own errors.

    The probability that a randomly chosen wrong prediction has a larger ``uncertainty`` than a
    randomly chosen correct one, ties counting one half:

    .. math::
        \mathrm{AUROC} = \frac{1}{n_\text{err}\, n_\text{ok}} \sum_{i \in \text{err}} \sum_{j \in \text{ok}}
        \Bigl([u_i > u_j] + \tfrac12 [u_i = u_j]\Bigr),

    computed from mid-ranks (the Mann-Whitney statistic) in :math:`O(N \log N)`. It is 1 when every
    error is more uncertain than every correct prediction, 0.5 for a score unrelated to
    correctness, and it equals scikit-learn's ``roc_auc_score(~correct, uncertainty)``. It ignores
    the scale of the score, so it compares scores of different kinds (an entropy, a variance, a
    negative confidence). See chapter 5, "Monte Carlo dropout", section "Calibration".

    Args:
        correct: bool (or 0/1) tensor or NumPy array of shape :math:`(N,)`, whether each prediction
            is right; it must hold at least one right and one wrong prediction.
        uncertainty: floating tensor or NumPy array of shape :math:`(N,)`; larger means less certain.

    Returns:
        The AUROC, a Python float in [0, 1].

    Examples:
        >>> error_detection_auroc(torch.tensor([True, False, True, False]),
        ...                       torch.tensor([0.1, 0.9, 0.5, 0.5]))
        0.875
    """
    correct, uncertainty, _ = _check_correct_uncertainty(correct, uncertainty)
    errors = ~correct.detach().cpu()
    n_err = int(errors.sum())
    n_ok = errors.numel() - n_err
    if n_err == 0 or n_ok == 0:
        raise ValueError(f"correct must hold at least one right and one wrong prediction to rank errors, "
                         f"got {n_ok} right and {n_err} wrong")
    values, inverse, counts = torch.unique(uncertainty.detach().cpu().double(), sorted=True,
                                           return_inverse=True, return_counts=True)
    below = torch.cumsum(counts, 0) - counts  # number of values strictly smaller than each distinct value
    midrank = below.double() + (counts.double() + 1) / 2
    rank_sum = midrank[inverse][errors].sum().item()
    return (rank_sum - n_err * (n_err + 1) / 2) / (n_err * n_ok)
