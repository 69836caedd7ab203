"""Inference-only fusion: a convolution, the batch normalisation after it and a ReLU after that,
run as one convolution.

At inference batch normalisation is a fixed per-channel affine map, scale * z + shift with
scale = gamma / sqrt(moving_variance + epsilon) and shift = beta - moving_mean * scale, so
conv -> batch norm -> ReLU equals one convolution with its filters scaled by `scale`, bias
scale * bias + shift, and the ReLU in the kernel's epilogue. That drops two passes over every
activation of a ResNet (25% and 10% of its forward time as separate NumPy passes). The folded
weights are recomputed on every call (K * C * R * S multiplications, against the convolution's
N * P * Q times as many), so they always follow the current parameters.

Fusion happens only inside `inference_only()` (Model.predict and evaluate): the fused layers
keep none of the intermediate values a backward pass would need, so a plain
forward(training=False), which may be followed by backward (input gradients of a trained
model), runs layer by layer.
"""
import contextlib
import threading

import numpy as np

from .. import ops
from .activation import Activation
from .conv import Conv2D
from .normalization import BatchNormalization

__all__ = ["inference_only", "in_inference_only", "fusion_plan", "run_fused"]

_state = threading.local()


@contextlib.contextmanager
def inference_only():
    """Within this block (per thread), graphs run forward(training=False) with fused layers."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous


def in_inference_only():
    return getattr(_state, "active", False)


def _fusable_conv(layer):
    return isinstance(layer, Conv2D) and layer.activation == "linear"


def _is_relu(layer):
    return isinstance(layer, Activation) and layer.activation == "relu"


def fusion_plan(nodes, outputs):
    """{id(first node): (conv node, batch-norm node, ReLU node or None)} for every chain conv ->
    batch norm (-> ReLU) in `nodes` (a graph's calls in order) whose inner values feed nothing
    else and are not graph outputs; the chain's later nodes map to None (skipped)."""
    consumers = {}
    for node in nodes:
        for parent in node.inputs:
            consumers.setdefault(id(parent), []).append(node)
    exposed = {id(tensor) for tensor in outputs}

    def only_child(node, accept):
        children = consumers.get(id(node), [])
        if len(children) == 1 and id(node) not in exposed and accept(children[0].layer):
            return children[0]
        return None

    plan = {}
    for node in nodes:
        if id(node) in plan or not _fusable_conv(node.layer):
            continue
        bn = only_child(node, lambda layer: isinstance(layer, BatchNormalization))
        if bn is None or len(bn.layer.input_shape) != 3:
            continue
        relu = only_child(bn, _is_relu)
        plan[id(node)] = (node, bn, relu)
        plan[id(bn)] = None
        if relu is not None:
            plan[id(relu)] = None
    return plan


def run_fused(chain, x):
    """The output of the chain (conv node, batch-norm node, ReLU node or None) for input x."""
    conv_node, bn_node, relu_node = chain
    conv, bn = conv_node.layer, bn_node.layer
    x = conv._checked_input(x)
    scale = bn.params["gamma"] / np.sqrt(bn.state["moving_variance"] + np.float32(bn.epsilon))
    shift = bn.params["beta"] - bn.state["moving_mean"] * scale
    kernel = conv.params["kernel"] * scale.reshape(-1, 1, 1, 1)
    bias = shift if not conv.use_bias else conv.params["bias"] * scale + shift
    return ops.conv2d(x, kernel, bias, activation="relu" if relu_node is not None else None, **conv._conv_kwargs())
