// Zero-padded copies of image rows, for the algorithms that read the image in place (internal).
#pragma once

#include <algorithm>
#include <cstdint>

#include "../core/copy.hpp"

namespace pyconvx::detail {

// Band row i of channel c (at band + (c * rows + i) * width) is input row row0 + i of plane c
// of `image` (C planes of H x W), placed at column `left` with zeros around it; rows outside
// [0, H) are all zeros, and values that would fall past `width` are dropped.
inline void copy_padded_rows(const float* image, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                             int64_t left, int64_t width, float* band) {
  const int64_t lead = std::min(left, width), count = std::max<int64_t>(0, std::min(W, width - left));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < rows; ++i) {
      float* dst = band + (c * rows + i) * width;
      const int64_t h = row0 + i;
      if (h < 0 || h >= H) {
        zero_floats(dst, width);
        continue;
      }
      zero_floats(dst, lead);  // inline: a memset call a row cost more than a short row's copy
      copy_floats(dst + lead, image + (c * H + h) * W, count);
      zero_floats(dst + lead + count, width - lead - count);
    }
}

// dst[j] for j < width = padded pixel j * sw + b - left of the image row `src` (W floats), zero
// outside the row, or all zeros for a row of padding (src null): one row of phase b of a
// stride-sw split, shared by the strided direct convolution's band and the weight gradient's
// phase-split copy.
inline void copy_phase_row(float* dst, int64_t width, const float* src, int64_t W, int64_t sw, int64_t b,
                           int64_t left) {
  if (src == nullptr) {
    zero_floats(dst, width);
    return;
  }
  // Columns j with 0 <= j * sw + b - left < W: [first, end).
  const int64_t first = std::min(width, std::max<int64_t>(0, (left - b + sw - 1) / sw));
  const int64_t end = std::max(first, std::min(width, (W + left - b + sw - 1) / sw));
  zero_floats(dst, first);
  copy_strided(dst + first, src + first * sw + b - left, end - first, sw);
  zero_floats(dst + end, width - end);
}

// The band split by stride phase, for the strided direct convolution: plane (c, a, b), at
// band + ((c * sh + a) * sw + b) * rows * width, holds in its row i, column j the padded input
// pixel (row0 + (i * sh + a), j * sw + b - left), zero outside the image. Padded row
// (i * sh + a) and column (j * sw + b) thus land where a unit-stride walk over (i, j) finds them:
// output pixel (p, q) reads tap (r, s) at row p + r / sh, column q + s / sw of plane (r % sh,
// s % sw), the shifted rows of the stride-1 case. With sh = sw = 1 it is copy_padded_rows.
inline void copy_phase_rows(const float* image, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                            int64_t sh, int64_t sw, int64_t left, int64_t width, float* band) {
  if (sh == 1 && sw == 1) return copy_padded_rows(image, C, H, W, row0, rows, left, width, band);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t a = 0; a < sh; ++a)
      for (int64_t b = 0; b < sw; ++b)
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t h = row0 + i * sh + a;
          copy_phase_row(band + (((c * sh + a) * sw + b) * rows + i) * width, width,
                         h < 0 || h >= H ? nullptr : image + (c * H + h) * W, W, sw, b, left);
        }
}

}  // namespace pyconvx::detail
