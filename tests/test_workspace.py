"""Scratch memory: measured by the kernels' own accounting, bounded on every benchmark layer."""
import numpy as np
import pytest

import pyconvx
from pyconvx.benchmarks import CONV_TABLE

MIB = 2**20


def peak_bytes(fn):
    pyconvx.reset_workspace_peak()
    fn()
    return pyconvx.workspace_usage()["peak_bytes"]


@pytest.mark.parametrize("spec", CONV_TABLE, ids=lambda s: s.name)
def test_forward_workspace_is_at_most_64_mib_or_the_output(spec):
    x, w, b, _ = spec.make(np.random.default_rng(0))
    out_bytes = 4 * int(np.prod(spec.out_shape))
    used = peak_bytes(lambda: pyconvx.conv2d(x, w, b, stride=spec.stride, padding=spec.pad))
    assert 0 < used <= max(64 * MIB, out_bytes)


@pytest.mark.parametrize("spec", [s for s in CONV_TABLE if s.name in ("vgg_c1_2", "vgg_c3_2", "resnet_c5_3x3",
                                                                      "alexnet_c1")], ids=lambda s: s.name)
def test_backward_workspace_is_at_most_64_mib_or_the_gradients(spec):
    x, w, _, gy = spec.make(np.random.default_rng(0))
    used = peak_bytes(lambda: pyconvx.conv2d_backward(gy, x, w, stride=spec.stride, padding=spec.pad))
    assert 0 < used <= max(64 * MIB, x.nbytes + w.nbytes)


def test_workspace_does_not_grow_with_the_batch(restore_threads):
    # Past a few images the per-thread scratch is all there is, whatever the batch. One thread:
    # with two, a thread the OS leaves unscheduled while the other takes every task never
    # allocates its scratch, and the peak then depends on the machine's load.
    pyconvx.set_num_threads(1)
    w = np.ones((16, 8, 3, 3), np.float32)
    for algorithm, padding in (("direct", 1), ("implicit_gemm", 1)):
        run = lambda n: pyconvx.conv2d(np.ones((n, 8, 64, 64), np.float32), w, padding=padding,  # noqa: E731
                                       algorithm=algorithm)
        assert peak_bytes(lambda: run(64)) == peak_bytes(lambda: run(16)), algorithm


def test_reset_frees_the_scratch_of_threads_a_lower_count_left_idle(restore_threads):
    # The OpenMP pool keeps the threads of an earlier, larger count, and their scratch with them.
    pyconvx.set_num_threads(2)
    pyconvx.conv2d(np.ones((4, 64, 56, 56), np.float32), np.ones((64, 64, 3, 3), np.float32), padding=1,
                   algorithm="direct")
    pyconvx.set_num_threads(1)
    pyconvx.reset_workspace_peak()
    assert pyconvx.workspace_usage() == {"live_bytes": 0, "peak_bytes": 0}


def test_reset_frees_the_per_thread_scratch():
    pyconvx.conv2d(np.ones((4, 64, 56, 56), np.float32), np.ones((64, 64, 3, 3), np.float32), padding=1)
    pyconvx.reset_workspace_peak()
    usage = pyconvx.workspace_usage()
    assert usage["live_bytes"] == usage["peak_bytes"] < MIB


WORKSPACE_CASES = [((2, 3, 32, 32), (16, 3, 3, 3), 1, 1), ((4, 64, 28, 28), (64, 64, 3, 3), 1, 1),
                   ((2, 16, 20, 20), (32, 16, 5, 5), 1, 2), ((2, 3, 96, 96), (64, 3, 7, 7), 2, 3),
                   ((2, 64, 14, 14), (128, 64, 1, 1), 1, 0), ((2, 64, 14, 14), (128, 64, 1, 1), 2, 0),
                   ((4, 512, 7, 7), (512, 512, 3, 3), 1, 1), ((16, 16, 5, 5), (120, 16, 5, 5), 1, 0),
                   ((2, 32, 17, 17), (32, 1, 3, 3), 1, 1)]


@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_workspace_size_bounds_what_each_algorithm_holds(restore_threads, threads):
    pyconvx.set_num_threads(threads)
    rng = np.random.default_rng(0)
    checked = 0
    for xs, ws, stride, padding in WORKSPACE_CASES:
        groups = xs[1] if ws[1] == 1 else 1
        x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        for algorithm in pyconvx.CONV_ALGORITHMS:
            try:
                bound = pyconvx.conv2d_workspace_size(xs, ws, stride, padding, groups=groups, algorithm=algorithm)
            except ValueError:
                continue  # the algorithm cannot compute this shape; conv2d refuses it the same way
            pyconvx.reset_workspace_peak()
            pyconvx.conv2d(x, w, stride=stride, padding=padding, groups=groups, algorithm=algorithm)
            peak = pyconvx.workspace_usage()["peak_bytes"]
            assert 0 < peak <= bound, (xs, ws, algorithm, peak, bound)
            if threads == 1:  # one thread takes every task: the bound is close to what it held
                assert bound <= 1.2 * peak + 65536, (xs, ws, algorithm, peak, bound)
            checked += 1
    assert checked > 30


def test_a_workspace_limit_raises_memory_error_naming_the_sizes(restore_threads):
    x, w = np.ones((2, 16, 12, 12), np.float32), np.ones((16, 16, 3, 3), np.float32)
    need = pyconvx.conv2d_workspace_size(x.shape, w.shape, padding=1)
    limit = pyconvx.get_workspace_limit()
    pyconvx.reset_workspace_peak()
    pyconvx.set_workspace_limit(need // 4)
    try:
        with pytest.raises(MemoryError, match=rf"bytes requested, 0 held, limit {need // 4} bytes"):
            pyconvx.conv2d(x, w, padding=1)
        pyconvx.set_workspace_limit(need)
        np.testing.assert_allclose(pyconvx.conv2d(x, w, padding=1)[0, 0, 5, 5], 16 * 9)
    finally:
        pyconvx.set_workspace_limit(limit)
    assert limit >= 1 << 30  # the default: the machine's physical memory
    with pytest.raises(ValueError, match="bytes=-1"):
        pyconvx.set_workspace_limit(-1)
