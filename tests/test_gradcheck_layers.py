"""Finite-difference checks of every layer's backward pass and of a small network's.

The loss is L = sum(layer(x) * g) for a fixed random g. Layers computed in NumPy are checked in
float64 (inputs and parameters cast to float64, eps 1e-6, tight tolerance). Conv2D, Dense and the
pools run float32 C++ kernels, so their central differences use a larger eps (1e-2, or 1e-3 across
a ReLU kink) and a tolerance of a few 1e-3 of the gradient's scale: rounding of the float32
forward divided by 2 eps stays below it, while a wrong gradient misses by O(1).
"""
import numpy as np
import pytest

import pyconvx
from pyconvx import layers
from test_gradcheck import distinct_values, numeric_grad


def assert_grad_close(got, want, what, rtol):
    assert got is not None and got.shape == want.shape, what
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def check_layer(layer, x, rng, training=True, eps=1e-6, rtol=1e-6, float64_params=False, reseed=False):
    """Compares layer.backward with central differences for x and every parameter."""
    layer.forward(x, training)  # build
    if float64_params:
        layer.params.update({key: value.astype(np.float64) for key, value in layer.params.items()})

    def forward():
        if reseed:  # the same dropout mask on every call
            layer.reseed(np.random.default_rng(7))
        return layer.forward(x, training)

    y = forward()
    g = rng.standard_normal(y.shape).astype(y.dtype)
    grad_x = layer.backward(g)
    analytic = {key: np.array(value, dtype=np.float64) for key, value in layer.grads.items()}

    def loss():
        return float((forward().astype(np.float64) * g).sum())

    assert_grad_close(grad_x, numeric_grad(loss, x, eps), f"{layer.name}: grad x", rtol)
    for key, param in layer.params.items():
        assert_grad_close(analytic[key], numeric_grad(loss, param, eps), f"{layer.name}: grad {key}", rtol)


# ----- float32 C++ layers -----

CONV_CASES = [
    pytest.param(dict(filters=3, kernel_size=3), (2, 2, 5, 5), id="valid"),
    pytest.param(dict(filters=2, kernel_size=(3, 2), padding="same"), (1, 2, 5, 4), id="same_even_kernel"),
    pytest.param(dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 2, 6, 5), id="same_stride2_uneven"),
    pytest.param(dict(filters=2, kernel_size=2, dilation_rate=2, padding=1), (1, 2, 6, 6), id="dilation_pad1"),
    pytest.param(dict(filters=4, kernel_size=3, groups=2, padding="same"), (1, 4, 4, 4), id="groups2"),
    pytest.param(dict(filters=2, kernel_size=3, activation="tanh"), (2, 2, 5, 5), id="tanh"),
    pytest.param(dict(filters=3, kernel_size=1, activation="softmax"), (1, 2, 3, 3), id="softmax_channels"),
]


@pytest.mark.parametrize("kwargs, shape", CONV_CASES)
def test_conv2d(kwargs, shape, rng):
    layer = layers.Conv2D(bias_initializer="he_normal" if "groups" in kwargs else "zeros", **kwargs)
    check_layer(layer, rng.standard_normal(shape), rng, eps=1e-2, rtol=2e-3)


def test_conv2d_fused_relu(rng):
    # Inputs drawn until no pre-activation lies within 0.02 of the kink: eps = 1e-3 then moves no
    # output across zero between the two evaluations of a difference.
    layer = layers.Conv2D(3, 3, activation="relu", bias_initializer="he_normal")
    layer.build((2, 5, 5), rng)
    for _ in range(100):
        x = rng.standard_normal((2, 2, 5, 5))
        pre = pyconvx.conv2d(x, layer.params["kernel"], layer.params["bias"])
        if np.abs(pre).min() > 0.02:
            break
    assert np.abs(pre).min() > 0.02 and (pre > 0).mean() > 0.2 and (pre < 0).mean() > 0.2
    check_layer(layer, x, rng, eps=1e-3, rtol=5e-3)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "softmax"])
def test_dense(activation, rng):
    layer = layers.Dense(4, activation=activation, bias_initializer="he_normal")
    x = rng.standard_normal((3, 5))
    check_layer(layer, x, rng, eps=1e-3 if activation == "relu" else 1e-2, rtol=5e-3)


POOL_CASES = [
    pytest.param(dict(pool_size=2), (1, 2, 4, 4), id="2x2"),
    pytest.param(dict(pool_size=3, strides=2, padding="same"), (1, 2, 6, 5), id="same_uneven"),
    pytest.param(dict(pool_size=3, strides=1, padding="same"), (2, 1, 4, 4), id="same_even_split"),
    pytest.param(dict(pool_size=(2, 3), strides=1, padding=1), (1, 1, 4, 5), id="int_padding"),
    pytest.param(dict(pool_size=3, strides=2, ceil_mode=True), (1, 2, 6, 7), id="ceil_mode"),
]


@pytest.mark.parametrize("kwargs, shape", POOL_CASES)
@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling(cls, kwargs, shape, rng):
    # Values 0.1 apart: no max-pool window has a tie, and eps = 1e-2 never reorders one.
    check_layer(cls(**kwargs), distinct_values(rng, shape), rng, eps=1e-2, rtol=2e-3)


@pytest.mark.parametrize("shape, output_size", [((1, 2, 5, 7), (3, 2)), ((1, 1, 2, 2), (3, 3))])
def test_adaptive_average_pooling(shape, output_size, rng):
    check_layer(layers.AdaptiveAveragePooling2D(output_size), rng.standard_normal(shape), rng, eps=1e-2, rtol=2e-3)


def test_global_average_pooling(rng):
    check_layer(layers.GlobalAveragePooling2D(), rng.standard_normal((2, 3, 3, 4)), rng, eps=1e-2, rtol=2e-3)


# ----- NumPy layers, in float64 -----

@pytest.mark.parametrize("name", ["linear", "relu", "tanh", "sigmoid", "softmax"])
def test_activation(name, rng):
    x = rng.standard_normal((3, 4, 2, 2))
    if name == "relu":
        x += np.sign(x) * 0.01  # away from the kink
    check_layer(layers.Activation(name), x, rng)


def test_relu_layer(rng):
    check_layer(layers.ReLU(), rng.uniform(0.1, 1, (2, 3)) * rng.choice([-1, 1], (2, 3)), rng)


@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 4)], ids=["nchw", "features"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "inference"])
def test_batch_normalization(shape, training, rng):
    layer = layers.BatchNormalization()
    layer.forward(rng.standard_normal(shape), True)  # moving statistics away from 0 and 1
    layer.state["moving_mean"][:] = rng.standard_normal(shape[1])
    layer.state["moving_variance"][:] = rng.uniform(0.5, 2.0, shape[1])
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, shape[1])
    layer.params["beta"][:] = rng.standard_normal(shape[1])
    check_layer(layer, rng.standard_normal(shape) * 2 + 1, rng, training=training, float64_params=True)


@pytest.mark.parametrize("size", [5, 4, 1])
def test_local_response_normalization(size, rng):
    # alpha large enough that the denominators' dependence on neighbours matters.
    layer = layers.LocalResponseNormalization(size=size, alpha=0.3, beta=0.75, k=2.0)
    check_layer(layer, rng.standard_normal((2, 6, 2, 3)), rng)


def test_dropout(rng):
    check_layer(layers.Dropout(0.4), rng.standard_normal((3, 8)), rng, reseed=True)


def test_flatten(rng):
    check_layer(layers.Flatten(), rng.standard_normal((2, 3, 2, 2)), rng)


# ----- a small network, through the model's backward and a loss -----

def test_small_network_parameter_gradients(rng):
    model = pyconvx.Sequential([
        layers.Conv2D(3, 3, padding="same", bias_initializer="he_normal"), layers.BatchNormalization(),
        layers.Activation("tanh"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3),
    ], input_shape=(2, 4, 4), seed=1)
    x = rng.standard_normal((4, 2, 4, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])

    def loss():
        return pyconvx.losses.sparse_categorical_crossentropy(labels, model.forward(x, training=True))[0]

    _, grad = pyconvx.losses.sparse_categorical_crossentropy(labels, model.forward(x, training=True))
    model.backward(grad)
    for layer in (model.layers[0], model.layers[1], model.layers[5]):
        for key, param in layer.params.items():
            analytic = layer.grads[key].copy()
            assert_grad_close(analytic, numeric_grad(loss, param, 1e-3), f"{layer.name}/{key}", 1e-2)


# ----- composite blocks and a graph with branches -----
# Their convolutions run in float32: a small eps (1e-4 to 1e-3) keeps the differences away from
# the ReLU kinks, while float32 rounding of the loss over 2 eps stays near 1e-3 of the gradient's
# scale. Weights come from the test's seeded generator, so every run takes the same differences.

@pytest.mark.parametrize("kwargs, shape", [
    pytest.param(dict(filters=3), (2, 3, 4, 4), id="basic_identity"),
    pytest.param(dict(filters=3, strides=2), (2, 2, 5, 5), id="basic_projection_stride2"),
    pytest.param(dict(filters=2, bottleneck=True), (2, 4, 3, 3), id="bottleneck_projection"),
])
def test_residual_block(kwargs, shape, rng):
    block = layers.ResidualBlock(**kwargs)
    block.build(shape[1:], rng)  # seeded weights: the same differences on every run
    check_layer(block, rng.standard_normal(shape), rng, eps=1e-4, rtol=1e-2)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["paper", "batch_norm"])
def test_inception_module(batch_norm, rng):
    module = layers.InceptionModule(2, 2, 3, 1, 2, 2, batch_norm=batch_norm)
    module.build((3, 4, 4), rng)
    for key, bias in module.params.items():  # biases away from zero: fewer units sit at the ReLU kink
        if key.endswith("bias"):
            bias[:] = rng.uniform(0.2, 0.5, bias.shape)
    check_layer(module, distinct_values(rng, (2, 3, 4, 4)), rng, eps=1e-3, rtol=1e-2)


def test_small_graph_with_branches_parameter_and_input_gradients(rng):
    image = pyconvx.Input((2, 5, 5))
    stem = layers.Conv2D(3, 3, padding="same", activation="tanh", bias_initializer="he_normal")(image)
    left = layers.Conv2D(2, 1, activation="sigmoid")(stem)
    right = layers.AveragePooling2D(3, strides=1, padding="same")(stem)
    merged = layers.Concatenate()([left, right, stem])  # stem feeds three layers
    pooled = layers.GlobalAveragePooling2D()(merged)
    logits = layers.Add()([layers.Dense(3)(pooled), layers.Dense(3, activation="tanh")(pooled)])
    model = pyconvx.Model(image, [logits, layers.Dense(1)(pooled)], seed=2)
    x = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    labels, targets = np.array([0, 2, 1]), rng.standard_normal((3, 1))

    def loss():
        out, reg = model.forward(x, training=True)
        return (pyconvx.losses.sparse_categorical_crossentropy(labels, out)[0]
                + 0.5 * pyconvx.losses.mse(targets, reg)[0])

    out, reg = model.forward(x, training=True)
    grads = [pyconvx.losses.sparse_categorical_crossentropy(labels, out)[1], 0.5 * pyconvx.losses.mse(targets, reg)[1]]
    grad_x = model.backward(grads, input_gradients=True)
    assert_grad_close(grad_x, numeric_grad(loss, x, 1e-2), "grad x", 1e-2)
    for layer in model.layers:
        for key, param in layer.params.items():
            analytic = layer.grads[key].copy()
            assert_grad_close(analytic, numeric_grad(loss, param, 1e-2), f"{layer.name}/{key}", 1e-2)


# ----- a small network of each family, through a model, a loss and its backward -----

def _family(name):
    """A few-parameter network in the shape of each classic family, on 1-3 channel 8x8 images."""
    if name == "lenet":  # tanh convolutions, average pooling, dense tanh head
        return [layers.Conv2D(3, 3, activation="tanh"), layers.AveragePooling2D(2), layers.Conv2D(4, 3, activation="tanh"),
                layers.Flatten(), layers.Dense(5, activation="tanh"), layers.Dense(3)], (1, 8, 8)
    if name == "alexnet":  # strided ReLU convolution, local response normalisation, overlapping max pooling
        return [layers.Conv2D(4, 3, strides=2, padding=1, activation="relu", bias_initializer="he_normal"),
                layers.LocalResponseNormalization(size=3), layers.MaxPooling2D(3, strides=2, padding=1),
                layers.Flatten(), layers.Dense(3)], (3, 8, 8)
    if name == "vgg":  # stacked 3x3 "same" convolutions, then 2x2 max pooling
        return [layers.Conv2D(3, 3, padding="same", activation="relu", bias_initializer="he_normal"),
                layers.Conv2D(3, 3, padding="same", activation="relu", bias_initializer="he_normal"),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)], (2, 8, 8)
    if name == "resnet":  # conv, batch norm, a projecting residual block, global average pooling
        return [layers.Conv2D(3, 3, padding=1, use_bias=False), layers.BatchNormalization(), layers.ReLU(),
                layers.ResidualBlock(2, strides=2), layers.GlobalAveragePooling2D(), layers.Dense(3)], (2, 8, 8)
    # inception: a 1x1-bottlenecked module between a stem and a global average pool
    return [layers.Conv2D(3, 3, padding="same", activation="relu", bias_initializer="he_normal"),
            layers.InceptionModule(2, 2, 2, 1, 2, 1), layers.GlobalAveragePooling2D(), layers.Dense(3)], (2, 8, 8)


@pytest.mark.parametrize("family", ["lenet", "alexnet", "vgg", "resnet", "inception"])
def test_small_network_of_each_family(family, rng):
    stack, shape = _family(family)
    model = pyconvx.Sequential(stack, input_shape=shape, seed=3)
    x = distinct_values(rng, (3,) + shape, spacing=0.37 / np.prod(shape)).astype(np.float32) * 20
    labels = np.array([0, 2, 1])

    def loss():
        return pyconvx.losses.sparse_categorical_crossentropy(labels, model.forward(x, training=True))[0]

    _, grad = pyconvx.losses.sparse_categorical_crossentropy(labels, model.forward(x, training=True))
    model.backward(grad)
    checked = 0
    for layer in model.layers:
        for key, param in layer.params.items():
            analytic = layer.grads[key].copy()
            assert_grad_close(analytic, numeric_grad(loss, param, 1e-3), f"{family}: {layer.name}/{key}", 2e-2)
            checked += 1
    assert checked >= 3
