// Two-dimensional convolution (cross-correlation, as in deep learning), forward and backward.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pyconvx/shape.hpp"

namespace pyconvx {

// The forward algorithms. `automatic` lets choose_conv_algorithm decide from the shape.
enum class ConvAlgorithm {
  automatic,
  implicit_gemm,  // any shape: GEMM over patches packed straight from the image
  pointwise,      // 1x1, stride 1, no padding: GEMM on the image itself
  direct,         // any shape: GEMM whose micro-kernel reads shifted views of the padded image
  winograd,       // stride 1, dilation 1, one group: Winograd F(4x4, 3x3) or F(2x2, 5x5) (an x or
                  // weight holding Inf or NaN is computed by implicit_gemm, which propagates them)
  depthwise,      // groups = C: a direct loop over each input plane
  broadcast,      // one group: input pixels broadcast against vectors of filters, nothing packed
  pixel_gemm,     // one group: GEMM with the output pixels as rows and the filters, packed once, as
                  // columns (small maps, where pixels as columns pad their register tiles)
};

// Every value of ConvAlgorithm, `automatic` first.
std::vector<ConvAlgorithm> conv_algorithms();

const char* conv_algorithm_name(ConvAlgorithm algorithm);
// Throws std::invalid_argument naming `algorithm` and the valid names for an unknown name.
ConvAlgorithm conv_algorithm_from_name(const std::string& name);
// "" when `algorithm` can compute `problem`, else why not.
std::string conv_algorithm_unsupported_reason(const Conv2dProblem& problem, ConvAlgorithm algorithm);
// Whether every group holds one input channel (groups == C), the depthwise case.
bool is_depthwise(const Conv2dProblem& problem);
// The filters cover the whole unpadded image (one output pixel, stride and dilation irrelevant):
// the convolution is then a fully connected layer over the flattened image.
bool covers_whole_image(const Conv2dProblem& problem);
// The algorithm `automatic` resolves to for this shape.
ConvAlgorithm choose_conv_algorithm(const Conv2dProblem& problem);

// y = act(conv(x, weight) + bias). x is NCHW, weight is K x C/groups x R x S, bias has K values
// or is null, y is N x K x P x Q (see make_conv2d_problem for P and Q). Throws
// std::invalid_argument when a forced algorithm cannot compute this shape.
void conv2d_forward(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias,
                    float* y, Activation activation = Activation::none,
                    ConvAlgorithm algorithm = ConvAlgorithm::automatic);

// Every algorithm that can compute the problem, prepared as an inference plan keeps its weights
// (packed or transformed once) and timed on the problem's shapes with the current thread count:
// (algorithm, seconds) of the best of three runs after a warm-up, the heuristic's choice first.
// What a plan built with get_autotune() on measures to choose. weight as conv2d_forward's;
// bias may be null.
std::vector<std::pair<ConvAlgorithm, double>> measure_conv_algorithms(const Conv2dProblem& problem,
                                                                     const float* weight, const float* bias);

// The most scratch memory, in bytes, conv2d_forward holds for this problem and algorithm with the
// current thread count: its packed weights and each thread's buffers, as workspace_usage()
// counts them (the inputs and the output are the caller's). A caller that brings its own memory
// (set_workspace_allocator) can size it from this. Throws as conv2d_forward does for an algorithm
// that cannot compute the problem.
int64_t conv2d_workspace_size(const Conv2dProblem& problem, ConvAlgorithm algorithm = ConvAlgorithm::automatic);

// Gradients of y = conv(x, weight) + bias given grad_y (N x K x P x Q). Each output pointer may be
// null to skip that gradient. grad_x has x's shape, grad_weight weight's, grad_bias K values.
void conv2d_backward(const Conv2dProblem& problem, const float* grad_y, const float* x, const float* weight,
                     float* grad_x, float* grad_weight, float* grad_bias);

// The patch matrix of x, as torch.nn.functional.unfold: cols is N x (C*R*S) x (P*Q) where the
// problem's weight shape gives R and S (its K and C/groups must be 1 and C: use
// make_im2col_problem).
Conv2dProblem make_im2col_problem(const Shape4& x, int64_t r, int64_t s, const Conv2dParams& params,
                                  const char* op = "im2col");
void im2col(const Conv2dProblem& problem, const float* x, float* cols);

// The adjoint of im2col (torch's fold): x = sum of the patches in cols put back in place.
void col2im(const Conv2dProblem& problem, const float* cols, float* x);

}  // namespace pyconvx
