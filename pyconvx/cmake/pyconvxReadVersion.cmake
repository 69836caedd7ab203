# pyconvx_read_version(<header> <variable>): sets <variable> to "major.minor.patch" as defined in
# pyconvx/version.hpp, the one place the version is written (used by the root CMakeLists.txt and
# by this package's pyconvxConfigVersion.cmake).
function(pyconvx_read_version header variable)
  file(STRINGS "${header}" _defines REGEX "^#define PYCONVX_VERSION_(MAJOR|MINOR|PATCH) [0-9]+$")
  set(_version "")
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX MATCH "PYCONVX_VERSION_${_part} ([0-9]+)" _match "${_defines}")
    list(APPEND _version "${CMAKE_MATCH_1}")
  endforeach()
  string(REPLACE ";" "." _version "${_version}")
  set(${variable} "${_version}" PARENT_SCOPE)
endfunction()
