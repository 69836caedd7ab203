"""pyconvx.augment's colour transforms against their definitions, written out per image."""
import copy

import numpy as np
import pytest

from pyconvx import augment


def photos(rng, n=6, channels=3):
    return rng.random((n, channels, 5, 4), dtype=np.float32)


def grey(image):
    """The luma of one RGB image (ITU-R BT.601), or the image itself if it has one channel."""
    if image.shape[0] == 1:
        return image[0]
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]


def test_color_shift_adds_one_offset_per_channel_within_the_range(rng):
    x = photos(rng, 200)
    out = augment.ColorShift(shift=20)(x, rng=np.random.default_rng(0))
    offsets = (out - x).astype(np.float64)
    assert np.allclose(offsets, offsets[:, :, :1, :1], atol=1e-6)   # the same offset over the image
    offsets = offsets[:, :, 0, 0] * 255
    assert offsets.min() >= -20 - 1e-3 and offsets.max() <= 20 + 1e-3 and offsets.min() < -18 and offsets.max() > 18
    assert np.all(np.abs(offsets[:, 0] - offsets[:, 1]) > 0)         # R and G shifted independently
    shared = augment.ColorShift(shift=20, per_channel=False)(x, rng=np.random.default_rng(0)) - x
    assert np.allclose(shared, shared[:, :1, :1, :1], atol=1e-6)
    on_255 = augment.ColorShift(shift=20, scale=1)(x * 255, rng=np.random.default_rng(0))
    np.testing.assert_allclose(on_255, out * 255, atol=1e-3)


def reference_jitter(image, brightness, contrast, saturation):
    image = np.clip(image.astype(np.float64) * brightness, 0, 1)
    image = np.clip(contrast * image + (1 - contrast) * grey(image).mean(), 0, 1)
    return np.clip(saturation * image + (1 - saturation) * grey(image), 0, 1)


@pytest.mark.parametrize("channels, amounts", [(3, (0.4, 0.5, 0.9)), (3, (0.0, 0.8, 0.0)), (1, (0.3, 0.6, 0.0))])
def test_color_jitter_matches_its_definition(channels, amounts, rng):
    x = photos(rng, 8, channels)
    t = augment.ColorJitter(*amounts)
    draw = np.random.default_rng(3)
    copy_ = copy.deepcopy(draw)
    factors = [t.factors(a, 8, copy_)[:, 0, 0, 0] if a else np.ones(8) for a in amounts]
    out = t(x, rng=draw)
    for n in range(8):
        np.testing.assert_allclose(out[n], reference_jitter(x[n], *(f[n] for f in factors)), atol=1e-6)
    for f, a in zip(factors, amounts):
        assert np.all((f >= max(0, 1 - a)) & (f <= 1 + a))
    assert out.dtype == np.float32 and out.shape == x.shape


def test_color_jitter_needs_colour_for_saturation(rng):
    with pytest.raises(ValueError, match="expected images with 3 channels, got 1"):
        augment.ColorJitter(saturation=0.5)(photos(rng, 2, 1))
    with pytest.raises(ValueError, match="brightness=-0.1"):
        augment.ColorJitter(brightness=-0.1)


def test_pca_color_augmentation_follows_alexnet(rng):
    data = rng.random((20, 3, 6, 6)) * np.array([1.0, 0.5, 0.2])[:, None, None]
    pca = augment.PCAColorAugmentation(std=0.3).fit(data)
    pixels = data.transpose(0, 2, 3, 1).reshape(-1, 3)
    covariance = (pixels - pixels.mean(0)).T @ (pixels - pixels.mean(0)) / (len(pixels) - 1)
    np.testing.assert_allclose(pca.eigenvectors @ np.diag(pca.eigenvalues) @ pca.eigenvectors.T, covariance, atol=1e-12)
    x = photos(rng, 5)
    draw = np.random.default_rng(4)
    alpha = copy.deepcopy(draw).normal(0.0, 0.3, (5, 3))
    out = pca(x, rng=draw)
    for n in range(5):
        offset = sum(alpha[n, i] * pca.eigenvalues[i] * pca.eigenvectors[:, i] for i in range(3))
        np.testing.assert_allclose(out[n], x[n] + offset[:, None, None], atol=1e-6)
    np.testing.assert_allclose(augment.PCAColorAugmentation(std=0.0).fit(data)(x), x)


def test_pca_color_augmentation_refuses_misuse(rng):
    with pytest.raises(RuntimeError, match=r"call fit\(images\)"):
        augment.PCAColorAugmentation()(photos(rng))
    with pytest.raises(ValueError, match="std=-0.1"):
        augment.PCAColorAugmentation(std=-0.1)
    with pytest.raises(ValueError, match="expected images with 3 channels, got 1"):
        augment.PCAColorAugmentation().fit(photos(rng, 3, 1))
    with pytest.raises(ValueError, match="got 4 channels"):
        augment.PCAColorAugmentation().fit(photos(rng))(photos(rng, 2, 4))


def test_normalize_per_channel_and_its_checks(rng):
    x = photos(rng)
    out = augment.Normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.5])(x)
    for c, (m, s) in enumerate(zip([0.5, 0.4, 0.3], [0.2, 0.25, 0.5])):
        np.testing.assert_allclose(out[:, c], (x[:, c] - m) / s, atol=1e-6)
    np.testing.assert_allclose(augment.Normalize(0.5, 2.0)(x[0]), (x[0] - 0.5) / 2, atol=1e-7)
    with pytest.raises(ValueError, match=r"std must be positive numbers, got std=\[1, 0, 1\]"):
        augment.Normalize([0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="mean has 2 values for images with 3 channels"):
        augment.Normalize([0, 0], 1)(x)


@pytest.mark.parametrize("transform", [augment.ColorShift(), augment.ColorJitter(0.3, 0.3, 0.3),
                                       augment.PCAColorAugmentation(0.5).fit(np.random.default_rng(0).random((4, 3, 5, 5)))],
                         ids=lambda t: type(t).__name__)
def test_colour_draws_are_reproducible_and_per_image(transform, rng):
    x = np.repeat(photos(rng, 1), 16, axis=0)
    out = transform(x, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(out, transform(x, rng=np.random.default_rng(9)))
    assert len({image.tobytes() for image in out}) == 16 and out.dtype == np.float32
    assert transform(x[0], rng=np.random.default_rng(9)).shape == x.shape[1:]
