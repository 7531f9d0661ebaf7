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


def test_on_epoch_is_called_after_each_recorded_epoch_with_the_epoch_and_the_trained_model():
    import torch

    from dropoutbook.data import load_digits_split
    from dropoutbook.training import accuracy, mlp, train_classifier

    data = load_digits_split(n_train=100, seed=0)
    for record_every, expected in ((1, [1, 2, 3, 4]), (3, [3, 4])):
        torch.manual_seed(0)
        model = mlp([64, 16, 10], dropout=0.3).double()
        calls = []

        def keep(epoch, net):
            calls.append((epoch, net, {k: v.clone() for k, v in net.state_dict().items()},
                          accuracy(net, data.x_test, data.y_test)))

        history = train_classifier(model, data, epochs=4, seed=1, record_every=record_every, on_epoch=keep)
        assert [epoch for epoch, *_ in calls] == expected  # counted from 1, once per recorded epoch
        assert all(net is model for _, net, _, _ in calls)
        # called after the epoch was trained and recorded: the weights it sees give the recorded accuracy
        assert [acc for *_, acc in calls] == history.test_accuracy
        states = [state for _, _, state, _ in calls]
        assert all(not torch.equal(a["0.weight"], b["0.weight"]) for a, b in zip(states, states[1:]))
        assert all(torch.equal(states[-1][k], v) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="on_epoch must be callable"):
        train_classifier(mlp([64, 10]).double(), data, epochs=1, on_epoch="print")


def test_chosen_is_the_first_epoch_of_highest_validation_accuracy_and_at_chosen_reads_the_test_there():
    # the test accuracy peaks at another epoch than the validation accuracy: "chosen" must not be
    # the oracle "best" (which looks at the test set)
    runs = [History(test_accuracy=[0.5, 0.6, 0.9], val_accuracy=[0.7, 0.8, 0.8]),
            History(test_accuracy=[0.7, 0.4, 0.5], val_accuracy=[0.6, 0.9, 0.5])]
    assert [h.chosen for h in runs] == [1, 1]
    assert across_runs(runs, "test_accuracy", at="chosen").value == pytest.approx(0.5)
    assert across_runs(runs, "test_accuracy", at="best").value == pytest.approx(0.8)
    assert across_runs(runs, "val_accuracy", at="chosen").value == pytest.approx(0.85)


def test_chosen_without_a_validation_split_names_the_fix():
    with pytest.raises(ValueError, match="n_val"):
        History(test_accuracy=[0.5]).chosen
    with pytest.raises(ValueError, match="n_val"):
        across_runs([History(test_accuracy=[0.5])], "test_accuracy", at="chosen")


def test_a_validation_split_is_recorded_every_recorded_epoch_and_does_not_change_the_training():
    import torch

    from dropoutbook.data import load_digits_split
    from dropoutbook.training import mlp, train_classifier

    with_val = load_digits_split(100, n_val=200, seed=3, dtype=torch.float32)
    without = load_digits_split(100, seed=3, dtype=torch.float32)
    assert torch.equal(with_val.x_train, without.x_train) and torch.equal(with_val.y_train, without.y_train)
    histories = []
    for data in (with_val, without):
        torch.manual_seed(0)
        histories.append(train_classifier(mlp([64, 16, 10]), data, epochs=4, record_every=2, seed=1))
    a, b = histories
    assert len(a.val_accuracy) == len(a.val_loss) == 2 and b.val_accuracy == []
    assert a.loss == b.loss and a.train_accuracy == b.train_accuracy  # evaluation draws no randomness
