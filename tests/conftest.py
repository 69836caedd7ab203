"""Shared fixtures for the pyconvx test suite."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pytest

# The autotuner's choices go to a file of the run's own, not to the user's ~/.cache (set before
# pyconvx is imported; child processes inherit it). Tests of the file set their own.
_autotune_cache = tempfile.mkdtemp(prefix="pyconvx-autotune-")
atexit.register(shutil.rmtree, _autotune_cache, ignore_errors=True)
os.environ["PYCONVX_AUTOTUNE_CACHE"] = _autotune_cache

# Make `import reference` work however pytest is invoked.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests skip themselves; the rest of the suite needs no hypothesis
    settings = None
if settings is not None:
    # "ci" (the default) keeps the property tests to a few seconds each; "long" is for an
    # occasional run (HYPOTHESIS_PROFILE=long pytest tests/test_fuzz_*.py), thousands per op.
    # No deadline: a kernel call's time depends on the machine's load, not on the example.
    _slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=30, deadline=None, suppress_health_check=_slow_ok,
                              print_blob=True)
    settings.register_profile("long", max_examples=3000, deadline=None, suppress_health_check=_slow_ok,
                              print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    try:
        import pyconvx

        return f"pyconvx {pyconvx.__version__}, cpu_info: {pyconvx.cpu_info()}"
    except Exception as exc:  # the header must never break the run
        return f"pyconvx not importable: {exc!r}"


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, yet different for each case."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def restore_threads():
    """Put the thread count back after a test that changes it."""
    import pyconvx

    before = pyconvx.get_num_threads()
    yield before
    pyconvx.set_num_threads(before)


def as_variant(a, variant):
    """The same values as `a` (an NCHW float32 array) in another memory layout or dtype.

    Returns an array whose values equal `a` (float64 exactly represents float32)."""
    a = np.asarray(a)
    if variant == "float64":
        return a.astype(np.float64)
    if variant == "noncontiguous":
        # Interleave with junk (NaN, or -12345 for ints) along axis 2 for NCHW arrays (x[:, :, ::2]), else the
        # last axis, and return the strided view of the real values.
        axis = 2 if a.ndim == 4 else a.ndim - 1
        shape = list(a.shape)
        shape[axis] *= 2
        junk = np.nan if np.issubdtype(a.dtype, np.floating) else -12345
        wide = np.full(shape, junk, dtype=a.dtype)
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, 2)
        wide[tuple(index)] = a
        return wide[tuple(index)]
    if variant == "fortran":
        return np.asfortranarray(a)
    if variant == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    if variant == "reversed":
        # Negative strides: a reversed copy viewed backwards.
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if variant == "unaligned":
        # A buffer offset by one byte: the elements are not aligned to their size.
        out = np.ndarray(a.shape, dtype=a.dtype, buffer=bytearray(a.nbytes + 1), offset=1)
        out[...] = a
        assert not out.flags.aligned or a.size == 0
        return out
    if variant == "bigendian":
        return a.astype(a.dtype.newbyteorder(">"))
    if variant == "list":
        return a.tolist()
    raise ValueError(variant)


INPUT_VARIANTS = ["float64", "noncontiguous", "fortran", "readonly", "reversed", "unaligned", "bigendian"]


def snapshot(a):
    """A copy to check later that an input was not written to."""
    return np.array(a, copy=True)


def assert_unchanged(a, before):
    np.testing.assert_array_equal(np.asarray(a), before, err_msg="an input array was modified")


def assert_output_array(y, shape=None):
    """Every pyconvx output is a C-contiguous float32 ndarray."""
    assert isinstance(y, np.ndarray), type(y)
    assert y.dtype == np.float32, y.dtype
    assert y.flags.c_contiguous
    if shape is not None:
        assert y.shape == tuple(shape), (y.shape, shape)


# For scripts run in a child process: guarded(shape) is a float32 array whose last float is the
# last of a memory page, the next page unreadable, so that a kernel reading past it crashes.
GUARD_PAGE_HELPER = """
import ctypes, mmap, sys
import numpy as np
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
def guarded(shape):
    nbytes = int(np.prod(shape)) * 4
    size = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
    buf = mmap.mmap(-1, size + mmap.PAGESIZE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    if libc.mprotect(address + size, mmap.PAGESIZE, 0) != 0:  # PROT_NONE
        sys.exit("mprotect failed")
    return np.frombuffer(buf, np.float32, int(np.prod(shape)), size - nbytes).reshape(shape)
"""


def run_child(code, *args, env=None, timeout=300):
    """Runs `python -c code args...` in a scratch directory, importing the same pyconvx as this
    process: from the repository root a child would otherwise pick up the unbuilt source tree
    (the current directory comes first on its path) instead of the installed package."""
    import pyconvx

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(pyconvx.__file__)))
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=scratch, capture_output=True,
                              text=True, timeout=timeout)



@pytest.fixture(scope="module")
def single_threaded_torch():
    """torch on one thread for a module's tests (the machine runs benchmarks; torch's pool
    would take both cores), restored afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def full_size_model():
    """full_size_model("vgg16", **kwargs): a pyconvx.models network at its defaults (1000
    classes, 3x224x224), built once per session for the tests that count or map its weights
    (VGG-16 alone takes seconds to build). Tests may overwrite its weights, not its structure."""
    import pyconvx.models

    cache = {}

    def get(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = getattr(pyconvx.models, name)(**kwargs)
        return cache[key]

    return get
