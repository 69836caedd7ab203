// Activation names, and the element-wise and normalisation layers of nn.hpp: the checks, then
// the work split over the kernels' threads.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/dispatch.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/workspace.hpp"
#include "elementwise.hpp"
#include "pyconvx/nn.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

struct ActivationEntry {
  Activation id;
  const char* name;
};

constexpr ActivationEntry kActivations[] = {
    {Activation::none, "none"},       {Activation::relu, "relu"},           {Activation::relu6, "relu6"},
    {Activation::sigmoid, "sigmoid"}, {Activation::tanh, "tanh"},           {Activation::silu, "silu"},
    {Activation::hardswish, "hardswish"}, {Activation::hardsigmoid, "hardsigmoid"},
};

void check_activation(Activation a, const char* op) {
  for (const ActivationEntry& e : kActivations)
    if (e.id == a) return;
  throw std::invalid_argument(std::string(op) + ": activation must be one of the Activation values, got " +
                              std::to_string(static_cast<int>(a)));
}

void check_count(int64_t n, const char* op) {
  if (n < 0) throw std::invalid_argument(std::string(op) + ": n must be >= 0, got n=" + std::to_string(n));
}

// Chunks of 16K floats (64 KiB): a few microseconds of streaming work each, whole vectors.
constexpr int64_t kChunk = int64_t{1} << 14;

}  // namespace

const char* activation_name(Activation activation) {
  for (const ActivationEntry& e : kActivations)
    if (e.id == activation) return e.name;
  return "unknown";
}

Activation activation_from_name(const std::string& name, const char* op) {
  std::string names;
  for (const ActivationEntry& e : kActivations) {
    if (name == e.name) return e.id;
    names += std::string(names.empty() ? "" : ", ") + "'" + e.name + "'";
  }
  throw std::invalid_argument(std::string(op) + ": activation must be one of " + names + ", got activation='" + name +
                              "'");
}

namespace detail {

void pointwise_parallel(float* y, const float* x, const float* z, int64_t n, Activation act) {
  const Pointwise kernel = active_pointwise();
  const int64_t chunks = ceil_div(n, kChunk);
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads_for(n, get_num_threads()))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i = c * kChunk, count = std::min(kChunk, n - i);
    kernel(y + i, x + i, z ? z + i : nullptr, count, 1.0f, 0.0f, act);
  }
}

void channel_affine_parallel(float* y, const float* x, int64_t images, int64_t channels, int64_t plane,
                             const float* scale, const float* shift, Activation act) {
  const Pointwise kernel = active_pointwise();
  const int64_t planes = images * channels;
  if (plane == 1) {  // (N, features): the affine maps along each row, then the activation over it
    detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(planes, get_num_threads()))
    for (int64_t n = 0; n < images; ++n) {
      float* row = y + n * channels;
      for (int64_t c = 0; c < channels; ++c) row[c] = scale[c] * x[n * channels + c] + shift[c];
      if (act != Activation::none) kernel(row, row, nullptr, channels, 1.0f, 0.0f, act);
    }
    return;
  }
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(planes * plane, get_num_threads()))
  for (int64_t i = 0; i < planes; ++i) {
    const int64_t c = i % channels;
    kernel(y + i * plane, x + i * plane, nullptr, plane, scale[c], shift[c], act);
  }
}

void softmax_parallel(int64_t outer, int64_t channels, int64_t inner, const float* x, float* y) {
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(outer * channels * inner, get_num_threads()))
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<float> top(static_cast<size_t>(inner)), total(static_cast<size_t>(inner));
    const float* in = x + o * channels * inner;
    float* out = y + o * channels * inner;
    std::fill(top.begin(), top.end(), -INFINITY);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const float v = in[c * inner + i];
        top[i] = v > top[i] || std::isnan(v) ? v : top[i];  // NaN wins, so that it propagates
      }
    std::fill(total.begin(), total.end(), 0.0f);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const float e = std::exp(in[c * inner + i] - top[i]);
        out[c * inner + i] = e;
        total[i] += e;
      }
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) out[c * inner + i] /= total[i];
  }
}

void lrn_parallel(const Shape4& s, const float* x, float* y, int64_t size, double alpha, double beta, double k) {
  const int64_t C = s.c, plane = s.h * s.w, before = size / 2, after = (size - 1) / 2;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(s.numel() * size, get_num_threads()))
  for (int64_t t = 0; t < s.n * C; ++t) {
    const int64_t n = t / C, c = t % C;
    const float* image = x + n * C * plane;
    const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min(C - 1, c + after);
    for (int64_t i = 0; i < plane; ++i) {
      double sum = 0.0;
      for (int64_t j = lo; j <= hi; ++j) sum += static_cast<double>(image[j * plane + i]) * image[j * plane + i];
      y[t * plane + i] = static_cast<float>(image[c * plane + i] * std::pow(k + alpha * sum, -beta));
    }
  }
}

}  // namespace detail

void activation_forward(const float* x, float* y, int64_t n, Activation activation) {
  const detail::FloatModeScope caller_mode;
  check_count(n, "activation_forward");
  check_activation(activation, "activation_forward");
  check_data(x, n, "x", "activation_forward");
  check_data(y, n, "y", "activation_forward");
  detail::pointwise_parallel(y, x, nullptr, n, activation);
}

void add_forward(const float* a, const float* b, float* y, int64_t n, Activation activation) {
  const detail::FloatModeScope caller_mode;
  check_count(n, "add_forward");
  check_activation(activation, "add_forward");
  check_data(a, n, "a", "add_forward");
  check_data(b, n, "b", "add_forward");
  check_data(y, n, "y", "add_forward");
  detail::pointwise_parallel(y, a, b, n, activation);
}

void channel_affine_forward(const Shape4& shape, const float* x, const float* scale, const float* shift, float* y,
                            Activation activation) {
  const detail::FloatModeScope caller_mode;
  const int64_t n = shape.numel();
  if (shape.n < 0 || shape.c < 0 || shape.h < 0 || shape.w < 0)
    throw std::invalid_argument("channel_affine_forward: shape must not be negative, got " + shape.str());
  check_activation(activation, "channel_affine_forward");
  check_data(x, n, "x", "channel_affine_forward");
  check_data(y, n, "y", "channel_affine_forward");
  check_data(scale, n ? shape.c : 0, "scale", "channel_affine_forward");
  check_data(shift, n ? shape.c : 0, "shift", "channel_affine_forward");
  detail::channel_affine_parallel(y, x, shape.n, shape.c, shape.h * shape.w, scale, shift, activation);
}

void softmax_forward(int64_t outer, int64_t channels, int64_t inner, const float* x, float* y) {
  const detail::FloatModeScope caller_mode;
  if (outer < 0 || channels < 1 || inner < 0)
    throw std::invalid_argument("softmax_forward: sizes must be outer >= 0, channels >= 1, inner >= 0, got outer=" +
                                std::to_string(outer) + ", channels=" + std::to_string(channels) +
                                ", inner=" + std::to_string(inner));
  const int64_t n = checked_mul(checked_mul(outer, channels, "softmax_forward"), inner, "softmax_forward");
  check_data(x, n, "x", "softmax_forward");
  check_data(y, n, "y", "softmax_forward");
  detail::softmax_parallel(outer, channels, inner, x, y);
}

void lrn_forward(const Shape4& shape, const float* x, float* y, int64_t size, double alpha, double beta, double k) {
  const detail::FloatModeScope caller_mode;
  if (size < 1) throw std::invalid_argument("lrn_forward: size must be >= 1, got size=" + std::to_string(size));
  const int64_t n = shape.numel();
  check_data(x, n, "x", "lrn_forward");
  check_data(y, n, "y", "lrn_forward");
  if (x == y && n > 0) throw std::invalid_argument("lrn_forward: y must not be x (each output reads its neighbours)");
  detail::lrn_parallel(shape, x, y, size, alpha, beta, k);
}

}  // namespace pyconvx
