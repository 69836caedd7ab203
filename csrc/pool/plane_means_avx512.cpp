// Global average pooling's reduction: AVX-512, compiled with -mavx512f (sixteen-float vectors).
#include "../core/dispatch.hpp"
#include "plane_means_impl.hpp"

namespace pyconvx::detail {

void plane_means_avx512(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  plane_means_vl<16>(x, planes, plane, scale, y);
}

}  // namespace pyconvx::detail
