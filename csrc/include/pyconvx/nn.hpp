// Element-wise and normalisation layers at inference: activations, residual additions, batch
// normalisation as a per-channel affine map, softmax and local response normalisation.
// OpenMP-parallel; each output but local response normalisation's may be the same array as an
// input (in place).
#pragma once

#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx {

// y[i] = act(x[i]) for i < n.
void activation_forward(const float* x, float* y, int64_t n, Activation activation);

// y[i] = act(a[i] + b[i]) for i < n.
void add_forward(const float* a, const float* b, float* y, int64_t n, Activation activation);

// y[n, c, i] = act(scale[c] * x[n, c, i] + shift[c]) over an NCHW tensor of `shape` (H = W = 1
// for (N, features) data): batch normalisation with fixed statistics, scale = gamma /
// sqrt(variance + epsilon) and shift = beta - mean * scale.
void channel_affine_forward(const Shape4& shape, const float* x, const float* scale, const float* shift, float* y,
                            Activation activation);

// Softmax over the middle axis of an (outer, channels, inner) array: the classes of (N, classes)
// logits (inner = 1), or the channels of each pixel of an NCHW map.
void softmax_forward(int64_t outer, int64_t channels, int64_t inner, const float* x, float* y);

// AlexNet's local response normalisation across channels (Krizhevsky et al. 2012, 3.3):
// y[c] = x[c] / (k + alpha * sum of x[c']^2 over c - size / 2 <= c' <= c + (size - 1) / 2)^beta,
// alpha multiplying the plain sum.
void lrn_forward(const Shape4& shape, const float* x, float* y, int64_t size, double alpha, double beta, double k);

}  // namespace pyconvx
