"""Max, average and global average pooling (forward and backward) against the reference."""

import numpy as np
import pytest

import pyconvx
import reference as ref
from conftest import INPUT_VARIANTS, as_variant, assert_output_array, assert_unchanged, snapshot

CASES = [pytest.param(c, id=c.id) for c in ref.POOL_CASES]
CIP = pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])


def randn(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_max_pool2d_matches_reference(case, rng):
    x = randn(rng, case.x_shape)
    y, idx = pyconvx.max_pool2d(x, return_indices=True, **case.kwargs())
    want_y, want_idx = ref.max_pool2d(x, **case.kwargs())
    assert_output_array(y, case.out_shape())
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == y.shape
    np.testing.assert_array_equal(y, want_y.astype(np.float32))  # max is exact
    np.testing.assert_array_equal(idx, want_idx)


@pytest.mark.parametrize("case", CASES)
def test_max_pool2d_without_indices_returns_the_array(case, rng):
    x = randn(rng, case.x_shape)
    y = pyconvx.max_pool2d(x, **case.kwargs())
    assert_output_array(y, case.out_shape())
    np.testing.assert_array_equal(y, ref.max_pool2d(x, **case.kwargs())[0].astype(np.float32))


@pytest.mark.parametrize("use_indices", [True, False], ids=["with_indices", "recomputed"])
@pytest.mark.parametrize("case", CASES)
def test_max_pool2d_backward_matches_reference(case, use_indices, rng):
    x = randn(rng, case.x_shape)
    grad_out = randn(rng, case.out_shape())
    _, want_idx = ref.max_pool2d(x, **case.kwargs())
    indices = pyconvx.max_pool2d(x, return_indices=True, **case.kwargs())[1] if use_indices else None
    gx = pyconvx.max_pool2d_backward(grad_out, x, indices=indices, **case.kwargs())
    assert_output_array(gx, x.shape)
    ref.assert_close(gx, ref.max_pool2d_backward(grad_out, x.shape, want_idx), case.window_size())


def test_max_pool2d_ties_pick_the_first_maximum(rng):
    # Small integers make many ties inside the overlapping 3x3 windows.
    x = rng.integers(-2, 3, size=(2, 3, 9, 8)).astype(np.float32)
    y, idx = pyconvx.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    want_y, want_idx = ref.max_pool2d(x, 3, stride=2, padding=1)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    # The backward routes each gradient to exactly that position, accumulating overlaps.
    grad_out = np.ones_like(y)
    gx = pyconvx.max_pool2d_backward(grad_out, x, 3, stride=2, padding=1)
    np.testing.assert_allclose(gx, ref.max_pool2d_backward(grad_out, x.shape, want_idx))


def test_max_pool2d_padding_never_wins():
    # All values negative: a zero from the padding must never be the maximum.
    x = -1.0 - np.arange(2 * 5 * 5, dtype=np.float32).reshape(1, 2, 5, 5)
    y, idx = pyconvx.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    assert (y < 0).all()
    want_y, want_idx = ref.max_pool2d(x, 3, stride=2, padding=1)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)


def test_max_pool2d_all_minus_infinity():
    x = np.full((1, 1, 4, 4), -np.inf, dtype=np.float32)
    y, idx = pyconvx.max_pool2d(x, 2, padding=1, return_indices=True)
    assert y.shape == (1, 1, 3, 3)
    assert np.isneginf(y).all()
    # Every index points inside its own window, so the backward is well defined.
    assert ((idx >= 0) & (idx < 16)).all()
    np.testing.assert_array_equal(idx, ref.max_pool2d(x, 2, padding=1)[1])


def test_max_pool2d_propagates_nan():
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    x[0, 0, 1, 1] = np.nan  # inside window (0, 0) of a 3x3/3 pooling
    x[0, 0, 5, 3] = np.nan  # inside window (1, 1)
    y, idx = pyconvx.max_pool2d(x, 3, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[0, 0, 1, 1])
    assert y[0, 0, 0, 1] == 17 and y[0, 0, 1, 0] == 32  # x[2, 5] and x[5, 2]
    # The index of a NaN output points at a NaN.
    assert np.isnan(x.reshape(-1)[idx[0, 0, 0, 0]]) and np.isnan(x.reshape(-1)[idx[0, 0, 1, 1]])
    assert idx[0, 0, 0, 0] == 7 and idx[0, 0, 1, 1] == 33


def test_max_pool2d_nan_with_larger_values_later_in_the_window():
    # NaN first in scan order, then a larger number: NaN must still win.
    x = np.array([[[[np.nan, 5.0], [7.0, 9.0]]]], dtype=np.float32)
    y = pyconvx.max_pool2d(x, 2)
    assert y.shape == (1, 1, 1, 1) and np.isnan(y[0, 0, 0, 0])


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 2, 2), (4, 2, 1), (3, 3, 1)])
def test_pools_read_rows_a_quad_at_a_time_and_keep_nan_wherever_it_is(kernel, stride, padding, rng):
    # Rows of 9 to 30 outputs (whole quads and a remainder), a NaN at each position of a window in
    # turn, and every value of a row larger than the NaN's neighbours: the NaN must win in every
    # window that holds it, max pooling's four-lane compare included, whichever lane it sits in.
    for width in (17, 23, 30, 61):
        x = rng.standard_normal((2, 3, 11, width)).astype(np.float32)
        kw = dict(kernel_size=kernel, stride=stride, padding=padding)
        np.testing.assert_array_equal(pyconvx.max_pool2d(x, **kw), ref.max_pool2d(x, **kw)[0].astype(np.float32))
        ref_avg = ref.avg_pool2d(x, count_include_pad=True, **kw)
        np.testing.assert_allclose(pyconvx.avg_pool2d(x, **kw), ref_avg, rtol=1e-5, atol=1e-6)
        for col in range(min(width, 9)):
            nan = x.copy()
            nan[1, 2, 5, col] = np.nan
            y = pyconvx.max_pool2d(nan, **kw)
            want = ref.max_pool2d(nan, **kw)[0]
            np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=f"width {width} column {col}")
            np.testing.assert_array_equal(y[~np.isnan(y)], want[~np.isnan(want)].astype(np.float32))


def test_max_pool2d_default_stride_is_kernel(rng):
    x = randn(rng, (1, 2, 9, 9))
    np.testing.assert_array_equal(pyconvx.max_pool2d(x, 3), pyconvx.max_pool2d(x, 3, stride=3))
    assert pyconvx.max_pool2d(x, 3).shape == (1, 2, 3, 3)


# ---------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------


@CIP
@pytest.mark.parametrize("case", CASES)
def test_avg_pool2d_matches_reference(case, count_include_pad, rng):
    x = randn(rng, case.x_shape)
    y = pyconvx.avg_pool2d(x, count_include_pad=count_include_pad, **case.kwargs())
    assert_output_array(y, case.out_shape())
    want = ref.avg_pool2d(x, count_include_pad=count_include_pad, **case.kwargs())
    ref.assert_close(y, want, case.window_size(), case.id)


@CIP
@pytest.mark.parametrize("case", CASES)
def test_avg_pool2d_backward_matches_reference(case, count_include_pad, rng):
    grad_out = randn(rng, case.out_shape())
    gx = pyconvx.avg_pool2d_backward(grad_out, case.x_shape, count_include_pad=count_include_pad, **case.kwargs())
    assert_output_array(gx, case.x_shape)
    want = ref.avg_pool2d_backward(grad_out, case.x_shape, count_include_pad=count_include_pad, **case.kwargs())
    ref.assert_close(gx, want, case.window_size(), case.id)


def test_avg_pool2d_divisors_on_a_constant_image():
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    excl = pyconvx.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(excl, np.ones((1, 1, 4, 4)), rtol=1e-6)
    incl = pyconvx.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
    # A corner window sees 4 real pixels out of 9, an edge window 6, an inner one 9.
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]) / 9.0
    np.testing.assert_allclose(incl[0, 0], expected, rtol=1e-6)


def test_avg_pool2d_ceil_window_past_padding_is_not_counted():
    # H = W = 4, k = 3, s = 2, p = 1, ceil_mode: 3 outputs per axis. The last window starts at
    # row 3 and would end at row 5, but the padded input ends at row 4, so with
    # count_include_pad its divisor counts rows 3..4 only (one real row, one padding row).
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    y = pyconvx.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
    assert y.shape == (1, 1, 3, 3)
    # real pixels / divisor: corner 4/9, top-right 2/(3*2), bottom-right 1/(2*2).
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9, rel=1e-6)
    assert y[0, 0, 0, 2] == pytest.approx(2 / 6, rel=1e-6)
    assert y[0, 0, 2, 2] == pytest.approx(1 / 4, rel=1e-6)
    want = ref.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(y, want, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Global average pooling
# ---------------------------------------------------------------------------------------------


# Planes of 1 to 6 vectors are summed 16 (AVX-512), 8 or 4 at a time, the rest one by one: 37
# planes per image make whole groups and a remainder on every thread count; 7x7 ends in a part
# of a vector, 4x8 in a whole one; on AVX-512, 6x16 (96 floats) is the longest plane summed in groups,
# 7x14 the shortest summed alone.
@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 1, 1, 1), (1, 17, 33, 9), (3, 37, 7, 7), (2, 37, 4, 8),
                                   (2, 37, 6, 16), (2, 37, 7, 14)],
                         ids=["2x3x7x5", "1x1x1x1", "1x17x33x9", "3x37x7x7", "2x37x4x8", "2x37x6x16", "2x37x7x14"])
def test_global_avg_pool2d(shape, rng):
    x = randn(rng, shape)
    y = pyconvx.global_avg_pool2d(x)
    assert_output_array(y, shape[:2] + (1, 1))
    ref.assert_close(y, ref.global_avg_pool2d(x), shape[2] * shape[3])


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 1, 1, 1), (1, 17, 33, 9)],
                         ids=["2x3x7x5", "1x1x1x1", "1x17x33x9"])
def test_global_avg_pool2d_backward(shape, rng):
    grad_out = randn(rng, shape[:2] + (1, 1))
    gx = pyconvx.global_avg_pool2d_backward(grad_out, shape)
    assert_output_array(gx, shape)
    ref.assert_close(gx, ref.global_avg_pool2d_backward(grad_out, shape))


def test_global_avg_pool2d_equals_avg_pool_with_full_kernel(rng):
    x = randn(rng, (2, 3, 6, 4))
    ref.assert_close(pyconvx.global_avg_pool2d(x), pyconvx.avg_pool2d(x, (6, 4)), 24)


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", INPUT_VARIANTS)
def test_pools_accept_any_layout_and_leave_inputs_alone(variant, rng):
    x = randn(rng, (2, 3, 8, 7))
    kw = dict(kernel_size=3, stride=2, padding=1)
    want_max, want_idx = pyconvx.max_pool2d(x, return_indices=True, **kw)
    want_avg = pyconvx.avg_pool2d(x, **kw)
    want_gap = pyconvx.global_avg_pool2d(x)
    grad_out = randn(rng, want_max.shape)
    want_gmax = pyconvx.max_pool2d_backward(grad_out, x, **kw)
    want_gavg = pyconvx.avg_pool2d_backward(grad_out, x.shape, **kw)

    xv = as_variant(x, variant)
    gv = as_variant(grad_out, variant)
    saved_x, saved_g = snapshot(xv), snapshot(gv)
    y, idx = pyconvx.max_pool2d(xv, return_indices=True, **kw)
    results = {
        "max": (y, want_max),
        "avg": (pyconvx.avg_pool2d(xv, **kw), want_avg),
        "global": (pyconvx.global_avg_pool2d(xv), want_gap),
        "max_backward": (pyconvx.max_pool2d_backward(gv, xv, **kw), want_gmax),
        "avg_backward": (pyconvx.avg_pool2d_backward(gv, x.shape, **kw), want_gavg),
    }
    np.testing.assert_array_equal(idx, want_idx)
    for name, (got, want) in results.items():
        assert_output_array(got, want.shape)
        ref.assert_close(got, want, 9, name)
    assert_unchanged(xv, saved_x)
    assert_unchanged(gv, saved_g)


def test_max_pool2d_backward_accepts_indices_in_other_layouts(rng):
    x = randn(rng, (1, 2, 6, 6))
    y, idx = pyconvx.max_pool2d(x, 2, return_indices=True)
    grad_out = randn(rng, y.shape)
    want = pyconvx.max_pool2d_backward(grad_out, x, 2, indices=idx)
    for variant in [v for v in INPUT_VARIANTS if v != "float64"]:  # float indices are refused
        iv = as_variant(idx, variant)
        saved = snapshot(iv)
        np.testing.assert_array_equal(pyconvx.max_pool2d_backward(grad_out, x, 2, indices=iv), want)
        assert_unchanged(iv, saved)


def test_pools_zero_batch():
    x = np.zeros((0, 3, 8, 7), dtype=np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1)
    y, idx = pyconvx.max_pool2d(x, return_indices=True, **kw)
    assert_output_array(y, (0, 3, 4, 4))
    assert idx.shape == (0, 3, 4, 4) and idx.dtype == np.int64
    assert_output_array(pyconvx.avg_pool2d(x, **kw), (0, 3, 4, 4))
    assert_output_array(pyconvx.global_avg_pool2d(x), (0, 3, 1, 1))
    g = np.zeros((0, 3, 4, 4), dtype=np.float32)
    assert_output_array(pyconvx.max_pool2d_backward(g, x, **kw), x.shape)
    assert_output_array(pyconvx.avg_pool2d_backward(g, x.shape, **kw), x.shape)
    assert_output_array(pyconvx.global_avg_pool2d_backward(np.zeros((0, 3, 1, 1)), x.shape), x.shape)


@pytest.mark.parametrize("k", [2**31, 2**32, 2**40], ids=["2^31", "2^32", "2^40"])
def test_avg_pool2d_huge_window_divisor_does_not_overflow(k):
    """A k x k window (padding k/2) holds k*k elements, which for k >= 2^32 overflows 64 bits.
    Acceptable: a ValueError (a count that overflows), or the exact mean sum / (k*k).
    Not acceptable: a wrapped-around divisor (inf, nan or a wrong value)."""
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    grad_out = np.ones((1, 1, 1, 1), dtype=np.float32)
    try:
        y = pyconvx.avg_pool2d(x, k, padding=k // 2, count_include_pad=True)
        gx = pyconvx.avg_pool2d_backward(grad_out, x.shape, k, padding=k // 2, count_include_pad=True)
    except ValueError:
        return
    assert y.shape == (1, 1, 1, 1) and gx.shape == x.shape
    np.testing.assert_allclose(y, 16.0 / (float(k) * float(k)), rtol=1e-5)
    np.testing.assert_allclose(gx, np.full(x.shape, 1.0 / (float(k) * float(k))), rtol=1e-5)


# Windows that tile the input exactly (stride = kernel, no padding) take a path of their own:
# 2x2 four outputs at a time, other kernels value by value, rows not a multiple of four.
@pytest.mark.parametrize("shape, kernel", [((3, 5, 28, 28), 2), ((2, 3, 10, 22), 2), ((2, 2, 9, 12), 3),
                                           ((1, 4, 6, 9), (2, 3)), ((2, 3, 4, 8), (1, 2))])
def test_avg_pool2d_exact_tiling_matches_reference(shape, kernel, rng, restore_threads):
    x = rng.standard_normal(shape).astype(np.float32)
    want = ref.avg_pool2d(x, kernel)
    g = rng.standard_normal(want.shape).astype(np.float32)
    want_gx = ref.avg_pool2d_backward(g, x.shape, kernel)
    for threads in (1, 2):
        pyconvx.set_num_threads(threads)
        ref.assert_close(pyconvx.avg_pool2d(x, kernel), want, 9)
        ref.assert_close(pyconvx.avg_pool2d_backward(g, x.shape, kernel), want_gx, 1)


# Uneven padding (top, bottom, left, right): Keras' "same" splits, checked against pooling an
# explicitly padded copy.
@pytest.mark.parametrize("shape, kernel, stride, pads", [
    ((2, 3, 7, 9), 2, 2, (0, 1, 0, 1)), ((1, 2, 6, 5), 3, 1, (1, 1, 1, 1)), ((2, 1, 8, 7), 3, 2, (1, 0, 1, 1)),
    ((1, 2, 5, 5), (2, 3), (1, 2), (1, 0, 0, 1)),
])
def test_uneven_padding_matches_pooling_a_padded_copy(shape, kernel, stride, pads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    top, bottom, left, right = pads
    padded = lambda a, value: np.pad(a, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)  # noqa
    ref.assert_close(pyconvx.max_pool2d(x, kernel, stride, pads), ref.max_pool2d(padded(x, -np.inf), kernel, stride)[0])
    ref.assert_close(pyconvx.avg_pool2d(x, kernel, stride, pads), ref.avg_pool2d(padded(x, 0.0), kernel, stride), 9)
    sums = ref.avg_pool2d(padded(x, 0.0), kernel, stride)
    counts = ref.avg_pool2d(padded(np.ones_like(x), 0.0), kernel, stride)
    ref.assert_close(pyconvx.avg_pool2d(x, kernel, stride, pads, count_include_pad=False), sums / counts, 9)
    # the backward passes are the adjoints of the forward ones
    for count_include_pad in (True, False):
        y = pyconvx.avg_pool2d(x, kernel, stride, pads, count_include_pad=count_include_pad)
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx = pyconvx.avg_pool2d_backward(g, x.shape, kernel, stride, pads, count_include_pad=count_include_pad)
        assert float((y.astype(np.float64) * g).sum()) == pytest.approx(float((x.astype(np.float64) * gx).sum()),
                                                                         rel=1e-4, abs=1e-4)
    y, indices = pyconvx.max_pool2d(x, kernel, stride, pads, return_indices=True)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, indices.reshape(flat.shape[:2] + (-1,)), 2), y.reshape(
        flat.shape[:2] + (-1,)))  # each index points at its window's maximum
    g = rng.standard_normal(y.shape).astype(np.float32)
    ref.assert_close(pyconvx.max_pool2d_backward(g, x, kernel, stride, pads, indices=indices),
                     ref.max_pool2d_backward(g, x.shape, indices))


def test_uneven_padding_past_half_the_kernel_names_all_four_sides():
    with pytest.raises(ValueError, match=r"at most half the kernel size, got padding \(top, bottom, left, right\)="
                                         r"\(0, 2, 0, 0\) with kernel_size=\(3, 3\)"):
        pyconvx.max_pool2d(np.zeros((1, 1, 6, 6), np.float32), 3, 1, (0, 2, 0, 0))


def test_max_pool2d_backward_with_indices_needs_only_the_input_shape(rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    y, indices = pyconvx.max_pool2d(x, 3, 2, 1, return_indices=True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    from_input = pyconvx.max_pool2d_backward(g, x, 3, 2, 1, indices=indices)
    np.testing.assert_array_equal(pyconvx.max_pool2d_backward(g, x.shape, 3, 2, 1, indices=indices), from_input)
    with pytest.raises(ValueError, match="grad_out"):
        pyconvx.max_pool2d_backward(g, (2, 3, 9, 6), 3, 2, 1, indices=indices)
