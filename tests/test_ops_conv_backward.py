"""pyconvx.conv2d_backward against the float64 NumPy reference."""

import itertools
import subprocess
import sys

import numpy as np
import pytest

import pyconvx
import reference as ref
from conftest import GUARD_PAGE_HELPER, INPUT_VARIANTS, as_variant, assert_output_array, assert_unchanged, snapshot

CASES = [pytest.param(c, id=c.id) for c in ref.CONV_CASES]


def make_backward_inputs(case, rng):
    x, w, _ = case.make(rng)
    grad_out = rng.standard_normal(case.out_shape()).astype(np.float32)
    return grad_out, x, w


@pytest.mark.parametrize("case", CASES)
def test_conv2d_backward_matches_reference(case, rng):
    # The activation of the case is irrelevant here: the backward is that of the plain conv.
    grad_out, x, w = make_backward_inputs(case, rng)
    gx, gw, gb = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    want_gx, want_gw, want_gb = ref.conv2d_backward(grad_out, x, w, **case.kwargs())
    assert_output_array(gx, x.shape)
    assert_output_array(gw, w.shape)
    assert_output_array(gb, (case.k,))
    case.assert_backward_close((gx, gw, gb), (want_gx, want_gw, want_gb))


NEEDS = [n for n in itertools.product([True, False], repeat=3)]


@pytest.mark.parametrize("needs", NEEDS, ids=["".join("xwb"[i] if f else "-" for i, f in enumerate(n)) for n in NEEDS])
def test_needs_selects_the_returned_gradients(needs, rng):
    case = ref.ConvCase("needs", 2, 4, 7, 6, 6, 3, 2, stride=2, padding=1, groups=2)
    grad_out, x, w = make_backward_inputs(case, rng)
    full = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    part = pyconvx.conv2d_backward(grad_out, x, w, needs=needs, **case.kwargs())
    assert isinstance(part, tuple) and len(part) == 3
    for wanted, got, expected in zip(needs, part, full):
        if wanted:
            assert got is not None
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        else:
            assert got is None


def test_backward_is_the_adjoint_of_forward(rng):
    """<conv(x, w) + b, g> is linear in each argument, so its gradients give it back exactly:
    <x, grad_x> = <w, grad_w> = <conv(x, w), g> and <b, grad_b> = sum(g * b)."""
    case = ref.ConvCase("adjoint", 2, 3, 9, 8, 4, 3, 3, stride=2, padding=(1, 2), dilation=(1, 2))
    grad_out, x, w = make_backward_inputs(case, rng)
    y = pyconvx.conv2d(x, w, **case.kwargs()).astype(np.float64)
    gx, gw, gb = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    inner = float((y * grad_out).sum())
    scale = float(np.abs(y * grad_out).sum())
    assert abs(float((x.astype(np.float64) * gx).sum()) - inner) <= 1e-4 * scale
    assert abs(float((w.astype(np.float64) * gw).sum()) - inner) <= 1e-4 * scale
    np.testing.assert_allclose(gb, grad_out.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", INPUT_VARIANTS)
def test_backward_accepts_any_layout_and_leaves_inputs_alone(variant, rng):
    case = ref.ConvCase("handling", 2, 4, 8, 7, 6, 3, 2, stride=(2, 1), padding=1, groups=2)
    grad_out, x, w = make_backward_inputs(case, rng)
    expected = pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs())
    args = [as_variant(a, variant) for a in (grad_out, x, w)]
    saved = [snapshot(a) for a in args]
    got = pyconvx.conv2d_backward(*args, **case.kwargs())
    for g, e in zip(got, expected):
        assert_output_array(g, e.shape)
    case.assert_backward_close(got, expected, f" ({variant})")
    for a, before in zip(args, saved):
        assert_unchanged(a, before)


def test_backward_zero_batch(rng):
    case = ref.ConvCase("empty", 0, 3, 6, 5, 4, 3, 3, padding=1)
    _, w, _ = case.make(rng)
    x = np.zeros(case.x_shape, dtype=np.float32)
    grad_out = np.zeros(case.out_shape(), dtype=np.float32)
    gx, gw, gb = pyconvx.conv2d_backward(grad_out, x, w, padding=1)
    assert_output_array(gx, x.shape)
    assert_output_array(gw, w.shape)
    assert_output_array(gb, (4,))
    # Nothing contributes to the weight and bias gradients: they are exact zeros.
    assert not gw.any() and not gb.any()


# The weight gradient packs its B panels from a zero-padded copy of the images split into
# stride phases, four output pixels by four taps at a time; these cases reach every corner of
# that copy.
WEIGHT_PACKING_CASES = [
    # Rows of 45 cross KC slices and image boundaries; padded edges on every side.
    ref.ConvCase("long_rows_pad", 3, 5, 9, 45, 7, 3, 5, padding=(1, 2)),
    ref.ConvCase("long_rows_dilated", 2, 3, 11, 40, 18, 3, 3, dilation=(1, 3), padding=(1, 3)),
    ref.ConvCase("long_rows_1x1", 2, 21, 4, 33, 9, 1, 1),
    # Strides with a dilation (every phase read) and asymmetric padding.
    ref.ConvCase("strided_dilated", 3, 4, 23, 29, 6, 3, 3, stride=(3, 2), dilation=(2, 1), padding=(2, 1, 0, 3)),
    # Kernels narrower than the stride: only the phases the taps read are copied.
    ref.ConvCase("narrow_kernel_1x1_s2", 2, 6, 13, 17, 8, 1, 1, stride=2),
    ref.ConvCase("narrow_kernel_2x2_s3", 2, 5, 20, 22, 8, 2, 2, stride=3, padding=1),
    # Output rows of 1-3 pixels: every run is shorter than a 4 x 4 block.
    ref.ConvCase("short_rows", 9, 7, 6, 4, 10, 3, 3, padding=(1, 0)),
    ref.ConvCase("one_column", 11, 3, 7, 3, 5, 3, 3, stride=(1, 2)),
    # AlexNet's first layer in small: 11x11 taps at stride 4 over three channels.
    ref.ConvCase("alexnet_like", 2, 3, 39, 43, 16, 11, 11, stride=4),
    # Unpadded stride-1 layers, read in place (more than 32 filters: the GEMM form): one tile
    # over five images, rows of 15 (runs that end between 4 x 4 blocks), a dilation, groups.
    ref.ConvCase("in_place_1x1", 5, 20, 13, 15, 40, 1, 1),
    ref.ConvCase("in_place_dilated", 3, 6, 14, 17, 36, 3, 3, dilation=2),
    ref.ConvCase("in_place_groups", 4, 8, 9, 11, 68, 3, 3, groups=2),
]


@pytest.mark.parametrize("case", WEIGHT_PACKING_CASES, ids=lambda c: c.id)
def test_weight_gradient_packing_matches_reference(case, rng):
    grad_out, x, w = make_backward_inputs(case, rng)
    _, gw, _ = pyconvx.conv2d_backward(grad_out, x, w, needs=(False, True, False), **case.kwargs())
    _, want_gw, _ = ref.conv2d_backward(grad_out, x, w, **case.kwargs())
    ref.assert_close(gw, want_gw, case.grad_w_reduction(), case.id)


# An unpadded stride-1 layer's weight gradient reads x in place, four pixels at a time, up to 3
# past an output row: with x's last float the last of its memory page and the next page
# unreadable, a read past x would crash. (In a child process, so that a crash fails this test
# only.) Output rows of 7 and 5 pixels, on 1-3 threads (a thread's last image is x's last).
GUARD_PAGE_SCRIPT = GUARD_PAGE_HELPER + """
import pyconvx
rng = np.random.default_rng(0)
for x_shape, w_shape, dilation in (((3, 3, 5, 7), (40, 3, 1, 1), 1), ((3, 2, 9, 9), (36, 2, 3, 3), 2)):
    x = guarded(x_shape)
    x[...] = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape).astype(np.float32)
    y = pyconvx.conv2d(x, w, dilation=dilation)
    g = rng.standard_normal(y.shape).astype(np.float32)
    for threads in (1, 2, 3):
        pyconvx.set_num_threads(threads)
        _, gw, _ = pyconvx.conv2d_backward(g, x, w, dilation=dilation, needs=(False, True, False))
        _, want, _ = pyconvx.conv2d_backward(g, x.copy(), w, dilation=dilation, needs=(False, True, False))
        assert np.array_equal(gw, want), (x_shape, threads)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through libc")
def test_weight_gradient_reads_no_float_past_x(tmp_path):
    # Run from an empty folder: from a source checkout, `-c` would import its unbuilt package.
    done = subprocess.run([sys.executable, "-c", GUARD_PAGE_SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, f"exit code {done.returncode}: {done.stderr[-2000:]}"


# Filters as large as the image (or nearly): grad input runs as a GEMM whose columns are the
# output pixels of several images at once, scattered back image by image.
SMALL_OUTPUT_CASES = [
    # LeNet-5's last convolution: one output pixel per image, 64 images to a GEMM.
    ref.ConvCase("one_pixel", 37, 16, 5, 5, 120, 5, 5),
    # Six pixels per image: tiles of columns that start and end inside images; two groups.
    ref.ConvCase("six_pixels_groups", 9, 6, 4, 5, 10, 3, 3, groups=2),
    # Padding and a stride, three threads' worth of images.
    ref.ConvCase("strided", 5, 4, 7, 7, 8, 5, 5, stride=2, padding=1),
]


def assert_close_on_each_thread_count(case, needs):
    """The gradients `needs` selects (grad x, grad w, grad bias) against the reference on 1-3 threads."""
    x, w, _ = case.make(np.random.default_rng(41))
    g = np.random.default_rng(42).standard_normal(case.out_shape()).astype(np.float32)
    want = ref.conv2d_backward(g, x, w, **case.kwargs())
    reductions = (case.grad_x_reduction(), case.grad_w_reduction(), case.grad_w_reduction())
    for threads in (1, 2, 3):
        pyconvx.set_num_threads(threads)
        got = pyconvx.conv2d_backward(g, x, w, needs=needs, **case.kwargs())
        for name, wanted, have, got_one, reduction in zip(("grad x", "grad weight", "grad bias"), needs, want, got,
                                                           reductions):
            if wanted:
                ref.assert_close(got_one, have, reduction, f"{case.id} {name}, {threads} threads")


@pytest.mark.parametrize("case", SMALL_OUTPUT_CASES, ids=lambda c: c.id)
def test_grad_input_of_small_outputs_matches_reference(case, restore_threads):
    assert_close_on_each_thread_count(case, needs=(True, False, True))


# Stride-1 grad input on either side of the choice between a convolution of grad_Y and the GEMM
# form: the image 1.36 and 1.44 times the output (either side of the 1.4 limit), LeNet-5's two
# layers (1 channel; 6 channels at 1.96), 3 channels without growth, and a grouped layer at 2.25
# (convolution there up to 3 times).
GRAD_INPUT_FORM_CASES = [
    ref.ConvCase("area_1_36", 2, 8, 28, 28, 16, 5, 5),
    ref.ConvCase("area_1_44", 3, 16, 12, 12, 32, 3, 3),
    ref.ConvCase("lenet_conv1", 4, 1, 32, 32, 6, 5, 5),
    ref.ConvCase("lenet_conv3", 4, 6, 14, 14, 16, 5, 5),
    ref.ConvCase("three_channels_same", 2, 3, 11, 13, 20, 3, 3, padding=1),
    ref.ConvCase("grouped_area_2_25", 2, 8, 6, 6, 12, 3, 3, groups=4),
]


@pytest.mark.parametrize("case", GRAD_INPUT_FORM_CASES, ids=lambda c: c.id)
def test_grad_input_on_either_side_of_the_convolution_limit_matches_reference(case, restore_threads):
    assert_close_on_each_thread_count(case, needs=(True, False, False))


# Weight gradients over 1 MiB: the threads share each GEMM (columns of grad W) instead of
# summing copies of their own; reductions of 567 pixels cross a KC slice (512 on AVX-512, 256 on
# AVX2) and image boundaries.
LARGE_WEIGHT_CASES = [
    ref.ConvCase("large_weight", 7, 512, 9, 9, 66, 3, 3, padding=1),
    ref.ConvCase("large_weight_groups", 7, 512, 9, 9, 130, 3, 3, padding=1, groups=2),
]


@pytest.mark.parametrize("case", LARGE_WEIGHT_CASES, ids=lambda c: c.id)
def test_large_weight_gradient_matches_reference(case, restore_threads):
    assert np.prod(case.w_shape) * np.dtype(np.float32).itemsize > 1 << 20
    assert_close_on_each_thread_count(case, needs=(False, True, False))


# 512 filters and a 27-column patch matrix: reduction tiles of 576 pixels, which start inside an
# image and inside an output row and span two images (23 x 23 output pixels) or four, two or
# three of them whole (13 x 13).
@pytest.mark.parametrize(
    "case",
    [
        ref.ConvCase("pixel_tiles", 6, 3, 23, 25, 512, 3, 3, padding=(1, 0)),
        ref.ConvCase("pixel_tiles_small_images", 8, 3, 13, 15, 512, 3, 3, padding=(1, 0)),
        ref.ConvCase("pixel_tiles_in_place", 8, 3, 13, 13, 512, 1, 1),
    ],
    ids=lambda c: c.id,
)
def test_weight_gradient_over_several_pixel_tiles_matches_reference(case, restore_threads):
    assert case.n * case.out_shape()[2] * case.out_shape()[3] > 2 * 576
    assert_close_on_each_thread_count(case, needs=(False, True, False))
