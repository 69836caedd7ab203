// Global average pooling's reduction: AVX2, compiled with -mavx2 (eight-float vectors).
#include "../core/dispatch.hpp"
#include "plane_means_impl.hpp"

namespace pyconvx::detail {

void plane_means_avx2(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  plane_means_vl<8>(x, planes, plane, scale, y);
}

}  // namespace pyconvx::detail
