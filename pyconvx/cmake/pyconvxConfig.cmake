# pyconvx as the Python package ships it: the prebuilt libpyconvx.so that pyconvx._core itself
# runs on (so a program or extension using both shares one thread pool and one workspace) and the
# public headers. Point find_package at it with
#   cmake -Dpyconvx_DIR="$(python -c 'import pyconvx; print(pyconvx.get_cmake_dir())')" ...
# then link the target pyconvx::pyconvx. A C++ consumer needs C++17 (the headers use it).
get_filename_component(_pyconvx_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(_pyconvx_library "${_pyconvx_root}/lib/libpyconvx.so")
set(_pyconvx_include "${_pyconvx_root}/include")

if(NOT EXISTS "${_pyconvx_library}" OR NOT EXISTS "${_pyconvx_include}/pyconvx/pyconvx.hpp")
  set(pyconvx_FOUND FALSE)
  set(pyconvx_NOT_FOUND_MESSAGE
      "pyconvx: ${_pyconvx_library} or its headers are missing; install the package (pip install .) first")
  return()
endif()

if(NOT TARGET pyconvx::pyconvx)
  add_library(pyconvx::pyconvx SHARED IMPORTED)
  set_target_properties(pyconvx::pyconvx PROPERTIES
    IMPORTED_LOCATION "${_pyconvx_library}"
    IMPORTED_SONAME "libpyconvx.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_pyconvx_include}")
endif()
set(pyconvx_INCLUDE_DIRS "${_pyconvx_include}")
set(pyconvx_LIBRARIES pyconvx::pyconvx)
