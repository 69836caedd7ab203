"""Losses: each returns (mean loss, gradient of that mean with respect to y_pred).

The cross-entropies take logits by default and fuse the softmax (or sigmoid) into the loss, which
is numerically stable (log-sum-exp) and has the simple gradient softmax(z) - y. Models end in
logits; pass from_logits=False only for outputs that are already probabilities.
The arithmetic runs in float64 and the gradient comes back in y_pred's floating dtype.

>>> loss, grad = categorical_crossentropy(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0]]))
>>> round(loss, 4), grad.tolist()
(0.6931, [[0.5, -0.5]])
"""
import numpy as np

__all__ = ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
           "mean_squared_error", "mse", "get", "LOSSES"]

# Probabilities are kept this far from 0 and 1 before a log (the gradient is zero where clipped).
PROBABILITY_EPSILON = 1e-7


def _as_pred(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float32)
    return y_pred


def _check_same_shape(y_true, y_pred, name):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true and y_pred must have the same shape, got y_true {y_true.shape} "
                         f"and y_pred {y_pred.shape}")


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _crossentropy_from_targets(targets, y_pred, from_logits):
    """Mean over the batch of -sum(targets * log p); targets (N, K) float64, y_pred (N, K)."""
    n = max(y_pred.shape[0], 1)
    z = y_pred.astype(np.float64)
    if from_logits:
        log_p = _log_softmax(z)
        loss = -(targets * log_p).sum() / n
        # softmax(z) * sum(targets) - targets: the usual p - y, also for targets that do not sum to 1.
        grad = (np.exp(log_p) * targets.sum(axis=1, keepdims=True) - targets) / n
    else:
        p = np.clip(z, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
        loss = -(targets * np.log(p)).sum() / n
        grad = np.where(p == z, -targets / p, 0.0) / n
    return float(loss), grad.astype(y_pred.dtype)


def categorical_crossentropy(y_true, y_pred, from_logits=True):
    """Cross-entropy between one-hot (or soft) targets and a softmax over y_pred's classes.

    Shapes: y_true (N, K) target probabilities, y_pred (N, K) logits (or probabilities with
    from_logits=False) -> (mean over N of -sum_k y_true log softmax(y_pred), gradient (N, K)).

    >>> loss, grad = categorical_crossentropy(np.eye(3), np.eye(3) * 50)
    >>> bool(loss < 1e-20), grad.shape
    (True, (3, 3))
    """
    y_pred = _as_pred(y_pred)
    y_true = np.asarray(y_true, dtype=np.float64)
    _check_same_shape(y_true, y_pred, "categorical_crossentropy")
    if y_pred.ndim != 2:
        raise ValueError(f"categorical_crossentropy: y_pred must be (N, classes), got shape {y_pred.shape}")
    return _crossentropy_from_targets(y_true, y_pred, from_logits)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=True):
    """categorical_crossentropy with integer class labels instead of one-hot rows.

    Shapes: y_true (N,) ints in [0, K) (or (N, 1)), y_pred (N, K) logits -> (loss, gradient (N, K)).

    >>> loss, grad = sparse_categorical_crossentropy([0, 1], np.zeros((2, 4)))
    >>> round(loss, 4) == round(float(np.log(4)), 4)
    True
    """
    y_pred = _as_pred(y_pred)
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if y_pred.ndim != 2 or labels.shape != y_pred.shape[:1]:
        raise ValueError(f"sparse_categorical_crossentropy: expected y_true (N,) and y_pred (N, classes), got "
                         f"y_true {np.shape(y_true)} and y_pred {y_pred.shape}")
    if labels.size and (labels.dtype.kind not in "iu" and not np.array_equal(labels, np.round(labels))):
        raise ValueError("sparse_categorical_crossentropy: y_true must hold integer class labels")
    labels = labels.astype(np.int64)
    classes = y_pred.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"sparse_categorical_crossentropy: labels must be in [0, {classes}), got "
                         f"min {labels.min()} and max {labels.max()}")
    targets = np.zeros(y_pred.shape, np.float64)
    targets[np.arange(labels.size), labels] = 1.0
    return _crossentropy_from_targets(targets, y_pred, from_logits)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """Mean over all elements of -(y log p + (1 - y) log(1 - p)).

    y_pred holds probabilities p by default (Keras' default; they are clipped to
    [1e-7, 1 - 1e-7]) or, with from_logits=True, logits z with p = sigmoid(z), computed stably as
    max(z, 0) - z y + log(1 + exp(-|z|)). Shapes: y_true and y_pred alike, e.g. (N, 1) ->
    (loss, gradient shaped as y_pred).

    >>> loss, grad = binary_crossentropy([[1.0], [0.0]], [[0.0], [0.0]], from_logits=True)
    >>> round(loss, 4), grad.ravel().tolist()
    (0.6931, [-0.25, 0.25])
    """
    y_pred = _as_pred(y_pred)
    y_true = np.asarray(y_true, dtype=np.float64)
    _check_same_shape(y_true, y_pred, "binary_crossentropy")
    count = max(y_pred.size, 1)
    z = y_pred.astype(np.float64)
    if from_logits:
        loss = (np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))).sum() / count
        grad = (0.5 * (np.tanh(0.5 * z) + 1.0) - y_true) / count
    else:
        p = np.clip(z, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
        loss = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)).sum() / count
        grad = np.where(p == z, (p - y_true) / (p * (1 - p)), 0.0) / count
    return float(loss), grad.astype(y_pred.dtype)


def mean_squared_error(y_true, y_pred):
    """Mean over all elements of (y_pred - y_true)**2, and its gradient 2 (y_pred - y_true) / size.

    >>> mean_squared_error([1.0, 2.0], [1.0, 4.0])[0]
    2.0
    """
    y_pred = _as_pred(y_pred)
    y_true = np.asarray(y_true, dtype=np.float64)
    _check_same_shape(y_true, y_pred, "mean_squared_error")
    diff = y_pred.astype(np.float64) - y_true
    count = max(diff.size, 1)
    return float((diff * diff).sum() / count), (2.0 * diff / count).astype(y_pred.dtype)


mse = mean_squared_error

_BY_NAME = {
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
}

#: The names compile(loss=...) accepts.
LOSSES = tuple(_BY_NAME)


def get(loss):
    """A loss function from its name, or a callable (y_true, y_pred) -> (loss, grad) unchanged.

    >>> get("mse") is mean_squared_error
    True
    """
    if callable(loss):
        return loss
    if loss not in _BY_NAME:
        raise ValueError(f"loss must be a callable or one of {LOSSES}, got loss={loss!r}")
    return _BY_NAME[loss]
