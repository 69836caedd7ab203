"""The fixed crops of test-time augmentation: the four corners and the centre (five_crop), and
the same five of the mirrored images (ten_crop), as in AlexNet's evaluation (Krizhevsky et al.
2012: the network's softmax averaged over ten 224 x 224 patches of each 256 x 256 image)."""
import numpy as np

from ._params import size_pair
from .geometric import _check_fits

__all__ = ["five_crop", "ten_crop"]


def _as_float32(images):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim not in (3, 4):
        raise ValueError(f"crops: images must be NCHW or one CHW image, got shape {images.shape}")
    return images


def five_crop(images, size):
    """(5, N, C, h, w) for NCHW `images` ((5, C, h, w) for one CHW image): the top-left, top-right,
    bottom-left and bottom-right corners, then the centre (rounded as CenterCrop).

    >>> five_crop(np.zeros((2, 3, 8, 8)), 6).shape
    (5, 2, 3, 6, 6)
    """
    images = _as_float32(images)
    h, w = size_pair("five_crop", "size", size)
    _check_fits("five_crop", (h, w), images)
    height, width = images.shape[-2:]
    top, left = int(round((height - h) / 2)), int(round((width - w) / 2))
    corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w), (top, left)]
    return np.stack([images[..., i:i + h, j:j + w] for i, j in corners])


def ten_crop(images, size):
    """(10, N, C, h, w): the five crops of five_crop, then the mirror image of each, in the same
    order (crop k + 5 is crop k flipped left to right).

    >>> crops = ten_crop(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    >>> crops.shape, crops[0, 0, 0].tolist(), crops[5, 0, 0].tolist()
    ((10, 1, 1, 2, 2), [[0.0, 1.0], [4.0, 5.0]], [[1.0, 0.0], [5.0, 4.0]])
    """
    five = five_crop(images, size)
    return np.concatenate([five, five[..., ::-1]])
