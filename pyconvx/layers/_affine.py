"""What Conv2D and Dense share: a kernel, an optional bias, an activation after them."""
from . import initializers
from .activation import check_activation
from .base import Layer


class AffineLayer(Layer):
    """A layer computing activation(kernel applied to x + bias); subclasses define the product."""

    def __init__(self, activation, use_bias, kernel_initializer, bias_initializer, name, trainable):
        owner = type(self).__name__
        self.activation = check_activation(activation, owner)
        self.use_bias = bool(use_bias)
        self._kernel_init = initializers.get(kernel_initializer, owner, "kernel_initializer")
        self._bias_init = initializers.get(bias_initializer, owner, "bias_initializer")
        super().__init__(name=name, trainable=trainable)

    def _create_params(self, kernel_shape, bias_size, fan_in, fan_out, rng):
        self.params["kernel"] = self._kernel_init(kernel_shape, fan_in, fan_out, rng)
        if self.use_bias:
            self.params["bias"] = self._bias_init((bias_size,), fan_in, fan_out, rng)
