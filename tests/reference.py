"""Float64 NumPy reference implementations used as the oracle for pyconvx's tests.

Everything here is written for clarity rather than speed: the convolutions loop over kernel
offsets (r, s) and vectorise the rest with einsum; the pools loop over output positions.
All arrays are NCHW. Inputs are converted to float64 and results are float64.

Tolerance rule
--------------
pyconvx computes in float32. The rounding error of a sum of L products grows roughly like
sqrt(L), and with unit-scale random inputs the result itself also grows like sqrt(L), so we
compare with

    atol = rtol = 1e-4 * max(1, sqrt(L))

where L is the reduction length of one output element:
  * conv2d forward, grad_x (transposed conv):  C/groups * R * S  resp.  K/groups * R * S
  * conv2d grad_weight, grad_bias:             N * P * Q
  * gemm:                                      the inner dimension k
  * pooling, im2col:                           1 (no arithmetic reduction worth scaling for),
    avg pool uses the window size, col2im the number of overlapping patches (R * S).
`tolerance(L)` computes it and `assert_close(got, want, L)` applies it.

The bottom of this module holds the shared parameter grids (ConvCase, PoolCase) so that the
reference tests and the torch-oracle tests run over the same cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

# --------------------------------------------------------------------------------------------
# Tolerance
# --------------------------------------------------------------------------------------------


def tolerance(reduction: int = 1) -> float:
    """atol = rtol for a float32 result whose elements each sum `reduction` products."""
    return 1e-4 * max(1.0, math.sqrt(reduction))


def assert_close(got, want, reduction: int = 1, what: str = ""):
    """Shape, dtype-independent value comparison with the documented tolerance rule."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    tol = tolerance(reduction)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def pair(v) -> Tuple[int, int]:
    """An int or a 2-sequence -> (h, w)."""
    if isinstance(v, (tuple, list)):
        assert len(v) == 2
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_padding(padding, kernel_hw, dilation_hw) -> Tuple[int, int, int, int]:
    """Any accepted padding spelling -> (top, bottom, left, right).

    int p -> all four sides p; (ph, pw) -> top = bottom = ph, left = right = pw;
    a 4-tuple is taken as (top, bottom, left, right); "valid" -> zeros;
    "same" -> total d*(k-1) per axis, top/left = total // 2, the extra on bottom/right (torch).
    """
    r, s = kernel_hw
    dh, dw = dilation_hw
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            th, tw = dh * (r - 1), dw * (s - 1)
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(padding)
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def conv_output_size(n, f, pad_before, pad_after, stride, dilation) -> int:
    return (n + pad_before + pad_after - dilation * (f - 1) - 1) // stride + 1


def _offset_slices(r, s, dh, dw, sh, sw, p, q):
    """The (h, w) slices of the padded input that kernel tap (r, s) sees for all P x Q outputs."""
    return (
        slice(r * dh, r * dh + sh * (p - 1) + 1, sh),
        slice(s * dw, s * dw + sw * (q - 1) + 1, sw),
    )


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """y[n, k, p, q] = sum_{c in group(k), r, s} xpad[n, c, p*sh + r*dh, q*sw + s*dw] * w[k, c, r, s]."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    g = groups
    assert c == cg * g and k % g == 0
    kg = k // g
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    top, bottom, left, right = conv_padding(padding, (r, s), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    p = conv_output_size(h, r, top, bottom, sh, dh)
    q = conv_output_size(wd, s, left, right, sw, dw)
    xg = xp.reshape(n, g, cg, xp.shape[2], xp.shape[3])
    wg = w.reshape(g, kg, cg, r, s)
    y = np.zeros((n, g, kg, p, q))
    for i in range(r):
        for j in range(s):
            hs, ws = _offset_slices(i, j, dh, dw, sh, sw, p, q)
            y += np.einsum("ngcpq,gkc->ngkpq", xg[:, :, :, hs, ws], wg[:, :, :, i, j], optimize=True)
    y = y.reshape(n, k, p, q)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64).reshape(1, k, 1, 1)
    if activation == "relu":
        y = np.maximum(y, 0.0)
    else:
        assert activation is None
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients (grad_x, grad_weight, grad_bias) of conv2d (without activation)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    gy = np.asarray(grad_out, dtype=np.float64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    g = groups
    kg = k // g
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    top, bottom, left, right = conv_padding(padding, (r, s), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    p, q = gy.shape[2], gy.shape[3]
    assert gy.shape == (n, k, p, q)
    hp, wp = xp.shape[2], xp.shape[3]
    xg = xp.reshape(n, g, cg, hp, wp)
    wg = w.reshape(g, kg, cg, r, s)
    gyg = gy.reshape(n, g, kg, p, q)

    grad_xp = np.zeros_like(xg)
    grad_w = np.zeros((g, kg, cg, r, s))
    for i in range(r):
        for j in range(s):
            hs, ws = _offset_slices(i, j, dh, dw, sh, sw, p, q)
            grad_w[:, :, :, i, j] = np.einsum("ngcpq,ngkpq->gkc", xg[:, :, :, hs, ws], gyg, optimize=True)
            grad_xp[:, :, :, hs, ws] += np.einsum("gkc,ngkpq->ngcpq", wg[:, :, :, i, j], gyg, optimize=True)
    grad_x = grad_xp.reshape(n, c, hp, wp)[:, :, top : top + h, left : left + wd]
    grad_b = gy.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(grad_x), grad_w.reshape(k, cg, r, s), grad_b


# --------------------------------------------------------------------------------------------
# im2col / col2im (torch.nn.functional.unfold / fold)
# --------------------------------------------------------------------------------------------


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """cols[n, c*R*S + r*S + s, p*Q + q] = xpad[n, c, p*sh + r*dh, q*sw + s*dw]."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    r, s = pair(kernel_size)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    p = conv_output_size(h, r, ph, ph, sh, dh)
    q = conv_output_size(w, s, pw, pw, sw, dw)
    cols = np.zeros((n, c, r, s, p, q))
    for i in range(r):
        for j in range(s):
            hs, ws = _offset_slices(i, j, dh, dw, sh, sw, p, q)
            cols[:, :, i, j] = xp[:, :, hs, ws]
    return cols.reshape(n, c * r * s, p * q)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """The adjoint of im2col: every column entry is added back where it came from."""
    cols = np.asarray(cols, dtype=np.float64)
    n, c, h, w = x_shape
    r, s = pair(kernel_size)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    p = conv_output_size(h, r, ph, ph, sh, dh)
    q = conv_output_size(w, s, pw, pw, sw, dw)
    cols6 = cols.reshape(n, c, r, s, p, q)
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(r):
        for j in range(s):
            hs, ws = _offset_slices(i, j, dh, dw, sh, sw, p, q)
            xp[:, :, hs, ws] += cols6[:, :, i, j]
    return xp[:, :, ph : ph + h, pw : pw + w].copy()


# --------------------------------------------------------------------------------------------
# Pooling (torch semantics)
# --------------------------------------------------------------------------------------------


def pool_output_size(n, k, pad, stride, ceil_mode) -> int:
    """torch's rule: floor or ceil of (n + 2*pad - k)/stride, plus one; in ceil mode the last
    window must start inside the input or its left padding, else it is dropped."""
    num = n + 2 * pad - k
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + pad:
        out -= 1
    return out


def _pool_params(kernel_size, stride, padding):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    return kh, kw, sh, sw, ph, pw


def _window(o, k, stride, pad, n):
    """Output position o on one axis -> (start, end) clipped to the input, and the length of the
    window clipped only to the padded input (torch's count_include_pad divisor)."""
    start = o * stride - pad
    end_padded = min(start + k, n + pad)
    padded_len = end_padded - start
    return max(start, 0), min(end_padded, n), padded_len


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Returns (y, indices); indices are flat h*W + w positions within each (n, c) plane.

    Like torch's CPU kernel: the first maximum in row-major order wins ties; a NaN always wins
    (the last NaN of the window, since torch's scan replaces on every NaN); padding never wins.
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    kh, kw, sh, sw, ph, pw = _pool_params(kernel_size, stride, padding)
    p = pool_output_size(h, kh, ph, sh, ceil_mode)
    q = pool_output_size(w, kw, pw, sw, ceil_mode)
    y = np.zeros((n, c, p, q))
    idx = np.zeros((n, c, p, q), dtype=np.int64)
    for i in range(p):
        h0, h1, _ = _window(i, kh, sh, ph, h)
        for j in range(q):
            w0, w1, _ = _window(j, kw, sw, pw, w)
            win = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            length = win.shape[-1]
            isnan = np.isnan(win)
            last_nan = length - 1 - np.argmax(isnan[..., ::-1], axis=-1)
            first_max = np.argmax(np.where(isnan, -np.inf, win), axis=-1)
            local = np.where(isnan.any(axis=-1), last_nan, first_max)
            y[:, :, i, j] = np.take_along_axis(win, local[..., None], axis=-1)[..., 0]
            width = w1 - w0
            idx[:, :, i, j] = (h0 + local // width) * w + (w0 + local % width)
    return y, idx


def max_pool2d_backward(grad_out, x_shape, indices):
    """Scatter-add grad_out to the recorded argmax positions."""
    gy = np.asarray(grad_out, dtype=np.float64)
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h * w))
    flat_idx = np.asarray(indices).reshape(n * c, -1)
    flat_gy = gy.reshape(n * c, -1)
    for plane in range(n * c):
        np.add.at(gx[plane], flat_idx[plane], flat_gy[plane])
    return gx.reshape(n, c, h, w)


def _avg_divisor(hl, wl, h0, h1, w0, w1, count_include_pad):
    return hl * wl if count_include_pad else (h1 - h0) * (w1 - w0)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    kh, kw, sh, sw, ph, pw = _pool_params(kernel_size, stride, padding)
    p = pool_output_size(h, kh, ph, sh, ceil_mode)
    q = pool_output_size(w, kw, pw, sw, ceil_mode)
    y = np.zeros((n, c, p, q))
    for i in range(p):
        h0, h1, hl = _window(i, kh, sh, ph, h)
        for j in range(q):
            w0, w1, wl = _window(j, kw, sw, pw, w)
            div = _avg_divisor(hl, wl, h0, h1, w0, w1, count_include_pad)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(grad_out, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    gy = np.asarray(grad_out, dtype=np.float64)
    n, c, h, w = x_shape
    kh, kw, sh, sw, ph, pw = _pool_params(kernel_size, stride, padding)
    p, q = gy.shape[2], gy.shape[3]
    gx = np.zeros((n, c, h, w))
    for i in range(p):
        h0, h1, hl = _window(i, kh, sh, ph, h)
        for j in range(q):
            w0, w1, wl = _window(j, kw, sw, pw, w)
            div = _avg_divisor(hl, wl, h0, h1, w0, w1, count_include_pad)
            gx[:, :, h0:h1, w0:w1] += gy[:, :, i, j][:, :, None, None] / div
    return gx


def global_avg_pool2d(x):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool2d_backward(grad_out, x_shape):
    n, c, h, w = x_shape
    gy = np.asarray(grad_out, dtype=np.float64).reshape(n, c, 1, 1)
    return np.broadcast_to(gy / (h * w), (n, c, h, w)).copy()


# --------------------------------------------------------------------------------------------
# GEMM
# --------------------------------------------------------------------------------------------


def gemm(a, b, trans_a=False, trans_b=False):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


# --------------------------------------------------------------------------------------------
# Element-wise and normalisation layers
# --------------------------------------------------------------------------------------------


def _relu6(z):
    return np.where(np.isnan(z), z, np.clip(z, 0.0, 6.0))


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _times(z, f):
    with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, as in torch
        return z * f


# torch's definitions, in float64.
ACTIVATIONS = {
    "none": lambda z: z,
    "relu": lambda z: np.where(np.isnan(z), z, np.maximum(z, 0.0)),
    "relu6": _relu6,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "silu": lambda z: _times(z, _sigmoid(z)),
    "hardswish": lambda z: _times(z, _relu6(z + 3.0) / 6.0),
    "hardsigmoid": lambda z: _relu6(z + 3.0) / 6.0,
}


def activation(name, x):
    return ACTIVATIONS[name](np.asarray(x, np.float64))


def batch_norm_inference(x, gamma, beta, mean, variance, epsilon):
    """Per channel (axis 1): (x - mean) / sqrt(variance + epsilon) * gamma + beta."""
    x = np.asarray(x, np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    return (x - np.reshape(mean, shape)) * scale.reshape(shape) + np.reshape(beta, shape)


def softmax(x, axis=1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def lrn(x, size, alpha, beta, k):
    """AlexNet's local response normalisation across channels, alpha on the plain sum."""
    x = np.asarray(x, np.float64)
    channels = x.shape[1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        out[:, c] = x[:, c] / (k + alpha * (x[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta
    return out


def adaptive_avg_pool2d(x, out_h, out_w):
    """torch's adaptive windows: output i covers inputs floor(i n / m) to ceil((i + 1) n / m) - 1."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    out = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        r0, r1 = i * h // out_h, -(-(i + 1) * h // out_h)
        for j in range(out_w):
            c0, c1 = j * w // out_w, -(-(j + 1) * w // out_w)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


# --------------------------------------------------------------------------------------------
# Shared parameter grids
# --------------------------------------------------------------------------------------------

Padding = Union[int, Tuple[int, int], str]


@dataclass(frozen=True)
class ConvCase:
    id: str
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: Union[int, Tuple[int, int]] = 1
    padding: Padding = 0
    dilation: Union[int, Tuple[int, int]] = 1
    groups: int = 1
    bias: bool = True
    activation: Optional[str] = None

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def w_shape(self):
        return (self.k, self.c // self.groups, self.r, self.s)

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def out_shape(self):
        sh, sw = pair(self.stride)
        dh, dw = pair(self.dilation)
        top, bottom, left, right = conv_padding(self.padding, (self.r, self.s), (dh, dw))
        return (self.n, self.k, conv_output_size(self.h, self.r, top, bottom, sh, dh),
                conv_output_size(self.w, self.s, left, right, sw, dw))

    # Reduction lengths for the tolerance rule.
    def fwd_reduction(self):
        return (self.c // self.groups) * self.r * self.s

    def grad_x_reduction(self):
        return (self.k // self.groups) * self.r * self.s

    def grad_w_reduction(self):
        _, _, p, q = self.out_shape()
        return self.n * p * q

    def assert_backward_close(self, got, want, what=""):
        """(grad_x, grad_weight, grad_bias) against the reference's, each with its reduction's tolerance."""
        names = ("grad_x", "grad_weight", "grad_bias")
        reductions = (self.grad_x_reduction(), self.grad_w_reduction(), self.grad_w_reduction())
        for name, g, w, reduction in zip(names, got, want, reductions):
            assert_close(g, w, reduction, f"{self.id}{what} {name}")

    def make(self, rng):
        """(x, weight, bias or None) as float32 with unit-scale random values."""
        x = rng.standard_normal(self.x_shape).astype(np.float32)
        w = rng.standard_normal(self.w_shape).astype(np.float32)
        b = rng.standard_normal(self.k).astype(np.float32) if self.bias else None
        return x, w, b


CONV_CASES = [
    ConvCase("3x3_pad1", 2, 3, 8, 8, 4, 3, 3, padding=1),
    ConvCase("odd_nonsquare_img7x11_k3x5", 1, 3, 7, 11, 5, 3, 5),
    ConvCase("k5x2_pad_pair", 2, 2, 9, 6, 3, 5, 2, padding=(2, 1)),
    ConvCase("stride3_gt_kernel2", 2, 2, 11, 9, 3, 2, 2, stride=3),
    ConvCase("stride_pair_2x1_pad_1x2", 1, 3, 9, 8, 4, 3, 2, stride=(2, 1), padding=(1, 2)),
    ConvCase("stride2_k5_pad2", 2, 3, 13, 12, 6, 5, 5, stride=2, padding=2),
    ConvCase("dilation2_pad2", 1, 2, 9, 10, 3, 3, 3, padding=2, dilation=2),
    ConvCase("dilation_2x3_stride2", 2, 3, 12, 13, 2, 3, 2, stride=2, padding=(1, 0), dilation=(2, 3)),
    ConvCase("groups2", 2, 4, 7, 7, 6, 3, 3, padding=1, groups=2),
    ConvCase("groups3_k5_stride2", 1, 6, 11, 10, 9, 5, 5, stride=2, padding=2, groups=3),
    ConvCase("depthwise_c5", 2, 5, 8, 9, 5, 3, 3, padding=1, groups=5),
    ConvCase("depthwise_mult2_stride2", 1, 4, 9, 9, 8, 3, 3, stride=2, padding=1, groups=4),
    ConvCase("batch1_c1_k1", 1, 1, 6, 6, 1, 3, 3),
    ConvCase("c1_k3_nobias", 2, 1, 7, 5, 3, 2, 3, bias=False),
    ConvCase("relu_bias", 2, 3, 8, 7, 5, 3, 3, padding=1, activation="relu"),
    ConvCase("relu_nobias", 1, 4, 6, 9, 4, 3, 1, bias=False, activation="relu"),
    ConvCase("same_k3", 1, 3, 7, 8, 4, 3, 3, padding="same"),
    ConvCase("same_even_k2x4", 2, 2, 7, 9, 3, 2, 4, padding="same"),
    ConvCase("same_even_k4_dil2", 1, 3, 10, 9, 2, 4, 2, padding="same", dilation=2),
    ConvCase("same_even_k4x3_dil_3x1", 1, 2, 11, 8, 3, 4, 3, padding="same", dilation=(3, 1)),
    ConvCase("valid_k3x2", 2, 3, 6, 7, 2, 3, 2, padding="valid"),
    ConvCase("kernel_equals_image", 2, 3, 5, 4, 4, 5, 4),
    ConvCase("blocking_k17_c33_img65x7", 1, 33, 65, 7, 17, 3, 3, padding=1),
    ConvCase("blocking_k1_c33", 2, 33, 9, 7, 1, 3, 3),
    ConvCase("large_k150_crs630_pq324", 2, 70, 20, 20, 150, 3, 3, activation="relu"),
    ConvCase("batch5_odd_c19_k37_img23x29", 5, 19, 23, 29, 37, 3, 3, padding=1),
    ConvCase("big_image_c1_k8_200x150", 1, 1, 200, 150, 8, 5, 3, padding=(2, 1)),
    ConvCase("depthwise_c64_img14", 2, 64, 14, 14, 64, 3, 3, padding=1, groups=64),
    ConvCase("1x1_stride1", 2, 16, 9, 7, 12, 1, 1),
    ConvCase("1x1_stride1_c150_k70_img17x19", 2, 150, 17, 19, 70, 1, 1),
    ConvCase("1x1_stride1_k17_c33", 1, 33, 65, 7, 17, 1, 1, bias=False),
    ConvCase("1x1_stride2", 2, 8, 9, 9, 10, 1, 1, stride=2),
    ConvCase("1x1_pad1", 1, 5, 4, 6, 3, 1, 1, padding=1),
    ConvCase("1x1_groups2_relu", 2, 6, 5, 5, 4, 1, 1, groups=2, activation="relu"),
]


@dataclass(frozen=True)
class PoolCase:
    id: str
    n: int
    c: int
    h: int
    w: int
    kernel_size: Union[int, Tuple[int, int]]
    stride: Optional[Union[int, Tuple[int, int]]] = None
    padding: Union[int, Tuple[int, int]] = 0
    ceil_mode: bool = False

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    def kwargs(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode)

    def out_shape(self):
        kh, kw, sh, sw, ph, pw = _pool_params(self.kernel_size, self.stride, self.padding)
        return (self.n, self.c, pool_output_size(self.h, kh, ph, sh, self.ceil_mode),
                pool_output_size(self.w, kw, pw, sw, self.ceil_mode))

    def window_size(self):
        kh, kw = pair(self.kernel_size)
        return kh * kw


POOL_CASES = [
    PoolCase("k2_default_stride", 2, 3, 8, 8, 2),
    PoolCase("k2_odd_image_floor", 1, 2, 7, 9, 2),
    PoolCase("k2_odd_image_ceil", 1, 2, 7, 9, 2, ceil_mode=True),
    PoolCase("k3_s2_p1", 2, 3, 7, 7, 3, 2, 1),
    PoolCase("k3_s2_p1_ceil", 2, 3, 8, 8, 3, 2, 1, ceil_mode=True),
    PoolCase("k2_s2_p1_ceil_drops_last", 1, 2, 5, 5, 2, 2, 1, ceil_mode=True),
    PoolCase("k3_s3_ceil_partial", 1, 3, 10, 11, 3, 3, 0, ceil_mode=True),
    PoolCase("nonsquare_k2x3_s1x2_p1", 2, 2, 6, 9, (2, 3), (1, 2), 1),
    PoolCase("nonsquare_ceil_pad_pair", 1, 2, 9, 7, (3, 2), (2, 3), (1, 1), ceil_mode=True),
    PoolCase("stride3_gt_kernel2", 1, 2, 10, 9, 2, 3),
    PoolCase("k1_s1", 1, 3, 4, 5, 1, 1),
    PoolCase("k_equals_image", 2, 2, 5, 6, (5, 6)),
    PoolCase("k5_s1_p2", 1, 2, 6, 7, 5, 1, 2),
    PoolCase("k4_s3_p2_ceil", 1, 1, 11, 10, 4, 3, 2, ceil_mode=True),
]


def bilinear_sample(x, xs, ys, fill=0.0):
    """x (N, C, H, W) read at columns xs and rows ys (N, P, Q): each output mixes the four pixels
    around its position with bilinear weights, `fill` for those outside; a NaN position reads
    fill (the kernel clips positions to [-1, size], which changes no other value)."""
    x = np.asarray(x, np.float64)
    n, channels, height, width = x.shape
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    out = np.empty((n, channels) + xs.shape[1:])
    for b in range(n):
        for p in range(xs.shape[1]):
            for q in range(xs.shape[2]):
                col, row = xs[b, p, q], ys[b, p, q]
                col = -1.0 if np.isnan(col) else min(max(col, -1.0), width)
                row = -1.0 if np.isnan(row) else min(max(row, -1.0), height)
                out[b, :, p, q] = bilinear_point(x[b], col, row, fill)
    return out


def bilinear_point(image, col, row, fill):
    """One CHW image read at column `col`, row `row`: the four neighbours with bilinear weights,
    `fill` for those outside."""
    channels, height, width = image.shape
    c0, r0 = math.floor(col), math.floor(row)
    value = np.zeros(channels)
    for r, wr in ((r0, 1 - (row - r0)), (r0 + 1, row - r0)):
        for c, wc in ((c0, 1 - (col - c0)), (c0 + 1, col - c0)):
            inside = 0 <= r < height and 0 <= c < width
            value += wr * wc * (image[:, r, c] if inside else fill)
    return value


def crop_windows(x, tops, lefts, size, fill=0.0):
    """The size window of each image at (tops[n], lefts[n]), pixel by pixel, `fill` outside."""
    x = np.asarray(x, np.float64)
    n, channels, height, width = x.shape
    out = np.full((n, channels) + tuple(size), float(np.float32(fill)))
    for b in range(n):
        for i in range(size[0]):
            for j in range(size[1]):
                row, col = tops[b] + i, lefts[b] + j
                if 0 <= row < height and 0 <= col < width:
                    out[b, :, i, j] = x[b, :, row, col]
    return out


def affine_sample(x, maps, out_size, fill=0.0):
    """bilinear_sample at column maps[n, 0] @ (q, p, 1) and row maps[n, 1] @ (q, p, 1)."""
    maps = np.asarray(maps, np.float64)
    q, p = np.meshgrid(np.arange(out_size[1]), np.arange(out_size[0]))
    xs = maps[:, 0, 0, None, None] * q + maps[:, 0, 1, None, None] * p + maps[:, 0, 2, None, None]
    ys = maps[:, 1, 0, None, None] * q + maps[:, 1, 1, None, None] * p + maps[:, 1, 2, None, None]
    return bilinear_sample(x, xs, ys, fill)
