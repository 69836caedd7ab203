"""Uneven padding (top, bottom, left, right) through conv2d, conv2d_backward, conv2d_algorithm
and im2col, against the float64 reference."""
import numpy as np
import pytest

import pyconvx
import reference as ref

CASES = [
    ref.ConvCase("keras_same_stride2", 2, 3, 8, 7, 4, 3, 3, stride=2, padding=(0, 1, 1, 1)),
    ref.ConvCase("top_only_k5", 1, 2, 7, 9, 3, 5, 5, padding=(4, 0, 0, 0)),
    ref.ConvCase("all_different_dilation", 1, 3, 9, 8, 5, 3, 2, padding=(1, 3, 2, 0), dilation=(2, 1)),
    ref.ConvCase("groups2_stride_2x1", 2, 4, 9, 6, 6, 3, 3, stride=(2, 1), padding=(2, 1, 0, 2), groups=2),
    ref.ConvCase("1x1_pad_right", 1, 5, 4, 4, 3, 1, 1, padding=(0, 0, 0, 1)),
    ref.ConvCase("3x3_channels_for_winograd", 1, 32, 12, 12, 32, 3, 3, padding=(1, 1, 0, 2)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conv2d_with_four_pads_matches_reference(case, rng):
    x, w, b = case.make(rng)
    y = pyconvx.conv2d(x, w, b, **case.kwargs())
    assert y.shape == case.out_shape()
    ref.assert_close(y, ref.conv2d(x, w, b, **case.kwargs()), case.fwd_reduction(), case.id)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conv2d_backward_with_four_pads_matches_reference(case, rng):
    x, w, _ = case.make(rng)
    grad_out = rng.standard_normal(case.out_shape()).astype(np.float32)
    gx, gw, gb = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    want_gx, want_gw, want_gb = ref.conv2d_backward(grad_out, x, w, **case.kwargs())
    case.assert_backward_close((gx, gw, gb), (want_gx, want_gw, want_gb))


def test_four_pads_equal_the_symmetric_spellings(rng):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(pyconvx.conv2d(x, w, padding=(1, 1, 2, 2)), pyconvx.conv2d(x, w, padding=(1, 2)))
    assert (pyconvx.conv2d_algorithm(x.shape, w.shape, padding=(1, 1, 1, 1))
            == pyconvx.conv2d_algorithm(x.shape, w.shape, padding=1))
    assert pyconvx.conv2d_algorithm((1, 8, 9, 9), (4, 8, 3, 3), stride=2, padding=(0, 1, 0, 1)) in \
        pyconvx.CONV_ALGORITHMS


def test_im2col_with_four_pads_is_im2col_of_the_padded_input(rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    pads = (0, 2, 1, 0)
    padded = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    cols = pyconvx.im2col(x, 3, stride=2, padding=pads)
    np.testing.assert_array_equal(cols, pyconvx.im2col(padded, 3, stride=2))
    back = pyconvx.col2im(cols, x.shape, 3, stride=2, padding=pads)
    want = pyconvx.col2im(cols, padded.shape, 3, stride=2)[:, :, :5, 1:]
    np.testing.assert_allclose(back, want, rtol=1e-6)


@pytest.mark.parametrize("padding, match", [
    ((1, 1, -1, 0), "padding"),
    ((1, 2, 3), r"4-tuple \(top, bottom, left, right\), got padding=\(1, 2, 3\)"),
    ((1, 2, 3, 4, 5), "4-tuple"),
])
def test_bad_four_pads_raise(padding, match):
    with pytest.raises(ValueError, match=match):
        pyconvx.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=padding)
