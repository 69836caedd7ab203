"""Data augmentation on NCHW float32 batches (and single CHW images), vectorised per batch.

Every transform is called as ``transform(x, rng=None)`` with ``rng`` a numpy.random.Generator;
each image of a batch gets its own random draw, and a generator state reproduces its output.

>>> import numpy as np
>>> from pyconvx import augment
>>> t = augment.Compose([augment.RandomCrop(28, padding=2), augment.RandomHorizontalFlip(),
...                      augment.ColorJitter(brightness=0.2)])
>>> t(np.zeros((16, 1, 28, 28)), rng=np.random.default_rng(0)).shape
(16, 1, 28, 28)
"""
from .color import ColorJitter, ColorShift, Normalize, PCAColorAugmentation
from .compose import Compose, RandomApply, Transform
from .crops import five_crop, ten_crop
from .geometric import (CenterCrop, ElasticWarp, RandomAffine, RandomCrop, RandomHorizontalFlip, RandomResizedCrop,
                        RandomRotation, RandomVerticalFlip, Resize)
from .tiling import grid

__all__ = ["Transform", "Compose", "RandomApply", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomCrop",
           "CenterCrop", "Resize", "RandomResizedCrop", "RandomRotation", "RandomAffine", "ElasticWarp", "ColorShift",
           "ColorJitter", "PCAColorAugmentation", "Normalize", "grid", "five_crop", "ten_crop"]
