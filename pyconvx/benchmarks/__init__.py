"""Benchmark shapes and timing shared by `pyconvx bench` and the pytest-benchmark suite in bench/.

The tables hold convolution layers of well-known networks and the pooling layers around them.
For each shape this module builds zero-argument callables (pyconvx, torch and, for the
convolution forward pass, a NumPy im2col + matmul baseline), times them, checks that pyconvx
computes the same numbers, and returns plain JSON-serialisable dicts.

torch is optional: it is imported only inside the functions that time it (never when pyconvx
is imported), and everything works without it, leaving the torch figures out.
"""
import ctypes
import ctypes.util
import gc
import math
import os
import platform
import statistics
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from .. import models, ops, optimizers, runtime
from .._version import __version__
from ..torch_weights import torch_entries

__all__ = [
    "ConvSpec", "PoolSpec", "GemmSpec", "NetworkSpec", "Timing", "CONV_TABLE", "POOL_TABLE", "GEMM_TABLE",
    "NETWORK_TABLE", "select", "load_torch", "keep_freed_memory", "network_fn", "run_network", "peak_memory_mib",
    "set_threads", "PeakProbe", "measure_peak", "time_calls", "time_call", "numpy_conv2d", "conv_forward_fn",
    "conv_backward_fn", "pool_fn", "gemm_fn", "run_conv", "run_pool", "run_gemm", "run_benchmarks", "summarize", "errors_above",
    "geometric_mean", "denormal_slowdown",
]

# Relative error (max |a - b| / max |b|) above which a result is reported as wrong: float32 sums
# of a few thousand products stay near 1e-6, so 1e-3 only catches real bugs.
ERROR_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ConvSpec:
    """A convolution layer: x (n, c, hw, hw), k filters of r x r, square stride and padding."""

    name: str
    n: int
    c: int
    hw: int
    k: int
    r: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    dilation: int = 1

    @property
    def out_hw(self):
        """Output height (= width): floor((H + 2p - d(R-1) - 1) / s) + 1."""
        return (self.hw + 2 * self.pad - self.dilation * (self.r - 1) - 1) // self.stride + 1

    @property
    def x_shape(self):
        return (self.n, self.c, self.hw, self.hw)

    @property
    def w_shape(self):
        return (self.k, self.c // self.groups, self.r, self.r)

    @property
    def out_shape(self):
        return (self.n, self.k, self.out_hw, self.out_hw)

    @property
    def flops(self):
        """Forward FLOPs, a multiply and an add per MAC: 2*N*K*P*Q*(C/groups)*R*S."""
        return 2 * math.prod(self.out_shape) * (self.c // self.groups) * self.r * self.r

    @property
    def backward_flops(self):
        """grad input + grad weight: each is a GEMM the size of the forward one."""
        return 2 * self.flops

    @property
    def summary(self):
        """A compact description, e.g. '8x3x224x224 k64 7x7 s2 p3'."""
        return f"{'x'.join(map(str, self.x_shape))} k{self.k} {self.r}x{self.r} s{self.stride} p{self.pad}"

    @property
    def kwargs(self):
        """stride, padding, dilation and groups, as both pyconvx and torch.nn.functional take them."""
        return dict(stride=self.stride, padding=self.pad, dilation=self.dilation, groups=self.groups)

    def make(self, rng):
        """Random C-contiguous float32 inputs (x, weight, bias, grad_out), so no implementation
        pays for a conversion."""
        return tuple(rng.standard_normal(shape, dtype=np.float32)
                     for shape in (self.x_shape, self.w_shape, (self.k,), self.out_shape))


@dataclass(frozen=True)
class PoolSpec:
    """A pooling layer: kind "max", "avg" or "global_avg" over an NCHW input of `shape`."""

    name: str
    kind: str
    shape: tuple
    kernel: int = 1
    stride: int = 1
    pad: int = 0

    def out_shape(self):
        n, c, h, w = self.shape
        if self.kind == "global_avg":
            return (n, c, 1, 1)
        size = lambda extent: (extent + 2 * self.pad - self.kernel) // self.stride + 1  # noqa: E731
        return (n, c, size(h), size(w))

    @property
    def bytes(self):
        """Input plus output bytes (float32): the least memory traffic any pooling kernel needs."""
        return 4 * (math.prod(self.shape) + math.prod(self.out_shape()))

    @property
    def summary(self):
        """A compact description, e.g. '8x64x112x112 3x3 s2 p1'."""
        dims = "x".join(map(str, self.shape))
        if self.kind == "global_avg":
            return f"{dims} global"
        return f"{dims} {self.kernel}x{self.kernel} s{self.stride} p{self.pad}"

    def make(self, rng):
        """A random C-contiguous float32 input."""
        return rng.standard_normal(self.shape, dtype=np.float32)


@dataclass(frozen=True)
class GemmSpec:
    """A single-precision matrix product C (m x n) = A (m x k) B (k x n), all row-major."""

    name: str
    m: int
    n: int
    k: int

    @property
    def flops(self):
        return 2 * self.m * self.n * self.k

    @property
    def summary(self):
        return f"{self.m}x{self.k} @ {self.k}x{self.n}"

    def make(self, rng):
        """Random C-contiguous float32 operands (a, b)."""
        return (rng.standard_normal((self.m, self.k), dtype=np.float32),
                rng.standard_normal((self.k, self.n), dtype=np.float32))


CONV_TABLE = (
    ConvSpec("lenet_c1", 64, 1, 32, 6, 5, 1, 0),
    ConvSpec("lenet_c3", 64, 6, 14, 16, 5, 1, 0),
    ConvSpec("alexnet_c1", 8, 3, 227, 96, 11, 4, 0),
    ConvSpec("alexnet_c2", 8, 96, 27, 256, 5, 1, 2),
    ConvSpec("vgg_c1_2", 2, 64, 224, 64, 3, 1, 1),
    ConvSpec("vgg_c3_2", 8, 256, 56, 256, 3, 1, 1),
    ConvSpec("vgg_c5_2", 8, 512, 14, 512, 3, 1, 1),
    ConvSpec("resnet_conv1", 8, 3, 224, 64, 7, 2, 3),
    ConvSpec("resnet_1x1_red", 8, 256, 56, 64, 1, 1, 0),
    ConvSpec("resnet_1x1_exp", 8, 64, 56, 256, 1, 1, 0),
    ConvSpec("resnet_3x3_s2", 8, 128, 56, 128, 3, 2, 1),
    ConvSpec("resnet_proj_s2", 8, 256, 56, 512, 1, 2, 0),
    ConvSpec("resnet_c5_3x3", 32, 512, 7, 512, 3, 1, 1),
    ConvSpec("incep_3a_5x5", 8, 16, 28, 32, 5, 1, 2),
    ConvSpec("incep_3a_3x3", 8, 96, 28, 128, 3, 1, 1),
)

POOL_TABLE = (
    PoolSpec("max_3x3_s2", "max", (8, 64, 112, 112), 3, 2, 1),  # ResNet's stem
    PoolSpec("max_2x2_s2", "max", (8, 128, 112, 112), 2, 2, 0),  # VGG
    PoolSpec("avg_2x2_s2", "avg", (64, 6, 28, 28), 2, 2, 0),  # LeNet
    PoolSpec("global_avg", "global_avg", (32, 2048, 7, 7)),  # ResNet-50's head
)


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network of pyconvx.models on `n` random images of `input_shape`: one training epoch
    in batches of `batch` ("train": forward, loss, backward and an SGD step per batch) or one
    forward pass in inference mode ("forward")."""

    name: str
    model: str
    task: str
    n: int
    input_shape: tuple
    batch: int
    num_classes: int

    @property
    def summary(self):
        shape = "x".join(map(str, self.input_shape))
        what = "1 epoch" if self.task == "train" else "forward"
        return f"{what}, {self.n} images {shape}, batch {self.batch}"

    def make(self, rng):
        x = rng.standard_normal((self.n,) + tuple(self.input_shape), dtype=np.float32)
        return x, rng.integers(0, self.num_classes, self.n)


NETWORK_TABLE = (
    # Small layers, where per-operation overhead weighs as much as the arithmetic. (Whole networks
    # at inference, against the inference engines too: engines.ENGINE_TABLE.)
    NetworkSpec("lenet5_epoch", "lenet5", "train", 1024, (1, 32, 32), 64, 10),
)


# Large square products, where a GEMM should run near the FMA peak.
GEMM_TABLE = (
    GemmSpec("gemm_1024", 1024, 1024, 1024),
    GemmSpec("gemm_2048", 2048, 2048, 2048),
)


def select(specs, only=None):
    """The specs whose name contains one of `only`'s substrings (a list, or a comma-separated
    string); all of them when `only` is empty."""
    if isinstance(only, str):
        only = only.split(",")
    wanted = [part.strip() for part in only or () if part.strip()]
    return [spec for spec in specs if not wanted or any(part in spec.name for part in wanted)]


def load_torch():
    """The torch module, or None when it is not installed (or fails to import)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory():
    """Has glibc's malloc keep freed memory in the process for reuse, for the rest of the
    process: no block is mapped on its own, no free space is handed back to the system. Returns
    whether it could (False off glibc).

    By default a block of a few MiB or more (a layer's output) gets pages of its own, which go
    back to the system when it is freed; the next output of that size then faults in and zeroes
    every page again, a cost of the allocator, not of the kernel that writes the output. How often
    that happens depends on what else the process allocates in between: timing torch and pyconvx
    in turns, ResNet's first layer took torch 21-38 ms a call with it and 13 ms without, pyconvx
    12-23 ms and 15. The benchmark command calls this once at its start so that both libraries
    find their outputs' memory already mapped, as in a training loop that runs alone.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, TypeError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, 2**30) and mallopt(_M_MMAP_THRESHOLD, 2**30))


def set_threads(n, torch=None):
    """Runs pyconvx, and torch when given the module, on `n` threads, so they compete fairly."""
    if torch is not None:
        torch.set_num_threads(n)
    runtime.set_num_threads(n)


class PeakProbe:
    """A callable that probes the FMA peak for `seconds` (runtime.measure_peak_gflops) and keeps
    each rate. Taking turns with a kernel in time_calls, it measures the ceiling under the load
    the kernel saw, round by round: its median against the kernel's median compares like with
    like on a shared machine, where the best of a few probes taken at other times would set a
    ceiling the kernel's typical call never had.

    >>> probe = PeakProbe(0.01)
    >>> probe(); probe()
    >>> len(probe.rates), probe.median() > 0
    (2, True)
    """

    def __init__(self, seconds):
        self.seconds, self.rates = seconds, []

    def __call__(self):
        self.rates.append(runtime.measure_peak_gflops(self.seconds))

    def median(self):
        return statistics.median(self.rates)


def measure_peak(seconds=0.3, probes=3):
    """The machine's FMA ceiling in GFLOP/s on the current threads: the best of a few probes
    (runtime.measure_peak_gflops), since a busy neighbour on a shared machine lowers any one."""
    return max(runtime.measure_peak_gflops(seconds) for _ in range(probes))


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Timing:
    """Wall-clock time of one call: median and fastest over `runs` timed calls, in milliseconds."""

    median_ms: float
    min_ms: float
    runs: int


def time_calls(fns, min_time=0.3, min_runs=3, warmup=1, max_runs=100_000):
    """Times each callable of the dict `fns` ({name: fn}); returns {name: Timing}.

    After `warmup` untimed calls of each, the callables take turns, one timed call per round,
    until there were at least `min_runs` rounds and `min_time` seconds per callable have passed
    (or `max_runs` rounds). Taking turns spreads the noise of a shared machine (a neighbour's
    burst, a frequency change) over all of them instead of penalising whichever ran at the time:
    their ratio is what the benchmark reports. The median resists the odd slow call; the minimum
    is the best the code can do.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    budget = min_time * len(fns)
    # A garbage collection would land in whichever timed call triggers it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for rounds in range(max_runs):
            if rounds >= min_runs and time.perf_counter() - start >= budget:
                break
            for name, fn in fns.items():
                before = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - before)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(statistics.median(times) * 1e3, min(times) * 1e3, len(times))
            for name, times in samples.items()}


def time_call(fn, min_time=0.3, min_runs=3, warmup=1, max_runs=100_000):
    """Times `fn()` alone (see time_calls); returns a Timing."""
    return time_calls({"fn": fn}, min_time, min_runs, warmup, max_runs)["fn"]


# ---------------------------------------------------------------------------------------------
# The implementations, as zero-argument callables over fixed inputs


def numpy_conv2d(x, weight, bias=None, stride=1, pad=0):
    """Convolution in plain NumPy (groups=1, dilation 1): an im2col copy, then one matmul.

    The patches come from a sliding-window view, copied into (N, C*R*S, P*Q) so that the batched
    matmul with the (K, C*R*S) weights (NumPy's BLAS) gives NCHW output directly.
    """
    n, c = x.shape[:2]
    k, _, r, s = weight.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (r, s), axis=(2, 3))[:, :, ::stride, ::stride]
    p, q = windows.shape[2:4]
    # (N, C, P, Q, R, S) -> (N, C, R, S, P, Q): rows in the weight's (C, R, S) order; reshape copies.
    cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * r * s, p * q)
    out = np.matmul(weight.reshape(k, c * r * s), cols)
    if bias is not None:
        out += bias[:, None]
    return out.reshape(n, k, p, q)


def conv_forward_fn(impl, spec, x, weight, bias):
    """A callable running `spec`'s forward pass with bias in `impl` ("pyconvx", "torch" or "numpy")."""
    if impl == "pyconvx":
        return lambda: ops.conv2d(x, weight, bias, **spec.kwargs)
    if impl == "numpy":
        if spec.groups != 1 or spec.dilation != 1:
            raise ValueError(f"the NumPy baseline handles groups=1 and dilation=1 only, not {spec}")
        return lambda: numpy_conv2d(x, weight, bias, spec.stride, spec.pad)
    if impl == "torch":
        import torch

        # from_numpy shares the arrays' memory: torch reads the very same float32 data.
        tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))

        def forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb, **spec.kwargs)

        return forward
    raise ValueError(f"unknown implementation {impl!r}")


def conv_backward_fn(impl, spec, x, weight, grad_out):
    """A callable computing (grad_x, grad_weight) of `spec` in `impl` ("pyconvx" or "torch").

    Only the backward pass runs: torch's is aten.convolution_backward, the kernel autograd would
    call, with no forward pass and no graph around it.
    """
    if impl == "pyconvx":
        def backward():
            return ops.conv2d_backward(grad_out, x, weight, needs=(True, True, False), **spec.kwargs)[:2]

        return backward
    if impl == "torch":
        import torch

        tx, tw, tg = (torch.from_numpy(a) for a in (x, weight, grad_out))
        pair = lambda v: [v, v]  # noqa: E731

        def backward():
            grads = torch.ops.aten.convolution_backward(
                tg, tx, tw, None, pair(spec.stride), pair(spec.pad), pair(spec.dilation), False, [0, 0],
                spec.groups, [True, True, False])
            return grads[:2]

        return backward
    raise ValueError(f"unknown implementation {impl!r}")


def pool_fn(impl, spec, x):
    """A callable running `spec`'s pooling of `x` in `impl` ("pyconvx" or "torch"; max pooling
    without indices)."""
    if impl == "pyconvx":
        if spec.kind == "max":
            return lambda: ops.max_pool2d(x, spec.kernel, spec.stride, spec.pad)
        if spec.kind == "avg":
            return lambda: ops.avg_pool2d(x, spec.kernel, spec.stride, spec.pad)
        return lambda: ops.global_avg_pool2d(x)
    if impl == "torch":
        import torch

        F, tx = torch.nn.functional, torch.from_numpy(x)
        if spec.kind == "max":
            pool = lambda: F.max_pool2d(tx, spec.kernel, spec.stride, spec.pad)  # noqa: E731
        elif spec.kind == "avg":
            pool = lambda: F.avg_pool2d(tx, spec.kernel, spec.stride, spec.pad)  # noqa: E731
        else:
            pool = lambda: F.adaptive_avg_pool2d(tx, 1)  # noqa: E731

        def run():
            with torch.no_grad():
                return pool()

        return run
    raise ValueError(f"unknown implementation {impl!r}")


def gemm_fn(impl, a, b):
    """A callable computing a @ b in `impl` ("pyconvx", "torch" or "numpy")."""
    if impl == "pyconvx":
        return lambda: ops.gemm(a, b)
    if impl == "numpy":
        return lambda: a @ b
    if impl == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: torch.mm(ta, tb)
    raise ValueError(f"unknown implementation {impl!r}")


def network_fn(impl, spec, x, y, model):
    """A callable running `spec` in `impl` ("pyconvx" or "torch"); `model` is the pyconvx model,
    whose weights the torch module starts from (so that forward passes can be compared)."""
    if impl == "pyconvx":
        if spec.task == "forward":
            return lambda: model.predict(x, batch_size=spec.batch)
        model.compile(optimizer=optimizers.SGD(learning_rate=0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        return lambda: model.fit(x, y, batch_size=spec.batch, epochs=1, verbose=0, shuffle=False)
    if impl == "torch":
        import torch

        from .. import torch_models

        module = {"lenet5": lambda: torch_models.lenet5(spec.num_classes),
                  "resnet50": lambda: torch_models.ResNet(torch_models.Bottleneck, (3, 4, 6, 3), spec.num_classes)}
        module = module[spec.model]()
        state = {key: torch.from_numpy(np.ascontiguousarray(value.T if transposed else value))
                 for key, value, transposed, _ in torch_entries(model.layers)}
        module.load_state_dict(state, strict=False)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        if spec.task == "forward":
            module.eval()

            def forward():
                with torch.no_grad():
                    return module(tx)

            return forward
        module.train()
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

        def epoch():
            for start in range(0, spec.n, spec.batch):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(module(tx[start:start + spec.batch]),
                                                         ty[start:start + spec.batch])
                loss.backward()
                optimizer.step()

        return epoch
    raise ValueError(f"unknown implementation {impl!r}")


# ---------------------------------------------------------------------------------------------
# Table rows


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (NaN if either holds a NaN)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if expected.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / (np.max(np.abs(expected)) or 1.0))


def _ratio(times, baseline):
    """baseline ms / pyconvx ms (> 1: pyconvx is faster), or None when the baseline was not run."""
    return times[baseline] / times["pyconvx"] if baseline in times else None


def _time_impls(make_fn, impls, timing, companions=None):
    """{impl: Timing} for the implementations' callables and {impl: its output} for the checks.

    pyconvx and torch take turns (see time_calls): they share one OpenMP runtime. NumPy is timed
    on its own afterwards, because OpenBLAS's threads keep spinning for a while after each
    matmul and would slow down whichever kernel ran next on a machine with few cores.
    `companions` ({name: callable}) take their turns too, untimed by the result (a PeakProbe).
    """
    fns = {impl: make_fn(impl) for impl in impls}
    turns = {impl: fn for impl, fn in fns.items() if impl != "numpy"}
    timings = time_calls({**turns, **(companions or {})}, **timing)
    for name in companions or {}:
        del timings[name]
    if "numpy" in fns:
        timings["numpy"] = time_call(fns["numpy"], **timing)
    outputs = {impl: fn() for impl, fn in fns.items()}
    if "numpy" in fns:
        time.sleep(0.2)  # let OpenBLAS's threads go to sleep before the next measurement
    return timings, outputs


def _medians(timings):
    return {impl: t.median_ms for impl, t in timings.items()}


def _minimums(timings):
    return {impl: t.min_ms for impl, t in timings.items()}


def _rates(times, flops, peak_gflops):
    """The figures of a timed row: medians and minimums per implementation, pyconvx's GFLOP/s and
    percentage of the peak, and its ratios against torch and NumPy (None where not timed)."""
    ms = _medians(times)
    gflops = flops / (ms["pyconvx"] * 1e6)
    return {"ms": ms, "min_ms": _minimums(times), "gflops": gflops,
            "peak_percent": 100 * gflops / peak_gflops if peak_gflops else None,
            "vs_torch": _ratio(ms, "torch"), "vs_numpy": _ratio(ms, "numpy")}


def _reference_error(outputs, torch, numpy_baseline):
    """pyconvx's relative error against torch's output (or NumPy's, without torch), or None."""
    reference = "torch" if torch else "numpy" if numpy_baseline else None
    return relative_error(outputs["pyconvx"], np.asarray(outputs[reference])) if reference else None


def workspace_mib(fn):
    """The scratch memory (MiB) pyconvx's kernels hold at most while `fn` runs once, per-thread
    buffers left by earlier calls freed first (runtime.workspace_usage)."""
    runtime.reset_workspace_peak()
    fn()
    return runtime.workspace_usage()["peak_bytes"] / 2**20


def peak_memory_mib(fn):
    """The most memory (MiB) one call of `fn` holds at once beyond what existed before it, as
    {"python": ..., "workspace": ..., "total": ...}: the peak of the Python objects and NumPy
    arrays allocated during the call (tracemalloc, to which NumPy reports array data, results of
    the kernels included), the peak of the kernels' own scratch, which tracemalloc does not see
    (runtime.workspace_usage, per-thread buffers from earlier calls freed first), and their sum,
    an upper bound of the two together (their peaks may fall at different moments). Memory of
    other libraries (torch, BLAS) is not counted.

    >>> import numpy as np
    >>> peak = peak_memory_mib(lambda: np.ones((1024, 1024), np.float32))
    >>> round(peak["python"], 1), peak["workspace"]
    (4.0, 0.0)
    """
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        runtime.reset_workspace_peak()
        fn()
        python = (tracemalloc.get_traced_memory()[1] - before) / 2**20
        workspace = runtime.workspace_usage()["peak_bytes"] / 2**20
    finally:
        if not tracing:
            tracemalloc.stop()
    return {"python": python, "workspace": workspace, "total": python + workspace}


def run_conv(spec, torch=False, numpy_baseline=True, backward=True, peak_gflops=None, timing=None, seed=0):
    """Times one convolution row on the threads already set (see set_threads), checks pyconvx's
    outputs against torch's (or NumPy's, without torch), and returns the row as a dict."""
    timing = timing or {}
    x, weight, bias, grad_out = spec.make(np.random.default_rng(seed))
    row = {"name": spec.name, "shape": spec.summary, "flops": spec.flops,
           "algorithm": ops.conv2d_algorithm(spec.x_shape, spec.w_shape, **spec.kwargs), "errors": {}}

    impls = ["pyconvx"] + ["torch"] * bool(torch) + ["numpy"] * bool(numpy_baseline)
    times, outputs = _time_impls(lambda impl: conv_forward_fn(impl, spec, x, weight, bias), impls, timing)
    row.update({f"forward_{key}": value for key, value in _rates(times, spec.flops, peak_gflops).items()})
    row["forward_workspace_mib"] = workspace_mib(conv_forward_fn("pyconvx", spec, x, weight, bias))
    if torch or numpy_baseline:
        row["errors"]["forward"] = _reference_error(outputs, torch, numpy_baseline)
    del outputs  # the largest outputs are hundreds of MB; free them before the next pass

    if backward:
        impls = ["pyconvx"] + ["torch"] * bool(torch)
        times, grads = _time_impls(lambda impl: conv_backward_fn(impl, spec, x, weight, grad_out), impls, timing)
        row["backward_ms"], row["backward_min_ms"] = _medians(times), _minimums(times)
        row["backward_workspace_mib"] = workspace_mib(conv_backward_fn("pyconvx", spec, x, weight, grad_out))
        row["backward_gflops"] = spec.backward_flops / (times["pyconvx"].median_ms * 1e6)
        row["backward_vs_torch"] = _ratio(row["backward_ms"], "torch")
        if torch:
            for i, name in enumerate(("grad_x", "grad_weight")):
                row["errors"][name] = relative_error(grads["pyconvx"][i], grads["torch"][i].numpy())
    return row


def run_pool(spec, torch=False, timing=None, seed=0):
    """Times one pooling row (and torch's, checking that the outputs agree); returns it as a dict."""
    x = spec.make(np.random.default_rng(seed))
    impls = ["pyconvx"] + ["torch"] * bool(torch)
    times, outputs = _time_impls(lambda impl: pool_fn(impl, spec, x), impls, timing or {})
    row = {"name": spec.name, "shape": spec.summary, "kind": spec.kind, "bytes": spec.bytes,
           "ms": _medians(times), "min_ms": _minimums(times), "errors": {}}
    row["gbytes_per_s"] = spec.bytes / (times["pyconvx"].median_ms * 1e6)
    row["vs_torch"] = _ratio(row["ms"], "torch")
    if torch:
        row["errors"]["out"] = relative_error(outputs["pyconvx"], outputs["torch"].numpy())
    return row


def run_gemm(spec, torch=False, numpy_baseline=True, probe_seconds=0.05, timing=None, seed=0):
    """Times one GEMM row (torch's and NumPy's too, checking that the products agree) and an FMA
    peak probe of `probe_seconds` in the same rounds (PeakProbe); returns the row as a dict with
    pyconvx's GFLOP/s, the probe's median "peak_gflops" and the one as a percentage of the other."""
    a, b = spec.make(np.random.default_rng(seed))
    impls = ["pyconvx"] + ["torch"] * bool(torch) + ["numpy"] * bool(numpy_baseline)
    probe = PeakProbe(probe_seconds)
    times, outputs = _time_impls(lambda impl: gemm_fn(impl, a, b), impls, timing or {}, {"peak": probe})
    row = {"name": spec.name, "shape": spec.summary, "flops": spec.flops, "errors": {},
           "peak_gflops": probe.median()}
    row.update(_rates(times, spec.flops, row["peak_gflops"]))
    if torch or numpy_baseline:
        row["errors"]["out"] = _reference_error(outputs, torch, numpy_baseline)
    return row


def run_network(spec, torch=False, timing=None, seed=0):
    """Times one network row (and torch's; for a forward pass, checking that the logits agree)
    and measures pyconvx's peak memory in one more run (peak_memory_mib); returns it as a dict."""
    x, y = spec.make(np.random.default_rng(seed))
    model = getattr(models, spec.model)(num_classes=spec.num_classes, input_shape=spec.input_shape, seed=seed)
    impls = ["pyconvx"] + ["torch"] * bool(torch)
    # Both start from the same weights; torch's copy is taken before pyconvx trains them.
    fns = {impl: network_fn(impl, spec, x, y, model) for impl in reversed(impls)}
    times = time_calls(fns, **(timing or {}))
    row = {"name": spec.name, "shape": spec.summary, "task": spec.task, "ms": _medians(times),
           "min_ms": _minimums(times), "errors": {}}
    row["vs_torch"] = _ratio(row["ms"], "torch")
    # After the timing, on its own: tracing allocations slows Python code down.
    row["peak_mib"] = peak_memory_mib(fns["pyconvx"])
    if torch and spec.task == "forward":
        row["errors"]["logits"] = relative_error(fns["pyconvx"](), fns["torch"]().numpy())
    return row


def denormal_slowdown(algorithm="auto", rounds=9, seed=0):
    """How much slower a convolution (4 images of 32 channels, 24x24, 32 3x3 filters, padding 1,
    `algorithm` forced) runs when every input is denormal (the inputs times 2**-130) than on the
    normal inputs: the ratio of the best times of the two, timed in alternation for `rounds`
    rounds so that a burst of load on a shared machine hits both alike. With the kernels flushing
    denormals (pyconvx.set_flush_denormals, the default) it stays near 1; without, CPUs that take
    microcode assists on denormals give 30-120.

    >>> denormal_slowdown("direct") < 10          # doctest: +SKIP
    True
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 32, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    tiny = (x * np.float32(2.0**-130)).astype(np.float32)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, inputs in enumerate((x, tiny)):
            start = time.perf_counter()
            ops.conv2d(inputs, w, padding=1, algorithm=algorithm)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[1] / best[0]


def geometric_mean(values):
    """Geometric mean of the positive numbers among `values` (None skipped), or None if there are none."""
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summarize(conv_rows, pool_rows, engine_rows=()):
    """For each ratio (forward, backward and pooling vs torch; forward vs NumPy; whole networks
    vs the faster inference engine and vs torch): its geometric mean, its minimum and the row with
    it, over the rows that have it; None where none do."""
    def stats(rows, key):
        pairs = [(row[key], row["name"]) for row in rows if row.get(key) is not None]
        if not pairs:
            return None
        worst, worst_name = min(pairs)
        return {"geomean": geometric_mean([r for r, _ in pairs]), "min": worst, "min_name": worst_name,
                "rows": len(pairs)}

    return {"forward_vs_torch": stats(conv_rows, "forward_vs_torch"),
            "backward_vs_torch": stats(conv_rows, "backward_vs_torch"),
            "pool_vs_torch": stats(pool_rows, "vs_torch"),
            "forward_vs_numpy": stats(conv_rows, "forward_vs_numpy"),
            "networks_vs_best_engine": stats(engine_rows, "vs_best_engine"),
            "networks_vs_torch": stats([{"name": r["name"], "vs_torch": r["vs"].get("torch")} for r in engine_rows],
                                       "vs_torch")}


def errors_above(rows, tolerance=ERROR_TOLERANCE):
    """(row name, output, relative error) for each checked output that does not match (or is NaN)."""
    return [(row["name"], output, err) for row in rows for output, err in row["errors"].items()
            if not err <= tolerance]


def run_benchmarks(threads=None, only=None, with_torch=True, backward=True, numpy_baseline=True, min_time=0.3,
                   quick=False, progress=None):
    """Measures the FMA peak, then every selected row of CONV_TABLE, POOL_TABLE, GEMM_TABLE,
    NETWORK_TABLE and engines.ENGINE_TABLE.

    threads: for pyconvx and torch alike (default: pyconvx's current count); only: name
    substrings (see select); quick: fewer repeats, for a smoke run; progress: a function wrapping
    the list of specs in an iterable (a progress bar). The thread counts are put back afterwards.
    Returns a JSON-serialisable dict: the settings (the peers found among them), "conv", "pool",
    "gemm", "network" and "engines" rows, the "memory" of a ResNet-50 predict, and a "summary".
    """
    from . import engines

    torch = load_torch() if with_torch else None
    versions = engines.peer_versions()
    peers = [peer for peer, version in versions.items() if version and (torch is not None or peer != "torch")]
    if torch is None:  # the peers run torch's export
        peers = []
    threads = threads or runtime.get_num_threads()
    before = (runtime.get_num_threads(), torch.get_num_threads() if torch else None)
    # Every timing gets a warm-up call first; quick runs accept one timed call when it is slow.
    timing = dict(min_time=min(min_time, 0.05), min_runs=1) if quick else dict(min_time=min_time, min_runs=5)
    # Other work on the machine skews every figure: the report says how busy it was.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    set_threads(threads, torch)
    try:
        probe = 0.1 if quick else 0.3
        peak = measure_peak(probe)
        specs = (select(CONV_TABLE, only) + select(POOL_TABLE, only) + select(GEMM_TABLE, only)
                 + select(NETWORK_TABLE, only))
        conv_rows, pool_rows, gemm_rows, network_rows = [], [], [], []
        runs = engines.EngineRuns(threads, timing, peers)
        engine_rows = []
        for spec in (progress or iter)(specs + select(engines.ENGINE_TABLE, only)):
            if isinstance(spec, engines.EngineSpec):
                engine_rows.append(runs.row(spec))
                continue
            if isinstance(spec, ConvSpec):
                conv_rows.append(run_conv(spec, torch is not None, numpy_baseline, backward, None, timing))
            elif isinstance(spec, PoolSpec):
                pool_rows.append(run_pool(spec, torch is not None, timing))
            elif isinstance(spec, GemmSpec):
                gemm_rows.append(run_gemm(spec, torch is not None, numpy_baseline, probe / 6, timing))
            else:
                network_rows.append(run_network(spec, torch is not None, timing))
        runs.close()
        # Probed again at the end: a neighbour that held a core during the first probe would
        # otherwise halve the ceiling and double every percentage.
        peak = max(peak, measure_peak(probe))
        for row in conv_rows:
            row["forward_peak_percent"] = 100 * row["forward_gflops"] / peak
    finally:
        set_threads(before[0], None)
        if torch is not None:
            torch.set_num_threads(before[1])
    return {
        "version": __version__, "isa": runtime.cpu_info()["active"], "threads": threads,
        "torch": torch.__version__ if torch else None, "numpy": np.__version__, "machine": platform.machine(),
        "peak_gflops": peak, "load_average": load, "timing": timing, "peers": {p: versions[p] for p in engines.PEERS},
        "peers_run": peers, "conv": conv_rows, "pool": pool_rows, "gemm": gemm_rows, "network": network_rows,
        "engines": engine_rows, "memory": runs.memory, "summary": summarize(conv_rows, pool_rows, engine_rows),
    }
