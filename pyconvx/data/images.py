"""Images from and to files (PNG, JPEG, ... through Pillow: the optional `images` extra,
`pip install "pyconvx[images]"`), and a picture of what an augmentation does.

>>> image = load_image("photo.jpg")          # doctest: +SKIP
>>> image.shape, image.dtype                 # doctest: +SKIP
((3, 427, 640), dtype('float32'))
"""
import numpy as np

from .._optional import require
from ..augment import Resize, grid

__all__ = ["load_image", "save_image", "save_augmentation_grid"]

# Pillow modes holding one grey channel; every other mode is read as RGB (alpha dropped).
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _pillow(function):
    return require("PIL.Image", f"pyconvx.data.{function} (reading and writing image files)", "images")


def load_image(path):
    """The image file at `path` as (C, H, W) float32 in [0, 1]: C = 3 (RGB) for colour images,
    C = 1 for greyscale ones. An alpha channel is dropped (the colours are kept as stored, not
    composited over a background); palette and CMYK images are converted to RGB. 8 bits per
    channel: 16-bit greyscale is reduced to 8 bits by Pillow.

    >>> load_image("digit.png").shape            # a greyscale PNG  # doctest: +SKIP
    (1, 28, 28)
    """
    Image = _pillow("load_image")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if image.mode in _GREY_MODES else "RGB")
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"load_image: no file at path={str(path)!r}") from None
    except OSError as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ValueError(f"load_image: cannot read an image from path={str(path)!r}: {exc}") from exc
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def save_image(path, image):
    """Writes `image`, (C, H, W) with C = 1 or 3, or (H, W), floats in [0, 1] (values outside are
    clipped), as an 8-bit file whose format follows the extension of `path` (.png, .jpg, ...).
    JPEG is written at quality 95; PNG is lossless, so load_image gives back the values rounded to
    multiples of 1/255.

    >>> save_image("grid.png", np.zeros((3, 8, 8)))   # doctest: +SKIP
    """
    Image = _pillow("save_image")
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    elif array.ndim != 2:
        raise ValueError(f"save_image: image must be (C, H, W) with C = 1 or 3, or (H, W), got shape {array.shape}")
    if array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"save_image: image must be non-empty and finite, got shape {array.shape}")
    pixels = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    extension = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
    options = {"quality": 95} if extension in ("jpg", "jpeg") else {}
    try:
        Image.fromarray(pixels).save(path, **options)
    except ValueError as exc:  # Pillow: unknown extension
        raise ValueError(f"save_image: cannot choose an image format from path={str(path)!r} ({exc}); "
                         f"use an extension such as .png or .jpg") from exc


def save_augmentation_grid(images, transform, path, copies=8, seed=0):
    """Writes a picture of what `transform` does to `images` ((N, C, H, W), or one (C, H, W)):
    one row per image, the image itself first, then `copies` augmented versions of it (drawn from
    numpy.random.default_rng(seed)). The originals are resized to the transform's output size when
    it changes the size. Returns the grid written, (C, rows, columns) float32.

    >>> from pyconvx import augment
    >>> save_augmentation_grid(np.zeros((2, 3, 16, 16)), augment.RandomHorizontalFlip(), "grid.png",
    ...                        copies=3).shape      # doctest: +SKIP
    (3, 38, 74)
    """
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"save_augmentation_grid: copies must be a positive int, got copies={copies!r}")
    if not callable(transform):
        raise ValueError(f"save_augmentation_grid: transform must be callable, got transform={transform!r}")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"save_augmentation_grid: images must be (N, C, H, W) or (C, H, W), got shape "
                         f"{images.shape}")
    augmented = transform(np.repeat(images, copies, axis=0), rng=np.random.default_rng(seed))
    augmented = np.asarray(augmented, dtype=np.float32).reshape((len(images), copies) + augmented.shape[1:])
    originals = images if images.shape[2:] == augmented.shape[3:] else Resize(augmented.shape[3:])(images)
    rows = np.concatenate([originals[:, None], augmented], axis=1)
    tiled = grid(rows.reshape((-1,) + rows.shape[2:]), nrow=copies + 1, fill=1.0)
    save_image(path, tiled)
    return tiled
