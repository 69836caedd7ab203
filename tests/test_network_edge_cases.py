"""Edge cases of the network layer: frozen sub-layers, shared layers and optimizers, empty and
one-sample batches, input gradients, weight files (each a defect found and fixed)."""
import os

import numpy as np
import pytest

import pyconvx
from pyconvx import layers
from pyconvx.callbacks import ModelCheckpoint
from pyconvx.weights_file import write_weights


def _data(n=16, shape=(4, 6, 6), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, classes, n)


def test_a_batch_norm_frozen_inside_a_block_keeps_its_weights():
    block = layers.ResidualBlock(4)
    model = pyconvx.Sequential([block, layers.GlobalAveragePooling2D(), layers.Dense(3)], input_shape=(4, 6, 6), seed=0)
    model.compile(pyconvx.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, seed=0)
    norms = [layer for layer in block.sublayers if isinstance(layer, layers.BatchNormalization)]
    trainable = lambda: sum(layer.count_trainable_params() for layer in model.layers)  # noqa: E731
    before = trainable()
    for layer in norms:
        layer.trainable = False
    gammas = [layer.params["gamma"].copy() for layer in norms]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=0)
    for layer, gamma in zip(norms, gammas):
        np.testing.assert_array_equal(layer.params["gamma"], gamma)
    assert trainable() == before - sum(2 * layer.params["gamma"].size for layer in norms)


def test_batch_norm_refuses_to_train_on_one_value_per_channel():
    norm = layers.BatchNormalization(name="bn")
    with pytest.raises(ValueError, match="bn.*more than one value per channel.*\\(1, 4\\)"):
        norm.forward(np.ones((1, 4), np.float32), training=True)
    assert norm.forward(np.ones((1, 4), np.float32), training=False).shape == (1, 4)


def test_a_layer_shared_with_a_second_model_keeps_its_name(tmp_path):
    x = pyconvx.Input((4,))
    features = layers.Dense(4)(x)
    base = pyconvx.Model(x, features, seed=0)
    path = tmp_path / "base.npz"
    base.save_weights(path)
    both = pyconvx.Model(x, layers.Add()([layers.Dense(4)(x), features]), seed=0)
    assert [layer.name for layer in base.layers] == ["dense"]
    assert sorted(layer.name for layer in both.layers) == ["add", "dense", "dense_1"]
    base.load_weights(path)


def test_an_optimizer_trains_one_model():
    optimizer = pyconvx.optimizers.SGD(0.1, momentum=0.9)
    make = lambda: pyconvx.Sequential([layers.Dense(2)], input_shape=(3,), seed=0)  # noqa: E731
    first = make()
    first.compile(optimizer, "mse")
    with pytest.raises(ValueError, match="SGD: this optimizer already trains another model"):
        make().compile(optimizer, "mse")
    first.compile(optimizer, "mse")  # compiling the same model again is fine


def test_empty_data_is_refused_and_an_empty_batch_flattens():
    model = pyconvx.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(3)], input_shape=(1, 5, 5))
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    empty_x, empty_y = np.zeros((0, 1, 5, 5), np.float32), np.zeros(0, np.int64)
    with pytest.raises(ValueError, match="fit: x and y hold no samples"):
        model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="evaluate: x and y hold no samples"):
        model.evaluate(empty_x, empty_y)
    assert model.forward(empty_x).shape == (0, 3)


def test_backward_returns_the_input_gradient_on_request():
    model = pyconvx.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(3)], input_shape=(1, 5, 5), seed=0)
    x = np.random.default_rng(1).standard_normal((2, 1, 5, 5)).astype(np.float32)
    out = model.forward(x, training=False)
    assert model.backward(np.ones_like(out)) is None
    grad_x = model.backward(np.ones_like(out), input_gradients=True)
    assert grad_x.shape == x.shape and np.abs(grad_x).max() > 0
    # a finite difference along one pixel agrees
    eps, (i, j) = 1e-2, (2, 3)
    bumped = x.copy()
    bumped[0, 0, i, j] += eps
    numeric = (model.forward(bumped).sum() - out.sum()) / eps
    assert numeric == pytest.approx(grad_x[0, 0, i, j], rel=2e-2, abs=1e-3)


def test_a_weight_file_with_complex_values_is_refused_before_anything_changes(tmp_path):
    model = pyconvx.Sequential([layers.Dense(3, name="fc")], input_shape=(4,), seed=0)
    kernel = model.layers[0].params["kernel"].copy()
    path = tmp_path / "w.npz"
    write_weights(path, {"fc/kernel": np.full((4, 3), 7.0), "fc/bias": np.zeros(3, complex)})
    with pytest.raises(ValueError, match="'fc/bias' must hold real numbers, got dtype complex128"):
        model.load_weights(path)
    np.testing.assert_array_equal(model.layers[0].params["kernel"], kernel)


def test_save_best_only_remembers_its_best_across_fit_calls(tmp_path):
    x, y = _data(32, (4,), 2)
    model = pyconvx.Sequential([layers.Dense(2)], input_shape=(4,), seed=0)
    path = tmp_path / "best.npz"
    checkpoint = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    optimizer = pyconvx.optimizers.SGD(0.1)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    first = model.fit(x, y, epochs=1, validation_data=(x, y), callbacks=[checkpoint], verbose=0).history["val_loss"][0]
    optimizer.learning_rate = 500.0  # the next epoch diverges: its checkpoint must not replace the first
    model.fit(x, y, epochs=1, validation_data=(x, y), callbacks=[checkpoint], verbose=0)
    model.load_weights(path)
    assert model.evaluate(x, y) == pytest.approx(first, rel=1e-5)


def test_pooling_padding_past_half_the_window_is_refused_when_the_layer_is_built():
    with pytest.raises(ValueError, match="max_pooling2d.*padding must be at most half of pool_size"):
        pyconvx.Sequential([layers.MaxPooling2D(2, padding=2)], input_shape=(1, 4, 4))


def test_weight_files_get_the_permissions_of_any_new_file(tmp_path):
    umask = os.umask(0o022)
    try:
        model = pyconvx.Sequential([layers.Dense(2)], input_shape=(3,), seed=0)
        model.save_weights(tmp_path / "w.npz")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "w.npz").st_mode & 0o777 == 0o644
