// The element-wise kernel for the avx2 path, 8 floats a vector (see pointwise_impl.hpp).
#include "../core/dispatch.hpp"
#include "pointwise_impl.hpp"

namespace pyconvx::detail {

void pointwise_avx2(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act) {
  pointwise_body<8>(y, x, z, n, scale, shift, act);
}

}  // namespace pyconvx::detail
