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
        std::fill(dst, dst + width, 0.0f);
        continue;
      }
      std::fill(dst, dst + lead, 0.0f);
      copy_floats(dst + lead, image + (c * H + h) * W, count);
      std::fill(dst + lead + count, dst + width, 0.0f);
    }
}

}  // namespace pyconvx::detail
