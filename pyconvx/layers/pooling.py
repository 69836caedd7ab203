"""Max, average and global average pooling layers on the C++ kernels."""
import numpy as np

from .. import ops
from ._padding import output_hw, positive_pair, resolve_padding
from .base import Layer

__all__ = ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "AdaptiveAveragePooling2D"]


class _Pooling2D(Layer):
    """Shared arguments and padding of the windowed pools.

    padding: "valid", "same" (ceil(H / stride) outputs, windows never count the padding, as Keras)
    or an int or pair (symmetric, as torch: max ignores the padding, average counts it).
    ceil_mode (not with "same") keeps a last window that hangs over the bottom or right edge, as
    torch's ceil_mode=True does (GoogLeNet's pools).
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", ceil_mode=False, name=None, **kwargs):
        owner = type(self).__name__
        self.pool_size = positive_pair(pool_size, "pool_size", owner)
        self.strides = self.pool_size if strides is None else positive_pair(strides, "strides", owner)
        resolve_padding(padding, (1, 1), (1, 1), (1, 1), (1, 1), owner)  # reject a bad spelling now
        self.ceil_mode = bool(ceil_mode)
        if self.ceil_mode and padding == "same":
            raise ValueError(f"{owner}: ceil_mode=True goes with 'valid' or numeric padding, not padding='same'")
        self.padding = padding
        super().__init__(name=name, **kwargs)

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise self.shape_error(f"expected (N, C, H, W) input, got per-sample shape {input_shape}")
        channels, height, width = input_shape
        pads = resolve_padding(self.padding, (height, width), self.pool_size, self.strides, (1, 1), self._describe())
        if not isinstance(self.padding, str) and any(2 * pad > size for pad, size in zip(pads[::2], self.pool_size)):
            # the kernels' rule (torch's): a window must always hold at least one real pixel
            raise ValueError(f"{self._describe()}: padding must be at most half of pool_size, got "
                             f"padding={self.padding!r} with pool_size={self.pool_size}")
        out_hw = output_hw((height, width), self.pool_size, self.strides, (1, 1), pads, self.shape_error,
                           self.ceil_mode)
        self._ops_padding = pads  # (top, bottom, left, right): uneven "same" splits included
        return (channels,) + out_hw

    def _pool_kwargs(self):
        return dict(kernel_size=self.pool_size, stride=self.strides, padding=self._ops_padding,
                    ceil_mode=self.ceil_mode)


class MaxPooling2D(_Pooling2D):
    """Maximum over pool_size windows; strides default to pool_size.

    Shapes: (N, C, H, W) -> (N, C, P, Q).

    >>> MaxPooling2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    def _forward(self, x, training):
        y, self._indices = ops.max_pool2d(x, return_indices=True, **self._pool_kwargs())
        self._x_shape = x.shape  # the indices say where each maximum was: the input itself is not kept
        return y

    def _to_network(self, net, inputs):
        return net.pool2d(inputs[0], "max", self.pool_size, self.strides, self._ops_padding, self.ceil_mode)

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        return ops.max_pool2d_backward(grad, self._x_shape, indices=self._indices, **self._pool_kwargs())


class AveragePooling2D(_Pooling2D):
    """Mean over pool_size windows; strides default to pool_size.

    Shapes: (N, C, H, W) -> (N, C, P, Q).

    >>> AveragePooling2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """

    def _build(self, input_shape, rng):
        output_shape = super()._build(input_shape, rng)
        # Keras' "same" never counts its padding; numeric padding follows torch, which does.
        self._count_include_pad = not isinstance(self.padding, str)
        return output_shape

    def _forward(self, x, training):
        self._x_shape = x.shape
        return ops.avg_pool2d(x, count_include_pad=self._count_include_pad, **self._pool_kwargs())

    def _to_network(self, net, inputs):
        return net.pool2d(inputs[0], "avg", self.pool_size, self.strides, self._ops_padding, self.ceil_mode,
                          self._count_include_pad)

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        return ops.avg_pool2d_backward(grad, self._x_shape, count_include_pad=self._count_include_pad,
                                       **self._pool_kwargs())


class GlobalAveragePooling2D(Layer):
    """Mean of each channel's plane: (N, C, H, W) -> (N, C), ready for a Dense head.

    >>> GlobalAveragePooling2D().forward(np.ones((2, 3, 4, 4))).shape
    (2, 3)
    """

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise self.shape_error(f"expected (N, C, H, W) input, got per-sample shape {input_shape}")
        return input_shape[:1]

    def _forward(self, x, training):
        self._x_shape = x.shape
        return ops.global_avg_pool2d(x).reshape(x.shape[:2])

    def _to_network(self, net, inputs):
        return net.global_avg_pool2d(inputs[0])

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        return ops.global_avg_pool2d_backward(grad.reshape(grad.shape + (1, 1)), self._x_shape)


def _adaptive_weights(size, output_size):
    """(output_size, size) matrix averaging, for output i, inputs floor(i * size / output_size)
    to ceil((i + 1) * size / output_size) - 1: torch's adaptive windows, which may overlap."""
    index = np.arange(output_size)
    starts = index * size // output_size
    ends = -(-(index + 1) * size // output_size)
    inside = (np.arange(size) >= starts[:, None]) & (np.arange(size) < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(np.float32)


class AdaptiveAveragePooling2D(Layer):
    """Averages windows chosen so that any (H, W) gives an output_size (P, Q) map, as torch's
    AdaptiveAvgPool2d: the heads of AlexNet and VGG accept other image sizes than 224 this way.

    Shapes: (N, C, H, W) -> (N, C, P, Q). Each axis is a product with a small averaging matrix
    (P x H, Q x W), so the windows may differ in size and overlap, and output larger than input
    repeats values.

    >>> AdaptiveAveragePooling2D(2).forward(np.arange(9.0).reshape(1, 1, 3, 3))[0, 0].tolist()
    [[2.0, 3.0], [5.0, 6.0]]
    """

    def __init__(self, output_size, name=None, **kwargs):
        self.output_size = positive_pair(output_size, "output_size", type(self).__name__)
        super().__init__(name=name, **kwargs)

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise self.shape_error(f"expected (N, C, H, W) input, got per-sample shape {input_shape}")
        self._rows = _adaptive_weights(input_shape[1], self.output_size[0])
        self._cols = _adaptive_weights(input_shape[2], self.output_size[1]).T.copy()
        self._identity = tuple(input_shape[1:]) == self.output_size
        return (input_shape[0],) + self.output_size

    def _forward(self, x, training):
        return x if self._identity else np.matmul(np.matmul(self._rows, x), self._cols)

    def _to_network(self, net, inputs):
        return net.identity(inputs[0]) if self._identity else net.adaptive_avg_pool2d(inputs[0], self.output_size)

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        if self._identity:
            return grad
        return np.matmul(np.matmul(self._rows.T, grad), self._cols.T)
