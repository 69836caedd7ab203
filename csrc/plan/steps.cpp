// What each kind of plan step does in a run.
#include "steps.hpp"

#include <omp.h>

#include <cstring>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../nn/elementwise.hpp"
#include "pyconvx/pool.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {

void ConvStep::run(const RunContext& ctx, int64_t n) const {
  Conv2dProblem pr = problem;
  pr.x.n = n;
  const float* x = ctx.at(reads[0]);
  float* y = ctx.at(writes);
  const int64_t stride = ctx.stride(writes), per_image = pr.k() * pr.p * pr.q;
  const bool accumulate = reads.size() > 1;
  if (accumulate && !(reads.size() == 2 && ctx.at(reads[1]) == y)) {
    // The residuals' sum into the output first (the residuals are whole values, one image after
    // another); the convolution then adds itself onto it.
    const float* first = ctx.at(reads[1]);
    for (int64_t i = 0; i < (stride == per_image ? 1 : n); ++i) {
      const int64_t count = stride == per_image ? n * per_image : per_image;
      float* dst = y + i * stride;
      const float* second = reads.size() > 2 ? ctx.at(reads[2]) + i * per_image : nullptr;
      pointwise_parallel(dst, first + i * per_image, second, count, Activation::none);
      for (size_t r = 3; r < reads.size(); ++r)
        pointwise_parallel(dst, dst, ctx.at(reads[r]) + i * per_image, count, Activation::none);
    }
  }
  const ConvOutput out{y, stride, accumulate, activation};
  if (prepared->algorithm == ConvAlgorithm::winograd && !all_finite(x, pr.x.numel())) {
    // Inf or NaN in the input: the implicit GEMM propagates them as torch does (see conv2d.cpp).
    PreparedConv fallback;
    prepare_conv(pr, ConvAlgorithm::implicit_gemm, raw.data(), raw_bias.size() ? raw_bias.data() : nullptr, false,
                 &fallback);
    run_conv(fallback, pr, x, out);
    return;
  }
  run_conv(*prepared, pr, x, out);
}

int64_t ConvStep::weight_bytes() const {
  return prepared->model_bytes() + scratch_bytes(raw.size()) + scratch_bytes(raw_bias.size());
}

void PoolStep::run(const RunContext& ctx, int64_t n) const {
  const Shape4 shape{n, x.c, x.h, x.w};
  const float* in = ctx.at(reads[0]);
  float* out = ctx.at(writes);
  switch (kind) {
    case PoolKind::max:
      return max_pool2d_forward(make_pool2d_problem(shape, params, "max_pool2d"), in, out, nullptr);
    case PoolKind::average:
      return avg_pool2d_forward(make_pool2d_problem(shape, params, "avg_pool2d"), in, out);
    case PoolKind::global_average:
      return global_avg_pool2d_forward(shape, in, out);
    case PoolKind::adaptive_average:
      return adaptive_avg_pool2d_forward(shape, params.kernel_h, params.kernel_w, in, out);
  }
}

void PointwiseStep::run(const RunContext& ctx, int64_t n) const {
  float* y = ctx.at(writes);
  if (scale_shift.size()) {
    const float* scale = scale_shift.data();
    channel_affine_parallel(y, ctx.at(reads[0]), n, channels, numel / channels, scale, scale + channels, activation);
    return;
  }
  const int64_t count = n * numel;
  const size_t last = reads.size() - 1;
  pointwise_parallel(y, ctx.at(reads[0]), reads.size() > 1 ? ctx.at(reads[1]) : nullptr, count,
                     last <= 1 ? activation : Activation::none);
  for (size_t r = 2; r < reads.size(); ++r)
    pointwise_parallel(y, y, ctx.at(reads[r]), count, r == last ? activation : Activation::none);
}

void CopyStep::run(const RunContext& ctx, int64_t n) const {
  float* y = ctx.at(writes);
  const int64_t y_stride = ctx.stride(writes), pieces = static_cast<int64_t>(reads.size());
  int64_t floats = 0;
  for (int64_t size : sizes) floats += size;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) collapse(2) \
    num_threads(threads_for(n * outer * floats, get_num_threads()))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < pieces; ++r) {
      const float* src = ctx.at(reads[r]) + i * ctx.stride(reads[r]);
      float* dst = y + i * y_stride + offsets[r];
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + o * block, src + o * sizes[r], static_cast<size_t>(sizes[r]) * sizeof(float));
    }
}

void SoftmaxStep::run(const RunContext& ctx, int64_t n) const {
  softmax_parallel(n, channels, inner, ctx.at(reads[0]), ctx.at(writes));
}

void LrnStep::run(const RunContext& ctx, int64_t n) const {
  lrn_parallel(Shape4{n, x.c, x.h, x.w}, ctx.at(reads[0]), ctx.at(writes), size, alpha, beta, k);
}

}  // namespace pyconvx::detail
