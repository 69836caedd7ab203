# The version of the package's library, read from the header that defines it: compatible with a
# request for the same major and minor version and no newer patch (the rule the CMake build's
# package uses too: SameMinorVersion).
include("${CMAKE_CURRENT_LIST_DIR}/pyconvxReadVersion.cmake")
pyconvx_read_version("${CMAKE_CURRENT_LIST_DIR}/../include/pyconvx/version.hpp" PACKAGE_VERSION)

set(PACKAGE_VERSION_COMPATIBLE FALSE)
set(PACKAGE_VERSION_EXACT FALSE)
if(PACKAGE_FIND_VERSION)
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _major_minor "${PACKAGE_VERSION}")
  if("${PACKAGE_FIND_VERSION_MAJOR}.${PACKAGE_FIND_VERSION_MINOR}" STREQUAL _major_minor
     AND NOT PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
