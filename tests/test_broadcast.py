"""The broadcast algorithm (input pixels broadcast against vectors of filters) and its weight
gradient (channels broadcast against filters' output gradients): the edges of their pixel strips,
channel blocks, filter slivers, bands and reductions, against the float64 reference."""
import numpy as np
import pytest

import pyconvx
import reference as ref

CASES = [
    # ResNet's first layer in small: stride 2, padding 3, strips of pixels past the right edge.
    ref.ConvCase("7x7_s2_p3", 2, 3, 29, 31, 20, 7, 7, stride=2, padding=3, activation="relu"),
    # AlexNet's: 11x11 at stride 4, no padding, filters not a multiple of a sliver.
    ref.ConvCase("11x11_s4", 1, 3, 39, 43, 37, 11, 11, stride=4),
    # Stride and padding that differ between the axes, dilation, one output row per image.
    ref.ConvCase("pairs_dilated", 3, 5, 9, 40, 17, 3, 4, stride=(1, 3), padding=(0, 2), dilation=(2, 1)),
    # Stride 1 with "same" padding and an even kernel, no bias.
    ref.ConvCase("same_even", 2, 16, 12, 12, 33, 4, 4, padding="same", bias=False),
    # A single output pixel, fewer filters than a sliver.
    ref.ConvCase("one_pixel", 1, 2, 5, 5, 3, 5, 5),
    # Output rows of 28 pixels and 32 filters: on AVX-512 the 14-row tile, which fits them exactly.
    ref.ConvCase("rows_of_28", 2, 16, 28, 28, 32, 5, 5, padding=2),
    # LeNet-5's conv3: rows of 10 pixels, 16 filters: on AVX-512 the 10 x 16 tile.
    ref.ConvCase("lenet_c3", 3, 6, 14, 14, 16, 5, 5, activation="relu"),
    # 20 pixels a row and 16 filters (two 10-pixel strips), 17 (a second sliver of one filter).
    ref.ConvCase("rows_of_20", 2, 5, 24, 24, 17, 5, 5),
    # 40 filters: on AVX-512 slivers of 16 (48 columns rather than 64 in slivers of 32).
    ref.ConvCase("slivers_of_16", 2, 8, 15, 30, 40, 5, 5, padding=2),
    # Rows of 7, 9 and 13 pixels: the last strip of each row a smaller tile of 1, 2 or 4 rows,
    # with a residual-free ReLU in its registers.
    ref.ConvCase("rows_of_7", 2, 24, 7, 7, 40, 3, 3, padding=1, activation="relu"),
    ref.ConvCase("rows_of_9_and_13", 1, 12, 11, 15, 24, 3, 3, padding=(0, 0)),
    # Weights past half of L2 (256 x 3x3 x 80 filters: 720 KiB): whole images a task, the filter
    # slivers split among the tasks, three images.
    ref.ConvCase("large_weights", 3, 256, 7, 7, 80, 3, 3, padding=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_the_reference(case):
    x, w, b = case.make(np.random.default_rng(31))
    y = pyconvx.conv2d(x, w, b, activation=case.activation, algorithm="broadcast", **case.kwargs())
    want = ref.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    ref.assert_close(y, want, case.fwd_reduction(), case.id)


def test_many_images_and_rows_split_into_tasks(restore_threads):
    rng = np.random.default_rng(32)
    x = rng.standard_normal((5, 4, 37, 23)).astype(np.float32)
    w = rng.standard_normal((24, 4, 3, 3)).astype(np.float32)
    want = ref.conv2d(x, w, stride=2, padding=1)
    for threads in (1, 2, 3):
        pyconvx.set_num_threads(threads)
        y = pyconvx.conv2d(x, w, stride=2, padding=1, algorithm="broadcast")
        ref.assert_close(y, want, 4 * 9, f"{threads} threads")


def test_forcing_it_on_a_grouped_layer_says_why():
    with pytest.raises(ValueError, match="algorithm='broadcast' cannot compute this convolution: .*groups 1"):
        pyconvx.conv2d(np.ones((1, 4, 6, 6), np.float32), np.ones((4, 2, 3, 3), np.float32), groups=2,
                       algorithm="broadcast")


# The weight gradient goes the broadcast way for one group, at most 32 filters and channels that
# fill at least 3/4 of a register tile's rows: every case below qualifies.
GRAD_WEIGHT_CASES = [
    # A whole image's pixels in one chunk.
    ref.ConvCase("one_chunk", 5, 12, 14, 14, 16, 5, 5),
    # LeNet-5's conv3: 6 channels x 16 filters, on AVX-512 the 8 x 16 tile.
    ref.ConvCase("lenet_c3", 3, 6, 14, 14, 16, 5, 5),
    # Inception's 5x5 branch: 28 x 28 pixels split into chunks of rows, padding on every side.
    ref.ConvCase("5x5_pad2_chunks", 2, 16, 28, 28, 32, 5, 5, padding=2),
    # Channels and filters that fill no tile exactly; strides, padding and dilation per axis.
    ref.ConvCase("pairs", 3, 13, 17, 23, 19, 3, 2, stride=(2, 1), padding=(1, 2), dilation=(2, 3)),
    # One image, one output row per chunk (rows wider than a chunk), a single filter.
    ref.ConvCase("one_image_wide_rows", 1, 12, 5, 300, 1, 3, 3, padding=1),
    # 1x1 with stride 2: taps that skip pixels.
    ref.ConvCase("1x1_s2", 2, 24, 9, 9, 7, 1, 1, stride=2),
]


@pytest.mark.parametrize("case", GRAD_WEIGHT_CASES, ids=lambda c: c.id)
def test_grad_weight_matches_the_reference(case, restore_threads):
    x, w, _ = case.make(np.random.default_rng(33))
    g = np.random.default_rng(34).standard_normal(case.out_shape()).astype(np.float32)
    _, want, _ = ref.conv2d_backward(g, x, w, **case.kwargs())
    for threads in (1, 2, 3):  # 3: a thread's share of rows starts and ends inside an image
        pyconvx.set_num_threads(threads)
        _, gw, _ = pyconvx.conv2d_backward(g, x, w, needs=(False, True, False), **case.kwargs())
        ref.assert_close(gw, want, case.grad_w_reduction(), f"{case.id}, {threads} threads")


def test_grad_weight_repeats_bitwise(restore_threads):
    case = GRAD_WEIGHT_CASES[1]
    x, w, _ = case.make(np.random.default_rng(35))
    g = np.random.default_rng(36).standard_normal(case.out_shape()).astype(np.float32)
    pyconvx.set_num_threads(2)
    first = pyconvx.conv2d_backward(g, x, w, needs=(False, True, False), **case.kwargs())[1]
    for _ in range(3):
        again = pyconvx.conv2d_backward(g, x, w, needs=(False, True, False), **case.kwargs())[1]
        np.testing.assert_array_equal(again, first)


def test_an_output_larger_than_the_caches_matches(restore_threads):
    # 48 x 300 x 300 floats (17.3 MB): more than both cores' L2 and a large share of L3, stored
    # strip by strip straight from the micro-kernel, whole vectors overlapping the next strip.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 300, 300)).astype(np.float32)
    w = rng.standard_normal((48, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    want = ref.conv2d(x, w, b, padding=1, activation="relu")
    for threads in (1, 2):
        pyconvx.set_num_threads(threads)
        y = pyconvx.conv2d(x, w, b, padding=1, activation="relu", algorithm="broadcast")
        ref.assert_close(y, want, 27, f"{threads} threads")
