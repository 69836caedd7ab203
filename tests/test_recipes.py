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
    ways = ("scratch", "flips_shrink_perturb", "fine_tune_all", "head_then_all", "head_only")
    result = recipes.transfer_digits(shots=(3,), draws=3, pretrain_epochs=5, epochs=16, ways=ways, timing_epochs=1,
                                     verbose=0)
    assert result["source_accuracy"] >= 0.95  # the pretrained network knows its five digits
    # ... and the one pretrained on them and their mirror images tells most of the 20 shapes apart
    # (a 0 or a 1 looks much the same upside down, so not all)
    assert 0.6 < result["flips_source_accuracy"] < result["source_accuracy"]
    assert (result["pool"], result["scored"]) == (717, 179)  # all 5-9 training digits; the test split
    for way in ways:
        per_draw = result["accuracy"][3][way]
        assert len(per_draw) == 3
        assert result["mean"][3][way] == pytest.approx(np.mean(per_draw))
        assert result["std"][3][way] == pytest.approx(np.std(per_draw))
        assert 0.3 < result["mean"][3][way] <= 1.0, (way, result["mean"][3][way])  # five classes: chance is 0.2
    # the headline: the recommended transfer way minus scratch, draw by draw
    gains = np.subtract(result["accuracy"][3]["flips_shrink_perturb"], result["accuracy"][3]["scratch"])
    assert result["gain"][3] == pytest.approx(gains.mean()) and result["wins"][3] == (gains > 0).sum()
    # Training the whole network from the pretrained start beats training only a new head on
    # features learned for other digits: those features hardly separate the new ones. (Against
    # scratch: the README's figures.)
    assert result["mean"][3]["fine_tune_all"] > result["mean"][3]["head_only"] + 0.05
    assert result["mean"][3]["scratch"] > 0.6
    assert result["speedup"] == pytest.approx(result["frozen_trunk_epoch_seconds"] / result["cached_epoch_seconds"])


def test_transfer_digits_on_the_dev_split_keeps_the_test_digits_out():
    result = recipes.transfer_digits(shots=1, draws=1, pretrain_epochs=1, epochs=1, evaluate_on="dev",
                                     ways=("scratch", "flips_shrink_perturb"), timing_epochs=0, verbose=0)
    # 30% of the 717 training digits of 5-9 are scored, the examples come from the rest
    assert (result["pool"], result["scored"]) == (502, 215) and result["shots"] == (1,)
    assert "speedup" not in result
    with pytest.raises(ValueError, match="evaluate_on"):
        recipes.transfer_digits(evaluate_on="train", verbose=0)
    with pytest.raises(ValueError, match="ways"):
        recipes.transfer_digits(ways=("fine_tune_all", "head_only"), verbose=0)
    with pytest.raises(ValueError, match="flips_shrink_perturb"):  # the headline needs its transfer way
        recipes.transfer_digits(ways=("scratch", "fine_tune_all"), verbose=0)
