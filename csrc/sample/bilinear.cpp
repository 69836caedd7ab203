// Bilinear sampling, at given positions or along affine maps, parallel over output rows.
#include <omp.h>

#include <stdexcept>
#include <string>

#include "../core/parallel.hpp"
#include "pyconvx/runtime.hpp"
#include "pyconvx/sample.hpp"

namespace pyconvx {
namespace {

void check_sample(const Shape4& s, const float* x, int64_t out_h, int64_t out_w, float* y, const char* op) {
  if (s.c < 1 || s.h < 1 || s.w < 1)
    throw std::invalid_argument(std::string(op) + ": x must have non-empty C, H and W, got x shape " + s.str());
  if (out_h < 0 || out_w < 0)
    throw std::invalid_argument(std::string(op) + ": the output size must be >= 0, got out_h=" +
                                std::to_string(out_h) + ", out_w=" + std::to_string(out_w));
  check_data(x, s.numel(), "x", op);
  check_data(y, checked_mul(checked_mul(s.n, s.c, "y"), checked_mul(out_h, out_w, "y"), "y"), "y", op);
}

// The bilinear mix of the pixels a (top left), b (top right), c (bottom left), d (bottom right):
// float32 in a fixed order (two horizontal mixes, then the vertical one), so every thread count
// and both entry points give the same bits for the same position.
inline float mix(float a, float b, float c, float d, float fx, float fy) {
  const float upper = a + fx * (b - a), lower = c + fx * (d - c);
  return upper + fy * (lower - upper);
}

// Output row p of image n, its positions given by `position(n, p, q, &column, &row)`.
template <class Position>
void sample_row(const Shape4& s, const float* x, int64_t n, int64_t p, int64_t out_h, int64_t out_w,
                const Position& position, float fill, float* y) {
  const int64_t plane = s.h * s.w, out_plane = out_h * out_w, w = s.w;
  const float* image = x + n * s.c * plane;
  float* out = y + n * s.c * out_plane + p * out_w;
  const double right = static_cast<double>(s.w), bottom = static_cast<double>(s.h);
  for (int64_t q = 0; q < out_w; ++q) {
    double at_column, at_row;
    position(n, p, q, &at_column, &at_row);
    // Clipped to [-1, size] (NaN to -1) before anything else: far-off positions then read fill
    // only, and every conversion below is in range.
    const float column = static_cast<float>(at_column >= -1.0 ? (at_column <= right ? at_column : right) : -1.0);
    const float row = static_cast<float>(at_row >= -1.0 ? (at_row <= bottom ? at_row : bottom) : -1.0);
    // Floors by truncation, exact in double as column + 1 >= 0 (in float the sum could round up).
    const int64_t x0 = static_cast<int64_t>(static_cast<double>(column) + 1.0) - 1;
    const int64_t y0 = static_cast<int64_t>(static_cast<double>(row) + 1.0) - 1;
    const float fx = column - static_cast<float>(x0), fy = row - static_cast<float>(y0);
    const int64_t at = y0 * w + x0;  // may be negative: only neighbours inside are read
    if (x0 >= 0 && x0 + 1 < w && y0 >= 0 && y0 + 1 < s.h) {  // all four neighbours inside: most positions
      for (int64_t c = 0; c < s.c; ++c) {
        const float* px = image + c * plane + at;
        out[c * out_plane + q] = mix(px[0], px[1], px[w], px[w + 1], fx, fy);
      }
      continue;
    }
    // x0 lies in [-1, W] and x0 + 1 in [0, W + 1] (rows likewise).
    const bool has_x0 = x0 >= 0 && x0 < w, has_x1 = x0 + 1 < w, has_y0 = y0 >= 0 && y0 < s.h, has_y1 = y0 + 1 < s.h;
    for (int64_t c = 0; c < s.c; ++c) {
      const float* pc = image + c * plane;
      out[c * out_plane + q] = mix(has_y0 && has_x0 ? pc[at] : fill, has_y0 && has_x1 ? pc[at + 1] : fill,
                                   has_y1 && has_x0 ? pc[at + w] : fill, has_y1 && has_x1 ? pc[at + w + 1] : fill, fx, fy);
    }
  }
}

template <class Position>
void sample_all(const Shape4& s, const float* x, int64_t out_h, int64_t out_w, const Position& position, float fill,
                float* y) {
  const int64_t rows = s.n * out_h;
  // About ten operations per output value: parallel once that outweighs starting the threads.
  const int threads = detail::threads_for(rows * out_w * s.c * 10, get_num_threads());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) sample_row(s, x, r / out_h, r % out_h, out_h, out_w, position, fill, y);
}

}  // namespace

void bilinear_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const float* xs,
                     const float* ys, float fill, float* y) {
  check_sample(x_shape, x, out_h, out_w, y, "bilinear_sample");
  const int64_t positions = checked_mul(x_shape.n, checked_mul(out_h, out_w, "xs"), "xs");
  check_data(xs, positions, "xs", "bilinear_sample");
  check_data(ys, positions, "ys", "bilinear_sample");
  const int64_t out_plane = out_h * out_w;
  auto given = [&](int64_t n, int64_t p, int64_t q, double* column, double* row) {
    const int64_t i = n * out_plane + p * out_w + q;
    *column = xs[i];
    *row = ys[i];
  };
  sample_all(x_shape, x, out_h, out_w, given, fill, y);
}

void affine_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const double* maps, float fill,
                   float* y) {
  check_sample(x_shape, x, out_h, out_w, y, "affine_sample");
  check_data(maps, checked_mul(x_shape.n, 6, "maps"), "maps", "affine_sample", sizeof(double));
  auto mapped = [&](int64_t n, int64_t p, int64_t q, double* column, double* row) {
    const double* m = maps + 6 * n;
    const double u = static_cast<double>(q), v = static_cast<double>(p);
    *column = m[0] * u + m[1] * v + m[2];
    *row = m[3] * u + m[4] * v + m[5];
  };
  sample_all(x_shape, x, out_h, out_w, mapped, fill, y);
}

}  // namespace pyconvx
