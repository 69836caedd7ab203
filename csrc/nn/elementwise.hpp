// The element-wise kernels behind nn.hpp and the inference plan, without the argument checks
// (internal): each splits its work over the kernels' threads.
#pragma once

#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

// y[i] = act(x[i] + (z ? z[i] : 0)), i < n.
void pointwise_parallel(float* y, const float* x, const float* z, int64_t n, Activation act);

// y = act(scale[c] * x + shift[c]) over `images` images of `channels` planes of `plane` floats.
void channel_affine_parallel(float* y, const float* x, int64_t images, int64_t channels, int64_t plane,
                             const float* scale, const float* shift, Activation act);

void softmax_parallel(int64_t outer, int64_t channels, int64_t inner, const float* x, float* y);

void lrn_parallel(const Shape4& shape, const float* x, float* y, int64_t size, double alpha, double beta, double k);

}  // namespace pyconvx::detail
