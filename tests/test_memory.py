"""Memory: training steps through the bindings do not leak."""
import ctypes
import os

import numpy as np
import pytest

import pyconvx
from pyconvx import models

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")

STEPS = 1000
# 1 MiB over 1,000 steps of 16 kernel calls each: a leak of 66 bytes per call, or of one small
# array per step, passes it; the allocators' own noise here is a few KiB.
BOUND = 1 << 20


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return lambda pad: 0


malloc_trim = _malloc_trim()


def resident_bytes():
    """This process's resident set size now (not its high-water mark), after glibc has handed
    its free pages back to the system: otherwise a leak would first fill memory freed earlier,
    already resident, and show only once that ran out."""
    malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(step, steps=STEPS, warmup=200):
    """Resident memory gained over `steps` calls of step(), after `warmup` calls that let the
    kernels' per-thread workspaces, NumPy's caches and the allocators reach their steady size."""
    for _ in range(warmup):
        step()
    before = resident_bytes()
    for _ in range(steps):
        step()
    return resident_bytes() - before


def test_forward_and_backward_1000_times_do_not_grow_resident_memory(restore_threads):
    """LeNet-5 on a batch of 8: per step 3 convolutions, 2 poolings and 6 GEMMs forward and
    backward (16 kernel calls, each converting arrays across the binding and returning new ones).
    One thread: on a loaded 2-core machine, two spinning OpenMP threads make the loop 5x slower;
    the per-thread workspace is the same code for any count."""
    pyconvx.set_num_threads(1)
    model = models.lenet5(seed=0)
    x = np.random.default_rng(0).standard_normal((8, 1, 32, 32), dtype=np.float32)

    def step():
        logits = model.forward(x, training=True)
        model.backward(logits * 0.01)

    grown = growth(step)
    assert grown < BOUND, f"resident memory grew by {grown / 1024:.0f} KiB over {STEPS} forward/backward steps"


def test_the_measurement_sees_a_leak_of_a_kilobyte_per_step():
    # Filled, as a leaked result would be: pages calloc'd and never touched are not resident.
    kept = []
    grown = growth(lambda: kept.append(np.ones(275, np.float32)), warmup=0)
    assert grown >= BOUND, f"a 1.1 MB leak measured as {grown / 1024:.0f} KiB"
