"""Threads, the instruction-set path in use, and the machine's measured FMA peak."""
import contextlib
import os

import numpy as np

from . import _core
from ._args import as_int

__all__ = ["cpu_info", "set_num_threads", "get_num_threads", "thread_limit", "set_flush_denormals",
           "get_flush_denormals", "set_autotune", "get_autotune", "set_autotune_cache",
           "autotune_cache_info", "measure_peak_gflops", "workspace_usage",
           "reset_workspace_peak", "set_workspace_limit", "get_workspace_limit"]


def cpu_info():
    """Which kernel path runs and what the CPU offers.

    Returns a dict: "active" ("avx512", "avx2" or "generic"), "supported" (the paths this CPU
    and build can run, best first), "forced" (the PYCONVX_ISA value read at import, or None),
    "note" (why a forced path was not taken, else ""), "split_512bit_fma" (on the avx512 path,
    whether the CPU runs each 512-bit FMA as two 256-bit halves, as AMD's Zen 4 does: the
    convolution heuristic takes it into account), "model" (the processor's name with its vendor,
    family, model and stepping numbers), "cache_bytes" ({"l1d", "l2": one core's, "l3": one
    shared cache's}, 0 where the system does not say) and "num_threads".

    >>> cpu_info()["active"] in cpu_info()["supported"]
    True
    """
    return _core.cpu_info()


def set_num_threads(n):
    """Sets the number of threads every kernel uses (default: OMP_NUM_THREADS or the core count).

    In a process started by fork() (multiprocessing's default on Linux) the kernels run on one
    thread and n must be 1: the OpenMP runtime cannot start threads there. Processes started
    with the "spawn" or "forkserver" method have no such limit.

    >>> before = get_num_threads()
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(before)
    """
    _core.set_num_threads(as_int(n, "n"))


def get_num_threads():
    """The number of threads the kernels called from this thread use (see thread_limit)."""
    return _core.get_num_threads()


@contextlib.contextmanager
def thread_limit(n):
    """Within the block, kernels called from the calling thread use at most `n` threads; other
    threads keep the process-wide count. For work beside a training loop on the same cores (a
    DataLoader's workers run under thread_limit(1)): a kernel called there then takes one core
    rather than starting a team that competes with the training's own threads.

    >>> with thread_limit(1):
    ...     get_num_threads()
    1
    """
    n = as_int(n, "n")
    if n < 1:
        raise ValueError(f"thread_limit: n must be >= 1, got n={n}")
    previous = _core.get_thread_limit()
    _core.set_thread_limit(n)
    try:
        yield
    finally:
        _core.set_thread_limit(previous)


def set_flush_denormals(flush):
    """Whether the kernels treat denormals (nonzero floats below 2**-126 in magnitude) as zero
    while they compute: True, the default, flushes denormal inputs and results to zero, which
    changes a result by less than 2**-126; False keeps IEEE arithmetic, as NumPy and torch do by
    default, at the price of microcode assists on CPUs that take them (Intel's: a layer of
    denormal inputs then runs 30-120x slower). Only the kernels' own threads change mode, and only
    while a kernel runs; x86-64 only.

    >>> set_flush_denormals(False)
    >>> float(pyconvx.gemm(np.full((1, 1), 1e-39, np.float32), np.ones((1, 1), np.float32))[0, 0]) > 0
    True
    >>> set_flush_denormals(True)
    >>> float(pyconvx.gemm(np.full((1, 1), 1e-39, np.float32), np.ones((1, 1), np.float32))[0, 0])
    0.0
    """
    if not isinstance(flush, (bool, np.bool_)):
        raise ValueError(f"set_flush_denormals: flush must be True or False, got flush={flush!r}")
    _core.set_flush_denormals(bool(flush))


def set_autotune(on):
    """Whether inference plans (Model.predict, evaluate, inference_plan) choose each
    convolution's algorithm by measurement: on (the default; PYCONVX_AUTOTUNE=0 in the environment
    starts it off), building a plan times every algorithm that can compute a layer, on that
    layer's shapes and thread count, and keeps the fastest; the choice is remembered for the
    process and in the autotune cache file (set_autotune_cache), so a plan rebuilt after its
    weights changed, or built by the next process, times nothing. Off, plans take the
    built-in heuristic's choice (conv2d_algorithm), as single conv2d calls always do. Plans
    already built keep their algorithms.

    >>> set_autotune(False); get_autotune()
    False
    >>> set_autotune(True)
    """
    if not isinstance(on, (bool, np.bool_)):
        raise ValueError(f"set_autotune: on must be True or False, got on={on!r}")
    _core.set_autotune(bool(on))


def get_autotune():
    """Whether inference plans choose their convolutions' algorithms by measurement."""
    return bool(_core.get_autotune())


def set_autotune_cache(directory):
    """Where autotuned choices persist between processes, so that a second process building the
    same plans times nothing: a directory (created when first written) holding one small text
    file per pyconvx version, instruction-set path and processor. None keeps them in memory only.

    The default is the PYCONVX_AUTOTUNE_CACHE environment variable when set ("", "0" or "off":
    None), else $XDG_CACHE_HOME/pyconvx, else ~/.cache/pyconvx. The file only ever chooses among
    the algorithms that can compute a layer, never what a layer computes: a damaged, truncated or
    foreign file (another version or CPU) is ignored with a RuntimeWarning and rewritten.

    >>> before = autotune_cache_info()["directory"]
    >>> set_autotune_cache(None); autotune_cache_info()["file"] is None
    True
    >>> set_autotune_cache(before)
    """
    if directory is None:
        _core.set_autotune_cache_dir("")
        return
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"set_autotune_cache: directory must be a path or None, got directory={directory!r}")
    path = os.fspath(directory)
    if not path:
        raise ValueError("set_autotune_cache: directory must not be empty (None keeps the choices in memory only)")
    _core.set_autotune_cache_dir(os.path.abspath(path))


def autotune_cache_info():
    """{"directory", "file": where choices persist (None when they stay in memory), "measured":
    layers this process timed, "reused": layers whose choice was already known (from this
    process or the file), "loaded": choices read from the file}."""
    info = dict(_core.autotune_cache_stats())
    info["directory"] = _core.get_autotune_cache_dir() or None
    info["file"] = _core.autotune_cache_file() or None
    return info


def get_flush_denormals():
    """Whether the kernels flush denormals to zero (see set_flush_denormals)."""
    return _core.get_flush_denormals()


def measure_peak_gflops(seconds=0.3):
    """FMA throughput (GFLOP/s) of the active path with the current thread count, measured by
    running independent FMA chains for about `seconds`: the practical ceiling a kernel is
    compared with."""
    return _core.measure_peak_gflops(float(seconds))


def workspace_usage():
    """Scratch memory of the kernels in bytes: {"live_bytes": held now, "peak_bytes": the most held
    at once since reset_workspace_peak()}. Kernels keep per-thread packing buffers between calls.

    >>> reset_workspace_peak()
    >>> _ = pyconvx.conv2d(np.ones((1, 8, 32, 32)), np.ones((8, 8, 3, 3)))
    >>> workspace_usage()["peak_bytes"] > 0
    True
    """
    return _core.workspace_usage()


def reset_workspace_peak():
    """Frees the kernels' per-thread scratch and restarts the peak count at what is still held."""
    _core.reset_workspace_peak()


def set_workspace_limit(bytes):
    """Caps the kernels' scratch memory: a call that would take it past `bytes` raises
    MemoryError naming the bytes requested, held and allowed, instead of attempting the
    allocation. The default is the machine's physical memory.

    >>> before = get_workspace_limit()
    >>> set_workspace_limit(1 << 30); get_workspace_limit()
    1073741824
    >>> set_workspace_limit(before)
    """
    _core.set_workspace_limit(as_int(bytes, "bytes"))


def get_workspace_limit():
    """The cap on the kernels' scratch memory, in bytes (see set_workspace_limit)."""
    return _core.get_workspace_limit()

