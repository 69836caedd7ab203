"""Compose and RandomApply: order, per-image choices, reproducibility; the grid helper."""
import numpy as np
import pytest

from pyconvx import augment


class AddOne(augment.Transform):
    def apply(self, x, rng):
        return x + 1


class Double(augment.Transform):
    def apply(self, x, rng):
        return 2 * x


def test_compose_applies_in_order_and_passes_the_generator_along():
    x = np.ones((2, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(augment.Compose([AddOne(), Double()])(x), 4 * x)
    np.testing.assert_array_equal(augment.Compose([Double(), AddOne()])(x), 3 * x)
    t = augment.Compose([augment.RandomCrop(3, padding=1), augment.RandomHorizontalFlip()])
    y = np.random.default_rng(0).random((20, 2, 3, 3))
    np.testing.assert_array_equal(t(y, rng=np.random.default_rng(1)), t(y, rng=np.random.default_rng(1)))
    assert t(y[0]).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="every transform must be callable"):
        augment.Compose([AddOne(), 3])


def test_random_apply_chooses_each_image_on_its_own():
    x = np.zeros((400, 1, 1, 1), np.float32)
    out = augment.RandomApply(AddOne(), p=0.3)(x, rng=np.random.default_rng(0))
    assert set(np.unique(out)) == {0.0, 1.0} and 90 < out.sum() < 150
    np.testing.assert_array_equal(augment.RandomApply(AddOne(), p=0.0)(x), x)
    np.testing.assert_array_equal(augment.RandomApply(AddOne(), p=1.0)(x), x + 1)
    np.testing.assert_array_equal(augment.RandomApply(AddOne(), p=0.3)(x, rng=np.random.default_rng(0)), out)


def test_random_apply_refuses_bad_probabilities_and_shape_changes():
    with pytest.raises(ValueError, match="p=2"):
        augment.RandomApply(AddOne(), p=2)
    with pytest.raises(ValueError, match="must keep the image shape"):
        augment.RandomApply(augment.CenterCrop(1), p=1.0)(np.zeros((2, 1, 3, 3)))
