// Two-dimensional max and average pooling, forward and backward, with torch's semantics.
#pragma once

#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx {

// y = max over each window (padding never wins; NaN propagates). When indices is not null it
// receives, for each output, the flat position h*W + w of the maximum within its (n, c) plane.
void max_pool2d_forward(const Pool2dProblem& problem, const float* x, float* y, int64_t* indices);

// grad_x (zeroed here) receives grad_y at the position of each window's maximum. The positions
// come from `indices` when given, else they are recomputed from x.
void max_pool2d_backward(const Pool2dProblem& problem, const float* grad_y, const float* x,
                         const int64_t* indices, float* grad_x);

// y = mean over each window; the divisor counts padding when count_include_pad is set (but never
// the part of a ceil-mode window that hangs past the padding), as torch does.
void avg_pool2d_forward(const Pool2dProblem& problem, const float* x, float* y);
void avg_pool2d_backward(const Pool2dProblem& problem, const float* grad_y, float* grad_x);

// y[n, c] = mean of x[n, c, :, :]; and its gradient, spread evenly.
void global_avg_pool2d_forward(const Shape4& x_shape, const float* x, float* y);
void global_avg_pool2d_backward(const Shape4& x_shape, const float* grad_y, float* grad_x);

// y (N, C, out_h, out_w): output (i, j) of a plane is the mean of its rows floor(i * H / out_h) to
// ceil((i + 1) * H / out_h) - 1 and likewise its columns, torch's adaptive windows.
void adaptive_avg_pool2d_forward(const Shape4& x_shape, int64_t out_h, int64_t out_w, const float* x, float* y);

}  // namespace pyconvx
