"""Real data that needs no network: the handwritten digits and sample photographs that ship
inside scikit-learn (the optional `datasets` extra: `pip install "pyconvx[datasets]"`).

>>> (x_train, y_train), (x_test, y_test) = load_digits(image_size=32)   # doctest: +SKIP
>>> x_train.shape, y_train.dtype                                        # doctest: +SKIP
((1438, 1, 32, 32), dtype('int64'))
"""
import numpy as np

from ._optional import require

__all__ = ["load_digits", "load_sample_images", "resize_bilinear"]


def _sklearn_datasets(function):
    return require("sklearn.datasets", f"pyconvx.datasets.{function} (data bundled with scikit-learn)", "datasets")


def _interpolation_matrix(size_out, size_in, start=0, length=None):
    """(..., size_out, size_in) weights of bilinear resampling with aligned pixel centres (as
    torch's interpolate(..., align_corners=False) without antialiasing) of the window
    [start, start + length) of an axis of size_in (default: the whole axis): output pixel i samples
    input coordinate start + (i + 0.5) * length / size_out - 0.5, clamped to the window's edge
    pixels. `start` and `length` may be arrays (one window per image of a batch): the leading axes
    of the result are theirs."""
    start = np.asarray(start, dtype=np.float64)[..., None]
    length = np.asarray(size_in if length is None else length, dtype=np.float64)[..., None]
    coords = start + np.clip((np.arange(size_out) + 0.5) * length / size_out - 0.5, 0, length - 1)
    low = np.floor(coords)
    frac = (coords - low)[..., None]
    # One-hot comparisons instead of a scatter: vectorised over the windows, and a `low + 1` past
    # the last pixel (weight 0 there) matches no column instead of indexing out of range.
    columns = np.arange(size_in)
    return (columns == low[..., None]) * (1 - frac) + (columns == low[..., None] + 1) * frac


def resize_bilinear(images, size):
    """Bilinear resampling of the last two axes of `images` to `size` (an int or (height, width)),
    as two small matrix products: rows, then columns.

    >>> resize_bilinear(np.arange(4.0).reshape(1, 2, 2), 4)[0, 0]
    array([0.  , 0.25, 0.75, 1.  ])
    """
    images = np.asarray(images, dtype=np.float64)
    height, width = (size, size) if np.isscalar(size) else size
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"resize_bilinear: size must be positive, got size={size!r}")
    rows = _interpolation_matrix(int(height), images.shape[-2])
    cols = _interpolation_matrix(int(width), images.shape[-1])
    return rows @ images @ cols.T


def load_digits(image_size=32, test_fraction=0.2, seed=0):
    """The 1,797 handwritten digits (8 x 8, 0-16 grey levels) bundled with scikit-learn, scaled to
    [0, 1], upscaled bilinearly to image_size x image_size, and split into train and test sets
    with the same share of every digit in both (a stratified split, shuffled by `seed`).

    Returns (x_train, y_train), (x_test, y_test): x (N, 1, image_size, image_size) float32, y (N,)
    int64 labels 0-9.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"load_digits: image_size must be an int >= 8, got image_size={image_size!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got test_fraction={test_fraction!r}")
    digits = _sklearn_datasets("load_digits").load_digits()
    images = resize_bilinear(digits.images / 16.0, int(image_size)).astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):  # ten classes: stratify class by class
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[:int(round(test_fraction * len(members)))]] = True
    order = rng.permutation(len(labels))
    train_idx, test_idx = order[~test[order]], order[test[order]]
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


def load_sample_images():
    """The two colour photographs bundled with scikit-learn (a Chinese temple, a flower), each
    (3, 427, 640) float32 in [0, 1] (CHW): real images for edge detection and augmentation."""
    bunch = _sklearn_datasets("load_sample_images").load_sample_images()
    return [np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0 for image in bunch.images]
