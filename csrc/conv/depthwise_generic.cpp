// The depthwise plane kernel for the generic path, 4 floats a vector (see depthwise_impl.hpp).
#include "depthwise_impl.hpp"

namespace pyconvx::detail {

DepthwisePlane depthwise_plane_generic(const DepthwiseTaps& taps, int64_t* run) {
  return depthwise_plane_body<4>(taps, run);
}

}  // namespace pyconvx::detail
