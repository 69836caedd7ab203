"""pyconvx.conv2d (forward) against the float64 NumPy reference."""

import numpy as np
import pytest

import pyconvx
import reference as ref
from conftest import INPUT_VARIANTS, as_variant, assert_output_array, assert_unchanged, snapshot

CASES = [pytest.param(c, id=c.id) for c in ref.CONV_CASES]


def run_conv(case, x, w, b, **overrides):
    kwargs = dict(case.kwargs(), activation=case.activation)
    kwargs.update(overrides)
    return pyconvx.conv2d(x, w, b, **kwargs)


@pytest.mark.parametrize("case", CASES)
def test_conv2d_matches_reference(case, rng):
    x, w, b = case.make(rng)
    y = run_conv(case, x, w, b)
    assert_output_array(y, case.out_shape())
    want = ref.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    ref.assert_close(y, want, case.fwd_reduction(), case.id)


@pytest.mark.parametrize("case", [c for c in CASES if c.values[0].activation == "relu"])
def test_fused_relu_is_relu_of_plain_conv(case, rng):
    x, w, b = case.make(rng)
    plain = run_conv(case, x, w, b, activation=None)
    fused = run_conv(case, x, w, b)
    assert (plain < 0).any(), "test needs negative pre-activations"
    assert (fused >= 0).all()
    ref.assert_close(fused, np.maximum(plain, 0), case.fwd_reduction())


def test_bias_is_added_per_output_channel(rng):
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.array([1.0, -2.0, 0.5, 100.0], dtype=np.float32)
    with_bias = pyconvx.conv2d(x, w, b, padding=1)
    without = pyconvx.conv2d(x, w, padding=1)
    ref.assert_close(with_bias - without, np.broadcast_to(b.reshape(1, 4, 1, 1), without.shape), 27)


@pytest.mark.parametrize(
    "kernel, padding, equivalent",
    [
        ((3, 3), 1, (1, 1)),
        ((3, 3), "same", 1),
        ((5, 3), "same", (2, 1)),
        ((3, 2), "valid", 0),
        ((1, 1), "same", 0),
    ],
    ids=["int_vs_pair", "same_k3_is_pad1", "same_k5x3_is_pad2x1", "valid_is_0", "same_1x1_is_0"],
)
def test_padding_spellings_agree(kernel, padding, equivalent, rng):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2) + kernel).astype(np.float32)
    a = pyconvx.conv2d(x, w, padding=padding)
    b = pyconvx.conv2d(x, w, padding=equivalent)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_same_padding_keeps_spatial_size_with_even_kernel(rng):
    x = rng.standard_normal((1, 2, 7, 10)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 2)).astype(np.float32)
    y = pyconvx.conv2d(x, w, padding="same")
    assert y.shape == (1, 3, 7, 10)
    # torch puts the extra row/column at the bottom/right: (top, bottom, left, right) = (1, 2, 0, 1).
    ref.assert_close(y, ref.conv2d(x, w, padding=(1, 2, 0, 1)), 16)


def test_identity_kernel_copies_input(rng):
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    w = np.zeros((3, 3, 3, 3), dtype=np.float32)
    for c in range(3):
        w[c, c, 1, 1] = 1.0
    y = pyconvx.conv2d(x, w, padding=1)
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------

HANDLING_CASE = ref.ConvCase("handling", 2, 4, 8, 7, 6, 3, 2, stride=(2, 1), padding=1, groups=2)


@pytest.mark.parametrize("variant", INPUT_VARIANTS)
def test_conv2d_accepts_any_layout_and_leaves_inputs_alone(variant, rng):
    case = HANDLING_CASE
    x, w, b = case.make(rng)
    expected = pyconvx.conv2d(x, w, b, **case.kwargs())
    xv, wv, bv = (as_variant(a, variant) for a in (x, w, b))
    saved = [snapshot(a) for a in (xv, wv, bv)]
    y = pyconvx.conv2d(xv, wv, bv, **case.kwargs())
    assert_output_array(y, expected.shape)
    ref.assert_close(y, expected, case.fwd_reduction())
    for a, before in zip((xv, wv, bv), saved):
        assert_unchanged(a, before)


def test_conv2d_accepts_nested_lists(rng):
    x, w, b = HANDLING_CASE.make(rng)
    y = pyconvx.conv2d(x.tolist(), w.tolist(), b.tolist(), **HANDLING_CASE.kwargs())
    assert_output_array(y)
    ref.assert_close(y, ref.conv2d(x, w, b, **HANDLING_CASE.kwargs()), HANDLING_CASE.fwd_reduction())


def test_conv2d_on_a_strided_slice_of_x(rng):
    big = rng.standard_normal((2, 3, 14, 9)).astype(np.float32)
    x = big[:, :, ::2]  # x[:, :, ::2] as in the spec
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    before = big.copy()
    y = pyconvx.conv2d(x, w, padding=1)
    ref.assert_close(y, ref.conv2d(np.ascontiguousarray(x), w, padding=1), 27)
    assert_unchanged(big, before)


@pytest.mark.parametrize("case", [HANDLING_CASE, ref.CONV_CASES[0]], ids=["groups2_stride2x1", "3x3_pad1"])
def test_conv2d_zero_batch(case, rng):
    _, w, b = case.make(rng)
    x = np.zeros((0,) + case.x_shape[1:], dtype=np.float32)
    y = pyconvx.conv2d(x, w, b, **case.kwargs())
    assert_output_array(y, (0,) + case.out_shape()[1:])
