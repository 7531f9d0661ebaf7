"""The bad-input matrix: every public name, each argument, the bad values that apply.

Each entry of ``MATRIX`` gives a valid call of one public function, class or ``forward`` (a
factory, so that every test gets fresh tensors) and, per argument, the values that must be
refused. A refused value must raise ``TypeError`` or ``ValueError`` whose message names the
argument; no other exception (a torch error from deep inside, an ``AttributeError``) passes,
and the other arguments (tensors, modules, their modes) must come back unchanged.
``test_every_public_name_has_an_entry`` fails when a public name is added without one.

Values that are *not* errors (NumPy scalars and 0-d tensors as numbers, NumPy integers as
sizes, NumPy arrays as data, empty and non-contiguous tensors, every floating dtype, the
gradient at p = 0 and p = 1) are checked for correct behaviour in the second half.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch import nn

import dropoutbook as db
from dropoutbook.data import Split

NAN, INF = float("nan"), float("inf")
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# families of bad values


def _tensors_of_wrong_dtype(shape=(3, 4)):
    return [torch.ones(shape, dtype=torch.int64), torch.ones(shape, dtype=torch.bool),
            torch.ones(shape, dtype=torch.complex64)]


#: a drop (or keep) probability in [0, 1]
PROB = [-0.1, 1.5, NAN, INF, "0.5", None, True, 1j, torch.tensor([0.1, 0.2]), np.array([0.1, 0.2]),
        torch.tensor(True), np.bool_(True)]
#: a drop probability in [0, 1)
PROB_OPEN = PROB + [1.0, np.float32(1.0), torch.tensor(1.0)]
#: a positive int
POS_INT = [0, -1, 2.5, 2.0, "3", None, True, torch.tensor(3), np.float64(3.0), 1j]
#: a non-negative int
NONNEG_INT = [-1, 2.5, "3", None, True, torch.tensor(1)]
#: a bool flag (``training``, ``inverted``, ...): torch.nn.functional.dropout refuses all of these
BOOL = ["False", "True", None, 0, 1, 0.0, torch.tensor(True), [True]]
GENERATOR = [0, "g", torch.tensor(0), np.random.default_rng(0), torch.Generator]
SEED = [-1, 1.5, "1", None, True, 2**64, torch.tensor(1)]
FLOAT_DTYPE = [torch.int64, torch.bool, "float32", None, np.float32, float]
DEVICE = ["no-such-device", 1.5, True, [0]]
REAL = ["1", None, True, NAN, 1j, [1.0]]
POSITIVE_REAL = REAL + [0.0, -1.0, INF]
MODULE = [None, "model", lambda x: x, torch.ones(2), nn.Linear]
#: a floating-point tensor (the model or data input of a torch function)
FLOAT_TENSOR = [*_tensors_of_wrong_dtype(), [[1.0, 2.0]], None, "x", 1.0, np.ones((3, 4))]
#: a floating-point tensor or NumPy array of data (design matrices, targets, predictions)
FLOAT_DATA = [*_tensors_of_wrong_dtype(), np.ones((3, 4), dtype=np.int64), np.array([["a"]]),
              [[1.0, 2.0]], None, "x", 1.0]
CHOICE = ["nonsense", "", None, 3, ["batch"]]
#: an integer tensor of shape (2, E) of node ids (a graph's edges)
EDGE_INDEX = [torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 3, dtype=torch.complex64),
              [[0, 1], [1, 0]], None, "e", np.array([[0, 1], [1, 0]]), torch.tensor([0, 1]),
              torch.zeros(3, 2, dtype=torch.int64), torch.tensor([[-1], [0]])]


# --------------------------------------------------------------------------------------------
# small fixtures


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))


def no_dropout() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))


def svdo_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(db.LinearSVDO(4, 3), nn.ReLU(), db.LinearSVDO(3, 2))


def tiny_split() -> Split:
    g = gen(1)
    x = torch.randn(20, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return Split(x[:16], y[:16], x[16:], y[16:])


def probs(T=3, n=2, c=3) -> torch.Tensor:
    return torch.randn(T, n, c, generator=gen(2)).softmax(-1)


def x34() -> torch.Tensor:
    return torch.randn(3, 4, generator=gen(3))


def maps() -> torch.Tensor:
    return torch.randn(2, 3, 6, 6, generator=gen(4))


def design() -> torch.Tensor:
    return torch.randn(8, 3, generator=gen(5), dtype=F64)


def weights3() -> torch.Tensor:
    return torch.randn(3, generator=gen(6), dtype=F64)


def targets8() -> torch.Tensor:
    return torch.randn(8, generator=gen(7), dtype=F64)


def tokens() -> torch.Tensor:
    return torch.randint(0, 8, (2, 6), generator=gen(8))


def estimate() -> db.Estimate:
    return db.Estimate(1.0, 0.1, 10)


def sequence() -> torch.Tensor:
    """A batch of sequences ``(T, B, D)`` = (5, 2, 3)."""
    return torch.randn(5, 2, 3, generator=gen(9))


def lstm_state() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(2, 4), torch.zeros(2, 4)


def path_graph() -> torch.Tensor:
    """The undirected path 0 - 1 - 2, both directions listed."""
    return torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])


def enter(cm_factory):
    """Call a context-manager factory and enter it (what ``with`` does)."""
    def call(**kwargs):
        with cm_factory(**kwargs):
            pass
    return call


def forward_of(make: Callable[[], nn.Module], name: str = "x"):
    """A call of ``make()(input)``, the module's forward, with the input passed as ``name``."""
    def call(**kwargs):
        return make()(kwargs[name])
    return call


@dataclass
class Entry:
    """One public callable: a valid set of arguments and, per argument, values it must refuse."""

    call: Callable[..., object]
    good: Callable[[], dict]
    bad: dict[str, list] = field(default_factory=dict)


E = Entry
MATRIX: dict[str, Entry] = {
    # chapter 1: masks and dropout
    "bernoulli_mask": E(db.bernoulli_mask, lambda: dict(shape=(2, 3), keep_prob=0.5, generator=gen(), device=None,
                                                        dtype=torch.float32),
                        dict(shape=[-1, 2.5, "3", None, (2, -1), (2, 2.5), True, {2: 3}], keep_prob=PROB,
                             generator=GENERATOR, device=DEVICE, dtype=[torch.int64, "float32", None])),
    "inverted_dropout": E(db.inverted_dropout, lambda: dict(x=x34(), p=0.3, training=True, generator=gen()),
                          dict(x=FLOAT_TENSOR, p=PROB, training=BOOL, generator=GENERATOR)),
    "standard_dropout": E(db.standard_dropout, lambda: dict(x=x34(), p=0.3, training=True, generator=gen()),
                          dict(x=FLOAT_TENSOR, p=PROB, training=BOOL, generator=GENERATOR)),
    "InvertedDropout": E(db.InvertedDropout, lambda: dict(p=0.3, generator=gen()), dict(p=PROB, generator=GENERATOR)),
    "InvertedDropout.forward": E(forward_of(lambda: db.InvertedDropout(0.3)), lambda: dict(x=x34()),
                                 dict(x=FLOAT_TENSOR)),
    "StandardDropout": E(db.StandardDropout, lambda: dict(p=0.3, generator=gen()), dict(p=PROB, generator=GENERATOR)),
    "StandardDropout.forward": E(forward_of(lambda: db.StandardDropout(0.3)), lambda: dict(x=x34()),
                                 dict(x=FLOAT_TENSOR)),
    # chapter 1: Monte Carlo estimates
    "Estimate": E(db.Estimate, lambda: dict(value=1.0, stderr=0.1, n=10),
                  dict(value=REAL + [INF], stderr=REAL + [-0.1, INF], n=POS_INT)),
    "estimate_mean": E(db.estimate_mean, lambda: dict(samples=[1.0, 2.0, 3.0]),
                       dict(samples=[[1.0], [NAN, 1.0], [INF, 1.0], ["a", "b"], "ab", None, np.array([], dtype=float),
                                     torch.ones(3, dtype=torch.complex64)])),
    "estimate_variance": E(db.estimate_variance, lambda: dict(samples=[1.0, 2.0, 4.0]),
                           dict(samples=[[1.0], [NAN, 1.0], ["a", "b"], None, torch.ones(1)])),
    "z_score": E(db.z_score, lambda: dict(estimate=estimate(), exact=1.0),
                 dict(estimate=[None, 1.0, (1.0, 0.1, 10), "1 ± 0.1"], exact=["1.0", None, True, NAN, 1j, [1.0]])),
    "agrees": E(db.agrees, lambda: dict(estimate=estimate(), exact=1.0, z=5.0),
                dict(estimate=[None, 1.0], exact=["1.0", None, NAN], z=POSITIVE_REAL)),
    # chapter 2
    "dropout_penalty": E(db.dropout_penalty, lambda: dict(w=weights3(), X=design(), p=0.3),
                         dict(w=FLOAT_DATA + [torch.ones(2, dtype=F64), torch.ones(3), torch.full((3,), NAN, dtype=F64)],
                              X=FLOAT_DATA + [torch.ones(3, dtype=F64), torch.ones(0, 3, dtype=F64),
                                              torch.full((8, 3), INF, dtype=F64)],
                              p=PROB_OPEN)),
    "dropout_ridge_solution": E(db.dropout_ridge_solution, lambda: dict(X=design(), y=targets8(), p=0.3),
                                dict(X=FLOAT_DATA + [torch.zeros(8, 3, dtype=F64), torch.ones(8, 0, dtype=F64)],
                                     y=FLOAT_DATA + [torch.ones(7, dtype=F64), torch.ones(8, 1, dtype=F64),
                                                     torch.ones(8)],
                                     p=PROB_OPEN)),
    "logistic_dropout_penalty": E(db.logistic_dropout_penalty, lambda: dict(w=weights3(), X=design(), p=0.3),
                                  dict(w=FLOAT_DATA + [torch.ones(4, dtype=F64)], X=FLOAT_DATA, p=PROB_OPEN)),
    "exact_logistic_dropout_penalty": E(db.exact_logistic_dropout_penalty, lambda: dict(w=weights3(), X=design(), p=0.3),
                                        dict(w=FLOAT_DATA, X=FLOAT_DATA + [torch.ones(2, 17, dtype=F64)], p=PROB_OPEN)),
    # chapter 3
    "JensenGap": E(lambda **kw: db.jensen_gap(**kw), lambda: dict(f="tanh", w=weights3(), x=weights3(), p=0.3), {}),
    "jensen_gap": E(db.jensen_gap, lambda: dict(f="tanh", w=weights3(), x=weights3(), p=0.3, method="mc", bias=0.5,
                                                scaling="inverted", n_samples=100, generator=gen()),
                    dict(f=["softplus", None, 3, lambda z: z.sum(), lambda z: "y"],
                         w=FLOAT_TENSOR + [torch.ones(4, dtype=F64), torch.ones(3),
                                           torch.tensor([1.0, NAN, 1.0], dtype=F64), torch.tensor([INF, 1.0, 1.0], dtype=F64)],
                         x=FLOAT_TENSOR + [torch.ones(0, dtype=F64), torch.ones(3, 1, dtype=F64), torch.ones(3),
                                           torch.tensor([NAN, 1.0, 1.0], dtype=F64)],
                         p=PROB_OPEN, method=CHOICE, bias=["x", "0.5", True, NAN, 1j,
                                                           torch.ones(2, dtype=F64), torch.ones(1, 2, dtype=F64),
                                                           torch.ones(1, dtype=torch.int64)],
                         scaling=CHOICE, n_samples=[1, 0, 2.5, "100", None, True], generator=GENERATOR)),
    "LayerwiseGap": E(lambda **kw: db.layerwise_jensen_gap(**kw), lambda: dict(model=mlp(), x=torch.randn(2, 3)), {}),
    "layerwise_jensen_gap": E(db.layerwise_jensen_gap,
                              lambda: dict(model=mlp(), x=torch.randn(2, 3), method="mc", n_samples=10, generator=gen()),
                              dict(model=MODULE + [nn.Linear(3, 2), no_dropout(),
                                                   nn.Sequential(nn.Linear(3, 3), nn.Dropout2d(0.5))],
                                   x=FLOAT_TENSOR + [torch.ones(3), torch.ones(0, 3)],
                                   method=CHOICE + ["delta"], n_samples=[1, 0, 2.5, "10", None, True],
                                   generator=GENERATOR)),
    # chapter 4
    "enumerate_masks": E(db.enumerate_masks, lambda: dict(n_units=3, dtype=F64, device=None),
                         dict(n_units=NONNEG_INT + [25], dtype=[torch.int64, "float64", None], device=DEVICE)),
    "subnetwork_average": E(db.subnetwork_average,
                            lambda: dict(fn=lambda m: m.sum(-1), n_units=3, p=0.3, chunk_size=4, dtype=F64, device=None),
                            dict(fn=[None, "f", 3, lambda m: "x", lambda m: m.sum(), lambda m: m.long()],
                                 n_units=NONNEG_INT + [25], p=PROB, chunk_size=POS_INT,
                                 dtype=[torch.int64, torch.bool, "float64", None], device=DEVICE)),
    "subnetwork_forward": E(db.subnetwork_forward,
                            lambda: dict(model=mlp().eval(), x=torch.randn(2, 3), masks=[torch.ones(2, 4)]),
                            dict(model=MODULE + [nn.Linear(3, 2)],
                                 x=FLOAT_TENSOR + [torch.ones(3), torch.ones(1, 2, 3)],
                                 masks=[torch.ones(1, 4), [], [torch.ones(1, 3)], [torch.full((1, 4), 0.5)],
                                        [torch.ones(4)], [[1, 0, 1, 1]], None, "m",
                                        [torch.ones(1, 4), torch.ones(1, 4)], [torch.ones(1, 4, dtype=torch.complex64)]])),
    "AmbiguityDecomposition": E(lambda **kw: db.ambiguity_decomposition(**kw),
                                lambda: dict(preds=torch.randn(3, 4), target=torch.zeros(4)), {}),
    "ambiguity_decomposition": E(db.ambiguity_decomposition,
                                 lambda: dict(preds=torch.randn(3, 4), target=torch.zeros(4), event_dims=0),
                                 dict(preds=FLOAT_DATA + [torch.ones(1, 4), torch.ones(3, 0), torch.tensor(1.0)],
                                      target=[[0.0] * 4, None, "t", torch.zeros(5), torch.zeros(4, dtype=torch.complex64),
                                              np.array(["a"] * 4)],
                                      event_dims=[-1, 2, 1.0, "0", None, True])),
    "path_survival_probability": E(db.path_survival_probability, lambda: dict(p=0.5, depth=3, input_p=0.2),
                                   dict(p=PROB, depth=NONNEG_INT, input_p=PROB)),
    "count_active_paths": E(db.count_active_paths, lambda: dict(masks=[torch.ones(3), torch.ones(2)]),
                            dict(masks=[torch.ones(3), [], None, "m", [[1.0, 0.0]], [torch.tensor([2.0, 0.0])],
                                        [torch.tensor(1.0)], [torch.ones(2, 3), torch.ones(3, 2)]])),
    # chapter 5
    "dropout_modules": E(db.dropout_modules, lambda: dict(model=mlp(), dropout_types=None),
                         dict(model=MODULE, dropout_types=[nn.Dropout, "Dropout", 3, [int], [nn.Dropout()]])),
    "mc_dropout": E(enter(db.mc_dropout), lambda: dict(model=mlp(), dropout_types=None),
                    dict(model=MODULE + [no_dropout()], dropout_types=[nn.Dropout, "Dropout", [int]])),
    "MCPrediction": E(lambda **kw: db.mc_predict(**kw), lambda: dict(model=mlp(), x=torch.randn(2, 3), T=3), {}),
    "mc_predict": E(db.mc_predict, lambda: dict(model=mlp(), x=torch.randn(2, 3), T=3, chunk_size=2, generator=gen(),
                                                return_samples=False, dropout_types=None),
                    dict(model=MODULE + [no_dropout()],
                         x=[None, "x", [[1.0, 2.0, 3.0]], np.ones((2, 3)), torch.ones(0, 3), torch.tensor(1.0),
                            torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 5)],
                         T=[1, 0, -1, 2.5, "3", None, True], chunk_size=[b for b in POS_INT if b is not None],
                         generator=GENERATOR,
                         return_samples=BOOL, dropout_types=[nn.Dropout, "Dropout", [int]])),
    "predictive_entropy": E(db.predictive_entropy, lambda: dict(probs=probs()),
                            dict(probs=FLOAT_DATA + [torch.ones(3), torch.full((3, 2, 3), NAN),
                                                     torch.randn(3, 2, 3), probs() * 2, torch.ones(0, 2, 3)])),
    "expected_entropy": E(db.expected_entropy, lambda: dict(probs=probs()),
                          dict(probs=FLOAT_DATA + [torch.ones(3), torch.randn(3, 2, 3)])),
    "mutual_information": E(db.mutual_information, lambda: dict(probs=probs()),
                            dict(probs=FLOAT_DATA + [torch.ones(3), -probs()])),
    "referral_curve": E(db.referral_curve,
                        lambda: dict(correct=torch.tensor([True, False, True, True]),
                                     uncertainty=torch.tensor([0.1, 0.9, 0.2, 0.3]), fractions=[0.0, 0.25]),
                        dict(correct=[None, "c", [True, False, True, True], torch.tensor([0.5, 1.0, 0.0, 1.0]),
                                      torch.ones(2, 2, dtype=torch.bool), torch.ones(0, dtype=torch.bool),
                                      torch.ones(4, dtype=torch.complex64)],
                             uncertainty=FLOAT_DATA + [torch.ones(3), torch.tensor([NAN, 0.0, 0.0, 0.0])],
                             fractions=[["0.5"], [1.0], [-0.1], [NAN], [], None, "0.5", 0.5, [None],
                                        torch.ones(2, 2) * 0.1, [0.9]])),
    "ensemble_predict": E(db.ensemble_predict, lambda: dict(models=[mlp(), no_dropout()], x=torch.randn(2, 3)),
                          dict(models=[None, mlp(), [mlp()], [], "models", [mlp(), "m"], [mlp(), nn.Linear(3, 5)], 3],
                               x=[None, "x", [[1.0, 2.0, 3.0]], np.ones((2, 3)), torch.ones(0, 3), torch.tensor(1.0),
                                  torch.ones(2, 5)])),
    # chapter 5, calibration
    **{name: E(getattr(db, name), lambda: dict(probs=probs()[0], labels=torch.tensor([0, 2])),
               dict(probs=FLOAT_DATA + [probs(), torch.ones(3), torch.full((2, 3), NAN), probs()[0] * 2,
                                        torch.ones(0, 3), -probs()[0]],
                    labels=[None, "y", [0, 2], torch.tensor([0.0, 2.0]), torch.tensor([True, False]),
                            torch.tensor([0, 3]), torch.tensor([-1, 0]), torch.tensor([0, 1, 2]),
                            torch.tensor([[0, 1]]), np.array([0.0, 1.0])]))
       for name in ("negative_log_likelihood", "brier_score")},
    **{name: E(getattr(db, name), lambda: dict(probs=probs()[0], labels=torch.tensor([0, 2]), n_bins=10),
               dict(probs=FLOAT_DATA + [probs(), torch.ones(3), probs()[0] * 2],
                    labels=[None, "y", torch.tensor([0.0, 2.0]), torch.tensor([0, 3]), torch.tensor([0, 1, 2])],
                    n_bins=POS_INT))
       for name in ("reliability_diagram", "expected_calibration_error")},
    "ReliabilityDiagram": E(lambda **kw: db.reliability_diagram(**kw),
                            lambda: dict(probs=probs()[0], labels=torch.tensor([0, 2])), {}),
    "error_detection_auroc": E(db.error_detection_auroc,
                               lambda: dict(correct=torch.tensor([True, False, True, True]),
                                            uncertainty=torch.tensor([0.1, 0.9, 0.2, 0.3])),
                               dict(correct=[None, "c", [True, False, True, True], torch.tensor([0.5, 1.0, 0.0, 1.0]),
                                             torch.ones(2, 2, dtype=torch.bool), torch.ones(0, dtype=torch.bool),
                                             torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)],
                                    uncertainty=FLOAT_DATA + [torch.ones(3), torch.tensor([NAN, 0.0, 0.0, 0.0])])),
    # chapter 6
    "bn_train_variance": E(db.bn_train_variance, lambda: dict(mu=1.0, sigma2=1.0, keep_prob=0.5),
                           dict(mu=["1", None, True, NAN, 1j, torch.ones(2, dtype=torch.int64),
                                    torch.tensor([NAN, 0.0]), [1.0]],
                                sigma2=[-1.0, NAN, "1", None, True, torch.tensor([-1.0]), torch.tensor([NAN]),
                                        torch.ones(1, dtype=torch.int64), np.array([-1.0])],
                                keep_prob=[0.0, -0.1, 1.5, NAN, "0.5", None, True])),
    "VarianceShift": E(lambda **kw: db.measure_variance_shift(**kw),
                       lambda: dict(model=bn_net(), batches=[torch.randn(8, 3)]), {}),
    "measure_variance_shift": E(db.measure_variance_shift, lambda: dict(model=bn_net(), batches=[torch.randn(8, 3)]),
                                dict(model=MODULE + [nn.Linear(3, 4), nn.BatchNorm1d(3, track_running_stats=False)],
                                     batches=[torch.randn(8, 3), [], [torch.randn(1, 3)], ["x"], None, 3, [()],
                                              [torch.randn(8)]])),
    "recalibrate_batchnorm": E(db.recalibrate_batchnorm, lambda: dict(model=bn_net(), batches=[torch.randn(8, 3)]),
                               dict(model=MODULE + [nn.Linear(3, 4)],
                                    batches=[torch.randn(8, 3), [], [torch.randn(1, 3)], ["x"], None, 3, [()]])),
    "layernorm_train_test_scale": E(db.layernorm_train_test_scale,
                                    lambda: dict(h=torch.rand(4, dtype=F64), weight=torch.randn(3, 4, dtype=F64), p=0.3,
                                                 bias=None, samples=20, generator=gen()),
                                    dict(h=FLOAT_TENSOR + [torch.ones(2, 2, 4, dtype=F64), torch.ones(0, 4, dtype=F64)],
                                         weight=FLOAT_TENSOR + [torch.ones(3, 5, dtype=F64), torch.ones(1, 4, dtype=F64),
                                                                torch.ones(3, 4)],
                                         p=PROB_OPEN, bias=[torch.ones(2, dtype=F64), torch.ones(3), "b", 1.0],
                                         samples=POS_INT + [1], generator=GENERATOR)),
    # chapter 6, AlphaDropout
    "alpha_dropout_affine": E(db.alpha_dropout_affine, lambda: dict(p=0.3), dict(p=PROB_OPEN)),
    "alpha_dropout": E(db.alpha_dropout, lambda: dict(x=x34(), p=0.3, training=True, generator=gen()),
                       dict(x=FLOAT_TENSOR, p=PROB_OPEN, training=BOOL, generator=GENERATOR)),
    "AlphaDropout": E(db.AlphaDropout, lambda: dict(p=0.3, generator=gen()), dict(p=PROB_OPEN, generator=GENERATOR)),
    "AlphaDropout.forward": E(forward_of(lambda: db.AlphaDropout(0.3)), lambda: dict(x=x34()), dict(x=FLOAT_TENSOR)),
    # chapter 7
    "coverage_counts": E(db.coverage_counts, lambda: dict(height=5, width=6, block_size=3),
                         dict(height=POS_INT, width=POS_INT, block_size=POS_INT + [2, 4])),
    "block_drop_fraction": E(db.block_drop_fraction, lambda: dict(gamma=0.1, height=5, width=6, block_size=3),
                             dict(gamma=PROB, height=POS_INT, width=POS_INT, block_size=[2, 0, 2.5, "3"])),
    "seed_rate": E(db.seed_rate, lambda: dict(p=0.1, height=5, width=6, block_size=3),
                   dict(p=PROB, height=POS_INT, width=POS_INT, block_size=[2, 0, 2.5, "3"])),
    "paper_seed_rate": E(db.paper_seed_rate, lambda: dict(p=0.1, height=5, width=6, block_size=3),
                         dict(p=PROB, height=POS_INT, width=POS_INT, block_size=[2, 0, 2.5, "3"])),
    "dropblock_mask": E(db.dropblock_mask, lambda: dict(shape=(2, 5, 5), gamma=0.1, block_size=3, generator=gen(),
                                                        device=None, dtype=torch.float32),
                        dict(shape=[(3,), 3, -1, "3", None, (2, -1), (2, 2.5)], gamma=PROB, block_size=[2, 0, 2.5, "3"],
                             generator=GENERATOR, device=DEVICE, dtype=[torch.int64, torch.bool, "float32", None])),
    "position_keep_probability": E(db.position_keep_probability, lambda: dict(p=0.1, height=5, width=6, block_size=3),
                                   dict(p=PROB, height=POS_INT, width=POS_INT, block_size=[2, 0, 2.5, "3"])),
    "drop_block2d": E(db.drop_block2d, lambda: dict(x=maps(), p=0.1, block_size=3, training=True, normalize="expected",
                                                    generator=gen()),
                      dict(x=FLOAT_TENSOR + [torch.ones(5, 5), torch.ones(1, 1, 1, 5, 5)], p=PROB,
                           block_size=[2, 4, 0, -3, 2.5, "3", None, True], training=BOOL,
                           normalize=CHOICE + ["Position", "realised"], generator=GENERATOR)),
    "DropBlock2d": E(db.DropBlock2d, lambda: dict(p=0.1, block_size=3, normalize="position", generator=gen()),
                     dict(p=PROB + [db.LinearSchedule], block_size=[2, 0, 2.5, "3", None],
                          normalize=CHOICE + ["Position"], generator=GENERATOR)),
    "DropBlock2d.forward": E(forward_of(lambda: db.DropBlock2d(0.1, 3)), lambda: dict(x=maps()),
                             dict(x=FLOAT_TENSOR + [torch.ones(5, 5)])),
    "LinearSchedule": E(db.LinearSchedule, lambda: dict(start=0.0, end=0.1, steps=10),
                        dict(start=PROB, end=PROB, steps=POS_INT)),
    "LinearSchedule.__call__": E(lambda step: db.LinearSchedule(0.0, 0.1, 10)(step), lambda: dict(step=3),
                                 dict(step=NONNEG_INT)),
    "neighbour_fill": E(db.neighbour_fill, lambda: dict(x=torch.randn(3, 3), keep=torch.ones(3, 3)),
                        dict(x=FLOAT_TENSOR + [torch.ones(3)], keep=[None, "k", [[1.0] * 3] * 3, torch.full((3, 3), 0.5),
                                                                    torch.ones(2, 2),
                                                                    torch.ones(3, 3, dtype=torch.complex64)])),
    # chapter 8
    "stochastic_depth_survival": E(db.stochastic_depth_survival, lambda: dict(L=4, p_L=0.5),
                                   dict(L=POS_INT, p_L=PROB)),
    "drop_path": E(db.drop_path, lambda: dict(x=x34(), p=0.3, training=True, inverted=True, generator=gen()),
                   dict(x=FLOAT_TENSOR + [torch.tensor(1.0)], p=PROB, training=BOOL, inverted=BOOL,
                        generator=GENERATOR)),
    "DropPath": E(db.DropPath, lambda: dict(p=0.3, inverted=True, generator=gen()),
                  dict(p=PROB, inverted=BOOL, generator=GENERATOR)),
    "DropPath.forward": E(forward_of(lambda: db.DropPath(0.3)), lambda: dict(x=x34()),
                          dict(x=FLOAT_TENSOR + [torch.tensor(1.0)])),
    "StochasticDepth": E(db.StochasticDepth, lambda: dict(branch=nn.Linear(4, 4), p=0.3, mode="batch", inverted=True,
                                                          generator=gen()),
                         dict(branch=MODULE, p=PROB, mode=CHOICE, inverted=BOOL, generator=GENERATOR)),
    "StochasticDepth.forward": E(forward_of(lambda: db.StochasticDepth(nn.Linear(4, 4), 0.3)), lambda: dict(x=x34()),
                                 dict(x=FLOAT_TENSOR)),
    "residual_mlp": E(db.residual_mlp, lambda: dict(n_features=3, width=4, n_blocks=2, n_classes=2, p_L=0.5,
                                                    mode="sample", inverted=True, generator=gen()),
                      dict(n_features=POS_INT, width=POS_INT, n_blocks=POS_INT, n_classes=POS_INT, p_L=PROB,
                           mode=CHOICE, inverted=BOOL, generator=GENERATOR)),
    "depth_distribution": E(db.depth_distribution, lambda: dict(survival=[0.5, 0.8]),
                            dict(survival=[[], [1.5], [NAN], "0.5", None, 0.5, torch.ones(2, 2) * 0.5, ["0.5"],
                                           torch.ones(2, dtype=torch.complex64), [True]])),
    # chapter 9
    "attention_dropout": E(db.attention_dropout, lambda: dict(weights=probs()[0], p=0.3, training=True, generator=gen()),
                           dict(weights=FLOAT_TENSOR + [torch.ones(3)], p=PROB, training=BOOL, generator=GENERATOR)),
    "self_attention": E(db.self_attention, lambda: dict(x=torch.randn(2, 5, 4), w_qkv=torch.randn(4, 12), n_heads=2,
                                                        attn_dropout=0.1, training=True, causal=False, generator=gen(),
                                                        return_weights=False),
                        dict(x=FLOAT_TENSOR + [torch.ones(5, 4), torch.ones(2, 5, 4, dtype=F64)],
                             w_qkv=FLOAT_TENSOR + [torch.ones(4, 8), torch.ones(4, 12, dtype=F64)],
                             n_heads=POS_INT + [3], attn_dropout=PROB, training=BOOL, causal=BOOL,
                             generator=GENERATOR, return_weights=BOOL)),
    "TransformerBlock": E(db.TransformerBlock, lambda: dict(d_model=8, n_heads=2, d_ff=16, attn_dropout=0.1,
                                                            resid_dropout=0.1, causal=False, generator=gen()),
                          dict(d_model=POS_INT + [7], n_heads=POS_INT + [3], d_ff=POS_INT, attn_dropout=PROB,
                               resid_dropout=PROB, causal=BOOL, generator=GENERATOR)),
    "TransformerBlock.forward": E(forward_of(lambda: db.TransformerBlock(8, 2, 16)), lambda: dict(x=torch.randn(2, 5, 8)),
                                  dict(x=FLOAT_TENSOR + [torch.ones(2, 5, 7), torch.ones(5, 8),
                                                         torch.ones(2, 5, 8, dtype=F64)])),
    "TinyTransformer": E(db.TinyTransformer, lambda: dict(vocab_size=8, seq_len=6, n_classes=2, d_model=8, n_heads=2,
                                                          n_layers=1, d_ff=16, embed_dropout=0.1, attn_dropout=0.1,
                                                          resid_dropout=0.1, generator=gen()),
                         dict(vocab_size=POS_INT, seq_len=POS_INT, n_classes=POS_INT, d_model=POS_INT + [7],
                              n_heads=POS_INT + [3], n_layers=POS_INT, d_ff=POS_INT, embed_dropout=PROB,
                              attn_dropout=PROB, resid_dropout=PROB, generator=GENERATOR)),
    "TinyTransformer.forward": E(forward_of(lambda: db.TinyTransformer(8, 6, 2, d_model=8), "tokens"),
                                 lambda: dict(tokens=tokens()),
                                 dict(tokens=[torch.ones(2, 6), torch.ones(2, 6, dtype=torch.int32), torch.ones(2, 5).long(),
                                              torch.full((2, 6), 8), torch.full((2, 6), -1), None, [[0] * 6],
                                              np.zeros((2, 6), dtype=np.int64)])),
    "counting_task": E(db.counting_task, lambda: dict(n_train=10, n_test=5, seq_len=6, vocab_size=4, label_noise=0.1,
                                                      seed=1),
                       dict(n_train=POS_INT, n_test=POS_INT, seq_len=POS_INT, vocab_size=POS_INT + [1],
                            label_noise=PROB, seed=SEED)),
    # chapter 10
    "alpha_from_drop_rate": E(db.alpha_from_drop_rate, lambda: dict(p=0.5), dict(p=PROB_OPEN)),
    "drop_rate_from_alpha": E(db.drop_rate_from_alpha, lambda: dict(alpha=1.0), dict(alpha=REAL + [-1.0, INF])),
    "gaussian_dropout": E(db.gaussian_dropout, lambda: dict(x=x34(), p=0.3, training=True, generator=gen()),
                          dict(x=FLOAT_TENSOR, p=PROB_OPEN, training=BOOL, generator=GENERATOR)),
    "GaussianDropout": E(db.GaussianDropout, lambda: dict(p=0.3, generator=gen()), dict(p=PROB_OPEN, generator=GENERATOR)),
    "GaussianDropout.forward": E(forward_of(lambda: db.GaussianDropout(0.3)), lambda: dict(x=x34()),
                                 dict(x=FLOAT_TENSOR)),
    "local_reparameterization": E(db.local_reparameterization,
                                  lambda: dict(x=x34(), weight=torch.randn(2, 4), weight_variance=torch.ones(2, 4),
                                               bias=torch.zeros(2), generator=gen()),
                                  dict(x=FLOAT_TENSOR + [torch.ones(4), torch.ones(3, 4, dtype=F64), torch.ones(3, 5)],
                                       weight=FLOAT_TENSOR + [torch.ones(2, 4, dtype=F64), torch.ones(2, 5)],
                                       weight_variance=FLOAT_TENSOR + [-torch.ones(2, 4), torch.full((2, 4), NAN),
                                                                       torch.ones(2, 4, dtype=F64), torch.ones(4, 2)],
                                       bias=FLOAT_TENSOR[:4] + ["b", 1.0, torch.zeros(3), torch.zeros(2, dtype=F64)],
                                       generator=GENERATOR)),
    "SPARSE_VD_K": E(lambda: db.SPARSE_VD_K, lambda: {}, {}),
    "neg_kl_approx": E(db.neg_kl_approx, lambda: dict(log_alpha=torch.linspace(-2, 2, 5)),
                       dict(log_alpha=["1", None, True, NAN, 1j, torch.ones(2, dtype=torch.int64),
                                       torch.tensor([NAN]), [1.0], np.array(["a"])])),
    "neg_kl_exact": E(db.neg_kl_exact, lambda: dict(log_alpha=torch.linspace(-2, 2, 3), step=0.01),
                      dict(log_alpha=["1", None, True, NAN, 40.0, torch.tensor([NAN]), torch.ones(1, dtype=torch.int64)],
                           step=POSITIVE_REAL + [0.1])),
    "KLApproximationError": E(lambda **kw: db.kl_approximation_error(**kw), lambda: dict(low=-1.0, high=1.0, n=3), {}),
    "kl_approximation_error": E(db.kl_approximation_error, lambda: dict(low=-1.0, high=1.0, n=3),
                                dict(low=REAL + [-31.0, 2.0], high=REAL + [31.0, -2.0], n=[1, 0, 2.5, "3", None, True])),
    "LinearSVDO": E(db.LinearSVDO, lambda: dict(in_features=4, out_features=3, bias=True, threshold=3.0,
                                                init_log_sigma2=-10.0, generator=gen()),
                    dict(in_features=POS_INT, out_features=POS_INT, bias=BOOL, threshold=REAL + [INF],
                         init_log_sigma2=REAL + [INF], generator=GENERATOR)),
    "LinearSVDO.forward": E(forward_of(lambda: db.LinearSVDO(4, 3).eval()), lambda: dict(x=x34()),
                            dict(x=FLOAT_TENSOR + [torch.ones(3, 5), torch.ones(4), torch.ones(3, 4, dtype=F64)])),
    "sparse_vd_kl": E(db.sparse_vd_kl, lambda: dict(model=svdo_net()), dict(model=MODULE + [mlp()])),
    "SparsityReport": E(lambda **kw: db.sparsity_report(**kw), lambda: dict(model=svdo_net()), {}),
    "sparsity_report": E(db.sparsity_report, lambda: dict(model=svdo_net()), dict(model=MODULE + [mlp()])),
    "SparseVDHistory": E(lambda **kw: db.train_sparse_vd(**kw), lambda: dict(model=svdo_net(), data=tiny_split(),
                                                                              epochs=1, batch_size=8), {}),
    "train_sparse_vd": E(db.train_sparse_vd, lambda: dict(model=svdo_net(), data=tiny_split(), epochs=1, lr=1e-2,
                                                          batch_size=8, warmup_epochs=1, seed=0),
                         dict(model=MODULE + [mlp()], data=[None, "d", (torch.ones(2, 4), torch.ones(2))],
                              epochs=POS_INT, lr=POSITIVE_REAL, batch_size=POS_INT, warmup_epochs=NONNEG_INT, seed=SEED)),
    # chapter 11
    "locked_dropout": E(db.locked_dropout, lambda: dict(x=sequence(), p=0.3, batch_first=False, training=True,
                                                        generator=gen()),
                        dict(x=FLOAT_TENSOR + [torch.ones(2, 3, 4, 5), torch.ones(0, 2, 3)], p=PROB,
                             batch_first=BOOL, training=BOOL, generator=GENERATOR)),
    "drop_connect": E(db.drop_connect, lambda: dict(weight=x34(), p=0.3, training=True, generator=gen()),
                      dict(weight=FLOAT_TENSOR + [torch.tensor(1.0), torch.ones(0, 3)], p=PROB, training=BOOL,
                           generator=GENERATOR)),
    "DropConnectLinear": E(db.DropConnectLinear, lambda: dict(in_features=4, out_features=3, p=0.3, bias=True,
                                                              generator=gen(), device=None, dtype=None),
                           dict(in_features=POS_INT, out_features=POS_INT, p=PROB, bias=BOOL, generator=GENERATOR,
                                device=DEVICE, dtype=[d for d in FLOAT_DTYPE if d is not None])),
    "DropConnectLinear.forward": E(forward_of(lambda: db.DropConnectLinear(4, 3, 0.3)), lambda: dict(x=x34()),
                                   dict(x=FLOAT_TENSOR + [torch.ones(3, 5), torch.tensor(1.0),
                                                          torch.ones(3, 4, dtype=F64)])),
    "WeightDrop": E(db.WeightDrop, lambda: dict(module=nn.LSTM(3, 4), p=0.3, weights=None, generator=gen()),
                    dict(module=MODULE + [nn.LSTMCell(3, 4), nn.Linear(3, 4)], p=PROB,
                         weights=["weight_hh_l0", [], ["weight_hh_l1"], [3], 3, ("weight_hh_l0", None)],
                         generator=GENERATOR)),
    "WeightDrop.forward": E(forward_of(lambda: db.WeightDrop(nn.LSTM(3, 4), 0.3), "input"),
                            lambda: dict(input=sequence()),
                            dict(input=FLOAT_TENSOR + [torch.ones(5, 2, 7), torch.ones(5, 2, 3, dtype=F64),
                                                       torch.ones(5), torch.ones(1, 5, 2, 3)])),
    "zoneout": E(db.zoneout, lambda: dict(h_prev=x34(), h_new=x34() + 1, p=0.3, training=True, generator=gen()),
                 dict(h_prev=FLOAT_TENSOR + [torch.ones(3, 5), torch.ones(3, 4, dtype=F64)],
                      h_new=FLOAT_TENSOR + [torch.ones(4), torch.ones(3, 4, dtype=F64)], p=PROB, training=BOOL,
                      generator=GENERATOR)),
    "RecurrentDropout": E(db.RecurrentDropout, lambda: dict(cell=nn.LSTMCell(3, 4), p=0.3, mode="locked",
                                                            batch_first=False, drop_cell_state=False, generator=gen()),
                          dict(cell=MODULE + [nn.GRUCell(3, 4), nn.LSTM(3, 4)], p=PROB, mode=CHOICE,
                               batch_first=BOOL, drop_cell_state=BOOL, generator=GENERATOR)),
    "RecurrentDropout.forward": E(lambda **kw: db.RecurrentDropout(nn.LSTMCell(3, 4), 0.3)(**kw),
                                  lambda: dict(x=sequence(), state=lstm_state()),
                                  dict(x=FLOAT_TENSOR + [torch.ones(5, 2), torch.ones(0, 2, 3), torch.ones(5, 2, 7),
                                                         torch.ones(5, 2, 3, dtype=F64)],
                                       state=[torch.zeros(2, 4), (torch.zeros(2, 4),), 3, "s", [None, None],
                                              (torch.zeros(2, 4), torch.zeros(3, 4)),
                                              (torch.zeros(2, 4, dtype=torch.int64), torch.zeros(2, 4)),
                                              (torch.zeros(2, 4), torch.zeros(2, 4, dtype=F64)),
                                              (torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4))])),
    "RecurrentClassifier": E(db.RecurrentClassifier,
                             lambda: dict(n_tokens=8, hidden_size=4, n_classes=3, embed=4, variant="locked", p=0.3,
                                          drop_cell_state=None, generator=gen()),
                             dict(n_tokens=POS_INT, hidden_size=POS_INT, n_classes=POS_INT, embed=POS_INT,
                                  variant=CHOICE, p=PROB, drop_cell_state=[b for b in BOOL if b is not None],
                                  generator=GENERATOR)),
    "RecurrentClassifier.forward": E(forward_of(lambda: db.RecurrentClassifier(8, 4, 3, variant="locked", p=0.3),
                                                "tokens"),
                                     lambda: dict(tokens=tokens()),
                                     dict(tokens=[torch.ones(2, 6), torch.ones(2, 6, dtype=torch.int32),
                                                  torch.full((2, 6), 8), torch.full((2, 6), -1), None, [[0] * 6],
                                                  np.zeros((2, 6), dtype=np.int64), torch.ones(0, 6).long(),
                                                  torch.ones(6).long()])),
    "delayed_recall": E(db.delayed_recall, lambda: dict(n=4, length=6, n_symbols=3, n_noise=2, delay=2, seed=0),
                        dict(n=POS_INT, length=POS_INT + [1], n_symbols=POS_INT + [1], n_noise=POS_INT,
                             delay=[-1, 6, 2.5, "3", True, torch.tensor(1)], seed=SEED)),
    # chapter 12
    "drop_edge": E(db.drop_edge, lambda: dict(edge_index=path_graph(), p=0.3, force_undirected=False, training=True,
                                              generator=gen()),
                   dict(edge_index=EDGE_INDEX, p=PROB, force_undirected=BOOL, training=BOOL, generator=GENERATOR)),
    "drop_edge.force_undirected": E(lambda **kw: db.drop_edge(**kw, force_undirected=True),
                                    lambda: dict(edge_index=path_graph()),
                                    dict(edge_index=[torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0, 1, 1], [1, 0, 0]])])),
    "drop_node": E(db.drop_node, lambda: dict(x=x34(), p=0.3, training=True, generator=gen()),
                   dict(x=FLOAT_TENSOR + [torch.ones(3), torch.ones(0, 3)], p=PROB, training=BOOL, generator=GENERATOR)),
    "normalized_adjacency": E(db.normalized_adjacency, lambda: dict(edge_index=path_graph(), num_nodes=3,
                                                                    normalization="sym", dtype=torch.float32),
                              dict(edge_index=EDGE_INDEX + [torch.tensor([[0], [3]]), torch.tensor([[1], [1]])],
                                   num_nodes=POS_INT + [2], normalization=CHOICE, dtype=FLOAT_DTYPE)),
    "dirichlet_energy": E(db.dirichlet_energy, lambda: dict(x=torch.randn(3, 2, generator=gen(10)),
                                                            edge_index=path_graph(), normalized=True),
                          dict(x=FLOAT_TENSOR + [torch.ones(3), torch.ones(0, 2)],
                               edge_index=EDGE_INDEX + [torch.tensor([[0], [3]]), torch.tensor([[1], [1]])],
                               normalized=BOOL)),
    "mean_pairwise_distance": E(db.mean_pairwise_distance, lambda: dict(x=torch.randn(3, 2, generator=gen(11))),
                                dict(x=FLOAT_TENSOR + [torch.ones(1, 2), torch.ones(3)])),
    "Graph": E(lambda **kw: db.stochastic_block_model(**kw), lambda: dict(sizes=[3, 3], p_in=0.5, p_out=0.1), {}),
    "karate_club": E(db.karate_club, lambda: {}, {}),
    "stochastic_block_model": E(db.stochastic_block_model, lambda: dict(sizes=[3, 3], p_in=0.5, p_out=0.1, seed=0),
                                dict(sizes=[[], [0, 3], [2.5], "33", None, 3, {3}, np.ones((2, 2), dtype=np.int64),
                                            [True, 3], [3, -1]],
                                     # networkx seeds Python's random with any int >= 0: 2**64 is a valid seed
                                     p_in=PROB, p_out=PROB, seed=[s for s in SEED if not (type(s) is int and s >= 2**64)])),
    # chapter 13
    "concrete_mask": E(db.concrete_mask, lambda: dict(shape=(2, 3), p=0.3, temperature=0.1, generator=gen(),
                                                      dtype=torch.float32),
                       dict(shape=[-1, 2.5, "3", None, (2, -1)], p=PROB_OPEN + [0.0, torch.tensor(0.0), torch.tensor(NAN)],
                            temperature=POSITIVE_REAL, generator=GENERATOR, dtype=FLOAT_DTYPE)),
    "ConcreteDropout": E(db.ConcreteDropout, lambda: dict(layer=nn.Linear(4, 2), p_init=0.1, temperature=0.1,
                                                          weight_regularizer=1e-6, dropout_regularizer=1e-5,
                                                          generator=gen()),
                         dict(layer=[m for m in MODULE if m is not None], p_init=PROB_OPEN + [0.0],
                              temperature=POSITIVE_REAL, weight_regularizer=REAL + [-1.0, INF],
                              dropout_regularizer=REAL + [-1.0, INF], generator=GENERATOR)),
    "ConcreteDropout.forward": E(forward_of(lambda: db.ConcreteDropout(p_init=0.3)), lambda: dict(x=x34()),
                                 dict(x=FLOAT_TENSOR + [torch.ones(0, 4), torch.ones(3, 4, dtype=F64)])),
    # chapter 14
    "DropoutSchedule": E(db.DropoutSchedule, lambda: dict(model=mlp(), p=0.1, kind="early", total_steps=4, switch_step=2,
                                                          dropout_types=None, ignore_types=None),
                         dict(model=MODULE + [no_dropout(), nn.Sequential(nn.Dropout(), nn.MultiheadAttention(4, 2, dropout=0.1)),
                                              nn.TransformerEncoderLayer(4, 2, 8, dropout=0.1),
                                              nn.Sequential(nn.Dropout(), nn.MultiheadAttention(4, 2, dropout=0.0)),
                                              nn.Sequential(nn.Dropout(), nn.GRU(2, 2, num_layers=2))],
                              p=PROB, kind=CHOICE, total_steps=POS_INT, switch_step=[-1, 5, 2.5, "1", True, None],
                              dropout_types=[nn.Dropout, "x", [3], 3], ignore_types=[nn.Dropout, "x", [3], 3])),
    "DropoutSchedule.rate_at": E(lambda **kw: db.DropoutSchedule(mlp(), 0.1, kind="linear", total_steps=4).rate_at(**kw),
                                 lambda: dict(step=1), dict(step=[-1, 5, 1.5, "1", None, True])),
    "r_drop_loss": E(db.r_drop_loss, lambda: dict(logits_a=x34(), logits_b=x34() + 1, target=torch.tensor([0, 3, 1]),
                                                  alpha=1.0, nll="sum"),
                     dict(logits_a=FLOAT_TENSOR + [torch.ones(3), torch.ones(0, 4), torch.ones(3, 4, dtype=F64)],
                          logits_b=FLOAT_TENSOR + [torch.ones(3, 5), torch.ones(3, 4, dtype=F64)],
                          target=[torch.tensor([0, 3, 4]), torch.tensor([0, -1, 1]), torch.tensor([0.0, 1.0, 1.0]),
                                  torch.tensor([0, 1]), [0, 1, 2], None, torch.tensor([0, 1, 2], dtype=torch.int32)],
                          alpha=REAL + [-1.0, INF], nll=CHOICE)),
    "symmetric_kl": E(db.symmetric_kl, lambda: dict(logits_a=x34(), logits_b=x34() + 1),
                      dict(logits_a=FLOAT_TENSOR + [torch.ones(3), torch.ones(0, 4), torch.ones(3, 1)],
                           logits_b=FLOAT_TENSOR + [torch.ones(4, 4), torch.ones(3, 4, dtype=F64)])),
    "LayerDrop": E(db.LayerDrop, lambda: dict(layers=[nn.Linear(4, 4), nn.Linear(4, 4)], p=0.3, generator=gen()),
                   dict(layers=[[], nn.Linear(4, 4), "ab", None, [nn.Linear(4, 4), 3], [lambda x: x], 3],
                        p=PROB, generator=GENERATOR)),
    "LayerDrop.forward": E(forward_of(lambda: db.LayerDrop([nn.Linear(4, 4)], 0.3)), lambda: dict(x=x34()),
                           dict(x=FLOAT_TENSOR[:-1] + [torch.ones(3, 4, dtype=F64)])),
    "LayerDrop.prune": E(lambda **kw: db.LayerDrop([nn.Linear(4, 4)] * 3, 0.3).prune(**kw), lambda: dict(kept=(0, 2)),
                         dict(kept=[(0, 3), (2, 0), (1, 1), (-1,), (0.5,), "02", None, 2, torch.tensor([0, 2])])),
    "every_other_layer": E(db.every_other_layer, lambda: dict(n_layers=6, rate=0.5),
                           dict(n_layers=POS_INT, rate=PROB_OPEN + [0.6, 0.51])),
    "LoRALinear": E(db.LoRALinear, lambda: dict(base=nn.Linear(4, 3), rank=2, alpha=2.0, dropout=0.1, generator=gen()),
                    dict(base=MODULE + [nn.Conv1d(2, 2, 1)], rank=POS_INT + [4], alpha=[v for v in POSITIVE_REAL if v is not None],
                         dropout=PROB, generator=GENERATOR)),
    "LoRALinear.forward": E(forward_of(lambda: db.LoRALinear(nn.Linear(4, 3), 2, dropout=0.1)), lambda: dict(x=x34()),
                            dict(x=FLOAT_TENSOR + [torch.ones(3, 5), torch.tensor(1.0), torch.ones(3, 4, dtype=F64)])),
    # chapter 15
    "load_breast_cancer_split": E(db.load_breast_cancer_split, lambda: dict(n_train=100, n_val=50, seed=0, dtype=F64),
                                  dict(n_train=POS_INT + [10, 560], n_val=NONNEG_INT + [500], seed=SEED,
                                       dtype=FLOAT_DTYPE)),
    "referral_curves": E(db.referral_curves,
                         lambda: dict(correct=torch.tensor([True, False, True, True]),
                                      scores={"a": torch.tensor([0.1, 0.9, 0.2, 0.3]), "b": np.array([0.3, 0.2, 0.1, 0.0])},
                                      fractions=[0.0, 0.25]),
                         dict(correct=[None, "c", [True, False, True, True], torch.tensor([0.5, 1.0, 0.0, 1.0]),
                                       torch.ones(0, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)],
                              scores=[None, {}, [torch.ones(4)], {"a": "x"}, {1: torch.ones(4)}, {"a": torch.ones(3)},
                                      {"a": torch.tensor([NAN, 0.0, 0.0, 0.0])}, {"a": torch.ones(4, dtype=torch.int64)}],
                              fractions=[["0.5"], [1.0], [-0.1], [NAN], [], None, "0.5", 0.5, [0.9]])),
    "deferral_curve": E(db.deferral_curve,
                        lambda: dict(errors=torch.tensor([0.1, -2.0, 0.2, 0.1]), uncertainty=torch.tensor([0.1, 0.9, 0.3, 0.2]),
                                     fractions=[0.0, 0.25]),
                        dict(errors=FLOAT_DATA + [torch.ones(0), torch.ones(2, 2), torch.tensor([NAN, 0.0, 0.0, 0.0])],
                             uncertainty=FLOAT_DATA + [torch.ones(3), torch.tensor([NAN, 0.0, 0.0, 0.0])],
                             fractions=[["0.5"], [1.0], [-0.1], [NAN], [], None, "0.5", 0.5, [0.9]])),
    "random_deferral_curve": E(db.random_deferral_curve,
                               lambda: dict(errors=torch.tensor([0.1, -2.0, 0.2, 0.1]), fractions=[0.0, 0.25], n_draws=5,
                                            generator=gen()),
                               dict(errors=FLOAT_DATA + [torch.ones(0), torch.ones(2, 2)],
                                    fractions=[["0.5"], [1.0], [-0.1], [NAN], [], None, "0.5", [0.9]],
                                    n_draws=POS_INT, generator=GENERATOR)),
    "sample_zinb": E(db.sample_zinb, lambda: dict(means=torch.full((3, 4), 2.0), dispersion=2.0, zero_inflation=0.3,
                                                  seed=0, dtype=F64),
                     dict(means=FLOAT_DATA + [torch.tensor([-1.0, 2.0]), torch.tensor([NAN]), torch.tensor([INF])],
                          dispersion=POSITIVE_REAL, zero_inflation=PROB, seed=SEED,
                          dtype=[d for d in FLOAT_DTYPE if d is not None])),
    "simulate_zinb_counts": E(db.simulate_zinb_counts,
                              lambda: dict(n_cells=20, n_genes=5, n_types=2, dispersion=2.0, zero_inflation=0.3, seed=0,
                                           dtype=torch.float32),
                              dict(n_cells=POS_INT, n_genes=POS_INT, n_types=POS_INT, dispersion=POSITIVE_REAL,
                                   zero_inflation=PROB, seed=SEED, dtype=FLOAT_DTYPE)),
    "ZINBCounts": E(lambda **kw: db.sample_zinb(**kw), lambda: dict(means=torch.ones(2), dispersion=1.0, zero_inflation=0.5), {}),
    "masked_reconstruction_loss": E(db.masked_reconstruction_loss,
                                    lambda: dict(model=nn.Linear(4, 4), x=x34(), p=0.3, generator=gen()),
                                    dict(model=MODULE + [nn.Linear(4, 3), nn.Linear(5, 4)],
                                         x=FLOAT_TENSOR + [torch.ones(0, 4), torch.ones(4), torch.ones(3, 5)],
                                         p=PROB_OPEN + [0.0], generator=GENERATOR)),
    "simulate_weak_overlap": E(db.simulate_weak_overlap, lambda: dict(n=20, overlap=3.0, noise=0.5, seed=0, dtype=F64),
                               dict(n=POS_INT, overlap=POSITIVE_REAL, noise=REAL + [-1.0, INF], seed=SEED,
                                    dtype=FLOAT_DTYPE)),
    "CausalData": E(lambda **kw: db.simulate_weak_overlap(**kw), lambda: dict(n=5), {}),
    "TARNet": E(db.TARNet, lambda: dict(n_features=2, hidden=8, p=0.1, depth=2),
                dict(n_features=POS_INT, hidden=POS_INT, p=PROB_OPEN, depth=POS_INT)),
    "TARNet.forward": E(forward_of(lambda: db.TARNet(2, 8)), lambda: dict(x=torch.randn(3, 2)),
                        dict(x=FLOAT_TENSOR + [torch.ones(3, 5), torch.ones(2), torch.tensor(1.0)])),
    "factual_loss": E(db.factual_loss, lambda: dict(outputs=torch.randn(3, 2), t=torch.tensor([True, False, True]),
                                                    y=torch.randn(3)),
                      dict(outputs=FLOAT_TENSOR + [torch.ones(3), torch.ones(3, 3)],
                           t=[None, "t", [1, 0, 1], torch.tensor([0.5, 1.0, 0.0]), torch.ones(2, dtype=torch.bool),
                              torch.ones(0, dtype=torch.bool), torch.ones(3, 1)],
                           y=FLOAT_DATA + [torch.ones(2), torch.ones(3, 1)])),
    "train_tarnet": E(db.train_tarnet,
                      lambda: dict(model=db.TARNet(2, 4), x=torch.randn(6, 2, generator=gen(9)),
                                   t=torch.tensor([1, 0, 1, 0, 1, 0]), y=torch.randn(6, generator=gen(10)), epochs=1,
                                   lr=1e-3, batch_size=4, weight_decay=0.0, seed=0, validation=None),
                      dict(model=MODULE + [nn.Linear(2, 3)],
                           x=FLOAT_TENSOR[:-2] + [torch.ones(0, 2), torch.ones(6), torch.ones(6, 3)],
                           t=[None, "t", torch.tensor([2, 0, 1, 0, 1, 0]), torch.ones(5, dtype=torch.bool)],
                           y=FLOAT_DATA + [torch.ones(5)], epochs=POS_INT, lr=POSITIVE_REAL, batch_size=POS_INT,
                           weight_decay=REAL + [-1.0], seed=SEED,
                           validation=["v", (torch.ones(2, 2),), (torch.ones(2, 2), "t", torch.ones(2)),
                                       [torch.ones(2, 2), torch.ones(2), torch.ones(2)]])),
    "CATEPrediction": E(lambda **kw: db.mc_cate(**kw), lambda: dict(model=db.TARNet(2, 4), x=torch.randn(3, 2), T=3), {}),
    "mc_cate": E(db.mc_cate, lambda: dict(model=db.TARNet(2, 4), x=torch.randn(3, 2), T=3, chunk_size=2, generator=gen()),
                 dict(model=MODULE + [nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5)), nn.Linear(2, 2)],
                      x=[None, "x", [[1.0, 2.0]], np.ones((2, 2)), torch.ones(0, 2), torch.ones(2, 2, dtype=torch.int64),
                         torch.ones(2, 5)],
                      T=[1, 0, -1, 2.5, "3", None, True], chunk_size=[b for b in POS_INT if b is not None],
                      generator=GENERATOR)),
}

#: public names that are modules; their own contents are tested in their own test files
SUBMODULES = {"derivations", "montecarlo", "exercises", "environment"}
#: result types: their entry is a call of the function that returns one
RESULTS = {"JensenGap": db.JensenGap, "LayerwiseGap": db.LayerwiseGap, "AmbiguityDecomposition": db.AmbiguityDecomposition,
           "MCPrediction": db.MCPrediction, "ReliabilityDiagram": db.ReliabilityDiagram, "VarianceShift": db.VarianceShift, "KLApproximationError": db.KLApproximationError,
           "SparsityReport": db.SparsityReport, "SparseVDHistory": db.SparseVDHistory,
           "SPARSE_VD_K": db.variational.SparseVDConstants, "Graph": db.Graph,
           "ZINBCounts": db.ZINBCounts, "CausalData": db.CausalData, "CATEPrediction": db.CATEPrediction}


def test_every_public_name_has_an_entry():
    public = set(db.__all__)
    modules = {n for n in public if inspect.ismodule(getattr(db, n))}
    assert modules == SUBMODULES, "a public submodule was added or removed: list it in SUBMODULES"
    missing = sorted(public - modules - {name.split(".")[0] for name in MATRIX})
    assert not missing, f"public names without an entry in the bad-input matrix: {missing}"
    unknown = sorted({name.split(".")[0] for name in MATRIX} - public)
    assert not unknown, f"matrix entries for names that are not public: {unknown}"
    forwards = sorted(n for n in public - modules
                      if inspect.isclass(getattr(db, n)) and issubclass(getattr(db, n), nn.Module)
                      and f"{n}.forward" not in MATRIX)
    assert not forwards, f"modules whose forward has no entry: {forwards}"


def test_every_argument_of_every_callable_has_bad_values():
    """Every argument of the valid call has bad values; only result types (whose entry is the
    call that returns one) have none."""
    for name, entry in MATRIX.items():
        if name in RESULTS:
            assert not entry.bad
            continue
        for arg in entry.good():
            assert arg in entry.bad, f"{name}: no bad values for argument {arg!r}"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_the_good_call_succeeds(name):
    entry = MATRIX[name]
    result = entry.call(**entry.good())
    if name in RESULTS:
        if isinstance(result, dict):  # measure_variance_shift: one VarianceShift per layer
            result = next(iter(result.values()))
        assert isinstance(result, RESULTS[name])


def _cases():
    for name, entry in sorted(MATRIX.items()):
        for arg, values in entry.bad.items():
            for i, value in enumerate(values):
                yield pytest.param(name, arg, i, id=f"{name}-{arg}-{i}-{_short(value)}")


def _short(value) -> str:
    """A readable test id that is the same in every process (no addresses: xdist compares ids)."""
    if isinstance(value, torch.Tensor):
        text = f"tensor{tuple(value.shape)}{value.dtype}"
    elif callable(value) and hasattr(value, "__name__"):
        text = value.__name__
    else:
        text = repr(value)
        if " at 0x" in text:
            text = type(value).__name__
    return re.sub(r"\W+", "_", text)[:30]


def _snapshot(obj):
    """What must not change: tensors' values, modules' parameters, buffers and modes."""
    if isinstance(obj, torch.Tensor):
        return ("tensor", obj.detach().clone(), obj.stride())
    if isinstance(obj, np.ndarray):
        return ("array", obj.copy())
    if isinstance(obj, nn.Module):
        return ("module", {k: v.detach().clone() for k, v in obj.state_dict().items()},
                [m.training for m in obj.modules()])
    if isinstance(obj, (list, tuple)):
        return ("seq", [_snapshot(v) for v in obj])
    return ("other", None)


def _assert_unchanged(obj, snap, what: str) -> None:
    kind = snap[0]
    if kind == "tensor":
        assert torch.equal(obj.detach(), snap[1]) or (torch.isnan(snap[1]).any() and torch.allclose(
            obj.detach(), snap[1], equal_nan=True)), f"{what} was modified"
        assert obj.stride() == snap[2]
    elif kind == "array":
        assert np.array_equal(obj, snap[1], equal_nan=obj.dtype.kind in "fc"), f"{what} was modified"
    elif kind == "module":
        state = obj.state_dict()
        assert state.keys() == snap[1].keys()
        for k, v in snap[1].items():
            assert torch.equal(state[k], v), f"{what}.{k} was modified"
        assert [m.training for m in obj.modules()] == snap[2], f"{what}'s modes were changed"
    elif kind == "seq":
        for v, s in zip(obj, snap[1]):
            _assert_unchanged(v, s, what)


@pytest.mark.parametrize("name, arg, index", list(_cases()))
def test_bad_value_is_refused_naming_the_argument(name, arg, index):
    entry = MATRIX[name]
    kwargs = entry.good()
    kwargs[arg] = entry.bad[arg][index]
    snaps = {k: _snapshot(v) for k, v in kwargs.items()}
    with pytest.raises((TypeError, ValueError)) as info:
        entry.call(**kwargs)
    assert type(info.value) in (TypeError, ValueError), f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert re.search(rf"(?<![\w.]){re.escape(arg)}(?!\w)", message), (
        f"the message does not name {arg!r}: {message!r}")
    for k, v in kwargs.items():
        _assert_unchanged(v, snaps[k], k)


# --------------------------------------------------------------------------------------------
# correct behaviour for unusual but valid input

#: the library's element-wise and row-wise dropouts, as ``f(x, p, generator)``
DROPOUTS = {
    "inverted_dropout": lambda x, p, g: db.inverted_dropout(x, p, generator=g),
    "standard_dropout": lambda x, p, g: db.standard_dropout(x, p, generator=g),
    "InvertedDropout": lambda x, p, g: db.InvertedDropout(p, generator=g)(x),
    "StandardDropout": lambda x, p, g: db.StandardDropout(p, generator=g)(x),
    "attention_dropout": lambda x, p, g: db.attention_dropout(x, p, generator=g),
    "drop_block2d": lambda x, p, g: db.drop_block2d(x, p, 3, generator=g),
    "DropBlock2d": lambda x, p, g: db.DropBlock2d(p, 3, generator=g)(x),
    "drop_path": lambda x, p, g: db.drop_path(x, p, generator=g),
    "DropPath": lambda x, p, g: db.DropPath(p, generator=g)(x),
    "gaussian_dropout": lambda x, p, g: db.gaussian_dropout(x, p, generator=g),
    "GaussianDropout": lambda x, p, g: db.GaussianDropout(p, generator=g)(x),
    # (T, B, H, W) as a sequence (T, B, H * W): a view, so a non-contiguous input stays one
    "locked_dropout": lambda x, p, g: db.locked_dropout(x.flatten(2), p, generator=g).unflatten(2, x.shape[2:]),
    "drop_connect": lambda x, p, g: db.drop_connect(x, p, generator=g),
    "drop_node": lambda x, p, g: db.drop_node(x, p, generator=g),
    # zoneout from a zero previous state is standard (unscaled) dropout of the new state
    "zoneout": lambda x, p, g: db.zoneout(torch.zeros_like(x), x, p, generator=g),
}
ALLOWS_P_ONE = set(DROPOUTS) - {"gaussian_dropout", "GaussianDropout"}
#: dropouts that refuse an empty input on purpose (a sequence, a weight or a graph without entries)
REFUSES_EMPTY = {"locked_dropout", "drop_connect", "drop_node"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_every_floating_dtype_is_kept_and_the_input_is_not_modified(name, dtype):
    x = torch.randn(2, 3, 6, 6, generator=gen(1)).to(dtype) + 2
    before = x.clone()
    for p in (0.0, 0.3):
        y = DROPOUTS[name](x, p, gen(2))
        assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
        assert torch.isfinite(y).all()
        assert y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_p_numpy_scalar_or_0d_tensor_counts_as_the_number(name):
    x = torch.randn(2, 3, 6, 6, generator=gen(1))
    reference = DROPOUTS[name](x, 0.25, gen(3))
    for p in (np.float64(0.25), np.float32(0.25), torch.tensor(0.25), np.array(0.25)):
        assert torch.equal(DROPOUTS[name](x, p, gen(3)), reference)


@pytest.mark.parametrize("name", sorted(set(DROPOUTS) - REFUSES_EMPTY))
def test_empty_input_gives_an_empty_output(name):
    x = torch.ones(0, 3, 6, 6)
    assert DROPOUTS[name](x, 0.3, gen()).shape == x.shape


@pytest.mark.parametrize("name", sorted(REFUSES_EMPTY))
def test_an_empty_input_is_refused_naming_it(name):
    with pytest.raises(ValueError, match=r"^(x|weight) must (not be empty|hold at least one node)"):
        DROPOUTS[name](torch.ones(0, 3, 6, 6), 0.3, gen())


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_non_contiguous_input_gives_the_values_of_its_contiguous_copy(name):
    x = torch.randn(2, 3, 6, 12, generator=gen(4))[..., ::2]
    assert not x.is_contiguous()
    assert torch.equal(DROPOUTS[name](x, 0.3, gen(5)), DROPOUTS[name](x.contiguous(), 0.3, gen(5)))


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_gradient_at_p_zero_is_one_and_at_p_one_is_zero_not_missing(name):
    x = torch.randn(2, 3, 6, 6, generator=gen(6), dtype=F64, requires_grad=True)
    DROPOUTS[name](x, 0.0, gen()).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    if name in ALLOWS_P_ONE:
        x.grad = None
        y = DROPOUTS[name](x, 1.0, gen())
        assert torch.equal(y, torch.zeros_like(x))
        y.sum().backward()
        assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))


#: the dropouts of chapters 11 and 12 with inputs in two non-row-major layouts each, as ``f(x, p, generator)``
LAYOUTS = {
    "locked_dropout": (lambda x, p, g: db.locked_dropout(x, p, generator=g),
                       [torch.randn(4, 3, 5, generator=gen(7)).permute(1, 2, 0),
                        torch.randn(5, 3, 4, generator=gen(7)).transpose(0, 2)]),
    "drop_connect": (DROPOUTS["drop_connect"], None),
    "drop_node": (DROPOUTS["drop_node"], None),
    "zoneout": (DROPOUTS["zoneout"], None),
}


@pytest.mark.parametrize("p", [0.3, 1.0])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_the_memory_layout_is_kept_with_the_draws_of_the_row_major_input(name, p):
    """As ``torch.nn.Dropout``: a channels-last or permuted input gives an output of its strides,
    whose values are those of the row-major copy under the same generator state."""
    fn, inputs = LAYOUTS[name]
    if inputs is None:
        x = torch.randn(2, 3, 5, 5, generator=gen(7)) + 3.0
        inputs = [x.contiguous(memory_format=torch.channels_last), x.permute(2, 0, 3, 1)]
    for x in inputs:
        assert not x.is_contiguous()
        y = fn(x, p, gen(8))
        assert y.stride() == x.stride() == torch.nn.functional.dropout(x, p).stride()
        assert torch.equal(y, fn(x.contiguous(), p, gen(8)))


def test_numpy_integers_are_sizes():
    n = np.int64
    layer = db.LinearSVDO(n(4), n(3))
    assert (layer.in_features, layer.out_features) == (4, 3) and type(layer.in_features) is int
    assert db.kl_approximation_error(-1.0, 1.0, n(3)).log_alpha.tolist() == [-1.0, 0.0, 1.0]
    assert db.enumerate_masks(n(2)).shape == (4, 2)
    assert db.coverage_counts(n(4), np.int32(4), n(3)).shape == (4, 4)
    assert db.stochastic_depth_survival(n(2)) == [0.75, 0.5]
    assert db.counting_task(n(4), n(2), seed=n(1)).x_train.shape == (4, 12)
    torch.manual_seed(0)
    history = db.train_sparse_vd(svdo_net(), tiny_split(), epochs=n(1), batch_size=n(8), warmup_epochs=n(1), seed=n(0))
    assert len(history.data_loss) == 1
    assert db.mc_predict(mlp(), torch.randn(2, 3), n(3), generator=gen()).mean.shape == (2, 2)


def test_mc_dropout_restores_modes_when_the_block_raises():
    model = bn_net().eval()
    model[1].train()  # mixed modes on entry
    modes = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="inside"):
        with db.mc_dropout(model):
            raise RuntimeError("an error inside the block")
    assert [m.training for m in model.modules()] == modes


def test_recalibration_restores_everything_when_a_batch_is_bad():
    model = bn_net()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"batches\[1\]"):
        db.recalibrate_batchnorm(model, [torch.randn(8, 3), torch.randn(1, 3)])
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model[2].momentum == 0.1 and model.training


def test_mc_predict_refuses_a_model_whose_dropout_the_forward_never_reaches():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.dropout = nn.Linear(3, 2), nn.Dropout(0.5)

        def forward(self, x):
            return self.linear(x)  # the dropout module is never called

    model = Unused().eval()
    with pytest.raises(ValueError, match="none of the model's dropout modules ran"):
        db.mc_predict(model, torch.randn(2, 3), T=4)
    assert not model.dropout.training and not model.training


def test_block_larger_than_the_map_is_clipped_not_refused():
    x = torch.ones(1, 1, 3, 3)
    y = db.drop_block2d(x, 0.5, 7, generator=gen())
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 2.0}
    assert db.coverage_counts(3, 3, 7).tolist() == [[1] * 3] * 3


def test_log_alpha_and_dropout_keep_every_floating_dtype():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        la = torch.linspace(-2, 2, 5, dtype=dtype)
        assert db.neg_kl_approx(la).dtype == dtype
        x = torch.randn(3, 4).to(dtype)
        assert db.local_reparameterization(x, torch.ones(2, 4, dtype=dtype), torch.ones(2, 4, dtype=dtype)).dtype == dtype


def test_implicit_l2_keeps_every_floating_dtype():
    """Half precision works and agrees, within its precision, with float64 on the same (rounded) inputs."""
    X, w, y = design(), weights3(), targets8()
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        Xd, wd, yd = X.to(dtype), w.to(dtype), y.to(dtype)
        tol = 16 * torch.finfo(dtype).eps
        for fn in (db.dropout_penalty, db.logistic_dropout_penalty, db.exact_logistic_dropout_penalty):
            out = fn(wd, Xd, 0.3)
            assert out.dtype == dtype and torch.isfinite(out)
            assert math.isclose(float(out), float(fn(wd.double(), Xd.double(), 0.3)), rel_tol=tol)
        assert db.dropout_ridge_solution(Xd, yd, 0.3).dtype == dtype


# --------------------------------------------------------------------------------------------
# findings of a review of the library used as a dependency, one test each


def test_stochastic_depth_forward_checks_its_input_and_its_attributes():
    block = db.StochasticDepth(nn.Identity(), 0.5, generator=gen())
    for x in (torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.bool),
              torch.ones(2, 3, dtype=torch.complex64), np.ones((2, 3))):
        with pytest.raises(TypeError, match=r"^x must"):
            block(x)
    # in batch mode a skipped and a kept branch give the same dtype (an int input was returned as is
    # when skipped and as a float when kept)
    dtypes = {block(torch.ones(2, 3)).dtype for _ in range(20)}
    assert dtypes == {torch.float32}
    block.p = 1.5  # changed after construction: checked again, as the dropout modules do
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\], got 1.5"):
        block(torch.ones(2, 3))
    block.p, block.mode = 0.5, "row"
    with pytest.raises(ValueError, match=r"^mode must be 'batch' or 'sample'"):
        block(torch.ones(2, 3))


@pytest.mark.parametrize("value, error", [(-1, ValueError), (2.5, TypeError), ("3", TypeError), (None, TypeError)])
def test_tiny_transformer_names_a_bad_width(value, error):
    with pytest.raises(error, match=r"^d_model must be a positive int"):
        db.TinyTransformer(8, 6, 2, d_model=value)


def test_transformer_block_refuses_integer_input_naming_it():
    with pytest.raises(TypeError, match=r"^x must have a floating dtype"):
        db.TransformerBlock(8, 2, 16)(torch.ones(2, 5, 8, dtype=torch.int64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dropout_ridge_solution_in_half_precision(dtype):
    X, y = design().to(dtype), targets8().to(dtype)
    w = db.dropout_ridge_solution(X, y, 0.3)
    assert w.dtype == dtype  # was NotImplementedError "lu_cpu"
    assert torch.equal(w, db.dropout_ridge_solution(X.float(), y.float(), 0.3).to(dtype))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (2, 0, 3), (0, 0)])
def test_neighbour_fill_on_a_map_with_a_zero_side(shape):
    filled, isolated = db.neighbour_fill(torch.ones(shape), torch.ones(shape))
    assert filled.shape == isolated.shape == shape and isolated.dtype == torch.bool


@pytest.mark.parametrize("seed", [1.5, "1", None, -1])
def test_counting_task_names_a_bad_seed(seed):
    with pytest.raises((TypeError, ValueError), match=r"^seed must be an int"):
        db.counting_task(4, 2, seed=seed)


TRAINING_FLAG = {
    "inverted_dropout": lambda t: db.inverted_dropout(x34(), 0.3, training=t),
    "standard_dropout": lambda t: db.standard_dropout(x34(), 0.3, training=t),
    "drop_path": lambda t: db.drop_path(x34(), 0.3, training=t),
    "drop_block2d": lambda t: db.drop_block2d(maps(), 0.1, 3, training=t),
    "attention_dropout": lambda t: db.attention_dropout(probs()[0], 0.3, training=t),
    "self_attention": lambda t: db.self_attention(torch.randn(2, 5, 4), torch.randn(4, 12), attn_dropout=0.1, training=t),
    "gaussian_dropout": lambda t: db.gaussian_dropout(x34(), 0.3, training=t),
    "locked_dropout": lambda t: db.locked_dropout(sequence(), 0.3, training=t),
    "drop_connect": lambda t: db.drop_connect(x34(), 0.3, training=t),
    "zoneout": lambda t: db.zoneout(x34(), x34() + 1, 0.3, training=t),
    "drop_edge": lambda t: db.drop_edge(path_graph(), 0.3, training=t),
    "drop_node": lambda t: db.drop_node(x34(), 0.3, training=t),
}


@pytest.mark.parametrize("flag", ["False", None], ids=repr)
@pytest.mark.parametrize("name", sorted(TRAINING_FLAG))
def test_training_must_be_a_bool_as_in_f_dropout(name, flag):
    with pytest.raises(TypeError):
        torch.nn.functional.dropout(x34(), 0.3, training=flag)  # the peer refuses both
    with pytest.raises(TypeError, match=r"^training must be a bool"):
        TRAINING_FLAG[name](flag)


def test_tensor_arguments_of_different_dtypes_are_named():
    x = torch.randn(3, 4, dtype=F64)
    with pytest.raises(TypeError, match=r"^weight must have the dtype and device of x"):
        db.local_reparameterization(x, torch.randn(2, 4), torch.ones(2, 4, dtype=F64))
    with pytest.raises(TypeError, match=r"^bias must have the dtype and device of x"):
        db.local_reparameterization(x, torch.randn(2, 4, dtype=F64), torch.ones(2, 4, dtype=F64), torch.zeros(2))
    with pytest.raises(TypeError, match=r"^w_qkv must have the dtype and device of x"):
        db.self_attention(torch.randn(2, 5, 4, dtype=F64), torch.randn(4, 12))


def test_messages_name_the_argument():
    correct, uncertainty = torch.tensor([True, False]), torch.tensor([0.1, 0.2])
    with pytest.raises(TypeError, match=r"^fractions\[0\] must be a number in \[0, 1\)"):
        db.referral_curve(correct, uncertainty, ["0.5"])
    with pytest.raises(TypeError, match=r"^z must be a finite real number > 0"):
        db.agrees(estimate(), 1.0, z="5")
    with pytest.raises(TypeError, match=r"^exact must be a real number"):
        db.z_score(estimate(), "1.0")  # was accepted silently
    with pytest.raises(TypeError, match=r"^bias must be a finite real number"):
        db.jensen_gap("tanh", weights3(), weights3(), 0.3, bias="x")
    with pytest.raises(TypeError, match=r"^dropout_types must be None or a sequence .*\(write \(Dropout,\)"):
        db.mc_predict(mlp(), torch.randn(2, 3), T=3, dropout_types=nn.Dropout)


def test_bn_train_variance_refuses_nan_in_a_tensor_mu_as_in_a_float_mu():
    for mu in (NAN, torch.tensor([0.0, NAN])):
        with pytest.raises(ValueError, match=r"^mu must be a real number or a floating tensor.*NaN|^mu must be.*nan"):
            db.bn_train_variance(mu, 1.0, 0.5)


def test_chapter_two_functions_take_numpy_arrays_and_return_numpy():
    X, y, w = design(), targets8(), weights3()
    w_np = db.dropout_ridge_solution(X.numpy(), y.numpy(), 0.3)
    assert isinstance(w_np, np.ndarray) and w_np.dtype == np.float64
    assert np.array_equal(w_np, db.dropout_ridge_solution(X, y, 0.3).numpy())
    penalty = db.dropout_penalty(w.numpy(), X.numpy(), 0.3)
    assert isinstance(penalty, np.floating) and penalty == db.dropout_penalty(w, X, 0.3).item()
    # mixed: a tensor and an array give a tensor
    assert isinstance(db.dropout_penalty(w, X.numpy(), 0.3), torch.Tensor)


def test_data_functions_return_the_type_they_were_given():
    p = probs()
    for fn in (db.predictive_entropy, db.expected_entropy, db.mutual_information):
        out = fn(p.numpy())
        assert isinstance(out, np.ndarray) and np.allclose(out, fn(p).numpy())
    curve = db.referral_curve(np.array([True, False, True]), np.array([0.1, 0.9, 0.2]), [0.0, 1 / 3])
    assert isinstance(curve, np.ndarray) and curve.tolist() == [2 / 3, 1.0]
    terms = db.ambiguity_decomposition(np.array([[1.0], [2.0], [4.0]]), np.array([2.0]))
    assert isinstance(terms.diversity, np.floating) and round(float(terms.diversity), 4) == 4.6667
    assert isinstance(db.neg_kl_approx(np.linspace(-1, 1, 3)), np.ndarray)
    assert isinstance(db.bn_train_variance(np.array([0.0, 1.0]), 1.0, 0.5), np.ndarray)


def test_one_positive_integer_check_in_the_whole_library():
    """Integer (and every other argument) checks live in ``dropoutbook/_validation.py``: no other
    module of the library tests ``isinstance(..., int)`` or ``numbers.Integral`` itself."""
    import ast
    from pathlib import Path

    root = Path(db.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_validation.py" or "exercises" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                kinds = ast.unparse(node.args[1])
                if re.search(r"\bint\b|Integral|numbers\.Real|\bbool\b", kinds):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "argument checks outside _validation.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize("method", ["exact", "mc", "delta", "gaussian"])
def test_jensen_gap_refuses_nan_and_infinity_in_w_and_x_with_every_method(method):
    # before, method="gaussian" failed inside torch.distributions.Normal with a message about its support
    good = torch.ones(3, dtype=F64)
    for value, kind in ((NAN, "NaN"), (INF, "infinite")):
        bad = torch.tensor([1.0, value, 1.0], dtype=F64)
        for kwargs, name in ((dict(w=bad, x=good), "w"), (dict(w=good, x=bad), "x")):
            with pytest.raises(ValueError, match=rf"^{name} must hold finite numbers \(no NaN or infinity\), "
                                                 rf"got 1 {kind} entry$"):
                db.jensen_gap("relu", p=0.3, method=method, n_samples=10, **kwargs)


# --------------------------------------------------------------------------------------------
# chapter 15's functions: rates of 0, 0-d means, huge means, NaN outcomes, validation data, dtypes,
# fractions given once, as a set or as a single number, infinite errors, the split's bounds


def test_mc_cate_refuses_a_model_whose_dropout_rates_are_all_zero():
    with pytest.raises(ValueError, match=r"^model has only dropout modules of rate p = 0 \(4 of them\)"):
        db.mc_cate(db.TARNet(2, 4, p=0.0), torch.randn(3, 2), T=5)


def test_sample_zinb_takes_a_0d_mean_and_refuses_huge_ones_by_name():
    z = db.sample_zinb(torch.tensor(3.0), 1.0, 0.3, seed=1)
    assert all(v.shape == () for v in z[:4])
    with pytest.raises(ValueError, match=r"^means must be at most 1e\+12"):
        db.sample_zinb(torch.tensor([1.0, 1e15]), 1.0, 0.3)


@pytest.mark.parametrize("where", ["y", "validation[2]"])
def test_train_tarnet_and_factual_loss_refuse_nan_outcomes(where):
    x, t, y = torch.randn(6, 2), torch.tensor([1, 0, 1, 0, 1, 0]), torch.randn(6)
    bad = y.clone()
    bad[2] = NAN
    with pytest.raises(ValueError, match=r"^y must hold finite numbers"):
        db.factual_loss(torch.randn(6, 2), t, bad)
    model = db.TARNet(2, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = (bad, None) if where == "y" else (y, (x, t, bad))
    with pytest.raises(ValueError, match=rf"^{re.escape(where)} must hold finite numbers"):
        db.train_tarnet(model, x, t, args[0], epochs=1, validation=args[1])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # checked before training


@pytest.mark.parametrize("i, part, message", [
    (0, torch.randn(5, 3), r"^validation\[0\] must have shape \(N, 2\)"),
    (1, torch.tensor([1, 0]), r"^validation\[1\] must have shape \(5,\)"),
    (2, torch.randn(2), r"^validation\[2\] must have shape \(5,\)"),
])
def test_train_tarnet_checks_the_validation_data_before_training_and_names_it(i, part, message):
    x, t, y = torch.randn(6, 2), torch.tensor([1, 0, 1, 0, 1, 0]), torch.randn(6)
    validation = [torch.randn(5, 2), torch.tensor([1, 0, 1, 0, 1]), torch.randn(5)]
    validation[i] = part
    model = db.TARNet(2, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        db.train_tarnet(model, x, t, y, epochs=1, validation=tuple(validation))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("training", [False, True])
def test_train_tarnet_returns_the_model_in_the_mode_it_was_given(training):
    model = db.TARNet(2, 4).train(training)
    x, t, y = torch.randn(6, 2), torch.tensor([1, 0, 1, 0, 1, 0]), torch.randn(6)
    db.train_tarnet(model, x, t, y, epochs=1, validation=(x, t, y))
    assert all(m.training == training for m in model.modules())


def test_a_tarnet_refuses_covariates_of_another_dtype_by_name():
    model = db.TARNet(2, 4)
    x = torch.randn(6, 2, dtype=F64)
    with pytest.raises(TypeError, match=r"^x has dtype torch.float64 but the model's parameters are torch.float32"):
        model(x)
    with pytest.raises(TypeError, match=r"^x has dtype torch.float64"):
        db.train_tarnet(model, x, torch.tensor([1, 0, 1, 0, 1, 0]), torch.randn(6), epochs=1)


def test_referral_curves_read_an_iterator_of_fractions_once():
    correct = torch.tensor([True, True, False, True])
    scores = {"a": torch.tensor([0.1, 0.2, 0.9, 0.3]), "b": torch.tensor([0.9, 0.2, 0.1, 0.3])}
    curves = db.referral_curves(correct, scores, iter([0.0, 0.25]))
    assert curves["b"].tolist() == db.referral_curve(correct, scores["b"], [0.0, 0.25]).tolist()


@pytest.mark.parametrize("fractions, error, message", [
    ({0.0, 0.25}, TypeError, r"^fractions must be an ordered sequence .* got a set"),
    ({0.0: 1, 0.25: 2}, TypeError, r"^fractions must be an ordered sequence .* got a dict"),
    (0.25, TypeError, r"^fractions must be a sequence of numbers in \[0, 1\), got the single number 0.25"),
    (torch.tensor(0.25), TypeError, r"^fractions must be a sequence of numbers in \[0, 1\), got the single number 0.25"),
])
def test_fractions_as_a_set_a_dict_or_one_number_are_refused_alike(fractions, error, message):
    correct, u = torch.tensor([True, True, False, True]), torch.tensor([0.1, 0.2, 0.9, 0.3])
    for call in (lambda: db.referral_curve(correct, u, fractions), lambda: db.deferral_curve(u, u, fractions),
                 lambda: db.random_deferral_curve(u, fractions, n_draws=2)):
        with pytest.raises(error, match=message):
            call()


def test_deferral_curves_refuse_infinite_errors():
    errors = torch.tensor([1.0, INF, 0.5])
    with pytest.raises(ValueError, match=r"^errors must hold finite numbers"):
        db.deferral_curve(errors, torch.rand(3), [0.0])
    with pytest.raises(ValueError, match=r"^errors must hold finite numbers"):
        db.random_deferral_curve(errors, [0.0])


def test_random_deferral_curve_draws_in_chunks_the_same_as_all_at_once(monkeypatch):
    errors = torch.randn(50, generator=gen(3))
    whole = db.random_deferral_curve(errors, [0.0, 0.3], n_draws=40, generator=gen(4))
    monkeypatch.setattr(db.uncertainty, "_DRAW_ELEMENTS", 7 * 50)  # chunks of 7 draws, the last one short
    assert torch.allclose(db.random_deferral_curve(errors, [0.0, 0.3], n_draws=40, generator=gen(4)), whole,
                          rtol=1e-12, atol=0)


def test_the_breast_cancer_split_names_n_train_when_it_leaves_too_few_test_cases():
    with pytest.raises(ValueError, match=r"^n_train must be an int in \[20, 449\] \(with n_val = 100, at least 20 "
                                         r"test cases remain\), got 500$"):
        db.load_breast_cancer_split(500)
    assert len(db.load_breast_cancer_split(549, n_val=0).y_test) == 20
