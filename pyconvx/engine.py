"""The inference engine: a model compiled into a C++ plan that runs a whole batch in one call.

`Model.predict` and `evaluate` run through a plan, and `Model.inference_plan(batch_size)` hands
one out. Building it does the preparation once (batch normalisation folded into the filters,
weights packed for the algorithm each layer takes, activations and residual additions fused into
the convolutions, concatenated branches written in place, the intermediate tensors planned into
one arena); running it calls no Python between layers. See csrc/include/pyconvx/plan.hpp.

A plan is a copy of the weights in prepared form, so it must follow the model. While a plan is
current its model's weight arrays are read-only: pyconvx's own ways of changing weights
(set_weights, load_weights, load_torch_state_dict, a training step) make them writable again,
and so does a user who means to write one (``array.flags.writeable = True``); the next predict
finds a writable or replaced array and builds the plan afresh. A stale result is never served.

>>> import numpy as np, pyconvx
>>> from pyconvx import layers
>>> model = pyconvx.Sequential([layers.Conv2D(4, 3, activation="relu"), layers.Flatten(), layers.Dense(2)],
...                            input_shape=(1, 6, 6), seed=0)
>>> plan = model.inference_plan(batch_size=8)
>>> plan(np.ones((3, 1, 6, 6))).shape
(3, 2)
>>> print(plan.describe())
conv2d[1] 4x1x3x3 s1 +relu -> (4, 4, 4) [direct]
dense[3] -> (2,) [implicit_gemm]
"""
import threading

import numpy as np

from . import _core

__all__ = ["InferencePlan", "NetworkBuilder", "NotSupported", "PlanCache"]


class NotSupported(Exception):
    """Raised by a layer that has no step in the plan (a custom layer): its model's predict
    then runs layer by layer."""


# The activations of pyconvx's layers, as the plan's kernels name them; softmax is a step of
# its own, "linear" none at all.
_ACTIVATIONS = {"linear": "none", "relu": "relu", "relu6": "relu6", "tanh": "tanh", "sigmoid": "sigmoid",
                "hardsigmoid": "hardsigmoid", "silu": "silu", "hardswish": "hardswish"}


def _weight(array):
    """A layer's weight as the plan reads it: float32, C-contiguous (a copy only otherwise)."""
    return None if array is None else np.ascontiguousarray(array, dtype=np.float32)


class NetworkBuilder:
    """The description of a network that layers add themselves to (`Layer._to_network`); each
    method adds one layer over tensors (ints, the outputs of earlier calls) and returns its
    output. Padding is (top, bottom, left, right)."""

    def __init__(self):
        self.network = _core.Network()

    def input(self, shape):
        return self.network.input([int(d) for d in shape])

    def _then(self, x, activation):
        """x followed by `activation` when the kernel cannot fuse it (softmax)."""
        return self.network.softmax(x) if activation == "softmax" else x

    @staticmethod
    def _fused(activation):
        return "none" if activation == "softmax" else _ACTIVATIONS[activation]

    def conv2d(self, x, kernel, bias, strides, padding, dilation, groups, activation="linear"):
        y = self.network.conv2d(x, _weight(kernel), _weight(bias), tuple(strides), tuple(padding), tuple(dilation),
                                int(groups), self._fused(activation))
        return self._then(y, activation)

    def dense(self, x, kernel, bias, activation="linear"):
        y = self.network.dense(x, _weight(kernel), _weight(bias), self._fused(activation))
        return self._then(y, activation)

    def batch_norm(self, x, gamma, beta, mean, variance, epsilon):
        return self.network.batch_norm(x, _weight(gamma), _weight(beta), _weight(mean), _weight(variance),
                                       float(epsilon))

    def activation(self, x, activation):
        if activation == "linear":
            return x
        if activation == "softmax":
            return self.network.softmax(x)
        return self.network.activation(x, _ACTIVATIONS[activation])

    def add(self, xs):
        return self.network.add(list(xs), "none")

    def concat(self, xs, axis):
        return self.network.concat(list(xs), int(axis))

    def pool2d(self, x, kind, kernel, strides, padding, ceil_mode, count_include_pad=True):
        return self.network.pool2d(x, kind, tuple(kernel), tuple(strides), tuple(padding), bool(ceil_mode),
                                   bool(count_include_pad))

    def global_avg_pool2d(self, x):
        return self.network.global_avg_pool2d(x)

    def adaptive_avg_pool2d(self, x, size):
        return self.network.adaptive_avg_pool2d(x, tuple(size))

    def flatten(self, x):
        return self.network.flatten(x)

    def lrn(self, x, size, alpha, beta, k):
        return self.network.lrn(x, int(size), float(alpha), float(beta), float(k))

    def identity(self, x):
        return self.network.identity(x)

    def output(self, x):
        self.network.output(x)


class InferencePlan:
    """A model compiled for batches of up to `batch_size` samples.

    Calling it on x (a batch, or a list of batches for several inputs) returns the outputs as
    predict would, running larger inputs in batches of `batch_size`. `describe()` lists the steps
    (which layers each one fuses, which convolution algorithm it takes); `memory` gives the bytes
    of its prepared weights and of the arena one run uses. Several threads may call one plan at
    once. A plan is a snapshot: get a fresh one from the model after changing its weights (predict
    does that by itself).
    """

    def __init__(self, plan, batch_size, single_input=True, single_output=True):
        self._plan = plan
        self.batch_size = int(batch_size)
        self._single_input, self._single_output = single_input, single_output
        self.input_shapes = [tuple(shape) for shape in plan.input_shapes]
        self.output_shapes = [tuple(shape) for shape in plan.output_shapes]

    @property
    def memory(self):
        """{"weights": bytes of the prepared weights, "arena": bytes of one run's tensors}."""
        return {"weights": int(self._plan.weight_bytes), "arena": int(self._plan.arena_bytes)}

    def describe(self):
        """One line a step: the layers it computes and, for convolutions, the algorithm."""
        return self._plan.describe().rstrip("\n")

    def run(self, inputs, outputs, start, stop):
        """Fills outputs[i][start:stop] from inputs[i][start:stop] (lists of C-contiguous float32
        arrays, stop - start <= batch_size)."""
        self._plan.run([x[start:stop] for x in inputs], [y[start:stop] for y in outputs])

    def profile(self, x, repeats=5):
        """[(step, median milliseconds)] of running x (at most batch_size samples, a list of
        batches for several inputs) `repeats` times after one warm-up run, step by step in
        describe()'s order: where a model's time goes."""
        xs = [np.ascontiguousarray(each, dtype=np.float32) for each in (x if not self._single_input else [x])]
        outputs = [np.empty((len(xs[0]),) + shape, np.float32) for shape in self.output_shapes]
        self._plan.run(xs, outputs)
        runs = [self._plan.run(xs, outputs, timed=True) for _ in range(repeats)]
        return [(step, 1e3 * float(np.median(times))) for step, times in zip(self.describe().splitlines(), zip(*runs))]

    def __call__(self, x):
        xs = [np.ascontiguousarray(each, dtype=np.float32) for each in (x if not self._single_input else [x])]
        count = len(xs[0])
        outputs = [np.empty((count,) + shape, np.float32) for shape in self.output_shapes]
        for start in range(0, count, self.batch_size):
            self.run(xs, outputs, start, min(count, start + self.batch_size))
        return outputs[0] if self._single_output else outputs

    def __repr__(self):
        return f"<InferencePlan batch_size={self.batch_size} steps={self.describe().count(chr(10)) + 1}>"


def _protect(entries):
    for _, _, array in entries:
        array.flags.writeable = False


def _unchanged(entries):
    """Whether every weight is still the array the plan was built from, and still read-only."""
    return all(mapping.get(key) is array and not array.flags.writeable for mapping, key, array in entries)


class PlanCache:
    """The plans of one model, by batch size, valid while its weights are unchanged.

    `describe(builder)` adds the model to a NetworkBuilder (raising NotSupported for a layer
    with no step); `weights()` lists (mapping, key, array) for every weight array the plan reads,
    which are made read-only while a plan built from them is current. At most `keep` plans are
    kept, the most recently used.
    """

    def __init__(self, describe, weights, single_input=True, single_output=True, keep=2):
        self._describe, self._weights = describe, weights
        self._single = (single_input, single_output)
        self._keep = keep
        self._lock = threading.Lock()
        self._plans = {}  # batch size -> InferencePlan, most recently used last
        self._entries = None
        self.unsupported = None  # the NotSupported that a layer raised, once one has

    def plan(self, batch_size):
        """The plan for batches of `batch_size`, built or rebuilt as needed; raises NotSupported
        when a layer has no step."""
        with self._lock:
            if self.unsupported is not None:
                raise self.unsupported
            if self._entries is not None and not _unchanged(self._entries):
                self._plans.clear()
            plan = self._plans.pop(batch_size, None)
            if plan is None:
                plan = self._build(batch_size)
            self._plans[batch_size] = plan
            while len(self._plans) > self._keep:
                self._plans.pop(next(iter(self._plans)))
            return plan

    def _build(self, batch_size):
        builder = NetworkBuilder()
        try:
            self._describe(builder)
        except NotSupported as error:
            self.unsupported = error
            raise
        entries = self._weights()
        plan = InferencePlan(_core.InferencePlan(builder.network, batch_size), batch_size, *self._single)
        _protect(entries)
        self._entries = entries
        return plan
