"""The functional API: Input, layers called on tensors, Concatenate and Add, Model with several
inputs and outputs, and freeze/unfreeze."""
import numpy as np
import pytest

import pyconvx
from pyconvx import layers, optimizers


def branchy(seed=0):
    """Two inputs, a tensor feeding three layers, two outputs."""
    image, extra = pyconvx.Input((1, 8, 8), name="image"), pyconvx.Input((3,), name="extra")
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    merged = layers.Concatenate()([layers.Conv2D(4, 1)(h), layers.MaxPooling2D(1)(h), h])
    pooled = layers.GlobalAveragePooling2D()(merged)
    joined = layers.Concatenate()([pooled, layers.Dense(4, activation="tanh")(extra)])
    return pyconvx.Model([image, extra], [layers.Dense(3, name="cls")(joined), layers.Dense(1, name="reg")(pooled)],
                         seed=seed)


def branchy_data(n, seed):
    rng = np.random.default_rng(seed)
    return ([rng.standard_normal((n, 1, 8, 8)), rng.standard_normal((n, 3))],
            [rng.integers(0, 3, n), rng.standard_normal((n, 1))])


def test_concatenate_and_add_forward_and_backward(rng):
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))
    concat = layers.Concatenate()
    y = concat([a, b])
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))
    ga, gb = concat.backward(y * 2)
    np.testing.assert_array_equal(ga, 2 * a)
    np.testing.assert_array_equal(gb, 2 * b)
    assert layers.Concatenate(axis=-1)([np.ones((2, 3)), np.ones((2, 4))]).shape == (2, 7)
    add = layers.Add()
    np.testing.assert_array_equal(add([a, a, a]), 3 * a)
    grads = add.backward(a)
    assert len(grads) == 3 and all(g is a for g in grads)


@pytest.mark.parametrize("make, inputs, match", [
    (layers.Add, [np.ones((2, 3)), np.ones((2, 4))], r"'add.*' \(Add\): inputs must have one shape, got \[\(None, 3\), "
                                                     r"\(None, 4\)\]"),
    (layers.Concatenate, [np.ones((2, 3, 4, 4)), np.ones((2, 3, 5, 4))], "must agree on every axis but axis=1"),
    (layers.Concatenate, [np.ones((2, 3))], "at least 2 inputs"),
    (lambda: layers.Concatenate(axis=0), [np.ones((2, 3)), np.ones((2, 3))], "axis=0 is not a non-batch axis"),
])
def test_merge_errors_name_the_layer_and_shapes(make, inputs, match):
    with pytest.raises(ValueError, match=match):
        make()(inputs)


def test_merge_layers_check_later_inputs():
    add = layers.Add()
    add([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"expected inputs of shapes \[\(None, 3\), \(None, 3\)\]"):
        add([np.ones((2, 3)), np.ones((2, 5))])
    with pytest.raises(TypeError, match="a list of input batches"):
        add.forward(np.ones((2, 3)))


def test_model_names_shapes_and_summary():
    model = branchy()
    assert [layer.name for layer in model.layers] == [
        "conv2d", "conv2d_1", "max_pooling2d", "concatenate", "global_average_pooling2d", "dense", "concatenate_1",
        "cls", "reg"]
    assert model.input_shape == [(1, 8, 8), (3,)] and model.output_shape == [(3,), (1,)]
    assert model.output_names == ["cls", "reg"] and model.input_names == ["image", "extra"]
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert 'input shapes (None, 1, 8, 8), (None, 3)' in text and "Connected to" in text
    concat_row = next(line for line in text.splitlines() if line.startswith("concatenate (Concatenate)"))
    assert "(None, 12, 8, 8)" in concat_row and concat_row.endswith("conv2d_1, max_pooling2d, conv2d")
    assert model.count_params() == 40 + 20 + 16 + 51 + 13
    assert [layer.name for layer in branchy().layers] == [layer.name for layer in model.layers]


def test_gradient_is_summed_where_a_tensor_feeds_several_layers(rng):
    x = pyconvx.Input((3,))
    dense = layers.Dense(2, use_bias=False)
    h = dense(x)
    model = pyconvx.Model(x, layers.Add()([h, h, layers.Activation("linear")(h)]), seed=0)
    inputs = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(inputs), 3 * inputs @ dense.params["kernel"], rtol=1e-5)
    model.forward(inputs, training=True)
    g = rng.standard_normal((4, 2)).astype(np.float32)
    model.backward(g)
    np.testing.assert_allclose(dense.grads["kernel"], inputs.T @ (3 * g), rtol=1e-5)


def test_a_model_output_that_also_feeds_another_layer_gets_both_gradients(rng):
    x = pyconvx.Input((3,))
    first = layers.Dense(3, use_bias=False)
    h = first(x)
    model = pyconvx.Model(x, [h, layers.Add()([h, h])])
    inputs = rng.standard_normal((2, 3)).astype(np.float32)
    model.forward(inputs, training=True)
    g1, g2 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    model.backward([g1.astype(np.float32), g2.astype(np.float32)])
    np.testing.assert_allclose(first.grads["kernel"], inputs.T @ (g1 + 2 * g2), rtol=1e-5)


def test_fit_with_two_inputs_and_two_outputs():
    (x, y), (x_val, y_val) = branchy_data(64, 0), branchy_data(32, 1)
    model = branchy()
    model.compile(optimizers.Adam(0.01), {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]}, loss_weights=[1.0, 0.5])
    history = model.fit(x, {"cls": y[0], "reg": y[1]}, batch_size=16, epochs=3, validation_data=(x_val, y_val),
                        verbose=0, seed=0)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "val_loss", "val_cls_loss",
                                    "val_reg_loss", "val_cls_accuracy"}
    for epoch in range(3):
        total = history.history["cls_loss"][epoch] + 0.5 * history.history["reg_loss"][epoch]
        assert history.history["loss"][epoch] == pytest.approx(total)
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = model.evaluate(x_val, y_val, return_dict=True)
    cls, reg = model.predict(x_val)
    assert cls.shape == (32, 3) and reg.shape == (32, 1)
    assert result["cls_loss"] == pytest.approx(pyconvx.losses.sparse_categorical_crossentropy(y_val[0], cls)[0],
                                               rel=1e-5)
    assert result["reg_loss"] == pytest.approx(pyconvx.losses.mse(y_val[1], reg)[0], rel=1e-5)
    assert model.evaluate(x_val, y_val) == pytest.approx(list(result.values()))
    model.compile("sgd", "mse")  # one loss for every output
    assert sorted(model.evaluate(x_val, [np.zeros((32, 3)), y_val[1]], return_dict=True)) == [
        "cls_loss", "loss", "reg_loss"]


def test_multi_output_models_are_deterministic_and_save_their_weights(tmp_path):
    x, y = branchy_data(32, 2)
    runs = []
    for _ in range(2):
        model = branchy(seed=4)
        model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, seed=3)
        runs.append(model)
    for a, b in zip(runs[0].get_weights(), runs[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    runs[0].save_weights(tmp_path / "w.npz")
    fresh = branchy(seed=9)
    fresh.load_weights(tmp_path / "w.npz")
    for a, b in zip(fresh.predict(x), runs[0].predict(x)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: m.fit(x[0], y, verbose=0), r"x needs one entry per \['image', 'extra'\]"),
    (lambda m, x, y: m.fit(x, {"cls": y[0]}, verbose=0), "y misses 'reg'"),
    (lambda m, x, y: m.fit(x, {"cls": y[0], "reg": y[1], "other": y[1]}, verbose=0), "y has unknown key 'other'"),
    (lambda m, x, y: m.fit([x[0], x[1][:5]], y, verbose=0), r"same number of samples, got \[16, 5, 16, 16\]"),
    (lambda m, x, y: m.compile("adam", ["mse"]), r"loss needs one entry per \['cls', 'reg'\]"),
    (lambda m, x, y: m.compile("adam", "mse", loss_weights=[1.0, "a"]), "loss_weights must be finite numbers"),
])
def test_multi_io_errors_name_the_inputs_and_outputs(call, match):
    model = branchy()
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    x, y = branchy_data(16, 3)
    with pytest.raises(ValueError, match=match):
        call(model, x, y)


def test_graph_errors():
    x = pyconvx.Input((3,))
    dense = layers.Dense(2)
    with pytest.raises(ValueError, match="'dense_shared' is called more than once"):
        shared = layers.Dense(3, name="dense_shared")
        pyconvx.Model(x, shared(shared(x)))
    other = pyconvx.Input((3,), name="other")
    with pytest.raises(ValueError, match="depend on Input 'other', which is not among the model's inputs"):
        pyconvx.Model(x, layers.Add()([dense(x), layers.Dense(2)(other)]))
    with pytest.raises(TypeError, match=r"expected a list of symbolic tensors"):
        layers.Add()(x)
    with pytest.raises(TypeError, match="expected one symbolic tensor"):
        layers.Dense(2)([x, x])
    with pytest.raises(ValueError, match=r"'flat' \(Dense\): expected \(N, features\) input"):
        image = pyconvx.Input((1, 4, 4))
        pyconvx.Model(image, layers.Dense(2, name="flat")(image))
    with pytest.raises(ValueError, match=r"layer 'dense' \(Dense\) was built for input shape \(None, 3\), but the "
                                         r"graph gives it \(None, 5\)"):
        dense.build((3,))
        wide = pyconvx.Input((5,))
        pyconvx.Model(wide, dense(wide))


# ----- freeze and unfreeze -----

def test_freeze_keeps_weights_and_counts_them_as_non_trainable(rng):
    model = pyconvx.Sequential([
        layers.Conv2D(4, 3, activation="relu"), layers.BatchNormalization(), layers.Flatten(), layers.Dense(8),
        layers.Dense(2, name="head"),
    ], input_shape=(1, 6, 6), seed=0)
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x, y = rng.standard_normal((16, 1, 6, 6)), rng.integers(0, 2, 16)
    model.freeze(up_to="flatten")
    assert [layer.trainable for layer in model.layers] == [False, False, False, True, True]
    assert [layer.input_grad_needed for layer in model.layers] == [False, False, False, False, True]
    lines = []
    model.summary(print_fn=lines.append)
    frozen = 40 + 16
    assert f"Trainable params: {model.count_params() - frozen:,}" in lines[0]
    before = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    after = model.get_weights()
    for index in range(6):  # conv kernel, bias; gamma, beta and the running statistics
        np.testing.assert_array_equal(after[index], before[index])
    assert not np.array_equal(after[6], before[6])
    model.unfreeze()
    assert all(layer.trainable for layer in model.layers) and model.layers[1].input_grad_needed
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.array_equal(model.get_weights()[0], before[0])
    model.freeze(up_to=-2)
    assert [layer.trainable for layer in model.layers] == [False, False, False, False, True]


def test_freeze_errors_name_the_layers():
    model = pyconvx.Sequential([layers.Dense(2, name="a")], input_shape=(3,))
    with pytest.raises(ValueError, match=r"no layer named 'b' \(layers: \['a'\]\)"):
        model.freeze(up_to="b")
    with pytest.raises(ValueError, match="layer index 3 is out of range for 1 layers"):
        model.freeze(up_to=3)
    with pytest.raises(TypeError, match="name or index"):
        model.freeze(up_to=1.5)


def test_freeze_in_a_graph_freezes_what_the_layer_depends_on_not_an_earlier_branch(rng):
    x = pyconvx.Input((6,))
    left = layers.Dense(4, name="left")(x)
    right = layers.Dense(4, name="right_2")(layers.Dense(4, name="right_1")(x))
    y = layers.Dense(2, name="head")(layers.Concatenate(name="join")([left, right]))
    model = pyconvx.Model(x, y, seed=0)
    assert [layer.name for layer in model.layers] == ["left", "right_1", "right_2", "join", "head"]
    model.freeze(up_to="right_2")  # "left" comes earlier in the list but does not feed it
    assert [layer.name for layer in model.layers if not layer.trainable] == ["right_1", "right_2"]
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    before = {layer.name: layer.params["kernel"].copy() for layer in model.layers if layer.params}
    model.fit(rng.standard_normal((8, 6)), rng.integers(0, 2, 8), batch_size=8, verbose=0)
    changed = {name for name, kernel in before.items()
               if not np.array_equal(kernel, model.get_layer(name).params["kernel"])}
    assert changed == {"left", "head"}
    model.freeze(up_to="join")
    assert not any(layer.trainable for layer in model.layers[:4]) and model.layers[4].trainable


def test_one_input_and_output_take_plain_lists_and_a_dict_by_name():
    model = pyconvx.Sequential([layers.Dense(2, name="head")])
    model.compile("sgd", {"head": "sparse_categorical_crossentropy"}, metrics=["accuracy"], loss_weights=[2.0])
    history = model.fit([[0.0, 1.0], [1.0, 0.0]], [0, 1], verbose=0)
    assert model.output_names == ["head"] and set(history.history) == {"loss", "accuracy"}
    assert model.evaluate({"input": [[0.0, 1.0]]}, {"head": [0]}, return_dict=True).keys() == {"loss", "accuracy"}
