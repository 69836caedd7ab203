"""Optimizers: in-place updates, the formulas by hand, and torch.optim as an oracle."""
import numpy as np
import pytest

from pyconvx import layers, optimizers


def run(optimizer, params, gradients):
    """Applies each step's gradients (a list per step) to copies of params; returns the copies."""
    params = [p.copy() for p in params]
    for step in gradients:
        optimizer.apply_gradients((f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, step)))
    return params


def test_sgd_momentum_by_hand():
    p = np.array([1.0], np.float32)
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    for _ in range(2):
        opt.apply_gradients([("p", p, np.array([1.0], np.float32))])
    # buffer 1 then 1.9: 1 - 0.1 - 0.19
    assert p[0] == pytest.approx(0.71, rel=1e-6)


def test_adam_first_step_is_learning_rate_sized():
    p = np.zeros(3, np.float32)
    optimizers.Adam(learning_rate=0.01).apply_gradients([("p", p, np.array([1e-3, 5.0, -2.0], np.float32))])
    np.testing.assert_allclose(p, [-0.01, -0.01, 0.01], rtol=1e-3)


def test_updates_are_in_place_and_state_follows_the_key():
    a, b = np.ones(2, np.float32), np.ones(2, np.float32)
    opt = optimizers.SGD(learning_rate=1.0, momentum=0.5)
    opt.apply_gradients([("a", a, np.ones(2)), ("b", b, np.zeros(2))])
    opt.apply_gradients([("b", b, np.zeros(2)), ("a", a, np.ones(2))])  # order does not matter
    np.testing.assert_allclose(a, [1 - 1 - 1.5] * 2)
    np.testing.assert_allclose(b, [1, 1])
    assert a.dtype == np.float32 and opt.iterations == 2


def test_step_updates_trainable_layers_only(rng):
    frozen, live = layers.Dense(2, trainable=False), layers.Dense(2)
    for layer in (frozen, live):
        layer.build((3,), rng)
        layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    before = frozen.get_weights(), live.get_weights()
    optimizers.SGD(learning_rate=0.5).step([frozen, live])
    for got, want in zip(frozen.get_weights(), before[0]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(live.get_weights(), before[1]):
        np.testing.assert_allclose(got, want - 0.5)


@pytest.mark.parametrize("make, match", [
    (lambda: optimizers.SGD(learning_rate=-1), "learning_rate must be >= 0"),
    (lambda: optimizers.SGD(nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: optimizers.Adam(beta_1=1.0), "beta_1 must be >= 0.0 and < 1.0"),
    (lambda: optimizers.RMSprop(epsilon=float("nan")), "epsilon must be"),
    (lambda: optimizers.get("adagrad"), "optimizer must be an Optimizer or one of"),
    (lambda: optimizers.SGD().apply_gradients([("w", np.zeros(2), np.zeros(3))]), r"'w' has shape \(3,\)"),
])
def test_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_get_by_name():
    assert isinstance(optimizers.get("SGD"), optimizers.SGD)
    adam = optimizers.Adam()
    assert optimizers.get(adam) is adam


ORACLE = [
    ("sgd", lambda: optimizers.SGD(0.1), lambda torch, p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum_decay", lambda: optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-2),
     lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2)),
    ("sgd_nesterov", lambda: optimizers.SGD(0.05, momentum=0.8, nesterov=True),
     lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    ("adam", lambda: optimizers.Adam(1e-2), lambda torch, p: torch.optim.Adam(p, lr=1e-2, eps=1e-7)),
    ("adam_betas_decay", lambda: optimizers.Adam(3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-5, weight_decay=0.1),
     lambda torch, p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-5, weight_decay=0.1)),
    ("rmsprop", lambda: optimizers.RMSprop(1e-2),
     lambda torch, p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-7)),
    ("rmsprop_centered_momentum", lambda: optimizers.RMSprop(1e-2, rho=0.8, momentum=0.7, centered=True),
     lambda torch, p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.8, eps=1e-7, momentum=0.7, centered=True)),
]


@pytest.mark.parametrize("ours, theirs", [pytest.param(o, t, id=i) for i, o, t in ORACLE])
def test_matches_torch_optim(ours, theirs, rng):
    torch = pytest.importorskip("torch")
    params = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]
    gradients = [[rng.standard_normal(p.shape).astype(np.float32) for p in params] for _ in range(6)]
    got = run(ours(), params, gradients)
    tensors = [torch.tensor(p.copy()) for p in params]
    optimizer = theirs(torch, tensors)
    for step in gradients:
        for tensor, g in zip(tensors, step):
            tensor.grad = torch.tensor(g)
        optimizer.step()
    for mine, tensor in zip(got, tensors):
        np.testing.assert_allclose(mine, tensor.numpy(), rtol=1e-5, atol=1e-6)
