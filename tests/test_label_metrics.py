"""Classification metrics on labels: scikit-learn as the oracle on randomized inputs, edge cases
of zero division, and the errors for bad input."""
import functools
import warnings

import numpy as np
import pytest

from pyconvx import metrics

sk = pytest.importorskip("sklearn.metrics")

ZERO_DIVISIONS = (0.0, 1.0, np.nan)
# scikit-learn's confusion_matrix warns about data holding a single label, a case tested on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")


def random_case(rng, binary=False):
    """Labels drawn from a small alphabet so that absent and never-predicted labels (the
    zero-division cases) are common; sometimes labels= adds labels the data lacks."""
    n = int(rng.integers(1, 12))
    k = 2 if binary else int(rng.integers(1, 6))
    y_true, y_pred = rng.integers(0, k, n), rng.integers(0, k, n)
    if rng.random() < 0.3:  # a good classifier: mostly right
        y_pred = np.where(rng.random(n) < 0.8, y_true, y_pred)
    labels = None
    if not binary and rng.random() < 0.4:
        labels = rng.permutation(np.arange(k + int(rng.integers(0, 3))))
    return y_true, y_pred, labels


def same(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=1e-12, equal_nan=True)


def stacked_cases(rng, count):
    """`count` random cases as one problem: case i's labels are shifted by 10 i, so classes of
    different cases never meet and one oracle call checks thousands of per-label results."""
    cases = [random_case(rng) for _ in range(count)]
    offsets = 10 * np.arange(count)
    y_true = np.concatenate([t + o for (t, _, _), o in zip(cases, offsets)])
    y_pred = np.concatenate([p + o for (_, p, _), o in zip(cases, offsets)])
    labels = np.concatenate([(np.union1d(t, p) if l is None else l) + o for (t, p, l), o in zip(cases, offsets)])
    return cases, y_true, y_pred, labels


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
def test_thousands_of_per_label_results_agree_with_sklearn(zero_division):
    rng = np.random.default_rng(11)
    cases, y_true, y_pred, labels = stacked_cases(rng, 2000)
    ours = metrics.precision_recall_fscore_support(y_true, y_pred, beta=2.0, labels=labels, zero_division=zero_division)
    theirs = sk.precision_recall_fscore_support(y_true, y_pred, beta=2.0, labels=labels, zero_division=zero_division)
    for a, b in zip(ours, theirs):
        same(a, b)
    start = 0
    for y_t, y_p, case_labels in cases[:200]:  # each case alone gives its block of the stacked answer
        case = metrics.precision_recall_fscore_support(y_t, y_p, beta=2.0, labels=case_labels,
                                                       zero_division=zero_division)
        stop = start + len(case[0])
        for a, b in zip(case, ours):
            same(a, b[start:stop])
        start = stop


def test_stacked_confusion_matrices_agree_with_sklearn():
    _, y_true, y_pred, labels = stacked_cases(np.random.default_rng(5), 300)
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels=labels),
                                  sk.confusion_matrix(y_true, y_pred, labels=labels))


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
def test_precision_recall_fscore_support_agree_with_sklearn(average, zero_division):
    rng = np.random.default_rng(hash((average, str(zero_division))) % 2 ** 32)
    for _ in range(40):
        y_true, y_pred, labels = random_case(rng)
        beta = float(rng.choice([0.5, 1.0, 2.0]))
        ours = metrics.precision_recall_fscore_support(y_true, y_pred, beta=beta, labels=labels, average=average,
                                                       zero_division=zero_division)
        theirs = sk.precision_recall_fscore_support(y_true, y_pred, beta=beta, labels=labels, average=average,
                                                    zero_division=zero_division)
        for a, b in zip(ours, theirs):
            if b is None:
                assert a is None
            else:
                same(a, b)


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
def test_binary_scores_agree_with_sklearn(zero_division):
    rng = np.random.default_rng(7)
    for _ in range(40):
        y_true, y_pred, _ = random_case(rng, binary=True)
        pos_label = int(rng.integers(0, 2))
        if len(np.union1d(y_true, y_pred)) == 1 and rng.random() < 0.5:
            pos_label = 5  # absent from data holding a single label: nothing is positive
        for ours, theirs in ((metrics.precision, sk.precision_score), (metrics.recall, sk.recall_score),
                             (metrics.f1_score, sk.f1_score)):
            same(ours(y_true, y_pred, pos_label=pos_label, zero_division=zero_division),
                 theirs(y_true, y_pred, pos_label=pos_label, zero_division=zero_division))
        same(metrics.fbeta_score(y_true, y_pred, beta=2, pos_label=pos_label, zero_division=zero_division),
             sk.fbeta_score(y_true, y_pred, beta=2, pos_label=pos_label, zero_division=zero_division))


def test_confusion_matrix_accuracy_and_report_agree_with_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(60):
        y_true, y_pred, labels = random_case(rng)
        np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels=labels),
                                      sk.confusion_matrix(y_true, y_pred, labels=labels))
        normalize = str(rng.choice(["true", "pred", "all"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = np.nan_to_num(sk.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize))
        same(metrics.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize), theirs)
        assert metrics.accuracy(y_true, y_pred) == sk.accuracy_score(y_true, y_pred)
        assert metrics.accuracy(y_true, y_pred, normalize=False) == sk.accuracy_score(y_true, y_pred, normalize=False)
        ours = metrics.classification_report(y_true, y_pred, output_dict=True, zero_division=0)
        theirs = sk.classification_report(y_true, y_pred, output_dict=True, zero_division=0)
        assert ours.keys() == theirs.keys()
        for key in ours:
            if key == "accuracy":
                same(ours[key], theirs[key])
            else:
                same(list(ours[key].values()), list(theirs[key].values()))


def test_string_labels_and_text_report():
    y_true = np.array(["cat", "dog", "dog", "bird", "cat"])
    y_pred = np.array(["cat", "dog", "cat", "bird", "cat"])
    same(metrics.f1_score(y_true, y_pred, average="macro"), sk.f1_score(y_true, y_pred, average="macro"))
    assert metrics.precision(["a", "b", "b"], ["b", "b", "a"], pos_label="b") == 0.5
    text = metrics.classification_report(y_true, y_pred, digits=3)
    assert text.splitlines()[0].split() == ["precision", "recall", "f1-score", "support"]
    assert "accuracy" in text and "macro avg" in text and "0.800" in text
    assert text.split() == sk.classification_report(y_true, y_pred, digits=3).split()


def test_zero_division_warn_gives_zero_with_a_warning():
    with pytest.warns(RuntimeWarning, match="precision is undefined"):
        assert metrics.precision([1, 1], [0, 0]) == 0.0
    assert np.isnan(metrics.precision([1, 1], [0, 0], zero_division=np.nan))
    assert metrics.recall([0, 0], [0, 1], zero_division=1) == 1.0


def test_micro_average_over_all_labels_is_the_accuracy():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    for score in (metrics.precision, metrics.recall, metrics.f1_score):
        assert score(y_true, y_pred, average="micro") == pytest.approx(metrics.accuracy(y_true, y_pred))


def test_group_metric_means_over_groups():
    y_true = np.array([1, 1, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 1, 0])
    groups = np.array(["us", "us", "us", "us", "in", "in"])
    result = metrics.group_metric(y_true, y_pred, groups)
    assert result.by_group == {"in": 0.5, "us": 0.25} and result.mean == 0.375
    assert result.worst_group == "in" and result.counts == {"in": 2, "us": 4}
    assert "mean of groups" in str(result)
    macro_f1 = metrics.group_metric(y_true, y_pred, groups, functools.partial(metrics.f1_score, average="macro",
                                                                                 zero_division=0))
    assert macro_f1.name == "f1_score" and macro_f1.by_group["in"] == pytest.approx(1 / 3)
    assert metrics.group_metric(y_true, y_pred, groups, "accuracy").worst_group == "in"


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.accuracy([0, 1], [0, 1, 1]), "same length, got 2 and 3"),
    (lambda: metrics.precision([], []), "empty"),
    (lambda: metrics.f1_score([0, 1, 2], [0, 1, 3], labels=[0, 1, 2], average="macro"),
     r"labels \[3\] that are not in labels=\[0, 1, 2\]"),
    (lambda: metrics.confusion_matrix([0, 1], [[0.2, 0.8], [0.9, 0.1]]), r"y_pred .* shape \(2, 2\).*argmax"),
    (lambda: metrics.recall([0, 1], [0.3, 0.7]), "y_pred must hold class labels.*0.3"),
    (lambda: metrics.precision([0, 1, 2], [0, 1, 2]), "average='binary' needs at most two labels"),
    (lambda: metrics.precision([0, 2], [0, 2]), "pos_label=1 is not one of the labels"),
    (lambda: metrics.precision([0, 1], [0, 1], average="mean"), "average must be one of"),
    (lambda: metrics.precision([0, 1], [0, 1], zero_division=2), "zero_division=2"),
    (lambda: metrics.fbeta_score([0, 1], [0, 1], beta=-1), "beta=-1"),
    (lambda: metrics.confusion_matrix([0, 1], [0, 1], normalize="rows"), "normalize='rows'"),
    (lambda: metrics.classification_report([0, 1], [0, 1], target_names=["a"]), "target_names must name"),
    (lambda: metrics.group_metric([0, 1], [0, 1], ["a"]), "groups must have one entry per example"),
    (lambda: metrics.group_metric([0, 1], [0, 1], ["a", "b"], "f2"), "metric='f2'"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_training_accuracy_lookup_is_unchanged():
    from pyconvx import losses
    assert metrics.get("accuracy", losses.sparse_categorical_crossentropy)[1] is metrics.sparse_categorical_accuracy
