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
