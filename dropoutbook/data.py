"""Small real data sets that ship inside a package (no download), as torch tensors.

See chapter 1, section "Experiment".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_float_dtype, check_int, check_probability, check_seed

__all__ = ["Split", "load_digits_split", "with_label_noise"]


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
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the book extra installs scikit-learn
        raise ImportError("load_digits_split needs scikit-learn: pip install 'dropoutbook[book]'") from exc
    x, y = load_digits(return_X_y=True)
    n_train = check_int(n_train, "n_train", minimum=10, maximum=len(y) - 10)
    n_val = check_int(n_val, "n_val", minimum=0, maximum=len(y) - 10 - n_train)
    check_float_dtype(dtype)
    order = np.random.default_rng(check_seed(seed)).permutation(len(y))
    train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # pixels that are constant in the training set
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
