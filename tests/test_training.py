"""The summary of repeated runs used by the experiment tables (chapters 1, 8 and 9)."""

from __future__ import annotations

import math

import pytest

from dropoutbook.training import History, across_runs


def test_across_runs_final_and_best():
    runs = [History(test_accuracy=[0.5, 0.9, 0.8]), History(test_accuracy=[0.6, 0.7, 1.0])]
    final = across_runs(runs, "test_accuracy")
    assert final.value == pytest.approx(0.9) and final.n == 2
    assert final.stderr == pytest.approx(math.sqrt(((0.8 - 0.9) ** 2 + (1.0 - 0.9) ** 2) / 1 / 2))
    assert across_runs(runs, "test_accuracy", at="best").value == pytest.approx(0.95)


@pytest.mark.parametrize("kwargs, error", [
    ({"metric": "accuracy"}, ValueError), ({"metric": "test_accuracy", "at": "last"}, ValueError),
])
def test_across_runs_rejects_unknown_metric_and_at(kwargs, error):
    with pytest.raises(error, match=kwargs.get("at", kwargs["metric"])):
        across_runs([History(test_accuracy=[1.0])], **kwargs)


def test_across_runs_rejects_empty_runs_and_empty_series():
    with pytest.raises(TypeError, match="runs"):
        across_runs([], "test_accuracy")
    with pytest.raises(ValueError, match="at least one epoch"):
        across_runs([History()], "test_accuracy")


def test_record_every_keeps_the_training_and_records_fewer_epochs():
    import torch

    from dropoutbook.data import load_digits_split
    from dropoutbook.training import mlp, train_classifier

    data = load_digits_split(n_train=100, seed=0)
    histories = []
    for record_every in (1, 3, 7):
        torch.manual_seed(0)
        histories.append(train_classifier(mlp([64, 16, 10], dropout=0.3).double(), data, epochs=7,
                                          seed=1, record_every=record_every))
    every, some, last = histories
    assert len(every.test_accuracy) == 7 and len(some.test_accuracy) == 3 and len(last.test_accuracy) == 1
    assert some.test_accuracy == [every.test_accuracy[i] for i in (2, 5, 6)]
    assert last.loss == every.loss[-1:] and last.train_accuracy == every.train_accuracy[-1:]
    with pytest.raises(ValueError, match="record_every"):
        train_classifier(mlp([64, 10]).double(), data, epochs=2, record_every=0)
