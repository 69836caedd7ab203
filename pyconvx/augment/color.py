"""Colour transforms: random offsets, brightness/contrast/saturation jitter, AlexNet's PCA
lighting noise, and per-channel normalisation. They work on any value range unless they say
otherwise; the photographs of pyconvx.datasets.load_sample_images are in [0, 1].

>>> import numpy as np
>>> x = np.full((2, 3, 4, 4), 0.5, dtype=np.float32)
>>> Normalize(0.5, 0.25)(ColorShift(shift=0)(x)).shape
(2, 3, 4, 4)
"""
import numpy as np

from ._params import channel_values, non_negative
from .compose import Transform

__all__ = ["ColorShift", "ColorJitter", "PCAColorAugmentation", "Normalize"]

# ITU-R BT.601 luma weights, the greyscale of torchvision and PIL ("L" mode).
LUMA = np.array([0.299, 0.587, 0.114])


def _require_channels(owner, x, counts):
    if x.shape[1] not in counts:
        raise ValueError(f"{owner}: expected images with {' or '.join(map(str, counts))} channels, "
                         f"got {x.shape[1]} channels (shape {x.shape})")


class ColorShift(Transform):
    """Adds a random offset, uniform in [-shift, shift] on a 0-`scale` range, to each channel of
    each image (per_channel=True: e.g. +20, -20, +20 to R, G, B) or one offset to all channels of
    an image (per_channel=False: a brightness shift). The default scale=255 reads `shift` in 8-bit
    levels and applies it to [0, 1] images (shift=20 adds at most 20/255); use scale=1 on images
    stored in 0-255. Values are not clipped.

    >>> ColorShift(shift=255, per_channel=False)(np.zeros((1, 3, 1, 1)), rng=np.random.default_rng(0)).ravel()
    array([0.27392337, 0.27392337, 0.27392337], dtype=float32)
    """

    def __init__(self, shift=20, per_channel=True, scale=255):
        self.shift = non_negative("ColorShift", "shift", shift)
        self.per_channel = bool(per_channel)
        self.scale = non_negative("ColorShift", "scale", scale)
        if self.scale == 0:
            raise ValueError(f"ColorShift: scale must be positive, got scale={scale!r}")

    def apply(self, x, rng):
        channels = x.shape[1] if self.per_channel else 1
        offsets = rng.uniform(-self.shift, self.shift, (len(x), channels, 1, 1)) / self.scale
        return x + offsets


def greyscale(x):
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma; a 1-channel batch is its own greyscale."""
    return x if x.shape[1] == 1 else np.tensordot(LUMA, x, axes=([0], [1]))[:, None]


class ColorJitter(Transform):
    """Random brightness, contrast and saturation, by torchvision's definitions on images in
    [0, 1]: each enabled property of each image gets a factor f drawn uniformly from
    [max(0, 1 - v), 1 + v] (v the argument; 0 leaves it alone), then

    - brightness: x * f (f = 0 is black);
    - contrast: f x + (1 - f) m, m the mean of the image's greyscale (f = 0 is flat grey);
    - saturation: f x + (1 - f) g, g the greyscale image (f = 0 is grey; needs 3 channels);

    applied in that fixed order, each followed by clipping to [0, 1]. Without the clipping the
    three maps commute (each is linear and leaves the greyscale mean consistent), so the order
    only matters through the clipping, which torchvision's random order merely shuffles.

    >>> ColorJitter(brightness=0.5)(np.full((2, 3, 1, 1), 0.5), rng=np.random.default_rng(0))[:, 0].ravel()
    array([0.56848085, 0.38489336], dtype=float32)
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0):
        self.brightness = non_negative("ColorJitter", "brightness", brightness)
        self.contrast = non_negative("ColorJitter", "contrast", contrast)
        self.saturation = non_negative("ColorJitter", "saturation", saturation)

    def factors(self, amount, n, rng):
        return rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount, n)[:, None, None, None]

    def apply(self, x, rng):
        if self.saturation:
            _require_channels("ColorJitter", x, (3,))
        elif self.contrast:
            _require_channels("ColorJitter", x, (1, 3))
        x = x.astype(np.float64)
        if self.brightness:
            x = np.clip(x * self.factors(self.brightness, len(x), rng), 0.0, 1.0)
        if self.contrast:
            f = self.factors(self.contrast, len(x), rng)
            x = np.clip(f * x + (1 - f) * greyscale(x).mean(axis=(1, 2, 3), keepdims=True), 0.0, 1.0)
        if self.saturation:
            f = self.factors(self.saturation, len(x), rng)
            x = np.clip(f * x + (1 - f) * greyscale(x), 0.0, 1.0)
        return x


class PCAColorAugmentation(Transform):
    """AlexNet's lighting noise (Krizhevsky, Sutskever and Hinton, 2012): `fit(images)` finds the
    eigenvalues lambda_i and eigenvectors p_i of the 3 x 3 covariance of RGB pixel values over a
    data set; each call then adds sum_i alpha_i lambda_i p_i, alpha_i ~ N(0, std^2) drawn once per
    image, to every pixel of that image. The offsets are in the units of the fitted images.

    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((10, 3, 8, 8))
    >>> pca = PCAColorAugmentation(std=0.1).fit(images)
    >>> pca.eigenvalues.shape, pca.eigenvectors.shape
    ((3,), (3, 3))
    >>> pca(images, rng=rng).shape
    (10, 3, 8, 8)
    """

    def __init__(self, std=0.1):
        self.std = non_negative("PCAColorAugmentation", "std", std)
        self.eigenvalues = self.eigenvectors = None

    def fit(self, images):
        """images (N, 3, H, W): sets eigenvalues (3,) and eigenvectors (3, 3) (columns); returns self."""
        images = np.asarray(images, dtype=np.float64)
        if images.ndim != 4:
            raise ValueError(f"PCAColorAugmentation.fit: expected an (N, 3, H, W) data set, got shape {images.shape}")
        _require_channels("PCAColorAugmentation.fit", images, (3,))
        pixels = images.transpose(1, 0, 2, 3).reshape(3, -1)
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(np.cov(pixels))
        return self

    def apply(self, x, rng):
        if self.eigenvalues is None:
            raise RuntimeError("PCAColorAugmentation: call fit(images) on the training images before transforming")
        _require_channels("PCAColorAugmentation", x, (3,))
        alpha = rng.normal(0.0, self.std, (len(x), 3))
        offsets = (alpha * self.eigenvalues) @ self.eigenvectors.T          # (N, 3): sum_i alpha_i lambda_i p_i
        return x + offsets[:, :, None, None]


class Normalize(Transform):
    """(x - mean) / std per channel; mean and std are numbers or one value per channel, std > 0.

    >>> Normalize([0.5, 0.0], [0.5, 2.0])(np.ones((2, 1, 1)))[:, 0, 0]
    array([1. , 0.5], dtype=float32)
    """

    def __init__(self, mean, std):
        self.mean = channel_values("Normalize", "mean", mean)
        self.std = channel_values("Normalize", "std", std, positive=True)

    def apply(self, x, rng):
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, x.shape[1]):
                raise ValueError(f"Normalize: {name} has {len(values)} values for images with {x.shape[1]} channels")
        return (x - self.mean) / self.std
