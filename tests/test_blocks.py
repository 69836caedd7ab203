"""ResidualBlock and InceptionModule: shapes, sub-layer names and weight keys, the projection
shortcut, trainable flags, weights in models and files, and equality with torch modules."""
import numpy as np
import pytest

import pyconvx
from pyconvx import layers


def test_residual_block_shapes_and_projection():
    basic = layers.ResidualBlock(4)
    assert basic.build((4, 6, 6)) == (4, 6, 6)
    assert [layer.name for layer in basic.sublayers if layer.params] == ["conv1", "bn1", "conv2", "bn2"]
    strided = layers.ResidualBlock(8, strides=2)
    assert strided.build((4, 7, 7)) == (8, 4, 4)
    assert "downsample.0/kernel" in strided.params and strided.params["downsample.0/kernel"].shape == (8, 4, 1, 1)
    wider = layers.ResidualBlock(8)
    wider.build((4, 5, 5))
    assert "downsample.1/moving_variance" in wider.state
    bottleneck = layers.ResidualBlock(4, bottleneck=True)
    assert bottleneck.build((16, 5, 5)) == (16, 5, 5)
    assert not any(key.startswith("downsample") for key in bottleneck.params)
    assert bottleneck.params["conv2/kernel"].shape == (4, 4, 3, 3)
    assert bottleneck.count_params() == (16 * 4 + 4 * 4 * 9 + 4 * 16) + 4 * (4 + 4 + 16)


def test_identity_block_adds_its_input(rng):
    block = layers.ResidualBlock(3)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    block.build(x.shape[1:], rng)
    for key in ("bn2/gamma", "bn2/beta"):
        block.params[key][:] = 0  # F(x) = 0: the block is relu(x)
    np.testing.assert_allclose(block.forward(x, training=True), np.maximum(x, 0), atol=1e-6)


def test_inception_module_channels_and_names():
    module = layers.InceptionModule(64, 96, 128, 16, 32, 32)
    assert module.build((192, 28, 28)) == (256, 28, 28)
    assert module.count_params() == (192 * 64 + 64) + (192 * 96 + 96 + 96 * 128 * 9 + 128) + \
        (192 * 16 + 16 + 16 * 32 * 25 + 32) + (192 * 32 + 32)
    assert [layer.name for layer in module.sublayers if layer.params] == [
        "branch1", "branch2.0", "branch2.1", "branch3.0", "branch3.1", "branch4.1"]
    normalised = layers.InceptionModule(4, 2, 4, 2, 4, 4, batch_norm=True, c5_kernel_size=3)
    normalised.build((8, 5, 5))
    assert normalised.params["branch3.1.conv/kernel"].shape == (4, 2, 3, 3)
    assert normalised.sublayers[1].epsilon == 1e-3 and "branch1.conv/bias" not in normalised.params
    with pytest.raises(ValueError, match="c5_kernel_size must be odd"):
        layers.InceptionModule(1, 1, 1, 1, 1, 1, c5_kernel_size=4)


def test_block_weights_reach_optimizers_and_files(tmp_path, rng):
    def net(seed):
        image = pyconvx.Input((3, 6, 6))
        h = layers.ResidualBlock(4, strides=2, name="res")(image)
        h = layers.InceptionModule(2, 2, 2, 1, 2, 2, name="incep")(h)
        return pyconvx.Model(image, layers.Dense(2)(layers.GlobalAveragePooling2D()(h)), seed=seed)

    model = net(0)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = rng.standard_normal((8, 3, 6, 6)), rng.integers(0, 2, 8)
    before = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    assert all(changed[:len(before) - 2])  # every block weight moved, running statistics included
    keys = [key for key, _ in model._weight_entries()]
    assert len(keys) == len(set(keys)) and "res/downsample.1/moving_mean" in keys and "incep/branch4.1/kernel" in keys
    model.save_weights(tmp_path / "w.npz")
    other = net(1)
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_a_sub_layer_error_names_the_block():
    class Wide(layers.Block):
        def _wire(self, x, input_shape):
            return layers.Conv2D(2, 5, name="wide")(x)

    with pytest.raises(ValueError, match=r"layer 'block' \(Wide\): input shape \(None, 2, 3, 3\): layer "
                                         r"'wide' \(Conv2D\): window span 5 is larger"):
        Wide(name="block").build((2, 3, 3))
    with pytest.raises(ValueError, match=r"'incep' \(InceptionModule\): expected \(N, C, H, W\) input"):
        layers.InceptionModule(1, 1, 1, 1, 1, 1, name="incep").build((4,))


def test_freezing_a_block_freezes_its_sub_layers(rng):
    block = layers.ResidualBlock(2, trainable=False)
    block.build((2, 3, 3))
    assert not any(layer.trainable for layer in block.sublayers) and block.count_trainable_params() == 0
    block.trainable = True
    assert all(layer.trainable for layer in block.sublayers)


# ----- against torch -----

torch = pytest.importorskip("torch")


@pytest.mark.usefixtures("single_threaded_torch")
def test_residual_blocks_match_torch(rng):
    nn = torch.nn
    for bottleneck, in_channels, strides in [(False, 4, 2), (True, 8, 1), (True, 16, 1)]:
        block = layers.ResidualBlock(4, strides=strides, bottleneck=bottleneck)
        block.build((in_channels, 6, 6), rng)
        for key in block.state:
            block.state[key][:] = rng.uniform(0.5, 1.5, block.state[key].shape)
        out = 16 if bottleneck else 4
        if bottleneck:
            convs = [nn.Conv2d(in_channels, 4, 1, bias=False), nn.Conv2d(4, 4, 3, strides, 1, bias=False),
                     nn.Conv2d(4, 16, 1, bias=False)]
        else:
            convs = [nn.Conv2d(in_channels, 4, 3, strides, 1, bias=False), nn.Conv2d(4, 4, 3, 1, 1, bias=False)]
        modules = {f"conv{i + 1}": conv for i, conv in enumerate(convs)}
        modules.update({f"bn{i + 1}": nn.BatchNorm2d(conv.out_channels) for i, conv in enumerate(convs)})
        if strides != 1 or in_channels != out:
            modules["downsample"] = nn.Sequential(nn.Conv2d(in_channels, out, 1, strides, bias=False),
                                                  nn.BatchNorm2d(out))
        module = nn.ModuleDict(modules).eval()
        model = pyconvx.Sequential([block], input_shape=(in_channels, 6, 6))
        block.name = "block"
        state = {key.replace("block.", "", 1): value for key, value in _fake_torch_dict(model, rng).items()}
        module.load_state_dict({key: torch.tensor(value) for key, value in state.items()}, strict=False)
        x = rng.standard_normal((2, in_channels, 6, 6)).astype(np.float32)
        with torch.no_grad():
            t = torch.tensor(x)
            h = t
            for i in range(len(convs)):
                h = module[f"bn{i + 1}"](module[f"conv{i + 1}"](h))
                h = torch.relu(h) if i < len(convs) - 1 else h
            want = torch.relu(h + (module["downsample"](t) if "downsample" in module else t)).numpy()
        model.load_torch_state_dict({f"block.{key}": value for key, value in state.items()})
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-4)


def _fake_torch_dict(model, rng):
    """Random arrays under the torch keys the model expects (running variances positive)."""
    from pyconvx.torch_weights import torch_entries

    result = {}
    for key, target, transposed, _ in torch_entries(model.layers):
        shape = target.T.shape if transposed else target.shape
        value = rng.standard_normal(shape).astype(np.float32)
        result[key] = np.abs(value) + 0.5 if key.endswith("running_var") else value
    return result
