"""Element-wise activations (relu, relu6, tanh, sigmoid, hardsigmoid, softmax over the channel
axis, linear) and the Activation and ReLU layers.

Each activation's derivative is written in terms of its output y, so a layer keeps only y for
the backward pass. Softmax normalises over axis 1: the classes of (N, classes) logits, the
channels of an NCHW map.
"""
import numpy as np

from .base import Layer

__all__ = ["Activation", "ReLU", "ACTIVATIONS", "activation_forward", "activation_backward", "check_activation"]


def _sigmoid(z):
    # tanh form: no overflow warning for large |z|, unlike 1 / (1 + exp(-z)).
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def _softmax(z):
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _softmax_backward(grad, y):
    # The Jacobian diag(y) - y y^T applied to grad without forming it.
    return y * (grad - (grad * y).sum(axis=1, keepdims=True))


# relu6 = min(max(z, 0), 6) (MobileNet's) and hardsigmoid = relu6(z + 3) / 6, torch's definitions.
_FORWARD = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "relu6": lambda z: np.clip(z, 0, 6),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hardsigmoid": lambda z: np.clip(z / 6 + 0.5, 0, 1),
    "softmax": _softmax,
}

_BACKWARD = {
    "linear": lambda grad, y: grad,
    "relu": lambda grad, y: grad * (y > 0),
    "relu6": lambda grad, y: grad * ((y > 0) & (y < 6)),
    "tanh": lambda grad, y: grad * (1 - y * y),
    "sigmoid": lambda grad, y: grad * y * (1 - y),
    "hardsigmoid": lambda grad, y: grad * (((y > 0) & (y < 1)) / grad.dtype.type(6)),
    "softmax": _softmax_backward,
}

#: The activation names every layer's `activation` argument accepts (None means "linear").
ACTIVATIONS = tuple(_FORWARD)


def check_activation(activation, owner):
    """The activation's canonical name ("linear" for None); ValueError naming `owner` otherwise."""
    name = "linear" if activation is None else activation
    if name not in _FORWARD:
        raise ValueError(f"{owner}: activation must be None or one of {ACTIVATIONS}, got activation={activation!r}")
    return name


def activation_forward(name, z):
    """The activation `name` applied to z (any shape; softmax over axis 1), in z's dtype.

    >>> activation_forward("softmax", np.zeros((1, 4)))
    array([[0.25, 0.25, 0.25, 0.25]])
    """
    return _FORWARD[name](z)


def activation_backward(name, grad, y):
    """Gradient with respect to the activation's input, given y = activation_forward(name, z)."""
    return _BACKWARD[name](grad, y)


class Activation(Layer):
    """An activation as a layer: Activation("tanh"), Activation("softmax"), ...

    Shapes: any (N, ...) -> the same shape.

    >>> Activation("relu").forward(np.array([[-1.0, 2.0]])).tolist()
    [[0.0, 2.0]]
    """

    def __init__(self, activation, name=None, **kwargs):
        self.activation = check_activation(activation, f"{type(self).__name__}")
        super().__init__(name=name, **kwargs)

    def _forward(self, x, training):
        self._y = activation_forward(self.activation, x)
        return self._y

    def _backward(self, grad):
        return activation_backward(self.activation, grad, self._y)

    def _to_network(self, net, inputs):
        return net.activation(inputs[0], self.activation)


class ReLU(Activation):
    """max(x, 0) as a layer.

    >>> ReLU().forward(np.array([[-3.0, 0.5]])).tolist()
    [[0.0, 0.5]]
    """

    def __init__(self, name=None, **kwargs):
        super().__init__("relu", name=name, **kwargs)
