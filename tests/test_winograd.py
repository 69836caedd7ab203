"""Winograd F(4x4, 3x3) and F(2x2, 5x5): their rounding error on the benchmark's 3x3 and 5x5
layers, and their edge cases.

Winograd trades multiplications for transforms whose constants (1/4, 1/6, 1/24, 8, ...) add
rounding error that a direct sum does not have, so it gets an explicit error budget: at most
1e-3 relative to the largest output, against the float64 reference, on unit-normal data.
"""
import dataclasses

import numpy as np
import pytest

import pyconvx
import reference as ref
from pyconvx.benchmarks import CONV_TABLE


def relative_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


# Every 3x3 and 5x5 stride-1 layer of the benchmark table, with the batch cut to two images: the
# error per output does not depend on the batch, and the float64 reference stays quick.
TABLE_WINOGRAD = [dataclasses.replace(s, n=min(s.n, 2)) for s in CONV_TABLE if s.r in (3, 5) and s.stride == 1]


def test_the_heuristic_takes_winograd_on_the_tables_3x3_layers_and_wide_5x5_ones():
    assert len(TABLE_WINOGRAD) >= 6
    for spec in TABLE_WINOGRAD:
        full = next(s for s in CONV_TABLE if s.name == spec.name)
        wide = full.c >= 32 and full.k >= 32  # Inception's 5x5 has 16 channels in, LeNet's 1 and 6
        chosen = pyconvx.conv2d_algorithm(full.x_shape, full.w_shape, **full.kwargs)
        assert (chosen == "winograd") == (full.r == 3 or wide), spec.name


@pytest.mark.parametrize("spec", TABLE_WINOGRAD, ids=lambda s: s.name)
def test_error_on_the_table_layers_is_within_1e_3(spec):
    x, w, b, _ = spec.make(np.random.default_rng(3))
    y = pyconvx.conv2d(x, w, b, algorithm="winograd", **spec.kwargs)
    want = ref.conv2d(x, w, b, **spec.kwargs)
    assert relative_error(y, want) <= 1e-3


@pytest.mark.parametrize("case", [
    # Several tile blocks (960 tiles in blocks of a few dozen), the last one partial; C not a
    # multiple of the 4 lanes, K not a multiple of the register tile, outputs not multiples of 4.
    ref.ConvCase("blocks", 4, 66, 58, 61, 70, 3, 3, padding=1, activation="relu"),
    # Large enough U (36 * 256 * 260 floats) for blocks shared by all threads, two of them.
    ref.ConvCase("shared_blocks", 1, 256, 62, 63, 260, 3, 3, padding=1),
    # Padding that differs between the axes, a single image, fewer tiles than lanes.
    ref.ConvCase("pad_0x2", 1, 9, 7, 5, 4, 3, 3, padding=(0, 2)),
    # "same" padding, no bias, one channel in and out.
    ref.ConvCase("same_c1", 2, 1, 9, 10, 1, 3, 3, padding="same", bias=False),
    # Output of exactly one partial tile.
    ref.ConvCase("tiny", 1, 3, 3, 3, 2, 3, 3),
    # F(2x2, 5x5): odd outputs, padding that differs between the axes, bias and ReLU.
    ref.ConvCase("f2x5_edges", 3, 33, 11, 14, 10, 5, 5, padding=(2, 1), activation="relu"),
    ref.ConvCase("f2x5_tiny", 1, 2, 5, 6, 3, 5, 5),
    # F(2x2, 5x5) with U past 8 MiB: blocks shared by all threads, two of them (256 tiles).
    ref.ConvCase("f2x5_shared_blocks", 1, 256, 32, 32, 256, 5, 5, padding=2),
], ids=lambda c: c.id)
def test_edges_match_the_reference(case):
    x, w, b = case.make(np.random.default_rng(11))
    y = pyconvx.conv2d(x, w, b, activation=case.activation, algorithm="winograd", **case.kwargs())
    want = ref.conv2d(x, w, b, activation=case.activation, **case.kwargs())
    ref.assert_close(y, want, case.fwd_reduction(), case.id)


def test_repeated_calls_with_other_shapes_reuse_scratch_safely():
    # The transformed filters and tiles live in scratch kept from call to call: a smaller call
    # after a larger one must not see stale values.
    rng = np.random.default_rng(5)
    for n, c, hw, k in ((2, 64, 20, 96), (1, 8, 9, 5), (2, 64, 20, 96), (3, 17, 6, 7)):
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
        y = pyconvx.conv2d(x, w, padding=1, algorithm="winograd")
        ref.assert_close(y, ref.conv2d(x, w, padding=1), c * 9, f"{(n, c, hw, k)}")


@pytest.mark.parametrize("kwargs, why", [
    (dict(weight=(4, 3, 4, 4)), "3x3 or 5x5"),
    (dict(stride=2), "stride 1"),
    (dict(dilation=2), "dilation 1"),
    (dict(groups=3), "groups 1"),
])
def test_forcing_it_on_other_shapes_says_why(kwargs, why):
    weight = np.ones(kwargs.pop("weight", (6, 3 // kwargs.get("groups", 1), 3, 3)), np.float32)
    x = np.ones((1, 3, 12, 12), np.float32)
    with pytest.raises(ValueError, match=f"algorithm='winograd' cannot compute this convolution: .*{why}"):
        pyconvx.conv2d(x, weight, algorithm="winograd", **kwargs)


def test_layers_whose_filters_would_not_fit_the_workspace_are_refused():
    # Even one sliver of filters (at least four on every path) is 36 transformed 4 x 120000
    # matrices, 66 MiB: past the 64 MiB bound.
    with pytest.raises(ValueError, match="winograd.*64 MiB.*K=4 and C=120000"):
        pyconvx.conv2d(np.ones((1, 120000, 4, 4), np.float32), np.ones((4, 120000, 3, 3), np.float32),
                       padding=1, algorithm="winograd")


def test_wide_layers_transform_their_filters_in_blocks(rng):
    # 36 transformed 1024 x 1024 filter matrices would be 144 MiB; made a block of filters at a
    # time, U and the blocks of V and M stay within 44 MiB.
    x = rng.standard_normal((2, 1024, 6, 6)).astype(np.float32)
    w = rng.standard_normal((1024, 1024, 3, 3)).astype(np.float32)
    pyconvx.reset_workspace_peak()
    y = pyconvx.conv2d(x, w, padding=1, algorithm="winograd")
    assert pyconvx.workspace_usage()["peak_bytes"] <= 44 * 2**20
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    assert np.max(np.abs(y - want)) <= 1e-3 * np.max(np.abs(want))


def test_filters_that_fit_in_8_mib_get_per_thread_blocks_sized_for_l2(restore_threads):
    # 36 * 96 * 256 floats of transformed filters (3.4 MiB): each thread runs blocks of its own
    # that stay in its L2, not one block of up to 16 MiB shared by all (AlexNet conv2 and its
    # grad input ran 30% slower so). The workspace shows which: U plus two small blocks, each at
    # least a register tile wide (32 tiles on the AVX-512 path: 1.6 MiB), against the 16 MiB of
    # this layer's 1568 tiles in one shared block.
    pyconvx.set_num_threads(2)
    x = np.ones((8, 96, 27, 27), np.float32)
    w = np.ones((256, 96, 5, 5), np.float32)
    pyconvx.reset_workspace_peak()
    pyconvx.conv2d(x, w, padding=2, algorithm="winograd")
    u_bytes = 36 * 96 * 256 * 4
    assert pyconvx.workspace_usage()["peak_bytes"] < u_bytes + 4 * 2**20
