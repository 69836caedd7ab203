"""Imports of optional dependencies that say which extra to install when they are missing."""
import importlib

__all__ = ["require"]


def require(module, needed_for, extra):
    """The module `module`, or an ImportError saying that `needed_for` needs it and naming the
    pip extra that installs it.

    >>> require("numpy", "arrays", "test").__name__
    'numpy'
    """
    try:
        # The top-level package first: a submodule already imported would otherwise be found
        # even when the package itself is unavailable (None in sys.modules).
        importlib.import_module(module.split(".")[0])
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{needed_for} needs {module.split('.')[0]}: install the {extra} extra, "
                          f"pip install \"pyconvx[{extra}]\"") from exc
