"""AlexNet (Krizhevsky et al. 2012) with torchvision's layer sizes."""
from .. import layers
from ..model import Sequential
from ._common import checked

__all__ = ["alexnet"]


def alexnet(num_classes=1000, input_shape=(3, 224, 224), dropout=0.5, seed=None):
    """AlexNet as torchvision builds it: convolutions 11x11/4 to 64, 5x5 to 192, then 3x3 to
    384, 256 and 256 maps with ReLU, 3x3/2 max pooling after the 1st, 2nd and 5th, adaptive
    average pooling to 6x6 (so inputs other than 224x224, down to 63x63, work), then dropout,
    two 4096-unit ReLU layers (dropout before the second) and num_classes logits. No local
    response normalisation (torchvision's single-GPU variant; see layers.LocalResponseNormalization).

    Shapes: (N, 3, H, W) -> (N, num_classes); 61,100,840 parameters for 1000 classes.

    >>> alexnet(num_classes=10, input_shape=(3, 64, 64)).layers[0].name
    'features.0'
    """
    num_classes, input_shape = checked(num_classes, input_shape, "alexnet")
    return Sequential([
        layers.Conv2D(64, 11, strides=4, padding=2, activation="relu", name="features.0"),
        layers.MaxPooling2D(3, strides=2, name="features.2"),
        layers.Conv2D(192, 5, padding=2, activation="relu", name="features.3"),
        layers.MaxPooling2D(3, strides=2, name="features.5"),
        layers.Conv2D(384, 3, padding=1, activation="relu", name="features.6"),
        layers.Conv2D(256, 3, padding=1, activation="relu", name="features.8"),
        layers.Conv2D(256, 3, padding=1, activation="relu", name="features.10"),
        layers.MaxPooling2D(3, strides=2, name="features.12"),
        layers.AdaptiveAveragePooling2D(6, name="avgpool"),
        layers.Flatten(name="flatten"),
        layers.Dropout(dropout, name="classifier.0"),
        layers.Dense(4096, activation="relu", name="classifier.1"),
        layers.Dropout(dropout, name="classifier.3"),
        layers.Dense(4096, activation="relu", name="classifier.4"),
        layers.Dense(num_classes, name="classifier.6"),
    ], input_shape=input_shape, name="alexnet", seed=seed)
