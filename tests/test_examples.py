"""The programs in examples/ run and show what their docstrings say."""
import os
import runpy

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        pytest.skip("examples/ is not next to the tests (installed package)")
    return runpy.run_path(path, run_name="example")


def test_pipeline_beats_end_to_end_when_the_subtasks_have_the_data():
    example = load("end_to_end_vs_pipeline.py")
    results = example["compare"](few=300, plentiful=2000, test=500, end_to_end_counts=[300])
    assert results["its glyph reader (left glyph)"] > 0.8
    assert results["pipeline"] > 0.6
    assert results["end to end, 300 images"] < results["pipeline"] - 0.3


def test_end_to_end_example_prints_its_table(capsys, monkeypatch):
    example = load("end_to_end_vs_pipeline.py")
    monkeypatch.setitem(example["main"].__globals__, "compare",
                        lambda: {"pipeline": 0.9, "end to end, 300 images": 0.1})
    example["main"]()
    out = capsys.readouterr().out.splitlines()
    assert out == ["accuracy on 2000 new images (sum of two glyphs):", "  pipeline                0.900",
                   "  end to end, 300 images  0.100"]
