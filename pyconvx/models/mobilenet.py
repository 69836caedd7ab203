"""MobileNetV2 (Sandler et al. 2018) as torchvision builds it."""
from .. import layers
from ..layers._padding import positive_int, positive_pair
from ..layers.blocks import Block, conv_bn_activation
from ..layers.graph import Input
from ..model import Model
from ._common import checked

__all__ = ["mobilenet_v2", "InvertedResidual"]

# (expansion t, output channels c, repeats n, first stride s) of each stage, table 2 of the paper.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(Block):
    """MobileNetV2's block: a 1x1 expansion to `expansion` times the input channels (none for
    expansion 1), a 3x3 depthwise convolution carrying the stride, both with batch normalisation
    and ReLU6, then a linear 1x1 projection to `filters` with batch normalisation; the input is
    added back when the shapes allow (stride 1, as many channels in as out).

    Shapes: (N, C, H, W) -> (N, filters, ceil(H / s), ceil(W / s)). Sub-layers named after
    torchvision's: conv.0.0 / conv.0.1 (the expansion's convolution and batch norm), conv.1.0 /
    conv.1.1 (the depthwise one's), conv.2 and conv.3 (the projection's); without expansion
    conv.0.* is the depthwise unit, conv.1 and conv.2 the projection.

    >>> import numpy as np
    >>> InvertedResidual(24, strides=2, expansion=6).forward(np.ones((1, 16, 8, 8), np.float32)).shape
    (1, 24, 4, 4)
    """

    def __init__(self, filters, strides=1, expansion=6, name=None, trainable=True):
        owner = type(self).__name__
        self.filters = positive_int(filters, "filters", owner)
        self.strides = positive_pair(strides, "strides", owner)
        self.expansion = positive_int(expansion, "expansion", owner)
        super().__init__(name=name, trainable=trainable)

    def _wire(self, x, input_shape):
        channels = input_shape[0]
        hidden = channels * self.expansion
        h, unit = x, 0
        if self.expansion != 1:
            h = conv_bn_activation(h, hidden, 1, ("conv.0.0", "conv.0.1"), activation="relu6")
            unit = 1
        h = conv_bn_activation(h, hidden, 3, (f"conv.{unit}.0", f"conv.{unit}.1"), strides=self.strides, padding=1,
                         groups=hidden, activation="relu6")
        h = layers.Conv2D(self.filters, 1, use_bias=False, name=f"conv.{unit + 1}")(h)
        h = layers.BatchNormalization(name=f"conv.{unit + 2}")(h)
        if self.strides == (1, 1) and channels == self.filters:
            h = layers.Add()([x, h])
        return h


def mobilenet_v2(num_classes=1000, input_shape=(3, 224, 224), dropout=0.2, seed=None):
    """MobileNetV2 at width 1.0: a 3x3/2 convolution to 32 channels, seventeen inverted residual
    blocks in seven stages, a 1x1 convolution to 1280 channels (each with batch normalisation and
    ReLU6), global average pooling, dropout and the logits, as torchvision builds it: layers
    features.0 ... features.18 and classifier.1.

    Shapes: (N, 3, H, W) -> (N, num_classes); 3,504,872 parameters for 1000 classes.

    >>> mobilenet_v2(num_classes=10, input_shape=(3, 32, 32)).output_shape
    (10,)
    """
    num_classes, input_shape = checked(num_classes, input_shape, "mobilenet_v2")
    image = Input(input_shape, name="image")
    x = conv_bn_activation(image, 32, 3, ("features.0.0", "features.0.1"), strides=2, padding=1, activation="relu6")
    index = 1
    for expansion, filters, repeats, stride in _STAGES:
        for repeat in range(repeats):
            x = InvertedResidual(filters, strides=stride if repeat == 0 else 1, expansion=expansion,
                                 name=f"features.{index}")(x)
            index += 1
    x = conv_bn_activation(x, 1280, 1, (f"features.{index}.0", f"features.{index}.1"), activation="relu6")
    x = layers.Dropout(dropout, name="classifier.0")(layers.GlobalAveragePooling2D(name="avgpool")(x))
    return Model(image, layers.Dense(num_classes, name="classifier.1")(x), name="mobilenet_v2", seed=seed)
