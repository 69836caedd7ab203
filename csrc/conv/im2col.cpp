// Patch-matrix packing (implicit GEMM), im2col and col2im.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../core/copy.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "patches.hpp"
#include "pyconvx/conv.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace detail {

namespace {

// Output pixel -> top-left input coordinate of its receptive field.
struct PixelOrigin {
  int64_t ih, iw;
};

inline PixelOrigin origin(const Conv2dProblem& pr, int64_t pixel) {
  const int64_t p = pixel / pr.q, q = pixel % pr.q;
  return {p * pr.params.stride_h - pr.params.pad_top, q * pr.params.stride_w - pr.params.pad_left};
}

inline bool inside(int64_t v, int64_t limit) { return static_cast<uint64_t>(v) < static_cast<uint64_t>(limit); }

// Lanes of a sliver that share an output row read input pixels `stride_w` apart along one input
// row: a run. A sliver of nr lanes holds at most a few runs, so the bounds check is made per run
// and the copy itself is a straight (or strided) loop.
struct LaneRun {
  int64_t lane, len, ih, iw;  // first lane, lane count, receptive-field origin of the first lane
};

int collect_runs(const Conv2dProblem& pr, int64_t first_pixel, int64_t cols, LaneRun* runs) {
  int count = 0;
  for (int64_t j = 0; j < cols;) {
    const int64_t pixel = first_pixel + j, q = pixel % pr.q;
    const int64_t len = std::min(cols - j, pr.q - q);
    const PixelOrigin o = origin(pr, pixel);
    runs[count++] = LaneRun{j, len, o.ih, o.iw};
    j += len;
  }
  return count;
}

}  // namespace

void PatchPanelSource::pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const {
  const int64_t R = pr_.r(), S = pr_.s(), H = pr_.x.h, W = pr_.x.w;
  const int64_t dh = pr_.params.dilation_h, dw = pr_.params.dilation_w, sw = pr_.params.stride_w;
  // Consecutive patch rows of one channel (its R * S taps) read overlapping input lines, so
  // going sliver by sliver finds them in cache. Rows of different channels are a plane apart:
  // with few taps per channel (1x1 layers) each row visit would be a cache miss the prefetchers
  // do not follow, so there a row is visited once for a group of 8 slivers, reading 8 * nr
  // pixels together (ResNet's 1x1/s2 projection: 96 -> 144 GFLOP/s). With many taps, grouping
  // only spreads the writes over 128 KiB of slivers, past L1 (AlexNet conv1: 99 -> 87).
  constexpr int64_t kMaxGroup = 8;
  const int64_t kGroup = R * S <= 2 ? kMaxGroup : 1;
  LaneRun runs[kMaxGroup][64];
  int run_count[kMaxGroup];
  const int64_t slivers = ceil_div(nc, nr);
  for (int64_t s0 = 0; s0 < slivers; s0 += kGroup) {
    const int64_t group = std::min(kGroup, slivers - s0);
    for (int64_t g = 0; g < group; ++g) {
      const int64_t j0 = (s0 + g) * nr;
      run_count[g] = collect_runs(pr_, n0 + j0, std::min<int64_t>(nr, nc - j0), runs[g]);
    }
    int64_t c = k0 / (R * S), r = (k0 / S) % R, s = k0 % S;
    for (int64_t p = 0; p < kc; ++p) {
      const float* plane = image_ + c * H * W;
      const int64_t oh = r * dh, ow = s * dw;
      for (int64_t g = 0; g < group; ++g) {
        float* row_out = dst + (s0 + g) * kc * nr + p * nr;
        const int64_t cols = std::min<int64_t>(nr, nc - (s0 + g) * nr);
        for (int i = 0; i < run_count[g]; ++i) {
          const LaneRun& run = runs[g][i];
          float* out = row_out + run.lane;
          const int64_t ih = run.ih + oh, iw = run.iw + ow;
          if (!inside(ih, H)) {
            std::fill(out, out + run.len, 0.0f);
            continue;
          }
          const float* src = plane + ih * W;
          if (iw >= 0 && iw + (run.len - 1) * sw < W) {  // the whole run lies inside the row
            copy_strided(out, src + iw, run.len, sw);
          } else {
            for (int64_t t = 0; t < run.len; ++t) out[t] = inside(iw + t * sw, W) ? src[iw + t * sw] : 0.0f;
          }
        }
        std::fill(row_out + cols, row_out + nr, 0.0f);
      }
      if (++s == S) {
        s = 0;
        if (++r == R) {
          r = 0;
          ++c;
        }
      }
    }
  }
}

namespace {

// Rows 0..3 of `out` (`ld` floats apart) take columns 0..3 of the 4 x 4 block whose row i is the
// four floats at src[i] + t (zeros where src[i] is null): four loads, eight shuffles, four stores
// where the scalar transpose takes sixteen loads and stores.
inline void transpose_quad(const float* const* src, int64_t t, float* out, int64_t ld) {
  Quad v[4];
  for (int i = 0; i < 4; ++i) v[i] = src[i] ? load_quad(src[i] + t) : Quad{};
  transpose_quads(v);
  for (int u = 0; u < 4; ++u) store_quad(out + u * ld, v[u]);
}

}  // namespace

void PatchTransposePanelSource::pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const {
  const int64_t R = pr_.r(), S = pr_.s(), Q = pr_.q, pq = pr_.p * Q;
  const PhaseSplitImages& im = images_;
  // The kc pixels fall into runs along output rows (at most kc / Q + 2 of them); a run's pixels
  // lie at the same offset from every tap's first pixel.
  struct Run {
    int64_t lane, len, offset;
  };
  std::vector<Run> runs;
  runs.reserve(static_cast<size_t>(kc / Q + 2));
  for (int64_t i = 0; i < kc;) {
    const int64_t flat = pixel0_ + k0 + i, pixel = flat % pq, q = pixel % Q, len = std::min(kc - i, Q - q);
    runs.push_back(Run{i, len, im.pixel_offset(flat / pq, pixel / Q, q)});
    i += len;
  }
  constexpr int kMaxNr = 32;  // the widest register tile; nr is a multiple of 4 on every ISA
  const float* tap[kMaxNr];
  for (int64_t j0 = 0; j0 < nc; j0 += nr, dst += kc * nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - j0);
    // Column j is tap (c, r, s) of k = n0 + j0 + j, stepped along with j rather than divided
    // out; null past the last column (zeros).
    int64_t c = (n0 + j0) / (R * S), r = (n0 + j0) / S % R, s = (n0 + j0) % S;
    for (int64_t j = 0; j < nr; ++j) {
      tap[j] = j < cols ? im.data + im.tap_offset(pr_, c, r, s) : nullptr;
      if (++s == S) {
        s = 0;
        if (++r == R) {
          r = 0;
          ++c;
        }
      }
    }
    for (const Run& run : runs) {
      float* out = dst + run.lane * nr;
      // Four lanes at a time, reading up to 3 pixels past the run (inside the copy, or inside
      // the images themselves: see phase_split_view); a run's last quad may write into the
      // lanes of the next runs, which are packed after it, but not past the sliver's last lane.
      const int64_t quads_end = std::min(round_up(run.len, 4), (kc - run.lane) / 4 * 4);
      int64_t t = 0;
      for (; t < quads_end; t += 4)
        for (int64_t j = 0; j < nr; j += 4) transpose_quad(tap + j, run.offset + t, out + t * nr + j, nr);
      for (; t < run.len; ++t)
        for (int64_t j = 0; j < nr; ++j) out[t * nr + j] = tap[j] ? tap[j][run.offset + t] : 0.0f;
    }
  }
}

void im2col_rows(const Conv2dProblem& pr, const float* image, int64_t c_begin, int64_t c_end, int64_t col_begin,
                 int64_t col_end, float* dst, int64_t ld) {
  const int64_t R = pr.r(), S = pr.s(), H = pr.x.h, W = pr.x.w;
  for (int64_t c = c_begin; c < c_end; ++c) {
    const float* plane = image + c * H * W;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        float* row = dst + (((c - c_begin) * R + r) * S + s) * ld;
        const int64_t oh = r * pr.params.dilation_h, ow = s * pr.params.dilation_w;
        for (int64_t n = col_begin; n < col_end; ++n) {
          const PixelOrigin o = origin(pr, n);
          const int64_t ih = o.ih + oh, iw = o.iw + ow;
          row[n - col_begin] = (inside(ih, H) && inside(iw, W)) ? plane[ih * W + iw] : 0.0f;
        }
      }
  }
}

namespace {

// dst[t * Step] += src[t] for t < n; a constant step lets GCC vectorise (0: `step` at run time).
template <int Step>
inline void add_every(float* __restrict dst, const float* __restrict src, int64_t n, int64_t step) {
  const int64_t s = Step ? Step : step;
  for (int64_t t = 0; t < n; ++t) dst[t * s] += src[t];
}

inline void add_strided(float* dst, const float* src, int64_t n, int64_t step) {
  if (step == 1)
    add_every<1>(dst, src, n, 1);
  else if (step == 2)
    add_every<2>(dst, src, n, 2);
  else
    add_every<0>(dst, src, n, step);
}

}  // namespace

// Along runs of one output row, as PatchPanelSource reads them: the bounds are worked out once
// per run and tap, and the adds are a straight (or strided) loop. Per column, with a division
// for its pixel and a bounds check for every value, this took half of the grad input time of
// ResNet's 3x3 stride-2 layer.
void col2im_rows(const Conv2dProblem& pr, const float* src, int64_t ld, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* image) {
  const int64_t R = pr.r(), S = pr.s(), H = pr.x.h, W = pr.x.w, sw = pr.params.stride_w;
  std::vector<LaneRun> runs(static_cast<size_t>((col_end - col_begin) / std::max<int64_t>(pr.q, 1) + 2));
  const int run_count = collect_runs(pr, col_begin, col_end - col_begin, runs.data());
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* plane = image + c * H * W;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        const float* row = src + (((c - c_begin) * R + r) * S + s) * ld;
        for (int i = 0; i < run_count; ++i) {
          const LaneRun& run = runs[i];
          const int64_t ih = run.ih + r * pr.params.dilation_h, iw = run.iw + s * pr.params.dilation_w;
          if (!inside(ih, H)) continue;
          // Lanes t with 0 <= iw + t * sw < W.
          const int64_t lo = iw >= 0 ? 0 : (-iw + sw - 1) / sw;
          const int64_t hi = iw >= W ? 0 : std::min(run.len, (W - 1 - iw) / sw + 1);
          if (lo < hi) add_strided(plane + ih * W + iw + lo * sw, row + run.lane + lo, hi - lo, sw);
        }
      }
  }
}

}  // namespace detail

Conv2dProblem make_im2col_problem(const Shape4& x, int64_t r, int64_t s, const Conv2dParams& params, const char* op) {
  if (params.groups != 1) throw std::invalid_argument(std::string(op) + ": groups must be 1");
  if (r < 1 || s < 1)
    throw std::invalid_argument(std::string(op) + ": kernel_size must be >= 1, got kernel_size=(" + std::to_string(r) +
                                ", " + std::to_string(s) + ")");
  return make_conv2d_problem(x, Shape4{1, x.c, r, s}, params, op);
}

namespace {

// Runs body(image, channel, that channel's rows of the patch matrix) for every image and channel,
// in parallel: each channel owns R * S rows of its image's patch matrix, so tasks never overlap.
template <class Body>
void for_each_channel(const Conv2dProblem& pr, Body body) {
  const int64_t C = pr.x.c, rows = pr.reduction() * pr.params.groups, pq = pr.p * pr.q, rs = pr.r() * pr.s();
  const int64_t tasks = pr.x.n * C;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::threads_for(pr.x.n * rows * pq, get_num_threads()))
  for (int64_t t = 0; t < tasks; ++t) body(t / C, t % C, (t / C * rows + t % C * rs) * pq);
}

}  // namespace

void im2col(const Conv2dProblem& pr, const float* x, float* cols) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "im2col");
  check_data(x, pr.x.numel(), "x", "im2col");
  check_data(cols, pr.x.n * pr.reduction() * pr.p * pr.q, "cols", "im2col");
  const int64_t image = pr.x.c * pr.x.h * pr.x.w, pq = pr.p * pr.q;
  for_each_channel(pr, [&](int64_t n, int64_t c, int64_t row0) {
    detail::im2col_rows(pr, x + n * image, c, c + 1, 0, pq, cols + row0, pq);
  });
}

void col2im(const Conv2dProblem& pr, const float* cols, float* x) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "col2im");
  check_data(cols, pr.x.n * pr.reduction() * pr.p * pr.q, "cols", "col2im");
  check_data(x, pr.x.numel(), "x", "col2im");
  const int64_t plane = pr.x.h * pr.x.w, image = pr.x.c * plane, pq = pr.p * pr.q;
  for_each_channel(pr, [&](int64_t n, int64_t c, int64_t row0) {
    std::fill(x + n * image + c * plane, x + n * image + (c + 1) * plane, 0.0f);
    detail::col2im_rows(pr, cols + row0, pq, c, c + 1, 0, pq, x + n * image);
  });
}

}  // namespace pyconvx
