"""pyconvx.transfer: new heads, cutting a model in two, cached features and pretrained weights."""
import os

import numpy as np
import pytest

import pyconvx
from pyconvx import layers, models, optimizers, transfer


def small_net(seed=0):
    return pyconvx.Sequential([
        layers.Conv2D(4, 3, activation="relu", name="conv"), layers.Flatten(name="flatten"),
        layers.Dense(8, activation="tanh", name="hidden"), layers.Dense(3, name="logits"),
    ], input_shape=(1, 6, 6), seed=seed)


def two_branch_net():
    x = pyconvx.Input((5,))
    left = layers.Dense(4, name="left")(x)
    right = layers.Dense(4, name="right")(x)
    joined = layers.Concatenate(name="join")([left, right])
    return pyconvx.Model(x, layers.Dense(2, name="head")(layers.Dense(6, name="mix")(joined)), seed=0)


# ----- replace_head -----

def test_replace_head_keeps_the_trunk_and_gives_a_fresh_head_of_the_new_width(rng):
    model = small_net()
    model.freeze(up_to="hidden")
    new = transfer.replace_head(model, 7, seed=1)
    assert isinstance(new, pyconvx.Sequential) and new.output_shape == (7,)
    assert all(a is b for a, b in zip(new.layers[:-1], model.layers[:-1]))
    head = new.layers[-1]
    assert head is not model.layers[-1] and head.name == "logits" and head.params["kernel"].shape == (8, 7)
    assert [layer.trainable for layer in new.layers] == [False, False, False, True]
    x = rng.standard_normal((4, 1, 6, 6))
    hidden = transfer.split(model, "hidden")[0].predict(x)
    np.testing.assert_allclose(new.predict(x), hidden @ head.params["kernel"] + head.params["bias"], rtol=1e-5,
                               atol=1e-6)


def test_replace_head_on_a_graph_model():
    new = transfer.replace_head(two_branch_net(), 4)
    assert isinstance(new, pyconvx.Model) and new.output_shape == (4,)
    assert [layer.name for layer in new.layers] == ["left", "right", "join", "mix", "head"]
    assert new.predict(np.ones((2, 5))).shape == (2, 4)


def test_replace_head_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got num_classes=0"):
        transfer.replace_head(small_net(), 0)
    model = pyconvx.Sequential([layers.Dense(3), layers.Activation("softmax", name="probs")], input_shape=(2,))
    with pytest.raises(TypeError, match="the last layer 'probs' is a Activation, not a Dense"):
        transfer.replace_head(model, 2)
    with pytest.raises(TypeError, match="model must be a pyconvx Model"):
        transfer.replace_head("lenet5", 2)


# ----- split -----

@pytest.mark.parametrize("build, at, shape", [(small_net, "flatten", (64,)), (two_branch_net, "join", (8,))])
def test_split_trunk_then_head_is_the_model(build, at, shape, rng):
    model = build()
    trunk, head = transfer.split(model, at)
    assert trunk.output_shape == head.input_shape == shape
    x = rng.standard_normal((5,) + tuple(model.input_shape))
    np.testing.assert_allclose(head.predict(trunk.predict(x)), model.predict(x), rtol=1e-5, atol=1e-6)
    assert trunk.layers[-1] is model.get_layer(at) and head.layers[-1] is model.layers[-1]


def test_split_refuses_a_cut_that_a_connection_jumps_over():
    x = pyconvx.Input((4,))
    a = layers.Dense(4, name="a")(x)
    b = layers.Dense(4, name="b")(a)
    model = pyconvx.Model(x, layers.Dense(2, name="out")(layers.Add(name="skip")([a, b])))
    with pytest.raises(ValueError, match="layer 'skip' takes input 'a', which comes before the cut at 'b'"):
        transfer.split(model, "b")
    with pytest.raises(ValueError, match="is the model's last layer"):
        transfer.split(model, "out")
    assert transfer.split(model, "skip")[1].output_shape == (2,)


# ----- cached features -----

def test_extract_features_writes_a_memory_mappable_npy_equal_to_the_trunk(tmp_path, rng):
    model = small_net()
    x = rng.standard_normal((11, 1, 6, 6)).astype(np.float32)
    path = tmp_path / "features.npy"
    features = transfer.extract_features(model, x, "hidden", path, batch_size=4)
    assert isinstance(features, np.memmap) and features.shape == (11, 8) and not features.flags.writeable
    reread = np.load(path, mmap_mode="r")
    np.testing.assert_allclose(reread, transfer.split(model, "hidden")[0].predict(x), rtol=1e-6)
    assert os.listdir(tmp_path) == ["features.npy"]
    np.testing.assert_array_equal(transfer.load_features(str(path)), reread)


class FailingSource:
    """An array-like whose second batch cannot be read (a disk error half-way)."""

    def __init__(self, x):
        self.x, self.shape, self.reads = x, x.shape, 0

    def __getitem__(self, index):
        self.reads += 1
        if self.reads > 1:
            raise OSError("read error")
        return self.x[index]


def test_a_failed_extraction_leaves_the_old_file_and_no_temporary(tmp_path, rng):
    path = tmp_path / "features.npy"
    np.save(path, np.arange(3.0))
    with pytest.raises(OSError, match="read error"):
        transfer.extract_features(small_net(), FailingSource(rng.standard_normal((8, 1, 6, 6))), "hidden", path,
                                  batch_size=4)
    assert os.listdir(tmp_path) == ["features.npy"]
    np.testing.assert_array_equal(np.load(path), np.arange(3.0))


def test_feature_errors_name_the_argument(tmp_path):
    model = small_net()
    with pytest.raises(ValueError, match=r"stored as \.npy .* got path='.*f\.npz'"):
        transfer.extract_features(model, np.ones((2, 1, 6, 6)), "hidden", tmp_path / "f.npz")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got batch_size=0"):
        transfer.extract_features(model, np.ones((2, 1, 6, 6)), "hidden", tmp_path / "f.npy", batch_size=0)
    with pytest.raises(ValueError, match="no layer named 'fc7'"):
        transfer.extract_features(model, np.ones((2, 1, 6, 6)), "fc7", tmp_path / "f.npy")
    with pytest.raises(TypeError, match="model must be a pyconvx Model or Sequential, got str"):
        transfer.extract_features("lenet5", np.ones((2, 1, 6, 6)), "hidden", tmp_path / "f.npy")
    a, b = pyconvx.Input((2,)), pyconvx.Input((3,))
    two_inputs = pyconvx.Model([a, b], layers.Dense(2, name="out")(layers.Concatenate(name="join")([a, b])))
    with pytest.raises(ValueError, match="has 2 inputs; it works on models with one"):
        transfer.extract_features(two_inputs, [np.ones((2, 2)), np.ones((2, 3))], "join", tmp_path / "f.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        transfer.load_features(tmp_path / "missing.npy")
    truncated = tmp_path / "cut.npy"
    transfer.extract_features(model, np.ones((100, 1, 6, 6)), "hidden", truncated)
    with open(truncated, "r+b") as stream:
        stream.truncate(500)
    with pytest.raises(ValueError, match=r"cut\.npy' is truncated: 500 bytes, but .* float32 array of shape \(100, 8\)"):
        transfer.load_features(truncated)


def test_training_the_split_head_on_cached_features_trains_the_models_own_head(tmp_path, rng):
    model = small_net()
    x, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 3, 24)
    trunk_before = [array.copy() for array in model.get_weights()[:2]]
    features = transfer.extract_features(model, x, "flatten", tmp_path / "f.npy")
    _, head = transfer.split(model, "flatten")
    head.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(features, y, batch_size=8, epochs=30, verbose=0, seed=0)
    assert head.evaluate(features, y)[1] >= 0.9  # 24 random points: memorised by the head
    np.testing.assert_allclose(model.predict(x), head.predict(features), rtol=1e-5, atol=1e-6)
    for before, after in zip(trunk_before, model.get_weights()[:2]):
        np.testing.assert_array_equal(before, after)


# ----- pretrained weights -----

def test_load_pretrained_from_a_weights_file_skips_the_head(tmp_path):
    source = small_net(seed=1)
    path = tmp_path / "pretrained.npz"
    source.save_weights(path)
    target = transfer.replace_head(small_net(seed=2), 5)
    fresh_head = target.layers[-1].params["kernel"].copy()
    with pytest.raises(ValueError, match=r"weight 'logits/kernel' has shape \(8, 3\) in the file but \(8, 5\)"):
        transfer.load_pretrained(target, path)
    transfer.load_pretrained(target, path, skip="logits")
    for name in ("conv", "hidden"):
        np.testing.assert_array_equal(target.get_layer(name).params["kernel"], source.get_layer(name).params["kernel"])
    np.testing.assert_array_equal(target.layers[-1].params["kernel"], fresh_head)


def test_load_pretrained_from_a_torch_style_state_dict_in_an_npz(tmp_path, rng):
    source = small_net(seed=1)
    state = {"conv.weight": source.get_layer("conv").params["kernel"], "conv.bias": source.get_layer("conv").params["bias"],
             "hidden.weight": source.get_layer("hidden").params["kernel"].T.copy(),
             "hidden.bias": source.get_layer("hidden").params["bias"], "logits.weight": np.zeros((9, 8)),
             "logits.bias": np.zeros(9)}
    path = tmp_path / "state.npz"
    np.savez(path, **state)
    target = small_net(seed=2)
    transfer.load_pretrained(target, path, skip=-1)
    x = rng.standard_normal((3, 1, 6, 6))
    np.testing.assert_allclose(transfer.split(target, "hidden")[0].predict(x),
                               transfer.split(source, "hidden")[0].predict(x), rtol=1e-6)
    del state["hidden.bias"]
    before = target.get_weights()
    with pytest.raises(ValueError, match="the state dict has no 'hidden.bias'"):
        transfer.load_pretrained(target, state, skip=["logits"])
    assert all(np.array_equal(a, b) for a, b in zip(before, target.get_weights()))  # nothing written
    with pytest.raises(TypeError, match="source must be a weights file path or a state dict"):
        transfer.load_pretrained(target, 3)


def test_from_pretrained_gives_the_four_modes(tmp_path):
    path = tmp_path / "lenet5_digits04.npz"
    pretrained = models.lenet5(num_classes=5, seed=0)
    pretrained.save_weights(path)
    trainable = {}
    for mode, freeze_up_to in [("head", "f6"), ("more data", "s4"), ("everything", None)]:
        model = transfer.from_pretrained(models.lenet5, path, num_classes=3, freeze_up_to=freeze_up_to, seed=1)
        trainable[mode] = [layer.name for layer in model.layers if layer.trainable]
        np.testing.assert_array_equal(model.get_layer("c3").params["kernel"],
                                      pretrained.get_layer("c3").params["kernel"])
        assert model.output_shape == (3,)
    assert trainable == {"head": ["output"], "more data": ["c5", "flatten", "f6", "output"],
                         "everything": ["c1", "s2", "c3", "s4", "c5", "flatten", "f6", "output"]}


def test_from_pretrained_reads_a_torch_lenet5(tmp_path, rng):
    torch = pytest.importorskip("torch")
    from pyconvx import torch_models

    torch.manual_seed(0)
    net = torch_models.lenet5(num_classes=10).eval()
    path = tmp_path / "torch_lenet5.npz"
    np.savez(path, **{key: value.numpy() for key, value in net.state_dict().items()})
    model = transfer.from_pretrained(models.lenet5, path, num_classes=4, freeze_up_to="f6")
    x = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = net[:-1](torch.from_numpy(x)).numpy()  # everything up to the old head
    np.testing.assert_allclose(transfer.split(model, "f6")[0].predict(x), expected, rtol=1e-4, atol=1e-5)


# ----- shrink_perturb -----

def test_shrink_perturb_mixes_every_weight_but_the_skipped_layers(rng):
    pretrained, fresh = small_net(seed=0), small_net(seed=1)
    before = {layer.name: {key: value.copy() for key, value in layer.params.items()} for layer in pretrained.layers}
    assert transfer.shrink_perturb(pretrained, fresh, shrink=0.25, skip=["logits"]) is pretrained
    for layer in pretrained.layers:
        for key, value in layer.params.items():
            old, new = before[layer.name][key], fresh.get_layer(layer.name).params[key]
            expected = old if layer.name == "logits" else 0.25 * old + 0.75 * new
            np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7, err_msg=f"{layer.name}.{key}")
    assert not np.allclose(pretrained.get_layer("conv").params["kernel"], before["conv"]["kernel"])
    # the ends: shrink=1 keeps the model's weights, shrink=0 gives the fresh network's
    kept, fresh = small_net(seed=0), small_net(seed=1)
    transfer.shrink_perturb(kept, fresh, shrink=1)
    assert all(np.array_equal(a, b) for a, b in zip(kept.get_weights(), small_net(seed=0).get_weights()))
    restarted = transfer.shrink_perturb(small_net(seed=0), fresh, shrink=0.0)
    x = rng.standard_normal((3, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(restarted.predict(x), fresh.predict(x), rtol=1e-5, atol=1e-6)


def test_shrink_perturb_refuses_another_architecture_before_writing_anything():
    model = models.lenet5(num_classes=5, seed=0)
    before = [value.copy() for value in model.get_weights()]
    with pytest.raises(ValueError, match="weight output.kernel is \\(84, 5\\) in model but \\(84, 3\\) in fresh"):
        transfer.shrink_perturb(model, models.lenet5(num_classes=3, seed=1))
    with pytest.raises(ValueError, match="same architecture"):
        transfer.shrink_perturb(model, small_net())
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # with the head skipped, only the trunk has to match
    transfer.shrink_perturb(model, models.lenet5(num_classes=3, seed=1), skip="output")
    np.testing.assert_array_equal(model.get_layer("output").params["kernel"], before[-2])
    for shrink in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="shrink must be a number in \\[0, 1\\]"):
            transfer.shrink_perturb(model, models.lenet5(num_classes=5), shrink=shrink)
    with pytest.raises(TypeError, match="fresh must be a pyconvx Model"):
        transfer.shrink_perturb(model, "lenet5")
