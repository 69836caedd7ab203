"""VGG-16 (Simonyan & Zisserman 2015), configuration D, as torchvision builds it."""
from .. import layers
from ..model import Sequential
from ._common import checked

__all__ = ["vgg16"]

# Filters of each 3x3 convolution; "M" a 2x2 max pool. Configuration D of the paper.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def build_vgg(config, num_classes, input_shape, dropout, seed, name, hidden=4096, pooled=7):
    """A VGG network: the convolution stack `config`, adaptive average pooling to pooled x
    pooled, then two `hidden`-unit ReLU layers each followed by dropout, and the logits. Layers
    are named by their index in torchvision's features and classifier sequences (a ReLU takes
    an index of its own there, fused into the convolution here)."""
    stack, index = [], 0
    for item in config:
        if item == "M":
            stack.append(layers.MaxPooling2D(2, name=f"features.{index}"))
            index += 1
        else:
            stack.append(layers.Conv2D(item, 3, padding=1, activation="relu", name=f"features.{index}"))
            index += 2
    stack += [
        layers.AdaptiveAveragePooling2D(pooled, name="avgpool"),
        layers.Flatten(name="flatten"),
        layers.Dense(hidden, activation="relu", name="classifier.0"),
        layers.Dropout(dropout, name="classifier.2"),
        layers.Dense(hidden, activation="relu", name="classifier.3"),
        layers.Dropout(dropout, name="classifier.5"),
        layers.Dense(num_classes, name="classifier.6"),
    ]
    return Sequential(stack, input_shape=input_shape, name=name, seed=seed)


def vgg16(num_classes=1000, input_shape=(3, 224, 224), dropout=0.5, seed=None):
    """VGG-16: thirteen 3x3 convolutions with ReLU (64, 64, 128, 128, 256 x 3, 512 x 6) in five
    stages closed by 2x2 max pooling, adaptive average pooling to 7x7 (inputs down to 32x32
    work), two 4096-unit ReLU layers with dropout, and num_classes logits.

    Shapes: (N, 3, H, W) -> (N, num_classes); 138,357,544 parameters for 1000 classes.

    >>> vgg16(num_classes=10, input_shape=(3, 32, 32)).layers[-1].name
    'classifier.6'
    """
    num_classes, input_shape = checked(num_classes, input_shape, "vgg16")
    return build_vgg(VGG16, num_classes, input_shape, dropout, seed, "vgg16")
