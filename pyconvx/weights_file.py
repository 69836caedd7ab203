"""Weight files: named arrays in an .npz archive, written atomically and read without pickle.

A file holds one array per weight, keyed "layer_name/weight_name", a format marker (the format
version, so that a foreign .npz is recognised as such and a newer file is refused by name) and,
from version 2 on, a SHA-256 checksum of every weight's name, dtype, shape and bytes, checked on
reading: a truncated or corrupted file raises FileFormatError instead of giving wrong weights.
Version 1 files (no checksum) are still read; the zip's CRC-32 of each array is their only check.

Writing goes to a temporary file in the target's directory, is flushed to disk, then renamed over
the target (atomic_write, also used for cached features): a crash at any point leaves either the
old file or the new one, never a torn one.
"""
import contextlib
import hashlib
import os
import secrets
import struct
import tokenize
import zipfile
import zlib

import numpy as np

__all__ = ["atomic_write", "write_weights", "read_weights", "read_arrays", "is_weights_file", "weights_checksum",
           "FileFormatError", "FORMAT_KEY", "FORMAT_VERSION", "CHECKSUM_KEY", "atomic_write_features",
           "read_features", "FEATURES_VERSION"]

FORMAT_KEY = "__pyconvx_weights__"
CHECKSUM_KEY = "__pyconvx_sha256__"
# 1: marker and weights; 2: and CHECKSUM_KEY, the weights_checksum of the weights.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

# What parsing a damaged archive can raise, besides ValueError and OSError: a flipped byte may
# land in a zip header (BadZipFile, an unknown compression method, an "encrypted" flag), in an
# array's .npy header (NumPy parses its dict literal with tokenize and ast, whose SyntaxError and
# TokenError it passes on for some bytes) or cut a member short (EOFError).
_DAMAGE = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, NotImplementedError, RuntimeError,
           zlib.error, struct.error, OverflowError, MemoryError, SyntaxError, tokenize.TokenError)


class FileFormatError(ValueError):
    """A weights or features file that cannot be used as it is: truncated, corrupt (checksum
    mismatch), foreign, or written in a format version this pyconvx does not read. A ValueError,
    so that code catching ValueError for bad files keeps working; the message names the file."""


def _create_temporary(directory, basename):
    """A new file next to the target, opened for writing: (descriptor, path). Created with mode
    0666 so that the umask gives it the permissions of any file the user writes (mkstemp's would
    be private, 0600, and stay so after the rename)."""
    while True:
        temporary = os.path.join(directory, f".{basename}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_write(path):
    """A binary stream whose contents replace the file at `path` only when the block ends without
    an exception: it writes to a temporary file in the target's directory, flushes it to disk,
    renames it over `path` and syncs the directory. A crash or an exception at any point leaves
    the old file (or none) and no temporary file behind. Used for weights and cached features.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "data.bin")
    >>> with atomic_write(path) as stream:
    ...     _ = stream.write(b"1234")
    >>> open(path, "rb").read(), sorted(os.listdir(os.path.dirname(path)))
    (b'1234', ['data.bin'])
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = _create_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _sync_directory(directory)


def write_weights(path, arrays):
    """Writes {key: array} (keys "layer/weight", in model order) to `path` atomically.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> write_weights(path, {"dense/kernel": np.ones((2, 3), np.float32)})
    >>> read_weights(path)["dense/kernel"].shape
    (2, 3)
    """
    for key in (FORMAT_KEY, CHECKSUM_KEY):
        if key in arrays:
            raise ValueError(f"write_weights: {key!r} is reserved for the file format, got it as a weight name")
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    payload = {FORMAT_KEY: np.array(FORMAT_VERSION, np.int64),
               CHECKSUM_KEY: np.frombuffer(weights_checksum(arrays), np.uint8), **arrays}
    with atomic_write(path) as stream:
        np.savez(stream, **payload)


def weights_checksum(arrays):
    """The SHA-256 digest (32 bytes) of {key: array}, in the mapping's order: each key, dtype,
    shape and the array's bytes in C order, each field length-prefixed so that no two different
    contents hash the same bytes. write_weights stores it; read_weights recomputes and compares.

    >>> a = {"dense/kernel": np.zeros((2, 3), np.float32)}
    >>> weights_checksum(a) == weights_checksum({"dense/kernel": np.zeros((3, 2), np.float32)})
    False
    """
    digest = hashlib.sha256()
    for key, value in arrays.items():
        value = np.asarray(value)
        for field in (str(key).encode(), value.dtype.str.encode(), repr(tuple(value.shape)).encode()):
            digest.update(struct.pack("<Q", len(field)) + field)
        data = np.ascontiguousarray(value)
        digest.update(struct.pack("<Q", data.nbytes))
        digest.update(data.reshape(-1).view(np.uint8) if data.size else b"")
    return digest.digest()


def _sync_directory(directory):
    # The rename itself is durable only once the directory entry is on disk (POSIX); platforms
    # that cannot open a directory (Windows) make the rename durable by themselves.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_arrays(path):
    """{key: array} of every member of the .npz file at `path`, in file order, read without
    pickle: a pyconvx weights file (format marker included) or any other archive of arrays, such
    as a torch state dict saved with np.savez. FileNotFoundError for a missing file,
    FileFormatError (a ValueError) for a truncated, corrupt or non-.npz one.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> np.savez(path, **{"fc.weight": np.ones((2, 3))})
    >>> {key: value.shape for key, value in read_arrays(path).items()}
    {'fc.weight': (2, 3)}
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an .npz archive")
        with archive:
            # Reading every member here makes a truncated archive fail now, not at first use.
            return {key: archive[key] for key in archive.files}
    except _DAMAGE as exc:
        raise FileFormatError(f"cannot read weights file {path!r}: truncated, corrupt or not an .npz file "
                              f"({type(exc).__name__}: {exc})") from exc


def is_weights_file(path):
    """Whether `path` is an .npz archive holding the pyconvx format marker (written by
    write_weights), as opposed to any other archive of arrays; False for what cannot be read. Only
    the archive's directory is read, not the arrays."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as archive:
            return isinstance(archive, np.lib.npyio.NpzFile) and FORMAT_KEY in archive.files
    except _DAMAGE + (AttributeError,):
        return False


def read_weights(path):
    """{key: array} from a file written by write_weights, in file order, its checksum verified.

    Raises FileNotFoundError for a missing file and FileFormatError (a ValueError) naming the file
    for one that is truncated or corrupt (np.load fails, or the checksum does not match), foreign
    (no format marker), of a version this pyconvx does not read (a newer one), or of version 2 or
    later without its checksum. Version 1 files, written before checksums, are read unverified.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> write_weights(path, {"conv/kernel": np.ones((4, 1, 3, 3), np.float32)})
    >>> data = bytearray(open(path, "rb").read())
    >>> _ = open(path, "wb").write(data[:-10])
    >>> read_weights(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pyconvx.weights_file.FileFormatError: cannot read weights file '...w.npz': truncated, corrupt or not an .npz file ...
    """
    arrays = read_arrays(path)
    path = os.fspath(path)
    marker = arrays.pop(FORMAT_KEY, None)
    if marker is None:
        raise FileFormatError(f"{path!r} is an .npz file but not a pyconvx weights file (no {FORMAT_KEY!r} entry)")
    version = int(marker) if marker.shape == () and marker.dtype.kind in "iu" else None
    if version not in READABLE_VERSIONS:
        newer = " (written by a newer pyconvx?)" if version is not None and version > FORMAT_VERSION else ""
        raise FileFormatError(f"{path!r}: unsupported weights file version {marker.tolist()!r}{newer}; this pyconvx "
                              f"reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    if version >= 2:
        stored = arrays.pop(CHECKSUM_KEY, None)
        if stored is None:
            raise FileFormatError(f"{path!r}: weights file version {version} without its checksum "
                                  f"({CHECKSUM_KEY!r} entry missing): the file is damaged")
        expected = weights_checksum(arrays)
        if stored.dtype != np.uint8 or stored.shape != (len(expected),) or stored.tobytes() != expected:
            raise FileFormatError(f"{path!r}: checksum mismatch: the weights are corrupt (stored SHA-256 "
                                  f"{stored.tobytes().hex()[:16]}..., contents hash to {expected.hex()[:16]}...)")
    return arrays


# ---------------------------------------------------------------------------------------------
# Cached features: an .npy file with a checksum footer
#
# An .npy header has a fixed set of keys, so the version and checksum go after the array: NumPy
# reads exactly shape x itemsize bytes after the header (np.load, with or without mmap_mode) and
# ignores what follows, so the file stays an ordinary .npy for every other reader. The footer is
# written in the same atomic write as the data: there is no second file to lose or fall out of
# step.

FEATURES_VERSION = 1
_FEATURES_MAGIC = b"PYCONVX-FEATURES"
# magic, footer version, length of the .npy part it covers, SHA-256 of that part.
_FOOTER = struct.Struct("<16sIQ32s")


class _HashingStream:
    """Writes through to `stream`, hashing and counting what passes."""

    def __init__(self, stream):
        self._stream, self.digest, self.length = stream, hashlib.sha256(), 0

    def write(self, data):
        data = memoryview(data).cast("B")
        self.digest.update(data)
        self.length += len(data)
        return self._stream.write(data)


@contextlib.contextmanager
def atomic_write_features(path):
    """atomic_write for an .npy file: the block writes the .npy header and data to the stream it
    is given; when it ends without an exception, a footer with the format version and the
    SHA-256 of everything written is appended before the file replaces `path`. read_features
    checks it.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "f.npy")
    >>> with atomic_write_features(path) as stream:
    ...     np.lib.format.write_array(stream, np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> np.load(path, mmap_mode="r")[1].tolist(), read_features(path)[1].tolist()
    ([3.0, 4.0, 5.0], [3.0, 4.0, 5.0])
    """
    with atomic_write(path) as stream:
        hashing = _HashingStream(stream)
        yield hashing
        stream.write(_FOOTER.pack(_FEATURES_MAGIC, FEATURES_VERSION, hashing.length, hashing.digest.digest()))


def read_features(path, verify=True):
    """The array of an .npy file written by atomic_write_features, memory-mapped read-only, after
    checking its size, footer and format version and, with verify=True, its SHA-256 (which reads
    the whole file once; verify=False skips that for files too large to read twice, and then
    only the size, header and footer are checked).

    Raises FileNotFoundError for a missing file and FileFormatError (a ValueError) naming the file
    and what is wrong: not an .npy array, truncated, without the checksum footer (an .npy written
    by np.save: np.load reads such files unchecked), of a newer footer version, or corrupt
    (checksum mismatch).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "f.npy")
    >>> np.save(path, np.zeros(3, np.float32))
    >>> read_features(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pyconvx.weights_file.FileFormatError: features file '...f.npy' has no checksum footer: ...
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"features file {path!r} does not exist")
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not one pyconvx writes")
        except _DAMAGE as exc:
            raise FileFormatError(f"cannot read features file {path!r}: truncated or not an .npy array "
                                  f"({type(exc).__name__}: {exc})") from exc
        if dtype.hasobject:
            raise FileFormatError(f"features file {path!r} holds Python objects ({dtype}), not numbers")
        offset = stream.tell()
        end = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        what = f"its header describes a {dtype} array of shape {shape}: {end} bytes"
        if size < end:
            raise FileFormatError(f"features file {path!r} is truncated: {size} bytes, but {what} and a "
                                  f"{_FOOTER.size}-byte checksum footer")
        if size == end:
            raise FileFormatError(f"features file {path!r} has no checksum footer: not written by "
                                  f"extract_features (np.save's files have none; np.load(path, mmap_mode='r') reads "
                                  f"them unchecked), or cut short just before it")
        if size != end + _FOOTER.size:
            raise FileFormatError(f"features file {path!r} is truncated or corrupt: {size} bytes, but {what} and a "
                                  f"{_FOOTER.size}-byte checksum footer")
        stream.seek(end)
        magic, footer_version, length, digest = _FOOTER.unpack(stream.read(_FOOTER.size))
        if magic != _FEATURES_MAGIC:
            raise FileFormatError(f"features file {path!r} is corrupt: its checksum footer does not start with "
                                  f"{_FEATURES_MAGIC!r} (got {magic!r})")
        if footer_version != FEATURES_VERSION:
            newer = " (written by a newer pyconvx?)" if footer_version > FEATURES_VERSION else ""
            raise FileFormatError(f"features file {path!r}: unsupported format version {footer_version}{newer}; "
                                  f"this pyconvx reads version {FEATURES_VERSION}")
        if length != end:
            raise FileFormatError(f"features file {path!r} is corrupt: its footer covers {length} bytes, but {what}")
        if verify:
            stream.seek(0)
            actual, left = hashlib.sha256(), end
            while left:
                chunk = stream.read(min(left, 1 << 22))
                if not chunk:
                    raise FileFormatError(f"features file {path!r} is truncated: it shrank while being read")
                actual.update(chunk)
                left -= len(chunk)
            if actual.digest() != digest:
                raise FileFormatError(f"features file {path!r} is corrupt: checksum mismatch (stored SHA-256 "
                                      f"{digest.hex()[:16]}..., contents hash to {actual.hexdigest()[:16]}...)")
        if end == offset:  # no data: mmap cannot map zero bytes
            array = np.empty(shape, dtype, order="F" if fortran_order else "C")
            array.flags.writeable = False
            return array
        # Mapped through the handle that was checked, not by reopening the path, which another
        # process may have replaced meanwhile.
        return np.memmap(stream, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran_order else "C")
