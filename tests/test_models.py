"""pyconvx.models: parameter counts equal torchvision's, outputs, names and training entry points."""
import numpy as np
import pytest

from pyconvx import models

# (model, kwargs, parameters without batch-norm statistics, with them): torchvision's counts
# for 1000 classes at 3x224x224; LeNet-5's from the 1998 paper's layer sizes.
COUNTS = [
    ("lenet5", {}, 61_706, 61_706),
    ("alexnet", {}, 61_100_840, 61_100_840),
    ("vgg16", {}, 138_357_544, 138_357_544),
    ("resnet18", {}, 11_689_512, 11_689_512 + 2 * 4_800),
    ("resnet34", {}, 21_797_672, 21_797_672 + 2 * 8_512),
    ("resnet50", {}, 25_557_032, 25_557_032 + 2 * 26_560),
    ("googlenet", {}, 6_624_904, 6_624_904 + 2 * 7_280),
    ("googlenet", dict(aux_logits=True), 13_004_888, 13_004_888 + 2 * 7_536),
    ("mobilenet_v2", {}, 3_504_872, 3_504_872 + 2 * 17_056),
]


@pytest.mark.parametrize("name, kwargs, params, with_state", COUNTS,
                         ids=["lenet5", "alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "googlenet",
                              "googlenet_aux", "mobilenet_v2"])
def test_parameter_counts_equal_torchvision(name, kwargs, params, with_state, full_size_model):
    model = full_size_model(name, **kwargs)
    assert model.count_params(include_state=False) == params
    assert model.count_params() == with_state
    lines = []
    model.summary(print_fn=lines.append)
    assert f"Total params: {with_state:,}" in lines[0]
    assert f"Non-trainable params: {with_state - params:,}" in lines[0]


def test_output_shapes_at_small_inputs(rng):
    cases = [(models.lenet5(num_classes=4), (1, 32, 32)),
             (models.resnet18(num_classes=5, input_shape=(3, 32, 32)), (3, 32, 32)),
             (models.resnet50(num_classes=5, input_shape=(1, 40, 24)), (1, 40, 24)),
             (models.googlenet(num_classes=5, input_shape=(3, 48, 48)), (3, 48, 48))]
    for model, shape in cases:
        out = model.predict(rng.standard_normal((2,) + shape))
        assert out.shape == (2, model.output_shape[0]) and np.isfinite(out).all()


def test_lenet5_layers_and_a_training_step(rng):
    model = models.lenet5(seed=0)
    assert [layer.name for layer in model.layers] == ["c1", "s2", "c3", "s4", "c5", "flatten", "f6", "output"]
    assert [layer.output_shape for layer in model.layers[:5]] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    x, y = rng.standard_normal((16, 1, 32, 32)), rng.integers(0, 10, 16)
    first = model.fit(x, y, batch_size=8, epochs=3, verbose=0, seed=0).history["loss"]
    assert first[-1] < first[0]
    again = models.lenet5(seed=0)
    for a, b in zip(again.get_weights(), models.lenet5(seed=0).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_googlenet_side_classifiers_train_as_extra_outputs(rng):
    model = models.googlenet(num_classes=3, aux_logits=True, input_shape=(3, 32, 32), seed=0)
    assert model.output_names == ["fc", "aux1.fc2", "aux2.fc2"]
    model.compile("sgd", "sparse_categorical_crossentropy", loss_weights=[1.0, 0.3, 0.3])
    x, y = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 3, 4)
    history = model.fit(x, [y, y, y], batch_size=4, verbose=0)
    assert set(history.history) == {"loss", "fc_loss", "aux1.fc2_loss", "aux2.fc2_loss"}
    logits, aux1, aux2 = model.predict(x)
    assert logits.shape == aux1.shape == aux2.shape == (4, 3)


def test_freeze_a_pretrained_backbone_and_train_the_head(rng):
    model = models.resnet18(num_classes=2, input_shape=(3, 32, 32), seed=0)
    model.freeze(up_to="avgpool")
    assert [layer.name for layer in model.layers if layer.trainable] == ["fc"]
    assert model.layers[-1].input_grad_needed is False  # nothing before the head needs a gradient
    lines = []
    model.summary(print_fn=lines.append)
    assert f"Trainable params: {512 * 2 + 2:,}" in lines[0]
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 2, 4), batch_size=4, verbose=0)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before[:-2], after[:-2]))
    assert not np.array_equal(before[-2], after[-2])


@pytest.mark.parametrize("build, kwargs, match", [
    (models.resnet18, dict(num_classes=0), "resnet18: num_classes must be >= 1"),
    (models.vgg16, dict(input_shape=(3, 32)), r"vgg16: input_shape must be \(C, H, W\)"),
    (models.alexnet, dict(input_shape=(3, 32, 32)), r"'features.12' \(MaxPooling2D\): window span 3 is larger"),
])
def test_bad_arguments_name_the_model_or_layer(build, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
