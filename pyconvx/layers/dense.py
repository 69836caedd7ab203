"""Dense: a fully connected layer on the C++ GEMM."""
import numpy as np

from .. import ops
from ._affine import AffineLayer
from ._padding import positive_int
from .activation import activation_backward, activation_forward

__all__ = ["Dense"]


class Dense(AffineLayer):
    """y = activation(x @ kernel + bias).

    Shapes: input (N, features) -> (N, units); params "kernel" (features, units) and "bias"
    (units,). Put a Flatten() or GlobalAveragePooling2D() before it after convolutions.

    >>> Dense(10, activation="softmax").forward(np.ones((4, 32))).shape
    (4, 10)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None, trainable=True):
        self.units = positive_int(units, "units", type(self).__name__)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, name, trainable)

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise self.shape_error(f"expected (N, features) input, got per-sample shape {input_shape} "
                                   f"(add Flatten() or GlobalAveragePooling2D() before it)")
        features = input_shape[0]
        self._create_params((features, self.units), self.units, features, self.units, rng)
        return (self.units,)

    def _forward(self, x, training):
        y = ops.gemm(x, self.params["kernel"])
        if self.use_bias:
            y += self.params["bias"]
        y = activation_forward(self.activation, y)
        self._x, self._y = x, y
        return y

    def _to_network(self, net, inputs):
        return net.dense(inputs[0], self.params["kernel"], self.params.get("bias"), self.activation)

    def _backward(self, grad):
        grad = np.ascontiguousarray(activation_backward(self.activation, grad, self._y), dtype=np.float32)
        if self.trainable:
            self.grads["kernel"] = ops.gemm(self._x, grad, trans_a=True)
            if self.use_bias:
                self.grads["bias"] = grad.sum(axis=0)
        if not self.input_grad_needed:
            return None
        return ops.gemm(grad, self.params["kernel"], trans_b=True)
