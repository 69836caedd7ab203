"""The broadcast algorithm (input pixels broadcast against vectors of filters): the edges of its
pixel strips, filter slivers, bands and reductions, against the float64 reference."""
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
