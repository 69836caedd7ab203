"""LeNet-5 (LeCun et al. 1998)."""
from .. import layers
from ..model import Sequential
from ._common import checked

__all__ = ["lenet5"]


def lenet5(num_classes=10, input_shape=(1, 32, 32), seed=None):
    """LeNet-5 as in the 1998 paper: 5x5 convolutions to 6, 16 and 120 maps with tanh, 2x2
    average pooling after the first two, a 84-unit tanh layer, then num_classes logits. (The
    paper's trainable subsampling coefficients, partial C3 connections and RBF output are
    replaced by plain average pooling, full connections and a linear layer, the common reading.)

    Shapes: (N, 1, 32, 32) -> (N, num_classes); 61,706 parameters for 10 classes.
    Layers c1, s2, c3, s4, c5, flatten, f6, output.

    >>> model = lenet5()
    >>> model.output_shape, model.count_params()
    ((10,), 61706)
    """
    num_classes, input_shape = checked(num_classes, input_shape, "lenet5")
    return Sequential([
        layers.Conv2D(6, 5, activation="tanh", kernel_initializer="glorot_uniform", name="c1"),
        layers.AveragePooling2D(2, name="s2"),
        layers.Conv2D(16, 5, activation="tanh", kernel_initializer="glorot_uniform", name="c3"),
        layers.AveragePooling2D(2, name="s4"),
        layers.Conv2D(120, 5, activation="tanh", kernel_initializer="glorot_uniform", name="c5"),
        layers.Flatten(name="flatten"),
        layers.Dense(84, activation="tanh", name="f6"),
        layers.Dense(num_classes, name="output"),
    ], input_shape=input_shape, name="lenet5", seed=seed)
