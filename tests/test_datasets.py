"""The bundled real data: the digits' split and scaling, the photographs, the resampling."""
import sys

import numpy as np
import pytest

from pyconvx import datasets

pytest.importorskip("sklearn")


def test_digits_split_shapes_ranges_and_labels():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(image_size=32, test_fraction=0.2, seed=0)
    assert x_train.shape[1:] == x_test.shape[1:] == (1, 32, 32)
    assert x_train.dtype == x_test.dtype == np.float32 and y_train.dtype == y_test.dtype == np.int64
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == pytest.approx(0.2 * 1797, abs=10)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and x_train.max() > 0.9
    # Stratified: every digit has close to a fifth of its images in the test set.
    for label in range(10):
        share = np.sum(y_test == label) / (np.sum(y_test == label) + np.sum(y_train == label))
        assert share == pytest.approx(0.2, abs=0.01), label


def test_digits_seed_repeats_and_changes_the_split():
    (a, la), _ = datasets.load_digits(image_size=16, seed=3)
    (b, lb), _ = datasets.load_digits(image_size=16, seed=3)
    (c, _), _ = datasets.load_digits(image_size=16, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_digits_at_native_size_are_the_originals_scaled():
    from sklearn.datasets import load_digits

    originals = {image.tobytes() for image in (load_digits().images / 16.0).astype(np.float32)}
    (x, _), _ = datasets.load_digits(image_size=8)
    assert all(image[0].tobytes() in originals for image in x[:50])


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(0).random((3, 8, 8))
    ours = datasets.resize_bilinear(images, (32, 20))
    theirs = torch.nn.functional.interpolate(torch.from_numpy(images)[None], size=(32, 20), mode="bilinear",
                                             align_corners=False)[0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_sample_images_are_chw_in_unit_range():
    pytest.importorskip("PIL")
    images = datasets.load_sample_images()
    assert len(images) == 2
    for image in images:
        assert image.shape == (3, 427, 640) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_size=4), "image_size must be an int >= 8, got image_size=4"),
    (dict(test_fraction=1.0), "test_fraction must be in \\(0, 1\\), got test_fraction=1.0"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_digits(**kwargs)


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r'pip install "pyconvx\[datasets\]"'):
        datasets.load_digits()
