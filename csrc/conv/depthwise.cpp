// Depthwise convolution (groups = C: each input channel feeds K / C filters of its own), directly.
//
// A depthwise layer does R * S multiply-adds per output and reads each input once, so it is
// bound by memory, not by FMAs; as GEMMs its groups would have one row each, five sixths of every
// register tile wasted. Here each task zero-pads one input plane into scratch (a few KiB: it
// stays in L1 or L2), then the active path's plane kernel (depthwise_impl.hpp) sweeps each
// output row in runs that stay in registers across all R * S taps: one load of the input per tap,
// one store per output.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "../core/workspace.hpp"
#include "algorithms.hpp"
#include "band.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

// Lanes of the weight gradient's dot products (quad.hpp).
constexpr int64_t kLanes = 4;
typedef Quad Lanes;

// The zero-padded plane the weight gradient reads: `rows` x `cols` values in rows of `ld` floats.
struct PaddedPlane {
  int64_t rows, cols, ld;
  explicit PaddedPlane(const Conv2dProblem& pr)
      : rows((pr.p - 1) * pr.params.stride_h + (pr.r() - 1) * pr.params.dilation_h + 1),
        cols((pr.q - 1) * pr.params.stride_w + (pr.s() - 1) * pr.params.dilation_w + 1),
        ld(cols) {}
  int64_t size() const { return rows * ld; }

  // Copies `plane` (H x W) into `dst` behind pad_top rows and pad_left columns of zeros.
  void fill(const Conv2dProblem& pr, const float* plane, float* dst) const {
    copy_padded_rows(plane, 1, pr.x.h, pr.x.w, -pr.params.pad_top, rows, pr.params.pad_left, ld, dst);
  }
};

// The zero-padded plane the forward pass reads, split into the stride's column phases: phase b
// (of sw) holds padded column j * sw + b at column j, so that output column q reads tap (r, s) at
// column q + s * dw / sw of phase s * dw % sw, a unit-stride run at any stride (the kernel's
// loads never gather or shuffle). Each phase has `rows` rows of `ld` floats: wide enough for
// the last run of a row (`run` outputs, the kernel's choice) to read a full run.
struct PhasePlanes {
  int64_t rows, ld, phases;
  PhasePlanes(const Conv2dProblem& pr, int64_t run)
      : rows((pr.p - 1) * pr.params.stride_h + (pr.r() - 1) * pr.params.dilation_h + 1),
        ld(round_up(pr.q, run) + (pr.s() - 1) * pr.params.dilation_w / pr.params.stride_w),
        phases(pr.params.stride_w) {}
  int64_t size() const { return phases * rows * ld; }

  // Copies `plane` (H x W) into the phases behind pad_top rows and pad_left columns of zeros.
  // At stride 2 each row is split into its even and odd columns four at a time, two loads and
  // two shuffles: gathered column by column for each phase, the copy took three times the
  // arithmetic on MobileNet's strided 14 x 14 layers.
  void fill(const Conv2dProblem& pr, const float* plane, float* dst) const {
    const int64_t H = pr.x.h, W = pr.x.w, sw = pr.params.stride_w, left = pr.params.pad_left;
    if (sw == 1) return copy_padded_rows(plane, 1, H, W, -pr.params.pad_top, rows, left, ld, dst);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t h = i - pr.params.pad_top;
      const float* src = h >= 0 && h < H ? plane + h * W : nullptr;
      if (sw != 2) {
        for (int64_t b = 0; b < sw; ++b) copy_phase_row(dst + (b * rows + i) * ld, ld, src, W, sw, b, left);
        continue;
      }
      float* even = dst + i * ld;
      float* odd = dst + (rows + i) * ld;
      if (src == nullptr) {
        zero_floats(even, ld);
        zero_floats(odd, ld);
        continue;
      }
      // Padded column 2j + b is input column 2j + b - left: the columns j whose eight input
      // columns from 2j - left all lie inside the row are split straight from it, two loads and
      // two shuffles for four of each phase; the edges go one by one. (Padding the row into
      // scratch first, then splitting it, took two and a half times the arithmetic's
      // instructions on MobileNetV2's 96-channel 112 x 112 layer.)
      const auto at = [&](int64_t column) { return column >= 0 && column < W ? src[column] : 0.0f; };
      const int64_t first = (left + 1) / 2;  // the first j with 2j - left >= 0
      int64_t j = 0;
      for (; j < std::min(first, ld); ++j) {
        even[j] = at(2 * j - left);
        odd[j] = at(2 * j + 1 - left);
      }
      for (; j + 4 <= ld && 2 * j - left + 8 <= W; j += 4) {
        const Quad a = load_quad(src + 2 * j - left), b = load_quad(src + 2 * j - left + 4);
        store_quad(even + j, __builtin_shuffle(a, b, QuadIndex{0, 2, 4, 6}));
        store_quad(odd + j, __builtin_shuffle(a, b, QuadIndex{1, 3, 5, 7}));
      }
      for (; j < ld; ++j) {
        even[j] = at(2 * j - left);
        odd[j] = at(2 * j + 1 - left);
      }
    }
  }

  // Where tap (r, s) of output (0, 0) lies.
  std::vector<int64_t> tap_offsets(const Conv2dProblem& pr) const {
    const Conv2dParams& cp = pr.params;
    std::vector<int64_t> offsets;
    for (int64_t r = 0; r < pr.r(); ++r)
      for (int64_t s = 0; s < pr.s(); ++s) {
        const int64_t column = s * cp.dilation_w;
        offsets.push_back((column % cp.stride_w * rows + r * cp.dilation_h) * ld + column / cp.stride_w);
      }
    return offsets;
  }
};

// Lanes j of `v` are src[j * step] (a plain vector load when step is 1).
template <bool Unit>
inline void load_lanes(Lanes& v, const float* src, int64_t step) {
  if (Unit) {
    v = load_quad(src);
  } else {
    for (int64_t j = 0; j < kLanes; ++j) v[j] = src[j * step];
  }
}

// A depthwise layer's work is its memory traffic and its planes' fixed costs as much as its R * S
// multiply-adds an output: the input read (padded into scratch) counts, and each plane as much as
// a thousand floats of it (its fill and row setup, about half a microsecond), so that a layer of
// many small planes (960 channels of 7 x 7: 0.30 -> 0.15 ms) shares them out rather than taking
// one thread for its 1 MFLOP.
int depthwise_threads(const Conv2dProblem& pr) {
  const int64_t planes = pr.x.n * pr.x.c;
  return threads_for(1000 * planes + pr.x.numel() + pr.y().numel() * pr.reduction() / 4, get_num_threads());
}

}  // namespace

void conv2d_depthwise(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                      const ConvOutput& out) {
  const Conv2dParams& cp = pr.params;
  const int64_t C = pr.x.c, M = pr.k_per_group(), RS = pr.r() * pr.s(), PQ = pr.p * pr.q;
  const int64_t planes = pr.x.n * C;
  DepthwiseTaps taps{pr.r(), pr.s(), nullptr, 0, pr.p, pr.q};
  int64_t run = 0;
  const DepthwisePlane output = active_depthwise()(taps, &run);
  const PhasePlanes padded(pr, run);
  const std::vector<int64_t> offsets = padded.tap_offsets(pr);
  taps.offsets = offsets.data();
  taps.row_step = cp.stride_h * padded.ld;
  const float* const weight = prepared.weights;
  const float* const bias = prepared.bias;
  const int threads = depthwise_threads(pr);

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic, 4) num_threads(threads)
  for (int64_t t = 0; t < planes; ++t) {
    errors.capture([&] {
      const int64_t n = t / C, c = t % C;
      float* in = thread_scratch(0, padded.size());
      padded.fill(pr, x + t * pr.x.h * pr.x.w, in);
      for (int64_t k = c * M; k < (c + 1) * M; ++k)
        output(in, weight + k * RS, taps, bias ? bias[k] : 0.0f, out.accumulate, out.activation,
               out.image(n) + k * PQ);
    });
  }
  errors.rethrow();
}

void conv2d_depthwise_grad_weight(const Conv2dProblem& pr, const float* grad_y, const float* x, float* grad_weight) {
  const Conv2dParams& cp = pr.params;
  const int64_t N = pr.x.n, C = pr.x.c, M = pr.k_per_group(), R = pr.r(), S = pr.s(), P = pr.p, Q = pr.q;
  const PaddedPlane padded(pr);
  const int threads = conv_threads(pr);

  // By channel: each thread owns whole filters and sums their images in order, so the result
  // does not depend on the thread count. Each tap is a dot product of the output gradient with
  // a shifted view of the padded plane: eight lanes per image, then summed in double.
  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(threads)
  for (int64_t c = 0; c < C; ++c) {
    errors.capture([&] {
      float* in = thread_scratch(0, padded.size());
      double* sums = reinterpret_cast<double*>(thread_scratch(1, 2 * M * R * S));
      std::fill(sums, sums + M * R * S, 0.0);
      for (int64_t n = 0; n < N; ++n) {
        padded.fill(pr, x + (n * C + c) * pr.x.h * pr.x.w, in);
        for (int64_t k = c * M; k < (c + 1) * M; ++k) {
          const float* gy = grad_y + (n * pr.k() + k) * P * Q;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s) {
              const float* base = in + r * cp.dilation_h * padded.ld + s * cp.dilation_w;
              Lanes acc = Lanes{};
              float tail = 0.0f;
              for (int64_t p = 0; p < P; ++p) {
                const float* row = base + p * cp.stride_h * padded.ld;
                const float* g = gy + p * Q;
                int64_t q = 0;
                for (; q + kLanes <= Q; q += kLanes) {
                  Lanes gv, xv;
                  load_lanes<true>(gv, g + q, 1);
                  if (cp.stride_w == 1)
                    load_lanes<true>(xv, row + q, 1);
                  else
                    load_lanes<false>(xv, row + q * cp.stride_w, cp.stride_w);
                  acc += gv * xv;
                }
                for (; q < Q; ++q) tail += g[q] * row[q * cp.stride_w];
              }
              double total = tail;
              for (int64_t j = 0; j < kLanes; ++j) total += acc[j];
              sums[((k - c * M) * R + r) * S + s] += total;
            }
        }
      }
      for (int64_t i = 0; i < M * R * S; ++i) grad_weight[c * M * R * S + i] = static_cast<float>(sums[i]);
    });
  }
  errors.rethrow();
}

int64_t depthwise_workspace_bytes(const Conv2dProblem& pr) {
  const PhasePlanes most(pr, 64);  // 64: the longest run
  return depthwise_threads(pr) * scratch_bytes(most.size());
}

}  // namespace pyconvx::detail
