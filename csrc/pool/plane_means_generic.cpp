// Global average pooling's reduction: Portable, baseline flags only (four-float vectors).
#include "../core/dispatch.hpp"
#include "plane_means_impl.hpp"

namespace pyconvx::detail {

void plane_means_generic(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  plane_means_vl<4>(x, planes, plane, scale, y);
}

}  // namespace pyconvx::detail
