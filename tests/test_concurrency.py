"""The kernels under concurrency: many Python threads at once on shared inputs, the thread count
changed while others compute, and processes forked after the kernels ran."""

import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyconvx
from conftest import run_child


def read_only(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.flags.writeable = False
    return a


@pytest.fixture(scope="module")
def shared():
    rng = np.random.default_rng(99)
    x = read_only(rng.standard_normal((4, 32, 18, 18)))
    return dict(
        x=x,
        w3=read_only(rng.standard_normal((32, 32, 3, 3))),  # Winograd
        w5=read_only(rng.standard_normal((24, 32, 5, 5))),
        w1=read_only(rng.standard_normal((16, 32, 1, 1))),
        wd=read_only(rng.standard_normal((32, 1, 3, 3))),
        g5=read_only(rng.standard_normal((4, 24, 8, 8))),
        gp=read_only(rng.standard_normal((4, 32, 9, 9))),
        a=read_only(rng.standard_normal((150, 300))),
        b=read_only(rng.standard_normal((300, 120))),
    )


def all_ops(s):
    """Every kernel family once, as {name: result}."""
    out = {
        "conv_winograd": pyconvx.conv2d(s["x"], s["w3"], padding=1),
        "conv_strided": pyconvx.conv2d(s["x"], s["w5"], stride=2, padding=1, algorithm="implicit_gemm"),
        "conv_direct": pyconvx.conv2d(s["x"], s["w5"], padding=2, algorithm="direct", activation="relu"),
        "conv_pointwise": pyconvx.conv2d(s["x"], s["w1"]),
        "conv_depthwise": pyconvx.conv2d(s["x"], s["wd"], padding=1, groups=32),
        "max_pool": pyconvx.max_pool2d(s["x"], 3, 2, 1),
        "max_pool_bw": pyconvx.max_pool2d_backward(s["gp"], s["x"], 3, 2, 1),
        "avg_pool": pyconvx.avg_pool2d(s["x"], 3, 2, 1, count_include_pad=False),
        "avg_pool_bw": pyconvx.avg_pool2d_backward(s["gp"], s["x"].shape, 3, 2, 1, count_include_pad=False),
        "global_avg": pyconvx.global_avg_pool2d(s["x"]),
        "gemm": pyconvx.gemm(s["a"], s["b"]),
    }
    gx, gw, gb = pyconvx.conv2d_backward(s["g5"], s["x"], s["w5"], stride=2, padding=1)
    out.update(conv_bw_x=gx, conv_bw_w=gw, conv_bw_b=gb)
    return out


def test_kernels_from_eight_python_threads_match_the_single_threaded_results(shared):
    want = all_ops(shared)
    start = threading.Barrier(8)

    def worker(_):
        start.wait()  # all eight enter the kernels together
        return [all_ops(shared) for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        runs = [run for runs in pool.map(worker, range(8)) for run in runs]
    assert len(runs) == 24
    for run in runs:
        for name, value in want.items():
            assert np.array_equal(run[name], value), f"{name} differs when computed from 8 threads at once"
    for name in ("x", "w3", "a"):
        assert not shared[name].flags.writeable


def test_kernels_release_the_gil(restore_threads):
    pyconvx.set_num_threads(1)  # the kernel on one core, this thread on the other
    a = np.ones((1200, 1200), np.float32)
    started, counted = threading.Event(), []

    def kernel():
        started.set()
        for _ in range(3):
            pyconvx.gemm(a, a)

    worker = threading.Thread(target=kernel)
    worker.start()
    started.wait()
    steps = 0
    while worker.is_alive():
        steps += 1
    worker.join()
    counted.append(steps)
    # Holding the GIL through ~0.1 s of GEMM would leave this loop a handful of steps.
    assert steps > 10_000, counted


def test_set_num_threads_while_other_threads_compute(shared, restore_threads):
    expected = {}
    for threads in (1, 2):
        pyconvx.set_num_threads(threads)
        expected[threads] = all_ops(shared)
    stop = threading.Event()
    errors = []

    def toggle():
        n = 0
        while not stop.is_set():
            pyconvx.set_num_threads(1 + n % 2)
            n += 1

    def compute(_):
        results = []
        for _ in range(4):
            results.append(all_ops(shared))
        return results

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            runs = [run for runs in pool.map(compute, range(4)) for run in runs]
    except Exception as exc:  # noqa: BLE001 (reported below with the assertion)
        errors.append(exc)
    finally:
        stop.set()
        toggler.join()
    assert not errors, errors
    for run in runs:
        for name, value in run.items():
            # Each call runs on the count it read when it started: its result is one of the two.
            assert any(np.array_equal(value, expected[t][name]) for t in (1, 2)), name
    assert pyconvx.get_num_threads() in (1, 2)


FORK_CHILD = textwrap.dedent(
    """
    import multiprocessing, os, sys
    import numpy as np
    import pyconvx

    pyconvx.set_num_threads(2)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    y = pyconvx.conv2d(x, w, padding=1)            # the parent's OpenMP threads now exist
    gx, gw, gb = pyconvx.conv2d_backward(y, x, w, padding=1)

    def work(i):
        y2 = pyconvx.conv2d(x, w, padding=1)
        gx2 = pyconvx.conv2d_backward(y2, x, w, padding=1)[0]
        pooled = pyconvx.max_pool2d(y2, 2)
        try:
            pyconvx.set_num_threads(2)
            refused = False
        except ValueError as exc:
            refused = "fork" in str(exc) and "n=2" in str(exc)
        return (np.array_equal(y2, y), bool(np.allclose(gx2, gx, rtol=1e-5, atol=1e-4)),
                pooled.shape == (8, 16, 10, 10), pyconvx.get_num_threads(), refused)

    assert multiprocessing.get_start_method() == "fork"
    with multiprocessing.Pool(2) as pool:
        results = pool.map_async(work, range(4)).get(timeout=60)
    print(results)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if np.array_equal(pyconvx.conv2d(x, w, padding=1), y) else 3)
    _, status = os.waitpid(pid, 0)
    print("os.fork child status", status)
    assert pyconvx.get_num_threads() == 2          # the parent keeps its threads
    assert np.array_equal(pyconvx.conv2d(x, w, padding=1), y)
    print("parent ok")
    """
)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_process_forked_after_the_kernels_ran_computes_and_does_not_hang():
    child = run_child(FORK_CHILD, timeout=120)
    assert child.returncode == 0, child.stdout + child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == str([(True, True, True, 1, True)] * 4), lines
    assert lines[1] == "os.fork child status 0"
    assert lines[2] == "parent ok"
