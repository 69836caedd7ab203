"""Feeding networks: a loader making augmented mini-batches in background threads, augmented
copies written ahead of time, and images from and to files.

>>> import numpy as np
>>> from pyconvx import augment, data
>>> loader = data.DataLoader(np.zeros((20, 1, 8, 8)), np.zeros(20), batch_size=8,
...                          transform=augment.RandomHorizontalFlip(), seed=0)
>>> [x.shape[0] for x, _ in loader]
[8, 8, 4]
"""
from .disk import augment_to_disk
from .images import load_image, save_augmentation_grid, save_image
from .loader import DataLoader

__all__ = ["DataLoader", "augment_to_disk", "load_image", "save_image", "save_augmentation_grid"]
