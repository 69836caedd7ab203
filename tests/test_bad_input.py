"""Every kind of bad input raises ValueError (TypeError for a wrong type) naming the parameter."""

import json
import sys
import textwrap

import numpy as np
import pytest

import pyconvx
from conftest import run_child

X = np.ones((2, 4, 8, 8), dtype=np.float32)
W = np.ones((6, 4, 3, 3), dtype=np.float32)
G = np.ones((2, 6, 6, 6), dtype=np.float32)  # grad_out of conv2d(X, W)


def conv(**kw):
    args = dict(x=X, weight=W)
    args.update(kw)
    return lambda: pyconvx.conv2d(**args)


def conv_bw(**kw):
    args = dict(grad_out=G, x=X, weight=W)
    args.update(kw)
    return lambda: pyconvx.conv2d_backward(**args)


# (id, callable, exception type, regex the message must match)
CONV_BAD = [
    ("x_3d", conv(x=np.ones((4, 8, 8), np.float32)), ValueError, r"\bx\b"),
    ("x_5d", conv(x=np.ones((1, 2, 4, 8, 8), np.float32)), ValueError, r"\bx\b"),
    ("weight_3d", conv(weight=np.ones((6, 4, 3), np.float32)), ValueError, r"weight"),
    ("channel_mismatch", conv(weight=np.ones((6, 3, 3, 3), np.float32)), ValueError, r"weight|channels"),
    ("channel_mismatch_groups", conv(weight=np.ones((6, 4, 3, 3), np.float32), groups=2), ValueError,
     r"weight|channels|groups"),
    ("groups_not_dividing_c", conv(weight=np.ones((6, 1, 3, 3), np.float32), groups=3), ValueError, r"groups"),
    ("groups_not_dividing_k", conv(weight=np.ones((5, 2, 3, 3), np.float32), groups=2), ValueError, r"groups"),
    ("groups_zero", conv(groups=0), ValueError, r"groups"),
    ("kernel_larger_than_input", conv(weight=np.ones((6, 4, 9, 3), np.float32)), ValueError, r"kernel"),
    ("dilated_kernel_larger_than_input", conv(dilation=4), ValueError, r"kernel"),
    ("kernel_larger_than_padded_input", conv(weight=np.ones((6, 4, 3, 11), np.float32), padding=1),
     ValueError, r"kernel"),
    ("stride_zero", conv(stride=0), ValueError, r"stride"),
    ("stride_negative_pair", conv(stride=(1, -2)), ValueError, r"stride"),
    ("dilation_zero", conv(dilation=0), ValueError, r"dilation"),
    ("dilation_negative_pair", conv(dilation=(-1, 1)), ValueError, r"dilation"),
    ("padding_negative", conv(padding=-1), ValueError, r"padding"),
    ("padding_negative_pair", conv(padding=(0, -1)), ValueError, r"padding"),
    ("padding_unknown_string", conv(padding="full"), ValueError, r"padding"),
    ("same_with_stride2", conv(padding="same", stride=2), ValueError, r"padding|same"),
    ("bias_wrong_length", conv(bias=np.ones(5, np.float32)), ValueError, r"bias"),
    ("bias_2d", conv(bias=np.ones((6, 1), np.float32)), ValueError, r"bias"),
    ("activation_unknown", conv(activation="tanh"), ValueError, r"activation"),
    ("x_string", conv(x="not an array"), TypeError, r"\bx\b"),
    ("x_object_array", conv(x=np.array([[[[object()]]]] * 2, dtype=object)), TypeError, r"\bx\b"),
    ("weight_string", conv(weight="abc"), TypeError, r"weight"),
    ("backward_grad_out_wrong_shape", conv_bw(grad_out=np.ones((2, 6, 5, 6), np.float32)), ValueError,
     r"grad_out"),
    ("backward_grad_out_wrong_channels", conv_bw(grad_out=np.ones((2, 5, 6, 6), np.float32)), ValueError,
     r"grad_out"),
    ("backward_grad_out_3d", conv_bw(grad_out=np.ones((6, 6, 6), np.float32)), ValueError, r"grad_out"),
    ("backward_x_3d", conv_bw(x=np.ones((4, 8, 8), np.float32)), ValueError, r"\bx\b"),
    ("backward_channel_mismatch", conv_bw(weight=np.ones((6, 3, 3, 3), np.float32)), ValueError,
     r"weight|channels"),
    ("backward_stride_zero", conv_bw(stride=0), ValueError, r"stride"),
    ("backward_groups", conv_bw(groups=3), ValueError, r"groups"),
]


def pool(fn, **kw):
    args = dict(x=X, kernel_size=3)
    args.update(kw)
    return lambda: getattr(pyconvx, fn)(**args)


POOL_BAD = []
for _fn in ("max_pool2d", "avg_pool2d"):
    POOL_BAD += [
        (f"{_fn}_kernel_zero", pool(_fn, kernel_size=0), ValueError, r"kernel"),
        (f"{_fn}_kernel_negative_pair", pool(_fn, kernel_size=(2, -1)), ValueError, r"kernel"),
        (f"{_fn}_stride_zero", pool(_fn, stride=0), ValueError, r"stride"),
        (f"{_fn}_padding_over_half_kernel", pool(_fn, kernel_size=3, padding=2), ValueError, r"padding"),
        (f"{_fn}_padding_over_half_kernel_w", pool(_fn, kernel_size=(4, 2), padding=(2, 2)), ValueError,
         r"padding"),
        (f"{_fn}_padding_negative", pool(_fn, padding=-1), ValueError, r"padding"),
        (f"{_fn}_x_3d", pool(_fn, x=np.ones((4, 8, 8), np.float32)), ValueError, r"\bx\b"),
        (f"{_fn}_kernel_larger_than_input", pool(_fn, kernel_size=9), ValueError, r"kernel|input|output"),
        (f"{_fn}_x_string", pool(_fn, x="abc"), TypeError, r"\bx\b"),
    ]

POOL_BAD += [
    ("max_pool2d_backward_grad_out_wrong_shape",
     lambda: pyconvx.max_pool2d_backward(np.ones((2, 4, 3, 3), np.float32), X, 3), ValueError, r"grad_out"),
    ("max_pool2d_backward_indices_wrong_shape",
     lambda: pyconvx.max_pool2d_backward(np.ones((2, 4, 2, 2), np.float32), X, 3,
                                         indices=np.zeros((2, 4, 3, 3), np.int64)), ValueError, r"indices"),
    ("avg_pool2d_backward_grad_out_wrong_shape",
     lambda: pyconvx.avg_pool2d_backward(np.ones((2, 4, 3, 3), np.float32), X.shape, 3), ValueError,
     r"grad_out"),
    ("avg_pool2d_backward_x_shape_3d",
     lambda: pyconvx.avg_pool2d_backward(np.ones((2, 4, 2, 2), np.float32), (4, 8, 8), 3), ValueError,
     r"x_shape|shape"),
    ("global_avg_pool2d_x_3d", lambda: pyconvx.global_avg_pool2d(np.ones((4, 8, 8), np.float32)), ValueError,
     r"\bx\b"),
    ("global_avg_pool2d_backward_grad_out_wrong_shape",
     lambda: pyconvx.global_avg_pool2d_backward(np.ones((2, 3, 1, 1), np.float32), X.shape), ValueError,
     r"grad_out"),
]

A = np.ones((5, 7), np.float32)
MISC_BAD = [
    ("gemm_inner_mismatch", lambda: pyconvx.gemm(A, np.ones((6, 3), np.float32)), ValueError, r"\ba\b|\bb\b|inner"),
    ("gemm_inner_mismatch_trans_a", lambda: pyconvx.gemm(A, np.ones((7, 3), np.float32), trans_a=True),
     ValueError, r"\ba\b|\bb\b|inner"),
    ("gemm_inner_mismatch_trans_b", lambda: pyconvx.gemm(A, np.ones((3, 6), np.float32), trans_b=True),
     ValueError, r"\ba\b|\bb\b|inner"),
    ("gemm_a_1d", lambda: pyconvx.gemm(np.ones(7, np.float32), np.ones((7, 3), np.float32)), ValueError, r"\ba\b"),
    ("gemm_b_3d", lambda: pyconvx.gemm(A, np.ones((7, 3, 1), np.float32)), ValueError, r"\bb\b"),
    ("gemm_a_string", lambda: pyconvx.gemm("abc", A), TypeError, r"\ba\b"),
    ("correlate2d_bad_mode", lambda: pyconvx.correlate2d(A, np.ones((3, 3)), mode="circular"), ValueError, r"mode"),
    ("convolve2d_bad_mode", lambda: pyconvx.convolve2d(A, np.ones((3, 3)), mode="Valid "), ValueError, r"mode"),
    ("correlate2d_image_3d", lambda: pyconvx.correlate2d(np.ones((2, 5, 7)), np.ones((3, 3))), ValueError,
     r"image"),
    ("correlate2d_kernel_1d", lambda: pyconvx.correlate2d(A, np.ones(3)), ValueError, r"kernel"),
    ("im2col_x_3d", lambda: pyconvx.im2col(np.ones((4, 8, 8), np.float32), 3), ValueError, r"\bx\b"),
    ("im2col_kernel_too_large", lambda: pyconvx.im2col(X, 9), ValueError, r"kernel"),
    ("im2col_stride_zero", lambda: pyconvx.im2col(X, 3, stride=0), ValueError, r"stride"),
    ("im2col_dilation_zero", lambda: pyconvx.im2col(X, 3, dilation=0), ValueError, r"dilation"),
    ("im2col_padding_negative", lambda: pyconvx.im2col(X, 3, padding=-1), ValueError, r"padding"),
    ("col2im_cols_wrong_shape", lambda: pyconvx.col2im(np.ones((2, 36, 35), np.float32), X.shape, 3),
     ValueError, r"cols"),
    ("col2im_cols_2d", lambda: pyconvx.col2im(np.ones((36, 36), np.float32), X.shape, 3), ValueError, r"cols"),
    ("conv_output_size_stride_zero", lambda: pyconvx.conv_output_size(6, 3, stride=0), ValueError, r"stride"),
    ("conv_output_size_dilation_zero", lambda: pyconvx.conv_output_size(6, 3, dilation=0), ValueError,
     r"dilation"),
    ("conv_output_size_padding_negative", lambda: pyconvx.conv_output_size(6, 3, padding=-1), ValueError,
     r"padding"),
    ("set_num_threads_zero", lambda: pyconvx.set_num_threads(0), ValueError, r"thread|\bn\b"),
]

ALL_BAD = CONV_BAD + POOL_BAD + MISC_BAD


@pytest.mark.parametrize("fn, exc, pattern", [pytest.param(f, e, p, id=i) for i, f, e, p in ALL_BAD])
def test_bad_input_raises_naming_the_parameter(fn, exc, pattern, restore_threads):
    # pytest.raises checks the exception type; match= that the message names the parameter.
    with pytest.raises(exc, match=pattern):
        fn()


def test_bad_input_leaves_the_package_usable():
    with pytest.raises(ValueError):
        pyconvx.conv2d(X, W, stride=0)
    y = pyconvx.conv2d(X, W)
    np.testing.assert_allclose(y, np.full((2, 6, 6, 6), 36.0))


# ---------------------------------------------------------------------------------------------
# Sizes whose element counts overflow 64 bits, and indices that point outside the input:
# ValueError, and above all no crash or stray write. They run in a child process so that a
# segfault shows up as a failed test instead of ending the run.
# ---------------------------------------------------------------------------------------------

CHILD_CASES = {
    "conv_padding_2_62": "pyconvx.conv2d(x, w, padding=2**62)",
    "conv_padding_pair_2_62": "pyconvx.conv2d(x, w, padding=(1, 2**62))",
    "conv_padding_2_61": "pyconvx.conv2d(x, w, padding=2**61)",
    "conv_dilation_2_62": "pyconvx.conv2d(x, w, dilation=2**62)",
    "conv_dilation_pair_2_62": "pyconvx.conv2d(x, w, dilation=(2**62, 1))",
    "conv_stride_padding_2_62": "pyconvx.conv2d(x, w, stride=2**62, padding=2**62)",
    "backward_padding_2_62": "pyconvx.conv2d_backward(np.ones((1, 1, 1, 1), np.float32), x, w, padding=2**62)",
    "im2col_padding_2_62": "pyconvx.im2col(x, 3, padding=2**62)",
    "im2col_dilation_2_62": "pyconvx.im2col(x, 3, dilation=2**62)",
    "col2im_huge_shape": "pyconvx.col2im(np.ones((1, 9, 1), np.float32), (1, 1, 2**62, 2**62), 3)",
    "avg_backward_huge_shape": "pyconvx.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (2**40, 2**40, 2, 2), 2)",
    "global_backward_huge_shape": "pyconvx.global_avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2**62, 2**62))",
    "max_backward_index_past_plane": "pyconvx.max_pool2d_backward(g, x, 2, indices=np.full((1, 1, 2, 2), 16, np.int64))",
    "max_backward_index_negative": "pyconvx.max_pool2d_backward(g, x, 2, indices=np.full((1, 1, 2, 2), -1, np.int64))",
}

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyconvx
    x = np.ones((1, 1, 4, 4), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    g = np.ones((1, 1, 2, 2), np.float32)
    for name, expr in json.loads(sys.argv[1]).items():
        try:
            eval(expr)
            result = "no exception"
        except Exception as exc:
            result = type(exc).__name__ + ": " + str(exc)[:200]
        print(json.dumps({name: result}), flush=True)
    """
)


@pytest.fixture(scope="module")
def child_results():
    proc = run_child(CHILD, json.dumps(CHILD_CASES), timeout=120)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    return results, proc.returncode, proc.stderr[-2000:]


@pytest.mark.parametrize("name", list(CHILD_CASES))
def test_overflowing_sizes_and_wild_indices_raise_value_error(name, child_results):
    results, returncode, stderr = child_results
    assert name in results, f"child process died before reaching {name} (rc={returncode}): {stderr}"
    assert results[name].startswith("ValueError"), results[name]
