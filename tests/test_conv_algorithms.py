"""Every forward algorithm conv2d can run, forced by name, against the float64 reference."""

import numpy as np
import pytest

import pyconvx
import reference as ref
from conftest import GUARD_PAGE_HELPER

CASES = [pytest.param(c, id=c.id) for c in ref.CONV_CASES]
FORCED = [a for a in pyconvx.CONV_ALGORITHMS if a != "auto"]


def forced_conv(case, x, w, b, algorithm):
    """The forced algorithm's output, or None where it cannot compute the case."""
    try:
        return pyconvx.conv2d(x, w, b, activation=case.activation, algorithm=algorithm, **case.kwargs())
    except ValueError as error:
        assert "cannot compute this convolution" in str(error)
        return None


@pytest.mark.parametrize("algorithm", FORCED)
def test_algorithm_matches_reference_on_every_case_it_accepts(algorithm):
    rng = np.random.default_rng(7)
    accepted = 0
    for case in ref.CONV_CASES:
        x, w, b = case.make(rng)
        y = forced_conv(case, x, w, b, algorithm)
        if y is None:
            continue
        accepted += 1
        want = ref.conv2d(x, w, b, activation=case.activation, **case.kwargs())
        ref.assert_close(y, want, case.fwd_reduction(), f"{algorithm} on {case.id}")
    assert accepted > 0, f"no case in the grid exercises {algorithm}"


@pytest.mark.parametrize("case", CASES)
def test_auto_picks_an_algorithm_that_accepts_the_shape(case, rng):
    x, w, b = case.make(rng)
    chosen = pyconvx.conv2d_algorithm(x.shape, w.shape, **case.kwargs())
    assert chosen in FORCED
    forced = forced_conv(case, x, w, b, chosen)
    assert forced is not None
    np.testing.assert_array_equal(forced, pyconvx.conv2d(x, w, b, activation=case.activation, **case.kwargs()))


def test_unknown_algorithm_names_the_parameter_and_the_choices():
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match="algorithm must be one of .*'implicit_gemm'.*got algorithm='fft'"):
        pyconvx.conv2d(x, w, algorithm="fft")
    with pytest.raises(TypeError, match="algorithm"):
        pyconvx.conv2d(x, w, algorithm=3)


def test_forcing_an_algorithm_that_cannot_compute_the_shape_says_why():
    x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match="algorithm='pointwise' cannot compute this convolution: .*1x1"):
        pyconvx.conv2d(x, w, algorithm="pointwise")


def test_heuristic_choices_on_named_shapes():
    assert pyconvx.conv2d_algorithm((8, 64, 56, 56), (256, 64, 1, 1)) == "pointwise"
    assert pyconvx.conv2d_algorithm((8, 256, 56, 56), (64, 256, 1, 1)) == "pointwise"
    assert pyconvx.conv2d_algorithm((8, 256, 56, 56), (512, 256, 1, 1), stride=2) == "implicit_gemm"
    # Few input channels, a long enough reduction and a register tile of filters: broadcast.
    nr = {"avx512": 32, "avx2": 16, "generic": 8}[pyconvx.cpu_info()["active"]]
    assert pyconvx.conv2d_algorithm((8, 3, 227, 227), (96, 3, 11, 11), stride=4) == "broadcast"
    assert pyconvx.conv2d_algorithm((8, 16, 28, 28), (32, 16, 5, 5), padding=2) == "broadcast"
    assert pyconvx.conv2d_algorithm((64, 6, 14, 14), (nr, 6, 5, 5)) == "broadcast"
    # LeNet-5's conv3: its 16 filters fill the tile taken for them (AVX-512's 10 x 16).
    assert pyconvx.conv2d_algorithm((64, 6, 14, 14), (16, 6, 5, 5)) == "broadcast"
    # A tile narrower than the widest (AVX-512's 16 filters) and a long reduction: direct, unless
    # the CPU runs one 512-bit FMA a cycle (Zen 4), where the narrow tile keeps up.
    inception_5x5_grad_input = pyconvx.conv2d_algorithm((8, 32, 28, 28), (16, 32, 5, 5), padding=2)
    narrow_tile_slower = nr > 16 and not pyconvx.cpu_info()["split_512bit_fma"]
    assert inception_5x5_grad_input == ("direct" if narrow_tile_slower else "broadcast")
    assert pyconvx.conv2d_algorithm((64, 1, 32, 32), (6, 1, 5, 5)) == "direct"  # 6 filters
    assert pyconvx.conv2d_algorithm((8, 3, 224, 224), (64, 3, 3, 3), padding=1) == "direct"  # 27 taps
    assert pyconvx.conv2d_algorithm((8, 256, 56, 56), (256, 256, 3, 3), padding=1) == "winograd"
    assert pyconvx.conv2d_algorithm((32, 512, 7, 7), (512, 512, 3, 3), padding=1) == "winograd"
    # Winograd needs 32 channels in and out, and a few dozen tiles to spread its filter transform.
    assert pyconvx.conv2d_algorithm((8, 32, 56, 56), (32, 32, 3, 3), padding=1) == "winograd"
    assert pyconvx.conv2d_algorithm((8, 16, 56, 56), (32, 16, 3, 3), padding=1) != "winograd"
    assert pyconvx.conv2d_algorithm((1, 512, 7, 7), (512, 512, 3, 3), padding=1) == "direct"
    assert pyconvx.conv2d_algorithm((8, 64, 56, 56), (64, 64, 3, 3), padding=1, dilation=2) == "direct"
    # groups = C, whatever the stride and the filters per channel; one channel is a plain layer.
    assert pyconvx.conv2d_algorithm((8, 32, 112, 112), (32, 1, 3, 3), padding=1, groups=32) == "depthwise"
    assert pyconvx.conv2d_algorithm((8, 32, 112, 112), (64, 1, 5, 5), stride=2, groups=32) == "depthwise"
    assert pyconvx.conv2d_algorithm((64, 1, 32, 32), (6, 1, 5, 5)) == "direct"
    # Strided with a spatial filter: broadcast up to 256 channels, direct beyond; 1x1 packs patches.
    assert pyconvx.conv2d_algorithm((8, 128, 56, 56), (128, 128, 3, 3), stride=2, padding=1) == "broadcast"
    assert pyconvx.conv2d_algorithm((8, 256, 28, 28), (256, 256, 3, 3), stride=2, padding=1) == "broadcast"
    assert pyconvx.conv2d_algorithm((8, 512, 14, 14), (512, 512, 3, 3), stride=2, padding=1) == "direct"
    # Strided, too few filters to broadcast against: direct on the band split by stride phase.
    assert pyconvx.conv2d_algorithm((64, 1, 32, 32), (6, 1, 5, 5), stride=2) == "direct"
    assert pyconvx.conv2d_algorithm((8, 3, 224, 224), (6, 3, 7, 7), stride=2, padding=3) == "direct"
    # Filters covering the whole image: one GEMM over the batch (LeNet-5's C5, VGG's fc6 as a conv),
    # the images as its columns, or for a lone image as its one row; 1x1 layers on 1x1 maps
    # (squeeze-and-excitation) too, never one pointwise GEMM per image.
    assert pyconvx.conv2d_algorithm((64, 16, 5, 5), (120, 16, 5, 5)) == "implicit_gemm"
    assert pyconvx.conv2d_algorithm((2, 512, 7, 7), (4096, 512, 7, 7)) == "implicit_gemm"
    assert pyconvx.conv2d_algorithm((1, 512, 7, 7), (4096, 512, 7, 7)) == "pixel_gemm"
    assert pyconvx.conv2d_algorithm((8, 64, 1, 1), (256, 64, 1, 1)) == "implicit_gemm"
    assert pyconvx.conv2d_algorithm((1, 64, 1, 1), (256, 64, 1, 1)) == "pixel_gemm"


@pytest.mark.parametrize("n, c, size, k, stride, relu", [(37, 16, 5, 120, 1, True), (1, 3, 4, 5, 3, False),
                                                         (5, 7, 1, 33, 2, True)])
def test_filters_covering_the_whole_image_match_the_reference(n, c, size, k, stride, relu, restore_threads):
    rng = np.random.default_rng(43)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = rng.standard_normal((k, c, size, size)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    activation = "relu" if relu else None
    want = ref.conv2d(x, w, b, stride=stride, activation=activation)
    for threads in (1, 2):
        pyconvx.set_num_threads(threads)
        y = pyconvx.conv2d(x, w, b, stride=stride, activation=activation)
        ref.assert_close(y, want, c * size * size, f"{threads} threads")


def test_direct_handles_dilation_groups_and_asymmetric_padding(rng):
    x = rng.standard_normal((2, 6, 13, 11)).astype(np.float32)
    w = rng.standard_normal((9, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    kwargs = dict(dilation=(2, 3), groups=3, padding="same")
    y = pyconvx.conv2d(x, w, b, algorithm="direct", activation="relu", **kwargs)
    want = ref.conv2d(x, w, b, activation="relu", **kwargs)
    ref.assert_close(y, want, 2 * 3 * 2)


@pytest.mark.parametrize("stride, padding, dilation", [((2, 3), (3, 1, 2, 4), 1), (4, 0, 1), (2, 2, (2, 1)), (5, 1, 1)])
def test_strided_direct_matches_the_reference_across_chunks_and_phases(stride, padding, dilation, restore_threads):
    # An image large enough for several chunks (band planes) per image, strides and pads that put
    # the first column of each phase on either side of the left edge, and a stride above the kernel.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 61, 67)).astype(np.float32)
    w = rng.standard_normal((10, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    want = ref.conv2d(x, w, b, activation="relu", **kwargs)
    for threads in (1, 2):
        pyconvx.set_num_threads(threads)
        y = pyconvx.conv2d(x, w, b, algorithm="direct", activation="relu", **kwargs)
        ref.assert_close(y, want, 3 * 4 * 5, f"{threads} threads")


def test_measure_conv_algorithms_times_every_algorithm_that_applies():
    w = np.random.default_rng(0).standard_normal((32, 16, 3, 3)).astype(np.float32)
    times = pyconvx.measure_conv_algorithms((2, 16, 12, 12), w, padding=1)
    assert next(iter(times)) == pyconvx.conv2d_algorithm((2, 16, 12, 12), w.shape, padding=1)
    # 3x3, stride 1, one group: everything but the 1x1 and depthwise algorithms.
    assert set(times) == {"implicit_gemm", "direct", "winograd", "broadcast", "pixel_gemm"}
    assert all(ms > 0 for ms in times.values())
    depthwise = pyconvx.measure_conv_algorithms((1, 8, 9, 9), np.ones((8, 1, 3, 3)), padding=1, groups=8)
    assert set(depthwise) == {"depthwise", "implicit_gemm", "direct"}
    assert pyconvx.measure_conv_algorithms((0, 16, 12, 12), w, padding=1) == {}
    with pytest.raises(ValueError, match="16 input channels.*C=3"):
        pyconvx.measure_conv_algorithms((1, 3, 12, 12), w)


@pytest.mark.parametrize("n, c, h, w, k", [(3, 5, 7, 9, 13), (2, 3, 4, 5, 20), (1, 16, 1, 3, 7)])
def test_direct_1x1_reads_the_image_in_place_up_to_the_end_of_x(n, c, h, w, k):
    # A 1x1 unpadded layer's band is the image itself; the last chunk of the last image, whose
    # last sliver would read past the end of x, is copied. Every image and plane size checked,
    # x ending exactly at the end of its allocation.
    rng = np.random.default_rng(n * 100 + k)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((k, c, 1, 1)).astype(np.float32)
    y = pyconvx.conv2d(x, weight, algorithm="direct")
    ref.assert_close(y, ref.conv2d(x, weight), c, "direct 1x1")


# The algorithms that read x in place (direct and pixel_gemm on 1x1 unpadded layers and on filters
# covering the whole image; depthwise splitting stride-2 rows) must read no float past x: with
# x's last float the last of its memory page and the next page unreadable, such a read would
# crash. (In a child process, so that a crash fails this test only.) 1x1 maps with few channels
# and several images: there the last vector of one image's last channel reads into the next
# images, and past x from images before the last one.
GUARD_PAGE_FORWARD = GUARD_PAGE_HELPER + """
import pyconvx
rng = np.random.default_rng(0)
cases = [((4, 4, 1, 1), (3, 4, 1, 1), {}, ("direct", "pixel_gemm")),
         ((32, 5, 1, 1), (7, 5, 1, 1), {}, ("direct", "pixel_gemm")),
         ((7, 3, 1, 1), (2, 3, 1, 1), {}, ("direct", "pixel_gemm")),
         ((3, 3, 5, 7), (40, 3, 1, 1), {}, ("direct", "pixel_gemm")),
         ((5, 2, 3, 3), (6, 2, 3, 3), {}, ("pixel_gemm", "implicit_gemm")),
         ((2, 3, 9, 13), (3, 1, 3, 3), dict(stride=2, padding=1, groups=3), ("depthwise",)),
         ((1, 2, 6, 8), (2, 1, 3, 3), dict(stride=2, groups=2), ("depthwise",))]
for x_shape, w_shape, kw, algorithms in cases:
    x = guarded(x_shape)
    x[...] = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape).astype(np.float32)
    for algorithm in algorithms:
        for threads in (1, 2, 3):
            pyconvx.set_num_threads(threads)
            got = pyconvx.conv2d(x, w, algorithm=algorithm, **kw)
            want = pyconvx.conv2d(x.copy(), w, algorithm="implicit_gemm", **kw)
            assert np.allclose(got, want, rtol=1e-5, atol=1e-5), (x_shape, algorithm, threads)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="mprotect through libc")
def test_in_place_readers_read_no_float_past_x(tmp_path):
    import subprocess
    import sys

    # Run from an empty folder: from a source checkout, `-c` would import its unbuilt package.
    done = subprocess.run([sys.executable, "-c", GUARD_PAGE_FORWARD], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, f"exit code {done.returncode}: {done.stderr[-2000:]}"

