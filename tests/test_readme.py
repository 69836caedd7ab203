"""The README's quick start runs as printed."""
import os
import re
import tempfile

import numpy as np
import pytest

import pyconvx

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_section(title):
    """The README's text from the heading `## title` to the next level-2 heading."""
    text = open(README, encoding="utf-8").read()
    return text[text.index(f"## {title}"):text.index("\n## ", text.index(f"## {title}") + 1)]


def run_first_example(section, title):
    """Runs the section's first Python block; returns its namespace."""
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace = {}
    exec(compile(code, f"README.md ({title})", "exec"), namespace)
    return namespace


def networks_section():
    return readme_section("Networks")


def networks_blocks():
    """The quick start's code and the summary() output printed under it."""
    code, summary = re.findall(r"```(?:python)?\n(.*?)```", networks_section(), re.S)[:2]
    return code, summary


def test_networks_quick_start_runs_and_learns(tmp_path, monkeypatch, capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    monkeypatch.chdir(tmp_path)
    code, summary = networks_blocks()
    namespace = {}
    exec(compile(code, "README.md (Networks)", "exec"), namespace)
    out = capsys.readouterr().out
    assert summary.strip() in out
    assert namespace["accuracy"] >= 0.95
    assert set(namespace["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (tmp_path / "toy.npz").exists()


def test_networks_examples_after_the_quick_start_run(tmp_path, monkeypatch, capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    monkeypatch.chdir(tmp_path)
    section = networks_section()
    examples = re.findall(r"```python\n(.*?)```", section, re.S)[1:]
    graph_rows = re.search(r"```\n(.*?)```", section.split("each layer is called on:")[1], re.S).group(1)
    assert len(examples) == 2, "the functional API and the freezing examples"
    namespace = {}
    for index, code in enumerate(examples):
        exec(compile(code, f"README.md (Networks example {index + 2})", "exec"), namespace)
    out = capsys.readouterr().out
    assert "['brightness_loss', 'label_accuracy', 'label_loss', 'loss']" in out and "2565" in out
    assert namespace["logits"].shape == (4, 10) and namespace["predicted_brightness"].shape == (4, 1)
    assert all(layer.trainable for layer in namespace["backbone"].layers)
    lines = []
    namespace["model"].summary(print_fn=lines.append)
    for row in graph_rows.strip().splitlines():  # the graph summary's rows as printed
        assert row in lines[0].splitlines()


def test_inference_engine_example_prints_what_the_readme_says(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    section = readme_section("The inference engine")
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    exec(compile(code, "README.md (The inference engine)", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    said = [line.split("# ", 1)[1].split(":")[0] for line in code.splitlines() if line.startswith("print(")]
    # The algorithm in brackets is the one measured fastest, which may differ on another machine.
    assert [line.split(" [")[0] for line in printed] == [line.split(" [")[0] for line in said]
    assert printed[0].split(" [")[1].rstrip("]") in pyconvx.CONV_ALGORITHMS


def test_strategy_example_trains_diagnoses_and_recommends(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    pytest.importorskip("sklearn")  # load_digits
    section = readme_section("Strategy")
    namespace = run_first_example(section, "Strategy")
    out = capsys.readouterr().out
    report = namespace["report"]
    assert 0 <= namespace["train_error"] < 0.2 and 0 <= namespace["dev_error"] < 0.2
    assert report.focus in ("avoidable bias", "variance") and "macro avg" in out
    assert f"next: {report.focus} -> {report.recommendations[0]}" in out


def augmentation_blocks():
    section = readme_section("Augmentation")
    return re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]


def test_augmentation_example_prints_what_the_readme_shows(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    pytest.importorskip("sklearn")
    code, printed = augmentation_blocks()
    exec(compile(code, "README.md (Augmentation)", "exec"), {})
    assert capsys.readouterr().out.strip() == printed.strip()


def test_data_loading_example_trains_on_a_loader(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    pytest.importorskip("sklearn")
    section = readme_section("Data loading")
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace = {}
    exec(compile(code, "README.md (Data loading)", "exec"), namespace)
    assert capsys.readouterr().out.startswith("45 batches per epoch; dev accuracy ")
    assert namespace["history"].history["val_accuracy"][-1] > 0.9


def test_multi_task_example_trains_with_missing_labels_and_reports_each_task(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    section = readme_section("Multi-task learning")
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    namespace = {}
    exec(compile(code, "README.md (Multi-task learning)", "exec"), namespace)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == printed.strip().splitlines()[0] and len(out) == 5
    report = namespace["report"]
    assert list(report) == namespace["TASKS"]
    assert all(report[task]["accuracy"] >= 0.8 and report[task]["support"] == 200 for task in report)
    assert np.isnan(namespace["y"]).mean() > 0.25  # the training labels did have holes
    assert all(np.isfinite(values[-1]) for values in namespace["history"].history.values())


def test_ensembles_and_sweeps_example_runs_on_its_local_cluster(capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    pytest.importorskip("distributed")
    pytest.importorskip("sklearn")  # load_digits
    section = readme_section("Ensembles and sweeps on a cluster")
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace = {"__name__": "__main__"}  # the example's guarded part runs, and build is sent by value
    exec(compile(code, "README.md (Ensembles and sweeps)", "exec"), namespace)
    out = capsys.readouterr().out
    members, grid = namespace["members"], namespace["grid"]
    assert len(members) == 3 and len(grid) == 4 and "ensemble of 3: dev accuracy 0.9" in out
    assert namespace["dev_accuracy"] >= max(member.metrics["val_accuracy"] for member in members) - 0.02
    assert f"chosen: {namespace['choice'].name}" in out
    assert namespace["best"] is grid.by_name(namespace["choice"].name).model


def test_transfer_learning_example_runs_the_four_ways(tmp_path, monkeypatch, capsys):
    if not os.path.exists(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    pytest.importorskip("sklearn")  # load_digits
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    section = readme_section("Transfer learning")
    namespace = run_first_example(section, "Transfer learning")
    out = capsys.readouterr().out
    printed = {key: float(value) for key, value in (line.split(": ") for line in out.splitlines())}
    shown = {key: float(value) for key, value in re.findall(r"`(head only|fine-tuned): ([0-9.]+)`", section)}
    assert set(printed) == set(shown) == {"head only", "fine-tuned"}
    for key in shown:  # another instruction set may sum in another order and flip a digit or two
        assert abs(printed[key] - shown[key]) <= 0.02, (key, printed[key], shown[key])
    assert printed["fine-tuned"] > 0.9
    assert namespace["features"].shape == (717, 84) and isinstance(namespace["features"], np.memmap)
    assert all(layer.trainable for layer in namespace["model"].layers)
