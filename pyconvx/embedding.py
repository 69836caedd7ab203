"""Where the C++ library, its headers and its CMake package are, for projects that build on the
kernels: another pybind11 extension, or a C or C++ program (see examples/embed_cpp, embed_c).

The Python package ships the kernels as the shared library lib/libpyconvx.so, which its own
extension runs on; a consumer linking the same file shares its thread count, instruction-set
choice and workspace.
"""
import os

__all__ = ["get_include", "get_cmake_dir", "get_library_path"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _existing(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f"pyconvx: {what} {path} is missing; build the package first "
                                f"(pip install ., or python setup.py build_ext --inplace in a checkout)")
    return path


def get_include():
    """The directory to add to the include path: it holds pyconvx/pyconvx.hpp (C++17) and
    pyconvx/pyconvx.h (C).

    >>> os.path.exists(os.path.join(get_include(), "pyconvx", "pyconvx.hpp"))
    True
    """
    return _existing(os.path.join(_PACKAGE, "include"), "the header directory")


def get_cmake_dir():
    """The directory holding pyconvxConfig.cmake: pass it as pyconvx_DIR to CMake, then
    `find_package(pyconvx CONFIG REQUIRED)` and link `pyconvx::pyconvx`.

    >>> os.path.exists(os.path.join(get_cmake_dir(), "pyconvxConfig.cmake"))
    True
    """
    get_include(), get_library_path()  # the configuration points at both
    return _existing(os.path.join(_PACKAGE, "cmake"), "the CMake package directory")


def get_library_path():
    """The shared library libpyconvx.so (the C++ and C APIs), e.g. for ctypes.CDLL.

    >>> os.path.basename(get_library_path())
    'libpyconvx.so'
    """
    return _existing(os.path.join(_PACKAGE, "lib", "libpyconvx.so"), "the library")
