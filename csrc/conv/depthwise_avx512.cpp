// The depthwise plane kernel for the avx512 path, 16 floats a vector (see depthwise_impl.hpp).
#include "depthwise_impl.hpp"

namespace pyconvx::detail {

DepthwisePlane depthwise_plane_avx512(const DepthwiseTaps& taps, int64_t* run) {
  return depthwise_plane_body<16>(taps, run);
}

}  // namespace pyconvx::detail
