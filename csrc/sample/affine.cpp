// The affine maps of the warps: forward matrices from per-image parameters, and their inverses
// over pixel indices, which affine_sample takes. A batch's maps are a few dozen flops an image;
// computed here they cost one call instead of the dozens of small array operations the same
// arithmetic takes in NumPy.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "pyconvx/sample.hpp"

namespace pyconvx {
namespace {

constexpr double kRadiansPerDegree = 3.14159265358979323846 / 180.0;

void check_count(int64_t n, const char* op) {
  if (n < 0) throw std::invalid_argument(std::string(op) + ": n must be >= 0, got n=" + std::to_string(n));
}

// A double in full (17 significant digits): std::to_string prints 1e-20 as 0.000000.
std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

void affine_matrices(int64_t n, const double* angle, const double* translate, const double* scale, const double* shear,
                     double* matrices) {
  const char* op = "affine_matrices";
  check_count(n, op);
  check_data(angle, n, "angle", op, sizeof(double));
  check_data(translate, checked_mul(n, 2, "translate"), "translate", op, sizeof(double));
  check_data(scale, n, "scale", op, sizeof(double));
  check_data(shear, checked_mul(n, 2, "shear"), "shear", op, sizeof(double));
  check_data(matrices, checked_mul(n, 6, "matrices"), "matrices", op, sizeof(double));
  for (int64_t i = 0; i < n; ++i) {
    const double turn = angle[i] * kRadiansPerDegree;
    const double cos = std::cos(turn) * scale[i], sin = std::sin(turn) * scale[i];
    const double hx = std::tan(shear[2 * i] * kRadiansPerDegree), hy = std::tan(shear[2 * i + 1] * kRadiansPerDegree);
    // scale * rotation @ shear_y @ shear_x written out, where screen y points down (a
    // counter-clockwise turn sends (1, 0) to (cos, -sin)): rotation [[cos, sin], [-sin, cos]],
    // shear_y [[1, 0], [hy, 1]], shear_x [[1, hx], [0, 1]].
    double* m = matrices + 6 * i;
    m[0] = cos + sin * hy;
    m[1] = (cos + sin * hy) * hx + sin;
    m[3] = cos * hy - sin;
    m[4] = (cos * hy - sin) * hx + cos;
    m[2] = translate[2 * i];
    m[5] = translate[2 * i + 1];
  }
}

void affine_pixel_maps(int64_t n, const double* matrices, int64_t out_h, int64_t out_w, int64_t in_h, int64_t in_w,
                       double* maps) {
  const char* op = "affine_pixel_maps";
  check_count(n, op);
  if (out_h < 0 || out_w < 0 || in_h < 0 || in_w < 0)
    throw std::invalid_argument(std::string(op) + ": sizes must be >= 0, got out_size=(" + std::to_string(out_h) +
                                ", " + std::to_string(out_w) + "), in_size=(" + std::to_string(in_h) + ", " +
                                std::to_string(in_w) + ")");
  check_data(matrices, checked_mul(n, 6, "matrices"), "matrices", op, sizeof(double));
  check_data(maps, checked_mul(n, 6, "maps"), "maps", op, sizeof(double));
  for (int64_t i = 0; i < n; ++i) {
    const double* m = matrices + 6 * i;
    const double determinant = m[0] * m[4] - m[1] * m[3];
    if (!std::isfinite(determinant) || determinant == 0.0)
      throw std::invalid_argument(std::string(op) + ": every matrix's 2x2 part must be invertible, got determinant " +
                                  exact(determinant) + " at matrices[" + std::to_string(i) + "]");
  }
  for (int64_t i = 0; i < n; ++i) {
    const double* m = matrices + 6 * i;
    double* to = maps + 6 * i;
    const double determinant = m[0] * m[4] - m[1] * m[3];
    // source = inverse @ ((q, p) - out_centre - t) + in_centre.
    const double shift_x = (out_w - 1) / 2.0 + m[2], shift_y = (out_h - 1) / 2.0 + m[5];
    to[0] = m[4] / determinant;
    to[1] = (0.0 - m[1]) / determinant;  // 0 - b: no -0.0
    to[3] = (0.0 - m[3]) / determinant;
    to[4] = m[0] / determinant;
    to[2] = (in_w - 1) / 2.0 - (to[0] * shift_x + to[1] * shift_y);
    to[5] = (in_h - 1) / 2.0 - (to[3] * shift_x + to[4] * shift_y);
  }
}

}  // namespace pyconvx
