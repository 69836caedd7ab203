"""Layers: forward values against the float64 references, building, names, weights, modes and
the errors a user meets."""
import numpy as np
import pytest

import pyconvx
import reference as ref
from pyconvx import layers


def test_conv2d_forward_matches_reference(rng):
    x = rng.standard_normal((2, 4, 7, 6))
    layer = layers.Conv2D(6, 3, strides=(1, 2), padding=1, dilation_rate=(2, 1), groups=2, activation="relu",
                          bias_initializer="he_normal")
    y = layer.forward(x)
    want = ref.conv2d(x, layer.params["kernel"], layer.params["bias"], stride=(1, 2), padding=1, dilation=(2, 1),
                      groups=2, activation="relu")
    ref.assert_close(y, want, 2 * 9)
    assert layer.output_shape == y.shape[1:]


@pytest.mark.parametrize("size, kernel, stride", [(7, 3, 2), (8, 3, 2), (6, 4, 1), (5, 2, 3), (9, 5, 2)])
def test_conv2d_same_gives_ceil_and_pads_like_keras(size, kernel, stride, rng):
    x = rng.standard_normal((1, 2, size, size))
    layer = layers.Conv2D(3, kernel, strides=stride, padding="same")
    y = layer.forward(x)
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    pads = (total // 2, total - total // 2) * 2  # the odd extra at the bottom and right
    want = ref.conv2d(x, layer.params["kernel"], layer.params["bias"], stride=stride, padding=pads)
    assert y.shape == (1, 3, out, out)
    ref.assert_close(y, want, 2 * kernel * kernel)


def test_conv2d_same_at_stride2_passes_the_uneven_split_to_ops(rng, monkeypatch):
    seen = []
    conv2d = pyconvx.ops.conv2d

    def spy(x, weight, bias=None, **kwargs):
        seen.append((x.shape, kwargs["padding"]))
        return conv2d(x, weight, bias, **kwargs)

    monkeypatch.setattr(pyconvx.ops, "conv2d", spy)
    layers.Conv2D(2, 3, strides=2, padding="same").forward(rng.standard_normal((1, 1, 8, 7)))
    assert seen == [((1, 1, 8, 7), (0, 1, 1, 1))]  # the input itself, no padded copy


def _window_reference(x, pool, stride, pads, reduce):
    """Keras "same" pooling: each window clipped to the input, padding never counted."""
    n, c, h, w = x.shape
    top, _, left, _ = pads
    out_h, out_w = -(-h // stride), -(-w // stride)
    y = np.zeros((n, c, out_h, out_w))
    for p in range(out_h):
        for q in range(out_w):
            h0, w0 = p * stride - top, q * stride - left
            window = x[:, :, max(h0, 0):h0 + pool, max(w0, 0):w0 + pool]
            y[:, :, p, q] = reduce(window, axis=(2, 3))
    return y


@pytest.mark.parametrize("size, pool, stride", [(5, 3, 2), (6, 2, 2), (5, 2, 1), (7, 3, 3)])
@pytest.mark.parametrize("cls, reduce", [(layers.MaxPooling2D, np.max), (layers.AveragePooling2D, np.mean)],
                         ids=["max", "avg"])
def test_pooling_same_matches_keras_rule(cls, reduce, size, pool, stride, rng):
    x = rng.standard_normal((2, 3, size, size + 1))
    y = cls(pool, strides=stride, padding="same").forward(x)
    out_h = -(-size // stride)
    total_h = max((out_h - 1) * stride + pool - size, 0)
    out_w = -(-(size + 1) // stride)
    total_w = max((out_w - 1) * stride + pool - size - 1, 0)
    want = _window_reference(x, pool, stride, (total_h // 2, 0, total_w // 2, 0), reduce)
    ref.assert_close(y, want, pool * pool)


def test_pooling_valid_and_int_padding_follow_ops(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    ref.assert_close(layers.MaxPooling2D(3, strides=2).forward(x), ref.max_pool2d(x, 3, 2)[0])
    ref.assert_close(layers.AveragePooling2D(3, strides=2, padding=1).forward(x), ref.avg_pool2d(x, 3, 2, 1), 9)
    ref.assert_close(layers.GlobalAveragePooling2D().forward(x), x.mean(axis=(2, 3)), 49)


def test_dense_matches_matmul(rng):
    layer = layers.Dense(5, activation="tanh", bias_initializer="he_normal")
    x = rng.standard_normal((4, 7))
    ref.assert_close(layer.forward(x), np.tanh(x @ layer.params["kernel"] + layer.params["bias"]), 7)


def test_activations_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    assert layers.Activation("linear").forward(z).tolist() == z.tolist()
    assert layers.ReLU().forward(z).tolist() == [[0.0, 0.0, 3.0]]
    np.testing.assert_allclose(layers.Activation("sigmoid").forward(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(layers.Activation("tanh").forward(z), np.tanh(z))
    np.testing.assert_allclose(layers.Activation("softmax").forward(z), np.exp(z) / np.exp(z).sum())
    big = layers.Activation("softmax").forward(np.array([[1000.0, 0.0]]))  # no overflow
    assert big.tolist() == [[1.0, 0.0]]


def test_batch_normalization_modes_and_running_statistics(rng):
    x = rng.normal(5.0, 3.0, (32, 2, 4, 4))
    layer = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-4)
    m = x.shape[0] * 16
    np.testing.assert_allclose(layer.state["moving_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1),
                               rtol=1e-5)
    before = layer.get_weights()
    inference = layer.forward(x, training=False)
    want = (x - layer.state["moving_mean"].reshape(1, 2, 1, 1)) / np.sqrt(
        layer.state["moving_variance"].reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(inference, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(before, layer.get_weights()):  # inference leaves the statistics alone
        np.testing.assert_array_equal(a, b)
    layer.trainable = False  # a frozen layer normalises with its running statistics even in training
    np.testing.assert_allclose(layer.forward(x, training=True), inference)
    assert layer.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.count_params() == 8 and layer.count_trainable_params() == 0


def test_local_response_normalization_formula(rng):
    x = rng.standard_normal((2, 7, 3, 3))
    y = layers.LocalResponseNormalization().forward(x)
    want = np.empty_like(x)
    for c in range(7):
        window = (x[:, max(c - 2, 0):c + 3] ** 2).sum(axis=1)
        want[:, c] = x[:, c] / (2 + 1e-4 * window) ** 0.75
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_dropout_masks_scale_and_reproduce():
    x = np.ones((4, 2000))
    y = layers.Dropout(0.25, seed=3).forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(y, layers.Dropout(0.25, seed=3).forward(x, training=True))
    np.testing.assert_array_equal(layers.Dropout(0.25).forward(x, training=False), x)


def test_flatten_roundtrip(rng):
    layer = layers.Flatten()
    x = rng.standard_normal((3, 2, 4, 5))
    assert layer.forward(x).shape == (3, 40)
    np.testing.assert_array_equal(layer.backward(np.arange(120.0).reshape(3, 40)),
                                  np.arange(120.0).reshape(3, 2, 4, 5))


def test_build_infers_channels_and_params_match_grads():
    conv = layers.Conv2D(5, (3, 2), groups=1)
    assert not conv.built and conv.params == {}
    conv.forward(np.zeros((1, 7, 6, 6), np.float32))
    assert conv.params["kernel"].shape == (5, 7, 3, 2) and conv.params["bias"].shape == (5,)
    assert set(conv.params) == set(conv.grads)
    assert all(conv.grads[k].shape == conv.params[k].shape for k in conv.params)
    assert all(p.dtype == np.float32 for p in conv.params.values())
    assert layers.Conv2D(5, 3, use_bias=False).build((2, 4, 4)) == (5, 2, 2)


def test_he_normal_scale():
    conv = layers.Conv2D(256, 3)
    conv.build((64, 8, 8), np.random.default_rng(0))
    assert abs(conv.params["kernel"].std() - np.sqrt(2 / (64 * 9))) < 0.002
    assert not conv.params["bias"].any()


def test_names_are_unique_and_follow_the_type():
    a, b = layers.Conv2D(2, 3), layers.Conv2D(2, 3)
    assert a.name != b.name and a.name.startswith("conv2d")
    assert layers.MaxPooling2D().name.startswith("max_pooling2d")
    assert layers.BatchNormalization(name="bn1").name == "bn1"
    with pytest.raises(ValueError, match="name"):
        layers.Dense(2, name="a/b")


def test_trainable_false_leaves_grads_and_gives_input_gradient(rng):
    layer = layers.Dense(3, trainable=False)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    layer.forward(x)
    grad_x = layer.backward(np.ones((2, 3), np.float32))
    assert grad_x.shape == (2, 4)
    assert not layer.grads["kernel"].any() and not layer.grads["bias"].any()
    assert layer.count_trainable_params() == 0 and layer.count_params() == 15


def test_get_set_weights_roundtrip_and_errors(rng):
    layer = layers.Conv2D(2, 3)
    layer.build((1, 5, 5))
    weights = [rng.standard_normal(w.shape) for w in layer.get_weights()]
    kernel_array = layer.params["kernel"]
    layer.set_weights(weights)
    assert layer.params["kernel"] is kernel_array  # in place: optimizers keep their state
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_allclose(got, want.astype(np.float32))
    with pytest.raises(ValueError, match=r"'kernel' has shape \(2, 1, 3, 3\), got \(2, 1, 3, 2\)"):
        layer.set_weights([np.zeros((2, 1, 3, 2)), np.zeros(2)])
    with pytest.raises(ValueError, match="expected 2 arrays"):
        layer.set_weights([np.zeros((2, 1, 3, 3))])
    with pytest.raises(RuntimeError, match="built"):
        layers.Dense(2).set_weights([])


@pytest.mark.parametrize("layer, built_for, given", [
    (layers.Conv2D(4, 3, name="c1"), (2, 3, 8, 8), (2, 1, 8, 8)),
    (layers.MaxPooling2D(name="p1"), (1, 2, 6, 6), (1, 2, 6, 7)),
    (layers.Dense(3, name="d1"), (2, 5), (2, 6)),
    (layers.BatchNormalization(name="bn"), (4, 3, 2, 2), (4, 2, 2, 2)),
    (layers.Activation("tanh", name="act"), (2, 3), (2, 3, 1)),
])
def test_wrong_input_shape_names_layer_and_both_shapes(layer, built_for, given):
    layer.forward(np.zeros(built_for, np.float32))
    expected = str((None,) + tuple(built_for[1:]))
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros(given, np.float32))
    message = str(info.value)
    assert repr(layer.name) in message and type(layer).__name__ in message
    assert expected in message and str(given) in message


def test_build_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"'dd' \(Dense\).*\(6, 5, 5\).*Flatten"):
        layers.Dense(3, name="dd").forward(np.zeros((1, 6, 5, 5)))
    with pytest.raises(ValueError, match=r"'cc' \(Conv2D\).*window span 5 is larger than the padded input 4"):
        layers.Conv2D(2, 5, name="cc").forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"'g' \(Conv2D\): input channels 3 are not divisible by groups=2"):
        layers.Conv2D(4, 3, groups=2, name="g").forward(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"'c4' \(Conv2D\).*\(N, C, H, W\)"):
        layers.Conv2D(4, 3, name="c4").forward(np.zeros((2, 10)))
    with pytest.raises(RuntimeError, match="before forward"):
        layers.Dense(2).backward(np.zeros((1, 2)))


@pytest.mark.parametrize("make, match", [
    (lambda: layers.Conv2D(0, 3), "filters must be >= 1"),
    (lambda: layers.Conv2D(4, 3, strides=0), "strides must be >= 1"),
    (lambda: layers.Conv2D(3, 3, groups=2), "filters must be divisible by groups"),
    (lambda: layers.Conv2D(3, 3, padding="full"), "padding must be 'valid', 'same'"),
    (lambda: layers.Conv2D(3, 3, activation="gelu"), "activation must be None or one of"),
    (lambda: layers.Conv2D(3, 3, kernel_initializer="magic"), "initializer must be"),
    (lambda: layers.MaxPooling2D(pool_size=(2, 0)), "pool_size must be >= 1"),
    (lambda: layers.Dense(-1), "units must be >= 1"),
    (lambda: layers.Activation("swish"), "activation must be None or one of"),
    (lambda: layers.Dropout(1.0), r"rate must be a number in \[0, 1\)"),
    (lambda: layers.BatchNormalization(momentum=1.5), "momentum must be in"),
    (lambda: layers.BatchNormalization(epsilon=0), "epsilon must be in"),
    (lambda: layers.LocalResponseNormalization(size=0), "size must be >= 1"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_first_layer_input_gradient_is_skipped_in_a_model(rng):
    model = pyconvx.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)], input_shape=(1, 5, 5))
    assert [layer.input_grad_needed for layer in model.layers] == [False, True, True]
    model.forward(rng.standard_normal((2, 1, 5, 5)), training=True)
    assert model.backward(np.ones((2, 2), np.float32)) is None
    assert model.layers[0].grads["kernel"].any()
