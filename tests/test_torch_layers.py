"""Layers against torch.nn modules with the same weights: outputs, input and parameter gradients."""
import numpy as np
import pytest

from pyconvx import layers

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("single_threaded_torch")


def run_both(layer, module, x, rng, training=True, param_map=None):
    """Forward and backward through both with one upstream gradient; compares everything."""
    y = layer.forward(x.astype(np.float32), training)
    g = rng.standard_normal(y.shape).astype(np.float32)
    grad_x = layer.backward(g)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    module.train(training)
    yt = module(xt)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    scale = max(1.0, float(yt.detach().abs().max()))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-4 * scale, err_msg="output")
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=1e-4, atol=1e-4 * scale, err_msg="grad x")
    for ours, (theirs, transform) in (param_map or {}).items():
        want = transform(theirs.grad.numpy())
        np.testing.assert_allclose(layer.grads[ours], want, rtol=1e-4, atol=1e-4 * max(1, np.abs(want).max()),
                                   err_msg=f"grad {ours}")


def as_param(array):
    return torch.nn.Parameter(torch.tensor(np.asarray(array), dtype=torch.float64))


IDENTITY = (lambda a: a)


# torch_pad: ZeroPad2d's (left, right, top, bottom), Keras' split of "same" written out by hand.
@pytest.mark.parametrize("kwargs, shape, torch_pad", [
    (dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu"), (2, 3, 8, 7), (1, 1, 0, 1)),
    (dict(filters=6, kernel_size=3, padding=1, groups=3, dilation_rate=2), (1, 3, 7, 7), (1, 1, 1, 1)),
    (dict(filters=3, kernel_size=(2, 4), padding="same", activation="sigmoid"), (2, 2, 5, 6), (1, 2, 0, 1)),
], ids=["same_stride2_relu", "groups_dilation", "same_even_sigmoid"])
def test_conv2d_matches_torch(kwargs, shape, torch_pad, rng):
    layer = layers.Conv2D(bias_initializer="he_normal", **kwargs)
    layer.build(shape[1:], rng)
    conv = torch.nn.Conv2d(shape[1], kwargs["filters"], kwargs["kernel_size"], stride=kwargs.get("strides", 1),
                           dilation=kwargs.get("dilation_rate", 1), groups=kwargs.get("groups", 1)).double()
    conv.weight, conv.bias = as_param(layer.params["kernel"]), as_param(layer.params["bias"])
    activation = {"relu": torch.nn.ReLU(), "sigmoid": torch.nn.Sigmoid()}.get(kwargs.get("activation"),
                                                                              torch.nn.Identity())
    module = torch.nn.Sequential(torch.nn.ZeroPad2d(torch_pad), conv, activation)
    run_both(layer, module, rng.standard_normal(shape), rng,
             param_map={"kernel": (conv.weight, IDENTITY), "bias": (conv.bias, IDENTITY)})


def test_dense_matches_linear(rng):
    layer = layers.Dense(4, activation="tanh", bias_initializer="he_normal")
    layer.build((6,), rng)
    linear = torch.nn.Linear(6, 4).double()
    linear.weight, linear.bias = as_param(layer.params["kernel"].T), as_param(layer.params["bias"])
    run_both(layer, torch.nn.Sequential(linear, torch.nn.Tanh()), rng.standard_normal((5, 6)), rng,
             param_map={"kernel": (linear.weight, lambda a: a.T), "bias": (linear.bias, IDENTITY)})


@pytest.mark.parametrize("shape", [(8, 3, 4, 5), (16, 5)], ids=["nchw", "features"])
def test_batch_normalization_matches_torch(shape, rng):
    layer = layers.BatchNormalization(momentum=0.8, epsilon=1e-3)
    module = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        shape[1], eps=1e-3, momentum=0.2).double()
    layer.build(shape[1:])
    gamma, beta = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    layer.params["gamma"][:], layer.params["beta"][:] = gamma, beta
    module.weight, module.bias = as_param(layer.params["gamma"]), as_param(layer.params["beta"])
    for _ in range(3):  # the running statistics follow torch's over several batches
        run_both(layer, module, rng.normal(2.0, 3.0, shape), rng,
                 param_map={"gamma": (module.weight, IDENTITY), "beta": (module.bias, IDENTITY)})
        module.weight.grad = module.bias.grad = None
    np.testing.assert_allclose(layer.state["moving_mean"], module.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], module.running_var.numpy(), rtol=1e-5)
    run_both(layer, module, rng.normal(2.0, 3.0, shape), rng, training=False)


def test_local_response_normalization_matches_torch(rng):
    layer = layers.LocalResponseNormalization(size=5, alpha=1e-2, beta=0.75, k=2.0)
    module = torch.nn.LocalResponseNorm(5, alpha=1e-2 * 5, beta=0.75, k=2.0)  # torch divides alpha by size
    run_both(layer, module, rng.standard_normal((2, 8, 3, 3)) * 3, rng)


@pytest.mark.parametrize("name, module", [("softmax", torch.nn.Softmax(dim=1)), ("sigmoid", torch.nn.Sigmoid()),
                                          ("tanh", torch.nn.Tanh())])
def test_activations_match_torch(name, module, rng):
    run_both(layers.Activation(name), module, rng.standard_normal((3, 4, 2, 2)) * 3, rng)


def test_pooling_matches_torch(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    run_both(layers.MaxPooling2D(3, strides=2, padding=1), torch.nn.MaxPool2d(3, 2, 1), x, rng)
    run_both(layers.AveragePooling2D(2), torch.nn.AvgPool2d(2), x, rng)


@pytest.mark.parametrize("size, output_size", [((7, 5), (3, 2)), ((1, 1), (6, 6)), ((14, 14), (4, 4)), ((6, 6), 6)])
def test_adaptive_average_pooling_matches_torch(size, output_size, rng):
    run_both(layers.AdaptiveAveragePooling2D(output_size), torch.nn.AdaptiveAvgPool2d(output_size),
             rng.standard_normal((2, 3) + size), rng)


@pytest.mark.parametrize("cls, module", [(layers.MaxPooling2D, torch.nn.MaxPool2d),
                                         (layers.AveragePooling2D, torch.nn.AvgPool2d)])
@pytest.mark.parametrize("size, pool, stride, padding", [(8, 3, 2, 0), (9, 3, 2, 0), (7, 2, 2, 0), (6, 3, 2, 1)])
def test_pooling_ceil_mode_matches_torch(cls, module, size, pool, stride, padding, rng):
    layer = cls(pool, strides=stride, padding=padding, ceil_mode=True)
    run_both(layer, module(pool, stride, padding, ceil_mode=True), rng.standard_normal((1, 2, size, size + 1)), rng)
