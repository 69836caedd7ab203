"""Geometric transforms: flips, crops, resizing, rotations, affine maps and elastic warps, each
drawing its own parameters per image from the generator it is called with.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
>>> RandomCrop(28)(x, rng=np.random.default_rng(1)).shape
(8, 3, 28, 28)
"""
import math
import numbers

import numpy as np

from .. import ops
from ..datasets import _interpolation_matrix, resize_bilinear
from ._params import non_negative, ordered_pair, probability, size_pair, symmetric_range
from .compose import Transform
from .sampling import affine_matrices, bilinear_sample, warp_affine

__all__ = ["RandomHorizontalFlip", "RandomVerticalFlip", "RandomCrop", "CenterCrop", "Resize", "RandomResizedCrop",
           "RandomRotation", "RandomAffine", "ElasticWarp"]


class RandomHorizontalFlip(Transform):
    """Mirrors each image left to right with probability p.

    >>> RandomHorizontalFlip(p=1.0)(np.array([[[1.0, 2.0, 3.0]]]))
    array([[[3., 2., 1.]]], dtype=float32)
    """

    axis = -1

    def __init__(self, p=0.5):
        self.p = probability(type(self).__name__, p)

    def apply(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = np.flip(x[flip], axis=self.axis)
        return out


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirrors each image top to bottom with probability p.

    >>> RandomVerticalFlip(p=1.0)(np.array([[[1.0], [2.0]]]))[0, :, 0]
    array([2., 1.], dtype=float32)
    """

    axis = -2


def _check_fits(owner, size, x, padding=(0, 0)):
    """Refuses a size = (h, w) window larger than the images of x, each side padded by `padding`
    = (rows, columns) pixels."""
    image = (x.shape[-2] + 2 * padding[0], x.shape[-1] + 2 * padding[1])
    if size[0] > image[0] or size[1] > image[1]:
        padded = f" with padding={padding}" if any(padding) else ""
        raise ValueError(f"{owner}: size={size} is larger than the image {image}{padded}")
    return image


class RandomCrop(Transform):
    """A size = (h, w) window (an int: square) at a uniformly random place in each image, after
    padding every side by `padding` pixels of value `fill` (an int, or (rows, columns) for the
    top and bottom, left and right). With size the image's own and padding s, each image moves by
    up to s pixels along each axis.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> RandomCrop(3, padding=1, fill=-1.0)(x, rng=np.random.default_rng(0))[0, 0]
    array([[ 3.,  4.,  5.],
           [ 6.,  7.,  8.],
           [-1., -1., -1.]], dtype=float32)
    """

    def __init__(self, size, padding=0, fill=0.0):
        self.size = size_pair("RandomCrop", "size", size)
        pad = (padding, padding) if np.isscalar(padding) else tuple(padding)
        if len(pad) != 2 or not all(float(v).is_integer() and v >= 0 for v in pad):
            raise ValueError(f"RandomCrop: padding must be an int >= 0 or a (rows, columns) pair of them, "
                             f"got padding={padding!r}")
        self.padding = (int(pad[0]), int(pad[1]))
        self.fill = float(fill)

    def apply(self, x, rng):
        (pad_h, pad_w), (height, width) = self.padding, self.size
        padded = _check_fits("RandomCrop", self.size, x, self.padding)
        rows, columns = padded[0] - height + 1, padded[1] - width + 1
        # One bound for both draws where it is the same: the same numbers from the generator, at
        # half the cost of per-row bounds.
        bounds = rows if rows == columns else [[rows], [columns]]
        top, left = rng.integers(0, bounds, (2, len(x)))
        # The window of the padded image, read from the image itself (fill outside it).
        return ops.crop_windows(x, top - pad_h, left - pad_w, self.size, self.fill)


class CenterCrop(Transform):
    """The size = (h, w) window in the middle of each image (rounded towards the top left when
    the margins are odd, as torchvision does).

    >>> CenterCrop(1)(np.arange(9.0).reshape(1, 3, 3))
    array([[[4.]]], dtype=float32)
    """

    def __init__(self, size):
        self.size = size_pair("CenterCrop", "size", size)

    def apply(self, x, rng):
        _check_fits("CenterCrop", self.size, x)
        top = int(round((x.shape[-2] - self.size[0]) / 2))
        left = int(round((x.shape[-1] - self.size[1]) / 2))
        return x[..., top:top + self.size[0], left:left + self.size[1]]


class Resize(Transform):
    """Bilinear resampling (aligned pixel centres, no antialiasing: torch's interpolate with
    align_corners=False, antialias=False; pyconvx.datasets.resize_bilinear). size = (h, w) is the
    output size; an int is the length of the shorter side, the other keeping the aspect ratio (as
    torchvision), rounded down.

    >>> Resize(4)(np.zeros((2, 3, 8, 16))).shape
    (2, 3, 4, 8)
    """

    def __init__(self, size):
        shorter_side = isinstance(size, numbers.Integral) and size > 0
        self.size = int(size) if shorter_side else size_pair("Resize", "size", size)

    def output_size(self, height, width):
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, max(1, int(self.size * width / height))
        return max(1, int(self.size * height / width)), self.size

    def apply(self, x, rng):
        return resize_bilinear(x, self.output_size(*x.shape[-2:]))


class RandomResizedCrop(Transform):
    """A random window of each image, bilinearly resized to `size` (the standard ImageNet
    augmentation). The window's area is a fraction of the image's drawn uniformly from `scale`,
    its aspect ratio (width / height) drawn log-uniformly from `ratio`; its sides are rounded to
    whole pixels and it is placed uniformly at random. A draw that does not fit is retried, up to
    ten times; after that the window is the largest centred one whose ratio lies within `ratio`.

    The resampling is the one of Resize applied to the window alone (edge pixels of the window are
    repeated, nothing outside it leaks in), done for the whole batch at once as two batched matrix
    products with one interpolation matrix per image.

    >>> RandomResizedCrop(16)(np.zeros((5, 3, 40, 30)), rng=np.random.default_rng(0)).shape
    (5, 3, 16, 16)
    """

    attempts = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = size_pair("RandomResizedCrop", "size", size)
        self.scale = ordered_pair("RandomResizedCrop", "scale", scale)
        self.ratio = ordered_pair("RandomResizedCrop", "ratio", ratio)
        if self.ratio[0] <= 0:
            raise ValueError(f"RandomResizedCrop: ratio must be positive, got ratio={ratio!r}")

    def windows(self, n, height, width, rng):
        """(top, left, h, w), each (n,) int64: the windows of n images of height x width."""
        area = height * width * rng.uniform(*self.scale, (n, self.attempts))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), (n, self.attempts)))
        w = np.round(np.sqrt(area * aspect)).astype(np.int64)
        h = np.round(np.sqrt(area / aspect)).astype(np.int64)
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = np.argmax(fits, axis=1)
        found = fits[np.arange(n), first]
        h, w = h[np.arange(n), first], w[np.arange(n), first]
        # Fallback: the whole image, narrowed to the nearest allowed aspect ratio.
        fallback_h, fallback_w = height, width
        if width / height < self.ratio[0]:
            fallback_h = int(round(width / self.ratio[0]))
        elif width / height > self.ratio[1]:
            fallback_w = int(round(height * self.ratio[1]))
        h, w = np.where(found, h, fallback_h), np.where(found, w, fallback_w)
        top = np.where(found, np.floor(rng.random(n) * (height - h + 1)), (height - h) // 2).astype(np.int64)
        left = np.where(found, np.floor(rng.random(n) * (width - w + 1)), (width - w) // 2).astype(np.int64)
        return top, left, h, w

    def apply(self, x, rng):
        top, left, h, w = self.windows(len(x), *x.shape[-2:], rng)
        rows = _interpolation_matrix(self.size[0], x.shape[-2], top, h)      # (N, h_out, H)
        cols = _interpolation_matrix(self.size[1], x.shape[-1], left, w)     # (N, w_out, W)
        return rows[:, None] @ x @ cols.transpose(0, 2, 1)[:, None]


class RandomRotation(Transform):
    """Rotates each image about its centre by an angle drawn uniformly from `degrees` (a number d:
    (-d, d); or (min, max)), counter-clockwise for positive angles, bilinear, `fill` in the corners
    the rotation uncovers.

    >>> x = np.zeros((1, 3, 3)); x[0, 1, 2] = 1.0
    >>> RandomRotation((90, 90))(x)[0].round(6)
    array([[0., 1., 0.],
           [0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    def __init__(self, degrees, fill=0.0):
        self.degrees = symmetric_range("RandomRotation", "degrees", degrees)
        self.fill = float(fill)

    def apply(self, x, rng):
        return warp_affine(x, affine_matrices(angle=rng.uniform(*self.degrees, len(x))), self.fill)


class RandomAffine(Transform):
    """A random affine map about each image's centre (see pyconvx.augment.sampling.affine_matrices
    for the order: shear, scale, rotation, translation), bilinear, `fill` outside.

    - degrees: a number d (angle in (-d, d)) or (min, max), counter-clockwise;
    - translate: None or (a, b): a shift of up to a * W pixels horizontally and b * H vertically,
      rounded to whole pixels (as torchvision), 0 <= a, b <= 1;
    - scale: None or (min, max), a zoom factor drawn uniformly;
    - shear: None, a number s (x-shear in (-s, s) degrees), (min, max) for the x-shear, or
      (xmin, xmax, ymin, ymax) for both.

    >>> t = RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5)
    >>> t(np.zeros((4, 1, 28, 28)), rng=np.random.default_rng(0)).shape
    (4, 1, 28, 28)
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None, fill=0.0):
        owner = "RandomAffine"
        self.degrees = symmetric_range(owner, "degrees", degrees)
        if translate is not None:
            fractions = tuple(float(v) for v in np.ravel(translate))
            if len(fractions) != 2 or not all(0.0 <= v <= 1.0 for v in fractions):
                raise ValueError(f"{owner}: translate must be a pair of fractions in [0, 1], got translate={translate!r}")
            translate = fractions
        self.translate = translate
        self.scale = None if scale is None else ordered_pair(owner, "scale", scale)
        if self.scale is not None and self.scale[0] <= 0:
            raise ValueError(f"{owner}: scale must be positive, got scale={scale!r}")
        if shear is None:
            self.shear = None
        elif np.isscalar(shear) or len(shear) == 2:
            self.shear = symmetric_range(owner, "shear", shear) + (0.0, 0.0)
        elif len(shear) == 4:
            self.shear = symmetric_range(owner, "shear", shear[:2]) + symmetric_range(owner, "shear", shear[2:])
        else:
            raise ValueError(f"{owner}: shear must be a number or 2 or 4 numbers, got shear={shear!r}")
        self.fill = float(fill)

    def matrices(self, n, height, width, rng):
        """The forward (n, 2, 3) maps for n images of height x width (see affine_matrices)."""
        angle = rng.uniform(*self.degrees, n)
        translate = np.zeros((n, 2))
        if self.translate is not None:
            reach = np.array([self.translate[0] * width, self.translate[1] * height])
            translate = np.round(rng.uniform(-reach, reach, (n, 2)))
        scale = np.ones(n) if self.scale is None else rng.uniform(*self.scale, n)
        shear = np.zeros((n, 2))
        if self.shear is not None:
            shear = np.stack([rng.uniform(*self.shear[:2], n), rng.uniform(*self.shear[2:], n)], axis=1)
        return affine_matrices(angle, translate, scale, shear)

    def apply(self, x, rng):
        return warp_affine(x, self.matrices(len(x), *x.shape[-2:], rng), self.fill)


def gaussian_matrix(size, sigma):
    """(size, size) matrix M with M @ v the Gaussian smoothing of v (kernel truncated at 4 sigma,
    normalised, edges reflected: scipy.ndimage.gaussian_filter1d's defaults), so smoothing an image
    along both axes is two matrix products.

    >>> gaussian_matrix(3, 0.0)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2) if sigma > 0 else (offsets == 0).astype(np.float64)
    kernel /= kernel.sum()
    # Reflection about the edges ("d c b a | a b c d | d c b a") has period 2 * size.
    source = (np.arange(size)[:, None] + offsets) % (2 * size)
    source = np.where(source < size, source, 2 * size - 1 - source)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.broadcast_to(np.arange(size)[:, None], source.shape), source),
              np.broadcast_to(kernel, source.shape))
    return matrix


class ElasticWarp(Transform):
    """Elastic distortion (Simard, Steinkraus and Platt, 2003): each image gets a random
    displacement field, uniform in [-1, 1] per pixel and axis, smoothed by a Gaussian of `sigma`
    pixels and scaled by `alpha` pixels; output pixel (i, j) reads the input bilinearly at
    (i + dy, j + dx), `fill` past the edges. Smoothing shrinks the field by about
    1 / (sigma * sqrt(12 pi)) at sigma >> 1, hence the large alphas of the paper (alpha 34,
    sigma 4 on 28 x 28 digits).

    >>> ElasticWarp(alpha=8.0, sigma=3.0)(np.zeros((2, 1, 28, 28)), rng=np.random.default_rng(0)).shape
    (2, 1, 28, 28)
    """

    def __init__(self, alpha, sigma, fill=0.0):
        self.alpha = non_negative("ElasticWarp", "alpha", alpha)
        self.sigma = non_negative("ElasticWarp", "sigma", sigma)
        self.fill = float(fill)

    def displacements(self, n, height, width, rng):
        """(dy, dx), each (n, height, width) pixels: the smoothed, scaled random fields."""
        field = rng.uniform(-1.0, 1.0, (2, n, height, width))
        smooth = gaussian_matrix(height, self.sigma) @ field @ gaussian_matrix(width, self.sigma).T
        return self.alpha * smooth[0], self.alpha * smooth[1]

    def apply(self, x, rng):
        n, _, height, width = x.shape
        dy, dx = self.displacements(n, height, width, rng)
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        return bilinear_sample(x, cols + dx, rows + dy, self.fill)
