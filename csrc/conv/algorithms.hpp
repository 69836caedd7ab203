// The convolution algorithms behind conv2d_forward and the inference plan (internal). Each trusts
// its arguments: the problem is validated and the algorithm applies to it (see conv2d.cpp).
//
// Every algorithm comes in two parts: prepare_* puts the weights into the form the algorithm
// reads (packed GEMM slivers, Winograd's transformed filters, or the filters as given), once for a
// layer's shapes; conv2d_* computes a batch from them. A single conv2d_forward call does both;
// an inference plan prepares once and computes every batch, with any batch size (the problem's
// N) up to the one it prepared for.
#pragma once

#include <cstdint>

#include "../core/dispatch.hpp"
#include "../core/parallel.hpp"
#include "../core/workspace.hpp"
#include "pyconvx/conv.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {

// The threads a convolution pass (forward or backward) takes: a second one only for at least
// ~1 MFLOP of work. Each algorithm's workspace size uses the same count as its kernel.
inline int conv_threads(const Conv2dProblem& problem) {
  return threads_for(problem.y().numel() * problem.reduction() / 4, get_num_threads());
}

// The filters a task computes where tasks of (image, pixel chunk) alone would leave threads idle
// or unevenly loaded: the deep layers of a batch of one, whose 7 x 7 or 14 x 14 map is one chunk
// and took one thread. There the filters split into blocks of whole register tiles (MR rows),
// about two blocks a thread, none under four tiles; each block packs or copies its part of the
// image itself, 1 / (its filters) of the multiply-adds it does.
inline int64_t filter_block(int64_t filters, int mr, int64_t tasks, int threads) {
  const int64_t slivers = (filters + mr - 1) / mr;
  if (tasks >= 2 * threads) return slivers * mr;
  const int64_t wanted = (2 * threads + tasks - 1) / tasks, most = (slivers + 3) / 4;
  const int64_t blocks = wanted < most ? wanted : most;
  return (slivers + (blocks > 1 ? blocks : 1) - 1) / (blocks > 1 ? blocks : 1) * mr;
}

// The algorithm `automatic` stands for (choose_conv_algorithm's); throws std::invalid_argument
// naming the algorithm and the reason when it cannot compute the problem.
ConvAlgorithm resolve_conv_algorithm(const Conv2dProblem& problem, ConvAlgorithm algorithm);

// Where a convolution's output goes and what happens to it as it is written:
//   y = act((accumulate ? y : 0) + conv(x, weight) + bias).
// Accumulating adds a residual that y already holds (a residual connection whose sum the
// convolution writes in place). image_stride is K * P * Q, or more where the output is the slice
// of a concatenation that starts at y.
struct ConvOutput {
  float* y = nullptr;
  int64_t image_stride = 0;
  bool accumulate = false;
  Activation activation = Activation::none;
  float* image(int64_t n) const { return y + n * image_stride; }
};

// A convolution's weights and bias as its algorithm reads them. `weights` and `bias` point into
// the buffers below, or, for a single call, at the caller's arrays where the algorithm reads them
// as given. Prepared to be kept (an inference plan's), everything is copied into model memory.
struct PreparedConv {
  ConvAlgorithm algorithm = ConvAlgorithm::implicit_gemm;  // never automatic
  const GemmKernel* kernel = nullptr;
  const float* weights = nullptr;
  const float* bias = nullptr;  // K values (direct: each group's padded to whole register tiles), or null
  bool transformed = false;     // winograd: `weights` holds the transformed filters of every position
  AlignedBuffer storage, bias_storage;

  PreparedConv() = default;
  PreparedConv(const PreparedConv&) = delete;
  PreparedConv& operator=(const PreparedConv&) = delete;
  // The bytes of model memory it holds (0 for a single call's, whose buffers are scratch).
  int64_t model_bytes() const;
};

// Prepares `algorithm` (resolved, never automatic; it must apply to the problem) for the problem's
// shapes; keep: everything copied into model memory, for an inference plan. Winograd falls back
// to the implicit GEMM for weights holding Inf or NaN (its transforms would spread them).
void prepare_conv(const Conv2dProblem& problem, ConvAlgorithm algorithm, const float* weight, const float* bias,
                  bool keep, PreparedConv* prepared);
// y for x, the problem's N images (any N: the weights' shapes are what was prepared for).
void run_conv(const PreparedConv& prepared, const Conv2dProblem& problem, const float* x, const ConvOutput& out);

// Whether x[0, n) holds no Inf or NaN: v * 0 is 0 for every finite v and NaN otherwise, and a sum
// of zeros cannot overflow. One read of x, in parallel: about 1% of a Winograd layer's time.
bool all_finite(const float* x, int64_t n);

// The bias or the filters as given: borrowed for a single call, copied into `buffer` (model memory)
// to be kept.
const float* keep_or_borrow(const float* data, int64_t count, bool keep, AlignedBuffer* buffer);

// Any shape (implicit GEMM: patches packed straight from the image) and 1x1, stride 1, no padding
// (pointwise: GEMM on the image itself); the weights packed as the GEMM's A (gemm_conv.cpp).
void prepare_gemm_convolution(const Conv2dProblem& problem, const float* weight, const float* bias, bool keep,
                              PreparedConv* prepared);
void conv2d_gemm(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x, const ConvOutput& out,
                 bool pointwise);

// Any kernel, stride, padding, dilation and groups: the micro-kernel reads shifted views of a
// zero-padded copy of the image (split by stride phase), with no patch packing (direct.cpp).
void prepare_direct(const Conv2dProblem& problem, const float* weight, const float* bias, bool keep,
                    PreparedConv* prepared);
void conv2d_direct(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x, const ConvOutput& out);

// Depthwise (groups = C): each output row computed directly from a zero-padded input plane, the
// filters as given (depthwise.cpp); and its weight gradient.
void conv2d_depthwise(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x,
                      const ConvOutput& out);
void conv2d_depthwise_grad_weight(const Conv2dProblem& problem, const float* grad_y, const float* x,
                                  float* grad_weight);

// One group, any stride: MR output pixels at a time broadcast, read in place from a padded band
// of the image, against NR filters at a time, packed as B (broadcast.cpp).
void prepare_broadcast(const Conv2dProblem& problem, const float* weight, const float* bias, bool keep,
                       PreparedConv* prepared);
void conv2d_broadcast(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x,
                      const ConvOutput& out);
// Its weight gradient (one group): MR channels at a time broadcast against NR filters' grad_Y.
void conv2d_broadcast_grad_weight(const Conv2dProblem& problem, const float* grad_y, const float* x,
                                  float* grad_weight);

// One group, any shape: a GEMM per image with the output pixels as rows (the patches packed as
// A slivers of MR pixels) and the filters as columns (packed once as B), transposed into NCHW by
// the epilogue (pixel_gemm.cpp).
void prepare_pixel_gemm(const Conv2dProblem& problem, const float* weight, const float* bias, bool keep,
                        PreparedConv* prepared);
void conv2d_pixel_gemm(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x,
                       const ConvOutput& out);
int64_t pixel_gemm_workspace_bytes(const Conv2dProblem& problem);
// Its part that grows with the batch: the packed patches and Y^T.
int64_t pixel_gemm_batch_bytes(const Conv2dProblem& problem);

// Stride 1, dilation 1, one group: Winograd F(4x4, 3x3) for 3x3 filters, F(2x2, 5x5) for 5x5
// ones (winograd.cpp). Prepared, the filters are transformed once where all of them go through
// every block of tiles together, and kept as given where they go through in cached blocks (see
// WinogradPlan); winograd_workspace_bytes is the scratch a single call holds: the transformed
// filters (36 packed K x C matrices), the transformed inputs and GEMM results of its blocks and
// the GEMMs' B panels.
void prepare_winograd(const Conv2dProblem& problem, const float* weight, const float* bias, bool keep,
                      PreparedConv* prepared);
void conv2d_winograd(const Conv2dProblem& problem, const PreparedConv& prepared, const float* x,
                     const ConvOutput& out);
int64_t winograd_workspace_bytes(const Conv2dProblem& problem);

// The bytes of scratch each other algorithm holds at most for a call with the current thread
// count (conv2d_workspace_size's parts): its packed weights and each thread's buffers, computed
// from the same plan the algorithm follows.
int64_t gemm_convolution_workspace_bytes(const Conv2dProblem& problem, bool pointwise);
int64_t direct_workspace_bytes(const Conv2dProblem& problem);
int64_t depthwise_workspace_bytes(const Conv2dProblem& problem);
int64_t broadcast_workspace_bytes(const Conv2dProblem& problem);

}  // namespace pyconvx::detail
