"""Multi-task learning: the masked binary cross-entropy (missing labels as NaN or -1) against a
float64 reference and finite differences, its use in a model, and the per-task metrics."""
import functools
import math

import numpy as np
import pytest

import pyconvx
from pyconvx import layers, losses, metrics
from test_gradcheck import numeric_grad


def reference_masked_bce(y_true, y_pred, from_logits, normalize):
    """Element by element in float64 with math.log; a missing label (NaN or -1) is skipped."""
    total, present = 0.0, 0
    for label, score in zip(np.ravel(y_true), np.ravel(y_pred)):
        if math.isnan(label) or label == -1:
            continue
        p = 1.0 / (1.0 + math.exp(-score)) if from_logits else min(max(score, 1e-7), 1 - 1e-7)
        total -= label * math.log(p) + (1 - label) * math.log(1 - p)
        present += 1
    divisor = len(y_true) if normalize == "batch" else present
    return total / divisor if divisor else 0.0


def labels_with_missing(rng, shape, missing=0.3):
    y = rng.integers(0, 2, shape).astype(np.float64)
    holes = rng.random(shape) < missing
    y[holes] = np.where(rng.random(shape) < 0.5, np.nan, -1.0)[holes]  # both markers
    return y


@pytest.mark.parametrize("normalize", losses.MASKED_NORMALIZATIONS)
@pytest.mark.parametrize("from_logits", [False, True])
def test_masked_loss_matches_the_reference_and_finite_differences(from_logits, normalize, rng):
    y_true = labels_with_missing(rng, (7, 4))
    y_pred = rng.standard_normal((7, 4)) * 3 if from_logits else rng.uniform(0.05, 0.95, (7, 4))
    assert losses.missing_labels(y_true).any() and (~losses.missing_labels(y_true)).any()
    loss = functools.partial(losses.masked_binary_crossentropy, from_logits=from_logits, normalize=normalize)
    value, grad = loss(y_true, y_pred)
    assert value == pytest.approx(reference_masked_bce(y_true, y_pred, from_logits, normalize), rel=1e-12)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    numeric = numeric_grad(lambda: loss(y_true, y_pred)[0], y_pred)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    assert np.all(grad[losses.missing_labels(y_true)] == 0.0)


def test_missing_predictions_do_not_matter_even_when_not_finite():
    y_true = np.array([[1.0, np.nan], [-1.0, 0.0]])
    y_pred = np.array([[2.0, 5.0], [-3.0, -1.0]], np.float32)
    other = y_pred.copy()
    other[0, 1], other[1, 0] = np.nan, np.inf
    for normalize in losses.MASKED_NORMALIZATIONS:
        a = losses.masked_binary_crossentropy(y_true, y_pred, from_logits=True, normalize=normalize)
        b = losses.masked_binary_crossentropy(y_true, other, from_logits=True, normalize=normalize)
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and b[1].dtype == np.float32


def test_without_missing_labels_it_is_the_plain_loss_summed_over_tasks_or_averaged(rng):
    y_true, z = rng.integers(0, 2, (6, 3)).astype(float), rng.standard_normal((6, 3))
    plain, plain_grad = losses.binary_crossentropy(y_true, z, from_logits=True)
    present, present_grad = losses.masked_binary_crossentropy(y_true, z, from_logits=True, normalize="present")
    batch, batch_grad = losses.masked_binary_crossentropy(y_true, z, from_logits=True)
    assert present == pytest.approx(plain, rel=1e-12) and batch == pytest.approx(3 * plain, rel=1e-12)
    np.testing.assert_allclose(present_grad, plain_grad, rtol=1e-12)
    np.testing.assert_allclose(batch_grad, 3 * plain_grad, rtol=1e-12)


def test_a_batch_without_labels_has_zero_loss_and_gradient():
    value, grad = losses.masked_binary_crossentropy(np.full((3, 2), np.nan), np.ones((3, 2)) * 0.3,
                                                    normalize="present")
    assert value == 0.0 and not grad.any()


def test_torch_masked_mean_agrees(rng):
    torch = pytest.importorskip("torch")
    y_true, z = labels_with_missing(rng, (8, 5)), rng.standard_normal((8, 5))
    mask = ~losses.missing_labels(y_true)
    logits = torch.tensor(z, requires_grad=True)
    elementwise = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor(np.where(mask, y_true, 0.0)), reduction="none")
    want = (elementwise * torch.tensor(mask)).sum() / mask.sum()
    want.backward()
    value, grad = losses.masked_binary_crossentropy(y_true, z, from_logits=True, normalize="present")
    assert value == pytest.approx(want.item(), rel=1e-10)
    np.testing.assert_allclose(grad, logits.grad.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("y_true, y_pred, kwargs, message", [
    ([[2.0]], [[0.5]], {}, "labels in [0, 1]"),
    ([[-0.5]], [[0.5]], {}, "-0.5"),
    ([[np.inf]], [[0.5]], {}, "inf"),
    ([[1.0]], [[0.5]], {"normalize": "mean"}, "normalize='mean'"),
    ([[1.0, 0.0]], [[0.5]], {}, "same shape"),
    (1.0, 0.5, {}, "batch axis"),
])
def test_bad_arguments_are_named(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match="masked_binary_crossentropy") as info:
        losses.masked_binary_crossentropy(y_true, y_pred, **kwargs)
    assert message in str(info.value)


def test_compile_takes_it_by_name_and_accuracy_ignores_missing_labels():
    assert losses.get("masked_binary_crossentropy") is losses.masked_binary_crossentropy
    y_true = [[1.0, np.nan], [0.0, -1.0]]
    accuracy = metrics.accuracy_for(losses.masked_binary_crossentropy)
    assert accuracy(y_true, [[0.9, 0.9], [0.2, 0.9]]) == 1.0
    logit_accuracy = metrics.accuracy_for(functools.partial(losses.masked_binary_crossentropy, from_logits=True))
    assert logit_accuracy(y_true, [[0.1, -5.0], [-0.1, -5.0]]) == 1.0
    assert np.isnan(metrics.masked_binary_accuracy([[np.nan]], [[0.3]]))


def heads_model(weights_from):
    """Four Dense(1, sigmoid) heads holding the columns of a Dense(4) layer's weights."""
    x = pyconvx.Input((3,))
    model = pyconvx.Model(x, [layers.Dense(1, activation="sigmoid", name=f"task{j}")(x) for j in range(4)])
    kernel, bias = weights_from
    model.set_weights([array for j in range(4) for array in (kernel[:, [j]], bias[[j]])])
    return model


def test_one_output_per_task_trains_like_one_output_for_all_tasks(rng):
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = labels_with_missing(rng, (10, 4)).astype(np.float32)
    joint = pyconvx.Sequential([layers.Dense(4, activation="sigmoid")], input_shape=(3,), seed=0)
    split = heads_model(joint.get_weights())
    initial_kernel = joint.get_weights()[0]
    for model in (joint, split):
        model.compile(optimizer=pyconvx.optimizers.SGD(learning_rate=0.5), loss="masked_binary_crossentropy")
    split_y = [y[:, [j]] for j in range(4)]
    assert split.evaluate(x, split_y, return_dict=True)["loss"] == pytest.approx(joint.evaluate(x, y), rel=1e-5)
    joint.fit(x, y, batch_size=10, epochs=3, verbose=0, shuffle=False)
    split.fit(x, split_y, batch_size=10, epochs=3, verbose=0, shuffle=False)
    kernel, bias = joint.get_weights()
    trained = split.get_weights()
    np.testing.assert_allclose(np.hstack(trained[0::2]), kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate(trained[1::2]), bias, rtol=1e-5, atol=1e-6)
    assert not np.allclose(kernel, initial_kernel, atol=1e-3)  # the three steps did move the weights


def test_training_with_missing_labels_keeps_the_weights_finite(rng):
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    y[::3, 0], y[1::4, 1] = np.nan, -1
    model = pyconvx.Sequential([layers.Dense(2, activation="sigmoid")], input_shape=(3,), seed=0)
    model.compile(optimizer=pyconvx.optimizers.Adam(learning_rate=0.05), loss="masked_binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=30, verbose=0, seed=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_task_metrics_per_column_over_present_labels(rng):
    y_true = labels_with_missing(rng, (40, 3))
    scores = rng.random((40, 3))
    report = metrics.task_metrics(y_true, scores, names=["a", "b", "c"])
    assert list(report) == ["a", "b", "c"]
    for j, name in enumerate(report):
        keep = ~losses.missing_labels(y_true[:, j])
        truth, predicted = y_true[keep, j] == 1, scores[keep, j] > 0.5
        assert report[name]["support"] == keep.sum() and report[name]["missing"] == (~keep).sum()
        assert report[name]["accuracy"] == pytest.approx(np.mean(truth == predicted))
        assert report[name]["precision"] == pytest.approx((truth & predicted).sum() / predicted.sum())
        assert report[name]["recall"] == pytest.approx((truth & predicted).sum() / truth.sum())
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    keep = ~losses.missing_labels(y_true[:, 1])
    assert report["b"]["f1"] == pytest.approx(sklearn_metrics.f1_score(y_true[keep, 1], scores[keep, 1] > 0.5))


def test_task_metrics_takes_per_output_lists_and_dicts():
    y_true = np.array([[1, 0], [0, np.nan], [1, 1]])
    scores = [np.array([[2.0], [-1.0], [-3.0]]), np.array([0.5, 9.0, 1.0])]  # logits, as predict returns
    by_list = metrics.task_metrics(y_true, scores, threshold=0.0)
    by_dict = metrics.task_metrics({"p": y_true[:, 0], "q": y_true[:, 1]}, {"q": scores[1], "p": scores[0]},
                                   threshold=0.0)
    assert list(by_list) == ["task_0", "task_1"] and list(by_dict) == ["p", "q"]
    assert by_list["task_0"] == by_dict["p"] and by_list["task_1"] == by_dict["q"]
    assert by_dict["p"]["recall"] == 0.5 and by_dict["q"]["precision"] == 0.5 and by_dict["q"]["missing"] == 1
    assert str(by_dict).splitlines()[1].split() == ["p", "0.667", "1.000", "0.500", "0.667", "3", "0"]


@pytest.mark.parametrize("y_pred, names, message", [
    (np.zeros((3, 2)), ["only"], "names must name the 2 tasks"),
    (np.zeros((4, 2)), None, "same tasks and examples"),
    ([np.zeros(3), np.zeros(2)], None, "differ in length"),
    (np.zeros((3, 2, 1)), None, "must be (N, tasks)"),
])
def test_task_metrics_errors_name_the_problem(y_pred, names, message):
    with pytest.raises(ValueError, match="task_metrics") as info:
        metrics.task_metrics(np.zeros((3, 2)), y_pred, names=names)
    assert message in str(info.value)
