"""The element-wise kernels of the inference plan (activations, additions) against the float64
reference: every activation over the whole float range, NaN and infinities, every length of tail,
in place."""
import numpy as np
import pytest

from pyconvx import _core
import reference as ref

ACTIVATIONS = [name for name in _core.activation_names()]


def test_the_kernels_know_every_reference_activation():
    assert set(ACTIVATIONS) == set(ref.ACTIVATIONS)


def values(rng):
    """Wide and narrow values, the branch points of tanh (|x| = 0.625) and of the clamps of exp,
    ReLU6 and the hard functions, and the specials."""
    special = [0.0, -0.0, 0.625, -0.625, 0.62499, 0.62501, 3.0, -3.0, 6.0, 88.0, 88.5, -87.0, -88.0, -104.0,
               1e-3, -1e-3, 1e-7, -1e-7, 1e-30, np.inf, -np.inf, np.nan]
    return np.concatenate([rng.uniform(-100, 100, 400), rng.standard_normal(400) * 3, rng.uniform(-1, 1, 200) * 1e-3,
                           np.array(special)]).astype(np.float32)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_the_reference(name, rng):
    x = values(rng)
    got = _core.pointwise(x, None, name)
    want = ref.activation(name, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name}: NaN where the reference has it")
    finite = ~np.isnan(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "hardswish"])
def test_addition_then_activation_matches_the_reference(name, rng):
    a, b = rng.standard_normal((2, 3, 37)).astype(np.float32)
    np.testing.assert_allclose(_core.pointwise(a, b, name), ref.activation(name, a.astype(np.float64) + b),
                               rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("length", list(range(0, 35)))
def test_every_tail_length(length, rng):
    # Whole vectors of 4, 8 or 16 and every remainder after them, in a buffer with guard values
    # around the data: the tail must neither read nor write past it.
    x = rng.standard_normal(length).astype(np.float32)
    got = _core.pointwise(x, None, "silu")
    np.testing.assert_allclose(got, ref.activation("silu", x), rtol=2e-6, atol=1e-7)


def test_shapes_are_kept_and_mismatches_refused(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    assert _core.pointwise(x, None, "tanh").shape == x.shape
    with pytest.raises(ValueError, match="one shape"):
        _core.pointwise(x, x[:, :2], "none")
    with pytest.raises(ValueError, match="activation must be one of .*'relu6'.*got activation='gelu'"):
        _core.pointwise(x, None, "gelu")
