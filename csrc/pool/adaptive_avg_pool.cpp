// Adaptive average pooling: each output averages a window chosen from the input and output sizes,
// as torch's AdaptiveAvgPool2d: output i of an axis of n inputs and m outputs covers inputs
// floor(i * n / m) to ceil((i + 1) * n / m) - 1, so windows may differ in size and overlap.
#include <omp.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "pyconvx/pool.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

struct Span {
  int64_t begin, end;
};

std::vector<Span> adaptive_spans(int64_t inputs, int64_t outputs) {
  std::vector<Span> spans(static_cast<size_t>(outputs));
  for (int64_t i = 0; i < outputs; ++i) spans[i] = {i * inputs / outputs, ((i + 1) * inputs + outputs - 1) / outputs};
  return spans;
}

}  // namespace

void adaptive_avg_pool2d_forward(const Shape4& x_shape, int64_t out_h, int64_t out_w, const float* x, float* y) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  if (x_shape.n < 0 || x_shape.c < 0 || x_shape.h < 1 || x_shape.w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("adaptive_avg_pool2d: x must have H, W >= 1 and the output size be >= 1, got x " +
                                x_shape.str() + " and output size (" + std::to_string(out_h) + ", " +
                                std::to_string(out_w) + ")");
  const int64_t planes = x_shape.n * x_shape.c, plane = x_shape.h * x_shape.w;
  check_data(x, x_shape.numel(), "x", "adaptive_avg_pool2d");
  check_data(y, checked_mul(planes, checked_mul(out_h, out_w, "adaptive_avg_pool2d"), "adaptive_avg_pool2d"), "y",
             "adaptive_avg_pool2d");
  const std::vector<Span> rows = adaptive_spans(x_shape.h, out_h), cols = adaptive_spans(x_shape.w, out_w);
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(detail::threads_for(planes * plane, get_num_threads()))
  for (int64_t t = 0; t < planes; ++t) {
    const float* in = x + t * plane;
    float* out = y + t * out_h * out_w;
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        double sum = 0.0;
        for (int64_t r = rows[i].begin; r < rows[i].end; ++r)
          for (int64_t c = cols[j].begin; c < cols[j].end; ++c) sum += in[r * x_shape.w + c];
        const double count = static_cast<double>(rows[i].end - rows[i].begin) * (cols[j].end - cols[j].begin);
        out[i * out_w + j] = static_cast<float>(sum / count);
      }
  }
}

}  // namespace pyconvx
