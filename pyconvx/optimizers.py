"""Optimizers that update parameter arrays in place, with torch.optim's update rules.

Each keeps its per-parameter state ("slots": momentum buffers, moment estimates, step counts)
under a string key, "layer_name/param_name" when driven by a model, so the state follows a
parameter whatever the order of the calls.

>>> w, g = np.ones(3, np.float32), np.full(3, 0.5, np.float32)
>>> SGD(learning_rate=0.1).apply_gradients([("w", w, g)])
>>> w.tolist()
[0.949999988079071, 0.949999988079071, 0.949999988079071]
"""
import numbers
import weakref

import numpy as np

from .layers.base import writable

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get"]


def _hyper(value, name, owner, low=0.0, high=None, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {name}={value!r}")
    value = float(value)
    if not np.isfinite(value) or value < low or (high is not None and (value > high or (high_open and value == high))):
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{owner}: {name} must be >= {low}{bound}, got {name}={value!r}")
    return value


class Optimizer:
    """Base class: apply_gradients() walks (key, param, grad) triples and calls _update on each."""

    def __init__(self, learning_rate):
        self.learning_rate = _hyper(learning_rate, "learning_rate", type(self).__name__)
        self.iterations = 0
        self._slots = {}
        self._owner = None

    def apply_gradients(self, items):
        """Updates each param in place from its grad; items are (key, param, grad) triples.

        Shapes: grad as param. The key names the parameter's state across calls.
        """
        self.iterations += 1
        for key, param, grad in items:
            grad = np.asarray(grad, dtype=param.dtype)
            if grad.shape != param.shape:
                raise ValueError(f"{type(self).__name__}: gradient of {key!r} has shape {grad.shape}, "
                                 f"parameter has {param.shape}")
            slots = self._slots.get(key)
            if slots is None:
                slots = self._slots[key] = {"step": 0}
            slots["step"] += 1
            self._update(writable(param), grad, slots)

    def step(self, layers):
        """One update of every trainable parameter of `layers` from the gradients they hold."""
        self.apply_gradients((f"{layer.name}/{key}", param, grad)
                             for layer in layers for key, param, grad in layer.trainable_parameters())

    def bind(self, model):
        """Ties the optimizer to `model`: its state (momentum, Adam's moments and step counts) is
        kept per parameter name, and two models of one architecture share names, so a second
        model would silently inherit the first one's state. ValueError for a second model."""
        owner = self._owner() if self._owner is not None else None
        if owner is not None and owner is not model:
            raise ValueError(f"{type(self).__name__}: this optimizer already trains another model; give each "
                             f"model an optimizer of its own")
        if owner is None and self._owner is not None:  # its model is gone: so is the meaning of its state
            self._slots, self.iterations = {}, 0
        self._owner = weakref.ref(model)

    @staticmethod
    def _slot(slots, name, like):
        if name not in slots:
            slots[name] = np.zeros_like(like)
        return slots[name]

    def _update(self, param, grad, slots):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay:
    g = grad + weight_decay * p; b = momentum * b + g; p -= lr * (g + momentum * b if nesterov
    else b) (torch.optim.SGD with dampening 0).

    >>> opt = SGD(learning_rate=0.01, momentum=0.9, nesterov=True)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(learning_rate)
        self.momentum = _hyper(momentum, "momentum", "SGD", high=1.0)
        self.nesterov = bool(nesterov)
        self.weight_decay = _hyper(weight_decay, "weight_decay", "SGD")
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")

    def _update(self, param, grad, slots):
        if self.weight_decay:
            grad = grad + param.dtype.type(self.weight_decay) * param
        if self.momentum:
            buf = self._slot(slots, "momentum", param)
            buf *= self.momentum
            buf += grad
            grad = grad + param.dtype.type(self.momentum) * buf if self.nesterov else buf
        param -= param.dtype.type(self.learning_rate) * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moment estimates, as torch.optim.Adam:
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + epsilon).
    weight_decay adds weight_decay * p to the gradient (L2, not AdamW).

    >>> opt = Adam(learning_rate=1e-3)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0):
        super().__init__(learning_rate)
        self.beta_1 = _hyper(beta_1, "beta_1", "Adam", high=1.0)
        self.beta_2 = _hyper(beta_2, "beta_2", "Adam", high=1.0)
        self.epsilon = _hyper(epsilon, "epsilon", "Adam")
        self.weight_decay = _hyper(weight_decay, "weight_decay", "Adam")

    def _update(self, param, grad, slots):
        if self.weight_decay:
            grad = grad + param.dtype.type(self.weight_decay) * param
        m, v, t = self._slot(slots, "m", param), self._slot(slots, "v", param), slots["step"]
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * grad * grad
        step_size = self.learning_rate / (1 - self.beta_1 ** t)
        denom = np.sqrt(v) / np.sqrt(1 - self.beta_2 ** t) + self.epsilon
        param -= (step_size * m / denom).astype(param.dtype, copy=False)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e): divide the gradient by a running root mean square, as
    torch.optim.RMSprop with alpha = rho: s = rho s + (1 - rho) g^2; with centered, subtract the
    squared running mean of g; p -= lr * g / (sqrt(s) + epsilon), through a momentum buffer when
    momentum > 0.

    >>> opt = RMSprop(learning_rate=1e-3, rho=0.9)
    """

    def __init__(self, learning_rate=1e-3, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0):
        super().__init__(learning_rate)
        self.rho = _hyper(rho, "rho", "RMSprop", high=1.0)
        self.momentum = _hyper(momentum, "momentum", "RMSprop", high=1.0)
        self.epsilon = _hyper(epsilon, "epsilon", "RMSprop")
        self.centered = bool(centered)
        self.weight_decay = _hyper(weight_decay, "weight_decay", "RMSprop")

    def _update(self, param, grad, slots):
        if self.weight_decay:
            grad = grad + param.dtype.type(self.weight_decay) * param
        square = self._slot(slots, "square", param)
        square *= self.rho
        square += (1 - self.rho) * grad * grad
        if self.centered:
            mean = self._slot(slots, "mean", param)
            mean *= self.rho
            mean += (1 - self.rho) * grad
            denom = np.sqrt(square - mean * mean) + param.dtype.type(self.epsilon)
        else:
            denom = np.sqrt(square) + param.dtype.type(self.epsilon)
        if self.momentum:
            buf = self._slot(slots, "momentum", param)
            buf *= self.momentum
            buf += grad / denom
            param -= param.dtype.type(self.learning_rate) * buf
        else:
            param -= param.dtype.type(self.learning_rate) * grad / denom


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(optimizer):
    """An Optimizer instance unchanged, or a new one with default settings from its name.

    >>> type(get("adam")).__name__
    'Adam'
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(f"optimizer must be an Optimizer or one of {tuple(_BY_NAME)}, got optimizer={optimizer!r}")
