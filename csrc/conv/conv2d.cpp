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

bool is_stride1(const Conv2dProblem& pr) { return pr.params.stride_h == 1 && pr.params.stride_w == 1; }

bool is_pointwise(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  return pr.r() == 1 && pr.s() == 1 && is_stride1(pr) && p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 &&
         p.pad_right == 0;
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
      return is_stride1(pr) ? "" : "direct needs stride 1";
  }
  return "unknown algorithm";
}

// The heuristic, from measurements on the benchmark table (GFLOP/s with two threads, the
// algorithms timed in alternation). For stride 1 the direct algorithm wins or ties the implicit
// GEMM everywhere: clearly where few filters share each packed patch (LeNet conv1 16 vs 48 on
// one thread, Inception 5x5 45 vs 66) and also on big layers (VGG conv3_2 133 vs 164, ResNet
// stage 5 110 vs 119; AlexNet conv2 125 vs 122 and VGG conv5_2 153 vs 149 tie). A 1x1 layer has
// no patch gather to save, and a plain GEMM on the image, packed in row groups, beats it (ResNet's
// 256 -> 64 reduction 10.4 vs 11.7 ms, 64 -> 64 2.6 vs 3.1). Strided layers need the implicit GEMM.
ConvAlgorithm choose_conv_algorithm(const Conv2dProblem& pr) {
  if (is_pointwise(pr)) return ConvAlgorithm::pointwise;
  return is_stride1(pr) ? ConvAlgorithm::direct : ConvAlgorithm::implicit_gemm;
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
