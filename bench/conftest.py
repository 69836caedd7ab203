"""Fixtures of the pytest-benchmark suite: `pytest bench --benchmark-only`.

The suite times the shapes of pyconvx.benchmarks (the tables `pyconvx bench` uses), pyconvx and
torch as separate entries grouped by shape. PYCONVX_BENCH_THREADS (default 2) sets the threads
of both. It lives outside tests/ so that `pytest` (testpaths = tests) never runs it.
"""
import os

import numpy as np
import pytest

from pyconvx import benchmarks, runtime


def pytest_collection_modifyitems(config, items):
    # Without the plugin the `benchmark` fixture is missing and every test would error out.
    if not config.pluginmanager.hasplugin("benchmark"):
        skip = pytest.mark.skip(reason="pytest-benchmark is not installed (pip install 'pyconvx[bench]')")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def threads():
    """The thread count for pyconvx and torch alike, put back after the session."""
    count = int(os.environ.get("PYCONVX_BENCH_THREADS", "2"))
    torch = benchmarks.load_torch()
    before = (runtime.get_num_threads(), torch.get_num_threads() if torch else None)
    benchmarks.set_threads(count, torch)
    benchmarks.keep_freed_memory()  # as `pyconvx bench` does: no page faults in the timings
    yield count
    benchmarks.set_threads(before[0])
    if torch is not None:
        torch.set_num_threads(before[1])


@pytest.fixture
def need_impl(request):
    """need_impl(impl) skips the test when `impl` is "torch" and torch is not installed."""
    def need(impl):
        if impl == "torch" and benchmarks.load_torch() is None:
            pytest.skip("torch is not installed")

    return need


@pytest.fixture
def rng():
    """The same inputs for every implementation of a shape."""
    return np.random.default_rng(0)


@pytest.fixture
def timed(benchmark):
    """timed(fn, group, **extra_info) times fn with pytest-benchmark under `group` (the shape, so
    pyconvx and torch sit side by side). One untimed call first keeps first-call work (workspace
    allocation, page faults, torch's lazy initialisation) out of the figures."""
    def time_fn(fn, group, **extra_info):
        benchmark.group = group
        benchmark.extra_info.update(extra_info)
        fn()
        return benchmark(fn)

    return time_fn
