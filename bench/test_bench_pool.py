"""Pooling over pyconvx.benchmarks.POOL_TABLE, pyconvx and torch side by side."""
import pytest

from pyconvx.benchmarks import POOL_TABLE, pool_fn


@pytest.mark.parametrize("impl", ["pyconvx", "torch"])
@pytest.mark.parametrize("spec", [pytest.param(spec, id=spec.name) for spec in POOL_TABLE])
def test_pool(timed, need_impl, rng, spec, impl):
    need_impl(impl)
    timed(pool_fn(impl, spec, spec.make(rng)), f"pool {spec.name} ({spec.summary})", mbytes=spec.bytes / 1e6)
