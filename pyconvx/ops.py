"""Functional convolution, pooling and GEMM ops over NCHW float32 arrays.

Each op converts its inputs (any real array-like; float64, strided, Fortran-ordered and read-only
arrays are accepted and never written to), normalises its arguments, and makes one call into the
C++ kernels, which validate everything and raise ValueError naming the bad parameter. Outputs are
new C-contiguous float32 arrays. Names and semantics follow torch.nn.functional.
"""
import numpy as np

from . import _core
from ._args import as_float32, as_int, as_pair, as_shape4, conv_padding, kernel_hw, padding_quad

__all__ = [
    "conv2d",
    "conv2d_algorithm",
    "conv2d_workspace_size",
    "measure_conv_algorithms",
    "CONV_ALGORITHMS",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "im2col",
    "col2im",
    "conv_output_size",
    "correlate2d",
    "convolve2d",
    "gemm",
    "bilinear_sample",
    "affine_sample",
    "crop_windows",
]

_ACTIVATIONS = {None: False, "linear": False, "relu": True}

#: The names conv2d's `algorithm` accepts, "auto" first.
CONV_ALGORITHMS = tuple(_core.conv_algorithm_names())


def _conv_args(x, weight, stride, padding, dilation, groups, op):
    x = as_float32(x, "x")
    weight = as_float32(weight, "weight")
    stride = as_pair(stride, "stride")
    dilation = as_pair(dilation, "dilation")
    pads = conv_padding(padding, kernel_hw(weight), stride, dilation, op)
    return x, weight, stride, pads, dilation, as_int(groups, "groups")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, algorithm="auto"):
    """2-D convolution (cross-correlation) of a batch, with optional bias and fused ReLU.

    Shapes: x (N, C, H, W), weight (K, C // groups, R, S), bias (K,) -> (N, K, P, Q) with
    P = conv_output_size(H, R, pad_h, stride_h, dilation_h) and likewise Q.
    padding is an int, a pair (pad_h, pad_w), a 4-tuple (top, bottom, left, right) for uneven
    padding (P = (H + top + bottom - dilation_h * (R - 1) - 1) // stride_h + 1), "valid" (no
    padding) or "same" (output size equals input size; stride 1 only; the odd extra goes to the
    bottom/right as in torch).
    activation is None or "relu" (applied in the kernel, after the bias).
    algorithm is "auto" (chosen from the shape; see conv2d_algorithm) or forces one:
    "implicit_gemm" (any shape), "pointwise" (1x1, stride 1, no padding), "direct"
    (any shape: the image read in place, no patches packed) or "winograd" (3x3, stride 1, dilation 1, groups 1: Winograd F(4x4, 3x3), fewer
    multiplications at a relative error of about 1e-5 instead of 1e-7), "depthwise" (groups = C)
    "broadcast" (groups 1: input pixels broadcast against vectors of filters, for layers with
    few input channels) or "pixel_gemm" (groups 1: a GEMM with the output pixels as rows and the
    filters as columns, for small maps); forcing one that cannot compute the shape raises ValueError.

    >>> y = conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3)), padding="same", activation="relu")
    >>> y.shape
    (1, 4, 8, 8)
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"conv2d: activation must be None or 'relu', got activation={activation!r}")
    x, weight, stride, pads, dilation, groups = _conv_args(x, weight, stride, padding, dilation, groups, "conv2d")
    if bias is not None:
        bias = as_float32(bias, "bias")
    return _core.conv2d(x, weight, bias, stride, pads, dilation, groups, _ACTIVATIONS[activation],
                        _algorithm_name(algorithm, "conv2d"))


def _algorithm_name(algorithm, op):
    if not isinstance(algorithm, str):
        raise TypeError(f"{op}: algorithm must be a string, got {algorithm!r}")
    return algorithm


def conv2d_algorithm(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1):
    """The algorithm conv2d(..., algorithm="auto") picks for these shapes and parameters.

    Arguments as conv2d's (padding: an int, a pair, a 4-tuple (top, bottom, left, right),
    "valid" or "same"); x_shape (N, C, H, W), weight_shape (K, C // groups, R, S).

    >>> conv2d_algorithm((8, 64, 56, 56), (256, 64, 1, 1))
    'pointwise'
    >>> conv2d_algorithm((8, 128, 28, 28), (128, 128, 3, 3), padding=1)
    'winograd'
    >>> conv2d_algorithm((64, 1, 32, 32), (6, 1, 5, 5))
    'direct'
    """
    x_shape, weight_shape = as_shape4(x_shape, "x_shape"), as_shape4(weight_shape, "weight_shape")
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, weight_shape[2:4], stride, dilation, "conv2d_algorithm")
    return _core.conv2d_algorithm(x_shape, weight_shape, stride, pads, dilation, as_int(groups, "groups"))


def measure_conv_algorithms(x_shape, weight, stride=1, padding=0, dilation=1, groups=1):
    """{algorithm: milliseconds} for every algorithm that can compute a convolution of inputs of
    x_shape with these weights, each with its weights prepared as an inference plan keeps them
    (packed or transformed once) and timed on the current threads: the best of three runs after
    a warm-up, the heuristic's choice (conv2d_algorithm) first. What a plan built with
    autotuning measures to choose (pyconvx.set_autotune). Arguments as conv2d_algorithm's, with
    the weights themselves.

    >>> times = measure_conv_algorithms((1, 16, 14, 14), np.ones((32, 16, 3, 3)), padding=1)
    >>> next(iter(times)) == conv2d_algorithm((1, 16, 14, 14), (32, 16, 3, 3), padding=1)
    True
    >>> all(ms > 0 for ms in times.values())
    True
    """
    x_shape, weight = as_shape4(x_shape, "x_shape"), as_float32(weight, "weight")
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, kernel_hw(weight), stride, dilation, "measure_conv_algorithms")
    times = _core.measure_conv_algorithms(weight, x_shape, stride, pads, dilation, as_int(groups, "groups"))
    return {name: 1e3 * seconds for name, seconds in times.items()}


def conv2d_workspace_size(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """The most scratch memory, in bytes, conv2d holds for these shapes and parameters with the
    current thread count: its packed weights and each thread's buffers, as workspace_usage()
    counts them (not the input or the output). Arguments as conv2d_algorithm's, and `algorithm`
    as conv2d's.

    >>> conv2d_workspace_size((8, 64, 56, 56), (64, 64, 3, 3), padding=1) > 0
    True
    >>> conv2d_workspace_size((0, 64, 56, 56), (64, 64, 3, 3), padding=1)
    0
    """
    x_shape, weight_shape = as_shape4(x_shape, "x_shape"), as_shape4(weight_shape, "weight_shape")
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, weight_shape[2:4], stride, dilation, "conv2d_workspace_size")
    return _core.conv2d_workspace_size(x_shape, weight_shape, stride, pads, dilation, as_int(groups, "groups"),
                                       _algorithm_name(algorithm, "conv2d_workspace_size"))


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, needs=(True, True, True)):
    """Gradients of conv2d (without its activation) with respect to x, weight and bias.

    Shapes: grad_out (N, K, P, Q) as conv2d's output, x and weight as given to conv2d.
    stride, padding (including a 4-tuple (top, bottom, left, right)), dilation and groups as
    given to conv2d.
    needs: which of (grad_x, grad_weight, grad_bias) to compute; the others come back as None.

    >>> x, w = np.random.rand(2, 3, 8, 8), np.random.rand(4, 3, 3, 3)
    >>> gx, gw, gb = conv2d_backward(np.ones((2, 4, 6, 6)), x, w)
    >>> gx.shape, gw.shape, gb.shape
    ((2, 3, 8, 8), (4, 3, 3, 3), (4,))
    """
    x, weight, stride, pads, dilation, groups = _conv_args(
        x, weight, stride, padding, dilation, groups, "conv2d_backward"
    )
    if isinstance(needs, str) or not hasattr(needs, "__len__") or len(needs) != 3:
        raise TypeError(f"conv2d_backward: needs must be three flags (grad_x, grad_weight, grad_bias), "
                        f"got needs={needs!r}")
    need_x, need_w, need_b = (bool(n) for n in needs)
    grad_out = as_float32(grad_out, "grad_out")
    return _core.conv2d_backward(grad_out, x, weight, stride, pads, dilation, groups, need_x, need_w, need_b)


def _pool_args(kernel_size, stride, padding, op):
    kernel = as_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else as_pair(stride, "stride")
    return kernel, stride, padding_quad(padding, op)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, return_indices=False):
    """Max pooling over (kernel_h, kernel_w) windows; stride defaults to the kernel size.

    Shapes: x (N, C, H, W) -> (N, C, P, Q). padding is an int, a pair (pad_h, pad_w) or a
    4-tuple (top, bottom, left, right) (an uneven split: Keras' "same"), each side at most half
    the kernel; it never wins a window. NaN propagates. With return_indices, also returns int64 indices (N, C, P, Q) of
    each maximum as the flat position h * W + w in its plane, as torch does.

    >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    kernel, stride, pad = _pool_args(kernel_size, stride, padding, "max_pool2d")
    return _core.max_pool2d(as_float32(x, "x"), kernel, stride, pad, bool(ceil_mode), bool(return_indices))


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, indices=None):
    """Gradient of max_pool2d with respect to x: grad_out routed to each window's maximum.

    Shapes: grad_out (N, C, P, Q), x (N, C, H, W) -> (N, C, H, W). When indices (from
    max_pool2d(..., return_indices=True)) are given they are used instead of recomputing, and x
    may be just its shape (a caller then need not keep the input alive).

    >>> y, idx = max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> max_pool2d_backward(np.ones_like(y), (1, 1, 4, 4), 2, indices=idx)[0, 0, 1].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    kernel, stride, pad = _pool_args(kernel_size, stride, padding, "max_pool2d_backward")
    if indices is not None:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"max_pool2d_backward: indices must be an integer array, got dtype {indices.dtype}")
        indices = np.require(indices, np.int64, ["C", "A"])
        if isinstance(x, (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in x):
            return _core.max_pool2d_backward_from_indices(as_float32(grad_out, "grad_out"), as_shape4(x, "x"),
                                                          indices, kernel, stride, pad, bool(ceil_mode))
    return _core.max_pool2d_backward(
        as_float32(grad_out, "grad_out"), as_float32(x, "x"), indices, kernel, stride, pad, bool(ceil_mode)
    )


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling; stride defaults to the kernel size.

    Shapes: x (N, C, H, W) -> (N, C, P, Q). padding as for max_pool2d (a 4-tuple (top, bottom,
    left, right) for an uneven split). With count_include_pad the divisor counts the zero
    padding inside the window (torch's default), otherwise only the input elements.

    >>> avg_pool2d(np.ones((1, 1, 4, 4)), 2).shape
    (1, 1, 2, 2)
    """
    kernel, stride, pad = _pool_args(kernel_size, stride, padding, "avg_pool2d")
    return _core.avg_pool2d(as_float32(x, "x"), kernel, stride, pad, bool(ceil_mode), bool(count_include_pad))


def avg_pool2d_backward(grad_out, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of avg_pool2d with respect to its input, of shape x_shape (N, C, H, W)."""
    kernel, stride, pad = _pool_args(kernel_size, stride, padding, "avg_pool2d_backward")
    return _core.avg_pool2d_backward(
        as_float32(grad_out, "grad_out"), as_shape4(x_shape, "x_shape"), kernel, stride, pad, bool(ceil_mode),
        bool(count_include_pad),
    )


def global_avg_pool2d(x):
    """Mean over each plane: x (N, C, H, W) -> (N, C, 1, 1).

    >>> global_avg_pool2d(np.ones((2, 3, 5, 5))).shape
    (2, 3, 1, 1)
    """
    return _core.global_avg_pool2d(as_float32(x, "x"))


def global_avg_pool2d_backward(grad_out, x_shape):
    """Gradient of global_avg_pool2d: grad_out (N, C, 1, 1) spread evenly over x_shape."""
    return _core.global_avg_pool2d_backward(as_float32(grad_out, "grad_out"), as_shape4(x_shape, "x_shape"))


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """The patch matrix of x, as torch.nn.functional.unfold.

    Shapes: x (N, C, H, W) -> (N, C * R * S, P * Q); row (c * R + r) * S + s, column p * Q + q.
    padding as conv2d's, a 4-tuple (top, bottom, left, right) included.

    >>> im2col(np.ones((1, 2, 4, 4)), 3).shape
    (1, 18, 4)
    """
    kernel = as_pair(kernel_size, "kernel_size")
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, kernel, stride, dilation, "im2col")
    return _core.im2col(as_float32(x, "x"), kernel, stride, pads, dilation)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """The adjoint of im2col (torch's fold): patches summed back into an (N, C, H, W) array.

    Shapes: cols (N, C * R * S, P * Q) -> x_shape.
    """
    kernel = as_pair(kernel_size, "kernel_size")
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, kernel, stride, dilation, "col2im")
    return _core.col2im(as_float32(cols, "cols"), as_shape4(x_shape, "x_shape"), kernel, stride, pads, dilation)


def conv_output_size(n, f, padding=0, stride=1, dilation=1):
    """Output length of a convolution along one axis: floor((n + 2p - d(f - 1) - 1) / s) + 1.

    >>> conv_output_size(6, 3)      # a 6x6 image and a 3x3 filter give 4x4
    4
    >>> conv_output_size(7, 3, padding=1, stride=2)
    4
    """
    n, f = as_int(n, "n"), as_int(f, "f")
    p, s, d = as_int(padding, "padding"), as_int(stride, "stride"), as_int(dilation, "dilation")
    if n < 0 or f < 1:
        raise ValueError(f"conv_output_size: need n >= 0 and f >= 1, got n={n}, f={f}")
    if p < 0:
        raise ValueError(f"conv_output_size: padding must be >= 0, got padding={p}")
    if s < 1 or d < 1:
        raise ValueError(f"conv_output_size: stride and dilation must be >= 1, got stride={s}, dilation={d}")
    span = d * (f - 1) + 1
    if span > n + 2 * p:
        raise ValueError(f"conv_output_size: kernel span {span} is larger than the padded input {n + 2 * p}")
    return (n + 2 * p - span) // s + 1


def _as_image(value, name):
    array = as_float32(value, name)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {array.shape}")
    return array


def _full_correlation(image, kernel):
    kh, kw = kernel.shape
    return _core.conv2d(image[None, None], kernel[None, None], None, (1, 1), (kh - 1, kh - 1, kw - 1, kw - 1),
                        (1, 1), 1, False, "auto")[0, 0]


def _crop(full, image, kernel, mode, same_offset, op):
    """Cuts scipy.signal's "valid" or "same" region out of a "full" result."""
    (h, w), (kh, kw) = image.shape, kernel.shape
    if mode == "full":
        return full
    if mode == "same":
        top, left = same_offset(kh), same_offset(kw)
        return np.ascontiguousarray(full[top:top + h, left:left + w])
    if mode == "valid":
        if not ((h >= kh and w >= kw) or (h <= kh and w <= kw)):
            raise ValueError(f"{op}: in 'valid' mode one input must be at least as large as the other in every "
                             f"dimension, got image {image.shape} and kernel {kernel.shape}")
        top, left = min(h, kh) - 1, min(w, kw) - 1
        return np.ascontiguousarray(full[top:top + abs(h - kh) + 1, left:left + abs(w - kw) + 1])
    raise ValueError(f"{op}: mode must be 'valid', 'same' or 'full', got mode={mode!r}")


def correlate2d(image, kernel, mode="valid"):
    """Cross-correlation of one 2-D image with a 2-D kernel (no flip): what deep learning calls
    convolution. Agrees with scipy.signal.correlate2d for mode "valid", "same" or "full".

    >>> image = np.array([[10, 10, 10, 0, 0, 0]] * 6)
    >>> correlate2d(image, filters.vertical_edge)[0]
    array([ 0., 30., 30.,  0.], dtype=float32)
    """
    image, kernel = _as_image(image, "image"), _as_image(kernel, "kernel")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"correlate2d: mode must be 'valid', 'same' or 'full', got mode={mode!r}")
    return _crop(_full_correlation(image, kernel), image, kernel, mode, lambda k: k // 2, "correlate2d")


def convolve2d(image, kernel, mode="valid"):
    """The mathematician's convolution of one 2-D image with a 2-D kernel: the kernel is flipped
    in both axes first. Agrees with scipy.signal.convolve2d for mode "valid", "same" or "full".

    >>> convolve2d(np.eye(3), np.array([[1.0, 2.0]]), mode="full").shape
    (3, 4)
    """
    image, kernel = _as_image(image, "image"), _as_image(kernel, "kernel")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"convolve2d: mode must be 'valid', 'same' or 'full', got mode={mode!r}")
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return _crop(_full_correlation(image, flipped), image, kernel, mode, lambda k: (k - 1) // 2, "convolve2d")


def gemm(a, b, trans_a=False, trans_b=False):
    """Matrix product op(a) @ op(b) in float32, where op transposes when asked.

    Shapes: op(a) (M, K), op(b) (K, N) -> (M, N).

    >>> gemm(np.ones((2, 3)), np.ones((2, 4)), trans_a=True).shape
    (3, 4)
    """
    return _core.gemm(as_float32(a, "a"), as_float32(b, "b"), bool(trans_a), bool(trans_b))


def bilinear_sample(x, xs, ys, fill=0.0):
    """x (N, C, H, W) read at real-valued pixel positions: output pixel (p, q) of image n mixes
    the four pixels around column xs[n, p, q] and row ys[n, p, q] with bilinear weights, a
    neighbour outside the image counting as `fill` (a NaN position reads fill). Shapes: xs and ys
    (N, P, Q) -> (N, C, P, Q). With fill=0 this is torch's grid_sample (padding_mode="zeros",
    align_corners=True) on a grid given in pixels rather than in [-1, 1].

    >>> bilinear_sample(np.array([[[[0.0, 10.0]]]]), np.array([[[0.25, 1.5]]]), np.zeros((1, 1, 2)), fill=2.0)
    array([[[[2.5, 6. ]]]], dtype=float32)
    """
    return _core.bilinear_sample(as_float32(x, "x"), as_float32(xs, "xs"), as_float32(ys, "ys"), float(fill))


def affine_sample(x, maps, out_size=None, fill=0.0):
    """bilinear_sample at the positions of one affine map per image, computed on the fly: output
    pixel (p, q) of image n reads column maps[n, 0] @ (q, p, 1) and row maps[n, 1] @ (q, p, 1) of
    x[n]. Shapes: x (N, C, H, W), maps (N, 2, 3) (float64) -> (N, C, out_size) (default (H, W)).

    >>> shift_right = np.array([[[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]])   # column q reads q - 1
    >>> affine_sample(np.array([[[[1.0, 2.0, 3.0]]]]), shift_right)
    array([[[[0., 1., 2.]]]], dtype=float32)
    """
    x = as_float32(x, "x")
    out_size = x.shape[-2:] if out_size is None else as_pair(out_size, "out_size")
    return _core.affine_sample(x, np.asarray(maps, dtype=np.float64), tuple(out_size), float(fill))


def crop_windows(x, tops, lefts, size, fill=0.0):
    """The size = (h, w) window (an int: square) of each image of x (N, C, H, W) whose top left
    pixel is (tops[n], lefts[n]), `fill` where it reaches past the image: a crop of the image
    padded with `fill`, without the padded copy. tops and lefts are (N,) integers -> (N, C, h, w)
    float32.

    >>> crop_windows(np.arange(4.0).reshape(1, 1, 2, 2), [-1], [1], 2, fill=9.0)
    array([[[[9., 9.],
             [1., 9.]]]], dtype=float32)
    """
    x = as_float32(x, "x")
    offsets = []
    for name, value in (("tops", tops), ("lefts", lefts)):
        value = np.asarray(value)
        if value.dtype.kind not in "iu":
            raise TypeError(f"crop_windows: {name} must hold integers, got dtype {value.dtype}")
        offsets.append(value)
    return _core.crop_windows(x, offsets[0], offsets[1], tuple(as_pair(size, "size")), float(fill))
