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


def test_grid_tiles_a_batch_row_by_row():
    x = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 4), np.float32)
    out = augment.grid(x, nrow=2, padding=1, fill=-1.0)
    assert out.shape == (2, 3 * 4 + 1, 2 * 5 + 1) and out.dtype == np.float32
    for n in range(5):
        row, col = divmod(n, 2)
        np.testing.assert_array_equal(out[:, 1 + 4 * row:4 + 4 * row, 1 + 5 * col:5 + 5 * col], x[n])
    assert (out[:, 9:12, 6:10] == -1.0).all()            # the empty sixth place
    assert (out[:, 0] == -1.0).all() and (out[:, :, -1] == -1.0).all()
    assert augment.grid(x, nrow=8, padding=0).shape == (2, 3, 20)
    with pytest.raises(ValueError, match="nrow=0"):
        augment.grid(x, nrow=0)
