"""Inference fusion: conv -> batch norm (-> ReLU) chains run as one convolution in predict and
evaluate, and give what the layers give one by one."""
import numpy as np
import pytest

import pyconvx
from pyconvx import layers, models
from pyconvx.layers import fusion


def randomise_batch_norms(model, rng):
    """Batch-norm parameters and statistics away from their identity start."""
    for layer in model.layers:
        for sub in [layer] + list(getattr(layer, "sublayers", [])):
            if isinstance(sub, layers.BatchNormalization):
                c = sub.params["gamma"].shape[0]
                sub.params["gamma"][:] = rng.uniform(0.5, 1.5, c)
                sub.params["beta"][:] = rng.normal(0, 0.2, c)
                sub.state["moving_mean"][:] = rng.normal(0, 0.2, c)
                sub.state["moving_variance"][:] = rng.uniform(0.5, 2.0, c)


def test_predict_of_a_resnet_matches_the_unfused_forward():
    rng = np.random.default_rng(0)
    model = models.resnet18(num_classes=7, input_shape=(3, 32, 32), seed=0)
    randomise_batch_norms(model, rng)
    x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    unfused = model.forward(x, training=False)
    fused = model.predict(x, batch_size=3)
    np.testing.assert_allclose(fused, unfused, rtol=1e-4, atol=1e-4 * np.abs(unfused).max())


def test_chains_fuse_only_where_inner_values_feed_nothing_else():
    x = pyconvx.Input((3, 8, 8))
    a = layers.Conv2D(4, 3, padding=1, use_bias=True, name="a")(x)
    a_bn = layers.BatchNormalization(name="a_bn")(a)
    a_out = layers.ReLU(name="a_relu")(a_bn)                      # conv -> bn -> relu: fused whole
    b = layers.Conv2D(4, 3, padding=1, name="b")(a_out)
    b_bn = layers.BatchNormalization(name="b_bn")(b)
    b_out = layers.Add(name="add")([layers.ReLU(name="b_relu")(b_bn), b_bn])  # bn feeds two: no ReLU
    c = layers.Conv2D(4, 1, name="c")(b_out)
    c_bn = layers.BatchNormalization(name="c_bn")(c)               # c is an output too: not fused
    model = pyconvx.Model([x], [c_bn, c])
    plan = fusion.fusion_plan(model._graph.nodes, model._graph.outputs)
    chains = {chain[0].layer.name: (chain[1].layer.name, chain[2] and chain[2].layer.name)
              for chain in plan.values() if chain is not None}
    assert chains == {"a": ("a_bn", "a_relu"), "b": ("b_bn", None)}

    rng = np.random.default_rng(1)
    randomise_batch_norms(model, rng)
    data = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    for fused, unfused in zip(model.predict(data), model.forward(data, training=False)):
        np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-5)


def test_forward_outside_inference_only_keeps_what_backward_needs():
    model = pyconvx.Sequential([layers.Conv2D(4, 3), layers.BatchNormalization(), layers.ReLU(), layers.Flatten(),
                                layers.Dense(2)], input_shape=(1, 6, 6), seed=0)
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6)).astype(np.float32)
    model.predict(x)  # fused, leaves no state behind
    out = model.forward(x, training=False)
    grads = model.backward(np.ones_like(out))
    assert grads is None or all(g is None or np.isfinite(g).all() for g in np.atleast_1d(grads))
    assert not fusion.in_inference_only()


def test_inference_only_is_per_thread_and_restores():
    import threading

    seen = []
    with fusion.inference_only():
        worker = threading.Thread(target=lambda: seen.append(fusion.in_inference_only()))
        worker.start()
        worker.join()
        assert fusion.in_inference_only()
    assert seen == [False] and not fusion.in_inference_only()
