// Pooling windows along one axis (internal).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/parallel.hpp"
#include "pyconvx/runtime.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

// The threads a windowed pooling pass takes: its work is a read of the input, a reduction of
// kh * kw values an output and each plane's set-up (windows, edges: as much as a few hundred
// values), not the input alone, by which a batch of one (512 planes of 14 x 14, GoogLeNet's
// branch pools) took one thread.
inline int pool_threads(const Pool2dProblem& pr) {
  const int64_t planes = pr.x.n * pr.x.c, window = pr.params.kernel_h * pr.params.kernel_w;
  return threads_for(pr.x.numel() + pr.y().numel() * window + 256 * planes, get_num_threads());
}

// Output position o covers input [begin, end) after clipping to the image; `padded` is the
// length torch divides by with count_include_pad: the window clipped to the padded image.
struct Window {
  int64_t begin, end, padded;
};

// `before` and `after` pad the two ends of the axis (they may differ: Keras' "same" puts an odd
// extra at the end).
inline Window pool_window(int64_t o, int64_t stride, int64_t before, int64_t after, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - before;
  const int64_t stop = std::min(start + kernel, size + after);
  return {std::max<int64_t>(start, 0), std::min(stop, size), stop - start};
}

inline std::vector<Window> pool_windows(int64_t outputs, int64_t stride, int64_t before, int64_t after,
                                        int64_t kernel, int64_t size) {
  std::vector<Window> w(static_cast<size_t>(outputs));
  for (int64_t o = 0; o < outputs; ++o) w[o] = pool_window(o, stride, before, after, kernel, size);
  return w;
}

}  // namespace pyconvx::detail
