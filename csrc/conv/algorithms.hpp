// The convolution algorithms behind conv2d_forward (internal). Each trusts its arguments: the
// problem is validated and the algorithm applies to it (see conv2d.cpp).
#pragma once

#include "../core/parallel.hpp"
#include "pyconvx/conv.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {

// The threads a convolution pass (forward or backward) takes: a second one only for at least
// ~1 MFLOP of work. Each algorithm's workspace size uses the same count as its kernel.
inline int conv_threads(const Conv2dProblem& problem) {
  return threads_for(problem.y().numel() * problem.reduction() / 4, get_num_threads());
}

// Any shape: GEMM over patches packed straight from the image (gemm_conv.cpp).
void conv2d_implicit_gemm(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias,
                          float* y, Activation activation);

// 1x1, stride 1, no padding: GEMM on the image itself (gemm_conv.cpp).
void conv2d_pointwise(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias, float* y,
                      Activation activation);

// Any kernel, stride, padding, dilation and groups: the micro-kernel reads shifted views of a
// zero-padded copy of the image (split by stride phase), with no patch packing (direct.cpp).
void conv2d_direct(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias, float* y,
                   Activation activation);

// Depthwise (groups = C): each output row computed directly from a zero-padded input plane
// (depthwise.cpp); and its weight gradient.
void conv2d_depthwise(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias, float* y,
                      Activation activation);
void conv2d_depthwise_grad_weight(const Conv2dProblem& problem, const float* grad_y, const float* x,
                                  float* grad_weight);

// One group, any stride: MR output pixels at a time broadcast, read in place from a padded band
// of the image, against NR filters at a time (broadcast.cpp).
void conv2d_broadcast(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias, float* y,
                      Activation activation);
// Its weight gradient (one group): MR channels at a time broadcast against NR filters' grad_Y.
void conv2d_broadcast_grad_weight(const Conv2dProblem& problem, const float* grad_y, const float* x,
                                  float* grad_weight);

// Stride 1, dilation 1, one group: Winograd F(4x4, 3x3) for 3x3 filters, F(2x2, 5x5) for 5x5
// ones (winograd.cpp); and the bytes of scratch either holds for the call: the transformed
// filters (36 packed K x C matrices), the transformed inputs and GEMM results of its blocks and
// the GEMMs' B panels.
void conv2d_winograd_f4x3(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias,
                          float* y, Activation activation);
void conv2d_winograd_f2x5(const Conv2dProblem& problem, const float* x, const float* weight, const float* bias,
                          float* y, Activation activation);
int64_t winograd_workspace_bytes(const Conv2dProblem& problem);

// The bytes of scratch each other algorithm holds at most for a call with the current thread
// count (conv2d_workspace_size's parts): its packed weights and each thread's buffers, computed
// from the same plan the algorithm follows.
int64_t gemm_convolution_workspace_bytes(const Conv2dProblem& problem, bool pointwise);
int64_t direct_workspace_bytes(const Conv2dProblem& problem);
int64_t depthwise_workspace_bytes(const Conv2dProblem& problem);
int64_t broadcast_workspace_bytes(const Conv2dProblem& problem);

}  // namespace pyconvx::detail
