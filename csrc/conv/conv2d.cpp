// Convolution forward: which algorithm computes a given shape, and the dispatch to it.
#include <stdexcept>
#include <string>

#include "algorithms.hpp"
#include "pyconvx/conv.hpp"

namespace pyconvx {
namespace {

struct AlgorithmEntry {
  ConvAlgorithm id;
  const char* name;
};

constexpr AlgorithmEntry kAlgorithms[] = {
    {ConvAlgorithm::automatic, "auto"},
    {ConvAlgorithm::implicit_gemm, "implicit_gemm"},
    {ConvAlgorithm::pointwise, "pointwise"},
    {ConvAlgorithm::direct, "direct"},
};

bool is_pointwise(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  return pr.r() == 1 && pr.s() == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 && p.pad_bottom == 0 &&
         p.pad_left == 0 && p.pad_right == 0;
}

}  // namespace

std::vector<ConvAlgorithm> conv_algorithms() {
  std::vector<ConvAlgorithm> all;
  for (const AlgorithmEntry& e : kAlgorithms) all.push_back(e.id);
  return all;
}

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  for (const AlgorithmEntry& e : kAlgorithms)
    if (e.id == algorithm) return e.name;
  return "unknown";
}

ConvAlgorithm conv_algorithm_from_name(const std::string& name) {
  std::string names;
  for (const AlgorithmEntry& e : kAlgorithms) {
    if (name == e.name) return e.id;
    names += std::string(names.empty() ? "" : ", ") + "'" + e.name + "'";
  }
  throw std::invalid_argument("conv2d: algorithm must be one of " + names + ", got algorithm='" + name + "'");
}

std::string conv_algorithm_unsupported_reason(const Conv2dProblem& pr, ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::automatic:
    case ConvAlgorithm::implicit_gemm:
      return "";
    case ConvAlgorithm::pointwise:
      return is_pointwise(pr) ? "" : "pointwise needs a 1x1 kernel, stride 1 and no padding";
    case ConvAlgorithm::direct:
      return pr.params.stride_h == 1 && pr.params.stride_w == 1 ? "" : "direct needs stride 1";
  }
  return "unknown algorithm";
}

// The heuristic, from one-thread measurements on the benchmark table (GFLOP/s, implicit GEMM vs
// direct): with few filters per group the patch gather of the implicit GEMM is amortised over
// too few FLOPs and direct wins clearly (LeNet conv1 16 vs 48, conv3 27 vs 49, Inception 5x5
// 45 vs 66, VGG conv1_2 68 vs 70, Inception 3x3 with 128 filters 72 vs 76); from 256 filters on
// the two tie or the implicit GEMM wins (VGG conv3_2 80 vs 82, conv5_2 77 vs 74, AlexNet conv2
// 79 vs 62), and it has no junk columns. A 1x1 layer has no patch gather to save, only the
// packing of the image rows, so there direct wins only with 64 filters or fewer (ResNet's
// 256 -> 64 reduction: 57 vs 66 with two threads; 64 -> 256: 90 vs 80 for pointwise).
ConvAlgorithm choose_conv_algorithm(const Conv2dProblem& pr) {
  const bool stride1 = pr.params.stride_h == 1 && pr.params.stride_w == 1;
  const int64_t filters = pr.k_per_group();
  if (is_pointwise(pr)) return filters <= 64 ? ConvAlgorithm::direct : ConvAlgorithm::pointwise;
  if (stride1 && filters <= 128) return ConvAlgorithm::direct;
  return ConvAlgorithm::implicit_gemm;
}

void conv2d_forward(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                    Activation activation, ConvAlgorithm algorithm) {
  if (algorithm == ConvAlgorithm::automatic) algorithm = choose_conv_algorithm(pr);
  const std::string why = conv_algorithm_unsupported_reason(pr, algorithm);
  if (!why.empty())
    throw std::invalid_argument(std::string("conv2d: algorithm='") + conv_algorithm_name(algorithm) +
                                "' cannot compute this convolution: " + why);
  if (pr.x.n == 0) return;
  switch (algorithm) {
    case ConvAlgorithm::pointwise:
      detail::conv2d_pointwise(pr, x, weight, bias, y, activation);
      return;
    case ConvAlgorithm::direct:
      detail::conv2d_direct(pr, x, weight, bias, y, activation);
      return;
    default:
      detail::conv2d_implicit_gemm(pr, x, weight, bias, y, activation);
      return;
  }
}

}  // namespace pyconvx
