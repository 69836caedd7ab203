"""The inference plan (pyconvx.engine): predict through the C++ plan gives what the layers give one
by one, for every zoo network and for random graphs; it follows every way of changing weights;
it fuses where the data allows and only there; several threads may run it at once."""
import copy
import threading

import numpy as np
import pytest

import pyconvx
from pyconvx import layers, models, optimizers
import reference as ref

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402


@pytest.fixture
def heuristic_algorithms():
    """Plans built in the test take the heuristic's algorithms (no autotuning), which the test
    names."""
    before = pyconvx.get_autotune()
    pyconvx.set_autotune(False)
    yield
    pyconvx.set_autotune(before)


def leaf_layers(model):
    stack, leaves = list(model.layers), []
    while stack:
        layer = stack.pop()
        if getattr(layer, "sublayers", None):
            stack.extend(layer.sublayers)
        else:
            leaves.append(layer)
    return leaves


def randomise(model, rng):
    """Weights away from their start: batch-norm statistics and scales that fold into the
    filters as something other than the identity, and non-zero biases."""
    for layer in leaf_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            c = layer.params["gamma"].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 2.0, c)])
        elif "bias" in layer.params:
            weights = layer.get_weights()
            weights[1] = rng.normal(0, 0.1, weights[1].shape)
            layer.set_weights(weights)


def assert_matches_forward(model, x, batch_size=32):
    """predict equals the layer-by-layer forward within 1e-5 of the largest output."""
    want = model.forward(x, training=False)
    got = model.predict(x, batch_size=batch_size)
    for g, w in zip(*(([got], [want]) if isinstance(want, np.ndarray) else (got, want))):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * max(1.0, float(np.abs(w).max())))


ZOO = [
    ("lenet5", dict(input_shape=(1, 32, 32))),
    ("alexnet", dict(input_shape=(3, 67, 67))),
    ("vgg16", dict(input_shape=(3, 32, 32))),
    ("resnet18", dict(input_shape=(3, 40, 40))),
    ("resnet34", dict(input_shape=(3, 32, 32))),
    ("resnet50", dict(input_shape=(3, 32, 32))),
    ("googlenet", dict(input_shape=(3, 64, 64))),
    ("googlenet", dict(input_shape=(3, 96, 96), aux_logits=True)),
    ("mobilenet_v2", dict(input_shape=(3, 64, 64))),
]


@pytest.mark.parametrize("name,kwargs", ZOO, ids=[f"{n}{'_aux' if k.get('aux_logits') else ''}" for n, k in ZOO])
def test_predict_of_every_zoo_network_matches_its_layers(name, kwargs, rng):
    model = getattr(models, name)(num_classes=10, seed=0, **kwargs)
    randomise(model, rng)
    x = rng.standard_normal((5,) + kwargs["input_shape"]).astype(np.float32)
    assert_matches_forward(model, x, batch_size=2)  # two full batches and a remainder of one
    assert_matches_forward(model, x[:1], batch_size=32)


def test_the_plan_fuses_batch_norm_activations_and_residuals():
    model = models.resnet18(num_classes=10, input_shape=(3, 32, 32), seed=0)
    steps = model.inference_plan(batch_size=4).describe().splitlines()
    convs = [s for s in steps if s.startswith("conv2d")]
    assert len(convs) == 20 and all("+batch_norm" in s for s in convs)
    # Every block's last convolution adds the shortcut and applies the ReLU itself.
    assert sum("+add(1) +relu" in s for s in convs) == 8
    assert not any(s.startswith(("batch_norm", "activation", "add")) for s in steps)


def test_concatenated_branches_write_their_slices():
    model = models.googlenet(num_classes=10, input_shape=(3, 64, 64), seed=0)
    steps = model.inference_plan(batch_size=2).describe().splitlines()
    assert not any(s.startswith("concat") for s in steps)  # every branch ends in a convolution


def test_fusion_only_where_inner_values_feed_nothing_else(rng):
    x = pyconvx.Input((3, 8, 8))
    a = layers.Conv2D(4, 3, padding=1, name="a")(x)
    a_out = layers.ReLU(name="a_relu")(layers.BatchNormalization(name="a_bn")(a))   # fused whole
    b = layers.Conv2D(4, 3, padding=1, name="b")(a_out)
    b_bn = layers.BatchNormalization(name="b_bn")(b)
    b_out = layers.Add(name="add")([layers.ReLU(name="b_relu")(b_bn), b_bn])  # the batch norm feeds two
    c = layers.Conv2D(4, 1, name="c")(b_out)
    both = layers.Concatenate(name="cat")([c, layers.ReLU(name="c_relu")(c)])    # c feeds two: copied
    model = pyconvx.Model(x, [both, c], seed=0)                                    # and c is an output
    randomise(model, rng)
    steps = model.inference_plan().describe().splitlines()
    assert steps[0].startswith("conv2d[1]") and "+batch_norm +relu" in steps[0]
    assert any(s.startswith("conv2d[4]") and "+batch_norm" in s and "+relu" not in s for s in steps)
    assert any(s.startswith("activation") for s in steps) and any(s.startswith("add") for s in steps)
    assert any(s.startswith("concat") and "2 copied" in s for s in steps)
    assert_matches_forward(model, rng.standard_normal((3, 3, 8, 8)).astype(np.float32))


# ----- the plan follows the weights -------------------------------------------------------------


def small_model(seed=0):
    return pyconvx.Sequential([layers.Conv2D(4, 3, padding=1, use_bias=False, name="conv"),
                               layers.BatchNormalization(name="bn"), layers.ReLU(name="relu"),
                               layers.GlobalAveragePooling2D(name="pool"), layers.Dense(3, name="fc")],
                              input_shape=(2, 6, 6), seed=seed)


def changes(tmp_path):
    """Each way of changing a model's weights, as a function of the model."""
    other = small_model(seed=7)
    path = str(tmp_path / "w.npz")
    other.save_weights(path)
    x = np.random.default_rng(3).standard_normal((8, 2, 6, 6)).astype(np.float32)
    y = np.arange(8) % 3

    def fit_step(model):
        model.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)

    def torch_state(model):
        state = {f"{layer.name}.{name}": value for layer, name, value in [
            (other.get_layer("conv"), "weight", other.get_layer("conv").params["kernel"]),
            (other.get_layer("bn"), "weight", other.get_layer("bn").params["gamma"]),
            (other.get_layer("bn"), "bias", other.get_layer("bn").params["beta"]),
            (other.get_layer("bn"), "running_mean", other.get_layer("bn").state["moving_mean"] + 0.3),
            (other.get_layer("bn"), "running_var", other.get_layer("bn").state["moving_variance"] + 0.5),
            (other.get_layer("fc"), "weight", other.get_layer("fc").params["kernel"].T),
            (other.get_layer("fc"), "bias", other.get_layer("fc").params["bias"] + 1)]}
        model.load_torch_state_dict(state)

    def write_after_unlocking(model):
        kernel = model.get_layer("conv").params["kernel"]
        kernel.flags.writeable = True
        kernel *= -1

    def replace_array(model):
        layer = model.get_layer("fc")
        layer.params["kernel"] = layer.params["kernel"] * 2

    return {
        "model set_weights": lambda m: m.set_weights(other.get_weights()),
        "layer set_weights": lambda m: m.get_layer("fc").set_weights(other.get_layer("fc").get_weights()),
        "load_weights": lambda m: m.load_weights(path),
        "load_torch_state_dict": torch_state,
        "fit step": fit_step,
        "training forward (batch-norm statistics)": lambda m: m.forward(x, training=True),
        "write after unlocking": write_after_unlocking,
        "replaced array": replace_array,
        "shrink_perturb": lambda m: pyconvx.transfer.shrink_perturb(m, other, shrink=0.3),
    }


@pytest.mark.parametrize("how", [
    "model set_weights", "layer set_weights", "load_weights", "load_torch_state_dict", "fit step",
    "training forward (batch-norm statistics)", "write after unlocking", "replaced array", "shrink_perturb"])
def test_predict_follows_every_way_of_changing_weights(how, tmp_path, rng):
    model = small_model()
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    before = model.predict(x)
    changes(tmp_path)[how](model)
    after = model.predict(x)
    assert not np.allclose(after, before), "the change must change the outputs for the test to mean something"
    np.testing.assert_allclose(after, model.forward(x, training=False), rtol=1e-5, atol=1e-5)


def test_a_current_plan_keeps_weights_read_only():
    model = small_model()
    model.predict(np.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match="read-only"):
        model.get_layer("conv").params["kernel"][...] = 0
    model.get_layer("fc").set_weights(model.get_layer("fc").get_weights())  # the API way still works


def test_freezing_does_not_rebuild():
    model = small_model()
    plan = model.inference_plan(batch_size=4)
    model.freeze(up_to="bn")
    assert model.inference_plan(batch_size=4) is plan


def test_a_model_with_a_plan_copies(rng):
    model = small_model()
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    want = model.predict(x)
    clone = copy.deepcopy(model)
    np.testing.assert_array_equal(clone.predict(x), want)
    clone.set_weights([w + 1 for w in clone.get_weights()])  # the copy's weights are its own
    assert not np.allclose(clone.predict(x), want)
    np.testing.assert_array_equal(model.predict(x), want)


# ----- models and batches the plan must handle ---------------------------------------------------


class Doubling(layers.Layer):
    """A custom layer without a plan step."""

    def _forward(self, x, training):
        return 2 * x

    def _backward(self, grad):
        return 2 * grad


def test_a_custom_layer_runs_the_model_layer_by_layer(rng):
    model = pyconvx.Sequential([layers.Conv2D(3, 3), Doubling(name="twice"), layers.Flatten(), layers.Dense(2)],
                               input_shape=(1, 5, 5), seed=0)
    x = rng.standard_normal((3, 1, 5, 5)).astype(np.float32)
    assert_matches_forward(model, x)
    with pytest.raises(ValueError, match="'twice' \\(Doubling\\) has no step in the inference plan"):
        model.inference_plan()


def test_several_inputs_and_outputs_views_and_repeats(rng):
    a, b = pyconvx.Input((3, 6, 6), name="a"), pyconvx.Input((3, 6, 6), name="b")
    s = layers.Add(name="sum")([a, b])
    c = layers.Conv2D(4, 3, padding=1, activation="relu", name="c")(s)
    flat = layers.Flatten(name="flat")(c)
    head = layers.Dense(5, activation="softmax", name="head")(flat)
    model = pyconvx.Model([a, b], [head, c, a, layers.Dropout(0.5, name="drop")(c)], seed=0)
    xa, xb = rng.standard_normal((2, 3, 3, 6, 6)).astype(np.float32)
    got = model.predict({"a": xa, "b": xb})
    want = model.forward([xa, xb])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[2], xa)  # an input returned as it came
    np.testing.assert_allclose(got[0].sum(axis=1), 1, rtol=1e-5)


def test_empty_batches_and_odd_batch_sizes(rng):
    model = small_model()
    assert model.predict(np.zeros((0, 2, 6, 6))).shape == (0, 3)
    x = rng.standard_normal((7, 2, 6, 6)).astype(np.float32)
    want = model.forward(x)
    for batch_size in (1, 3, 7, 100):
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size), want, rtol=1e-5, atol=1e-6)


def test_evaluate_runs_the_plan(rng):
    model = small_model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((9, 2, 6, 6)).astype(np.float32)
    y = np.arange(9) % 3
    logits = model.forward(x)
    loss = -np.mean(np.log(ref.softmax(logits)[np.arange(9), y]))
    got = model.evaluate(x, y, batch_size=4, return_dict=True)
    assert got["loss"] == pytest.approx(loss, rel=1e-5)


def test_non_finite_inputs_propagate_as_in_the_layers(rng, heuristic_algorithms):
    # Winograd layers take the implicit GEMM for inputs holding Inf or NaN, so that one of them
    # spreads to the outputs that read it and no further.
    model = pyconvx.Sequential([layers.Conv2D(40, 3, padding=1, name="a"), layers.Conv2D(40, 3, padding=1, name="b")],
                               input_shape=(40, 16, 16), seed=0)
    assert "[winograd]" in model.inference_plan(batch_size=2).describe()
    x = rng.standard_normal((2, 40, 16, 16)).astype(np.float32)
    x[0, 3, 5, 5] = np.nan
    x[1, 0, 0, 0] = np.inf
    got, want = model.predict(x), model.forward(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4)


def test_the_plan_reports_its_memory():
    plan = models.resnet18(num_classes=10, input_shape=(3, 32, 32), seed=0).inference_plan(batch_size=4)
    memory = plan.memory
    # The prepared weights hold at least the (folded) filters; the arena at least the largest
    # activation of the batch (64 maps of 16 x 16 after the stem).
    assert memory["weights"] >= 4 * 11_000_000
    assert memory["arena"] >= 4 * 4 * 64 * 16 * 16


def test_threads_may_predict_on_one_model_at_once(rng):
    model = models.resnet18(num_classes=10, input_shape=(3, 32, 32), seed=0)
    xs = [rng.standard_normal((3, 3, 32, 32)).astype(np.float32) for _ in range(4)]
    want = [model.forward(x) for x in xs]
    got, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(3):
                got[i] = model.predict(xs[i], batch_size=3)
        except Exception as error:  # reported below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * np.abs(w).max())


# ----- random graphs -------------------------------------------------------------------------


@st.composite
def graphs(draw):
    """A random graph over 6x6 (or 7x7) maps: convolutions with or without bias, grouped ones,
    batch normalisation, activations, additions and concatenations of earlier tensors, pools.
    Every layer keeps H and W, so shapes differ only in channels (tracked here: a symbolic
    tensor's shape is known once its model is built)."""
    size = draw(st.sampled_from([6, 7]))
    x = pyconvx.Input((draw(st.integers(1, 5)), size, size))
    tensors = [(x, x.shape[0])]
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["conv", "conv", "bn", "act", "add", "concat", "pool"]))
        t, channels = draw(st.sampled_from(tensors))
        if kind == "conv":
            k = draw(st.sampled_from([1, 3]))
            groups = draw(st.sampled_from([1, channels]))
            filters = groups * draw(st.integers(1, 3)) if groups > 1 else draw(st.integers(1, 9))
            t = layers.Conv2D(filters, k, padding=k // 2, groups=groups, use_bias=draw(st.booleans()),
                              activation=draw(st.sampled_from(["linear", "relu", "tanh", "sigmoid"])))(t)
            channels = filters
        elif kind == "bn":
            t = layers.BatchNormalization()(t)
        elif kind == "act":
            t = layers.Activation(draw(st.sampled_from(["relu", "relu6", "sigmoid", "tanh", "hardsigmoid"])))(t)
        elif kind == "add":
            same = [u for u, c in tensors if c == channels]
            t = layers.Add()([t, draw(st.sampled_from(same))]) if len(same) > 1 else t
        elif kind == "concat":
            others = draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=2))
            t = layers.Concatenate()([t] + [u for u, _ in others])
            channels += sum(c for _, c in others)
        else:
            t = layers.MaxPooling2D(3, strides=1, padding=1)(t)
        tensors.append((t, channels))
    candidates = [u for u, _ in tensors[1:]] or [x]
    outputs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique_by=id))
    return x, outputs


@given(graph=graphs(), seed=st.integers(0, 2**16), batch=st.integers(1, 3))
def test_random_graphs_predict_as_their_layers(graph, seed, batch):
    x, outputs = graph
    rng = np.random.default_rng(seed)
    model = pyconvx.Model(x, outputs if len(outputs) > 1 else outputs[0], seed=seed)
    randomise(model, rng)
    data = rng.standard_normal((batch + 2,) + tuple(x.shape)).astype(np.float32)
    assert_matches_forward(model, data, batch_size=batch)


# ----- the C++ API's checks, through the binding -----------------------------------------------


def test_the_network_names_the_layer_and_the_values_of_a_mistake():
    from pyconvx import _core

    net = _core.Network()
    x = net.input([3, 8, 8])
    w = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"Network: layer 1 \(conv2d\): .*2 input channels.*C=3"):
        net.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, "relu")
    with pytest.raises(ValueError, match=r"layer 1 \(dense\): expected a \(features,\) input, got shape \(3, 8, 8\)"):
        net.dense(x, np.ones((3, 2), np.float32), None, "none")
    y = net.conv2d(x, np.ones((4, 3, 3, 3), np.float32), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "none")
    with pytest.raises(ValueError, match=r"layer 2 \(add\): inputs must have one shape, got \(3, 8, 8\) and \(4, 8, 8\)"):
        net.add([x, y], "none")
    with pytest.raises(ValueError, match=r"layer 2 \(concat\): axis must be in \[0, 3\)"):
        net.concat([x, y], 3)
    with pytest.raises(ValueError, match=r"layer 2 \(max_pool2d\): .*kernel"):
        net.pool2d(x, "max", (9, 9), (1, 1), (0, 0, 0, 0), False, True)
    with pytest.raises(ValueError, match="input tensor 7 is not a layer of this network"):
        net.activation(7, "relu")
    with pytest.raises(ValueError, match="activation must be one of"):
        net.activation(x, "gelu")
    with pytest.raises(ValueError, match="no outputs"):
        _core.InferencePlan(net, 2)
    net.output(y)
    with pytest.raises(ValueError, match="max_batch must be >= 1, got max_batch=0"):
        _core.InferencePlan(net, 0)
    plan = _core.InferencePlan(net, 2)
    ok_in, ok_out = np.zeros((2, 3, 8, 8), np.float32), np.zeros((2, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"n must be in \[0, 2\].*got n=3"):
        plan.run([np.zeros((3, 3, 8, 8), np.float32)], [np.zeros((3, 4, 8, 8), np.float32)])
    with pytest.raises(ValueError, match=r"outputs\[0\] must be a C-contiguous float32 array of shape \(2, 4, 8, 8\)"):
        plan.run([ok_in], [np.zeros((2, 4, 8, 9), np.float32)])
    with pytest.raises(ValueError, match="expected 1 inputs and 1 outputs, got 2 and 1"):
        plan.run([ok_in, ok_in], [ok_out])
    plan.run([ok_in], [ok_out])


def test_profile_times_every_step_in_order(rng):
    model = models.resnet18(num_classes=10, input_shape=(3, 32, 32), seed=0)
    plan = model.inference_plan(batch_size=2)
    steps = plan.profile(rng.standard_normal((2, 3, 32, 32)).astype(np.float32), repeats=2)
    assert [step for step, _ in steps] == plan.describe().splitlines()
    assert all(ms >= 0 for _, ms in steps) and sum(ms for _, ms in steps) > 0


# Shapes the heuristic gives each algorithm (asserted from describe()), or that have one forced
# on them, to run every one with every activation, a residual added in place of the output, and a
# slice of a concatenation. name: (x shape, weight shape, parameters, the algorithm passed).
ALGORITHM_CASES = {
    "winograd": ((33, 13, 11), (40, 33, 3, 3), dict(padding=(1, 1, 1, 1)), "auto"),
    "broadcast": ((3, 19, 17), (40, 3, 5, 5), dict(stride=(2, 2), padding=(2, 2, 1, 1)), "auto"),
    "direct": ((6, 9, 8), (9, 6, 3, 3), dict(padding=(1, 1, 0, 0), dilation=(1, 2)), "auto"),
    "pointwise": ((20, 7, 9), (13, 20, 1, 1), dict(), "auto"),
    "implicit_gemm": ((20, 9, 11), (14, 20, 1, 1), dict(stride=(2, 2)), "auto"),
    "depthwise": ((12, 11, 19), (24, 1, 3, 3), dict(padding=(1, 1, 1, 1), groups=12), "auto"),
    "whole_image": ((16, 5, 5), (12, 16, 5, 5), dict(), "auto"),  # one GEMM over the batch
    # 1x1 unpadded: the image read in place and whole register tiles stored straight into the
    # output; filters and pixels that fill no whole tile (13 of 63, 24 of 720) go through the tile.
    "direct_1x1": ((20, 7, 9), (13, 20, 1, 1), dict(), "direct"),
    "direct_1x1_wide": ((16, 24, 30), (24, 16, 1, 1), dict(), "direct"),
    # Pixels as the GEMM's rows: three images of 28 pixels (no whole tile each), and a 1x1 layer
    # whose patches are the image's channels.
    "pixel_gemm": ((20, 7, 9), (13, 20, 3, 3), dict(stride=(1, 2), padding=(1, 1, 1, 0)), "pixel_gemm"),
    "pixel_gemm_1x1": ((20, 7, 9), (24, 20, 1, 1), dict(), "pixel_gemm"),
}


def conv_reference(x, w, b, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return ref.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("activation", sorted(ref.ACTIVATIONS))
@pytest.mark.parametrize("algorithm", list(ALGORITHM_CASES))
def test_every_algorithm_adds_residuals_writes_slices_and_activates(algorithm, activation, rng, heuristic_algorithms):
    from pyconvx import _core

    x_shape, w_shape, kw, forced = ALGORITHM_CASES[algorithm]
    params = dict(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1) | kw
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    x = rng.standard_normal((3,) + x_shape).astype(np.float32)
    want_conv = conv_reference(x, w, b, **params)
    r = rng.standard_normal(want_conv.shape).astype(np.float32)
    z = rng.standard_normal((3, 5) + want_conv.shape[2:]).astype(np.float32)

    net = _core.Network()
    xi, ri, zi = net.input(list(x_shape)), net.input(list(r.shape[1:])), net.input(list(z.shape[1:]))
    conv = lambda: net.conv2d(xi, w, b, params["stride"], params["padding"], params["dilation"],  # noqa: E731
                              params["groups"], "none", forced)
    net.output(net.activation(net.add([conv(), ri], "none"), activation))           # conv + residual, fused
    net.output(net.concat([zi, net.activation(conv(), activation)], 0))              # conv into its slice
    plan = _core.InferencePlan(net, 4)
    steps = plan.describe()
    expected = forced if forced != "auto" else "implicit_gemm" if algorithm == "whole_image" else algorithm
    assert steps.count(f"[{expected}]") == 2, steps
    assert "+add(1)" in steps and not any(s.startswith(("add", "activation")) for s in steps.splitlines())
    outputs = [np.full((3,) + tuple(shape), np.nan, np.float32) for shape in plan.output_shapes]
    plan.run([x, r, z], outputs)
    red = w_shape[1] * w_shape[2] * w_shape[3]
    ref.assert_close(outputs[0], ref.activation(activation, want_conv + r), red, f"{algorithm} {activation} residual")
    ref.assert_close(outputs[1][:, :5], z, 1, "the copied slice")
    ref.assert_close(outputs[1][:, 5:], ref.activation(activation, want_conv), red, f"{algorithm} {activation} slice")


def test_autotuned_plans_pick_an_algorithm_that_can_compute_each_layer(rng):
    before = pyconvx.get_autotune()
    try:
        pyconvx.set_autotune(True)
        tuned = models.resnet18(num_classes=10, input_shape=(3, 32, 32), seed=0)
        randomise(tuned, rng)
        steps = tuned.inference_plan(batch_size=2).describe().splitlines()
        assert all(s.split("[")[-1].rstrip("]") in pyconvx.CONV_ALGORITHMS for s in steps if s.startswith("conv"))
        x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
        assert_matches_forward(tuned, x, batch_size=2)
        pyconvx.set_autotune(False)
        assert not pyconvx.get_autotune()
        with pytest.raises(ValueError, match="on must be True or False"):
            pyconvx.set_autotune("yes")
    finally:
        pyconvx.set_autotune(before)


def test_the_environment_can_turn_autotuning_off():
    from conftest import run_child

    code = "import pyconvx; print(pyconvx.get_autotune())"
    import os
    for value, expected in (("0", "False"), ("off", "False"), ("1", "True")):
        proc = run_child(code, env=dict(os.environ, PYCONVX_AUTOTUNE=value))
        assert proc.returncode == 0 and proc.stdout.split()[-1] == expected, (value, proc.stderr)


def test_a_forced_algorithm_must_be_able_to_compute_the_layer(rng):
    from pyconvx import _core

    net = _core.Network()
    x = net.input([8, 6, 6])
    w = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm='winograd' cannot compute this convolution: winograd needs a 3x3 or 5x5 kernel"):
        net.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, "none", "winograd")
    with pytest.raises(ValueError, match="algorithm must be one of .*got algorithm='fastest'"):
        net.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, "none", "fastest")
    # Forced, it holds even when the plan autotunes.
    net.output(net.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, "none", "direct"))
    before = pyconvx.get_autotune()
    try:
        pyconvx.set_autotune(True)
        assert "[direct]" in _core.InferencePlan(net, 2).describe()
    finally:
        pyconvx.set_autotune(before)
