"""Small real data sets that ship inside a package (no download), as torch tensors.

See chapter 1, section "Experiment"; chapter 15 ("Applications") adds the breast-cancer data and a
simulator of single-cell counts with technical zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ._validation import (as_float_tensor, check_count_means, check_float_dtype, check_int, check_probability,
                          check_real, check_seed)

__all__ = ["Split", "load_digits_split", "with_label_noise", "load_breast_cancer_split", "ZINBCounts",
           "sample_zinb", "simulate_zinb_counts"]


@dataclass(frozen=True)
class Split:
    """A train/test split: ``x_train``, ``y_train``, ``x_test``, ``y_test`` (features standardized on the training set).

    Optionally a validation split ``x_val``, ``y_val`` (``None`` when there is none), on which the
    experiments choose epochs and hyperparameters; the test split is then looked at only once.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    def __post_init__(self):
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError("x_val and y_val must be given together (or neither)")

    @property
    def has_validation(self) -> bool:
        """Whether the split has a validation set."""
        return self.y_val is not None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        labels = [self.y_train, self.y_test] + ([self.y_val] if self.has_validation else [])
        return int(torch.cat(labels).max()) + 1


def load_digits_split(n_train: int = 300, *, n_val: int = 0, seed: int = 0,
                      dtype: torch.dtype = torch.float64) -> Split:
    """The 8×8 handwritten digits of scikit-learn (1,797 images, 10 classes), split at random.

    A small training set makes overfitting visible; the remaining images form the test set. With
    ``n_val > 0``, the ``n_val`` images after the training images in the random order form a
    validation set, to choose epochs on without looking at the test set; the training and the test
    images of the same ``seed`` and ``n_train`` are then unchanged except that the validation images
    are no longer in the test set. Features are standardized with the training set's mean and
    standard deviation. :cite:`alpaydin1998digits`

    Args:
        n_train: number of training images, at least 10.
        n_val: number of validation images, a non-negative int; at least 10 test images remain.
        seed: seed of the random split.
        dtype: floating dtype of the features (labels are int64).

    Examples:
        >>> split = load_digits_split(300)
        >>> split.x_train.shape, split.x_test.shape
        (torch.Size([300, 64]), torch.Size([1497, 64]))
        >>> split = load_digits_split(300, n_val=300)
        >>> split.x_val.shape, split.x_test.shape
        (torch.Size([300, 64]), torch.Size([1197, 64]))
    """
    return _sklearn_split("load_digits", "load_digits_split", n_train, n_val, seed, dtype, smallest=10)


def _sklearn_split(loader: str, caller: str, n_train, n_val, seed, dtype, *, smallest: int) -> Split:
    """Load a data set bundled with scikit-learn, shuffle it with ``seed``, cut it into train,
    validation and test (in that order; at least ``smallest`` cases in train and in test), and
    standardize the features on the training set."""
    try:
        from sklearn import datasets
    except ImportError as exc:  # pragma: no cover - the book extra installs scikit-learn
        raise ImportError(f"{caller} needs scikit-learn: pip install 'dropoutbook[book]'") from exc
    x, y = getattr(datasets, loader)(return_X_y=True)
    n_val = check_int(n_val, "n_val", minimum=0, maximum=len(y) - 2 * smallest,
                      why=f"{smallest} training and {smallest} test cases at least remain")
    n_train = check_int(n_train, "n_train", minimum=smallest, maximum=len(y) - smallest - n_val,
                        why=f"with n_val = {n_val}, at least {smallest} test cases remain")
    check_float_dtype(dtype)
    order = np.random.default_rng(check_seed(seed)).permutation(len(y))
    train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # features (pixels) that are constant in the training set
    x = (x - mean) / std
    as_x = lambda idx: torch.as_tensor(x[idx], dtype=dtype)  # noqa: E731
    as_y = lambda idx: torch.as_tensor(y[idx], dtype=torch.int64)  # noqa: E731
    if n_val == 0:
        return Split(as_x(train), as_y(train), as_x(test), as_y(test))
    return Split(as_x(train), as_y(train), as_x(test), as_y(test), as_x(val), as_y(val))


def with_label_noise(split: Split, fraction: float, *, seed: int = 0) -> Split:
    """Return a copy of ``split`` whose training labels are replaced, with probability ``fraction``, by a uniform random class.

    A replaced label may by chance equal the true one, so the fraction of *wrong* labels is
    ``fraction · (1 - 1/n_classes)`` in expectation. Test and validation labels are left clean.

    Args:
        split: the data to corrupt; it is not modified.
        fraction: probability in [0, 1] that a training label is resampled.
        seed: seed of the corruption.
    """
    fraction = check_probability(fraction, "fraction")
    g = torch.Generator().manual_seed(check_seed(seed))
    resample = torch.rand(len(split.y_train), generator=g) < fraction
    noisy = split.y_train.clone()
    noisy[resample] = torch.randint(0, split.n_classes, (int(resample.sum()),), generator=g)
    return Split(split.x_train, noisy, split.x_test, split.y_test, split.x_val, split.y_val)


def load_breast_cancer_split(n_train: int = 300, *, n_val: int = 100, seed: int = 0,
                             dtype: torch.dtype = torch.float64) -> Split:
    """The Wisconsin diagnostic breast-cancer data of scikit-learn (569 tumours, 30 features), split at random.

    Each case is a fine-needle aspirate of a breast mass, described by 30 features of its cell
    nuclei; the label is 0 for malignant (212 cases) and 1 for benign (357), as scikit-learn codes
    it :cite:`street1993nuclear`. The data ships with scikit-learn, so nothing is downloaded. The
    cases are shuffled with ``seed``; the first ``n_train`` form the training set, the next
    ``n_val`` the validation set (to choose epochs on), the rest the test set. Features are
    standardized with the training set's mean and standard deviation. See chapter 15,
    "Applications", section "Medicine: deciding when to refer".

    Args:
        n_train: number of training cases, an int from 20 to ``549 - n_val`` (at least 20 test
            cases remain: up to 449 with the default ``n_val = 100``).
        n_val: number of validation cases, an int from 0 to 529.
        seed: seed of the random split.
        dtype: floating dtype of the features (labels are int64).

    Examples:
        >>> split = load_breast_cancer_split(300, n_val=100)
        >>> split.x_train.shape, split.x_val.shape, split.x_test.shape, split.n_classes
        (torch.Size([300, 30]), torch.Size([100, 30]), torch.Size([169, 30]), 2)
    """
    return _sklearn_split("load_breast_cancer", "load_breast_cancer_split", n_train, n_val, seed, dtype, smallest=20)


class ZINBCounts(NamedTuple):
    """Result of :func:`simulate_zinb_counts` and :func:`sample_zinb` (chapter 15, "Applications").

    Attributes:
        means: the negative-binomial means :math:`\\mu_{cg}` (cells by genes), float.
        true_counts: the counts before zero inflation, :math:`Y_{cg} \\sim \\mathrm{NB}(\\mu_{cg}, \\theta)`.
        counts: the observed counts, :math:`X_{cg} = 0` where ``technical_zero`` and :math:`Y_{cg}` elsewhere.
        technical_zero: bool mask of the entries set to zero by the inflation (a technical "dropout").
        cell_type: the type of each cell, int64 of shape ``(n_cells,)`` (``None`` from :func:`sample_zinb`).

    Examples:
        >>> z = sample_zinb(torch.full((1, 6), 4.0), dispersion=1.0, zero_inflation=0.5, seed=2)
        >>> bool(torch.equal(z.counts, torch.where(z.technical_zero, 0.0, z.true_counts))), z.cell_type is None
        (True, True)
    """

    means: torch.Tensor
    true_counts: torch.Tensor
    counts: torch.Tensor
    technical_zero: torch.Tensor
    cell_type: torch.Tensor | None


def sample_zinb(means, dispersion: float, zero_inflation: float, *, seed: int = 0,
                dtype: torch.dtype | None = None) -> ZINBCounts:
    r"""Draw zero-inflated negative-binomial counts with the given means.

    .. math::
        Y \sim \mathrm{NB}(\mu, \theta), \quad B \sim \mathrm{Bernoulli}(1 - \pi), \quad X = B\,Y,

    where :math:`\mathrm{NB}(\mu, \theta)` is the Gamma-Poisson mixture
    :math:`Y \mid \lambda \sim \mathrm{Poisson}(\lambda)`, :math:`\lambda \sim \mathrm{Gamma}(\theta,
    \text{rate } \theta/\mu)`, with mean :math:`\mu` and variance :math:`\mu + \mu^2/\theta`. A
    zero of :math:`B` is a *technical zero* (a transcript present but not detected, the "dropout"
    of single-cell RNA sequencing); :math:`X` then has mean :math:`(1-\pi)\mu` and variance
    :math:`(1-\pi)\mu(1 + \mu/\theta) + \pi(1-\pi)\mu^2` (derived in
    :func:`~dropoutbook.derivations.zinb_moments`) :cite:`eraslan2019single`. The mask :math:`B`
    is standard (unscaled) dropout with rate :math:`\pi` applied to the counts. Draws use NumPy's
    generator seeded with ``seed``. See chapter 15, "Applications", section "Biology".

    Args:
        means: the NB means :math:`0 \le \mu \le 10^{12}`, a floating tensor or NumPy array of any shape
            (a 0-d one too); not modified.
        dispersion: :math:`\theta > 0` (the inverse of the overdispersion; large :math:`\theta` is nearly Poisson).
        zero_inflation: :math:`\pi \in [0, 1]`, the probability of a technical zero.
        seed: seed of the draws.
        dtype: floating dtype of the results (default: that of ``means``).

    Returns:
        :class:`ZINBCounts` with ``cell_type`` ``None``, every tensor of the shape of ``means``.

    Examples:
        >>> z = sample_zinb(torch.full((4, 3), 5.0), dispersion=2.0, zero_inflation=0.5, seed=1)
        >>> z.counts.shape, bool((z.counts[z.technical_zero] == 0).all())
        (torch.Size([4, 3]), True)
    """
    means, _ = as_float_tensor(means, "means")
    check_count_means(means, "means")
    theta = check_real(dispersion, "dispersion", positive=True)
    pi = check_probability(zero_inflation, "zero_inflation")
    dtype = means.dtype if dtype is None else check_float_dtype(dtype)
    rng = np.random.default_rng(check_seed(seed))
    mu = means.detach().cpu().double().numpy()
    rate = np.asarray(rng.gamma(theta, 1.0, size=mu.shape) * (mu / theta))  # lambda ~ Gamma(theta, scale mu/theta)
    try:
        true = np.asarray(rng.poisson(rate), dtype=np.float64)
    except ValueError as exc:  # a Gamma draw beyond what NumPy's Poisson sampler takes (a tiny dispersion)
        raise ValueError(f"the Poisson rates drawn from means (largest {mu.max():.4g}) and dispersion {theta:.4g} are too "
                         f"large for NumPy's Poisson sampler ({exc}); use smaller means or a larger dispersion") from exc
    dropped = np.asarray(rng.random(mu.shape) < pi)
    observed = np.where(dropped, 0.0, true)
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=means.device)  # noqa: E731
    return ZINBCounts(as_t(mu), as_t(true), as_t(observed), torch.as_tensor(dropped, device=means.device), None)


def simulate_zinb_counts(n_cells: int = 600, n_genes: int = 100, *, n_types: int = 4, dispersion: float = 2.0,
                         zero_inflation: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float32) -> ZINBCounts:
    r"""A synthetic single-cell count matrix: cell types with low-rank means, NB noise and technical zeros.

    Each cell :math:`c` belongs to one of ``n_types`` types :math:`k(c)` (uniform at random) and
    has a size factor :math:`s_c` (log-normal, standard deviation 0.3 on the log scale); gene
    :math:`g` has a baseline :math:`b_g \sim \mathcal N(1, 0.6^2)` and a type effect
    :math:`\delta_{kg} \sim \mathcal N(0, 1)`, so that

    .. math::
        \log \mu_{cg} = \log s_c + b_g + \delta_{k(c) g},

    a matrix of rank at most ``n_types + 1`` on the log scale: a gene's mean in one cell is
    predictable from the other genes of that cell, which is what makes imputation possible. The
    counts are then drawn by :func:`sample_zinb`. See chapter 15, "Applications", section "Biology".

    Args:
        n_cells: number of cells, a positive int.
        n_genes: number of genes, a positive int.
        n_types: number of cell types, a positive int.
        dispersion: the NB dispersion :math:`\theta > 0`.
        zero_inflation: the probability :math:`\pi \in [0, 1]` of a technical zero.
        seed: seed of the means and of the draws.
        dtype: floating dtype of the results.

    Returns:
        :class:`ZINBCounts` of tensors of shape ``(n_cells, n_genes)`` and ``cell_type`` of shape ``(n_cells,)``.

    Examples:
        >>> data = simulate_zinb_counts(50, 20, n_types=3, zero_inflation=0.3, seed=0)
        >>> data.counts.shape, data.cell_type.shape, bool((data.counts <= data.true_counts).all())
        (torch.Size([50, 20]), torch.Size([50]), True)
    """
    n_cells = check_int(n_cells, "n_cells", minimum=1)
    n_genes = check_int(n_genes, "n_genes", minimum=1)
    n_types = check_int(n_types, "n_types", minimum=1)
    check_real(dispersion, "dispersion", positive=True)
    check_probability(zero_inflation, "zero_inflation")
    check_float_dtype(dtype)
    rng = np.random.default_rng(check_seed(seed))
    cell_type = rng.integers(0, n_types, size=n_cells)
    log_size = rng.normal(0.0, 0.3, size=(n_cells, 1))
    baseline = rng.normal(1.0, 0.6, size=(1, n_genes))
    effect = rng.normal(0.0, 1.0, size=(n_types, n_genes))
    means = np.exp(log_size + baseline + effect[cell_type])
    draws = sample_zinb(torch.as_tensor(means, dtype=torch.float64), dispersion, zero_inflation,
                        seed=int(rng.integers(0, 2**62)), dtype=dtype)
    return draws._replace(cell_type=torch.as_tensor(cell_type, dtype=torch.int64))
