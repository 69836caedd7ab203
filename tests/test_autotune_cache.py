"""The autotune cache file: a second process building the same plan times nothing; a damaged,
truncated, foreign or edited file is ignored with a warning and never changes what a plan
computes; a directory that cannot be written leaves the choices in memory."""
import json
import os

import pytest

from conftest import run_child

# A child process builds an autotuned plan of a small network (a 3x3, a 1x1 and a strided 3x3
# layer, each with several algorithms to time) and reports what the autotuner did, the warnings
# and the largest difference from the layer-by-layer forward.
CHILD = r"""
import json, sys, warnings
import numpy as np
import pyconvx
from pyconvx import layers

pyconvx.set_autotune(True)
if len(sys.argv) > 1:
    pyconvx.set_autotune_cache(None if sys.argv[1] == "none" else sys.argv[1])
model = pyconvx.Sequential([layers.Conv2D(16, 3, padding="same", activation="relu"), layers.Conv2D(8, 1),
                            layers.Conv2D(8, 3, strides=2, padding="same")], input_shape=(8, 12, 12), seed=0)
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = model.predict(x, batch_size=2)
want = model.forward(x, training=False)
info = pyconvx.autotune_cache_info()
print(json.dumps({"info": info, "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
                  "error": float(np.abs(got - want).max() / np.abs(want).max())}))
"""


def build(directory, *args):
    proc = run_child(CHILD, *args, env=dict(os.environ, PYCONVX_AUTOTUNE_CACHE=str(directory)))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["error"] < 1e-5, result
    return result


def cache_file(directory):
    files = [f for f in os.listdir(directory) if f.startswith("autotune-") and f.endswith(".txt")]
    assert len(files) == 1, files
    return os.path.join(directory, files[0])


def test_a_second_process_reuses_the_first_ones_choices(tmp_path):
    first = build(tmp_path)
    assert first["info"]["measured"] == 3 and first["info"]["reused"] == 0 and not first["warnings"]
    path = cache_file(tmp_path)
    assert first["info"]["file"] == path and first["info"]["directory"] == str(tmp_path)
    text = open(path).read()
    assert text.startswith("pyconvx-autotune 1\nsignature pyconvx ") and len(text.splitlines()) == 2 + 3 + 1
    second = build(tmp_path)
    assert second["info"] == dict(first["info"], measured=0, reused=3, loaded=3) and not second["warnings"]
    assert open(path).read() == text  # nothing new: not rewritten


def test_the_file_can_be_turned_off(tmp_path):
    for value in ("", "0", "off"):
        proc = run_child(CHILD, env=dict(os.environ, PYCONVX_AUTOTUNE_CACHE=value))
        result = json.loads(proc.stdout.splitlines()[-1])
        assert result["info"]["file"] is None and result["info"]["measured"] == 3, (value, proc.stderr)
    result = build(tmp_path, "none")
    assert result["info"]["file"] is None and os.listdir(tmp_path) == []


def test_set_autotune_cache_moves_the_file(tmp_path):
    result = build(tmp_path / "a", str(tmp_path / "b" / "nested"))
    assert result["info"]["directory"] == str(tmp_path / "b" / "nested")
    assert not (tmp_path / "a").exists() and cache_file(tmp_path / "b" / "nested")


def with_checksum(body):
    """`body` (every line before the checksum) with the checksum the cache writes: FNV-1a 64."""
    h = 1469598103934665603
    for byte in body.encode("latin-1"):
        h = ((h ^ byte) * 1099511628211) % 2**64
    return body + f"checksum {h:016x}\n"


def damaged_versions(text):
    """(what, the file's text made so, what the warning must say)."""
    lines = text.splitlines(keepends=True)
    body = "".join(lines[:-1])
    yield "empty", "", "no checksum line"
    yield "truncated", text[: len(text) // 2], "no checksum line"
    yield "without its checksum line", body, "no checksum line"
    yield "a digit changed", text.replace(" 16 ", " 17 ", 1), "checksum does not match"
    yield "binary junk", "\x00\xff" * 100, "no checksum line"
    yield "another format", with_checksum(body.replace("pyconvx-autotune 1", "pyconvx-autotune 2", 1)), "first line"
    yield "another CPU or version", with_checksum(body.replace("signature pyconvx ", "signature pyconvx 9.9.9-", 1)), \
        "written for another pyconvx version or processor"
    yield "a malformed entry", with_checksum(body + "1 2 3 fast\n"), "malformed entry '1 2 3 fast'"
    yield "an unknown algorithm", with_checksum(body.replace(lines[2].rsplit(" ", 1)[1], "fastest\n", 1)), \
        "malformed entry"


@pytest.mark.parametrize("which", [name for name, _, _ in damaged_versions("x\ny\nz a\n")])
def test_a_damaged_or_foreign_file_is_ignored_with_a_warning_and_rewritten(tmp_path, which):
    good = build(tmp_path)
    path = cache_file(tmp_path)
    text = open(path).read()
    damaged, reason = {name: (t, r) for name, t, r in damaged_versions(text)}[which]
    assert damaged != text
    with open(path, "w", encoding="latin-1") as f:
        f.write(damaged)
    result = build(tmp_path)
    assert result["info"]["measured"] == 3 and result["info"]["loaded"] == 0, which
    assert len(result["warnings"]) == 1 and "ignoring the autotune cache" in result["warnings"][0], result
    assert path in result["warnings"][0] and reason in result["warnings"][0], result["warnings"]
    keys = [line.rsplit(" ", 1)[0] for line in text.splitlines()[:-1]]  # measured again: any algorithm
    assert [line.rsplit(" ", 1)[0] for line in open(path).read().splitlines()[:-1]] == keys
    assert build(tmp_path)["info"]["measured"] == 0
    del good


def test_an_edited_entry_is_never_trusted_to_compute_a_layer(tmp_path):
    build(tmp_path)
    path = cache_file(tmp_path)
    lines = open(path).read().splitlines(keepends=True)
    # Winograd cannot compute the 1x1 layer: its entry (kernel 1 1) is made to name it.
    edited = [line.rsplit(" ", 1)[0] + " winograd\n" if line.split()[6:8] == ["1", "1"] else line
              for line in lines[:-1]]
    assert edited != lines[:-1]
    with open(path, "w") as f:
        f.write(with_checksum("".join(edited)))
    result = build(tmp_path)  # the forward comparison inside holds: the layer computed correctly
    assert result["info"]["measured"] == 1 and result["info"]["reused"] == 2, result
    assert len(result["warnings"]) == 1 and "names winograd" in result["warnings"][0]
    assert "measured again" in result["warnings"][0]


def test_an_unwritable_directory_leaves_the_choices_in_memory(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    result = build(blocker / "cache")
    assert result["info"]["measured"] == 3
    assert len(result["warnings"]) == 1 and "cannot" in result["warnings"][0], result


def test_set_autotune_cache_checks_its_argument():
    import pyconvx

    with pytest.raises(ValueError, match="directory must be a path or None, got directory=3"):
        pyconvx.set_autotune_cache(3)
    with pytest.raises(ValueError, match="directory must not be empty"):
        pyconvx.set_autotune_cache("")
