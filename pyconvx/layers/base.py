"""The Layer base class: building on the first input, shape checks, parameters and weights.

A layer holds its trainable parameters in `params` and their gradients under the same keys in
`grads`; buffers that are saved but not trained (batch-norm running statistics) live in `state`.
Shapes are per sample: a layer built for (C, H, W) accepts (N, C, H, W) for any N.
"""
import itertools
import re

import numpy as np

__all__ = ["Layer", "writable"]

_name_counters = {}


def snake_case(class_name):
    """Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, BatchNormalization -> batch_normalization."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])", "_", class_name).lower()


def _fresh_name(prefix):
    counter = _name_counters.setdefault(prefix, itertools.count())
    index = next(counter)
    return prefix if index == 0 else f"{prefix}_{index}"


def writable(array):
    """`array` (a weight) made writable for an update in place. While an inference plan built
    from a model is current, its weights are read-only (see pyconvx.engine); a weight made
    writable tells the plan it may change, and the next predict builds it afresh."""
    if not array.flags.writeable:
        array.flags.writeable = True
    return array


def check_weight(value, target, key, owner):
    """ValueError (naming `owner` and the weight `key`) unless `value` can replace `target`: the
    same shape and real numbers. Callers check every weight before writing any."""
    value = np.asarray(value)
    if value.shape != target.shape:
        raise ValueError(f"{owner}: weight {key!r} has shape {target.shape}, got {value.shape}")
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: weight {key!r} must hold real numbers, got dtype {value.dtype}")


class Layer:
    """Base class of every layer.

    Subclasses implement `_build(input_shape, rng)` (create parameters, return the per-sample
    output shape), `_forward(x, training)` and `_backward(grad)`. The base class builds on the
    first call, checks every later input against the built shape, and manages names and weights.

    >>> from pyconvx.layers import Dense
    >>> layer = Dense(3)
    >>> layer.forward(np.ones((2, 4)), training=False).shape
    (2, 3)
    >>> sorted(layer.params) == sorted(layer.grads) == ["bias", "kernel"]
    True
    """

    #: True for layers whose input is a list of batches (Concatenate, Add).
    takes_list = False

    def __init__(self, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string without '/', got name={name!r}")
        # Auto-named layers are renamed per model (see Sequential) so that two models of the same
        # architecture get the same names and can share weight files.
        self.auto_named = name is None
        self.name = _fresh_name(snake_case(type(self).__name__)) if name is None else name
        self.trainable = bool(trainable)
        self.params, self.grads, self.state = {}, {}, {}
        self.built = False
        self.input_shape = self.output_shape = None
        self.input_grad_needed = True

    # ----- building and shape checks -----

    def build(self, input_shape, rng=None):
        """Creates the parameters for per-sample inputs of `input_shape`; returns the output shape.

        rng (a numpy Generator) draws the initial weights; a fresh unseeded one when None.
        """
        input_shape = tuple(int(d) for d in input_shape)
        rng = np.random.default_rng() if rng is None else rng
        output_shape = tuple(int(d) for d in self._build(input_shape, rng))
        self.input_shape, self.output_shape = input_shape, output_shape
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        self.built = True
        return output_shape

    def _build(self, input_shape, rng):
        return input_shape

    def _describe(self):
        return f"layer {self.name!r} ({type(self).__name__})"

    def shape_error(self, message):
        """A ValueError whose message starts with this layer's name and type."""
        return ValueError(f"{self._describe()}: {message}")

    def _as_batch(self, x):
        """x as a float array with a batch axis; TypeError or ValueError naming the layer."""
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            if x.dtype.kind not in "biuf":
                raise TypeError(f"{self._describe()}: input must be a real numeric array, got dtype {x.dtype}")
            x = x.astype(np.float32)
        if x.ndim < 1:
            raise self.shape_error(f"input must have a batch axis, got a scalar of shape {x.shape}")
        return x

    def _checked_input(self, x):
        x = self._as_batch(x)
        if not self.built:
            self.build(x.shape[1:])
        if x.shape[1:] != self.input_shape:
            raise self.shape_error(f"expected input shape {(None,) + self.input_shape}, got {x.shape}")
        return x

    # ----- the passes -----

    def forward(self, x, training=False):
        """The layer's output for a batch x of shape (N,) + input_shape (built on the first call)."""
        y = self._forward(self._checked_input(x), bool(training))
        self._last_output_shape = y.shape
        return y

    def __call__(self, inputs, training=False):
        """forward() on arrays; on a symbolic tensor (pyconvx.Input or a layer's output), records
        the call in a graph and returns the layer's symbolic output (see pyconvx.Model)."""
        from .graph import SymbolicTensor, is_symbolic

        if not is_symbolic(inputs):
            return self.forward(inputs, training)
        if isinstance(inputs, SymbolicTensor) == self.takes_list:
            wanted = "a list of symbolic tensors" if self.takes_list else "one symbolic tensor"
            raise TypeError(f"{self._describe()}: expected {wanted}, got {inputs!r}")
        return SymbolicTensor(self, inputs if self.takes_list else [inputs])

    def backward(self, grad):
        """Gradient of the loss with respect to the last forward's input, given the gradient with
        respect to its output; fills `grads` when the layer is trainable. Returns None when
        `input_grad_needed` is False (the model's first layer)."""
        expected = getattr(self, "_last_output_shape", None)
        if expected is None:
            raise RuntimeError(f"{self._describe()}: backward called before forward")
        grad = np.asarray(grad)
        if grad.shape != expected:
            raise self.shape_error(f"expected a gradient of shape {expected}, got {grad.shape}")
        return self._backward(grad)

    def _forward(self, x, training):
        raise NotImplementedError

    def _backward(self, grad):
        raise NotImplementedError

    def reseed(self, rng):
        """Gives the layer a random generator for its training-time randomness (dropout masks)."""

    def _to_network(self, net, inputs):
        """Adds the layer at inference to `net` (a pyconvx.engine.NetworkBuilder) over the tensors
        `inputs` (a list, one per input) and returns its output tensor. A layer without a step in
        the inference plan raises NotSupported, and its models predict layer by layer."""
        from ..engine import NotSupported

        raise NotSupported(f"{self._describe()} has no step in the inference plan (define _to_network to add one)")

    # ----- weights -----

    def weight_names(self):
        """The names of get_weights()'s arrays: trainable parameters, then saved state."""
        return list(self.params) + list(self.state)

    def _weight_arrays(self):
        return [*self.params.values(), *self.state.values()]

    def get_weights(self):
        """Copies of the layer's arrays, in weight_names() order."""
        return [array.copy() for array in self._weight_arrays()]

    def set_weights(self, weights):
        """Copies `weights` (a list in weight_names() order) into the layer's arrays in place."""
        if not self.built:
            raise RuntimeError(f"{self._describe()}: set_weights before the layer is built (call it or build it first)")
        weights = list(weights)
        targets = self._weight_arrays()
        if len(weights) != len(targets):
            raise ValueError(f"{self._describe()}: expected {len(targets)} arrays {self.weight_names()}, "
                             f"got {len(weights)}")
        for key, target, value in zip(self.weight_names(), targets, weights):
            check_weight(value, target, key, self._describe())
        for target, value in zip(targets, weights):
            np.copyto(writable(target), value, casting="same_kind")

    def count_params(self):
        """Number of scalars in the layer's parameters and saved state."""
        return int(sum(array.size for array in self._weight_arrays()))

    def trainable_parameters(self):
        """(key, parameter, gradient) for each parameter an optimizer updates: all of them when
        the layer is trainable, none otherwise (a block answers sub-layer by sub-layer)."""
        return [(key, param, self.grads[key]) for key, param in self.params.items()] if self.trainable else []

    def count_trainable_params(self):
        return int(sum(param.size for _, param, _ in self.trainable_parameters()))

    def __repr__(self):
        shape = f", input_shape={self.input_shape}" if self.built else ""
        return f"<{type(self).__name__} name={self.name!r}{shape}>"
