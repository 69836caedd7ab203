"""The version, as compiled into the extension from csrc/include/pyconvx/version.hpp (the one
place it is written; setup.py and CMakeLists.txt read the same header)."""
from ._core import __version__

__all__ = ["__version__"]
