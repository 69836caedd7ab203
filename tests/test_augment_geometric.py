"""pyconvx.augment's geometric transforms against float64 per-pixel references of the same
definitions (written out below and in tests/reference.py) and, where it is an easy oracle, torch."""
import copy
import math

import numpy as np
import pytest

import reference as ref
from pyconvx import augment, recipes
from pyconvx.augment import geometric, sampling


def reference_affine(image, angle, translate, scale, shear, fill):
    """Output pixel (i, j) reads the input where the forward map (shear x, shear y, scale,
    counter-clockwise rotation, translation, about the centre, y down) sends it from."""
    channels, height, width = image.shape
    a = math.radians(angle)
    rotation = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    shear_x = np.array([[1.0, math.tan(math.radians(shear[0]))], [0.0, 1.0]])
    shear_y = np.array([[1.0, 0.0], [math.tan(math.radians(shear[1])), 1.0]])
    forward = scale * rotation @ shear_y @ shear_x
    out = np.zeros((channels, height, width))
    for i in range(height):
        for j in range(width):
            u, v = j - (width - 1) / 2, i - (height - 1) / 2
            source_u, source_v = np.linalg.solve(forward, [u - translate[0], v - translate[1]])
            out[:, i, j] = ref.bilinear_point(image, source_u + (width - 1) / 2, source_v + (height - 1) / 2, fill)
    return out


def reference_resize_window(image, top, left, h, w, size):
    """The window resized to size with aligned pixel centres, coordinates clamped to the window."""
    out = np.zeros((image.shape[0],) + size)
    for i in range(size[0]):
        for j in range(size[1]):
            y = min(max((i + 0.5) * h / size[0] - 0.5, 0), h - 1) + top
            x = min(max((j + 0.5) * w / size[1] - 0.5, 0), w - 1) + left
            y0, x0 = min(math.floor(y), top + h - 1), min(math.floor(x), left + w - 1)
            y1, x1 = min(y0 + 1, top + h - 1), min(x0 + 1, left + w - 1)
            fy, fx = y - y0, x - x0
            out[:, i, j] = ((1 - fy) * ((1 - fx) * image[:, y0, x0] + fx * image[:, y0, x1])
                            + fy * ((1 - fx) * image[:, y1, x0] + fx * image[:, y1, x1]))
    return out


def images(rng, shape=(4, 2, 7, 9)):
    return rng.random(shape, dtype=np.float32)


RANDOM_TRANSFORMS = [
    augment.RandomHorizontalFlip(), augment.RandomVerticalFlip(), augment.RandomCrop(5, padding=2),
    augment.RandomResizedCrop((6, 5)), augment.RandomRotation(30), augment.ElasticWarp(4.0, 2.0),
    augment.RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=(-10, 10, -5, 5), fill=0.5),
]


@pytest.mark.parametrize("transform", RANDOM_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_reproducible_per_image_float32_and_single_images(transform, rng):
    x = np.repeat(images(rng, (1, 2, 7, 9)), 32, axis=0)  # one image 32 times: only the draws differ
    first = transform(x, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first, transform(x, rng=np.random.default_rng(5)))
    assert first.dtype == np.float32
    assert len({out.tobytes() for out in first}) > 1, "every image of a batch gets its own draw"
    single = transform(x[0], rng=np.random.default_rng(5))
    assert single.shape == first.shape[1:] and single.dtype == np.float32
    assert transform(x[:2]).shape == first[:2].shape  # rng=None: a fresh generator


@pytest.mark.parametrize("transform", [augment.RandomHorizontalFlip(0.5), augment.RandomVerticalFlip(0.5)],
                         ids=["horizontal", "vertical"])
def test_flips_match_torch_flip_image_by_image(transform, rng):
    torch = pytest.importorskip("torch")
    x = images(rng, (64, 3, 5, 6))
    out = transform(x, rng=np.random.default_rng(1))
    dim = 2 if isinstance(transform, augment.RandomVerticalFlip) else 3
    flipped = torch.flip(torch.from_numpy(x), dims=[dim]).numpy()
    is_flipped = np.array([np.array_equal(o, f) for o, f in zip(out, flipped)])
    is_kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(is_flipped | is_kept) and 10 < is_flipped.sum() < 54
    np.testing.assert_array_equal(transform.__class__(p=0.0)(x), x)


def test_random_crop_takes_windows_of_the_padded_image(rng):
    x = images(rng, (50, 2, 6, 7))
    out = augment.RandomCrop((4, 5), padding=(1, 2), fill=-3.0)(x, rng=np.random.default_rng(2))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)), constant_values=-3.0)
    offsets = set()
    for n in range(len(x)):
        matches = [(t, l) for t in range(5) for l in range(7)
                   if np.array_equal(out[n], padded[n, :, t:t + 4, l:l + 5])]
        assert matches, n
        offsets.add(matches[0])
    assert len(offsets) > 15


def reference_shift(x, shift, rng, fill):
    """pyconvx train's shift augmentation as it was written before RandomCrop replaced it: the
    same draws must give the same images, so the recipe's results stay as documented."""
    n, channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=fill)
    top, left = rng.integers(0, 2 * shift + 1, (2, n))
    out = np.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, top[i]:top[i] + height, left[i]:left[i] + width]
    return out


def test_random_crop_with_the_image_size_is_the_recipe_shift(rng):
    x = images(rng, (40, 1, 8, 8))
    expected = reference_shift(x, 2, np.random.default_rng(3), -1.0)
    np.testing.assert_array_equal(augment.RandomCrop(8, padding=2, fill=-1.0)(x, rng=np.random.default_rng(3)), expected)
    np.testing.assert_array_equal(recipes.shifted_copies(x, 2, np.random.default_rng(3), fill=-1.0), expected)


def test_center_crop_and_resize_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = images(rng, (3, 2, 9, 12))
    np.testing.assert_array_equal(augment.CenterCrop((4, 7))(x), x[:, :, 2:6, 2:9])
    np.testing.assert_array_equal(augment.CenterCrop(9)(x[0]), x[0, :, :, 2:11])
    for size, expected in (((5, 17), (5, 17)), (6, (6, 8)), ((20, 3), (20, 3))):
        out = augment.Resize(size)(x)
        oracle = torch.nn.functional.interpolate(torch.from_numpy(x), size=expected, mode="bilinear",
                                                 align_corners=False, antialias=False).numpy()
        assert out.shape == (3, 2) + expected and out.dtype == np.float32
        np.testing.assert_allclose(out, oracle, atol=1e-6)
    assert augment.Resize(np.int64(6))(np.zeros((1, 12, 9))).shape == (1, 8, 6)  # any int: the shorter side


def test_random_resized_crop_resizes_the_drawn_windows(rng):
    torch = pytest.importorskip("torch")
    x = images(rng, (12, 3, 10, 13))
    t = augment.RandomResizedCrop((7, 6), scale=(0.2, 1.0))
    top, left, h, w = t.windows(12, 10, 13, np.random.default_rng(4))
    out = t(x, rng=np.random.default_rng(4))
    assert out.shape == (12, 3, 7, 6)
    for n in range(12):
        assert 0 <= top[n] and top[n] + h[n] <= 10 and 0 <= left[n] and left[n] + w[n] <= 13
        window = x[n, :, top[n]:top[n] + h[n], left[n]:left[n] + w[n]].astype(np.float64)
        np.testing.assert_allclose(out[n], reference_resize_window(x[n].astype(np.float64), top[n], left[n], h[n],
                                                                   w[n], (7, 6)), atol=1e-6)
        oracle = torch.nn.functional.interpolate(torch.from_numpy(window[None]), size=(7, 6), mode="bilinear",
                                                 align_corners=False).numpy()[0]
        np.testing.assert_allclose(out[n], oracle, atol=1e-6)


def test_random_resized_crop_windows_follow_the_scale_and_ratio(rng):
    t = augment.RandomResizedCrop(8, scale=(0.25, 0.5), ratio=(0.5, 2.0))
    top, left, h, w = t.windows(2000, 100, 100, np.random.default_rng(0))
    area = h * w / 100 ** 2
    assert area.min() >= 0.23 and area.max() <= 0.52 and len(set(zip(top, left))) > 1000
    assert (w / h).min() >= 0.45 and (w / h).max() <= 2.1


def test_random_resized_crop_falls_back_to_a_centred_window():
    # An area of twice the image never fits: after ten tries, the largest centred window of an
    # allowed ratio (a square, then a 1:2 portrait strip).
    t = augment.RandomResizedCrop(4, scale=(2.0, 2.0), ratio=(1.0, 1.0))
    top, left, h, w = t.windows(3, 10, 30, np.random.default_rng(0))
    assert list(h) == [10] * 3 and list(w) == [10] * 3 and list(top) == [0] * 3 and list(left) == [10] * 3
    wide = augment.RandomResizedCrop(4, scale=(2.0, 2.0), ratio=(0.5, 0.5)).windows(1, 10, 30, np.random.default_rng(0))
    assert [int(v[0]) for v in wide] == [0, 12, 10, 5]  # top, left, h, w


@pytest.mark.parametrize("angle", [90.0, -37.0, 180.0])
def test_rotation_matches_the_reference(angle, rng):
    x = images(rng, (2, 2, 5, 8))
    out = augment.RandomRotation((angle, angle), fill=0.25)(x)
    for n in range(2):
        np.testing.assert_allclose(out[n], reference_affine(x[n].astype(np.float64), angle, (0, 0), 1.0, (0, 0), 0.25),
                                   atol=1e-5)


def test_rotation_by_90_degrees_is_exact_on_a_square():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    np.testing.assert_allclose(augment.RandomRotation((90, 90))(x)[0, 0], np.rot90(x[0, 0]), atol=1e-5)


@pytest.mark.parametrize("params", [dict(angle=15.0, translate=(1.0, -2.0), scale=1.3, shear=(10.0, -7.0)),
                                    dict(angle=-60.0, translate=(0.0, 0.0), scale=0.7, shear=(0.0, 20.0))])
def test_affine_matches_the_reference_and_torch(params, rng):
    torch = pytest.importorskip("torch")
    x = images(rng, (1, 3, 6, 9))
    matrices = sampling.affine_matrices(params["angle"], params["translate"], params["scale"], params["shear"])
    out = sampling.warp_affine(x, matrices, fill=0.0)
    np.testing.assert_allclose(out[0], reference_affine(x[0].astype(np.float64), fill=0.0, **params), atol=1e-5)
    # torch's theta: the inverse map in normalised coordinates.
    inverse = np.linalg.inv(np.vstack([matrices[0], [0, 0, 1]]))[:2]
    d = np.diag([9 / 2, 6 / 2])
    theta = np.hstack([np.linalg.inv(d) @ inverse[:, :2] @ d, np.linalg.inv(d) @ inverse[:, 2:]])
    grid = torch.nn.functional.affine_grid(torch.from_numpy(theta[None]).float(), (1, 3, 6, 9), align_corners=False)
    oracle = torch.nn.functional.grid_sample(torch.from_numpy(x), grid, mode="bilinear", padding_mode="zeros",
                                             align_corners=False).numpy()
    np.testing.assert_allclose(out, oracle, atol=1e-5)


def test_random_affine_applies_the_matrices_it_draws(rng):
    x = images(rng, (3, 2, 6, 7))
    t = augment.RandomAffine(30, translate=(0.3, 0.2), scale=(0.8, 1.2), shear=(-10, 10, -5, 5), fill=0.5)
    draw = np.random.default_rng(7)
    matrices = t.matrices(3, 6, 7, copy.deepcopy(draw))
    out = t(x, rng=draw)
    for n in range(3):
        linear, shift = matrices[n, :, :2], matrices[n, :, 2]
        assert np.all(shift == np.round(shift)) and abs(shift[0]) <= 0.3 * 7 and abs(shift[1]) <= 0.2 * 6
        expected = np.zeros((2, 6, 7))
        for i in range(6):
            for j in range(7):
                u, v = np.linalg.solve(linear, [j - 3 - shift[0], i - 2.5 - shift[1]])
                expected[:, i, j] = ref.bilinear_point(x[n].astype(np.float64), u + 3, v + 2.5, 0.5)
        np.testing.assert_allclose(out[n], expected, atol=1e-5)


def test_random_affine_with_fixed_ranges_is_that_map(rng):
    x = images(rng, (2, 1, 5, 5))
    t = augment.RandomAffine((20, 20), scale=(1.1, 1.1), shear=(5, 5, -3, -3), fill=1.0)
    expected = reference_affine(x[1].astype(np.float64), 20.0, (0, 0), 1.1, (5.0, -3.0), 1.0)
    np.testing.assert_allclose(t(x)[1], expected, atol=1e-5)


@pytest.mark.parametrize("sigma, size", [(0.5, 9), (1.0, 9), (3.0, 7), (10.0, 5)])
def test_gaussian_matrix_matches_scipy(sigma, size, rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    v = rng.random((size, 3))
    np.testing.assert_allclose(geometric.gaussian_matrix(size, sigma) @ v,
                               ndimage.gaussian_filter1d(v, sigma, axis=0, mode="reflect"), atol=1e-12)


def test_elastic_warp_samples_the_smoothed_scaled_field(rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = images(rng, (2, 2, 8, 6))
    t = augment.ElasticWarp(alpha=3.0, sigma=1.5, fill=0.2)
    draw = np.random.default_rng(8)
    field = copy.deepcopy(draw).uniform(-1.0, 1.0, (2, 2, 8, 6))
    dy, dx = t.displacements(2, 8, 6, copy.deepcopy(draw))
    for n in range(2):
        np.testing.assert_allclose(dy[n], 3.0 * ndimage.gaussian_filter(field[0, n], 1.5), atol=1e-12)
        np.testing.assert_allclose(dx[n], 3.0 * ndimage.gaussian_filter(field[1, n], 1.5), atol=1e-12)
    out = t(x, rng=draw)
    for n in range(2):
        for i in range(8):
            for j in range(6):
                expected = ref.bilinear_point(x[n].astype(np.float64), j + dx[n, i, j], i + dy[n, i, j], 0.2)
                np.testing.assert_allclose(out[n, :, i, j], expected, atol=1e-5)
    np.testing.assert_allclose(augment.ElasticWarp(alpha=0.0, sigma=2.0)(x), x, atol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda: augment.RandomHorizontalFlip(p=1.5), "p=1.5"),
    (lambda: augment.RandomVerticalFlip(p=-0.1), "p=-0.1"),
    (lambda: augment.RandomCrop(-3), "size=-3"),
    (lambda: augment.RandomCrop(4, padding=-1), "padding=-1"),
    (lambda: augment.CenterCrop((0, 2)), r"size=\(0, 2\)"),
    (lambda: augment.Resize(-2), "size=-2"),
    (lambda: augment.RandomResizedCrop(8, scale=(0.9, 0.1)), r"scale=\(0.9, 0.1\)"),
    (lambda: augment.RandomResizedCrop(8, ratio=(0, 1)), r"ratio=\(0, 1\)"),
    (lambda: augment.RandomRotation(-5), "degrees=-5"),
    (lambda: augment.RandomRotation((10, -10)), r"degrees=\(10, -10\)"),
    (lambda: augment.RandomAffine(0, translate=(0.5, 1.5)), r"translate=\(0.5, 1.5\)"),
    (lambda: augment.RandomAffine(0, scale=(0, 1)), r"scale=\(0, 1\)"),
    (lambda: augment.RandomAffine(0, shear=(1, 2, 3)), r"shear=\(1, 2, 3\)"),
    (lambda: augment.ElasticWarp(alpha=1.0, sigma=-1.0), "sigma=-1.0"),
    (lambda: augment.ElasticWarp(alpha=-2.0, sigma=1.0), "alpha=-2.0"),
])
def test_bad_parameters_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_crops_larger_than_the_image_are_refused():
    x = np.zeros((2, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"size=\(7, 7\) is larger than the image \(6, 6\)"):
        augment.RandomCrop(7)(x)
    with pytest.raises(ValueError, match=r"CenterCrop: size=\(3, 8\)"):
        augment.CenterCrop((3, 8))(x)
    assert augment.RandomCrop(7, padding=1)(x).shape == (2, 1, 7, 7)
    with pytest.raises(ValueError, match="got shape"):
        augment.RandomCrop(2)(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        augment.RandomCrop(2)(x, rng=0)
