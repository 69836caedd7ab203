"""Whole networks over pyconvx.benchmarks.NETWORK_TABLE (a LeNet-5 training epoch), pyconvx and torch
side by side from the same initial weights. (Inference against the engines: test_bench_engines.py.)"""
import pytest

from pyconvx import models
from pyconvx.benchmarks import NETWORK_TABLE, network_fn


@pytest.mark.parametrize("impl", ["pyconvx", "torch"])
@pytest.mark.parametrize("spec", [pytest.param(spec, id=spec.name) for spec in NETWORK_TABLE])
def test_network(timed, need_impl, rng, spec, impl):
    need_impl(impl)
    x, y = spec.make(rng)
    model = getattr(models, spec.model)(num_classes=spec.num_classes, input_shape=spec.input_shape, seed=0)
    timed(network_fn(impl, spec, x, y, model), f"network {spec.name} ({spec.summary})")
