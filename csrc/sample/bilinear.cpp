// Bilinear sampling, at given positions or along affine maps, parallel over output rows.
#include <omp.h>

#include <stdexcept>
#include <string>

#include "../core/dispatch.hpp"
#include "../core/float_mode.hpp"
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

// Planes below 2^31 floats (with a row and a column to spare) can be indexed with the vector
// gathers' 32-bit integers; larger ones take the portable sampler, whose indices are 64-bit.
constexpr int64_t kInt32Plane = (int64_t{1} << 31) - 1;

void sample_all(int64_t n, const detail::SampleRows& s) {
  const int64_t rows = n * s.out_h;
  const detail::BilinearRows kernel =
      (s.h + 1) * (s.w + 1) < kInt32Plane ? detail::active_bilinear_rows() : detail::bilinear_rows_generic;
  // About ten operations per output value: parallel once that outweighs starting the threads.
  const int threads = detail::threads_for(rows * s.out_w * s.c * 10, get_num_threads());
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) kernel(s, r, r + 1);
}

}  // namespace

void bilinear_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const float* xs,
                     const float* ys, float fill, float* y) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_sample(x_shape, x, out_h, out_w, y, "bilinear_sample");
  const int64_t positions = checked_mul(x_shape.n, checked_mul(out_h, out_w, "xs"), "xs");
  check_data(xs, positions, "xs", "bilinear_sample");
  check_data(ys, positions, "ys", "bilinear_sample");
  sample_all(x_shape.n, {x, x_shape.c, x_shape.h, x_shape.w, out_h, out_w, xs, ys, nullptr, fill, y});
}

void affine_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const double* maps, float fill,
                   float* y) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_sample(x_shape, x, out_h, out_w, y, "affine_sample");
  check_data(maps, checked_mul(x_shape.n, 6, "maps"), "maps", "affine_sample", sizeof(double));
  sample_all(x_shape.n, {x, x_shape.c, x_shape.h, x_shape.w, out_h, out_w, nullptr, nullptr, maps, fill, y});
}

}  // namespace pyconvx
