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
