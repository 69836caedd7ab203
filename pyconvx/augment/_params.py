"""Argument checks shared by the transforms: each error names the transform, the parameter and
the value it got."""
import numbers

import numpy as np


def size_pair(owner, name, value):
    """An int n -> (n, n); an (h, w) pair -> (h, w); both positive."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and v > 0 for v in pair):
        raise ValueError(f"{owner}: {name} must be a positive int or a (height, width) pair of them, "
                         f"got {name}={value!r}")
    return int(pair[0]), int(pair[1])


def probability(owner, value, name="p"):
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1], got {name}={value!r}")
    return float(value)


def non_negative(owner, name, value):
    if not isinstance(value, numbers.Real) or not value >= 0:  # `not >=` also refuses NaN
        raise ValueError(f"{owner}: {name} must be a number >= 0, got {name}={value!r}")
    return float(value)


def symmetric_range(owner, name, value):
    """torchvision's convention for `degrees` and friends: a number d means (-d, d) and must be
    >= 0; a (min, max) pair is taken as it is, min <= max."""
    if isinstance(value, numbers.Real):
        bounds = (-float(non_negative(owner, name, value)), float(value))
    else:
        bounds = tuple(float(v) for v in value)
        if len(bounds) != 2 or not bounds[0] <= bounds[1]:
            raise ValueError(f"{owner}: {name} must be a number or a (min, max) pair with min <= max, "
                             f"got {name}={value!r}")
    return bounds


def ordered_pair(owner, name, value):
    """A (min, max) pair with 0 <= min <= max (scale and ratio ranges)."""
    try:
        bounds = tuple(float(v) for v in value)
    except TypeError:
        bounds = ()
    if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"{owner}: {name} must be a (min, max) pair with 0 <= min <= max, got {name}={value!r}")
    return bounds


def channel_values(owner, name, value, positive=False):
    """A number or a sequence of per-channel numbers, as a (C, 1, 1) float64 array."""
    values = np.asarray(value, dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)) or (positive and not np.all(values > 0)):
        need = "positive" if positive else "finite"
        raise ValueError(f"{owner}: {name} must be {need} numbers, got {name}={value!r}")
    return values[:, None, None]
