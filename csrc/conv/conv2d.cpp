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
  }
  return "unknown algorithm";
}

// The heuristic: 1x1 stride-1 unpadded layers are a plain GEMM on the image; everything else is
// an implicit GEMM.
ConvAlgorithm choose_conv_algorithm(const Conv2dProblem& pr) {
  return is_pointwise(pr) ? ConvAlgorithm::pointwise : ConvAlgorithm::implicit_gemm;
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
    default:
      detail::conv2d_implicit_gemm(pr, x, weight, bias, y, activation);
      return;
  }
}

}  // namespace pyconvx
