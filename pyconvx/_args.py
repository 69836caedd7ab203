"""Argument normalisation for pyconvx.ops: arrays to C-contiguous float32, ints to pairs.

Only conversion and normalisation happen here; range checks (stride >= 1, padding >= 0, shape
agreement, overflow) are the C++ API's, so embedders and Python users get the same errors.
"""
import numbers

import numpy as np

_INT64_MAX = 2**63 - 1
_FLOAT32 = np.dtype(np.float32)


def as_float32(value, name):
    """Any real numeric array-like as a C-contiguous, aligned float32 array (copied only if
    needed: a float32 view into a byte buffer at an odd offset is contiguous but not aligned, and
    the C++ API refuses misaligned pointers)."""
    # An array that already is one first: np.require costs more than a small convolution's
    # Python side otherwise does (LeNet-5's layers take three of these a call).
    if type(value) is np.ndarray and value.dtype is _FLOAT32 and value.flags.c_contiguous and value.flags.aligned:
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return np.require(array, np.float32, ["C", "A"])


def as_int(value, name):
    """A Python int that fits in int64, from any integral number (bools refused)."""
    # A plain int first: the Integral check goes through the ABC machinery, and ops normalise a
    # dozen arguments a call (a tenth of a LeNet-5 training step's Python time).
    if type(value) is int and -_INT64_MAX <= value <= _INT64_MAX:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if abs(value) > _INT64_MAX:
        raise ValueError(f"{name}={value} does not fit in 64 bits")
    return value


def as_pair(value, name):
    """An int or a pair of ints as a tuple (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return as_int(value[0], name), as_int(value[1], name)
    number = as_int(value, name)
    return number, number


def as_shape4(value, name):
    """A 4-tuple of ints (N, C, H, W)."""
    try:
        dims = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of 4 ints (N, C, H, W), got {value!r}") from None
    if len(dims) != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got {dims!r}")
    return [as_int(d, name) for d in dims]


def conv_padding(padding, kernel_hw, stride, dilation, op):
    """Padding as (top, bottom, left, right) from an int, a pair (pad_h, pad_w), a 4-tuple
    (top, bottom, left, right), "valid" or "same".

    "same" follows torch: the total d*(k-1) is split with the extra row or column at the bottom
    or right, and is only defined for stride 1. A 4-tuple is passed through as given, so uneven
    splits (Keras' "same" at stride 2) need no padded copy of the input.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' requires stride 1, got stride={stride}")
            total_h = dilation[0] * (kernel_hw[0] - 1)
            total_w = dilation[1] * (kernel_hw[1] - 1)
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        raise ValueError(f"{op}: padding must be an int, a pair, a 4-tuple (top, bottom, left, right), 'valid' or "
                         f"'same', got padding={padding!r}")
    return padding_quad(padding, op)


def padding_quad(padding, op):
    """(top, bottom, left, right) from an int, a pair (pad_h, pad_w) or a 4-tuple."""
    if isinstance(padding, (tuple, list)) and len(padding) not in (2, 4):
        raise ValueError(f"{op}: padding must be an int, a pair (pad_h, pad_w) or a 4-tuple (top, bottom, left, "
                         f"right), got padding={padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(as_int(pad, "padding") for pad in padding)
    pad_h, pad_w = as_pair(padding, "padding")
    return (pad_h, pad_h, pad_w, pad_w)


def kernel_hw(weight):
    """(R, S) of a weight array, or (1, 1) when its shape is wrong (the C++ check then reports it)."""
    return weight.shape[2:4] if weight.ndim == 4 else (1, 1)
