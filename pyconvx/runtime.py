"""Threads, the instruction-set path in use, and the machine's measured FMA peak."""
from . import _core
from ._args import as_int

__all__ = ["cpu_info", "set_num_threads", "get_num_threads", "measure_peak_gflops", "workspace_usage",
           "reset_workspace_peak", "set_workspace_limit", "get_workspace_limit"]


def cpu_info():
    """Which kernel path runs and what the CPU offers.

    Returns a dict: "active" ("avx512", "avx2" or "generic"), "supported" (the paths this CPU
    and build can run, best first), "forced" (the PYCONVX_ISA value read at import, or None),
    "note" (why a forced path was not taken, else "") and "num_threads".

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
    """The number of threads the kernels use."""
    return _core.get_num_threads()


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

