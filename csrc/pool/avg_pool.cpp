// Average pooling (windowed and global), forward and backward, parallel over planes.
#include <omp.h>

#include <stdexcept>
#include <string>

#include "pyconvx/pool.hpp"
#include "../core/dispatch.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "pyconvx/runtime.hpp"
#include "separable.hpp"
#include "window.hpp"

namespace pyconvx {
namespace {

using detail::Quad;
using detail::QuadIndex;
using detail::Window;
using detail::load_quad;
using detail::store_quad;

// Multiplied in floating point: with windows of 2^32 the int64 product would overflow.
inline float divisor(const Pool2dParams& k, const Window& r, const Window& c) {
  return k.count_include_pad ? static_cast<float>(r.padded) * static_cast<float>(c.padded)
                             : static_cast<float>(r.end - r.begin) * static_cast<float>(c.end - c.begin);
}

// Windows that tile the input exactly (stride = kernel, no padding, every pixel in one full
// window: LeNet's and VGG's 2x2 pools on even sizes). Then a plane's output row p reads input
// rows p * kh .. p * kh + kh - 1 only, planes end where their last window ends, and the whole
// batch is N * C * P groups of kh rows: one loop over them, no plane-sized bookkeeping (which
// cost more than the sums on LeNet's 10x10 planes).
bool tiles_exactly(const Pool2dProblem& pr) {
  const Pool2dParams& k = pr.params;
  return k.stride_h == k.kernel_h && k.stride_w == k.kernel_w && k.pad_top == 0 && k.pad_bottom == 0 && k.pad_left == 0 && k.pad_right == 0 &&
         pr.p * k.kernel_h == pr.x.h && pr.q * k.kernel_w == pr.x.w;
}

int64_t row_groups(const Pool2dProblem& pr) { return pr.x.n * pr.x.c * pr.p; }

void tiled_forward(const Pool2dProblem& pr, const float* x, float* y) {
  const int64_t kh = pr.params.kernel_h, kw = pr.params.kernel_w, W = pr.x.w, Q = pr.q;
  const float inv = 1.0f / (static_cast<float>(kh) * static_cast<float>(kw));
  const int64_t full = kh == 2 && kw == 2 ? Q / 4 * 4 : 0;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::pool_threads(pr))
  for (int64_t g = 0; g < row_groups(pr); ++g) {
    const float* in = x + g * kh * W;
    float* out = y + g * Q;
    // 2x2: four outputs from two rows of eight, pairs summed by shuffles.
    for (int64_t q = 0; q < full; q += 4) {
      const Quad a = load_quad(in + 2 * q) + load_quad(in + W + 2 * q);
      const Quad b = load_quad(in + 2 * q + 4) + load_quad(in + W + 2 * q + 4);
      const Quad sums = __builtin_shuffle(a, b, QuadIndex{0, 2, 4, 6}) + __builtin_shuffle(a, b, QuadIndex{1, 3, 5, 7});
      store_quad(out + q, sums * inv);
    }
    for (int64_t q = full; q < Q; ++q) {
      float sum = 0.0f;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) sum += in[i * W + q * kw + j];
      out[q] = sum * inv;
    }
  }
}

void tiled_backward(const Pool2dProblem& pr, const float* grad_y, float* grad_x) {
  const int64_t kh = pr.params.kernel_h, kw = pr.params.kernel_w, W = pr.x.w, Q = pr.q;
  const float inv = 1.0f / (static_cast<float>(kh) * static_cast<float>(kw));
  const int64_t full = kw == 2 ? Q / 4 * 4 : 0;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::pool_threads(pr))
  for (int64_t g = 0; g < row_groups(pr); ++g) {
    const float* gy = grad_y + g * Q;
    float* gx = grad_x + g * kh * W;
    for (int64_t i = 0; i < kh; ++i) {
      float* row = gx + i * W;
      for (int64_t q = 0; q < full; q += 4) {  // each gradient twice, side by side
        const Quad v = load_quad(gy + q) * inv;
        store_quad(row + 2 * q, __builtin_shuffle(v, QuadIndex{0, 0, 1, 1}));
        store_quad(row + 2 * q + 4, __builtin_shuffle(v, QuadIndex{2, 2, 3, 3}));
      }
      for (int64_t q = full; q < Q; ++q)
        for (int64_t j = 0; j < kw; ++j) row[q * kw + j] = gy[q] * inv;
    }
  }
}

}  // namespace

void avg_pool2d_forward(const Pool2dProblem& pr, const float* x, float* y) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "avg_pool2d");
  check_data(x, pr.x.numel(), "x", "avg_pool2d");
  check_data(y, pr.y().numel(), "y", "avg_pool2d");
  if (tiles_exactly(pr)) return tiled_forward(pr, x, y);
  const Pool2dParams& k = pr.params;
  const auto rows = detail::pool_windows(pr.p, k.stride_h, k.pad_top, k.pad_bottom, k.kernel_h, pr.x.h);
  const auto cols = detail::pool_windows(pr.q, k.stride_w, k.pad_left, k.pad_right, k.kernel_w, pr.x.w);
  const int64_t planes = pr.x.n * pr.x.c, in_plane = pr.x.h * pr.x.w, out_plane = pr.p * pr.q;
  // The divisor is a product of a row and a column factor, so one reciprocal table serves all planes.
  std::vector<float> scale(static_cast<size_t>(out_plane));
  for (int64_t p = 0; p < pr.p; ++p)
    for (int64_t q = 0; q < pr.q; ++q) scale[p * pr.q + q] = 1.0f / divisor(k, rows[p], cols[q]);
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(detail::pool_threads(pr))
  {
    std::vector<float> rows_buf(static_cast<size_t>(detail::reduce_buffer_floats(pr.x.w, pr.q, k.kernel_w, k.stride_w, k.pad_left)));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < planes; ++t) {
      float* yp = y + t * out_plane;
      detail::reduce_plane<detail::Sum>(x + t * in_plane, pr.x.w, rows, cols, k.kernel_w, k.stride_w, k.pad_left,
                                        yp, rows_buf.data());
      for (int64_t i = 0; i < out_plane; ++i) yp[i] *= scale[i];
    }
  }
}

void avg_pool2d_backward(const Pool2dProblem& pr, const float* grad_y, float* grad_x) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "avg_pool2d_backward");
  check_data(grad_y, pr.y().numel(), "grad_y", "avg_pool2d_backward");
  check_data(grad_x, pr.x.numel(), "grad_x", "avg_pool2d_backward");
  if (tiles_exactly(pr)) return tiled_backward(pr, grad_y, grad_x);
  const Pool2dParams& k = pr.params;
  const auto rows = detail::pool_windows(pr.p, k.stride_h, k.pad_top, k.pad_bottom, k.kernel_h, pr.x.h);
  const auto cols = detail::pool_windows(pr.q, k.stride_w, k.pad_left, k.pad_right, k.kernel_w, pr.x.w);
  const int64_t planes = pr.x.n * pr.x.c, W = pr.x.w, in_plane = pr.x.h * W, out_plane = pr.p * pr.q;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::pool_threads(pr))
  for (int64_t t = 0; t < planes; ++t) {
    float* gx = grad_x + t * in_plane;
    const float* gy = grad_y + t * out_plane;
    for (int64_t i = 0; i < in_plane; ++i) gx[i] = 0.0f;
    for (int64_t p = 0; p < pr.p; ++p)
      for (int64_t q = 0; q < pr.q; ++q) {
        const Window &wr = rows[p], &wc = cols[q];
        const float g = gy[p * pr.q + q] / divisor(k, wr, wc);
        for (int64_t ih = wr.begin; ih < wr.end; ++ih)
          for (int64_t iw = wc.begin; iw < wc.end; ++iw) gx[ih * W + iw] += g;
      }
  }
}

namespace {

void check_global(const Shape4& s, const char* op) {
  if (s.c < 1 || s.h < 1 || s.w < 1)
    throw std::invalid_argument(std::string(op) + ": x must have non-empty C, H and W, got x shape " + s.str());
}

}  // namespace

void global_avg_pool2d_forward(const Shape4& s, const float* x, float* y) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_global(s, "global_avg_pool2d");
  check_data(x, s.numel(), "x", "global_avg_pool2d");
  check_data(y, s.n * s.c, "y", "global_avg_pool2d");
  const int64_t planes = s.n * s.c, plane = s.h * s.w;
  const float scale = 1.0f / static_cast<float>(plane);
  const detail::PlaneMeans means = detail::active_plane_means();
  const int threads = detail::threads_for(planes * plane, get_num_threads());
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(threads)
  {
    int64_t begin, end;
    // Whole groups of 16 planes (the widest vector's group, see plane_means_vl) a thread.
    detail::split_range(planes, 16, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    means(x + begin * plane, end - begin, plane, scale, y + begin);
  }
}

void global_avg_pool2d_backward(const Shape4& s, const float* grad_y, float* grad_x) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_global(s, "global_avg_pool2d_backward");
  check_data(grad_y, s.n * s.c, "grad_y", "global_avg_pool2d_backward");
  check_data(grad_x, s.numel(), "grad_x", "global_avg_pool2d_backward");
  const int64_t planes = s.n * s.c, plane = s.h * s.w;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::threads_for(planes * plane, get_num_threads()))
  for (int64_t t = 0; t < planes; ++t) {
    const float g = grad_y[t] / static_cast<float>(plane);
    for (int64_t i = 0; i < plane; ++i) grad_x[t * plane + i] = g;
  }
}

}  // namespace pyconvx
