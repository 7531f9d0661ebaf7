"""One small, plain training loop used by the book's experiments.

See chapter 1, section "Experiment".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ._validation import check_choice, check_int, check_seed
from .data import Split
from .montecarlo import Estimate, estimate_mean

__all__ = ["History", "accuracy", "evaluate_loss", "train_classifier", "mlp", "across_runs"]


@dataclass
class History:
    """Per-epoch training loss, test loss and train/test accuracy recorded by :func:`train_classifier`.

    When the data has a validation split, ``val_loss`` and ``val_accuracy`` are recorded too (they
    stay empty otherwise), and :attr:`~dropoutbook.training.History.chosen` is the recorded epoch a practitioner would keep.
    """

    loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def chosen(self) -> int:
        """Index of the recorded epoch with the highest validation accuracy (the first, on ties).

        This is early stopping on the validation split; the test values at this index are the
        ones to report. Raises ``ValueError`` if no validation accuracy was recorded.
        """
        if not self.val_accuracy:
            raise ValueError("no validation accuracy was recorded: train on a Split with a validation set "
                             "(load_digits_split(..., n_val=...))")
        return max(range(len(self.val_accuracy)), key=lambda i: (self.val_accuracy[i], -i))

    @property
    def gap(self) -> list[float]:
        """Train minus test accuracy, epoch by epoch."""
        return [a - b for a, b in zip(self.train_accuracy, self.test_accuracy)]


def across_runs(runs, metric: str, *, at: str = "final") -> Estimate:
    """Mean over several runs (seeds) of one metric, with its standard error.

    ``at="final"`` takes each run's value after the last epoch; ``at="chosen"`` its value at the
    epoch chosen on the validation split (:attr:`~dropoutbook.training.History.chosen`), which is what an honest
    report of early stopping gives; ``at="best"`` its best (largest) value over the epochs, which
    for a test metric is an oracle (the epoch is picked by looking at the test set) and is an upper
    bound, not a result. The experiments of chapters 1, 8 and 9 report their tables this way.

    Args:
        runs: a non-empty sequence of :class:`History`, one per run.
        metric: ``"loss"``, ``"test_loss"``, ``"train_accuracy"``, ``"test_accuracy"``,
            ``"val_loss"`` or ``"val_accuracy"``.
        at: ``"final"``, ``"chosen"`` or ``"best"``.

    Examples:
        >>> runs = [History(test_accuracy=[0.5, 0.9, 0.8]), History(test_accuracy=[0.6, 0.7, 0.9])]
        >>> round(across_runs(runs, "test_accuracy").value, 3), across_runs(runs, "test_accuracy", at="best").value
        (0.85, 0.9)
    """
    metrics = ("loss", "test_loss", "train_accuracy", "test_accuracy", "val_loss", "val_accuracy")
    metric = check_choice(metric, "metric", metrics)
    at = check_choice(at, "at", ("final", "chosen", "best"))
    runs = list(runs)
    if not runs or not all(isinstance(h, History) for h in runs):
        raise TypeError("runs must be a non-empty sequence of History objects")
    series = [getattr(h, metric) for h in runs]
    if any(not s for s in series):
        raise ValueError(f"every run must have recorded {metric!r} for at least one epoch")
    if at == "chosen":
        return estimate_mean([s[h.chosen] for s, h in zip(series, runs)])
    return estimate_mean([s[-1] if at == "final" else max(s) for s in series])


def mlp(sizes: list[int], *, dropout: float = 0.0, input_dropout: float = 0.0,
        dropout_layer=nn.Dropout) -> nn.Sequential:
    """A ReLU multilayer perceptron with dropout after every hidden layer (and optionally on the input).

    Args:
        sizes: layer widths, from the number of inputs to the number of outputs.
        dropout: drop probability after each hidden layer.
        input_dropout: drop probability on the input features.
        dropout_layer: the dropout module class, ``torch.nn.Dropout`` or the library's
            :class:`~dropoutbook.InvertedDropout`.

    Examples:
        >>> mlp([64, 32, 10], dropout=0.5)
        Sequential(
          (0): Linear(in_features=64, out_features=32, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.5, inplace=False)
          (3): Linear(in_features=32, out_features=10, bias=True)
        )
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise ValueError(f"sizes must list at least two positive ints, got {sizes!r}")
    sizes = [check_int(s, f"sizes[{i}]", minimum=1) for i, s in enumerate(sizes)]
    layers: list[nn.Module] = []
    if input_dropout > 0:
        layers.append(dropout_layer(input_dropout))
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(dropout_layer(dropout))
    return nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions of ``model`` in evaluation mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return (model(x).argmax(dim=1) == y).double().mean().item()
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``model`` in evaluation mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return nn.functional.cross_entropy(model(x), y).item()
    finally:
        model.train(was_training)


@torch.no_grad()
def _loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """:func:`evaluate_loss` and :func:`accuracy` from one forward pass (the same numbers, half the work)."""
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
        return (nn.functional.cross_entropy(logits, y).item(),
                (logits.argmax(dim=1) == y).double().mean().item())
    finally:
        model.train(was_training)


def train_classifier(model: nn.Module, data: Split, *, epochs: int = 100, lr: float = 1e-3,
                     batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0,
                     record_every: int = 1, progress: bool = False, on_epoch=None) -> History:
    """Train ``model`` with Adam and cross-entropy on ``data``; record loss and accuracies after every epoch.

    Mini-batches are drawn with a generator seeded by ``seed``; the model's own randomness
    (initialization, dropout masks) comes from torch's global generator, which the caller seeds.

    Args:
        model: a classifier returning logits.
        data: the :class:`~dropoutbook.data.Split` to train and evaluate on (also on its
            validation set, if it has one).
        epochs: passes over the training set, a positive int.
        lr: Adam's learning rate.
        batch_size: mini-batch size, a positive int.
        weight_decay: Adam's L2 penalty.
        seed: seed of the mini-batch order.
        record_every: evaluate and record every ``record_every`` epochs and after the last one
            (``record_every=epochs`` records the final epoch only, which saves the evaluations).
        progress: print one line every 10% of the epochs.
        on_epoch: optional callable, called as ``on_epoch(epoch, model)`` (epochs counted from 1)
            after each recorded epoch; e.g. to keep a copy of the weights at every epoch, so that
            the epoch chosen on a validation split can be evaluated afterwards (chapter 11).
    """
    epochs, batch_size, record_every = (check_int(value, name, minimum=1) for name, value in (
        ("epochs", epochs), ("batch_size", batch_size), ("record_every", record_every)))
    seed = check_seed(seed)
    if len(data.y_train) == 0:
        raise ValueError("data has an empty training set")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be callable or None, got {type(on_epoch).__name__}")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    history = History()
    n = len(data.y_train)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % record_every and epoch + 1 != epochs:
            continue
        history.loss.append(total / n)
        test_loss, test_accuracy = _loss_and_accuracy(model, data.x_test, data.y_test)
        history.test_loss.append(test_loss)
        history.train_accuracy.append(accuracy(model, data.x_train, data.y_train))
        history.test_accuracy.append(test_accuracy)
        if data.has_validation:
            val_loss, val_accuracy = _loss_and_accuracy(model, data.x_val, data.y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
        if progress and (epoch + 1) % max(1, epochs // 10) == 0:
            print(f"epoch {epoch + 1}/{epochs}: loss {history.loss[-1]:.3f}, "
                  f"train {history.train_accuracy[-1]:.3f}, test {history.test_accuracy[-1]:.3f}")
    return history
