"""Property-based fuzzing of every layer: random constructor arguments (valid and invalid) and
random inputs. A wrong argument raises ValueError / TypeError naming it; a valid layer's forward
pass agrees with a float64 computation and its backward pass with the reference gradients, an
adjoint identity (linear layers) or central differences (the NumPy layers).
"""

import re

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import reference as ref  # noqa: E402
from pyconvx import layers  # noqa: E402
from test_gradcheck_layers import check_layer  # noqa: E402


def data(draw, shape, label="x"):
    seed = draw(st.integers(0, 2**32 - 1), label=label)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def keras_padding(padding, size_hw, kernel_hw, stride_hw, dilation_hw):
    """(top, bottom, left, right) of Keras' "valid" / "same" or a symmetric int / pair."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for n, k, s, d in zip(size_hw, kernel_hw, stride_hw, dilation_hw):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    return (ph, ph, pw, pw)


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def assert_adjoint(x, y, grad_in, g, what):
    """For a linear map y = A x, <A^T g, x> = <g, y>: backward is forward's transpose."""
    lhs = float(np.sum(np.asarray(grad_in, np.float64) * x))
    rhs = float(np.sum(np.asarray(g, np.float64) * y))
    scale = float(np.sum(np.abs(np.asarray(g, np.float64) * y))) + 1.0
    assert abs(lhs - rhs) <= 1e-4 * scale, (what, lhs, rhs)


# --------------------------------------------------------------------------------------------
# Constructor arguments
# --------------------------------------------------------------------------------------------

# layer: (valid keyword arguments, {argument: [invalid values]})
BAD_ARGUMENTS = {
    layers.Conv2D: (dict(filters=4, kernel_size=3),
                    dict(filters=[0, -2, 1.5, "8", None], kernel_size=[0, (3, 0), (1, 2, 3), 2.5],
                         strides=[0, (1, -1), "2"], padding=["full", -1, (0, -2), 1.5],
                         dilation_rate=[0, (-1, 1)], groups=[0, -3, 3], activation=["swish", 3],
                         kernel_initializer=["nope", ["he_normal"]], bias_initializer=["nope"])),
    layers.Dense: (dict(units=3), dict(units=[0, -1, 2.5, "3"], activation=["gelu"],
                                       kernel_initializer=["nope"])),
    layers.MaxPooling2D: (dict(pool_size=2), dict(pool_size=[0, (2, 0), 1.5], strides=[0, (0, 1)],
                                                   padding=["full", -1])),
    layers.AveragePooling2D: (dict(pool_size=2), dict(pool_size=[0, -1], strides=[0, -2], padding=["full", (-1, 0)])),
    layers.AdaptiveAveragePooling2D: (dict(output_size=2), dict(output_size=[0, (2, 0), 1.5])),
    layers.Activation: (dict(activation="relu"), dict(activation=["swish", 1])),
    layers.Dropout: (dict(rate=0.5), dict(rate=[-0.1, 1.0, 1.5, "0.5", True])),
    layers.BatchNormalization: (dict(), dict(momentum=[-0.1, 1.5, "0.9"], epsilon=[0.0, -1e-5, "1e-5"])),
    layers.LocalResponseNormalization: (dict(), dict(size=[0, -1, 2.5], alpha=["a"], beta=[None], k=["two"])),
    layers.Concatenate: (dict(), dict(axis=[1.5, "1"])),
    layers.ResidualBlock: (dict(filters=4), dict(filters=[0, -1], strides=[0], expansion=[0])),
    layers.InceptionModule: (dict(c1=2, c3_reduce=2, c3=2, c5_reduce=2, c5=2, pool_proj=2),
                             dict(c1=[0], c3=[-1], pool_proj=[1.5], c5_kernel_size=[4, 0])),
}
BAD_CASES = [(cls, name, value) for cls, (_, bad) in BAD_ARGUMENTS.items() for name, values in bad.items()
             for value in values]


@given(st.sampled_from(BAD_CASES))
def test_a_bad_constructor_argument_is_named(case):
    cls, name, value = case
    kwargs = dict(BAD_ARGUMENTS[cls][0])
    if cls is layers.ResidualBlock and name == "expansion":
        kwargs["bottleneck"] = True
    kwargs[name] = value
    with pytest.raises((ValueError, TypeError)) as info:
        cls(**kwargs)
    assert re.search(rf"\b{name}\b", str(info.value)), (cls.__name__, name, value, str(info.value))


def test_every_layer_is_fuzzed():
    covered = set(BAD_ARGUMENTS) | {layers.Flatten, layers.GlobalAveragePooling2D, layers.ReLU, layers.Add}
    public = {getattr(layers, name) for name in layers.__all__ if isinstance(getattr(layers, name), type)}
    abstract = {layers.Layer, layers.Block}
    assert public - abstract - covered <= {layers.Input}, public - abstract - covered


# --------------------------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------------------------


@st.composite
def conv_layer_case(draw):
    groups = draw(st.integers(1, 2))
    c, filters = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), 1)
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    activation = draw(st.sampled_from([None, "relu", "tanh", "sigmoid"]))
    use_bias = draw(st.booleans())
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    x = data(draw, (n, c, h, w))
    kwargs = dict(filters=filters, kernel_size=kernel, strides=strides, padding=padding, dilation_rate=dilation,
                  groups=groups, activation=activation, use_bias=use_bias)
    return kwargs, x


@given(conv_layer_case(), st.integers(0, 2**32 - 1))
def test_conv2d_layer_matches_the_reference_or_names_the_problem(case, seed):
    kwargs, x = case
    layer = layers.Conv2D(**kwargs)
    n, c, h, w = x.shape
    pads = keras_padding(kwargs["padding"], (h, w), kwargs["kernel_size"], kwargs["strides"],
                         kwargs["dilation_rate"])
    spans = [d * (k - 1) + 1 for d, k in zip(kwargs["dilation_rate"], kwargs["kernel_size"])]
    if spans[0] > h + pads[0] + pads[1] or spans[1] > w + pads[2] + pads[3]:
        with pytest.raises(ValueError, match=r"window span|kernel|input"):
            layer.forward(x)
        return
    y = layer.forward(x)
    kernel, bias = layer.params["kernel"], layer.params.get("bias")
    conv_kw = dict(stride=kwargs["strides"], padding=pads, dilation=kwargs["dilation_rate"], groups=kwargs["groups"])
    z = ref.conv2d(x, kernel, bias, **conv_kw)
    activation = kwargs["activation"]
    want = {None: z, "relu": np.maximum(z, 0), "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}[activation]
    reduction = kernel.shape[1] * kernel.shape[2] * kernel.shape[3]
    ref.assert_close(y, want, reduction, "Conv2D forward")

    g = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    grad_x = layer.backward(g)
    if activation == "relu":
        g = g * (y > 0)
    elif activation == "tanh":
        g = g * (1 - y.astype(np.float64) ** 2)
    elif activation == "sigmoid":
        g = g * y.astype(np.float64) * (1 - y)
    want_x, want_w, want_b = ref.conv2d_backward(g, x, kernel, **conv_kw)
    # Winograd may compute grad x of stride-1 3x3/5x5 layers: 1e-3 of the largest value, as forward
    scale = max(1.0, float(np.abs(want_x).max(initial=0)))
    np.testing.assert_allclose(grad_x, want_x, rtol=1e-3, atol=1e-3 * scale)
    ref.assert_close(layer.grads["kernel"], want_w, n * y.shape[2] * y.shape[3], "Conv2D grad kernel")
    if kwargs["use_bias"]:
        ref.assert_close(layer.grads["bias"], want_b, n * y.shape[2] * y.shape[3], "Conv2D grad bias")

    # A later input of another shape is refused with both shapes named.
    with pytest.raises(ValueError, match=r"expected input shape"):
        layer.forward(np.ones((1, c, h + 1, w), np.float32))


# --------------------------------------------------------------------------------------------
# Pooling layers
# --------------------------------------------------------------------------------------------


@st.composite
def pool_layer_case(draw):
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]),
                             st.tuples(st.integers(0, pool[0] // 2), st.integers(0, pool[1] // 2))))
    ceil_mode = draw(st.booleans()) and padding != "same"
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return dict(pool_size=pool, strides=strides, padding=padding, ceil_mode=ceil_mode), data(draw, (n, c, h, w))


def pool_reference(kind, x, pool, strides, pads, ceil_mode, count_include_pad):
    """Max or average pooling with (top, bottom, left, right) padding, via the reference on an
    explicitly padded input (the reference takes symmetric padding only)."""
    (pt, pb, pl, pr) = pads
    if ceil_mode or (pt == pb and pl == pr and (kind == "max" or count_include_pad)):
        if kind == "max":
            return ref.max_pool2d(x, pool, strides, (pt, pl), ceil_mode)[0]
        return ref.avg_pool2d(x, pool, strides, (pt, pl), ceil_mode, count_include_pad)
    widths = ((0, 0), (0, 0), (pt, pb), (pl, pr))
    if kind == "max":
        return ref.max_pool2d(np.pad(x.astype(np.float64), widths, constant_values=-np.inf), pool, strides)[0]
    sums = ref.avg_pool2d(np.pad(x.astype(np.float64), widths), pool, strides)
    counts = ref.avg_pool2d(np.pad(np.ones_like(x, np.float64), widths), pool, strides)
    return sums / (1.0 if count_include_pad else counts)


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
@given(case=pool_layer_case(), seed=st.integers(0, 2**32 - 1))
def test_pooling_layers_match_the_reference_or_name_the_problem(cls, case, seed):
    kwargs, x = case
    layer = cls(**kwargs)
    n, c, h, w = x.shape
    pool = kwargs["pool_size"]
    strides = kwargs["strides"] or pool
    pads = keras_padding(kwargs["padding"], (h, w), pool, strides, (1, 1))
    if pool[0] > h + pads[0] + pads[1] or pool[1] > w + pads[2] + pads[3]:
        with pytest.raises(ValueError, match=r"window span|input"):
            layer.forward(x)
        return
    y = layer.forward(x)
    kind = "max" if cls is layers.MaxPooling2D else "avg"
    want = pool_reference(kind, x, pool, strides, pads, kwargs["ceil_mode"], kwargs["padding"] != "same")
    ref.assert_close(y, want, pool[0] * pool[1], f"{cls.__name__} forward")
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    assert_adjoint(x, y, layer.backward(g), g, cls.__name__)


@given(st.data())
def test_global_and_adaptive_average_pooling_match_numpy(data_):
    draw = data_.draw
    n, c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x = data(draw, (n, c, h, w))
    g = np.random.default_rng(draw(st.integers(0, 99))).standard_normal

    layer = layers.GlobalAveragePooling2D()
    y = layer.forward(x)
    ref.assert_close(y, x.astype(np.float64).mean(axis=(2, 3)), h * w)
    gy = g(y.shape).astype(np.float32)
    assert_adjoint(x, y, layer.backward(gy), gy, "GlobalAveragePooling2D")

    out = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    layer = layers.AdaptiveAveragePooling2D(out)
    y = layer.forward(x)
    want = np.zeros((n, c) + out)
    for i in range(out[0]):
        h0, h1 = i * h // out[0], -(-(i + 1) * h // out[0])
        for j in range(out[1]):
            w0, w1 = j * w // out[1], -(-(j + 1) * w // out[1])
            want[:, :, i, j] = x[:, :, h0:h1, w0:w1].astype(np.float64).mean(axis=(2, 3))
    ref.assert_close(y, want, h * w)
    gy = g(y.shape).astype(np.float32)
    assert_adjoint(x, y, layer.backward(gy), gy, "AdaptiveAveragePooling2D")

    with pytest.raises(ValueError, match=r"per-sample shape|expected"):
        layers.GlobalAveragePooling2D().forward(x.reshape(n, -1))


# --------------------------------------------------------------------------------------------
# Dense, Flatten, activations, dropout, normalisation, merges
# --------------------------------------------------------------------------------------------


@given(st.data())
def test_dense_and_flatten_match_numpy(data_):
    draw = data_.draw
    n, c, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = data(draw, (n, c, h, w))
    flatten = layers.Flatten()
    flat = flatten.forward(x)
    np.testing.assert_array_equal(flat, x.reshape(n, -1))
    units, activation = draw(st.integers(1, 20)), draw(st.sampled_from([None, "relu", "tanh", "softmax"]))
    dense = layers.Dense(units, activation=activation, use_bias=draw(st.booleans()))
    with pytest.raises(ValueError, match=r"Flatten|features"):
        layers.Dense(units).forward(x)  # 4-D input: the message says what to add
    y = dense.forward(flat)
    z = flat.astype(np.float64) @ dense.params["kernel"] + dense.params.get("bias", 0)
    if activation == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
    else:
        want = {None: z, "relu": np.maximum(z, 0), "tanh": np.tanh(z)}[activation]
    ref.assert_close(y, want, flat.shape[1], "Dense forward")
    if activation in (None, "relu"):
        g = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(y.shape).astype(np.float32)
        grad_flat = dense.backward(g)
        gz = g * (y > 0) if activation == "relu" else g.astype(np.float64)
        ref.assert_close(grad_flat, gz @ dense.params["kernel"].T.astype(np.float64), units)
        ref.assert_close(dense.grads["kernel"], flat.T.astype(np.float64) @ gz, n)
        np.testing.assert_array_equal(flatten.backward(grad_flat), grad_flat.reshape(x.shape))


@given(st.data())
def test_numpy_layers_match_float64_formulas_and_central_differences(data_):
    draw = data_.draw
    shape = draw(st.sampled_from([(3, 4), (2, 3, 4, 5), (4, 2, 3, 3)]))
    x64 = data(draw, shape).astype(np.float64)
    rng = np.random.default_rng(draw(st.integers(0, 99)))

    name = draw(st.sampled_from(["relu", "tanh", "sigmoid", "linear"]))
    want = {"relu": np.maximum(x64, 0), "tanh": np.tanh(x64), "sigmoid": 1 / (1 + np.exp(-x64)), "linear": x64}[name]
    np.testing.assert_allclose(layers.Activation(name).forward(x64), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layers.ReLU().forward(x64), np.maximum(x64, 0))
    check_layer(layers.Activation(name if name != "relu" else "tanh"), x64, rng)

    rate = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9]))
    dropout = layers.Dropout(rate, seed=draw(st.integers(0, 99)))
    np.testing.assert_array_equal(dropout.forward(x64, training=False), x64)
    y = dropout.forward(x64, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x64[kept] / (1 - rate), rtol=1e-12)
    np.testing.assert_array_equal(dropout.backward(np.ones_like(y))[kept], np.full(kept.sum(), 1 / (1 - rate)))

    bn = layers.BatchNormalization(epsilon=1e-3)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    y = bn.forward(x64, training=True)
    mean, var = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
    np.testing.assert_allclose(y, (x64 - mean) / np.sqrt(var + 1e-3), rtol=1e-5, atol=1e-5)
    check_layer(layers.BatchNormalization(epsilon=1e-3), x64, rng, training=True, float64_params=True)

    if len(shape) == 4:
        size = draw(st.integers(1, 4))
        lrn = layers.LocalResponseNormalization(size=size, alpha=0.1, beta=0.75, k=2.0)
        sq = np.pad(x64 ** 2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
        window = sum(sq[:, i:i + shape[1]] for i in range(size))
        np.testing.assert_allclose(lrn.forward(x64), x64 / (2.0 + 0.1 * window) ** 0.75, rtol=1e-10)
        check_layer(layers.LocalResponseNormalization(size=size, alpha=0.1, beta=0.75, k=2.0), x64, rng)


@given(st.data())
def test_merge_layers_match_numpy_or_name_the_problem(data_):
    draw = data_.draw
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    channels = draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))
    xs = [data(draw, (n, c, h, w), f"x{i}") for i, c in enumerate(channels)]
    cat = layers.Concatenate()
    y = cat.forward(xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=1))
    parts = cat.backward(y * 2)
    for part, x in zip(parts, xs):
        np.testing.assert_array_equal(part, x * 2)
    same = [xs[0]] * len(xs)
    add = layers.Add()
    np.testing.assert_allclose(add.forward(same), xs[0].astype(np.float64) * len(xs), rtol=1e-6)
    for part in add.backward(np.ones_like(xs[0])):
        np.testing.assert_array_equal(part, np.ones_like(xs[0]))
    if len(set(channels)) > 1:
        with pytest.raises(ValueError, match=r"one shape"):
            layers.Add().forward(xs)
    with pytest.raises(ValueError, match=r"\baxis\b"):
        layers.Concatenate(axis=5).forward(xs)


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


@given(st.data())
def test_blocks_give_their_declared_shapes_and_deterministic_gradients(data_):
    draw = data_.draw
    c, h = draw(st.integers(1, 4)), draw(st.integers(2, 7))
    x = data(draw, (2, c, h, h))
    if draw(st.booleans()):
        block = layers.ResidualBlock(draw(st.integers(1, 4)), strides=draw(st.integers(1, 2)),
                                     bottleneck=draw(st.booleans()), expansion=2)
    else:
        block = layers.InceptionModule(*[draw(st.integers(1, 3)) for _ in range(6)],
                                       batch_norm=draw(st.booleans()), c5_kernel_size=draw(st.sampled_from([3, 5])))
    y = block.forward(x, training=True)
    assert y.shape == (2,) + block.output_shape and np.all(np.isfinite(y))
    g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    grad = block.backward(g)
    assert grad.shape == x.shape and np.all(np.isfinite(grad))
    # The same input gives the same output and gradient (no state leaks between calls but BN's
    # running statistics, which training mode does not read).
    np.testing.assert_array_equal(block.forward(x, training=True), y)
    np.testing.assert_array_equal(block.backward(g), grad)
