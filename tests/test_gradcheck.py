"""Finite-difference checks of pyconvx's backward passes.

The loss is L = sum(f(inputs) * g) for a fixed random g, with f the float64 reference forward;
its central-difference gradient is compared with the float32 gradients pyconvx returns, at a
relative tolerance of about 1e-3 of the gradient's scale.
"""

import numpy as np
import pytest

import pyconvx
import reference as ref

EPS = 1e-6


def numeric_grad(loss, a, eps=EPS):
    """Central differences of the scalar function loss() with respect to every entry of a (in place)."""
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = loss()
        flat[i] = old - eps
        down = loss()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def assert_grad_close(got, want, what):
    assert got.shape == want.shape, what
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale, err_msg=what)


CONV_TINY = [
    pytest.param(ref.ConvCase("plain", 1, 2, 5, 5, 2, 3, 3), id="plain"),
    pytest.param(ref.ConvCase("stride2_pad1_nonsquare", 2, 2, 6, 5, 3, 3, 2, stride=2, padding=1), id="stride2_pad1"),
    pytest.param(ref.ConvCase("dilation2", 1, 1, 7, 6, 2, 2, 3, dilation=2, padding=(1, 0)), id="dilation2"),
    pytest.param(ref.ConvCase("groups2", 1, 4, 4, 4, 2, 3, 3, padding=1, groups=2), id="groups2"),
    pytest.param(ref.ConvCase("depthwise", 1, 3, 5, 4, 3, 2, 2, stride=(1, 2), groups=3), id="depthwise"),
    pytest.param(ref.ConvCase("same_even", 1, 2, 4, 5, 2, 2, 4, padding="same"), id="same_even"),
    pytest.param(ref.ConvCase("1x1_stride2", 1, 3, 5, 5, 2, 1, 1, stride=2), id="1x1_stride2"),
]


@pytest.mark.parametrize("case", CONV_TINY)
def test_conv2d_backward_finite_differences(case, rng):
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    b = rng.standard_normal(case.k)
    g = rng.standard_normal(case.out_shape())
    kw = case.kwargs()

    def loss():
        return float((ref.conv2d(x, w, b, **kw) * g).sum())

    num_x, num_w, num_b = numeric_grad(loss, x), numeric_grad(loss, w), numeric_grad(loss, b)
    gx, gw, gb = pyconvx.conv2d_backward(g, x, w, **kw)
    assert_grad_close(gx, num_x, "grad_x")
    assert_grad_close(gw, num_w, "grad_weight")
    assert_grad_close(gb, num_b, "grad_bias")


def distinct_values(rng, shape, spacing=0.1):
    """Values at least `spacing` apart, so no max-pool window has a tie (even after +-EPS)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * spacing - n * spacing / 2).reshape(shape).astype(np.float64)


POOL_TINY = [
    pytest.param(dict(kernel_size=2), (1, 2, 4, 4), id="k2"),
    pytest.param(dict(kernel_size=3, stride=2, padding=1), (2, 1, 5, 6), id="k3_s2_p1"),
    pytest.param(dict(kernel_size=(2, 3), stride=1, padding=(1, 1)), (1, 2, 4, 4), id="k2x3_s1_overlap"),
    pytest.param(dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 1, 6, 6), id="k3_s2_p1_ceil"),
    pytest.param(dict(kernel_size=2, stride=3), (1, 1, 7, 5), id="stride_gt_kernel"),
]


@pytest.mark.parametrize("kwargs, shape", POOL_TINY)
def test_max_pool2d_backward_finite_differences(kwargs, shape, rng):
    x = distinct_values(rng, shape)
    g = rng.standard_normal(ref.max_pool2d(x, **kwargs)[0].shape)

    def loss():
        return float((ref.max_pool2d(x, **kwargs)[0] * g).sum())

    num = numeric_grad(loss, x)
    # Rounding to float32 keeps the order of values 0.1 apart, hence the same argmax positions.
    x32 = x.astype(np.float32)
    assert_grad_close(pyconvx.max_pool2d_backward(g, x32, **kwargs), num, "max_pool recomputed")
    _, idx = pyconvx.max_pool2d(x32, return_indices=True, **kwargs)
    assert_grad_close(pyconvx.max_pool2d_backward(g, x32, indices=idx, **kwargs), num, "max_pool indices")


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("kwargs, shape", POOL_TINY)
def test_avg_pool2d_backward_finite_differences(kwargs, shape, count_include_pad, rng):
    x = rng.standard_normal(shape)
    g = rng.standard_normal(ref.avg_pool2d(x, **kwargs).shape)

    def loss():
        return float((ref.avg_pool2d(x, count_include_pad=count_include_pad, **kwargs) * g).sum())

    num = numeric_grad(loss, x)
    got = pyconvx.avg_pool2d_backward(g, shape, count_include_pad=count_include_pad, **kwargs)
    assert_grad_close(got, num, "avg_pool")


def test_global_avg_pool2d_backward_finite_differences(rng):
    x = rng.standard_normal((2, 2, 3, 4))
    g = rng.standard_normal((2, 2, 1, 1))

    def loss():
        return float((ref.global_avg_pool2d(x) * g).sum())

    assert_grad_close(pyconvx.global_avg_pool2d_backward(g, x.shape), numeric_grad(loss, x), "global_avg_pool")
