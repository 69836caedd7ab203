// Patch-matrix packing (implicit GEMM), im2col and col2im.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "../core/parallel.hpp"
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

}  // namespace

void PatchPanelSource::pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const {
  const int64_t R = pr_.r(), S = pr_.s(), H = pr_.x.h, W = pr_.x.w;
  const int64_t dh = pr_.params.dilation_h, dw = pr_.params.dilation_w;
  // Per sliver, the receptive-field origins of its nr columns are computed once and reused for
  // every row of the slice; rows then differ only by the (c, r, s) offset.
  int64_t ih0[64], iw0[64];
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - j0);
    for (int64_t j = 0; j < cols; ++j) {
      const PixelOrigin o = origin(pr_, n0 + j0 + j);
      ih0[j] = o.ih;
      iw0[j] = o.iw;
    }
    int64_t c = k0 / (R * S), r = (k0 / S) % R, s = k0 % S;
    for (int64_t p = 0; p < kc; ++p) {
      const float* plane = image_ + c * H * W;
      const int64_t oh = r * dh, ow = s * dw;
      int64_t j = 0;
      for (; j < cols; ++j) {
        const int64_t ih = ih0[j] + oh, iw = iw0[j] + ow;
        dst[j] = (inside(ih, H) && inside(iw, W)) ? plane[ih * W + iw] : 0.0f;
      }
      for (; j < nr; ++j) dst[j] = 0.0f;
      dst += nr;
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

void col2im_rows(const Conv2dProblem& pr, const float* src, int64_t ld, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* image) {
  const int64_t R = pr.r(), S = pr.s(), H = pr.x.h, W = pr.x.w;
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* plane = image + c * H * W;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        const float* row = src + (((c - c_begin) * R + r) * S + s) * ld;
        const int64_t oh = r * pr.params.dilation_h, ow = s * pr.params.dilation_w;
        for (int64_t n = col_begin; n < col_end; ++n) {
          const PixelOrigin o = origin(pr, n);
          const int64_t ih = o.ih + oh, iw = o.iw + ow;
          if (inside(ih, H) && inside(iw, W)) plane[ih * W + iw] += row[n - col_begin];
        }
      }
  }
}

}  // namespace detail

Conv2dProblem make_im2col_problem(const Shape4& x, int64_t r, int64_t s, const Conv2dParams& params, const char* op) {
  if (params.groups != 1) throw std::invalid_argument(std::string(op) + ": groups must be 1");
  return make_conv2d_problem(x, Shape4{1, x.c, r, s}, params, op);
}

void im2col(const Conv2dProblem& pr, const float* x, float* cols) {
  const int64_t C = pr.x.c, plane = pr.x.h * pr.x.w, rows = pr.reduction() * pr.params.groups, pq = pr.p * pr.q;
  const int64_t rs = pr.r() * pr.s();
  const int64_t tasks = pr.x.n * C;
#pragma omp parallel for schedule(static) num_threads(detail::threads_for(pr.x.n * rows * pq, get_num_threads()))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / C, c = t % C;
    detail::im2col_rows(pr, x + n * C * plane, c, c + 1, 0, pq, cols + (n * rows + c * rs) * pq, pq);
  }
}

void col2im(const Conv2dProblem& pr, const float* cols, float* x) {
  const int64_t C = pr.x.c, plane = pr.x.h * pr.x.w, rows = pr.reduction() * pr.params.groups, pq = pr.p * pr.q;
  const int64_t rs = pr.r() * pr.s();
  const int64_t tasks = pr.x.n * C;
#pragma omp parallel for schedule(static) num_threads(detail::threads_for(pr.x.n * rows * pq, get_num_threads()))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / C, c = t % C;
    float* image = x + n * C * plane;
    std::fill(image + c * plane, image + (c + 1) * plane, 0.0f);
    detail::col2im_rows(pr, cols + (n * rows + c * rs) * pq, pq, c, c + 1, 0, pq, image);
  }
}

}  // namespace pyconvx
