"""Error analysis: tagging, the table, ceilings, sampling errors, mislabeled examples."""
import numpy as np
import pytest

from pyconvx.strategy import ErrorAnalysis, mislabeled_analysis, sample_errors


def test_table_counts_overlapping_categories():
    analysis = ErrorAnalysis(["dog", "great cat", "blurry", "filter"], dev_error=0.10)
    analysis.tag(range(0, 8), "dog")
    analysis.tag([8, 9, 10, 11], "great cat", "blurry", note="lions at dusk")
    analysis.tag([12, 13, 14, 15], "blurry")
    analysis.tag(np.arange(16, 20))  # examined, no category
    table = analysis.table()
    assert table.examined == 20
    assert table.as_dict() == {"dog": (8, 0.4), "great cat": (4, 0.2), "blurry": (8, 0.4), "filter": (0, 0.0)}
    assert analysis.notes[9] == "lions at dusk" and analysis.tags[9] == {"great cat", "blurry"}
    text = str(table)
    assert "dog" in text and "40.0%" in text and "20 errors examined" in text
    assert analysis.ceiling("dog") == pytest.approx(0.06)
    assert analysis.ceiling("filter") == pytest.approx(0.10)


def test_with_labels_the_dev_error_and_false_positives_follow():
    y_true = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
    y_pred = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 0])  # errors at 0 (FN), 1 (FP), 4 (FN), 6 (FP)
    analysis = ErrorAnalysis(["night"], y_true=y_true, y_pred=y_pred)
    assert analysis.dev_error == pytest.approx(0.4)
    analysis.tag([0, 1, 4, 6])
    analysis.tag(1, "night")
    rows = analysis.table().as_dict()
    assert rows["false positives"] == (2, 0.5) and rows["false negatives"] == (2, 0.5)
    assert analysis.ceiling("night") == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"examples \[2\] are classified correctly"):
        analysis.tag(2, "night")
    with pytest.raises(ValueError, match=r"index \[10\] is outside the dev set of 10"):
        analysis.tag(10)
    multiclass = ErrorAnalysis(["x"], y_true=[0, 1, 2], y_pred=[1, 2, 2])
    multiclass.tag(0)
    assert "false positives" not in multiclass.table().as_dict()


def test_bad_use_is_named():
    analysis = ErrorAnalysis(["dog"])
    with pytest.raises(ValueError, match=r"unknown categories \['cat'\]"):
        analysis.tag(0, "cat")
    with pytest.raises(ValueError, match="no example is tagged"):
        analysis.table()
    analysis.tag(0, "dog")
    with pytest.raises(ValueError, match="ceiling needs the dev error"):
        analysis.ceiling("dog")
    with pytest.raises(ValueError, match="unknown category 'cat'"):
        analysis.ceiling("cat")
    with pytest.raises(ValueError, match="index must be an int"):
        analysis.tag(1.5, "dog")
    with pytest.raises(ValueError, match="categories must be distinct"):
        ErrorAnalysis(["a", "a"])
    with pytest.raises(ValueError, match="dev_error=1.2"):
        ErrorAnalysis(["a"], dev_error=1.2)
    with pytest.raises(ValueError, match="both y_true and y_pred"):
        ErrorAnalysis(["a"], y_true=[0, 1])
    with pytest.raises(ValueError, match="disagrees"):
        ErrorAnalysis(["a"], y_true=[0, 1], y_pred=[0, 0], dev_error=0.1)


def test_sample_errors_picks_only_misclassified_examples():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 1000)
    y_pred = np.where(rng.random(1000) < 0.8, y_true, rng.integers(0, 3, 1000))
    picked = sample_errors(y_true, y_pred, n=100, seed=1)
    assert len(picked) == 100 and len(set(picked.tolist())) == 100
    assert np.all(y_true[picked] != y_pred[picked]) and np.all(np.diff(picked) > 0)
    np.testing.assert_array_equal(picked, sample_errors(y_true, y_pred, n=100, seed=1))
    everything = sample_errors(y_true, y_pred, n=10_000)
    np.testing.assert_array_equal(everything, np.flatnonzero(y_true != y_pred))
    assert len(sample_errors([0, 1], [0, 1])) == 0
    with pytest.raises(ValueError, match="same length"):
        sample_errors([0, 1], [0])
    with pytest.raises(ValueError, match="n=0"):
        sample_errors([0, 1], [1, 0], n=0)


def test_mislabeled_analysis_splits_the_dev_error():
    result = mislabeled_analysis(0.10, n_examined=100, n_mislabeled=6)
    assert result.due_to_labels == pytest.approx(0.006) and result.other_causes == pytest.approx(0.094)
    assert not result.worth_fixing and "not worth fixing" in result.verdict
    assert "9.4%" in str(result) and "0.6%" in str(result)
    later = mislabeled_analysis(0.02, n_examined=100, n_mislabeled=30)
    assert later.due_to_labels == pytest.approx(0.006) and later.worth_fixing and "worth fixing" in later.verdict
    for kwargs, message in [(dict(dev_error=-0.1, n_examined=10, n_mislabeled=1), "dev_error=-0.1"),
                            (dict(dev_error=0.1, n_examined=0, n_mislabeled=0), "n_examined=0"),
                            (dict(dev_error=0.1, n_examined=10, n_mislabeled=11), "n_mislabeled=11 exceeds"),
                            (dict(dev_error=0.1, n_examined=10, n_mislabeled=-1), "n_mislabeled=-1")]:
        with pytest.raises(ValueError, match=message):
            mislabeled_analysis(**kwargs)
