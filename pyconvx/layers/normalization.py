"""BatchNormalization and LocalResponseNormalization, vectorised in NumPy over the channel axis."""
import numbers

import numpy as np

from ._padding import positive_int
from .base import Layer, writable

__all__ = ["BatchNormalization", "LocalResponseNormalization"]


def _real(value, name, owner, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {name}={value!r}")
    value = float(value)
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        raise ValueError(f"{owner}: {name} must be in {'(' if low_open else '['}{low}, {high}], got {name}={value!r}")
    return value


class BatchNormalization(Layer):
    """Normalises each channel with the batch's mean and variance while training, and with running
    averages at inference (or whenever the layer is not trainable), then scales by "gamma" and
    shifts by "beta".

    Shapes: (N, C, H, W) (statistics over N, H, W) or (N, features) (over N) -> the same shape;
    params "gamma", "beta" (C,); state "moving_mean", "moving_variance" (C,), updated as
    moving = momentum * moving + (1 - momentum) * batch. The batch variance is divided by M in the
    normalisation and by M - 1 in the running average (M values per channel), as torch does, so
    torch's running statistics carry over unchanged (torch's momentum is 1 - this momentum).

    >>> bn = BatchNormalization()
    >>> y = bn.forward(np.random.default_rng(0).normal(3.0, 2.0, (64, 4, 5, 5)), training=True)
    >>> bool(abs(y.mean()) < 1e-6 and abs(y.std() - 1) < 1e-3)
    True
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, name=None, **kwargs):
        owner = type(self).__name__
        self.momentum = _real(momentum, "momentum", owner, 0.0, 1.0)
        self.epsilon = _real(epsilon, "epsilon", owner, 0.0, None, low_open=True)
        super().__init__(name=name, **kwargs)

    def _build(self, input_shape, rng):
        if len(input_shape) not in (1, 3):
            raise self.shape_error(f"expected (N, C, H, W) or (N, features) input, got per-sample shape {input_shape}")
        channels = input_shape[0]
        self.params["gamma"] = np.ones(channels, np.float32)
        self.params["beta"] = np.zeros(channels, np.float32)
        self.state["moving_mean"] = np.zeros(channels, np.float32)
        self.state["moving_variance"] = np.ones(channels, np.float32)
        self._axes = (0,) if len(input_shape) == 1 else (0, 2, 3)
        self._bshape = (1, channels) + (1,) * (len(input_shape) - 1)
        return input_shape

    def _forward(self, x, training):
        self._batch_stats = training and self.trainable
        if self._batch_stats:
            count = x.size // max(x.shape[1], 1)
            if count < 2:  # a variance of one value is 0: the running variance would shrink towards it
                raise self.shape_error(f"training needs more than one value per channel to estimate a variance, "
                                       f"got input shape {x.shape}")
            mean, var = x.mean(axis=self._axes), x.var(axis=self._axes)
            keep = self.momentum
            moving_mean, moving_variance = writable(self.state["moving_mean"]), writable(self.state["moving_variance"])
            moving_mean *= keep
            moving_mean += (1 - keep) * mean
            moving_variance *= keep
            moving_variance += (1 - keep) * var * (count / max(count - 1, 1))
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        self._inv_std = (1.0 / np.sqrt(var + self.epsilon)).reshape(self._bshape)
        self._xhat = (x - mean.reshape(self._bshape)) * self._inv_std
        return self.params["gamma"].reshape(self._bshape) * self._xhat + self.params["beta"].reshape(self._bshape)

    def _to_network(self, net, inputs):
        return net.batch_norm(inputs[0], self.params["gamma"], self.params["beta"], self.state["moving_mean"],
                              self.state["moving_variance"], self.epsilon)

    def _backward(self, grad):
        grad_sum = grad.sum(axis=self._axes)
        grad_xhat_sum = (grad * self._xhat).sum(axis=self._axes)
        if self.trainable:
            self.grads["gamma"] = grad_xhat_sum.astype(np.float32)
            self.grads["beta"] = grad_sum.astype(np.float32)
        if not self.input_grad_needed:
            return None
        scale = self.params["gamma"].reshape(self._bshape) * self._inv_std
        if not self._batch_stats:
            return grad * scale
        # The batch mean and variance depend on every input too: remove the gradient's mean and
        # its projection on xhat, per channel.
        count = grad.size // max(grad.shape[1], 1)
        return scale * (grad - (grad_sum.reshape(self._bshape) + self._xhat * grad_xhat_sum.reshape(self._bshape))
                        / count)


def _window_sum(a, before, after):
    """Per channel c, the sum of a over channels c - before .. c + after (clipped at the edges).
    A loop over the window's offsets, each a whole-array add."""
    channels = a.shape[1]
    padded = np.pad(a, ((0, 0), (before, after)) + ((0, 0),) * (a.ndim - 2))
    total = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        total += padded[:, offset:offset + channels]
    return total


class LocalResponseNormalization(Layer):
    """AlexNet's normalisation across channels (Krizhevsky et al. 2012, section 3.3):

        y[c] = x[c] / (k + alpha * sum(x[c']**2 for c' within size // 2 of c)) ** beta

    alpha multiplies the plain sum, as in the paper (torch's LocalResponseNorm divides it by size
    first: its alpha is this alpha * size). An even size takes one more channel before than after.
    Shapes: (N, C, ...) -> the same shape.

    >>> LocalResponseNormalization(size=1, alpha=1.0, beta=1.0, k=0.0).forward(np.full((1, 2, 1, 1), 2.0)).ravel()
    array([0.5, 0.5])
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, name=None, **kwargs):
        owner = type(self).__name__
        self.size = positive_int(size, "size", owner)
        self.alpha = _real(alpha, "alpha", owner)
        self.beta = _real(beta, "beta", owner)
        self.k = _real(k, "k", owner)
        self._before, self._after = self.size // 2, (self.size - 1) // 2
        super().__init__(name=name, **kwargs)

    def _build(self, input_shape, rng):
        if len(input_shape) < 1:
            raise self.shape_error(f"expected (N, C, ...) input, got per-sample shape {input_shape}")
        return input_shape

    def _forward(self, x, training):
        self._x = x
        self._denom = self.k + self.alpha * _window_sum(x * x, self._before, self._after)
        self._y = x * self._denom ** -self.beta
        return self._y

    def _to_network(self, net, inputs):
        return net.lrn(inputs[0], self.size, self.alpha, self.beta, self.k)

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        # Each x[c] also enters the denominators of the channels whose window holds c: the
        # transposed window sums the terms of those channels.
        spread = _window_sum(grad * self._y / self._denom, self._after, self._before)
        return grad * self._denom ** -self.beta - 2 * self.alpha * self.beta * self._x * spread
