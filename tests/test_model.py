"""Sequential: training end to end, determinism, evaluate/predict, summary, names, weights, files
and callbacks."""
import os

import numpy as np
import pytest

import pyconvx
from pyconvx import callbacks, layers, optimizers


def quadrant_data(n, seed):
    """A learnable 4-class task: a bright 3x3 blob in one quadrant of a noisy 12x12 image."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 4, n)
    rows = rng.integers(0, 4, n) + 6 * (y // 2)
    cols = rng.integers(0, 4, n) + 6 * (y % 2)
    for dr in range(3):
        for dc in range(3):
            x[np.arange(n), 0, rows + dr, cols + dc] += 1.0
    return x, y


def small_net(seed=0, dropout=0.0):
    return pyconvx.Sequential([
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(8, 3, activation="relu"),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(dropout),
        layers.Dense(4),
    ], input_shape=(1, 12, 12), seed=seed)


def compiled(model, lr=0.01):
    model.compile(optimizers.Adam(lr), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def test_fit_learns_a_small_conv_net():
    (x, y), (x_val, y_val) = quadrant_data(512, 0), quadrant_data(256, 1)
    model = compiled(small_net())
    history = model.fit(x, y, batch_size=32, epochs=6, validation_data=(x_val, y_val), verbose=0, seed=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 6 for v in history.history.values()) and history.epoch == list(range(6))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] >= 0.95
    loss, accuracy = model.evaluate(x_val, y_val)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1])
    assert model.history is history


def test_fit_is_deterministic_with_a_seed():
    x, y = quadrant_data(96, 2)
    runs = []
    for _ in range(2):
        model = compiled(small_net(seed=3, dropout=0.3))
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=5)
        runs.append((history.history, model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    other = compiled(small_net(seed=3, dropout=0.3))
    other.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=6)
    assert not np.array_equal(other.get_weights()[0], runs[0][1][0])


def test_progress_bar_per_epoch_and_silence(capsys):
    x, y = quadrant_data(40, 3)
    model = compiled(small_net())
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    model.fit(x, y, batch_size=16, epochs=2, verbose=1, validation_data=(x, y))
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "3/3" in err
    assert "loss=" in err and "accuracy=" in err and "val_accuracy=" in err
    model.evaluate(x, y, verbose=0), model.predict(x, verbose=0)
    assert capsys.readouterr().err == ""
    model.evaluate(x, y, batch_size=16, verbose=1)
    model.predict(x, batch_size=8, verbose=1)
    err = capsys.readouterr().err
    assert "evaluate" in err and "3/3" in err and "predict" in err and "5/5" in err


def test_evaluate_and_predict(rng):
    x, y = quadrant_data(50, 4)
    model = compiled(small_net())
    out = model.predict(x, batch_size=16)
    assert out.shape == (50, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-5, atol=1e-6)
    loss, accuracy = model.evaluate(x, y, batch_size=7)
    want_loss = pyconvx.losses.sparse_categorical_crossentropy(y, out)[0]
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert accuracy == pytest.approx(np.mean(out.argmax(1) == y))
    assert model.evaluate(x, y, return_dict=True) == pytest.approx({"loss": loss, "accuracy": accuracy})
    assert model.predict(x[:0]).shape == (0, 4)
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, y), float)


def test_summary_counts_and_dense_equivalent():
    model = pyconvx.Sequential([
        layers.Conv2D(6, 5, activation="tanh"), layers.AveragePooling2D(2), layers.BatchNormalization(),
        layers.Flatten(), layers.Dense(10),
    ], input_shape=(1, 32, 32))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    conv_row = next(line for line in text.splitlines() if line.startswith("conv2d (Conv2D)"))
    # 6 * 25 + 6 parameters; a dense layer from 1x32x32 to 6x28x28 would need 1024 * 4704 + 4704.
    assert "(None, 6, 28, 28)" in conv_row and " 156 " in conv_row and conv_row.endswith("4,821,600")
    assert "batch_normalization (BatchNormalization)" in text and "(None, 1176)" in text
    total = 156 + 24 + 1176 * 10 + 10
    assert model.count_params() == total
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total - 12:,}" in text and "Non-trainable params: 12" in text


def test_layer_names_are_unique_per_model_and_repeatable():
    names = [[layer.name for layer in small_net().layers] for _ in range(2)]
    assert names[0] == names[1]
    assert names[0][:4] == ["conv2d", "batch_normalization", "max_pooling2d", "conv2d_1"]
    model = pyconvx.Sequential([layers.Dense(2), layers.Dense(2, name="dense")])
    assert [layer.name for layer in model.layers] == ["dense_1", "dense"]
    with pytest.raises(ValueError, match=r"duplicates \['head'\]"):
        pyconvx.Sequential([layers.Dense(2, name="head"), layers.Dense(2, name="head")])
    layer = layers.Dense(2)
    with pytest.raises(ValueError, match="already in the model"):
        pyconvx.Sequential([layer, layer])


def test_build_later_and_add(rng):
    model = pyconvx.Sequential([layers.Flatten()])
    model.add(layers.Dense(3))
    assert not model.built
    compiled(model).fit(rng.standard_normal((8, 2, 2)), rng.integers(0, 3, 8), verbose=0)
    assert model.input_shape == (2, 2) and model.output_shape == (3,)
    model.add(layers.Dense(5))
    assert model.layers[-1].built and model.output_shape == (5,)


def test_wrong_input_shape_names_the_layer(rng):
    model = compiled(small_net())
    with pytest.raises(ValueError, match=r"'conv2d' \(Conv2D\): expected input shape \(None, 1, 12, 12\), "
                                         r"got \(2, 3, 12, 12\)"):
        model.predict(rng.standard_normal((2, 3, 12, 12)))
    with pytest.raises(ValueError, match="same number of samples, got 4 and 3"):
        model.fit(np.zeros((4, 1, 12, 12)), np.zeros(3, int))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(np.zeros((4, 1, 12, 12)), np.zeros(4, int), batch_size=0)
    with pytest.raises(RuntimeError, match="compile"):
        small_net().fit(np.zeros((4, 1, 12, 12)), np.zeros(4, int))


def test_get_set_weights(rng):
    model, other = small_net(seed=1), small_net(seed=2)
    other.set_weights(model.get_weights())
    x = rng.standard_normal((3, 1, 12, 12))
    np.testing.assert_array_equal(model.predict(x), other.predict(x))
    weights = model.get_weights()
    weights[2] = np.zeros(3)
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"'batch_normalization/gamma' has shape \(8,\), got \(3,\)"):
        other.set_weights(weights)
    for a, b in zip(before, other.get_weights()):  # nothing written
        np.testing.assert_array_equal(a, b)


# ----- weight files -----

def test_save_load_roundtrip(tmp_path, rng):
    x, y = quadrant_data(32, 5)
    model = compiled(small_net(seed=1))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "weights.npz"
    model.save_weights(path)
    fresh = small_net(seed=9)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    with np.load(path, allow_pickle=False) as archive:
        assert "conv2d/kernel" in archive.files and "batch_normalization/moving_mean" in archive.files
    assert [p for p in os.listdir(tmp_path)] == ["weights.npz"]


def test_load_mismatches_name_the_first_difference(tmp_path):
    path = tmp_path / "w.npz"
    saved = pyconvx.Sequential([layers.Dense(4, name="hidden"), layers.Dense(2, name="out")], input_shape=(3,))
    saved.save_weights(path)
    renamed = pyconvx.Sequential([layers.Dense(4, name="hidden"), layers.Dense(2, name="head")], input_shape=(3,))
    before = renamed.get_weights()
    with pytest.raises(ValueError, match=r"no weight 'head/kernel' for layer 'head'.*\['hidden', 'out'\]"):
        renamed.load_weights(path)
    for a, b in zip(before, renamed.get_weights()):
        np.testing.assert_array_equal(a, b)
    wider = pyconvx.Sequential([layers.Dense(5, name="hidden"), layers.Dense(2, name="out")], input_shape=(3,))
    with pytest.raises(ValueError, match=r"'hidden/kernel' has shape \(3, 4\) in the file but \(3, 5\) in the model"):
        wider.load_weights(path)
    shorter = pyconvx.Sequential([layers.Dense(4, name="hidden")], input_shape=(3,))
    with pytest.raises(ValueError, match="the file has weight 'out/kernel', which the model does not have"):
        shorter.load_weights(path)


def test_bad_files_raise_clear_errors(tmp_path):
    model = pyconvx.Sequential([layers.Dense(2)], input_shape=(3,))
    good = tmp_path / "good.npz"
    model.save_weights(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt or not an .npz file"):
        model.load_weights(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a pyconvx weights file"):
        model.load_weights(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __pyconvx_weights__=np.array(1), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="cannot read weights file"):
        model.load_weights(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        model.load_weights(single)
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="cannot read weights file"):
        model.load_weights(text)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.load_weights(tmp_path / "missing.npz")


def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    model = pyconvx.Sequential([layers.Dense(2)], input_shape=(3,), seed=0)
    path = tmp_path / "w.npz"
    model.save_weights(path)
    old = path.read_bytes()

    def crash_mid_write(stream, **arrays):
        stream.write(b"PK\x03\x04 half of an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash_mid_write)
    model.set_weights([w + 1 for w in model.get_weights()])
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["w.npz"]  # no temporary file left behind


# ----- callbacks -----

class Scores(callbacks.Callback):
    """Puts a scripted 'score' into each epoch's figures and records the weights."""

    def __init__(self, scores):
        self.scores, self.weights = scores, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        self.weights.append(self.model.get_weights())


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = quadrant_data(32, 6)
    model = compiled(small_net(), lr=0.05)
    scores = Scores([1.0, 3.0, 2.0, 2.5, 4.0, 5.0])
    stop = callbacks.EarlyStopping(monitor="score", mode="max", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[scores, stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), scores.weights[1]):
        np.testing.assert_array_equal(a, b)
    at_once = callbacks.EarlyStopping(monitor="score", mode="max", patience=0)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[Scores([1.0, 0.5, 2.0]), at_once])
    assert history.epoch == [0, 1] and at_once.stopped_epoch == 1


def test_early_stopping_warns_on_a_missing_figure():
    x, y = quadrant_data(16, 7)
    with pytest.warns(RuntimeWarning, match="'val_loss' is not among"):
        compiled(small_net()).fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_model_checkpoint(tmp_path):
    x, y = quadrant_data(32, 8)
    model = compiled(small_net())
    every = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}.npz"), monitor="loss")
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="score", mode="max", save_best_only=True)
    scores = Scores([1.0, 3.0, 2.0])
    model.fit(x, y, epochs=3, verbose=0, callbacks=[scores, every, best])
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "w-01.npz", "w-02.npz", "w-03.npz"]
    check = small_net(seed=4)
    check.load_weights(tmp_path / "best.npz")
    for a, b in zip(check.get_weights(), scores.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler():
    x, y = quadrant_data(16, 9)
    model = small_net()
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr / 2)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[schedule])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    one_argument = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[one_argument])
    assert model.optimizer.learning_rate == 0.02
