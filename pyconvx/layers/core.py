"""Layers without parameters that reshape or regularise: Flatten and Dropout."""
import numbers

import numpy as np

from .base import Layer

__all__ = ["Flatten", "Dropout"]


class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C * H * W), in C order.

    >>> Flatten().forward(np.ones((2, 3, 4, 4))).shape
    (2, 48)
    """

    def _build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def _forward(self, x, training):
        self._x_shape = x.shape
        return x.reshape(x.shape[0], self.output_shape[0])  # -1 cannot be inferred for N = 0

    def _backward(self, grad):
        return grad.reshape(self._x_shape)

    def _to_network(self, net, inputs):
        return net.flatten(inputs[0])


class Dropout(Layer):
    """Zeroes each input with probability `rate` while training and scales the survivors by
    1 / (1 - rate), so that inference is the identity. Shapes: any (N, ...) -> the same.

    The mask comes from the layer's generator: `seed` here, or the one fit(seed=...) gives it.

    >>> layer = Dropout(0.5, seed=0)
    >>> y = layer.forward(np.ones((1, 1000)), training=True)
    >>> sorted(set(y.ravel().tolist())), 400 < int((y == 0).sum()) < 600
    ([0.0, 2.0], True)
    >>> bool((layer.forward(np.ones((1, 1000)), training=False) == 1).all())
    True
    """

    def __init__(self, rate, seed=None, name=None, **kwargs):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got rate={rate!r}")
        self.rate = float(rate)
        self._rng = np.random.default_rng(seed)
        super().__init__(name=name, **kwargs)

    def reseed(self, rng):
        self._rng = rng

    def _forward(self, x, training):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = 1.0 - self.rate
        self._mask = (self._rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
        return x * self._mask

    def _backward(self, grad):
        return grad if self._mask is None else grad * self._mask

    def _to_network(self, net, inputs):
        return net.identity(inputs[0])
