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
           "masked_binary_crossentropy", "missing_labels", "MASKED_NORMALIZATIONS", "mean_squared_error", "mse", "get",
           "LOSSES"]

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


def _binary_terms(y_true, z, from_logits):
    """Per-element binary cross-entropy and its derivative with respect to z, both float64 and
    shaped as z: the sums that binary_crossentropy and masked_binary_crossentropy normalise."""
    if from_logits:
        loss = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
        return loss, 0.5 * (np.tanh(0.5 * z) + 1.0) - y_true
    p = np.clip(z, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    loss = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p))
    return loss, np.where(p == z, (p - y_true) / (p * (1 - p)), 0.0)


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
    loss, grad = _binary_terms(y_true, y_pred.astype(np.float64), from_logits)
    return float(loss.sum() / count), (grad / count).astype(y_pred.dtype)


#: What masked_binary_crossentropy's normalize= accepts.
MASKED_NORMALIZATIONS = ("batch", "present")


def missing_labels(y_true):
    """The boolean mask of the labels marked missing ("?"): NaN or -1.

    >>> missing_labels([[1.0, np.nan], [-1, 0]]).tolist()
    [[False, True], [True, False]]
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    return np.isnan(y_true) | (y_true == -1)


def masked_binary_crossentropy(y_true, y_pred, from_logits=False, normalize="batch"):
    """Binary cross-entropy of several yes/no tasks at once (one per column), leaving out the
    labels marked missing: NaN or -1 means "not labelled", and such a label adds nothing to the
    loss and gets a gradient of exactly zero.

    The element terms are binary_crossentropy's (probabilities clipped to [1e-7, 1 - 1e-7], or
    logits with from_logits=True), summed over the tasks and the present labels, then divided by

    - normalize="batch" (default): the batch size N, the multi-task loss
      (1/N) sum_i sum_{j labelled} L(y_ij, p_ij). It equals the sum over the tasks of a per-task
      loss averaged over the batch, so a model with one sigmoid output per task compiled with
      this loss and the default loss_weights of 1 trains on the same total as one (N, T) output.
      A missing label just drops its term: the weight of the others does not depend on how many
      are missing in the batch.
    - normalize="present": the number of present labels, the masked mean torch users write as
      (bce(reduction="none") * mask).sum() / mask.sum(); with no label missing it is Keras' and
      torch's mean binary cross-entropy over all elements.

    A batch without any present label has loss 0 and a zero gradient. Present labels must lie in
    [0, 1] (soft targets allowed). Shapes: y_true and y_pred alike, (N, T) or (N,) ->
    (loss, gradient shaped as y_pred, in its floating dtype).

    >>> y_true = [[1.0, np.nan], [0.0, -1.0]]
    >>> loss, grad = masked_binary_crossentropy(y_true, np.zeros((2, 2)), from_logits=True)
    >>> round(loss, 4), grad.tolist()                  # log(2) * 2 labels / 2 examples
    (0.6931, [[-0.25, 0.0], [0.25, 0.0]])
    >>> round(masked_binary_crossentropy(y_true, [[0.5, 0.9], [0.5, 0.1]], normalize="present")[0], 4)
    0.6931
    """
    if normalize not in MASKED_NORMALIZATIONS:
        raise ValueError(f"masked_binary_crossentropy: normalize must be one of {MASKED_NORMALIZATIONS}, "
                         f"got normalize={normalize!r}")
    y_pred = _as_pred(y_pred)
    y_true = np.asarray(y_true, dtype=np.float64)
    _check_same_shape(y_true, y_pred, "masked_binary_crossentropy")
    if y_pred.ndim == 0:
        raise ValueError("masked_binary_crossentropy: y_pred must have a batch axis, got a scalar")
    present = ~missing_labels(y_true)
    labels = np.where(present, y_true, 0.0)
    bad = present & ~((labels >= 0) & (labels <= 1))
    if bad.any():
        raise ValueError(f"masked_binary_crossentropy: y_true must hold labels in [0, 1], or NaN or -1 for a "
                         f"missing one, got {y_true[bad][0]!r}")
    divisor = max(len(y_pred), 1) if normalize == "batch" else max(int(present.sum()), 1)
    # The predictions of missing labels are replaced too: a NaN or inf there must not reach the sums.
    loss, grad = _binary_terms(labels, np.where(present, y_pred.astype(np.float64), 0.0), from_logits)
    return float(loss[present].sum() / divisor), (np.where(present, grad, 0.0) / divisor).astype(y_pred.dtype)


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
    "masked_binary_crossentropy": masked_binary_crossentropy,
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
