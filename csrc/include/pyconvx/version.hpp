// The pyconvx version: the one place it is written. setup.py, CMakeLists.txt and
// pyconvx.__version__ (through the extension) all read it from here.
#pragma once

#define PYCONVX_VERSION_MAJOR 0
#define PYCONVX_VERSION_MINOR 1
#define PYCONVX_VERSION_PATCH 0

// "major.minor.patch", for messages.
#define PYCONVX_STRINGIFY_(x) #x
#define PYCONVX_STRINGIFY(x) PYCONVX_STRINGIFY_(x)
#define PYCONVX_VERSION_STRING                                                                      \
  PYCONVX_STRINGIFY(PYCONVX_VERSION_MAJOR) "." PYCONVX_STRINGIFY(PYCONVX_VERSION_MINOR) "." PYCONVX_STRINGIFY( \
      PYCONVX_VERSION_PATCH)
