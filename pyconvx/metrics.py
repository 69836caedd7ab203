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

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "accuracy_for", "get"] + list(_label_metrics_all)


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


def accuracy_for(loss):
    """The accuracy that matches a loss, as compile(metrics=["accuracy"]) resolves it; a loss may
    be a functools.partial such as partial(binary_crossentropy, from_logits=True)."""
    from_logits = False
    if isinstance(loss, functools.partial):
        from_logits = loss.keywords.get("from_logits", False)
        loss = loss.func
    if loss is losses.sparse_categorical_crossentropy:
        return sparse_categorical_accuracy
    if loss is losses.binary_crossentropy:
        threshold = 0.0 if from_logits else 0.5
        return lambda y_true, y_pred: binary_accuracy(y_true, y_pred, threshold)
    return categorical_accuracy


_BY_NAME = {
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
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
