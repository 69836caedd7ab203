"""Network layers over NCHW float32 batches: Keras names and arguments, the C++ kernels underneath.

Each layer has forward(x, training) and backward(grad), builds its parameters on the first input
(or when a model builds it), keeps them in `params` with gradients in `grads`, and has a
`trainable` flag and a `name`.

>>> import numpy as np
>>> from pyconvx import layers
>>> conv = layers.Conv2D(4, 3, padding="same", activation="relu")
>>> conv.forward(np.ones((2, 1, 8, 8), np.float32)).shape
(2, 4, 8, 8)
"""
from .activation import ACTIVATIONS, Activation, ReLU
from .base import Layer
from .blocks import Block, InceptionModule, ResidualBlock
from .conv import Conv2D
from .core import Dropout, Flatten
from .dense import Dense
from .graph import Input
from .merge import Add, Concatenate
from .normalization import BatchNormalization, LocalResponseNormalization
from .pooling import AdaptiveAveragePooling2D, AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D

__all__ = ["Layer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Dense", "Flatten",
           "Activation", "ReLU", "BatchNormalization", "Dropout", "LocalResponseNormalization", "ACTIVATIONS",
           "Concatenate", "Add", "Input", "AdaptiveAveragePooling2D",
           "Block", "ResidualBlock", "InceptionModule"]
