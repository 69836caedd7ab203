// The zero-padded, phase-split copy of the images a weight gradient's pixel tile reads.
#include <algorithm>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/workspace.hpp"
#include "band.hpp"
#include "patches.hpp"

namespace pyconvx::detail {

PhaseSplitImages phase_split_layout(const Conv2dProblem& pr, int64_t pixel0, int64_t count) {
  const int64_t P = pr.p, Q = pr.q, pq = P * Q, last = pixel0 + count - 1;
  PhaseSplitImages l;
  l.first_image = pixel0 / pq;
  l.first_row = pixel0 % pq / Q;
  // The rows the taps reach below an output row.
  const int64_t reach = (pr.r() - 1) * pr.params.dilation_h / pr.params.stride_h;
  l.width = Q + (pr.s() - 1) * pr.params.dilation_w / pr.params.stride_w;
  l.full_rows = P + reach;
  l.last_image = last / pq;
  l.last_rows = last % pq / Q + 1 + reach;
  int64_t rows;
  if (l.last_image == l.first_image) {
    l.first_rows = l.last_rows - l.first_row;
    rows = l.first_rows;
  } else {
    l.first_rows = l.full_rows - l.first_row;
    rows = l.first_rows + (l.last_image - l.first_image - 1) * l.full_rows + l.last_rows;
  }
  l.plane = rows * l.width;
  const int64_t sh = pr.params.stride_h, sw = pr.params.stride_w;
  l.phase_rows = pr.params.dilation_h == 1 ? std::min(sh, pr.r()) : sh;
  l.phase_cols = pr.params.dilation_w == 1 ? std::min(sw, pr.s()) : sw;
  l.channel_stride = l.phase_rows * l.phase_cols * l.plane;
  l.image_stride = l.full_rows * l.width;
  return l;
}

int64_t phase_split_floats(const PhaseSplitImages& l, int64_t channels) {
  return channels * l.phase_rows * l.phase_cols * l.plane + 3;
}

PhaseSplitImages phase_split(const Conv2dProblem& pr, const PhaseSplitImages& layout, const float* first,
                             int64_t image_stride, int64_t channels, float* dst, int threads) {
  PhaseSplitImages l = layout;
  // data points at row first_row of the first image's window, which the copy starts with.
  l.data = dst;
  const int64_t H = pr.x.h, W = pr.x.w, sh = pr.params.stride_h, sw = pr.params.stride_w;
  const int64_t pt = pr.params.pad_top, pl = pr.params.pad_left, phases = l.phase_rows * l.phase_cols;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(phase_split_floats(l, channels), threads))
  for (int64_t task = 0; task < channels * phases; ++task) {
    const int64_t c = task / phases, a = task % phases / l.phase_cols, b = task % l.phase_cols;
    float* const plane = dst + task * l.plane;
    for (int64_t image = l.first_image; image <= l.last_image; ++image) {
      const float* channel = first + image * image_stride + c * H * W;
      const int64_t i0 = image == l.first_image ? l.first_row : 0;
      float* out = plane + l.pixel_offset(image, i0, 0);
      for (int64_t i = i0; i < i0 + l.window_rows(image); ++i, out += l.width) {
        const int64_t h = i * sh + a - pt;
        copy_phase_row(out, l.width, h < 0 || h >= H ? nullptr : channel + h * W, W, sw, b, pl);
      }
    }
  }
  std::fill(dst + channels * phases * l.plane, dst + channels * phases * l.plane + 3, 0.0f);
  return l;
}

bool phase_split_in_place(const Conv2dProblem& pr) {
  const Conv2dParams& k = pr.params;
  return k.stride_h == 1 && k.stride_w == 1 && k.pad_top == 0 && k.pad_bottom == 0 && k.pad_left == 0 &&
         k.pad_right == 0;
}

PhaseSplitImages phase_split_view(const Conv2dProblem& pr, const PhaseSplitImages& layout, const float* first,
                                  int64_t image_stride) {
  // Unpadded and stride 1: width = Q + (S - 1) * dilation_w = W and full_rows = H, so an image's
  // window is its whole channel planes and a row of the copy is a row of the image. The packer's
  // reads of up to 3 pixels past a run stay inside x too: they stop at the KC slice's last
  // pixel, and a run followed by another in the slice ends before a later row or image.
  PhaseSplitImages l = layout;
  l.channel_stride = pr.x.h * pr.x.w;
  l.image_stride = image_stride;
  l.data = first + l.first_image * image_stride + l.first_row * l.width;
  return l;
}

}  // namespace pyconvx::detail
