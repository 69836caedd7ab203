// Max pooling, forward and backward, parallel over (image, channel) planes.
#include <omp.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "pyconvx/pool.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "pyconvx/runtime.hpp"
#include "separable.hpp"
#include "window.hpp"

namespace pyconvx {
namespace {

using detail::Window;

// The index-returning path: scans one plane's windows in row-major order, keeping the first maximum and letting NaN win
// (torch's rule: a later NaN replaces an earlier one, so its index is the last NaN's).
template <bool kIndices>
void max_plane(const Pool2dProblem& pr, const std::vector<Window>& rows, const std::vector<Window>& cols,
               const float* x, float* y, int64_t* idx) {
  const int64_t W = pr.x.w;
  for (int64_t p = 0; p < pr.p; ++p) {
    const Window wr = rows[p];
    for (int64_t q = 0; q < pr.q; ++q) {
      const Window wc = cols[q];
      float best = -std::numeric_limits<float>::infinity();
      int64_t where = wr.begin * W + wc.begin;
      for (int64_t ih = wr.begin; ih < wr.end; ++ih) {
        const float* row = x + ih * W;
        for (int64_t iw = wc.begin; iw < wc.end; ++iw) {
          const float v = row[iw];
          if (v > best || std::isnan(v)) {
            best = v;
            if (kIndices) where = ih * W + iw;
          }
        }
      }
      y[p * pr.q + q] = best;
      if (kIndices) idx[p * pr.q + q] = where;
    }
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dProblem& pr, const float* x, float* y, int64_t* indices) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "max_pool2d");
  check_data(x, pr.x.numel(), "x", "max_pool2d");
  check_data(y, pr.y().numel(), "y", "max_pool2d");
  check_data(indices, indices ? pr.y().numel() : 0, "indices", "max_pool2d", sizeof(int64_t));
  const Pool2dParams& k = pr.params;
  const auto rows = detail::pool_windows(pr.p, k.stride_h, k.pad_top, k.pad_bottom, k.kernel_h, pr.x.h);
  const auto cols = detail::pool_windows(pr.q, k.stride_w, k.pad_left, k.pad_right, k.kernel_w, pr.x.w);
  const int64_t planes = pr.x.n * pr.x.c, in_plane = pr.x.h * pr.x.w, out_plane = pr.p * pr.q;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(detail::pool_threads(pr))
  {
    std::vector<float> rows_buf(indices ? 0 : static_cast<size_t>(detail::reduce_buffer_floats(pr.x.w, pr.q, k.kernel_w, k.stride_w, k.pad_left)));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < planes; ++t) {
      if (indices)
        max_plane<true>(pr, rows, cols, x + t * in_plane, y + t * out_plane, indices + t * out_plane);
      else
        detail::reduce_plane<detail::MaxNan>(x + t * in_plane, pr.x.w, rows, cols, k.kernel_w, k.stride_w,
                                             k.pad_left, y + t * out_plane, rows_buf.data());
    }
  }
}

void max_pool2d_backward(const Pool2dProblem& pr, const float* grad_y, const float* x, const int64_t* indices,
                         float* grad_x) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "max_pool2d_backward");
  check_data(grad_y, pr.y().numel(), "grad_y", "max_pool2d_backward");
  check_data(x, indices ? 0 : pr.x.numel(), "x (needed when indices is null)", "max_pool2d_backward");
  check_data(indices, indices ? pr.y().numel() : 0, "indices", "max_pool2d_backward", sizeof(int64_t));
  check_data(grad_x, pr.x.numel(), "grad_x", "max_pool2d_backward");
  const int64_t planes = pr.x.n * pr.x.c, in_plane = pr.x.h * pr.x.w, out_plane = pr.p * pr.q;
  if (indices) {  // indices come from the caller: an out-of-range one must not write out of bounds
    for (int64_t i = 0; i < planes * out_plane; ++i)
      if (indices[i] < 0 || indices[i] >= in_plane)
        throw std::invalid_argument("max_pool2d_backward: indices must lie in [0, H*W=" + std::to_string(in_plane) +
                                    "), got " + std::to_string(indices[i]) + " at flat position " + std::to_string(i));
  }
  const Pool2dParams& k = pr.params;
  const auto rows = detail::pool_windows(pr.p, k.stride_h, k.pad_top, k.pad_bottom, k.kernel_h, pr.x.h);
  const auto cols = detail::pool_windows(pr.q, k.stride_w, k.pad_left, k.pad_right, k.kernel_w, pr.x.w);
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(detail::pool_threads(pr))
  {
    std::vector<float> values;
    std::vector<int64_t> found;
    if (!indices) {
      values.resize(static_cast<size_t>(out_plane));
      found.resize(static_cast<size_t>(out_plane));
    }
#pragma omp for schedule(static)
    for (int64_t t = 0; t < planes; ++t) {
      float* gx = grad_x + t * in_plane;
      const float* gy = grad_y + t * out_plane;
      const int64_t* where = indices ? indices + t * out_plane : found.data();
      if (!indices) max_plane<true>(pr, rows, cols, x + t * in_plane, values.data(), found.data());
      for (int64_t i = 0; i < in_plane; ++i) gx[i] = 0.0f;
      for (int64_t i = 0; i < out_plane; ++i) gx[where[i]] += gy[i];
    }
  }
}

}  // namespace pyconvx
