"""Convolution forward and backward over pyconvx.benchmarks.CONV_TABLE, pyconvx and torch side by side."""
import pytest

from pyconvx.benchmarks import CONV_TABLE, conv_backward_fn, conv_forward_fn

IMPLS = ["pyconvx", "torch"]
SPECS = [pytest.param(spec, id=spec.name) for spec in CONV_TABLE]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("spec", SPECS)
def test_conv_forward(timed, need_impl, rng, spec, impl):
    need_impl(impl)
    x, weight, bias, _ = spec.make(rng)
    timed(conv_forward_fn(impl, spec, x, weight, bias), f"conv forward {spec.name} ({spec.summary})",
          gflop=spec.flops / 1e9)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("spec", SPECS)
def test_conv_backward(timed, need_impl, rng, spec, impl):
    need_impl(impl)
    x, weight, _, grad_out = spec.make(rng)
    timed(conv_backward_fn(impl, spec, x, weight, grad_out), f"conv backward {spec.name} ({spec.summary})",
          gflop=spec.backward_flops / 1e9)
