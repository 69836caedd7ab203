"""The strategy figures: each returns a Figure and saves a PNG (skipped without matplotlib)."""
import doctest

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from pyconvx import Sequential, layers  # noqa: E402
from pyconvx.strategy import ErrorAnalysis, diagnose, plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def saved(figure, path):
    assert type(figure).__name__ == "Figure"
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_training_curves_from_a_history(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 1, 4, 4)).astype(np.float32), rng.integers(0, 2, 32)
    model = Sequential([layers.Flatten(), layers.Dense(2)], input_shape=(1, 4, 4), seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0)
    figure = plots.plot_training_curves(history, path=tmp_path / "curves.png")
    saved(figure, tmp_path / "curves.png")
    assert [axes.get_title() for axes in figure.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in figure.axes[0].lines] == ["training", "validation"]
    with pytest.raises(ValueError, match="history must be"):
        plots.plot_training_curves({})


def test_confusion_matrix_cells_carry_the_counts(tmp_path):
    figure = plots.plot_confusion_matrix(["a", "b", "b", "c"], ["a", "b", "c", "c"], path=tmp_path / "cm.png")
    saved(figure, tmp_path / "cm.png")
    assert [text.get_text() for text in figure.axes[0].texts] == ["1", "0", "0", "0", "1", "1", "0", "0", "1"]
    normalized = plots.plot_confusion_matrix([0, 1, 1], [0, 1, 0], normalize="true")
    assert "0.50" in [text.get_text() for text in normalized.axes[0].texts]


def test_error_analysis_and_diagnosis_bars(tmp_path):
    analysis = ErrorAnalysis(["dog", "blurry"], dev_error=0.1)
    analysis.tag([0, 1, 2], "dog")
    analysis.tag(3, "blurry")
    figure = plots.plot_error_analysis(analysis, path=tmp_path / "errors.png")
    saved(figure, tmp_path / "errors.png")
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["blurry", "dog"]
    report = diagnose(0.08, 0.10, human_error=0.01, train_dev_error=0.09, test_error=0.11)
    figure = plots.plot_diagnosis(report, path=tmp_path / "diagnosis.png")
    saved(figure, tmp_path / "diagnosis.png")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "8.0%\navoidable bias +7.0%" in texts and "10.0%\ndata mismatch +1.0%" in texts
    assert figure.axes[0].get_title() == "focus: avoidable bias"
    with pytest.raises(ValueError, match="report must be"):
        plots.plot_diagnosis({"train": 0.1})
    with pytest.raises(ValueError, match="analysis must be"):
        plots.plot_error_analysis([1, 2])


def test_docstring_examples():
    result = doctest.testmod(plots, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
