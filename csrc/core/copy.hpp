// Copies of short float runs (internal).
#pragma once

#include <cstdint>
#include <cstring>

namespace pyconvx::detail {

// Packing copies runs of 16-64 floats (a sliver row, an output row). A libc memcpy call per
// run cost a third of a 1x1 convolution; fixed-size copies compile to inline vector moves. The
// tail is written out because GCC turns a copy loop of unknown count back into a memcpy call.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
  if (i + 4 <= n) {
    std::memcpy(dst + i, src + i, 4 * sizeof(float));
    i += 4;
  }
  if (i < n) dst[i] = src[i];
  if (i + 1 < n) dst[i + 1] = src[i + 1];
  if (i + 2 < n) dst[i + 2] = src[i + 2];
}

}  // namespace pyconvx::detail
