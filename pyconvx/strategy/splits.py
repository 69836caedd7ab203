"""Train/dev/test splits, and the split for when the data you care about is scarce.

Default sizes (`default_split_sizes`): dev and test each get 20% of the examples (60/20/20) up
to 50,000 examples; beyond that each stays at 10,000, enough to tell apart classifiers that
differ by a fraction of a percent, and the rest trains (a million examples: 98/1/1).

>>> x, y = np.arange(20).reshape(10, 2), np.arange(10) % 2
>>> x_train, y_train, x_dev, y_dev, x_test, y_test = train_dev_test_split(x, y, seed=0)
>>> len(x_train), len(x_dev), len(x_test)
(6, 2, 2)
"""
import collections
import numbers

import numpy as np

__all__ = ["train_dev_test_split", "default_split_sizes", "mismatched_split", "MismatchedSplit", "Subset"]

# Up to this many examples dev and test are 20% each; from here on they stay at 20% of it.
SMALL_DATA_LIMIT = 50_000
HELD_OUT_CAP = SMALL_DATA_LIMIT // 5

Subset = collections.namedtuple("Subset", "x y")
Subset.__doc__ = "Examples x (N, ...) and their labels y (N,)."


class MismatchedSplit(collections.namedtuple("MismatchedSplit", "train train_dev dev test")):
    """The four sets of `mismatched_split`, each a Subset(x, y): `train` (the training
    distribution: all sources plus the target examples not held out), `train_dev` (held out
    from that same distribution), `dev` and `test` (the target distribution only)."""

    def __str__(self):
        return "\n".join(f"{name:<9} {len(subset.x):>8} examples" for name, subset in zip(self._fields, self))


def default_split_sizes(n):
    """(n_dev, n_test) of the default rule: 20% each up to 50,000 examples, 10,000 each beyond.

    >>> default_split_sizes(1000), default_split_sizes(1_000_000)
    ((200, 200), (10000, 10000))
    """
    held_out = min(int(round(0.2 * n)), HELD_OUT_CAP)
    return held_out, held_out


def _size(value, n, name):
    """A size given as a fraction of n (a float in [0, 1)) or a count (an int in [0, n])."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.number)):
        raise ValueError(f"{name} must be a fraction in [0, 1) or a count of examples, got {name}={value!r}")
    if isinstance(value, (numbers.Integral, np.integer)):
        if not 0 <= value <= n:
            raise ValueError(f"{name} must be a count between 0 and {n} (the number of examples), got {name}={value}")
        return int(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1) or an int count, got {name}={value!r}")
    return int(round(value * n))


def _examples(x, y, what):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"{what}: x and y must have one entry per example, got shapes {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError(f"{what}: x and y are empty")
    return x, y


def _stratified_order(y, order):
    """`order` rearranged so that every contiguous run holds each class in about its overall
    proportion: each example's key is its position within its class as a fraction of the class
    size, so sorting by it interleaves the classes evenly."""
    _, classes, sizes = np.unique(y[order], return_inverse=True, return_counts=True)
    by_class = np.argsort(classes, kind="stable")
    rank = np.empty(len(order))
    rank[by_class] = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return order[np.argsort((rank + 0.5) / sizes[classes], kind="stable")]


def train_dev_test_split(x, y, dev=None, test=None, shuffle=True, seed=None, stratify=False):
    """Split examples into training, dev and test sets.

    x (N, ...), y (N,). dev and test are fractions of N (floats in [0, 1)) or counts (ints);
    None takes the default rule (`default_split_sizes`). Training gets the rest, at least one
    example. shuffle=False keeps the order (train first, then dev, then test); stratify=True
    gives each set every class of y in the same proportion (to within one example per class).

    Returns (x_train, y_train, x_dev, y_dev, x_test, y_test).

    >>> y = np.array([0] * 80 + [1] * 20)
    >>> parts = train_dev_test_split(np.zeros((100, 3)), y, dev=0.1, test=10, seed=1, stratify=True)
    >>> [int(part.sum()) for part in parts[1::2]]  # the positives in train, dev and test
    [16, 2, 2]
    """
    x, y = _examples(x, y, "train_dev_test_split")
    n = len(x)
    default_dev, default_test = default_split_sizes(n)
    n_dev = default_dev if dev is None else _size(dev, n, "dev")
    n_test = default_test if test is None else _size(test, n, "test")
    if n_dev + n_test >= n:
        raise ValueError(f"dev={dev!r} and test={test!r} take {n_dev} + {n_test} of the {n} examples, "
                         "leaving none for training")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"stratify=True needs class labels y of shape (N,), got shape {y.shape} "
                             "(one-hot? pass y.argmax(axis=1))")
        order = _stratified_order(y, order)
    train, held = order[:n - n_dev - n_test], order[n - n_dev - n_test:]
    dev_idx, test_idx = held[:n_dev], held[n_dev:]
    return x[train], y[train], x[dev_idx], y[dev_idx], x[test_idx], y[test_idx]


def _pool(sources, name):
    """(x, y) or a list of (x, y) pairs -> one (x, y)."""
    if isinstance(sources, tuple) and len(sources) == 2 and not isinstance(sources[0], tuple):
        sources = [sources]
    if not isinstance(sources, (list, tuple)) or not sources:
        raise ValueError(f"{name} must be an (x, y) pair or a non-empty list of them, got {type(sources).__name__}")
    pairs = []
    for i, pair in enumerate(sources):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be an (x, y) pair, got {type(pair).__name__}")
        pairs.append(_examples(*pair, f"{name}[{i}]"))
    shapes = {p[0].shape[1:] for p in pairs}
    if len(shapes) > 1:
        raise ValueError(f"{name}: every source's x must have the same example shape, got {sorted(shapes)}")
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def mismatched_split(train_sources, target, dev=None, test=None, train_dev=None, seed=None):
    """Split for a target distribution (the data the application sees, often scarce) and other,
    plentiful training data: dev and test come only from the target, the rest of the target joins
    the training data, and a training-dev set is held out of the training distribution so that
    variance (train-dev - train) can be told from data mismatch (dev - train-dev).

    train_sources: (x, y) or a list of (x, y) (e.g. web photos, several crawls); target: (x, y)
    (e.g. photos from the mobile app). dev and test are fractions or counts of the target (None:
    the default rule of `default_split_sizes` on the target's size); train_dev a fraction or
    count of the training distribution (None: as many as the dev set). Shuffled with `seed`.

    Returns a MismatchedSplit(train, train_dev, dev, test), each a Subset(x, y).

    >>> web = (np.zeros((200, 4)), np.zeros(200, int))
    >>> app = (np.ones((50, 4)), np.ones(50, int))
    >>> split = mismatched_split(web, app, dev=10, test=10, seed=0)
    >>> [len(part.x) for part in split], float(split.dev.x.mean()), float(split.test.x.mean())
    ([220, 10, 10, 10], 1.0, 1.0)
    >>> int(split.train.y.sum() + split.train_dev.y.sum())  # the other 30 app photos train
    30
    """
    source_x, source_y = _pool(train_sources, "train_sources")
    if not isinstance(target, (tuple, list)) or len(target) != 2:
        raise ValueError(f"target must be an (x, y) pair, got {type(target).__name__}")
    target_x, target_y = _examples(*target, "target")
    if target_x.shape[1:] != source_x.shape[1:]:
        raise ValueError(f"target examples have shape {target_x.shape[1:]}, the training sources {source_x.shape[1:]}")
    n_target = len(target_x)
    default_dev, default_test = default_split_sizes(n_target)
    n_dev = default_dev if dev is None else _size(dev, n_target, "dev")
    n_test = default_test if test is None else _size(test, n_target, "test")
    if n_dev + n_test > n_target:
        raise ValueError(f"dev={dev!r} and test={test!r} take {n_dev} + {n_test} examples, more than the "
                         f"{n_target} of the target")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_target)
    dev_idx, test_idx, rest = order[:n_dev], order[n_dev:n_dev + n_test], order[n_dev + n_test:]
    pool_x, pool_y = np.concatenate([source_x, target_x[rest]]), np.concatenate([source_y, target_y[rest]])
    n_pool = len(pool_x)
    n_train_dev = min(n_dev, n_pool - 1) if train_dev is None else _size(train_dev, n_pool, "train_dev")
    if n_train_dev >= n_pool:
        raise ValueError(f"train_dev={train_dev!r} takes all {n_pool} training examples, leaving none to train on")
    shuffled = rng.permutation(n_pool)
    held, train = shuffled[:n_train_dev], shuffled[n_train_dev:]
    return MismatchedSplit(Subset(pool_x[train], pool_y[train]), Subset(pool_x[held], pool_y[held]),
                           Subset(target_x[dev_idx], target_y[dev_idx]), Subset(target_x[test_idx], target_y[test_idx]))
