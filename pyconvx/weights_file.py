"""Weight files: named arrays in an .npz archive, written atomically and read without pickle.

A file holds one array per weight, keyed "layer_name/weight_name", and a format marker so that
a foreign .npz is recognised as such. Writing goes to a temporary file in the target's
directory, is flushed to disk, then renamed over the target (atomic_write, also used for cached
features): a crash at any point leaves either the old file or the new one, never a torn one.
"""
import contextlib
import os
import secrets
import zipfile

import numpy as np

__all__ = ["atomic_write", "write_weights", "read_weights", "read_arrays", "is_weights_file", "FORMAT_KEY", "FORMAT_VERSION"]

FORMAT_KEY = "__pyconvx_weights__"
FORMAT_VERSION = 1


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
    payload = {FORMAT_KEY: np.array(FORMAT_VERSION, np.int64), **arrays}
    with atomic_write(path) as stream:
        np.savez(stream, **payload)


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
    as a torch state dict saved with np.savez. FileNotFoundError for a missing file, ValueError
    for a truncated, corrupt or non-.npz one.
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
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read weights file {path!r}: truncated, corrupt or not an .npz file ({exc})") from exc


def is_weights_file(path):
    """Whether `path` is an .npz archive holding the pyconvx format marker (written by
    write_weights), as opposed to any other archive of arrays; False for what cannot be read. Only
    the archive's directory is read, not the arrays."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as archive:
            return isinstance(archive, np.lib.npyio.NpzFile) and FORMAT_KEY in archive.files
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, AttributeError):
        return False


def read_weights(path):
    """{key: array} from a file written by write_weights, in file order.

    Raises FileNotFoundError for a missing file and ValueError for a truncated, corrupt or
    foreign one (anything np.load cannot read without pickle, or without the format marker).
    """
    arrays = read_arrays(path)
    marker = arrays.pop(FORMAT_KEY, None)
    if marker is None:
        raise ValueError(f"{path!r} is an .npz file but not a pyconvx weights file (no {FORMAT_KEY!r} entry)")
    if marker.shape != () or int(marker) != FORMAT_VERSION:
        raise ValueError(f"{path!r}: unsupported weights file version {marker!r}, expected {FORMAT_VERSION}")
    return arrays
