"""pyconvx.models against torch modules with torchvision's architectures and state-dict keys
(pyconvx.torch_models): the same random weights, copied through a state dict, give the
same logits in eval mode; and load_torch_state_dict's errors."""
import numpy as np
import pytest

import pyconvx
from pyconvx import layers, models
from pyconvx.models.vgg import VGG16, build_vgg
from pyconvx.torch_weights import torch_entries

torch = pytest.importorskip("torch")
from pyconvx import torch_models as reference  # noqa: E402  (needs torch)


pytestmark = pytest.mark.usefixtures("single_threaded_torch")


def random_state_dict(model, rng):
    """Random weights under the torch keys the model expects, scaled so that activations keep
    their size through depth: He-scaled kernels, batch-norm statistics near (0, 1)."""
    state = {}
    for key, target, transposed, ours in torch_entries(model.layers):
        shape = target.T.shape if transposed else target.shape
        kind = ours.rsplit("/", 1)[1]
        if kind == "kernel":
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt((1.0 if transposed else 2.0)
                                                                                      / fan_in))
        elif kind in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * 0.1
        state[key] = value.astype(np.float32)
    return state


def torch_module(make, state):
    """The reference module with `state` loaded, in eval mode, without spending time on torch's
    own initialisation (built on the meta device, then given real storage)."""
    with torch.device("meta"):
        module = make()
    module = module.to_empty(device="cpu")
    module.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=True)
    return module.eval()


def assert_same_logits(model, make, shape, rng, batch=2):
    state = random_state_dict(model, rng)
    module = torch_module(make, state)
    model.load_torch_state_dict({key: torch.from_numpy(value) for key, value in state.items()})
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    ours = model.predict(x)
    with torch.no_grad():
        theirs = module(torch.from_numpy(x))
    ours = ours if isinstance(ours, list) else [ours]
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert len(ours) == len(theirs)
    for got, want in zip(ours, theirs):
        want = want.numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


@pytest.mark.parametrize("build, make, shape", [
    (lambda: models.lenet5(num_classes=10), lambda: reference.lenet5(10), (1, 32, 32)),
    (lambda: models.alexnet(num_classes=10, input_shape=(3, 64, 64)), lambda: reference.AlexNet(10),
     (3, 64, 64)),
    (lambda: build_vgg((8, "M", 16, 16, "M", 32, "M"), 10, (3, 24, 24), 0.5, 0, "vgg", hidden=64),
     lambda: reference.VGG((8, "M", 16, 16, "M", 32, "M"), 10, hidden=64), (3, 24, 24)),
    (lambda: models.resnet18(num_classes=10, input_shape=(3, 64, 64)),
     lambda: reference.ResNet(reference.BasicBlock, (2, 2, 2, 2), 10), (3, 64, 64)),
    (lambda: models.resnet50(num_classes=10, input_shape=(3, 64, 64)),
     lambda: reference.ResNet(reference.Bottleneck, (3, 4, 6, 3), 10), (3, 64, 64)),
    (lambda: models.googlenet(num_classes=10, aux_logits=True, input_shape=(3, 64, 64)),
     lambda: reference.GoogLeNet(10, aux_logits=True), (3, 64, 64)),
    (lambda: models.mobilenet_v2(num_classes=10, input_shape=(3, 64, 64)), lambda: reference.MobileNetV2(10),
     (3, 64, 64)),
], ids=["lenet5", "alexnet", "vgg_narrow", "resnet18", "resnet50", "googlenet_aux", "mobilenet_v2"])
def test_logits_match_torch(build, make, shape, rng):
    assert_same_logits(build(), make, shape, rng)


def test_googlenet_at_an_odd_size_where_ceil_mode_matters(rng):
    assert_same_logits(models.googlenet(num_classes=4, input_shape=(3, 45, 51)), lambda: reference.GoogLeNet(4),
                       (3, 45, 51), rng, batch=1)


@pytest.mark.parametrize("name, make", [
    ("vgg16", lambda: reference.VGG(VGG16)),
    ("resnet34", lambda: reference.ResNet(reference.BasicBlock, (3, 4, 6, 3))),
    ("googlenet", lambda: reference.GoogLeNet()),
], ids=["vgg16", "resnet34", "googlenet"])
def test_full_size_state_dict_keys_and_shapes_match(name, make, full_size_model):
    """At 1000 classes and 224x224, every key and shape of the torch module's state dict has its
    pyconvx weight (zero-stride arrays: nothing is allocated on either side)."""
    with torch.device("meta"):
        module = make()
    model = full_size_model(name)
    params = sum(p.numel() for p in module.parameters())
    assert params == model.count_params(include_state=False)
    state = {key: np.broadcast_to(np.float32(0), tuple(value.shape)) for key, value in module.state_dict().items()}
    model.load_torch_state_dict(state)
    assert not model.layers[0].params["kernel"].any()


def test_load_errors_name_the_first_problem_and_write_nothing(rng):
    model = models.lenet5()
    state = random_state_dict(model, rng)
    before = model.get_weights()
    missing = dict(state)
    del missing["c3.bias"]
    with pytest.raises(ValueError, match=r"no 'c3.bias' \(for weight 'c3/bias' of shape \(16,\)\)"):
        model.load_torch_state_dict(missing)
    wrong = dict(state, **{"f6.weight": np.zeros((120, 84), np.float32)})
    with pytest.raises(ValueError, match=r"'f6.weight' has shape \(120, 84\) in the state dict, but weight 'f6/kernel' "
                                         r"needs \(84, 120\) \(torch's \(out, in\) of the \(in, out\) kernel"):
        model.load_torch_state_dict(wrong)
    extra = dict(state, **{"c7.weight": np.zeros(3), "bn.num_batches_tracked": np.array(3)})
    with pytest.raises(ValueError, match="'c7.weight', which matches no weight"):
        model.load_torch_state_dict(extra)
    with pytest.raises(TypeError, match="expects a mapping"):
        model.load_torch_state_dict([1, 2])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.load_torch_state_dict(dict(state, **{"c1.num_batches_tracked": torch.tensor(5)}))
    np.testing.assert_array_equal(model.get_layer("f6").params["kernel"], state["f6.weight"].T)


def test_non_strict_loading_skips_a_new_head(rng):
    source = models.resnet18(num_classes=1000, input_shape=(3, 32, 32))
    state = random_state_dict(source, rng)
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    state["extra.weight"] = np.zeros(3, np.float32)
    model = models.resnet18(num_classes=5, input_shape=(3, 32, 32))
    head = model.get_layer("fc").get_weights()
    assert model.load_torch_state_dict(state, strict=False) == (["fc.weight", "fc.bias"], ["extra.weight"])
    np.testing.assert_array_equal(model.get_layer("layer1.0").params["conv1/kernel"], state["layer1.0.conv1.weight"])
    for a, b in zip(head, model.get_layer("fc").get_weights()):
        np.testing.assert_array_equal(a, b)
    state["conv1.weight"] = np.zeros((64, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"'conv1.weight' has shape \(64, 3, 3, 3\)"):
        model.load_torch_state_dict(state, strict=False)


def test_a_layer_without_torch_equivalent_is_named():
    model = pyconvx.Sequential([layers.LocalResponseNormalization(), layers.Flatten(), layers.Dense(2)],
                               input_shape=(2, 2, 2))
    model.load_torch_state_dict({"dense.weight": np.zeros((2, 8)), "dense.bias": np.zeros(2)})

    class Scale(layers.Layer):
        def _build(self, input_shape, rng):
            self.params["factor"] = np.ones(1, np.float32)
            return input_shape

    with pytest.raises(ValueError, match=r"layer 'scale' \(Scale\) has weights but no torch equivalent"):
        pyconvx.Sequential([Scale()], input_shape=(3,)).load_torch_state_dict({})
