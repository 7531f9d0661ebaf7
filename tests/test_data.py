"""The data splits of the experiments (chapter 1, "Experiment"): train, validation and test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dropoutbook.data import Split, load_digits_split, with_label_noise


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def test_validation_images_come_out_of_the_test_set_and_the_three_sets_are_disjoint():
    plain = load_digits_split(200, seed=5)
    split = load_digits_split(200, n_val=300, seed=5)
    assert split.has_validation and not plain.has_validation and plain.x_val is None
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (200, 300, 1797 - 500)
    assert torch.equal(split.x_train, plain.x_train)
    # standardized on the training set alone, so the same images have the same features in both
    assert _rows(split.x_val) | _rows(split.x_test) == _rows(plain.x_test)
    assert not (_rows(split.x_val) & _rows(split.x_test)) and not (_rows(split.x_train) & _rows(split.x_val))
    assert torch.allclose(split.x_train.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-12)
    assert split.n_classes == 10


@pytest.mark.parametrize("n_val, error", [(-1, ValueError), (1797 - 200 - 9, ValueError), (2.0, TypeError),
                                          ("10", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_n_val_is_refused_with_its_name(n_val, error):
    with pytest.raises(error, match="n_val"):
        load_digits_split(200, n_val=n_val)


def test_numpy_integers_are_sizes():
    split = load_digits_split(np.int64(50), n_val=np.int32(20))
    assert (len(split.y_train), len(split.y_val)) == (50, 20)


def test_label_noise_corrupts_only_the_training_labels_and_keeps_the_validation_set():
    split = load_digits_split(300, n_val=100, seed=1)
    noisy = with_label_noise(split, 1.0, seed=2)
    assert not torch.equal(noisy.y_train, split.y_train)
    assert noisy.y_val is split.y_val and noisy.x_val is split.x_val and noisy.y_test is split.y_test


def test_a_split_with_half_a_validation_set_is_refused():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="x_val and y_val"):
        Split(x, y, x, y, x_val=x)
