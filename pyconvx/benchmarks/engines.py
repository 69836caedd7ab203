"""Whole networks at inference against the engines users run on CPUs: torch eager (under
torch.inference_mode()), ONNX Runtime and OpenVINO, each on the same thread count, from the same
weights, with the logits compared in the run.

torch defines the peers' networks (pyconvx.torch_models, loaded with the pyconvx model's
weights), and its ONNX export (opset 17, the batch a dynamic axis) is what ONNX Runtime and
OpenVINO run: without torch there is nothing to compare with. Every peer is optional and
imported only here, only when a row is measured.

>>> [spec.name for spec in ENGINE_TABLE][:3]
['resnet18_b1', 'resnet18_b8', 'resnet50_b1']
"""
import importlib
import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .. import models
from ..torch_weights import torch_entries

__all__ = ["EngineSpec", "ENGINE_TABLE", "PEERS", "peer_versions", "torch_module", "export_onnx", "NetworkPeers",
           "time_engines", "run_engine_row", "EngineRuns", "rss_growth_mib"]

#: The peers in the order they are reported, with the extra that installs each.
PEERS = {"torch": "pip install 'pyconvx[bench]'", "onnxruntime": "pip install 'pyconvx[bench]'",
         "openvino": "pip install openvino"}


@dataclass(frozen=True)
class EngineSpec:
    """`predict` of the zoo network `model` on `batch` images of `input_shape`."""

    name: str
    model: str
    batch: int
    input_shape: tuple = (3, 224, 224)
    num_classes: int = 1000

    @property
    def summary(self):
        return f"predict, batch {self.batch}, {'x'.join(map(str, self.input_shape))}"


ENGINE_TABLE = tuple(EngineSpec(f"{name}_b{batch}", name, batch)
                     for name in ("resnet18", "resnet50", "googlenet", "vgg16", "mobilenet_v2") for batch in (1, 8))


def peer_versions():
    """{peer: its installed version, or None}: found from the package metadata, nothing imported."""
    versions = {}
    for peer in PEERS:
        try:
            versions[peer] = importlib.metadata.version(peer)
        except importlib.metadata.PackageNotFoundError:
            versions[peer] = None
    if versions["onnxruntime"] is not None:  # the export needs onnx too
        try:
            importlib.metadata.version("onnx")
        except importlib.metadata.PackageNotFoundError:
            versions["onnxruntime"] = versions["openvino"] = None
    return versions


def torch_module(name, model):
    """The torch module of zoo network `name` (pyconvx.torch_models) holding `model`'s weights,
    in eval mode."""
    import torch

    from .. import torch_models

    make = {"resnet18": lambda: torch_models.ResNet(torch_models.BasicBlock, (2, 2, 2, 2), model.output_shape[0]),
            "resnet50": lambda: torch_models.ResNet(torch_models.Bottleneck, (3, 4, 6, 3), model.output_shape[0]),
            "googlenet": lambda: torch_models.GoogLeNet(model.output_shape[0]),
            "vgg16": lambda: torch_models.VGG(models.vgg.VGG16, model.output_shape[0]),
            "mobilenet_v2": lambda: torch_models.MobileNetV2(model.output_shape[0])}[name]
    with torch.device("meta"):  # torch's own initialisation would be thrown away
        module = make()
    module = module.to_empty(device="cpu")
    state = {key: torch.from_numpy(np.ascontiguousarray(value.T if transposed else value))
             for key, value, transposed, _ in torch_entries(model.layers)}
    state.update({key: value for key, value in module.state_dict().items() if key.endswith("num_batches_tracked")})
    module.load_state_dict(state, strict=True)
    return module.eval()


def export_onnx(module, input_shape, path):
    """`module` exported to ONNX at `path` (opset 17, the batch a dynamic axis, one input "x" and
    one output "logits")."""
    import torch

    x = torch.zeros((1,) + tuple(input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), path, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return path


class NetworkPeers:
    """One zoo network in pyconvx and in every installed peer, from the same weights: built once,
    for all its batch sizes. `peers` names the peers to run (a subset of PEERS)."""

    def __init__(self, name, input_shape, num_classes, threads, peers, seed=0):
        self.name = name
        self.model = getattr(models, name)(num_classes=num_classes, input_shape=input_shape, seed=seed)
        self.threads, self.peers = threads, list(peers)
        self.module = torch_module(name, self.model) if "torch" in self.peers else None
        self._directory = tempfile.TemporaryDirectory(prefix="pyconvx-bench-")
        self.onnx_path = None
        if self.module is not None and ({"onnxruntime", "openvino"} & set(self.peers)):
            self.onnx_path = export_onnx(self.module, input_shape, os.path.join(self._directory.name, f"{name}.onnx"))
        self._ort = None

    def close(self):
        self._directory.cleanup()

    def runners(self, x):
        """{engine: a callable returning the logits of x} for pyconvx and each peer."""
        batch = len(x)
        fns = {"pyconvx": lambda: self.model.predict(x, batch_size=batch)}
        if self.module is not None:
            import torch

            tx = torch.from_numpy(x)

            def torch_eager():
                with torch.inference_mode():
                    return self.module(tx).numpy()

            fns["torch"] = torch_eager
        if self.onnx_path and "onnxruntime" in self.peers:
            session = self._ort_session()
            fns["onnxruntime"] = lambda: session.run(None, {"x": x})[0]
        if self.onnx_path and "openvino" in self.peers:
            request = self._openvino_request(x.shape)
            fns["openvino"] = lambda: request.infer({0: x})[0].copy()
        return fns

    def _ort_session(self):
        if self._ort is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
            self._ort = onnxruntime.InferenceSession(self.onnx_path, options, providers=["CPUExecutionProvider"])
        return self._ort

    def _openvino_request(self, shape):
        import openvino

        core = openvino.Core()
        network = core.read_model(self.onnx_path)
        network.reshape({0: list(shape)})  # a static batch, as it runs fastest
        compiled = core.compile_model(network, "CPU", {"INFERENCE_NUM_THREADS": self.threads,
                                                       "PERFORMANCE_HINT": "LATENCY",
                                                       "INFERENCE_PRECISION_HINT": "f32"})
        return compiled.create_infer_request()


def _relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / (np.max(np.abs(expected)) or 1.0))


def time_engines(fns, min_time=0.3, min_runs=5, rounds=3, pause=0.1):
    """{engine: (median ms, fastest ms)} of each callable of `fns`, taking turns in `rounds` rounds:
    in each, every engine gets a pause, one untimed call, then timed calls (at least min_runs /
    rounds and min_time / rounds seconds of them).

    Engines take turns by blocks, not call by call: each keeps worker threads that spin for a
    while after a call (ONNX Runtime's for tens of milliseconds), and a call made while another
    engine's threads spin shares the cores with them (pyconvx's MobileNetV2 predict right after
    ONNX Runtime's: 2-3 times its own time). The pause and the untimed call let the other
    engines' threads go to sleep and wake the engine's own, as a program using one of them sees
    it."""
    samples = {engine: [] for engine in fns}
    per_round = max(1, -(-min_runs // rounds))
    for _ in range(rounds):
        for engine, fn in fns.items():
            time.sleep(pause)
            fn()
            start, count = time.perf_counter(), 0
            while count < per_round or time.perf_counter() - start < min_time / rounds:
                before = time.perf_counter()
                fn()
                samples[engine].append(time.perf_counter() - before)
                count += 1
    return {engine: (1e3 * statistics.median(times), 1e3 * min(times)) for engine, times in samples.items()}


def run_engine_row(spec, network, timing, seed=0):
    """Times `spec` on pyconvx and the peers of `network` (a NetworkPeers) with time_engines;
    returns the row: each engine's median and fastest time, the ratios (their time over
    pyconvx's), pyconvx's against the faster of ONNX Runtime and OpenVINO, each peer's logits'
    relative difference from pyconvx's, and the plan's memory."""
    x = np.random.default_rng(seed).standard_normal((spec.batch,) + tuple(spec.input_shape), dtype=np.float32)
    fns = network.runners(x)
    outputs = {engine: fn() for engine, fn in fns.items()}
    times = time_engines(fns, timing.get("min_time", 0.3), timing.get("min_runs", 5))
    ms = {engine: median for engine, (median, _) in times.items()}
    engines = [ms[e] for e in ("onnxruntime", "openvino") if e in ms]
    plan = network.model.inference_plan(batch_size=spec.batch)
    return {
        "name": spec.name, "shape": spec.summary, "ms": ms, "min_ms": {e: fastest for e, (_, fastest) in times.items()},
        "vs": {engine: ms[engine] / ms["pyconvx"] for engine in ms if engine != "pyconvx"},
        "vs_best_engine": min(engines) / ms["pyconvx"] if engines else None,
        "errors": {f"logits vs {engine}": _relative_error(outputs["pyconvx"], out)
                   for engine, out in outputs.items() if engine != "pyconvx"},
        "plan_mib": sum(plan.memory.values()) / 2**20,
    }


class EngineRuns:
    """Rows of ENGINE_TABLE measured one after another (`row(spec)`), each network built once for
    its consecutive rows. When the resnet50 batch-8 row was measured, `memory` holds the
    resident-memory growth of that predict in fresh processes, for pyconvx and ONNX Runtime
    (rss_growth_mib), measured when its network is done (`close()` ends the last one)."""

    def __init__(self, threads, timing, peers):
        self.threads, self.timing, self.peers = threads, timing, peers
        self.network, self._batches, self.memory = None, set(), {}

    def row(self, spec):
        if self.network is None or self.network.name != spec.model:
            self.close()
            self.network = NetworkPeers(spec.model, spec.input_shape, spec.num_classes, self.threads, self.peers)
        self._batches.add(spec.batch)
        return run_engine_row(spec, self.network, self.timing)

    def close(self):
        network, self.network = self.network, None
        if network is None:
            return
        try:
            if network.name == "resnet50" and 8 in self._batches:
                self.memory["resnet50_b8 pyconvx"] = rss_growth_mib("pyconvx", "resnet50", 8, self.threads)
                if network.onnx_path and "onnxruntime" in self.peers:
                    self.memory["resnet50_b8 onnxruntime"] = rss_growth_mib("onnxruntime", "resnet50", 8,
                                                                            self.threads, network.onnx_path)
        finally:
            network.close()
            self._batches = set()


_RSS_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np

    def rss():
        with open("/proc/self/statm") as statm:
            import os
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    engine, name, batch, threads, onnx_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    if engine == "pyconvx":
        import pyconvx
        pyconvx.set_num_threads(threads)
        model = getattr(pyconvx.models, name)(seed=0)
        before = rss()
        model.predict(x, batch_size=batch)
    else:
        import onnxruntime
        model = open(onnx_path, "rb").read()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        before = rss()
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        session.run(None, {"x": x})
    print((rss() - before) / 2**20)
    """
)


def rss_growth_mib(engine, name, batch, threads, onnx_path=""):
    """The resident memory (MiB) a fresh process gains by the first predict of zoo network
    `name` on `batch` images: for "pyconvx" from the built model (its weights already there) to
    after the call, for "onnxruntime" from the ONNX file read into memory to after creating the
    session and running it. Both include the engine's prepared weights and its activations."""
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, engine, name, str(batch), str(threads), onnx_path],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"rss_growth_mib({engine!r}, {name!r}): {proc.stderr[-2000:]}")
    return float(proc.stdout.split()[-1])
