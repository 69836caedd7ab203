"""Conv2D: a convolution, its bias and its non-linearity, on the C++ kernels."""
import numpy as np

from .. import ops
from ._affine import AffineLayer
from ._padding import output_hw, positive_int, positive_pair, resolve_padding
from .activation import activation_backward, activation_forward

__all__ = ["Conv2D"]


class Conv2D(AffineLayer):
    """2-D convolution layer over NCHW batches (Keras arguments, torch's weight layout).

    Shapes: input (N, C, H, W) -> output (N, filters, P, Q); params "kernel" (filters, C/groups,
    R, S) and "bias" (filters,). padding is "valid" (none), "same" (P = ceil(H / stride), the odd
    extra at the bottom and right, as Keras, passed to the kernels as uneven padding), an int or a
    pair (symmetric, as torch). ReLU is fused
    into the kernel; the other activations run after it in NumPy.

    >>> layer = Conv2D(8, 3, padding="same", activation="relu")
    >>> layer.forward(np.ones((2, 3, 16, 16), np.float32)).shape
    (2, 8, 16, 16)
    >>> layer.params["kernel"].shape
    (8, 3, 3, 3)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="he_normal", bias_initializer="zeros", name=None, trainable=True):
        owner = type(self).__name__
        self.filters = positive_int(filters, "filters", owner)
        self.kernel_size = positive_pair(kernel_size, "kernel_size", owner)
        self.strides = positive_pair(strides, "strides", owner)
        self.dilation_rate = positive_pair(dilation_rate, "dilation_rate", owner)
        self.groups = positive_int(groups, "groups", owner)
        if self.filters % self.groups:
            raise ValueError(f"{owner}: filters must be divisible by groups, got filters={filters}, groups={groups}")
        resolve_padding(padding, (1, 1), (1, 1), (1, 1), (1, 1), owner)  # reject a bad spelling now
        self.padding = padding
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, name, trainable)

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise self.shape_error(f"expected (N, C, H, W) input, got per-sample shape {input_shape}")
        channels, height, width = input_shape
        if channels % self.groups:
            raise self.shape_error(f"input channels {channels} are not divisible by groups={self.groups}")
        pads = resolve_padding(self.padding, (height, width), self.kernel_size, self.strides, self.dilation_rate,
                               self._describe())
        out_hw = output_hw((height, width), self.kernel_size, self.strides, self.dilation_rate, pads, self.shape_error)
        # ops takes (top, bottom, left, right): Keras' uneven "same" split needs no padded copy.
        self._ops_padding = pads
        r, s = self.kernel_size
        shape = (self.filters, channels // self.groups, r, s)
        fan_in, fan_out = channels // self.groups * r * s, self.filters // self.groups * r * s
        self._create_params(shape, self.filters, fan_in, fan_out, rng)
        return (self.filters,) + out_hw

    def _conv_kwargs(self):
        return dict(stride=self.strides, padding=self._ops_padding, dilation=self.dilation_rate, groups=self.groups)

    def _forward(self, x, training):
        fused = "relu" if self.activation == "relu" else None
        y = ops.conv2d(x, self.params["kernel"], self.params.get("bias"), activation=fused, **self._conv_kwargs())
        if self.activation not in ("linear", "relu"):
            y = activation_forward(self.activation, y)
        self._x, self._y = x, y
        return y

    def _backward(self, grad):
        grad = activation_backward(self.activation, grad, self._y)
        needs = (self.input_grad_needed, self.trainable, self.trainable and self.use_bias)
        if not any(needs):
            return None
        grad_x, grad_w, grad_b = ops.conv2d_backward(grad, self._x, self.params["kernel"], needs=needs,
                                                     **self._conv_kwargs())
        if self.trainable:
            self.grads["kernel"] = grad_w
            if self.use_bias:
                self.grads["bias"] = grad_b
        return grad_x

    def _to_network(self, net, inputs):
        return net.conv2d(inputs[0], self.params["kernel"], self.params.get("bias"), self.strides, self._ops_padding,
                          self.dilation_rate, self.groups, self.activation)

    def dense_equivalent_params(self):
        """Parameters a dense layer mapping this layer's whole input to its whole output would
        need (weights plus biases): what parameter sharing saves."""
        n_in, n_out = int(np.prod(self.input_shape)), int(np.prod(self.output_shape))
        return n_in * n_out + (n_out if self.use_bias else 0)
