// Convolution + ReLU + 2x2 max pooling through the C++ API, on deterministic data, printing the
// output shape and checksums the tests compare with the Python package's result on the same data.
#include <pyconvx/pyconvx.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace {

// The input pattern, also written in tests/test_embedding.py: values in [-1, 1).
std::vector<float> pattern(int64_t count, int64_t multiplier, int64_t modulus) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    values[static_cast<size_t>(i)] = static_cast<float>((i * multiplier) % modulus) / (modulus / 2.0f) - 1.0f;
  return values;
}

}  // namespace

int main() {
  using namespace pyconvx;
  const Shape4 x_shape{2, 3, 16, 16}, w_shape{8, 3, 3, 3};
  Conv2dParams conv;
  conv.pad_top = conv.pad_bottom = conv.pad_left = conv.pad_right = 1;
  const Conv2dProblem problem = make_conv2d_problem(x_shape, w_shape, conv);

  const std::vector<float> x = pattern(x_shape.numel(), 37, 101), w = pattern(w_shape.numel(), 17, 23);
  std::vector<float> bias(static_cast<size_t>(problem.k()));
  for (int64_t k = 0; k < problem.k(); ++k) bias[static_cast<size_t>(k)] = 0.1f * static_cast<float>(k) - 0.3f;

  std::vector<float> y(static_cast<size_t>(problem.y().numel()));
  conv2d_forward(problem, x.data(), w.data(), bias.data(), y.data(), Activation::relu);

  Pool2dParams pool;
  pool.kernel_h = pool.kernel_w = pool.stride_h = pool.stride_w = 2;
  const Pool2dProblem pooling = make_pool2d_problem(problem.y(), pool, "max_pool2d");
  std::vector<float> z(static_cast<size_t>(pooling.y().numel()));
  max_pool2d_forward(pooling, y.data(), z.data(), nullptr);

  double sum = 0, squares = 0;
  for (float v : z) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  std::printf("pyconvx %s (%s)\n", PYCONVX_VERSION_STRING, cpu_info().active.c_str());
  std::printf("shape %lld %lld %lld %lld\n", static_cast<long long>(pooling.y().n), static_cast<long long>(pooling.y().c),
              static_cast<long long>(pooling.y().h), static_cast<long long>(pooling.y().w));
  std::printf("sum %.6f\nsquares %.6f\n", sum, squares);

  // Invalid parameters come back as std::invalid_argument naming them.
  try {
    Conv2dParams bad = conv;
    bad.groups = 2;
    make_conv2d_problem(x_shape, w_shape, bad);
    return 1;
  } catch (const std::invalid_argument& e) {
    std::printf("error %s\n", e.what());
  }
  return 0;
}
