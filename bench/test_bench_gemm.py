"""Large square GEMMs over pyconvx.benchmarks.GEMM_TABLE, pyconvx and torch side by side."""
import pytest

from pyconvx.benchmarks import GEMM_TABLE, gemm_fn


@pytest.mark.parametrize("impl", ["pyconvx", "torch"])
@pytest.mark.parametrize("spec", [pytest.param(spec, id=spec.name) for spec in GEMM_TABLE])
def test_gemm(timed, need_impl, rng, spec, impl):
    need_impl(impl)
    timed(gemm_fn(impl, *spec.make(rng)), f"gemm {spec.name} ({spec.summary})", gflop=spec.flops / 1e9)
