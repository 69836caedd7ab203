// Convolution with the input pixels as the broadcast operand (after Zhang, Franchetti and Low,
// "High performance zero-memory overhead direct convolutions", 2018).
//
// For a strip of MR output pixels of one output row and a sliver of NR filters, the micro-kernel
// broadcasts each pixel's input value for tap p = (c, r, s), read in place from a zero-padded band
// of the image, against a vector of the NR filters' weights for that tap; the weights are packed
// once per call. Nothing of the image is packed, where the implicit GEMM packs every patch for
// every call of its GEMM: with short patches and few filters to share each packed value (first
// layers: 3 channels, 64 or 96 filters, stride 2 or 4) that packing took a third of the time.
// The tile comes out pixel-major and is written to the NCHW output filter by filter.
#include <omp.h>

#include <algorithm>

#include "../core/parallel.hpp"
#include "../gemm/gemm_driver.hpp"
#include "algorithms.hpp"
#include "band.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {

void conv2d_broadcast(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                      Activation activation) {
  const GemmKernel& kernel = active_gemm_kernel();
  const Conv2dParams& cp = pr.params;
  const int64_t N = pr.x.n, C = pr.x.c, H = pr.x.h, W = pr.x.w, K = pr.k(), R = pr.r(), S = pr.s();
  const int64_t P = pr.p, Q = pr.q, red = pr.reduction(), mr = kernel.mr, nr = kernel.nr;
  const int threads = threads_for(pr.y().numel() * red / 4, get_num_threads());

  // The weights as B (red x K, filter k in column k), packed once into slivers of NR filters.
  const int64_t slivers = ceil_div(K, nr);
  AlignedBuffer packed(slivers * nr * red);
  MatrixPanelSource(MatrixView{weight, 1, red}).pack(0, red, 0, K, static_cast<int>(nr), packed.data());

  // Tasks: (image, block of output rows), at most 8 rows and about four tasks a thread. A task's
  // band holds the input rows its output rows read, zero-padded, wide enough for the last strip
  // of MR pixels to read past the right edge.
  const int64_t rows_per_task = std::max<int64_t>(1, std::min<int64_t>(8, ceil_div(P * N, 4 * threads)));
  const int64_t per_image = ceil_div(P, rows_per_task), tasks = N * per_image;
  const int64_t band_w = std::max(W + cp.pad_left + cp.pad_right, (Q + mr - 1) * cp.stride_w + (S - 1) * cp.dilation_w + 1);
  const int64_t band_rows = (rows_per_task - 1) * cp.stride_h + (R - 1) * cp.dilation_h + 1;
  const bool relu = activation == Activation::relu;

  ParallelExceptions errors;
#pragma omp parallel for schedule(dynamic) num_threads(std::min<int64_t>(threads, tasks))
  for (int64_t t = 0; t < tasks; ++t) {
    errors.capture([&] {
      const int64_t n = t / per_image, oh0 = t % per_image * rows_per_task, oh1 = std::min(P, oh0 + rows_per_task);
      const int64_t ih0 = oh0 * cp.stride_h - cp.pad_top;
      float* band = thread_scratch(2, C * band_rows * band_w);
      copy_padded_rows(x + n * C * H * W, C, H, W, ih0, band_rows, cp.pad_left, band_w, band);
      int64_t* offsets = reinterpret_cast<int64_t*>(thread_scratch(1, 2 * red));
      for (int64_t c = 0, p = 0; c < C; ++c)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) offsets[p++] = (c * band_rows + r * cp.dilation_h) * band_w + s * cp.dilation_w;

      alignas(64) float tile[32 * 32];  // one register tile, MR pixels x NR filters
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const float* row = band + (oh - oh0) * cp.stride_h * band_w;
        for (int64_t ow0 = 0; ow0 < Q; ow0 += mr) {
          const int64_t pixels = std::min(mr, Q - ow0);
          for (int64_t sl = 0; sl < slivers; ++sl) {
            kernel.ukernel_gathered_a(red, row + ow0 * cp.stride_w, offsets, cp.stride_w, packed.data() + sl * nr * red,
                                      tile, nr);
            const int64_t k0 = sl * nr, filters = std::min(nr, K - k0);
            for (int64_t j = 0; j < filters; ++j) {
              float* out = y + ((n * K + k0 + j) * P + oh) * Q + ow0;
              const float add = bias ? bias[k0 + j] : 0.0f;
              for (int64_t i = 0; i < pixels; ++i) {
                const float v = tile[i * nr + j] + add;
                out[i] = relu && v < 0.0f ? 0.0f : v;  // NaN stays NaN, as in torch
              }
            }
          }
        }
      }
    });
  }
  errors.rethrow();
}

}  // namespace pyconvx::detail
