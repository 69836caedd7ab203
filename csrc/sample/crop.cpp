// Windows of each image, fill where a window reaches past the image: the random crops of data
// augmentation with their padding, without a padded copy of the batch.
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../core/parallel.hpp"
#include "pyconvx/runtime.hpp"
#include "pyconvx/sample.hpp"

namespace pyconvx {
namespace {

// Offsets this far out keep every sum below (offset + size) inside int64.
constexpr int64_t kOffsetBound = int64_t{1} << 62;

void check_offsets(const int64_t* offsets, int64_t n, const char* name) {
  for (int64_t i = 0; i < n; ++i)
    if (offsets[i] < -kOffsetBound || offsets[i] > kOffsetBound)
      throw std::invalid_argument(std::string("crop_windows: ") + name + " must lie in [-2^62, 2^62], got " + name +
                                  "[" + std::to_string(i) + "]=" + std::to_string(offsets[i]));
}

// The part [first, last) of [0, size) a window of `size` at `offset` sees of an axis of `extent`.
struct Overlap {
  int64_t first, last;
};

Overlap overlap(int64_t offset, int64_t size, int64_t extent) {
  const int64_t first = std::clamp<int64_t>(-offset, 0, size);
  const int64_t last = std::clamp<int64_t>(extent - offset, first, size);
  return {first, last};
}

void crop_plane(const float* plane, int64_t width, Overlap rows, Overlap cols, int64_t top, int64_t left,
                int64_t out_h, int64_t out_w, float fill, float* out) {
  for (int64_t i = 0; i < out_h; ++i, out += out_w) {
    if (i < rows.first || i >= rows.last) {
      std::fill(out, out + out_w, fill);
      continue;
    }
    const float* source = plane + (top + i) * width + (left + cols.first);
    std::fill(out, out + cols.first, fill);
    std::copy(source, source + (cols.last - cols.first), out + cols.first);
    std::fill(out + cols.last, out + out_w, fill);
  }
}

}  // namespace

void crop_windows(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const int64_t* tops,
                  const int64_t* lefts, float fill, float* y) {
  // Copies and fills do no arithmetic: the denormal mode (float_mode.hpp) does not matter here.
  if (out_h < 0 || out_w < 0)
    throw std::invalid_argument("crop_windows: the window size must be >= 0, got out_h=" + std::to_string(out_h) +
                                ", out_w=" + std::to_string(out_w));
  if (x_shape.n < 0 || x_shape.c < 0 || x_shape.h < 0 || x_shape.w < 0)
    throw std::invalid_argument("crop_windows: x has a negative dimension, got x shape " + x_shape.str());
  check_data(x, x_shape.numel(), "x", "crop_windows");
  const int64_t planes = checked_mul(x_shape.n, x_shape.c, "y");
  const int64_t plane_out = checked_mul(out_h, out_w, "y");
  check_data(y, checked_mul(planes, plane_out, "y"), "y", "crop_windows");
  check_data(tops, x_shape.n, "tops", "crop_windows", sizeof(int64_t));
  check_data(lefts, x_shape.n, "lefts", "crop_windows", sizeof(int64_t));
  check_offsets(tops, x_shape.n, "tops");
  check_offsets(lefts, x_shape.n, "lefts");
  const int64_t plane_in = x_shape.h * x_shape.w;
  // A copy is a few operations per value: parallel over planes only for large batches.
  const int threads = detail::threads_for(planes * plane_out, get_num_threads());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / x_shape.c;
    crop_plane(x + p * plane_in, x_shape.w, overlap(tops[n], out_h, x_shape.h), overlap(lefts[n], out_w, x_shape.w),
               tops[n], lefts[n], out_h, out_w, fill, y + p * plane_out);
  }
}

}  // namespace pyconvx
