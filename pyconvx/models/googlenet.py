"""GoogLeNet (Szegedy et al. 2015) as torchvision builds it."""
from .. import layers
from ..layers.blocks import conv_bn_activation
from ..layers.graph import Input
from ..model import Model
from ._common import checked

__all__ = ["googlenet"]

# (name, c1, c3_reduce, c3, c5_reduce, c5, pool_proj) of each inception module, table 1 of the
# paper; "pool" is a 3x3/2 max pool (2x2/2 before stage 5), "aux" an auxiliary classifier.
_PLAN = (
    ("inception3a", 64, 96, 128, 16, 32, 32), ("inception3b", 128, 128, 192, 32, 96, 64), ("maxpool3",),
    ("inception4a", 192, 96, 208, 16, 48, 64), ("aux1",), ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64), ("inception4d", 112, 144, 288, 32, 64, 64), ("aux2",),
    ("inception4e", 256, 160, 320, 32, 128, 128), ("maxpool4",),
    ("inception5a", 256, 160, 320, 32, 128, 128), ("inception5b", 384, 192, 384, 48, 128, 128),
)


def _bn_unit(x, filters, kernel_size, name, **kwargs):
    return conv_bn_activation(x, filters, kernel_size, (f"{name}.conv", f"{name}.bn"), epsilon=1e-3, **kwargs)


def _auxiliary(x, num_classes, dropout, name):
    """The side classifier: average pooling to 4x4, a 1x1 convolution to 128 maps, a 1024-unit
    ReLU layer, dropout and the logits."""
    x = layers.AdaptiveAveragePooling2D(4, name=f"{name}.pool")(x)
    x = layers.Flatten(name=f"{name}.flatten")(_bn_unit(x, 128, 1, f"{name}.conv"))
    x = layers.Dense(1024, activation="relu", name=f"{name}.fc1")(x)
    return layers.Dense(num_classes, name=f"{name}.fc2")(layers.Dropout(dropout, name=f"{name}.dropout")(x))


def googlenet(num_classes=1000, aux_logits=False, input_shape=(3, 224, 224), dropout=0.2, aux_dropout=0.7,
              seed=None):
    """GoogLeNet: a 7x7/2, 1x1 and 3x3 stem with max pooling, nine inception modules in three
    stages separated by max pooling, global average pooling, dropout and the logits. As in
    torchvision, every convolution is followed by batch normalisation (epsilon 1e-3), the max
    pools round up (ceil_mode), and the "5x5" branch uses a 3x3 kernel.

    With aux_logits the model has three outputs, [logits, aux1, aux2]: the two side classifiers
    of the paper after inception4a and inception4d, which help training (compile with a list of
    losses and e.g. loss_weights=[1, 0.3, 0.3]); without them one output.

    Shapes: (N, 3, H, W) -> (N, num_classes); 6,624,904 parameters for 1000 classes
    (13,004,888 with the side classifiers). torchvision's pretrained GoogLeNet weights expect
    inputs scaled to (x - 0.5) / 0.5 for x in [0, 1] (what its transform_input does), not the
    ImageNet mean and standard deviation.

    >>> googlenet(num_classes=10, input_shape=(3, 64, 64)).output_shape
    (10,)
    """
    num_classes, input_shape = checked(num_classes, input_shape, "googlenet")
    image = Input(input_shape, name="image")
    x = _bn_unit(image, 64, 7, "conv1", strides=2, padding=3)
    x = layers.MaxPooling2D(3, strides=2, ceil_mode=True, name="maxpool1")(x)
    x = _bn_unit(_bn_unit(x, 64, 1, "conv2"), 192, 3, "conv3", padding=1)
    x = layers.MaxPooling2D(3, strides=2, ceil_mode=True, name="maxpool2")(x)
    side = []
    for name, *channels in _PLAN:
        if name.startswith("inception"):
            x = layers.InceptionModule(*channels, batch_norm=True, c5_kernel_size=3, name=name)(x)
        elif name.startswith("aux"):
            if aux_logits:
                side.append(_auxiliary(x, num_classes, aux_dropout, name))
        else:
            pool = 3 if name == "maxpool3" else 2
            x = layers.MaxPooling2D(pool, strides=2, ceil_mode=True, name=name)(x)
    x = layers.Dropout(dropout, name="dropout")(layers.GlobalAveragePooling2D(name="avgpool")(x))
    logits = layers.Dense(num_classes, name="fc")(x)
    return Model(image, [logits] + side if aux_logits else logits, name="googlenet", seed=seed)
