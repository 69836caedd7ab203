"""Memory: training steps through the bindings do not leak."""
import os

import pytest

from conftest import run_child

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")

STEPS = 1000
# 1 MiB over 1,000 steps of 16 kernel calls each: a leak of 66 bytes per call, or of one small
# array per step, passes it; the allocators' own noise is a few KiB.
BOUND = 1 << 20

# Run in a fresh interpreter: after hundreds of other tests the heap is full of partly used
# pages, where a small leak can hide without touching a new page.
MEASURE = """
import ctypes, os, sys
import numpy as np
import pyconvx
from pyconvx import models

try:
    malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):  # not glibc
    malloc_trim = lambda pad: 0


def resident_bytes():
    # After glibc has handed its free pages back: otherwise a leak would first fill memory freed
    # earlier, already resident, and show only once that ran out.
    malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(step, steps, warmup=200):
    # The warm-up lets the kernels' per-thread workspaces, NumPy's caches and the allocators reach
    # their steady size.
    for _ in range(warmup):
        step()
    before = resident_bytes()
    for _ in range(steps):
        step()
    return resident_bytes() - before


# One thread: on a loaded 2-core machine two spinning OpenMP threads make the loop 5x slower; the
# per-thread workspace is the same code for any count.
pyconvx.set_num_threads(1)
model = models.lenet5(seed=0)
x = np.random.default_rng(0).standard_normal((8, 1, 32, 32), dtype=np.float32)
kept = []


def step():
    logits = model.forward(x, training=True)
    model.backward(logits * 0.01)


def leaky_step():
    step()
    kept.append(np.ones(275, np.float32))  # 1.1 KB per step, filled as a leaked result would be


steps = int(sys.argv[1])
print(growth(step, steps), growth(leaky_step, steps))
"""


def test_forward_and_backward_1000_times_do_not_grow_resident_memory():
    """LeNet-5 on a batch of 8: per step 3 convolutions, 2 poolings and 6 GEMMs forward and
    backward (16 kernel calls, each converting arrays across the binding and returning new ones).
    The same loop keeping 1.1 KB per step must cross the bound: the measurement sees a leak."""
    result = run_child(MEASURE, str(STEPS), timeout=120)
    assert result.returncode == 0, result.stderr
    clean, leaky = map(int, result.stdout.split())
    assert clean < BOUND, f"resident memory grew by {clean / 1024:.0f} KiB over {STEPS} forward/backward steps"
    assert leaky >= BOUND, f"a leak of 1.1 MB over {STEPS} steps measured as {leaky / 1024:.0f} KiB"
