"""Layers that merge branches: Concatenate (along channels) and Add (element-wise sum)."""
import numpy as np

from .._args import as_int
from .base import Layer

__all__ = ["Concatenate", "Add"]


class _Merge(Layer):
    """A layer over a list of batches with the same batch size: input_shape is the tuple of the
    inputs' per-sample shapes, and backward returns one gradient per input."""

    takes_list = True

    def build(self, input_shape, rng=None):
        shapes = tuple(tuple(int(d) for d in shape) for shape in input_shape)
        if len(shapes) < 2:
            raise self.shape_error(f"expected a list of at least 2 inputs, got {len(shapes)}")
        output_shape = tuple(int(d) for d in self._build(shapes, rng))
        self.input_shape, self.output_shape = shapes, output_shape
        self.built = True
        return output_shape

    def forward(self, x, training=False):
        """The merged batch for a list of batches x[i] of shape (N,) + input_shape[i]."""
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"{self._describe()}: expected a list of input batches, got {type(x).__name__}")
        xs = [self._as_batch(each) for each in x]
        if not self.built:
            self.build([each.shape[1:] for each in xs])
        got = tuple(each.shape[1:] for each in xs)
        if got != self.input_shape or len({each.shape[0] for each in xs}) != 1:
            raise self.shape_error(f"expected inputs of shapes {[(None,) + s for s in self.input_shape]}, "
                                   f"got {[each.shape for each in xs]}")
        y = self._forward(xs, bool(training))
        self._last_output_shape = y.shape
        return y


class Concatenate(_Merge):
    """Joins its inputs along `axis` (counted with the batch axis: 1 is the channels of NCHW
    maps, or the features of (N, features) inputs); the other axes must agree.

    Shapes: [(N, C1, H, W), (N, C2, H, W), ...] -> (N, C1 + C2 + ..., H, W).

    >>> Concatenate()([np.ones((2, 3, 4, 4)), np.zeros((2, 5, 4, 4))]).shape
    (2, 8, 4, 4)
    """

    def __init__(self, axis=1, name=None, **kwargs):
        self.axis = as_int(axis, "axis")
        super().__init__(name=name, **kwargs)

    def _build(self, shapes, rng):
        rank = len(shapes[0])
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if self.axis == 0 or not 0 <= axis < rank:
            raise self.shape_error(f"axis={self.axis} is not a non-batch axis of per-sample shapes of rank {rank}")
        others = {shape[:axis] + shape[axis + 1:] for shape in shapes}
        if len(others) != 1 or len({len(shape) for shape in shapes}) != 1:
            raise self.shape_error(f"inputs must agree on every axis but axis={self.axis}, got "
                                   f"{[(None,) + shape for shape in shapes]}")
        self._sample_axis = axis
        self._splits = np.cumsum([shape[axis] for shape in shapes])[:-1]
        merged = list(shapes[0])
        merged[axis] = sum(shape[axis] for shape in shapes)
        return merged

    def _forward(self, xs, training):
        return np.concatenate(xs, axis=self._sample_axis + 1)

    def _to_network(self, net, inputs):
        return net.concat(inputs, self._sample_axis)

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        return np.split(grad, self._splits, axis=self._sample_axis + 1)


class Add(_Merge):
    """The element-wise sum of its inputs, which must have one shape (a residual connection).

    Shapes: [(N, ...), (N, ...), ...] -> (N, ...).

    >>> Add()([np.ones((2, 3)), np.ones((2, 3))]).tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    def _build(self, shapes, rng):
        if len(set(shapes)) != 1:
            raise self.shape_error(f"inputs must have one shape, got {[(None,) + shape for shape in shapes]}")
        return shapes[0]

    def _to_network(self, net, inputs):
        return net.add(inputs)

    def _forward(self, xs, training):
        self._count = len(xs)
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total += x
        return total

    def _backward(self, grad):
        if not self.input_grad_needed:
            return None
        # The same array for every input: the graph sums gradients without writing into them.
        return [grad] * self._count
