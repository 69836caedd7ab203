"""Keras padding ("valid", "same") for convolution and pooling layers.

Keras' "same" gives ceil(size / stride) outputs and puts an odd extra row or column of padding at
the bottom or right. Layers pass the (top, bottom, left, right) split straight to ops, whose
convolutions and pools take uneven padding: no padded copy of the input.
"""
from .._args import as_int, as_pair


def resolve_padding(padding, size_hw, kernel_hw, stride_hw, dilation_hw, owner):
    """(top, bottom, left, right) for "valid", "same", an int or a pair (height, width)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            pads = []
            for size, kernel, stride, dilation in zip(size_hw, kernel_hw, stride_hw, dilation_hw):
                outputs = -(-size // stride)
                total = max((outputs - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        raise ValueError(f"{owner}: padding must be 'valid', 'same', an int or a pair, got padding={padding!r}")
    pad_h, pad_w = as_pair(padding, "padding")
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"{owner}: padding must be >= 0, got padding={padding!r}")
    return (pad_h, pad_h, pad_w, pad_w)


def output_hw(size_hw, kernel_hw, stride_hw, dilation_hw, pads, error, ceil_mode=False):
    """(P, Q) of a window sliding over the padded input; error(message) when it does not fit.

    ceil_mode counts a last window that hangs over the end, as torch's pools do, unless it
    would start in the bottom or right padding."""
    out = []
    for axis, (size, kernel, stride, dilation, before, after) in enumerate(
            zip(size_hw, kernel_hw, stride_hw, dilation_hw, pads[0::2], pads[1::2])):
        span = dilation * (kernel - 1) + 1
        if span > size + before + after:
            raise error(f"window span {span} is larger than the padded input {size + before + after} "
                              f"along {'HW'[axis]} (input size {size}, padding {before}+{after})")
        room = size + before + after - span
        count = (-(-room // stride) if ceil_mode else room // stride) + 1
        if ceil_mode and (count - 1) * stride >= size + before:
            count -= 1
        out.append(count)
    return tuple(out)


def positive_pair(value, name, owner):
    pair = as_pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {name}={value!r}")
    return pair


def positive_int(value, name, owner):
    number = as_int(value, name)
    if number < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {name}={value!r}")
    return number
