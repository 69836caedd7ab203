// The depthwise plane kernel for the avx2 path, 8 floats a vector (see depthwise_impl.hpp).
#include "depthwise_impl.hpp"

namespace pyconvx::detail {

DepthwisePlane depthwise_plane_avx2(const DepthwiseTaps& taps, int64_t* run) {
  return depthwise_plane_body<8>(taps, run);
}

}  // namespace pyconvx::detail
