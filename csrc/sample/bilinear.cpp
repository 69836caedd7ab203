// Bilinear sampling, at given positions or along affine maps, parallel over output rows.
#include <omp.h>

#include <algorithm>
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
  // Positions are float32, whole pixels exact only below 2^24, and the floors int32.
  if (s.h >= (int64_t{1} << 24) || s.w >= (int64_t{1} << 24))
    throw std::invalid_argument(std::string(op) + ": x's height and width must be below 2^24, got x shape " + s.str());
  if (out_h < 0 || out_w < 0)
    throw std::invalid_argument(std::string(op) + ": the output size must be >= 0, got out_h=" +
                                std::to_string(out_h) + ", out_w=" + std::to_string(out_w));
  check_data(x, s.numel(), "x", op);
  check_data(y, checked_mul(checked_mul(s.n, s.c, "y"), checked_mul(out_h, out_w, "y"), "y"), "y", op);
}

// A position clipped to [-1, size], NaN to -1 (the comparison is false): far-off positions then
// read fill only, and every conversion after it is in range.
template <class Real>
inline Real clip(Real at, Real size) {
  return at > Real(-1) ? (at < size ? at : size) : Real(-1);
}

// The bilinear mix of the pixels a (top left), b (top right), c (bottom left), d (bottom right):
// float32 in a fixed order (two horizontal mixes, then the vertical one), so every thread count
// and both entry points give the same bits for the same position.
inline float mix(float a, float b, float c, float d, float fx, float fy) {
  const float upper = a + fx * (b - a), lower = c + fx * (d - c);
  return upper + fy * (lower - upper);
}

// Output row p of image n in chunks of kChunk outputs, in three loops over a chunk: the clipped
// positions (`position(n, p, q, count, columns, rows)` fills them), then the floors and weights,
// then the reads and mixes channel by channel. The first two are straight-line float and int32
// code the compiler vectorises; interleaved with the reads, the conversions in them took three
// quarters of the time.
template <class Position>
void sample_row(const Shape4& s, const float* x, int64_t n, int64_t p, int64_t out_h, int64_t out_w,
                const Position& position, float fill, float* y) {
  constexpr int64_t kChunk = 64;
  const int64_t plane = s.h * s.w, out_plane = out_h * out_w, w = s.w;
  const float* image = x + n * s.c * plane;
  float* out_row = y + n * s.c * out_plane + p * out_w;
  const int32_t width = static_cast<int32_t>(s.w), height = static_cast<int32_t>(s.h);
  alignas(64) float columns[kChunk], rows[kChunk], fx[kChunk], fy[kChunk];
  alignas(64) int32_t x0s[kChunk], y0s[kChunk], inside[kChunk];
  for (int64_t q0 = 0; q0 < out_w; q0 += kChunk) {
    const int64_t count = std::min(kChunk, out_w - q0);
    position(n, p, q0, count, columns, rows);
    int32_t all_inside = 1;
    for (int64_t i = 0; i < count; ++i) {
      // Floors of positions in [-1, size]: truncation, minus one where it went up (below zero).
      const int32_t tx = static_cast<int32_t>(columns[i]), ty = static_cast<int32_t>(rows[i]);
      const int32_t x0 = tx - (static_cast<float>(tx) > columns[i]), y0 = ty - (static_cast<float>(ty) > rows[i]);
      x0s[i] = x0;
      y0s[i] = y0;
      fx[i] = columns[i] - static_cast<float>(x0);
      fy[i] = rows[i] - static_cast<float>(y0);
      inside[i] = (x0 >= 0) & (x0 + 1 < width) & (y0 >= 0) & (y0 + 1 < height);
      all_inside &= inside[i];
    }
    for (int64_t c = 0; c < s.c; ++c) {
      const float* pc = image + c * plane;
      float* out = out_row + c * out_plane + q0;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t x0 = x0s[i], y0 = y0s[i], a = y0 * w + x0;  // a may be negative off the image
        float v00, v01, v10, v11;
        if (all_inside || inside[i]) {  // all four neighbours inside: most outputs of a warp
          v00 = pc[a], v01 = pc[a + 1], v10 = pc[a + w], v11 = pc[a + w + 1];
        } else {
          const bool has_x0 = x0 >= 0 && x0 < w, has_x1 = x0 + 1 < w, has_y0 = y0 >= 0 && y0 < s.h,
                     has_y1 = y0 + 1 < s.h;
          v00 = has_y0 && has_x0 ? pc[a] : fill;
          v01 = has_y0 && has_x1 ? pc[a + 1] : fill;
          v10 = has_y1 && has_x0 ? pc[a + w] : fill;
          v11 = has_y1 && has_x1 ? pc[a + w + 1] : fill;
        }
        out[i] = mix(v00, v01, v10, v11, fx[i], fy[i]);
      }
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
  const float right = static_cast<float>(x_shape.w), bottom = static_cast<float>(x_shape.h);
  auto given = [&](int64_t n, int64_t p, int64_t q0, int64_t count, float* columns, float* rows) {
    const float *column = xs + n * out_plane + p * out_w + q0, *row = ys + n * out_plane + p * out_w + q0;
    for (int64_t i = 0; i < count; ++i) {
      columns[i] = clip(column[i], right);
      rows[i] = clip(row[i], bottom);
    }
  };
  sample_all(x_shape, x, out_h, out_w, given, fill, y);
}

void affine_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const double* maps, float fill,
                   float* y) {
  check_sample(x_shape, x, out_h, out_w, y, "affine_sample");
  check_data(maps, checked_mul(x_shape.n, 6, "maps"), "maps", "affine_sample", sizeof(double));
  const double right = static_cast<double>(x_shape.w), bottom = static_cast<double>(x_shape.h);
  auto mapped = [&](int64_t n, int64_t p, int64_t q0, int64_t count, float* columns, float* rows) {
    const double* m = maps + 6 * n;
    const double v = static_cast<double>(p), column0 = m[1] * v + m[2], row0 = m[4] * v + m[5];
    for (int64_t i = 0; i < count; ++i) {
      const double u = static_cast<double>(q0 + i);
      // Clipped in double, so that the conversion to float stays in range.
      columns[i] = static_cast<float>(clip(m[0] * u + column0, right));
      rows[i] = static_cast<float>(clip(m[3] * u + row0, bottom));
    }
  };
  sample_all(x_shape, x, out_h, out_w, mapped, fill, y);
}

}  // namespace pyconvx
