"""The depthwise kernel (groups = C), forward and weight gradient, on the shapes that take its
separate paths: 3x3, 5x5 and 7x7 (unrolled) and other kernels, unit stride, stride 2 (the
padded plane split into even and odd columns four at a time, odd and even widths, uneven
padding) and wider strides, dilation, several filters per channel, rows of one, two and four
vectors a run (on every ISA: runs of 4 to 64 outputs) and longer."""
import numpy as np
import pytest

import pyconvx
import reference as ref

CASES = [
    ref.ConvCase("3x3_rows_of_37", 2, 6, 9, 37, 6, 3, 3, padding=1, groups=6, activation="relu"),
    ref.ConvCase("3x3_stride2", 2, 5, 12, 13, 5, 3, 3, stride=2, padding=1, groups=5),
    ref.ConvCase("5x5_multiplier3", 1, 4, 10, 21, 12, 5, 5, padding=2, groups=4),
    ref.ConvCase("3x2_dilation_stride_pairs", 2, 3, 15, 17, 3, 3, 2, stride=(2, 3), dilation=(2, 1),
                 padding=(1, 2), groups=3),
    ref.ConvCase("same_even_kernel", 1, 7, 8, 8, 7, 4, 4, padding="same", groups=7, bias=False),
    ref.ConvCase("1x1", 3, 8, 5, 5, 8, 1, 1, groups=8),
    ref.ConvCase("rows_of_3", 4, 16, 3, 3, 16, 3, 3, padding=1, groups=16),
    ref.ConvCase("3x3_stride2_odd_width_uneven_padding", 2, 6, 15, 23, 6, 3, 3, stride=2, padding=(0, 1, 0, 1),
                 groups=6),
    ref.ConvCase("5x5_stride2_rows_of_150", 1, 3, 9, 301, 3, 5, 5, stride=2, padding=2, groups=3),
    ref.ConvCase("7x7_stride2_pad3", 1, 4, 20, 20, 8, 7, 7, stride=2, padding=3, groups=4),
    ref.ConvCase("3x3_stride2_dilation2", 1, 5, 17, 19, 5, 3, 3, stride=2, padding=2, dilation=2, groups=5),
    ref.ConvCase("3x3_stride3", 2, 3, 13, 22, 3, 3, 3, stride=3, padding=1, groups=3),
    ref.ConvCase("3x3_rows_of_12", 1, 9, 6, 12, 9, 3, 3, padding=1, groups=9, activation="relu"),
    ref.ConvCase("3x3_rows_of_70", 1, 2, 5, 70, 2, 3, 3, padding=1, groups=2),
    # Stride 2 on rows of 7 and 8 columns, unpadded: no split four at a time, then exactly one.
    ref.ConvCase("3x3_stride2_width_7", 2, 3, 9, 7, 3, 3, 3, stride=2, groups=3),
    ref.ConvCase("2x2_stride2_width_8", 1, 2, 4, 8, 2, 2, 2, stride=2, groups=2),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_matches_the_reference(case):
    x, w, b = case.make(np.random.default_rng(21))
    assert pyconvx.conv2d_algorithm(x.shape, w.shape, **case.kwargs()) == "depthwise"
    y = pyconvx.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    want = ref.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    ref.assert_close(y, want, case.fwd_reduction(), case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_backward_matches_the_reference(case):
    x, w, _ = case.make(np.random.default_rng(22))
    rng = np.random.default_rng(23)
    gy = rng.standard_normal(case.out_shape()).astype(np.float32)
    gx, gw, gb = pyconvx.conv2d_backward(gy, x, w, **case.kwargs())
    want_gx, want_gw, want_gb = ref.conv2d_backward(gy, x, w, **case.kwargs())
    case.assert_backward_close((gx, gw, gb), (want_gx, want_gw, want_gb))


def test_weight_gradient_does_not_depend_on_the_thread_count(restore_threads):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 24, 30, 30)).astype(np.float32)
    w = rng.standard_normal((24, 1, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((6, 24, 30, 30)).astype(np.float32)
    grads = []
    for threads in (1, 2, 3):
        pyconvx.set_num_threads(threads)
        grads.append(pyconvx.conv2d_backward(gy, x, w, padding=1, groups=24, needs=(False, True, False))[1])
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], grads[2])


def test_relu_keeps_nan_as_torch_does():
    x = np.full((1, 2, 4, 4), np.nan, np.float32)
    y = pyconvx.conv2d(x, np.ones((2, 1, 3, 3), np.float32), padding=1, groups=2, activation="relu")
    assert np.isnan(y).all()


def test_forcing_it_on_a_grouped_layer_says_why():
    with pytest.raises(ValueError, match="algorithm='depthwise' cannot compute .*groups equal to the input channels C"):
        pyconvx.conv2d(np.ones((1, 4, 6, 6), np.float32), np.ones((4, 2, 3, 3), np.float32), groups=2,
                       algorithm="depthwise")
