"""Weight files and cached features on disk: format version, checksum, and what damaged files,
interrupted writes and killed writers leave behind."""
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import pyconvx
from pyconvx import layers, transfer
from pyconvx.weights_file import (CHECKSUM_KEY, FORMAT_KEY, FORMAT_VERSION, FileFormatError, read_features,
                                  read_weights, weights_checksum, write_weights)

SEED = 20240611


def small_cnn(seed=0):
    return pyconvx.Sequential([
        layers.Conv2D(4, 3, padding="same", name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.ReLU(name="relu"),
        layers.Flatten(name="flat"),
        layers.Dense(3, name="head"),
    ], input_shape=(1, 6, 6), seed=seed)


def saved_weights(tmp_path):
    """A weights file of small_cnn(seed=1) and the weights it holds."""
    model = small_cnn(seed=1)
    path = tmp_path / "good.npz"
    model.save_weights(path)
    return path, model.get_weights()


def member_data_ranges(data):
    """[start, end) of each member's bytes in a zip archive (after its local header)."""
    ranges = []
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_length + extra_length
            ranges.append((start, start + info.compress_size))
    return ranges


def load_outcome(path, reference):
    """'error' if a fresh model refuses the file with FileFormatError (and is left unchanged),
    'intact' if it loads exactly `reference`; anything else fails the test."""
    target = small_cnn(seed=2)
    before = target.get_weights()
    try:
        target.load_weights(path)
    except FileFormatError as exc:
        assert os.fspath(path) in str(exc)
        for a, b in zip(before, target.get_weights()):
            np.testing.assert_array_equal(a, b)  # nothing written
        return "error"
    for a, b in zip(reference, target.get_weights()):
        np.testing.assert_array_equal(a, b)  # never silently different weights
    return "intact"


# ----- weight files -----

def test_a_weights_file_holds_its_version_and_the_checksum_of_its_weights(tmp_path):
    path, weights = saved_weights(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive[FORMAT_KEY]) == FORMAT_VERSION == 2
        stored = archive[CHECKSUM_KEY]
        arrays = {key: archive[key] for key in archive.files if not key.startswith("__pyconvx")}
    assert stored.dtype == np.uint8 and stored.tobytes() == weights_checksum(arrays)
    assert list(read_weights(path)) == list(arrays)  # the format's entries are not weights


def test_the_checksum_covers_names_dtypes_shapes_and_values():
    base = {"a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}
    variants = [{"b/kernel": base["a/kernel"]}, {"a/kernel": base["a/kernel"].astype(np.int32)},
                {"a/kernel": base["a/kernel"].reshape(3, 2)}, {"a/kernel": base["a/kernel"] + 1},
                {"a/kernel": base["a/kernel"], "a/bias": np.zeros(0, np.float32)}]
    digests = {weights_checksum(base)} | {weights_checksum(v) for v in variants}
    assert len(digests) == 1 + len(variants)
    assert weights_checksum({"a/kernel": np.asfortranarray(base["a/kernel"])}) == weights_checksum(base)


def test_contents_changed_behind_a_valid_zip_fail_the_checksum(tmp_path):
    # A consistent archive (every CRC right) whose weight differs from what was saved: only the
    # checksum can tell.
    path, _ = saved_weights(tmp_path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["head/bias"] = arrays["head/bias"] + 1
    np.savez(path, **arrays)
    with pytest.raises(FileFormatError, match=r"good\.npz'.*checksum mismatch: the weights are corrupt"):
        small_cnn().load_weights(path)


def test_version_and_checksum_errors_name_the_file_and_the_problem(tmp_path):
    path, _ = saved_weights(tmp_path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    newer = tmp_path / "newer.npz"
    np.savez(newer, **{**arrays, FORMAT_KEY: np.array(3)})
    with pytest.raises(FileFormatError, match=r"newer\.npz': unsupported weights file version 3 \(written by a "
                                              r"newer pyconvx\?\); this pyconvx reads versions 1, 2"):
        small_cnn().load_weights(newer)
    odd = tmp_path / "odd.npz"
    np.savez(odd, **{**arrays, FORMAT_KEY: np.array([2, 2])})
    with pytest.raises(FileFormatError, match=r"unsupported weights file version \[2, 2\]"):
        small_cnn().load_weights(odd)
    unchecked = tmp_path / "unchecked.npz"
    np.savez(unchecked, **{key: value for key, value in arrays.items() if key != CHECKSUM_KEY})
    with pytest.raises(FileFormatError, match=r"unchecked\.npz': weights file version 2 without its checksum"):
        small_cnn().load_weights(unchecked)
    short = tmp_path / "short.npz"
    np.savez(short, **{**arrays, CHECKSUM_KEY: arrays[CHECKSUM_KEY][:8]})
    with pytest.raises(FileFormatError, match="checksum mismatch"):
        small_cnn().load_weights(short)
    with pytest.raises(ValueError, match="'__pyconvx_sha256__' is reserved for the file format"):
        write_weights(tmp_path / "w.npz", {CHECKSUM_KEY: np.zeros(3)})


def test_version_1_files_without_a_checksum_are_still_read(tmp_path):
    path, weights = saved_weights(tmp_path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files if key != CHECKSUM_KEY}
    old = tmp_path / "v1.npz"
    np.savez(old, **{**arrays, FORMAT_KEY: np.array(1)})
    target = small_cnn(seed=5)
    target.load_weights(old)
    for a, b in zip(weights, target.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("which, byte", [("{", b"\x99"), ("}", b"(")], ids=["SyntaxError", "TokenError"])
@pytest.mark.parametrize("kind", ["weights", "features"])
def test_a_damaged_npy_header_is_a_format_error(tmp_path, rng, kind, which, byte):
    # NumPy lets the SyntaxError of a garbled header dict, and tokenize's TokenError for an
    # unbalanced one, through: they escaped as such before. In an archive, the zip's CRC-32 is
    # checked only at the end of a member, so a member larger than zipfile's first read (4 KiB)
    # reaches NumPy's parser first.
    if kind == "weights":
        path = tmp_path / "w.npz"
        write_weights(path, {"big/kernel": np.zeros((64, 64), np.float32)})
    else:
        path = extracted_features(tmp_path, rng)[2]
    data = path.read_bytes()
    start = data.rindex(b"{'descr'")
    at = start if which == "{" else data.index(b"}", start)
    path.write_bytes(data[:at] + byte + data[at + 1:])
    with pytest.raises(FileFormatError, match=r"cannot read (weights|features) file .*(SyntaxError|TokenError)"):
        read_weights(path) if kind == "weights" else transfer.load_features(path)


def test_every_truncation_of_a_weights_file_is_refused(tmp_path):
    path, weights = saved_weights(tmp_path)
    data = path.read_bytes()
    rng = np.random.default_rng(SEED)
    cut = tmp_path / "cut.npz"
    for length in sorted({0, 1, len(data) - 1, *rng.integers(0, len(data), 150).tolist()}):
        cut.write_bytes(data[:length])
        assert load_outcome(cut, weights) == "error", f"truncated to {length} of {len(data)} bytes"
    assert path.read_bytes() == data


def test_corrupted_bytes_in_a_weights_file_are_refused_or_harmless(tmp_path):
    """A flipped byte inside an array's bytes (or its .npy header) is always refused; one in the
    zip's bookkeeping is refused too, unless it lies in a field the archive does not need (a
    timestamp), and then the weights read are exactly those saved."""
    path, weights = saved_weights(tmp_path)
    data = path.read_bytes()
    ranges = member_data_ranges(data)
    rng = np.random.default_rng(SEED)
    bad = tmp_path / "bad.npz"
    outcomes = {"error": 0, "intact": 0}
    for offset in rng.integers(0, len(data), 300).tolist():
        damaged = bytearray(data)
        damaged[offset] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(damaged))
        outcome = load_outcome(bad, weights)
        if any(start <= offset < end for start, end in ranges):
            assert outcome == "error", f"flipped byte at {offset} (array data) was not detected"
        outcomes[outcome] += 1
    assert outcomes["error"] >= 250, outcomes  # most of the file is array data and headers
    assert path.read_bytes() == data


class BrokenWriter:
    """Replaces np.lib.format.write_array: the first `good` arrays are written, the next is cut
    off half-way by `error` (a full disk, a Ctrl-C)."""

    def __init__(self, original, good, error):
        self.original, self.good, self.error, self.calls = original, good, error, 0

    def __call__(self, stream, array, *args, **kwargs):
        self.calls += 1
        if self.calls > self.good:
            stream.write(b"\x93NUMPY half an array")
            raise self.error
        return self.original(stream, array, *args, **kwargs)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "KeyboardInterrupt"])
@pytest.mark.parametrize("good", [0, 3])
def test_an_interrupted_save_leaves_the_previous_file_byte_identical(tmp_path, monkeypatch, error, good):
    path, weights = saved_weights(tmp_path)
    data = path.read_bytes()
    model = small_cnn(seed=1)
    model.set_weights([w + 1 for w in model.get_weights()])
    monkeypatch.setattr(np.lib.format, "write_array", BrokenWriter(np.lib.format.write_array, good, error))
    with pytest.raises(type(error)):
        model.save_weights(path)
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["good.npz"]
    assert load_outcome(path, weights) == "intact"


KILLED_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import pyconvx
    from pyconvx import layers
    model = pyconvx.Sequential([layers.Dense(1024, name="big")], input_shape=(1024,))
    for step in range(1, 100000):
        model.set_weights([np.full_like(w, step) for w in model.get_weights()])
        model.save_weights(sys.argv[1])
        print(step, flush=True)
""")


def test_a_writer_killed_mid_save_leaves_a_complete_file(tmp_path):
    """SIGKILL at random moments of a loop of saves: the file always loads, holding the weights
    of a save that finished (or the one that was being renamed in)."""
    path = tmp_path / "w.npz"
    rng = np.random.default_rng(SEED)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pyconvx.__file__))]
                                                      + sys.path))
    for _ in range(3):
        # cwd: from the repository root the child would import the unbuilt source tree first
        child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, env=env,
                                 text=True, cwd=tmp_path)
        last = int(child.stdout.readline())  # one save finished
        time.sleep(float(rng.uniform(0, 0.05)))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read().split()
        child.wait()
        last = int(rest[-1]) if rest else last
        stored = read_weights(path)
        value = float(stored["big/kernel"].flat[0])
        assert value in (last, last + 1)
        assert np.all(stored["big/kernel"] == value) and np.all(stored["big/bias"] == value)
    # A killed writer may leave its temporary file (never the target half-written); only these.
    assert all(name == "w.npz" or (name.startswith(".w.npz.") and name.endswith(".tmp"))
               for name in os.listdir(tmp_path))


# ----- cached features -----

def extracted_features(tmp_path, rng):
    model = pyconvx.Sequential([layers.Flatten(name="flat"), layers.Dense(5, name="hidden"), layers.Dense(2)],
                               input_shape=(1, 4, 4), seed=0)
    x = rng.standard_normal((13, 1, 4, 4)).astype(np.float32)
    path = tmp_path / "features.npy"
    features = np.array(transfer.extract_features(model, x, "hidden", path, batch_size=4))
    return model, x, path, features


def test_features_files_are_plain_npy_with_a_checksum_footer(tmp_path, rng):
    _, _, path, features = extracted_features(tmp_path, rng)
    np.testing.assert_array_equal(np.load(path), features)  # other readers ignore the footer
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), features)
    loaded = transfer.load_features(path)
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, features)
    assert path.read_bytes()[-60:].startswith(b"PYCONVX-FEATURES")


def test_every_truncation_and_flipped_byte_of_a_features_file_is_refused(tmp_path, rng):
    _, _, path, features = extracted_features(tmp_path, rng)
    data = path.read_bytes()
    fuzz = np.random.default_rng(SEED)
    bad = tmp_path / "bad.npy"
    cuts = sorted({0, 5, len(data) - 60, len(data) - 1, *fuzz.integers(0, len(data), 100).tolist()})
    for length in cuts:
        bad.write_bytes(data[:length])
        with pytest.raises(FileFormatError, match=r"bad\.npy"):
            transfer.load_features(bad)
    for offset in sorted({0, 8, len(data) - 60, len(data) - 40, *fuzz.integers(0, len(data), 200).tolist()}):
        damaged = bytearray(data)
        damaged[offset] ^= int(fuzz.integers(1, 256))
        bad.write_bytes(bytes(damaged))
        with pytest.raises(FileFormatError, match=r"bad\.npy"):
            transfer.load_features(bad)
    assert path.read_bytes() == data
    np.testing.assert_array_equal(transfer.load_features(path), features)


def test_features_errors_say_what_is_wrong(tmp_path, rng):
    _, _, path, features = extracted_features(tmp_path, rng)
    data = path.read_bytes()
    plain = tmp_path / "plain.npy"
    np.save(plain, features)
    with pytest.raises(FileFormatError, match=r"plain\.npy' has no checksum footer: not written by extract_features"):
        transfer.load_features(plain)
    newer = tmp_path / "newer.npy"
    newer.write_bytes(data[:-44] + struct.pack("<I", 2) + data[-40:])
    with pytest.raises(FileFormatError, match=r"newer\.npy': unsupported format version 2 \(written by a newer "
                                              r"pyconvx\?\); this pyconvx reads version 1"):
        transfer.load_features(newer)
    flipped = tmp_path / "flipped.npy"
    damaged = bytearray(data)
    damaged[len(data) - 100] ^= 1  # a value: caught by the checksum only
    flipped.write_bytes(bytes(damaged))
    with pytest.raises(FileFormatError, match=r"flipped\.npy' is corrupt: checksum mismatch"):
        transfer.load_features(flipped)
    assert transfer.load_features(flipped, verify=False).shape == features.shape  # unchecked values
    longer = tmp_path / "longer.npy"
    longer.write_bytes(data + b"\0")
    with pytest.raises(FileFormatError, match=rf"longer\.npy' is truncated or corrupt: {len(data) + 1} bytes"):
        transfer.load_features(longer)
    text = tmp_path / "text.npy"
    text.write_text("not an array")
    with pytest.raises(FileFormatError, match=r"cannot read features file .*text\.npy': truncated or not an .npy"):
        transfer.load_features(text)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_features(tmp_path / "missing.npy")


def test_an_interrupted_extraction_leaves_the_previous_features_byte_identical(tmp_path, rng):
    model, x, path, features = extracted_features(tmp_path, rng)
    data = path.read_bytes()

    class Interrupted:
        shape = x.shape

        def __init__(self):
            self.reads = 0

        def __getitem__(self, index):
            self.reads += 1
            if self.reads > 2:
                raise KeyboardInterrupt
            return x[index] + 1

    with pytest.raises(KeyboardInterrupt):
        transfer.extract_features(model, Interrupted(), "hidden", path, batch_size=4)
    assert path.read_bytes() == data and os.listdir(tmp_path) == ["features.npy"]
    np.testing.assert_array_equal(transfer.load_features(path), features)


def test_empty_features_round_trip(tmp_path, rng):
    model, _, path, _ = extracted_features(tmp_path, rng)
    empty = transfer.extract_features(model, np.zeros((0, 1, 4, 4), np.float32), "hidden", tmp_path / "e.npy")
    assert empty.shape == (0, 5) and transfer.load_features(tmp_path / "e.npy").shape == (0, 5)
