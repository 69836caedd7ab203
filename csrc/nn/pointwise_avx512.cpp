// The element-wise kernel for the avx512 path, 16 floats a vector (see pointwise_impl.hpp).
#include "../core/dispatch.hpp"
#include "pointwise_impl.hpp"

namespace pyconvx::detail {

void pointwise_avx512(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act) {
  pointwise_body<16>(y, x, z, n, scale, shift, act);
}

}  // namespace pyconvx::detail
