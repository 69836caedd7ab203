"""The README's quick start runs as printed."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def networks_blocks():
    """The quick start's code and the summary() output printed under it."""
    text = open(README, encoding="utf-8").read()
    section = text[text.index("## Networks"):]
    code, summary = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
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
