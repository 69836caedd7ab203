"""The shared grids checked against torch.nn.functional (an independent oracle)."""

import warnings

import numpy as np
import pytest

import pyconvx
import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional



@pytest.fixture(scope="module", autouse=True)
def single_threaded_torch():
    """torch with one thread keeps this module quick. torch and pyconvx may share one OpenMP
    runtime, so this is done per module (not at import) and both counts are restored after."""
    torch_before, ours_before = torch.get_num_threads(), pyconvx.get_num_threads()
    torch.set_num_threads(1)
    pyconvx.set_num_threads(ours_before)
    yield
    torch.set_num_threads(torch_before)
    pyconvx.set_num_threads(ours_before)

CONV_CASES = [pytest.param(c, id=c.id) for c in ref.CONV_CASES]
POOL_CASES = [pytest.param(c, id=c.id) for c in ref.POOL_CASES]


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def torch_conv(case, x, w, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "same" with even kernels: a perf note
        return F.conv2d(x, w, b, stride=case.stride, padding=case.padding, dilation=case.dilation,
                        groups=case.groups)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_and_backward_vs_torch(case, rng):
    x, w, b = case.make(rng)
    xt, wt = t64(x, True), t64(w, True)
    bt = t64(b, True) if b is not None else None
    yt = torch_conv(case, xt, wt, bt)
    want = F.relu(yt) if case.activation == "relu" else yt

    y = pyconvx.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    ref.assert_close(y, want.detach().numpy(), case.fwd_reduction(), "forward")

    grad_out = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(t64(grad_out))  # gradient of the conv without the activation
    gx, gw, gb = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    ref.assert_close(gx, xt.grad.numpy(), case.grad_x_reduction(), "grad_x")
    ref.assert_close(gw, wt.grad.numpy(), case.grad_w_reduction(), "grad_weight")
    if bt is not None:
        ref.assert_close(gb, bt.grad.numpy(), case.grad_w_reduction(), "grad_bias")


def torch_pool_kwargs(case):
    kw = case.kwargs()
    if kw["stride"] is None:
        kw["stride"] = kw["kernel_size"]
    return kw


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_vs_torch(case, rng):
    x = rng.standard_normal(case.x_shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, return_indices=True, **torch_pool_kwargs(case))
    y, idx = pyconvx.max_pool2d(x, return_indices=True, **case.kwargs())
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())

    grad_out = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(grad_out))
    gx = pyconvx.max_pool2d_backward(grad_out, x, indices=idx, **case.kwargs())
    ref.assert_close(gx, xt.grad.numpy(), case.window_size())


def test_max_pool2d_ties_vs_torch(rng):
    x = rng.integers(-1, 2, size=(2, 2, 9, 10)).astype(np.float32)
    for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True)):
        yt, it = F.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        y, idx = pyconvx.max_pool2d(x, return_indices=True, **kw)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(idx, it.numpy())


def test_max_pool2d_nan_vs_torch():
    x = np.arange(2 * 7 * 7, dtype=np.float32).reshape(1, 2, 7, 7)
    x[0, 0, 1, 1] = np.nan  # row/column 1 lies in two windows per axis: 4 NaN outputs
    x[0, 1, 6, 6] = np.nan  # only in the last (ceil) window: 1 NaN output
    yt = F.max_pool2d(torch.tensor(x), 3, stride=2, padding=1, ceil_mode=True)
    y = pyconvx.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(y, yt.numpy())  # NaNs in the same places, equal elsewhere
    assert np.isnan(y).sum() == 4 + 1


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool2d_vs_torch(case, count_include_pad, rng):
    x = rng.standard_normal(case.x_shape).astype(np.float32)
    xt = t64(x, True)
    yt = F.avg_pool2d(xt, count_include_pad=count_include_pad, **torch_pool_kwargs(case))
    y = pyconvx.avg_pool2d(x, count_include_pad=count_include_pad, **case.kwargs())
    ref.assert_close(y, yt.detach().numpy(), case.window_size())

    grad_out = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(t64(grad_out))
    gx = pyconvx.avg_pool2d_backward(grad_out, x.shape, count_include_pad=count_include_pad, **case.kwargs())
    ref.assert_close(gx, xt.grad.numpy(), case.window_size())


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 17, 33, 9)], ids=["2x3x7x5", "1x17x33x9"])
def test_global_avg_pool2d_vs_adaptive_avg_pool2d(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    xt = t64(x, True)
    yt = F.adaptive_avg_pool2d(xt, 1)
    ref.assert_close(pyconvx.global_avg_pool2d(x), yt.detach().numpy(), shape[2] * shape[3])
    grad_out = rng.standard_normal(shape[:2] + (1, 1)).astype(np.float32)
    yt.backward(t64(grad_out))
    ref.assert_close(pyconvx.global_avg_pool2d_backward(grad_out, shape), xt.grad.numpy())


UNFOLD = [
    pytest.param(dict(kernel_size=(3, 2)), (2, 3, 7, 8), id="k3x2"),
    pytest.param(dict(kernel_size=3, stride=2, padding=1, dilation=2), (1, 2, 9, 9), id="k3_s2_p1_d2"),
    pytest.param(dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 2, 8, 10),
                 id="k2x3_s2x1_p1x0_d1x2"),
    pytest.param(dict(kernel_size=3, stride=4), (1, 33, 11, 13), id="stride_gt_kernel_c33"),
]


@pytest.mark.parametrize("kwargs, shape", UNFOLD)
def test_im2col_col2im_vs_unfold_fold(kwargs, shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    cols_t = F.unfold(torch.tensor(x), **kwargs)
    cols = pyconvx.im2col(x, **kwargs)
    np.testing.assert_array_equal(cols, cols_t.numpy())

    r, s = ref.pair(kwargs["kernel_size"])
    c = rng.standard_normal(tuple(cols_t.shape)).astype(np.float32)
    folded_t = F.fold(t64(c), output_size=shape[2:], **kwargs)
    ref.assert_close(pyconvx.col2im(c, shape, **kwargs), folded_t.numpy(), r * s)
