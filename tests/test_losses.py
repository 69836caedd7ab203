"""Losses: values, float64 finite-difference gradients, stability, torch as an oracle; metrics."""
import functools

import numpy as np
import pytest

from pyconvx import losses, metrics
from test_gradcheck import numeric_grad


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def soft_targets(rng, shape):
    t = rng.uniform(0, 1, shape)
    return t / t.sum(axis=1, keepdims=True)


CASES = [
    ("categorical_logits", lambda rng: (one_hot(rng.integers(0, 4, 5), 4), rng.standard_normal((5, 4)) * 3),
     losses.categorical_crossentropy),
    ("categorical_soft_targets", lambda rng: (soft_targets(rng, (5, 4)), rng.standard_normal((5, 4))),
     losses.categorical_crossentropy),
    ("categorical_probabilities", lambda rng: (soft_targets(rng, (5, 4)), rng.uniform(0.05, 0.95, (5, 4))),
     functools.partial(losses.categorical_crossentropy, from_logits=False)),
    ("sparse", lambda rng: (rng.integers(0, 4, 6), rng.standard_normal((6, 4)) * 3),
     losses.sparse_categorical_crossentropy),
    ("sparse_probabilities", lambda rng: (rng.integers(0, 4, 6), rng.uniform(0.05, 0.95, (6, 4))),
     functools.partial(losses.sparse_categorical_crossentropy, from_logits=False)),
    ("binary_probabilities", lambda rng: (rng.integers(0, 2, (6, 1)).astype(float), rng.uniform(0.05, 0.95, (6, 1))),
     losses.binary_crossentropy),
    ("binary_logits", lambda rng: (rng.uniform(0, 1, (6, 3)), rng.standard_normal((6, 3)) * 4),
     functools.partial(losses.binary_crossentropy, from_logits=True)),
    ("mse", lambda rng: (rng.standard_normal((4, 3)), rng.standard_normal((4, 3))), losses.mse),
]


@pytest.mark.parametrize("make, loss", [pytest.param(m, f, id=i) for i, m, f in CASES])
def test_gradient_matches_finite_differences(make, loss, rng):
    y_true, y_pred = make(rng)
    value, grad = loss(y_true, y_pred)
    assert isinstance(value, float) and np.isfinite(value)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    numeric = numeric_grad(lambda: loss(y_true, y_pred)[0], y_pred)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_gradient_keeps_float32():
    _, grad = losses.sparse_categorical_crossentropy([1], np.zeros((1, 3), np.float32))
    assert grad.dtype == np.float32


def test_crossentropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]])
    value, grad = losses.sparse_categorical_crossentropy([1, 0], logits)
    assert value == pytest.approx((2e4 + 1e4 + np.log(2)) / 2)
    assert np.isfinite(grad).all()
    value, grad = losses.binary_crossentropy([[1.0], [0.0]], [[-800.0], [800.0]], from_logits=True)
    assert value == pytest.approx(800.0) and np.isfinite(grad).all()
    value, _ = losses.binary_crossentropy([[1.0]], [[0.0]])  # a probability of 0 is clipped, not log(0)
    assert value == pytest.approx(-np.log(1e-7))


def test_values_by_hand():
    assert losses.sparse_categorical_crossentropy([2], [[0.0, 0.0, 0.0, 0.0]])[0] == pytest.approx(np.log(4))
    assert losses.categorical_crossentropy([[0.0, 1.0]], [[0.2, 0.8]], from_logits=False)[0] == pytest.approx(
        -np.log(0.8))
    assert losses.binary_crossentropy([[1.0, 0.0]], [[0.9, 0.2]])[0] == pytest.approx(
        -(np.log(0.9) + np.log(0.8)) / 2)
    assert losses.mean_squared_error([[0.0, 0.0]], [[1.0, 3.0]])[0] == pytest.approx(5.0)


@pytest.mark.parametrize("call, match", [
    (lambda: losses.categorical_crossentropy(np.zeros((2, 3)), np.zeros((2, 4))),
     r"y_true \(2, 3\) and y_pred \(2, 4\)"),
    (lambda: losses.sparse_categorical_crossentropy([0, 3], np.zeros((2, 3))), r"labels must be in \[0, 3\)"),
    (lambda: losses.sparse_categorical_crossentropy([0.5, 1], np.zeros((2, 3))), "integer class labels"),
    (lambda: losses.sparse_categorical_crossentropy([0, 1, 2], np.zeros((2, 3))), r"y_true \(3,\)"),
    (lambda: losses.mse(np.zeros(3), np.zeros(4)), "same shape"),
    (lambda: losses.get("hinge"), "loss must be a callable or one of"),
])
def test_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metrics():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert metrics.sparse_categorical_accuracy([0, 1, 1], logits) == pytest.approx(2 / 3)
    assert metrics.categorical_accuracy(one_hot([0, 1, 1], 2), logits) == pytest.approx(2 / 3)
    assert metrics.binary_accuracy([[1], [0]], [[0.7], [0.6]]) == 0.5
    logit_accuracy = metrics.accuracy_for(functools.partial(losses.binary_crossentropy, from_logits=True))
    assert logit_accuracy([[1], [0]], [[0.3], [-0.2]]) == 1.0
    assert metrics.get("accuracy", losses.sparse_categorical_crossentropy)[1] is metrics.sparse_categorical_accuracy



@pytest.fixture
def torch_module():
    return pytest.importorskip("torch")


def torch_value_and_grad(torch, fn, y_pred):
    t = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    value = fn(t)
    value.backward()
    return float(value.detach()), t.grad.numpy()


def test_losses_match_torch(torch_module, rng):
    F = torch_module.nn.functional
    labels, logits = rng.integers(0, 5, 7), rng.standard_normal((7, 5)) * 4
    want = torch_value_and_grad(torch_module, lambda t: F.cross_entropy(t, torch_module.tensor(labels)), logits)
    got = losses.sparse_categorical_crossentropy(labels, logits)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-14)

    targets = soft_targets(rng, (7, 5))
    want = torch_value_and_grad(torch_module, lambda t: F.cross_entropy(t, torch_module.tensor(targets)), logits)
    got = losses.categorical_crossentropy(targets, logits)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-14)

    y, z = rng.uniform(0, 1, (6, 2)), rng.standard_normal((6, 2)) * 5
    yt = torch_module.tensor(y)
    for from_logits, pred, fn in [(True, z, lambda t: F.binary_cross_entropy_with_logits(t, yt)),
                                  (False, 1 / (1 + np.exp(-z)), lambda t: F.binary_cross_entropy(t, yt))]:
        want = torch_value_and_grad(torch_module, fn, pred)
        got = losses.binary_crossentropy(y, pred, from_logits=from_logits)
        assert got[0] == pytest.approx(want[0], rel=1e-9)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-7, atol=1e-12)

    want = torch_value_and_grad(torch_module, lambda t: F.mse_loss(t, yt), z)
    got = losses.mse(y, z)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
