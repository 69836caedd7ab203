"""Tiling a batch into one picture, to look at what a transform does."""
import numpy as np

__all__ = ["grid"]


def grid(images, nrow=8, padding=2, fill=0.0):
    """images (N, C, H, W) -> one (C, rows * (H + padding) + padding, nrow * (W + padding) + padding)
    image: the batch laid out left to right, nrow per row, top to bottom, `padding` pixels of
    `fill` around and between them (the empty places of a last, incomplete row are `fill` too).

    >>> grid(np.ones((5, 3, 4, 4)), nrow=2, padding=1).shape
    (3, 16, 11)
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"grid: images must be a non-empty (N, C, H, W) batch, got shape {images.shape}")
    if not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"grid: nrow must be a positive int, got nrow={nrow!r}")
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"grid: padding must be an int >= 0, got padding={padding!r}")
    n, channels, height, width = images.shape
    columns = min(nrow, n)
    rows = -(-n // columns)
    cells = np.full((rows * columns, channels, height + padding, width + padding), fill, dtype=np.float32)
    cells[:n, :, padding:, padding:] = images
    # (rows, columns, C, h, w) -> (C, rows, h, columns, w): each cell's own top and left padding.
    tiled = cells.reshape(rows, columns, channels, height + padding, width + padding).transpose(2, 0, 3, 1, 4)
    tiled = tiled.reshape(channels, rows * (height + padding), columns * (width + padding))
    return np.pad(tiled, ((0, 0), (0, padding), (0, padding)), constant_values=fill)
