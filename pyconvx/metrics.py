"""Metrics. The training accuracies used by compile(metrics=[...]) work on a model's outputs
(scores or probabilities); the classification metrics of `pyconvx.label_metrics`, re-exported
here (accuracy, precision, recall, f1_score, confusion_matrix, classification_report, ...), work
on label arrays.

>>> sparse_categorical_accuracy([1, 0], [[0.1, 0.9], [0.2, 0.8]])
0.5
"""
import functools

import numpy as np

from . import losses
from .label_metrics import *  # noqa: F401,F403  (the label-array metrics are part of this namespace)
from .label_metrics import __all__ as _label_metrics_all

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "masked_binary_accuracy",
           "task_metrics", "TaskMetrics", "accuracy_for", "get"] + list(_label_metrics_all)


def categorical_accuracy(y_true, y_pred):
    """One-hot (N, K) targets: argmax of y_pred equals argmax of y_true.

    >>> categorical_accuracy([[0, 1], [1, 0]], [[0.3, 0.7], [0.1, 0.9]])
    0.5
    """
    return sparse_categorical_accuracy(np.argmax(np.asarray(y_true), axis=1), y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """Integer labels (N,): argmax of y_pred (N, K) equals the label."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred)
    return float(np.mean(np.argmax(y_pred, axis=1) == y_true)) if y_true.size else 0.0


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """0/1 targets: y_pred above threshold counts as 1 (threshold 0 for logits).

    >>> binary_accuracy([1, 0, 1], [0.9, 0.2, 0.4])
    0.6666666666666666
    """
    y_true = np.asarray(y_true).reshape(-1)
    predicted = np.asarray(y_pred).reshape(-1) > threshold
    return float(np.mean(predicted == (y_true > 0.5))) if y_true.size else 0.0


def masked_binary_accuracy(y_true, y_pred, threshold=0.5):
    """The fraction of the present labels predicted right, leaving out the missing ones (NaN or
    -1, as in losses.masked_binary_crossentropy); y_pred above threshold counts as 1 (threshold 0
    for logits). Shapes: y_true and y_pred (N, T) or (N,) -> float; NaN when no label is present.

    >>> masked_binary_accuracy([[1, -1], [0, np.nan]], [[0.9, 0.2], [0.7, 0.4]])
    0.5
    """
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"masked_binary_accuracy: y_true and y_pred must have the same shape, got y_true "
                         f"{y_true.shape} and y_pred {y_pred.shape}")
    present = ~losses.missing_labels(y_true)
    if not present.any():
        return float("nan")
    return float(np.mean((y_pred[present] > threshold) == (y_true[present] > 0.5)))


class TaskMetrics(dict):
    """{task name: {"accuracy", "precision", "recall", "f1", "support", "missing"}}, as
    `task_metrics` returns it; str() is a table with one row per task."""

    FIGURES = ("accuracy", "precision", "recall", "f1", "support", "missing")

    def __str__(self):
        width = max([len("task")] + [len(name) for name in self])
        lines = [f"{'task':<{width}}  " + "  ".join(f"{figure:>9}" for figure in self.FIGURES)]
        for name, figures in self.items():
            cells = [f"{figures[f]:>9.3f}" for f in self.FIGURES[:4]] + [f"{figures[f]:>9d}" for f in self.FIGURES[4:]]
            lines.append(f"{name:<{width}}  " + "  ".join(cells))
        return "\n".join(lines)


def _task_columns(y, name, names):
    """y as an (N, T) float64 array: from an (N, T) or (N,) array (or nested lists), or a list of
    NumPy arrays (or a dict by task name) of shape (N,) or (N, 1), one per task, as a model with
    one output per task predicts."""
    if isinstance(y, dict):
        if names is None:
            names = list(y)
        missing = [task for task in names if task not in y]
        if missing:
            raise ValueError(f"task_metrics: {name} has no entry for the task {missing[0]!r}")
        y = [y[task] for task in names]
    if isinstance(y, (list, tuple)) and y and all(isinstance(each, np.ndarray) for each in y):
        columns = [np.asarray(each, np.float64) for each in y]
        for index, column in enumerate(columns):
            if column.ndim == 2 and column.shape[1] == 1:
                columns[index] = column[:, 0]
            if columns[index].ndim != 1:
                raise ValueError(f"task_metrics: {name}[{index}] must be (N,) or (N, 1), got shape {column.shape}")
        lengths = {len(column) for column in columns}
        if len(lengths) > 1:
            raise ValueError(f"task_metrics: the tasks of {name} differ in length: {sorted(lengths)}")
        return np.stack(columns, axis=1), names
    y = np.asarray(y, np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"task_metrics: {name} must be (N, tasks), got shape {y.shape}")
    return y, names


def task_metrics(y_true, y_pred, names=None, threshold=0.5):
    """Accuracy, precision, recall and F1 of each task of a multi-task (multi-label) problem,
    each over the examples whose label for that task is present (NaN or -1 marks a missing one),
    with the support (present labels) and the count of missing ones.

    y_true and y_pred: (N, T) arrays or nested lists (one column per task), or lists of NumPy
    arrays (or dicts by task name) of shape (N,) or (N, 1), one per task, as predict returns
    them for a model with one output per task. y_pred above threshold counts as a yes (0.5 for
    probabilities, 0 for logits). names are the tasks' names (default "task_0", ...; a dict's
    keys). A ratio with a zero denominator (no yes predicted, none present) is 0. Returns a
    TaskMetrics (a dict by task name).

    >>> report = task_metrics([[1, 0], [1, -1], [0, 1]], [[0.9, 0.2], [0.4, 0.8], [0.1, 0.7]], names=["car", "sign"])
    >>> report["car"]["recall"], report["sign"]["support"], report["sign"]["missing"]
    (0.5, 2, 1)
    >>> print(report)
    task   accuracy  precision     recall         f1    support    missing
    car       0.667      1.000      0.500      0.667          3          0
    sign      1.000      1.000      1.000      1.000          2          1
    """
    truth, names = _task_columns(y_true, "y_true", names)
    scores, _ = _task_columns(y_pred, "y_pred", names)
    if truth.shape != scores.shape:
        raise ValueError(f"task_metrics: y_true and y_pred must hold the same tasks and examples, got (N, T) "
                         f"{truth.shape} and {scores.shape}")
    names = [f"task_{index}" for index in range(truth.shape[1])] if names is None else [str(n) for n in names]
    if len(names) != truth.shape[1]:
        raise ValueError(f"task_metrics: names must name the {truth.shape[1]} tasks, got names={names!r}")
    present = ~losses.missing_labels(truth)
    report = TaskMetrics()
    for index, name in enumerate(names):
        rows = present[:, index]
        actual, predicted = truth[rows, index] > 0.5, scores[rows, index] > threshold
        hits = int(np.sum(actual & predicted))
        ratio = lambda numerator, denominator: numerator / denominator if denominator else 0.0  # noqa: E731
        precision, recall = ratio(hits, int(predicted.sum())), ratio(hits, int(actual.sum()))
        report[name] = {"accuracy": ratio(int(np.sum(actual == predicted)), int(rows.sum())),
                        "precision": precision, "recall": recall,
                        "f1": ratio(2 * precision * recall, precision + recall),
                        "support": int(rows.sum()), "missing": int((~rows).sum())}
    return report


def accuracy_for(loss):
    """The accuracy that matches a loss, as compile(metrics=["accuracy"]) resolves it; a loss may
    be a functools.partial such as partial(binary_crossentropy, from_logits=True)."""
    from_logits = False
    if isinstance(loss, functools.partial):
        from_logits = loss.keywords.get("from_logits", False)
        loss = loss.func
    if loss is losses.sparse_categorical_crossentropy:
        return sparse_categorical_accuracy
    threshold = 0.0 if from_logits else 0.5
    if loss is losses.binary_crossentropy:
        return lambda y_true, y_pred: binary_accuracy(y_true, y_pred, threshold)
    if loss is losses.masked_binary_crossentropy:  # missing labels count neither right nor wrong
        return lambda y_true, y_pred: masked_binary_accuracy(y_true, y_pred, threshold)
    return categorical_accuracy


_BY_NAME = {
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "masked_binary_accuracy": masked_binary_accuracy,
}


def get(metric, loss):
    """(name, function) for a metric name or a callable (y_true, y_pred) -> float."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric in ("accuracy", "acc"):
        return "accuracy", accuracy_for(loss)
    if metric not in _BY_NAME:
        raise ValueError(f"metric must be a callable, 'accuracy' or one of {tuple(_BY_NAME)}, got {metric!r}")
    return metric, _BY_NAME[metric]
