// Bilinear sampling, at given positions or along affine maps, parallel over output rows.
#include <omp.h>

#include <cmath>
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

// Output row p of image n, its positions given by `position(n, p, q, &column, &row)`. The
// arithmetic is float32 in a fixed order (two horizontal mixes, then the vertical one), so every
// thread count gives the same bits.
template <class Position>
void sample_row(const Shape4& s, const float* x, int64_t n, int64_t p, int64_t out_h, int64_t out_w,
                const Position& position, float fill, float* y) {
  const int64_t plane = s.h * s.w, out_plane = out_h * out_w;
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
    const float left_edge = std::floor(column), top_edge = std::floor(row);
    const float fx = column - left_edge, fy = row - top_edge;
    const int64_t x0 = static_cast<int64_t>(left_edge), y0 = static_cast<int64_t>(top_edge);
    // x0 lies in [-1, W] and x0 + 1 in [0, W + 1] (rows likewise).
    const bool has_x0 = x0 >= 0 && x0 < s.w, has_x1 = x0 + 1 < s.w, has_y0 = y0 >= 0 && y0 < s.h, has_y1 = y0 + 1 < s.h;
    const int64_t at = y0 * s.w + x0;
    for (int64_t c = 0; c < s.c; ++c) {
      const float* px = image + c * plane;
      const float a = has_y0 && has_x0 ? px[at] : fill;
      const float b = has_y0 && has_x1 ? px[at + 1] : fill;
      const float d0 = has_y1 && has_x0 ? px[at + s.w] : fill;
      const float d1 = has_y1 && has_x1 ? px[at + s.w + 1] : fill;
      const float upper = a + fx * (b - a), lower = d0 + fx * (d1 - d0);
      out[c * out_plane + q] = upper + fy * (lower - upper);
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
