"""Whole networks at inference over pyconvx.benchmarks.engines.ENGINE_TABLE: pyconvx's predict, torch
eager, ONNX Runtime and OpenVINO side by side from the same weights (the peers that are installed)."""
import pytest

from pyconvx.benchmarks import engines

ENGINES = ["pyconvx", "torch", "onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def networks(threads):
    """NetworkPeers by model name, built on first use and kept for the module's rows."""
    peers = [peer for peer, version in engines.peer_versions().items() if version]
    built = {}

    def get(spec):
        if spec.model not in built:
            built[spec.model] = engines.NetworkPeers(spec.model, spec.input_shape, spec.num_classes, threads, peers)
        return built[spec.model]

    yield get
    for network in built.values():
        network.close()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("spec", [pytest.param(spec, id=spec.name) for spec in engines.ENGINE_TABLE])
def test_predict(timed, rng, networks, spec, engine):
    x = rng.standard_normal((spec.batch,) + spec.input_shape, dtype="float32")
    fns = networks(spec).runners(x)
    if engine not in fns:
        pytest.skip(f"{engine} is not installed (pyconvx[bench] installs torch and ONNX Runtime)")
    timed(fns[engine], f"predict {spec.name} ({spec.summary})")
