"""Calibration metrics, error-detection AUROC and the deep-ensemble layout (chapter 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dropoutbook as db

F64 = torch.float64


def test_nll_and_brier_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.25, 0.25, 0.5]], dtype=F64)
    labels = torch.tensor([0, 2, 1])
    nll = -(math.log(0.7) + math.log(0.4) + math.log(0.25)) / 3
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.5**2 + 0.6**2) + (0.25**2 + 0.75**2 + 0.5**2)) / 3
    assert db.negative_log_likelihood(probs, labels).item() == pytest.approx(nll, abs=1e-12)
    assert db.brier_score(probs, labels).item() == pytest.approx(brier, abs=1e-12)
    # a plausible wrong Brier (divided by C) and a wrong NLL (log of the max probability) differ
    assert abs(db.brier_score(probs, labels).item() - brier / 3) > 0.1
    assert abs(db.negative_log_likelihood(probs, labels).item()
               + math.log(0.7 * 0.5 * 0.5) / 3) > 0.1


def test_nll_of_a_zero_probability_is_inf_not_clamped():
    out = db.negative_log_likelihood(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert math.isinf(out.item())


def test_reliability_diagram_and_ece_by_hand():
    # confidences 0.95, 0.9, 0.65, 0.55, 0.45 (argmax 0, 0, 1, 0, 2) with 4 bins of width 0.25
    probs = torch.tensor([[0.95, 0.05, 0.0], [0.9, 0.1, 0.0], [0.2, 0.65, 0.15],
                          [0.55, 0.45, 0.0], [0.3, 0.25, 0.45]], dtype=F64)
    labels = torch.tensor([0, 1, 1, 0, 0])  # right, wrong, right, right, wrong
    d = db.reliability_diagram(probs, labels, n_bins=4)
    assert d.edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert d.count.tolist() == [0, 1, 2, 2]
    assert math.isnan(d.accuracy[0]) and math.isnan(d.confidence[0])
    assert d.accuracy[1:].tolist() == [0.0, 1.0, 0.5]
    assert d.confidence[1:].tolist() == pytest.approx([0.45, 0.6, 0.925], abs=1e-12)
    ece = (1 * 0.45 + 2 * 0.4 + 2 * 0.425) / 5
    assert db.expected_calibration_error(probs, labels, n_bins=4).item() == pytest.approx(ece, abs=1e-12)
    # one bin: |overall accuracy - mean confidence|
    one = db.expected_calibration_error(probs, labels, n_bins=1).item()
    assert one == pytest.approx(abs(3 / 5 - (0.95 + 0.9 + 0.65 + 0.55 + 0.45) / 5), abs=1e-12)


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    probs = torch.tensor([[0.5, 0.5], [0.75, 0.25], [1.0, 0.0]], dtype=F64)
    d = db.reliability_diagram(probs, torch.tensor([0, 0, 0]), n_bins=4)
    assert d.count.tolist() == [0, 1, 1, 1]  # 0.5 in (0.25, 0.5], 0.75 in (0.5, 0.75], 1.0 in (0.75, 1]


def _simulated(n, c, g, temperature):
    """Probabilities drawn at random; labels drawn from softmax(logits / temperature) (temperature 1:
    from the probabilities themselves, a perfectly calibrated predictor)."""
    logits = 2.0 * torch.randn(n, c, generator=g, dtype=F64)
    truth = (logits / temperature).softmax(-1)
    labels = torch.multinomial(truth, 1, generator=g)[:, 0]
    return logits.softmax(-1), labels


def test_ece_of_a_calibrated_predictor_is_within_its_sampling_bound_and_a_miscalibrated_one_is_not():
    n, c, bins = 20_000, 5, 10
    g = torch.Generator().manual_seed(0)
    # E[ECE] of a calibrated predictor <= sum_b (n_b/N) * sd(acc_b) <= sum_b sqrt(n_b) / (2N) <= sqrt(B / N) / 2
    bound = math.sqrt(bins / n) / 2
    calibrated = db.expected_calibration_error(*_simulated(n, c, g, 1.0), n_bins=bins).item()
    assert calibrated < bound  # mean below the bound; the observed value too (fixed seed)
    over = db.expected_calibration_error(*_simulated(n, c, g, 2.0), n_bins=bins).item()  # overconfident
    assert over > 5 * bound
    # the diagram of the calibrated predictor follows the diagonal bin by bin, within 5 s.e.
    probs, labels = _simulated(n, c, g, 1.0)
    d = db.reliability_diagram(probs, labels, n_bins=bins)
    filled = d.count >= 50
    se = (d.confidence * (1 - d.confidence) / d.count).sqrt()
    assert ((d.accuracy - d.confidence).abs()[filled] < 5 * se[filled] + 1e-3).all()


def test_brier_and_nll_prefer_the_true_probabilities_on_average():
    """Proper scoring rules: the calibrated predictor scores better than a sharpened one."""
    g = torch.Generator().manual_seed(1)
    probs, labels = _simulated(20_000, 4, g, 1.0)
    sharpened = (probs.log() * 2).softmax(-1)
    assert db.negative_log_likelihood(probs, labels) < db.negative_log_likelihood(sharpened, labels)
    assert db.brier_score(probs, labels) < db.brier_score(sharpened, labels)


def _auroc_by_pairs(correct, u):
    err, ok = u[~correct], u[correct]
    diff = err[:, None] - ok[None, :]
    return ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()


def test_error_detection_auroc_against_a_hand_count_and_sklearn():
    from sklearn.metrics import roc_auc_score

    correct = torch.tensor([True, False, True, False, True, True])
    u = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.5, 0.2])
    # errors 0.9 and 0.5 against right 0.1, 0.5, 0.5, 0.2: 4 + (1 + 0.5 + 0.5 + 1) = 7 of 8 pairs
    assert db.error_detection_auroc(correct, u) == pytest.approx(7 / 8)
    g = torch.Generator().manual_seed(2)
    for n in (7, 50, 400):
        correct = torch.rand(n, generator=g) < 0.7
        correct[0], correct[1] = True, False
        u = torch.randint(0, 6, (n,), generator=g).double()  # many ties
        ours = db.error_detection_auroc(correct, u)
        assert ours == pytest.approx(_auroc_by_pairs(correct, u), abs=1e-12)
        assert ours == pytest.approx(roc_auc_score((~correct).numpy(), u.numpy()), abs=1e-12)
        # confidence instead of uncertainty gives the mirror image
        assert db.error_detection_auroc(correct, -u) == pytest.approx(1 - ours, abs=1e-12)


def test_error_detection_auroc_extremes_and_numpy():
    correct = np.array([True, True, False, False])
    assert db.error_detection_auroc(correct, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert db.error_detection_auroc(correct, np.array([0.3, 0.4, 0.1, 0.2])) == 0.0
    assert db.error_detection_auroc(correct, np.zeros(4)) == 0.5
    with pytest.raises(ValueError, match="^correct must hold at least one right and one wrong"):
        db.error_detection_auroc(np.array([True, True]), np.array([0.1, 0.2]))


def test_metrics_take_numpy_and_leave_inputs_unchanged():
    g = torch.Generator().manual_seed(3)
    probs, labels = _simulated(30, 3, g, 1.0)
    p0, y0 = probs.clone(), labels.clone()
    for fn in (db.negative_log_likelihood, db.brier_score, db.expected_calibration_error):
        out = fn(probs.numpy(), labels.numpy())
        assert isinstance(out, np.floating) and out == pytest.approx(fn(probs, labels).item())
    assert torch.equal(probs, p0) and torch.equal(labels, y0)
    assert db.negative_log_likelihood(probs.float(), labels).dtype == torch.float32


def test_metrics_refuse_logits_wrong_shapes_and_bad_labels():
    probs = torch.tensor([[0.6, 0.4], [0.1, 0.9]])
    with pytest.raises(ValueError, match="^probs must sum to 1"):
        db.brier_score(torch.tensor([[0.6, 0.6], [0.1, 0.9]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^probs must have shape \(N, C\)"):
        db.negative_log_likelihood(probs[None].expand(3, 2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^labels must hold class indices in \[0, 1\]"):
        db.expected_calibration_error(probs, torch.tensor([0, 2]))
    with pytest.raises(TypeError, match="^labels must be an integer"):
        db.brier_score(probs, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"^labels must have shape \(2,\)"):
        db.brier_score(probs, torch.tensor([0, 1, 1]))


def _members(k=3):
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(6), nn.Linear(6, 4))
            for _ in range(k)]


def test_ensemble_predict_stacks_deterministic_members_in_the_mc_layout():
    members = _members()
    for m in members:
        m.eval()
    members[1].train()  # a member left in training mode is evaluated in eval mode and left as it was
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(4))
    x0 = x.clone()
    state = [{k: v.clone() for k, v in m.state_dict().items()} for m in members]
    pred = db.ensemble_predict(members, x)
    assert [m.training for m in members] == [False, True, False]
    assert all(all(torch.equal(v, s[k]) for k, v in m.state_dict().items()) for m, s in zip(members, state))
    assert torch.equal(x, x0)
    expected = []
    for m in members:
        mode = m.training
        m.eval()
        with torch.no_grad():
            expected.append(m(x))
        m.train(mode)
    expected = torch.stack(expected)
    assert pred.samples.shape == (3, 5, 4) and torch.equal(pred.samples, expected)
    assert torch.allclose(pred.mean, expected.mean(0))
    assert torch.allclose(pred.variance, ((expected - expected.mean(0)) ** 2).sum(0) / 2)
    # the uncertainty scores apply unchanged
    p = pred.samples.softmax(-1)
    total, aleatoric, epistemic = db.predictive_entropy(p), db.expected_entropy(p), db.mutual_information(p)
    assert total.shape == (5,) and torch.allclose(total, aleatoric + epistemic, atol=1e-6)
    assert (epistemic > 0).all()  # different initializations disagree


def test_ensemble_of_identical_members_has_no_epistemic_part():
    m = _members(1)[0]
    pred = db.ensemble_predict([m, m, m], torch.randn(4, 3))
    assert torch.equal(pred.variance, torch.zeros_like(pred.variance))
    assert db.mutual_information(pred.samples.softmax(-1)).abs().max() < 1e-6


def test_reliability_plot_draws_the_bins():
    import matplotlib

    matplotlib.use("Agg")
    from dropoutbook.plotting import figure, reliability_plot

    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.35, 0.65], [0.55, 0.45]], dtype=F64)
    d = db.reliability_diagram(probs, torch.tensor([0, 1, 1, 0]), n_bins=5)
    fig, ax = figure()
    reliability_plot(ax, d, label="model")
    reliability_plot(ax, d, label="again", color="C1")
    diagonals = [line for line in ax.get_lines() if line.get_label() == "perfect calibration"]
    assert len(diagonals) == 1
    points = ax.collections[0].get_offsets()
    filled = d.count > 0
    assert np.allclose(points[:, 0], d.confidence[filled].numpy())
    assert np.allclose(points[:, 1], d.accuracy[filled].numpy())
    with pytest.raises(TypeError, match="^diagram must be a dropoutbook.ReliabilityDiagram"):
        reliability_plot(ax, (d.confidence, d.accuracy))
    import matplotlib.pyplot as plt

    plt.close(fig)
