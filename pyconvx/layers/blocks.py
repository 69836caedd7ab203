"""Composite layers: the residual block of ResNet and the inception module of GoogLeNet.

A block is a layer whose inside is a small graph of sub-layers (see graph.py), wired once its
input shape is known. Its params, grads and state are views over the sub-layers' arrays under
keys "sub_layer/weight" ("conv1/kernel", "bn1/moving_mean"), so optimizers, weight files and
get_weights see every array of the block under a unique name; sub-layers are named after the
attributes of torchvision's modules ("conv1", "downsample.0", "branch2.1.conv"), so that
Model.load_torch_state_dict finds their weights.
"""
from collections.abc import MutableMapping

from ._padding import positive_int, positive_pair
from .activation import Activation, ReLU
from .base import Layer
from .conv import Conv2D
from .graph import Graph, Input, assign_unique_names
from .merge import Add, Concatenate
from .normalization import BatchNormalization
from .pooling import MaxPooling2D

__all__ = ["Block", "ResidualBlock", "InceptionModule", "conv_bn_activation"]


class _SubLayerArrays(MutableMapping):
    """One of params, grads or state of every sub-layer, keyed "sub_layer/key"; reads and writes
    go to the sub-layers' own dicts, so arrays they replace (fresh gradients) show through."""

    def __init__(self, layers, attribute):
        self._layers = {layer.name: layer for layer in layers}
        self._attribute = attribute

    def _split(self, key):
        name, _, inner = key.partition("/")
        if name not in self._layers:
            raise KeyError(key)
        return getattr(self._layers[name], self._attribute), inner

    def __getitem__(self, key):
        arrays, inner = self._split(key)
        return arrays[inner]

    def __setitem__(self, key, value):
        arrays, inner = self._split(key)
        if inner not in arrays:
            raise KeyError(key)
        arrays[inner] = value

    def __delitem__(self, key):
        raise TypeError("a block's weights cannot be deleted")

    def __iter__(self):
        for name, layer in self._layers.items():
            for inner in getattr(layer, self._attribute):
                yield f"{name}/{inner}"

    def __len__(self):
        return sum(len(getattr(layer, self._attribute)) for layer in self._layers.values())


class Block(Layer):
    """Base class of composite layers: subclasses implement `_wire(x, input_shape)`, which calls
    new sub-layers on the symbolic input x and returns the symbolic output. `sublayers` lists
    them in graph order once built; setting `trainable` sets theirs.
    """

    def __init__(self, name=None, trainable=True):
        self.sublayers = []
        self._graph = None
        super().__init__(name=name, trainable=trainable)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self.sublayers:
            layer.trainable = self._trainable

    def _wire(self, x, input_shape):
        raise NotImplementedError

    def build(self, input_shape, rng=None):
        output_shape = super().build(input_shape, rng)
        self.params, self.grads, self.state = (_SubLayerArrays(self.sublayers, attribute)
                                               for attribute in ("params", "grads", "state"))
        return output_shape

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise self.shape_error(f"expected (N, C, H, W) input, got per-sample shape {input_shape}")
        x = Input(input_shape, name="input")
        graph = Graph([x], [self._wire(x, input_shape)], owner=self._describe())
        assign_unique_names(graph.layers, self._describe())
        graph.input_grads_needed = True
        try:
            graph.build(rng)
        except ValueError as error:  # say which block the sub-layer belongs to
            raise self.shape_error(f"input shape {(None,) + tuple(input_shape)}: {error}") from None
        self._graph, self.sublayers = graph, graph.layers
        self.trainable = self._trainable
        return graph.outputs[0].shape

    def _forward(self, x, training):
        return self._graph.forward([x], training)[0]

    def _backward(self, grad):
        self._graph.input_grads_needed = self.input_grad_needed
        return self._graph.backward([grad])[0]

    def _to_network(self, net, inputs):
        return self._graph.to_network(net, inputs)[0]

    def reseed(self, rng):
        for layer in self.sublayers:
            layer.reseed(rng)

    def trainable_parameters(self):
        # Each sub-layer's own flag: a batch norm frozen inside a block keeps its weights.
        return [(f"{layer.name}/{key}", param, grad) for layer in self.sublayers
                for key, param, grad in layer.trainable_parameters()]


def conv_bn_activation(x, filters, kernel_size, names, strides=1, padding=0, groups=1, epsilon=1e-5,
                       activation="relu"):
    """Conv2D without bias (the batch norm's beta replaces it), BatchNormalization, then the
    activation (None for none), on the symbolic tensor x; names is the pair (convolution's name,
    batch norm's name). Returns the symbolic output.

    >>> x = Input((3, 8, 8))
    >>> conv_bn_activation(x, 4, 3, ("stem.conv", "stem.bn"), padding=1).inputs[0].layer
    <BatchNormalization name='stem.bn'>
    """
    x = Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=False,
               name=names[0])(x)
    x = BatchNormalization(epsilon=epsilon, name=names[1])(x)
    if activation is None:
        return x
    return (ReLU() if activation == "relu" else Activation(activation))(x)


class ResidualBlock(Block):
    """A residual block (He et al. 2016): y = relu(F(x) + W_s x), F two 3x3 convolutions (basic)
    or 1x1 reduce, 3x3, 1x1 expand to 4 * filters channels (bottleneck), each followed by batch
    normalisation, with a ReLU between them. The shortcut W_s is the identity, or a 1x1
    convolution with `strides` and batch normalisation (the projection) when the stride or the
    channel count changes. The stride sits on the (first) 3x3 convolution, as in torchvision.

    Shapes: (N, C, H, W) -> (N, K, ceil(H / s), ceil(W / s)) with K = filters (basic) or
    expansion * filters (bottleneck). Sub-layers: conv1, bn1, conv2, bn2 (conv3, bn3), and
    downsample.0, downsample.1 for the projection.

    >>> block = ResidualBlock(8, strides=2)
    >>> block.forward(np.ones((1, 4, 8, 8), np.float32)).shape
    (1, 8, 4, 4)
    >>> sorted(key for key in block.params if key.startswith("downsample"))
    ['downsample.0/kernel', 'downsample.1/beta', 'downsample.1/gamma']
    """

    def __init__(self, filters, strides=1, bottleneck=False, expansion=4, name=None, trainable=True):
        owner = type(self).__name__
        self.filters = positive_int(filters, "filters", owner)
        self.strides = positive_pair(strides, "strides", owner)
        self.bottleneck = bool(bottleneck)
        self.expansion = positive_int(expansion, "expansion", owner) if self.bottleneck else 1
        super().__init__(name=name, trainable=trainable)

    def _wire(self, x, input_shape):
        out_channels = self.filters * self.expansion
        if self.bottleneck:  # 1x1 reduce, 3x3 (strided), 1x1 expand
            units = [(self.filters, 1, 1, 0), (self.filters, 3, self.strides, 1), (out_channels, 1, 1, 0)]
        else:
            units = [(self.filters, 3, self.strides, 1), (out_channels, 3, 1, 1)]
        h = x
        for index, (filters, kernel, strides, padding) in enumerate(units, start=1):
            h = conv_bn_activation(h, filters, kernel, (f"conv{index}", f"bn{index}"), strides=strides,
                                   padding=padding, activation="relu" if index < len(units) else None)
        shortcut = x
        if self.strides != (1, 1) or input_shape[0] != out_channels:
            shortcut = Conv2D(out_channels, 1, strides=self.strides, use_bias=False, name="downsample.0")(x)
            shortcut = BatchNormalization(name="downsample.1")(shortcut)
        return ReLU()(Add()([h, shortcut]))


class InceptionModule(Block):
    """The inception module of GoogLeNet (Szegedy et al. 2015): four branches side by side,
    their outputs concatenated along channels:

    1. a 1x1 convolution to c1 channels;
    2. a 1x1 bottleneck to c3_reduce channels, then a 3x3 convolution to c3;
    3. a 1x1 bottleneck to c5_reduce channels, then a c5_kernel_size (5) convolution to c5;
    4. a 3x3 max pool with stride 1, then a 1x1 projection to pool_proj channels.

    The 1x1 bottlenecks shrink the channels before the wide convolutions: what makes the
    module affordable. Every convolution is followed by ReLU; with batch_norm=True each is a
    bias-free convolution, batch normalisation (epsilon 1e-3) and ReLU, as torchvision's
    GoogLeNet, which also uses c5_kernel_size=3 in branch 3.

    Shapes: (N, C, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W). Sub-layers: branch1,
    branch2.0, branch2.1, branch3.0, branch3.1, branch4.1 (with ".conv" and ".bn" under
    batch_norm=True).

    >>> module = InceptionModule(8, 4, 8, 2, 4, 4)
    >>> module.forward(np.ones((1, 16, 7, 7), np.float32)).shape
    (1, 24, 7, 7)
    """

    def __init__(self, c1, c3_reduce, c3, c5_reduce, c5, pool_proj, batch_norm=False, c5_kernel_size=5, name=None,
                 trainable=True):
        owner = type(self).__name__
        self.channels = {key: positive_int(value, key, owner) for key, value in (
            ("c1", c1), ("c3_reduce", c3_reduce), ("c3", c3), ("c5_reduce", c5_reduce), ("c5", c5),
            ("pool_proj", pool_proj))}
        self.batch_norm = bool(batch_norm)
        self.c5_kernel_size = positive_int(c5_kernel_size, "c5_kernel_size", owner)
        if self.c5_kernel_size % 2 == 0:
            raise ValueError(f"{owner}: c5_kernel_size must be odd to keep H and W, got {c5_kernel_size}")
        super().__init__(name=name, trainable=trainable)

    def _unit(self, x, filters, kernel_size, name):
        if self.batch_norm:
            return conv_bn_activation(x, filters, kernel_size, (f"{name}.conv", f"{name}.bn"), padding=kernel_size // 2,
                                epsilon=1e-3)
        return Conv2D(filters, kernel_size, padding=kernel_size // 2, activation="relu", name=name)(x)

    def _wire(self, x, input_shape):
        c = self.channels
        branch1 = self._unit(x, c["c1"], 1, "branch1")
        branch2 = self._unit(self._unit(x, c["c3_reduce"], 1, "branch2.0"), c["c3"], 3, "branch2.1")
        branch3 = self._unit(self._unit(x, c["c5_reduce"], 1, "branch3.0"), c["c5"], self.c5_kernel_size,
                             "branch3.1")
        pooled = MaxPooling2D(3, strides=1, padding=1, name="branch4.0")(x)
        branch4 = self._unit(pooled, c["pool_proj"], 1, "branch4.1")
        return Concatenate()([branch1, branch2, branch3, branch4])
