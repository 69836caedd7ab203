"""The calling convention every transform shares, and the two ways of combining them.

A transform is called as ``transform(x, rng=None)`` on an NCHW batch or a single CHW image and
returns float32 of the same layout. ``rng`` is a ``numpy.random.Generator``; None means a fresh,
unseeded one. Random transforms draw each image's parameters separately, from ``rng`` only, so a
given generator state reproduces a given output.
"""
import numpy as np

from ._params import probability

__all__ = ["Transform", "Compose", "RandomApply"]


def as_generator(rng):
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got rng={rng!r}")
    return rng


class Transform:
    """Base class: subclasses implement ``apply(x, rng)`` on an (N, C, H, W) float32 batch.

    >>> class Negate(Transform):
    ...     def apply(self, x, rng):
    ...         return -x
    >>> Negate()(np.ones((3, 2, 2))).shape      # a single CHW image stays CHW
    (3, 2, 2)
    """

    def __call__(self, x, rng=None):
        rng = as_generator(rng)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected an (N, C, H, W) batch or a (C, H, W) image, "
                             f"got shape {x.shape}")
        out = self.apply(x if x.ndim == 4 else x[None], rng)
        out = np.asarray(out, dtype=np.float32)
        return out if x.ndim == 4 else out[0]

    def apply(self, x, rng):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose(Transform):
    """Applies `transforms` in order, passing the same generator along.

    >>> t = Compose([RandomApply(Compose([]), p=0.5)])
    >>> t(np.zeros((4, 1, 5, 5)), rng=np.random.default_rng(0)).shape
    (4, 1, 5, 5)
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ValueError(f"Compose: every transform must be callable, got {t!r}")

    def apply(self, x, rng):
        for t in self.transforms:
            x = t(x, rng=rng)
        return x


class RandomApply(Transform):
    """Applies `transform` to each image with probability `p` (one draw per image), to the chosen
    images together as one batch. The transform must keep the image shape.

    >>> from pyconvx.augment import RandomHorizontalFlip
    >>> x = np.tile(np.arange(3.0), (4, 1, 1, 1))                  # four images [0, 1, 2]
    >>> RandomApply(RandomHorizontalFlip(p=1.0), p=0.5)(x, rng=np.random.default_rng(0))[:, 0, 0]
    array([[0., 1., 2.],
           [2., 1., 0.],
           [2., 1., 0.],
           [2., 1., 0.]], dtype=float32)
    """

    def __init__(self, transform, p=0.5):
        if not callable(transform):
            raise ValueError(f"RandomApply: transform must be callable, got transform={transform!r}")
        self.transform = transform
        self.p = probability("RandomApply", p)

    def apply(self, x, rng):
        chosen = rng.random(len(x)) < self.p
        out = x.copy()
        if chosen.any():
            changed = self.transform(x[chosen], rng=rng)
            if changed.shape != x[chosen].shape:
                raise ValueError(f"RandomApply: the transform must keep the image shape, {x[chosen].shape} "
                                 f"became {changed.shape}")
            out[chosen] = changed
        return out
