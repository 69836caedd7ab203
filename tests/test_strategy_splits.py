"""Train/dev/test splits: sizes by rule, fraction or count, stratification, the mismatched split."""
import numpy as np
import pytest

from pyconvx.strategy import default_split_sizes, mismatched_split, train_dev_test_split


@pytest.mark.parametrize("n, expected", [(100, (20, 20)), (50_000, (10_000, 10_000)), (50_001, (10_000, 10_000)),
                                         (1_000_000, (10_000, 10_000)), (1, (0, 0)), (3, (1, 1))])
def test_default_rule_is_60_20_20_then_capped(n, expected):
    assert default_split_sizes(n) == expected


def test_a_million_examples_split_98_1_1():
    y = np.arange(1_000_000)
    parts = train_dev_test_split(y, y, seed=0)
    assert [len(p) for p in parts[::2]] == [980_000, 10_000, 10_000]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts[::2])), y)  # a partition
    np.testing.assert_array_equal(parts[0], parts[1])  # x and y stay paired


def test_fractions_counts_and_order():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    x_train, y_train, x_dev, y_dev, x_test, y_test = train_dev_test_split(x, y, dev=0.1, test=7, shuffle=False)
    assert (len(y_train), len(y_dev), len(y_test)) == (38, 5, 7)
    np.testing.assert_array_equal(np.concatenate([y_train, y_dev, y_test]), y)
    np.testing.assert_array_equal(x_dev[:, 0], 2 * y_dev)
    a = train_dev_test_split(x, y, seed=3)
    b = train_dev_test_split(x, y, seed=3)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[1], train_dev_test_split(x, y, seed=4)[1])
    assert len(train_dev_test_split(x, y, dev=0, test=0)[0]) == 50


def test_stratified_split_keeps_class_proportions():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=1000, p=[0.7, 0.2, 0.07, 0.03])
    x = np.arange(1000)
    x_train, y_train, x_dev, y_dev, x_test, y_test = train_dev_test_split(x, y, dev=0.15, test=0.15, seed=1,
                                                                          stratify=True)
    overall = np.bincount(y, minlength=4)
    for part in (y_train, y_dev, y_test):
        np.testing.assert_allclose(np.bincount(part, minlength=4), overall * len(part) / len(y), atol=1.01)
    np.testing.assert_array_equal(y[x_dev], y_dev)
    assert len(np.union1d(np.union1d(x_train, x_dev), x_test)) == 1000


def test_mismatched_split_holds_out_only_target_data():
    web = (np.zeros((2000, 3)), np.zeros(2000, int))
    extra = (np.full((500, 3), 2.0), np.full(500, 2))
    app = (np.ones((400, 3)), np.ones(400, int))
    split = mismatched_split([web, extra], app, dev=100, test=0.25, train_dev=200, seed=0)
    train, train_dev, dev, test = split
    assert (len(train.x), len(train_dev.x), len(dev.x), len(test.x)) == (2500, 200, 100, 100)
    assert set(dev.y) == {1} and set(test.y) == {1}
    assert (train.y == 1).sum() + (train_dev.y == 1).sum() == 200  # the rest of the target trains
    assert set(train_dev.y) == {0, 1, 2}  # training-dev is drawn from the training distribution
    assert "train_dev" in str(split)
    default = mismatched_split(web, app, seed=0)
    assert len(default.dev.x) == len(default.test.x) == len(default.train_dev.x) == 80


@pytest.mark.parametrize("call, message", [
    (lambda: train_dev_test_split(np.zeros(5), np.zeros(4)), r"shapes \(5,\) and \(4,\)"),
    (lambda: train_dev_test_split(np.zeros(0), np.zeros(0)), "empty"),
    (lambda: train_dev_test_split(np.zeros(10), np.zeros(10), dev=1.5), "dev=1.5"),
    (lambda: train_dev_test_split(np.zeros(10), np.zeros(10), test=11), "test=11"),
    (lambda: train_dev_test_split(np.zeros(10), np.zeros(10), dev=5, test=5), "leaving none for training"),
    (lambda: train_dev_test_split(np.zeros(10), np.zeros(10), dev="10%"), "dev='10%'"),
    (lambda: train_dev_test_split(np.zeros(10), np.eye(10), stratify=True), r"shape \(10, 10\) \(one-hot"),
    (lambda: mismatched_split((np.zeros((5, 2)), np.zeros(5)), (np.zeros((5, 3)), np.zeros(5))), "shape"),
    (lambda: mismatched_split((np.zeros((5, 2)), np.zeros(5)), (np.zeros((5, 2)), np.zeros(5)), dev=3, test=3),
     "more than the 5 of the target"),
    (lambda: mismatched_split([], (np.zeros((5, 2)), np.zeros(5))), "train_sources"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
