"""Augmenting ahead of time: copies of a data set written to an .npz file, the alternative to a
DataLoader augmenting on the fly when the same augmented set serves many runs.

>>> import numpy as np
>>> from pyconvx import augment
>>> augment_to_disk(np.zeros((5, 1, 8, 8)), np.arange(5), augment.RandomHorizontalFlip(), copies=3,
...                 path="digits_augmented.npz", seed=0)        # doctest: +SKIP
>>> np.load("digits_augmented.npz")["x"].shape                  # doctest: +SKIP
(15, 1, 8, 8)
"""
import numbers

import numpy as np

from .loader import DataLoader

__all__ = ["augment_to_disk"]


def augment_to_disk(x, y, transform, copies, path, seed=None, batch_size=256, num_workers=2):
    """Writes `copies` augmented versions of every image of x (N, C, H, W) to the .npz file `path`
    as "x" (copies * N, C, H', W') float32 (copy after copy, each in the order of x) and "y", y
    repeated the same way. Copy k is epoch k of a DataLoader(x, y, batch_size, shuffle=False,
    transform, num_workers, seed), so a seed gives the same file whatever num_workers is.
    """
    if isinstance(copies, bool) or not isinstance(copies, numbers.Integral) or copies < 1:
        raise ValueError(f"augment_to_disk: copies must be a positive int, got copies={copies!r}")
    if transform is None:
        raise ValueError("augment_to_disk: transform is required (copies without one would be identical)")
    loader = DataLoader(x, y, batch_size, shuffle=False, transform=transform, num_workers=num_workers, seed=seed)
    batches = [batch for _ in range(copies) for batch in loader]
    np.savez(path, x=np.concatenate([xb for xb, _ in batches]), y=np.concatenate([yb for _, yb in batches]))
