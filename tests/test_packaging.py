"""pyproject lists every Python package of the source tree, so `pip install .` ships them all."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = pytest.importorskip("setuptools")
    path = os.path.join(ROOT, "pyproject.toml")
    if not os.path.exists(path):
        pytest.skip("not running from a source checkout")
    with open(path, "rb") as stream:
        listed = set(tomllib.load(stream)["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(ROOT, include=["pyconvx", "pyconvx.*"]))
    assert "pyconvx.layers" in found
    assert found == listed, f"pyproject's [tool.setuptools] packages should be {sorted(found)}"
