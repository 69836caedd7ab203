"""The bias/variance/mismatch diagnosis and human-level error."""
import pytest

from pyconvx.strategy import RECOMMENDATIONS, diagnose, human_level_error


@pytest.mark.parametrize("errors, focus", [
    (dict(train_error=0.08, dev_error=0.10, human_error=0.01), "avoidable bias"),
    (dict(train_error=0.08, dev_error=0.10, human_error=0.075), "variance"),
    (dict(train_error=0.01, train_dev_error=0.09, dev_error=0.10, human_error=0.0), "variance"),
    (dict(train_error=0.01, train_dev_error=0.015, dev_error=0.10, human_error=0.0), "data mismatch"),
    (dict(train_error=0.01, train_dev_error=0.015, dev_error=0.02, test_error=0.09, human_error=0.0),
     "dev overfitting"),
])
def test_focus_is_the_largest_gap(errors, focus):
    report = diagnose(**errors)
    assert report.focus == focus and report.recommendations == RECOMMENDATIONS[focus]
    assert f"focus: {focus}" in str(report)


def test_gaps():
    report = diagnose(0.10, 0.20, human_error=0.04, bayes_error=0.02, train_dev_error=0.12, test_error=0.21)
    assert report.avoidable_bias == pytest.approx(0.08)  # bayes_error takes precedence over the human proxy
    assert report.variance == pytest.approx(0.02)
    assert report.data_mismatch == pytest.approx(0.08)
    assert report.dev_overfitting == pytest.approx(0.01)
    without_train_dev = diagnose(0.10, 0.20, human_error=0.04)
    assert without_train_dev.variance == pytest.approx(0.10) and without_train_dev.data_mismatch is None


def test_recommendations_are_the_orthogonal_knobs():
    assert "train a bigger network" in RECOMMENDATIONS["avoidable bias"]
    assert any("regularise" in tactic for tactic in RECOMMENDATIONS["variance"])
    assert any("synthesise" in tactic for tactic in RECOMMENDATIONS["data mismatch"])
    assert any("bigger dev set" in tactic for tactic in RECOMMENDATIONS["dev overfitting"])


def test_missing_proxies_are_said_not_guessed():
    report = diagnose(0.15, 0.16)
    assert report.avoidable_bias is None and report.focus == "variance"
    text = str(report)
    assert "not given" in text and "unknown" in text
    assert any(line.startswith("avoidable bias: no human_error") for line in report.cannot_conclude)
    assert any(line.startswith("data mismatch: no train_dev_error") for line in report.cannot_conclude)
    assert "cannot conclude" in text


def test_unusual_but_legal_input_is_flagged():
    report = diagnose(0.12, 0.10, human_error=0.01)
    assert report.variance == pytest.approx(-0.02) and report.focus == "avoidable bias"
    assert any("train error (12.0%) is above dev error (10.0%)" in note for note in report.notes)
    beyond_human = diagnose(0.005, 0.02, human_error=0.01)
    assert any("below the human-level" in note for note in beyond_human.notes)
    assert diagnose(0.10, 0.10, human_error=0.10).focus is None
    assert "no gap is positive" in str(diagnose(0.10, 0.10, human_error=0.10))


def test_human_level_error_takes_the_best_reference():
    level = human_level_error({"typical human": 0.03, "typical doctor": 0.01, "experienced doctor": 0.007,
                               "team of experienced doctors": 0.005})
    assert level.error == 0.005 and level.reference == "team of experienced doctors"
    assert list(level.references) == ["team of experienced doctors", "experienced doctor", "typical doctor",
                                      "typical human"]
    text = str(level)
    assert "<- proxy for Bayes error" in text and "weaker reference suffices" in text
    report = diagnose(0.05, 0.06, human_error=level)
    assert report.avoidable_bias == pytest.approx(0.045) and "human (team of experienced doctors)" in str(report)


@pytest.mark.parametrize("call, message", [
    (lambda: diagnose(-0.1, 0.1), "train_error must be an error rate in \\[0, 1\\], got train_error=-0.1"),
    (lambda: diagnose(0.1, 1.5), "dev_error=1.5"),
    (lambda: diagnose(0.1, 12), r"dev_error=12 \(a percentage\? pass 0.12\)"),
    (lambda: diagnose(0.1, 0.2, human_error=-0.01), "human_error=-0.01"),
    (lambda: diagnose(0.1, 0.2, train_dev_error="low"), "train_dev_error='low'"),
    (lambda: diagnose(0.1, 0.2, test_error=2.0), "test_error=2.0"),
    (lambda: diagnose(0.1, 0.2, bayes_error=float("nan")), "bayes_error=nan"),
    (lambda: human_level_error({"doctor": 1.2}), r"references\['doctor'\]=1.2"),
    (lambda: human_level_error({}), "non-empty dict"),
])
def test_bad_error_rates_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
