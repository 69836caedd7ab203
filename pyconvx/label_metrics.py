"""Classification metrics on label arrays: accuracy, precision, recall, F-scores, the confusion
matrix, a printable report and a metric per group. Re-exported by `pyconvx.metrics`.

Inputs are class labels of shape (N,) (ints, integral floats or strings; an (N, 1) column is
accepted). Scores or probabilities are refused: take `y.argmax(axis=1)` or threshold them first.

Averages (`average=`):

- None: one value per label, in the order of `labels` (sorted labels found in the data by default).
- "binary": the value for `pos_label` only; y_true and y_pred together hold at most two labels
  (`labels=` is not used).
- "micro": counts summed over labels first (equals the accuracy when every label is included).
- "macro": the unweighted mean over labels, so rare classes weigh as much as common ones.
- "weighted": the mean over labels weighted by their support (number of true examples).

`zero_division` is the value of a ratio whose denominator is zero: precision of a label never
predicted, recall of a label absent from y_true, an F-score with neither. It may be 0, 1, np.nan
(then left out of the averages, which are NaN if nothing is left) or "warn" (0 with a
RuntimeWarning, the default of the scalar scores).

>>> precision([0, 1, 1, 0], [1, 1, 1, 0])
0.6666666666666666
>>> confusion_matrix([0, 1, 1, 0], [1, 1, 1, 0])
array([[1, 1],
       [0, 2]])
"""
import warnings

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "precision_recall_fscore_support", "precision", "recall", "fbeta_score",
           "f1_score", "classification_report", "error", "group_metric", "GroupMetric"]

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


def as_labels(y, name):
    """y as a 1-D label array; ValueError naming `name` for scores, probabilities or wrong shapes."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        raise ValueError(f"{name} must be class labels of shape (N,), got a 2-D array of shape {y.shape}: "
                         f"probabilities or scores? pass {name}.argmax(axis=1)")
    if y.ndim != 1:
        raise ValueError(f"{name} must be class labels of shape (N,), got shape {y.shape}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise ValueError(f"{name} must hold class labels, got non-integer values such as {y[bad][0]!r}: "
                             f"probabilities? threshold them, e.g. ({name} > 0.5).astype(int)")
    return y


def label_pair(y_true, y_pred):
    """Both label arrays, checked to be non-empty and of the same length."""
    y_true, y_pred = as_labels(y_true, "y_true"), as_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty: a metric needs at least one example")
    return y_true, y_pred


def checked_labels(y_true, y_pred, labels):
    """`labels`, checked to cover every value of y_true and y_pred, or those values sorted."""
    present = np.union1d(y_true, y_pred)
    if labels is None:
        return present
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("labels must name at least one label, got labels=[]")
    if len(np.unique(labels)) != labels.size:
        raise ValueError(f"labels must not repeat a label, got labels={labels.tolist()}")
    outside = present[~np.isin(present, labels)]
    if outside.size:
        raise ValueError(f"y_true or y_pred hold labels {outside.tolist()} that are not in labels={labels.tolist()}")
    return labels


def _positions(y_true, y_pred, labels):
    """Each label's position in `labels`, for y_true and y_pred; every value is in labels."""
    order = np.argsort(labels, kind="stable")
    return order[np.searchsorted(labels[order], y_true)], order[np.searchsorted(labels[order], y_pred)]


def _counts(y_true, y_pred, labels):
    """Confusion counts (K, K), rows true and columns predicted, in the order of `labels`."""
    true_at, pred_at = _positions(y_true, y_pred, labels)
    k = len(labels)
    return np.bincount(true_at * k + pred_at, minlength=k * k).reshape(k, k)


def _per_label_counts(y_true, y_pred, labels):
    """(true positives, predicted, true) per label (K,): the confusion matrix's diagonal and
    sums without its K x K memory."""
    true_at, pred_at = _positions(y_true, y_pred, labels)
    k = len(labels)
    return (np.bincount(true_at[true_at == pred_at], minlength=k), np.bincount(pred_at, minlength=k),
            np.bincount(true_at, minlength=k))


def confusion_matrix(y_true, y_pred, labels=None, normalize=None):
    """Counts C (K, K) where C[i, j] is the number of examples of true label labels[i] predicted
    as labels[j]; normalize="true" divides rows, "pred" columns, "all" everything (an empty row
    or column stays 0).

    >>> confusion_matrix(["cat", "dog", "dog"], ["dog", "dog", "dog"], labels=["dog", "cat"])
    array([[2, 0],
           [1, 0]])
    """
    y_true, y_pred = label_pair(y_true, y_pred)
    counts = _counts(y_true, y_pred, checked_labels(y_true, y_pred, labels))
    if normalize is None:
        return counts
    axis = {"true": 1, "pred": 0, "all": None}.get(normalize, "bad")
    if axis == "bad":
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got normalize={normalize!r}")
    total = counts.sum(axis=axis, keepdims=axis is not None)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


def accuracy(y_true, y_pred, normalize=True):
    """The fraction (or with normalize=False the number) of labels predicted exactly.

    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    y_true, y_pred = label_pair(y_true, y_pred)
    right = y_true == y_pred
    return float(right.mean()) if normalize else int(right.sum())


def _zero_division_value(zero_division):
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(f"zero_division must be 'warn', 0, 1 or np.nan, got zero_division={zero_division!r}")
        return 0.0
    if not (np.isnan(zero_division) or zero_division in (0, 1)):
        raise ValueError(f"zero_division must be 'warn', 0, 1 or np.nan, got zero_division={zero_division!r}")
    return float(zero_division)


def _ratio(numerator, denominator, zero_division, what):
    undefined = denominator == 0
    result = np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=~undefined)
    if undefined.any():
        result[undefined] = _zero_division_value(zero_division)
        if isinstance(zero_division, str):
            warnings.warn(f"{what} is undefined (zero denominator) for some labels and is set to 0; "
                          f"choose zero_division=0, 1 or np.nan to silence this", RuntimeWarning, stacklevel=4)
    return result


def _mean_ignoring_nan(values, weights=None):
    # NaN marks an undefined score (zero_division=np.nan): it is left out rather than counted.
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if weights is not None and weights[keep].sum() > 0:
        return float(np.average(values[keep], weights=weights[keep]))
    return float(values[keep].mean())


def _positive_index(y_true, y_pred, pos_label):
    """The index of pos_label among the sorted labels present, or None when it is absent (legal
    only if a single label is present: then nothing is or is predicted positive)."""
    present = np.union1d(y_true, y_pred)
    if len(present) > 2:
        raise ValueError(f"average='binary' needs at most two labels, got {len(present)} ({present.tolist()}): "
                         "choose average=None, 'micro', 'macro' or 'weighted'")
    if pos_label in present.tolist():
        return present, present.tolist().index(pos_label)
    if len(present) == 2:
        raise ValueError(f"pos_label={pos_label!r} is not one of the labels {present.tolist()}")
    return present, None


def precision_recall_fscore_support(y_true, y_pred, beta=1.0, labels=None, pos_label=1, average=None,
                                    zero_division="warn"):
    """Precision tp / (tp + fp), recall tp / (tp + fn), the F-beta score
    (1 + beta^2) tp / ((1 + beta^2) tp + beta^2 fn + fp) and the support (true count) per label.

    y_true, y_pred (N,) labels. With average=None: four arrays (K,) in the order of `labels`;
    otherwise three floats and None (see the module docstring for the averages and zero_division).
    beta > 1 favours recall, beta < 1 precision; beta=0 is the precision, beta=inf the recall.

    >>> p, r, f, s = precision_recall_fscore_support([0, 0, 1, 2], [0, 1, 1, 2])
    >>> p.tolist(), r.tolist(), s.tolist()
    ([1.0, 0.5, 1.0], [0.5, 1.0, 1.0], [2, 1, 1])
    >>> precision_recall_fscore_support([0, 0, 1, 2], [0, 1, 1, 2], average="macro")[:3]
    (0.8333333333333334, 0.8333333333333334, 0.7777777777777777)
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got average={average!r}")
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got beta={beta!r}")
    _zero_division_value(zero_division)
    y_true, y_pred = label_pair(y_true, y_pred)
    if average == "binary":
        all_labels, positive = _positive_index(y_true, y_pred, pos_label)
        selected = [positive] if positive is not None else slice(0)
    else:
        all_labels, selected = checked_labels(y_true, y_pred, labels), slice(None)
    tp, predicted, support = (a[selected] for a in _per_label_counts(y_true, y_pred, all_labels))
    if average == "binary" and positive is None:  # pos_label absent: no example is or is predicted positive
        tp = predicted = support = np.zeros(1, np.int64)
    if average == "micro":
        tp, predicted, support = tp.sum(keepdims=True), predicted.sum(keepdims=True), support.sum(keepdims=True)
    p = _ratio(tp, predicted, zero_division, "precision")
    r = _ratio(tp, support, zero_division, "recall")
    if np.isposinf(beta):
        f = r
    else:
        f = _ratio((1 + beta ** 2) * tp, beta ** 2 * support + predicted, zero_division, "F-score")
    if average is None:
        return p, r, f, support
    weights = support.astype(float) if average == "weighted" else None
    return _mean_ignoring_nan(p, weights), _mean_ignoring_nan(r, weights), _mean_ignoring_nan(f, weights), None


def precision(y_true, y_pred, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """Of the examples predicted as a label, the fraction that truly are: tp / (tp + fp).

    >>> precision([0, 1, 2, 2], [0, 2, 2, 2], average="micro")
    0.75
    """
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
                                           zero_division=zero_division)[0]


def recall(y_true, y_pred, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """Of the examples of a label, the fraction predicted as it: tp / (tp + fn).

    >>> recall([1, 1, 0, 1], [1, 0, 0, 1])
    0.6666666666666666
    """
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
                                           zero_division=zero_division)[1]


def fbeta_score(y_true, y_pred, beta, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """The weighted harmonic mean of precision and recall, recall counting beta times as much.

    >>> round(fbeta_score([1, 1, 0, 1], [1, 0, 0, 1], beta=2), 4)
    0.7143
    """
    return precision_recall_fscore_support(y_true, y_pred, beta=beta, labels=labels, pos_label=pos_label,
                                           average=average, zero_division=zero_division)[2]


def f1_score(y_true, y_pred, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """The harmonic mean of precision and recall, 2 p r / (p + r).

    >>> f1_score([1, 1, 0, 1], [1, 0, 0, 1])
    0.8
    """
    return fbeta_score(y_true, y_pred, 1.0, labels, pos_label, average, zero_division)


def classification_report(y_true, y_pred, labels=None, target_names=None, digits=2, zero_division=0.0,
                          output_dict=False):
    """A table of precision, recall, F1 and support per label, then the accuracy and the macro
    and support-weighted averages; output_dict=True gives the same numbers as a dict.

    >>> print(classification_report([0, 0, 1, 1], [0, 1, 1, 1], target_names=["cat", "dog"]))
                  precision    recall  f1-score   support
    <BLANKLINE>
             cat       1.00      0.50      0.67         2
             dog       0.67      1.00      0.80         2
    <BLANKLINE>
        accuracy                           0.75         4
       macro avg       0.83      0.75      0.73         4
    weighted avg       0.83      0.75      0.73         4
    """
    y_true, y_pred = label_pair(y_true, y_pred)
    labels = checked_labels(y_true, y_pred, labels)
    names = [str(label) for label in labels] if target_names is None else [str(name) for name in target_names]
    if len(names) != len(labels):
        raise ValueError(f"target_names must name each of the {len(labels)} labels, got {len(names)} names")
    columns = ("precision", "recall", "f1-score", "support")
    per_label = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=zero_division)
    rows = {name: dict(zip(columns, (float(p), float(r), float(f), int(s)))) for name, p, r, f, s in
            zip(names, *per_label)}
    total = len(y_true)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                     zero_division=zero_division)
        rows[f"{average} avg"] = dict(zip(columns, (p, r, f, total)))
    if output_dict:
        return {**{name: rows[name] for name in names}, "accuracy": accuracy(y_true, y_pred),
                **{key: rows[key] for key in ("macro avg", "weighted avg")}}
    width = max(len("weighted avg"), *(len(name) for name in names))
    number = f"{{:>9.{digits}f}} "
    header = " " * width + "".join(f"{column:>10}" for column in columns)

    def line(name, values):
        return f"{name:>{width}} " + "".join(number.format(v) for v in values[:3]) + f"{values[3]:>9}"

    body = [line(name, list(rows[name].values())) for name in names]
    accuracy_line = f"{'accuracy':>{width}} " + " " * 20 + number.format(accuracy(y_true, y_pred)) + f"{total:>9}"
    averages = [line(key, list(rows[key].values())) for key in ("macro avg", "weighted avg")]
    return "\n".join([header, ""] + body + ["", accuracy_line] + averages)


class GroupMetric:
    """A metric per group: `by_group` {group: value} (groups sorted), `mean` their unweighted mean
    (each group counts once, however many examples it has), `worst_group` and `best_group`
    (for "error" the highest value is the worst, for any other metric the lowest), `counts`
    {group: examples}; str() is a table."""

    def __init__(self, name, by_group, counts):
        self.name, self.by_group, self.counts = name, by_group, counts
        self.mean = float(np.mean(list(by_group.values())))
        self.worst_group = min(by_group, key=by_group.get) if name != "error" else max(by_group, key=by_group.get)
        self.best_group = max(by_group, key=by_group.get) if name != "error" else min(by_group, key=by_group.get)

    def __repr__(self):
        return f"GroupMetric({self.name!r}, mean={self.mean:.4g}, groups={len(self.by_group)})"

    def __str__(self):
        width = max(len("mean of groups"), *(len(str(g)) for g in self.by_group))
        lines = [f"{'group':<{width}}  {self.name:>10}  {'examples':>8}"]
        lines += [f"{str(g):<{width}}  {v:>10.4f}  {self.counts[g]:>8}" for g, v in self.by_group.items()]
        lines.append(f"{'mean of groups':<{width}}  {self.mean:>10.4f}  {sum(self.counts.values()):>8}")
        return "\n".join(lines)


def error(y_true, y_pred):
    """The fraction of labels predicted wrongly, 1 - accuracy.

    >>> error([0, 1, 2, 2], [0, 1, 1, 2])
    0.25
    """
    return 1.0 - accuracy(y_true, y_pred)


_GROUP_METRICS = {"accuracy": accuracy, "error": error}


def group_metric(y_true, y_pred, groups, metric="error"):
    """`metric` computed separately on the examples of each group (e.g. the error per country),
    and the unweighted mean over groups, so a small group weighs as much as a large one.

    y_true, y_pred, groups (N,); metric is "error", "accuracy" or a callable
    (y_true, y_pred) -> float such as functools.partial(f1_score, average="macro").

    >>> result = group_metric([1, 0, 1, 1], [1, 0, 0, 0], groups=["us", "us", "in", "cn"])
    >>> result.by_group, result.mean
    ({'cn': 1.0, 'in': 1.0, 'us': 0.0}, 0.6666666666666666)
    """
    y_true, y_pred = label_pair(y_true, y_pred)
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != len(y_true):
        raise ValueError(f"groups must have one entry per example ({len(y_true)}), got shape {groups.shape}")
    if isinstance(metric, str):
        if metric not in _GROUP_METRICS:
            raise ValueError(f"metric must be a callable or one of {tuple(_GROUP_METRICS)}, got metric={metric!r}")
        name, metric = metric, _GROUP_METRICS[metric]
    elif callable(metric):
        name = getattr(metric, "__name__", getattr(getattr(metric, "func", None), "__name__", "metric"))
    else:
        raise ValueError(f"metric must be a callable or one of {tuple(_GROUP_METRICS)}, got metric={metric!r}")
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(counts)[:-1])  # example indices of each group, without a pass per group
    keys = [g.item() if hasattr(g, "item") else g for g in names]
    by_group = {key: float(metric(y_true[idx], y_pred[idx])) for key, idx in zip(keys, members)}
    return GroupMetric(name, by_group, dict(zip(keys, counts.tolist())))
