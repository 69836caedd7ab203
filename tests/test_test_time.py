"""Test-time tricks: the fixed crops, multi-crop prediction and ensembles."""
import numpy as np
import pytest

import pyconvx
from pyconvx import augment, layers


def test_ten_crop_positions_and_mirrors():
    images = np.random.default_rng(0).standard_normal((3, 2, 9, 11)).astype(np.float32)
    crops = augment.ten_crop(images, (5, 6))
    assert crops.shape == (10, 3, 2, 5, 6) and crops.dtype == np.float32
    top, left = int(round((9 - 5) / 2)), int(round((11 - 6) / 2))
    expected = [images[..., :5, :6], images[..., :5, 5:], images[..., 4:, :6], images[..., 4:, 5:],
                images[..., top:top + 5, left:left + 6]]
    for k, window in enumerate(expected):
        np.testing.assert_array_equal(crops[k], window)
        np.testing.assert_array_equal(crops[k + 5], window[..., ::-1])
    assert augment.ten_crop(images[0], 5).shape == (10, 2, 5, 5)  # one CHW image


def test_crops_refuse_windows_larger_than_the_image():
    with pytest.raises(ValueError, match="size=\\(10, 10\\) is larger than the image \\(9, 11\\)"):
        augment.ten_crop(np.zeros((1, 1, 9, 11)), 10)


def _model(seed):
    return pyconvx.Sequential([layers.Conv2D(3, 3, activation="relu"), layers.Flatten(), layers.Dense(4)],
                              input_shape=(2, 6, 6), seed=seed)


@pytest.mark.parametrize("crops", [1, 5, 10])
def test_multi_crop_prediction_is_the_mean_of_the_crops_predictions(crops):
    model = _model(0)
    x = np.random.default_rng(1).standard_normal((5, 2, 8, 8)).astype(np.float32)
    got = pyconvx.multi_crop_predict(model, x, 6, crops=crops, batch_size=2)
    views = {1: augment.five_crop(x, 6)[4:], 5: augment.five_crop(x, 6), 10: augment.ten_crop(x, 6)}[crops]
    want = np.mean([model.predict(view) for view in views], axis=0)
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="crops must be 1, 5 or 10, got crops=3"):
        pyconvx.multi_crop_predict(model, x, 6, crops=3)


def test_an_ensemble_averages_its_models():
    models = [_model(seed) for seed in range(3)]
    x = np.random.default_rng(2).standard_normal((4, 2, 6, 6)).astype(np.float32)
    got = pyconvx.Ensemble(models).predict(x)
    assert got.shape == (4, 4)
    np.testing.assert_allclose(got, np.mean([m.predict(x) for m in models], axis=0), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="at least one model"):
        pyconvx.Ensemble([])
    other = pyconvx.Sequential([layers.Flatten(), layers.Dense(2)], input_shape=(2, 6, 6))
    with pytest.raises(ValueError, match="outputs differ in shape"):
        pyconvx.Ensemble([models[0], other]).predict(x)
