"""`pyconvx train`: the LeNet-5 recipe on the bundled digits, and its shift augmentation."""
import numpy as np
import pytest

from pyconvx import cli, recipes

pytest.importorskip("sklearn")


def test_shifted_copies_move_each_image_by_its_own_offset():
    x = np.zeros((200, 2, 7, 7), np.float32)
    x[:, :, 3, 3] = 1.0  # one bright pixel in the middle of each image and channel
    out = recipes.shifted_copies(x, 2, np.random.default_rng(0), fill=-1.0)
    assert out.shape == x.shape
    rows, cols = np.nonzero(out[:, 0] == 1.0)[1:]
    assert len(rows) == 200 and set(rows) <= set(range(1, 6)) and set(cols) <= set(range(1, 6))
    assert len(set(zip(rows, cols))) == 25  # every offset in [-2, 2]^2 drawn among 200 images
    np.testing.assert_array_equal(out[:, 0], out[:, 1])  # channels move together
    moved = np.nonzero((rows != 3) | (cols != 3))[0][0]
    assert (out[moved] == -1.0).any()  # the uncovered border takes the fill value


def test_lenet5_reaches_97_percent_on_held_out_digits():
    result = recipes.train_lenet5_digits(verbose=0)
    assert result["dev_accuracy"] >= 0.97, result
    assert result["train_accuracy"] >= result["dev_accuracy"] - 0.01


def test_train_command_prints_both_accuracies(capsys):
    assert cli.main(["train", "lenet5", "--epochs", "1", "--quiet", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lenet5 on digits: train accuracy 0.") and "dev accuracy 0." in out
    assert "(1 epochs" in out and "1 threads)" in out


def test_transfer_digits_reports_every_way_and_the_cached_feature_timing():
    result = recipes.transfer_digits(shots=3, draws=2, pretrain_epochs=5, epochs=15, timing_epochs=1, verbose=0)
    assert result["source_accuracy"] >= 0.95  # the pretrained network knows its five digits
    ways = ("scratch", "fine_tune_all", "frozen_to_s4", "head_only")
    for way in ways:
        assert len(result["per_draw"][way]) == 2
        assert result[way] == pytest.approx(np.mean(result["per_draw"][way]))
        assert 0.3 < result[way] <= 1.0, (way, result[way])  # five classes: chance is 0.2
    # Training the whole network from the pretrained start beats training only a new head on
    # features learned for other digits: those features hardly separate the new ones.
    assert result["fine_tune_all"] > result["head_only"] + 0.1 and result["scratch"] > 0.6
    assert result["speedup"] == pytest.approx(result["frozen_trunk_epoch_seconds"] / result["cached_epoch_seconds"])
