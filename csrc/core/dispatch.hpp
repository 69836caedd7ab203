// The run-time dispatch table: one GemmKernel, one global-pooling reduction, one bilinear sampler,
// one element-wise kernel and one depthwise plane kernel per instruction set, chosen once at
// start-up.
#pragma once

#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

// C[MR x NR] = act((accumulate ? C : 0) + A_sliver * B_sliver + bias), where the A sliver holds kc
// columns of MR values and the B sliver kc rows of NR values (both packed, 64-byte aligned), bias
// (MR values, one per row) may be null and act clamps to [clamp[0], clamp[1]] when clamp is set
// (ReLU, ReLU6: register_clamp). The bias and the clamp are applied to the tile while it is still
// in registers: as a separate pass over C they cost up to 40% of a 1x1 convolution.
using SgemmUkernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                              const float* bias, const float* clamp);

// The same tile with B read in place: row p of the B sliver is the NR floats at base + offsets[p]
// (unaligned). Used by the direct convolution, where every row is a shifted view of the image.
using SgemmUkernelShifted = void (*)(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                     int64_t ldc, bool accumulate, const float* bias, const float* clamp);

// C[MR x NR] = (accumulate ? C : 0) + A * B_sliver with A read in place: element (i, p) at
// a_base + a_offsets[p] + i * a_step. Used by the convolution that broadcasts input pixels against
// vectors of filters (row i: the i-th of MR output pixels of one row, a_step apart in the input;
// column p: a tap) and by its weight gradient (row i: the i-th of MR channels, a_step apart;
// column p: an output pixel); no bias or activation.
using SgemmUkernelGatherA = void (*)(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                     const float* b, float* c, int64_t ldc, bool accumulate);

// The same tile stored transposed, as NR rows of MR: c[f * ldc + i] = act((accumulate ? c[f * ldc
// + i] : 0) + C(i, f) + bias[f]) for the first `filters` columns f, `width` floats a row (width =
// VL, the ISA's vector width, stores a whole vector, VL - MR floats past the tile included;
// less, just that many; accumulating, width must not exceed MR). The convolution that
// broadcasts input pixels writes its NCHW output with it (rows of C: MR pixels of an output row,
// columns: NR filters). Needs MR <= VL. Only the first `pixels` (1 to MR) rows are the strip's:
// fewer than MR take a smaller tile (1, 2 or 4 rows) that computes no more than it must.
using SgemmUkernelGatherATransposed = void (*)(int64_t kc, const float* a_base, const int64_t* a_offsets,
                                               int64_t a_step, const float* b, float* c, int64_t ldc,
                                               bool accumulate, const float* bias, const float* clamp, int64_t filters,
                                               int64_t width, int64_t pixels);

// The activations the micro-kernels apply in registers, as the clamp they take: [0, inf] for
// ReLU, [0, 6] for ReLU6; null for the others, applied over the stored output instead.
const float* register_clamp(Activation activation);

struct GemmKernel {
  const char* isa;
  int mr, nr;              // register tile
  int64_t kc, mc, nc;      // cache blocks (see the ISA's translation unit for the arithmetic)
  SgemmUkernel ukernel;
  SgemmUkernelShifted ukernel_shifted;
  SgemmUkernelGatherA ukernel_gathered_a;
  SgemmUkernelGatherATransposed ukernel_gathered_a_transposed;
  int vl;                  // floats a vector: `width` for a whole-vector row of the transposed tile
  // Runs `iters` rounds of independent FMA chains; returns a value that depends on all of them so
  // that the compiler keeps the work. Each round is flops_per_iter floating-point operations.
  float (*fma_probe)(int64_t iters);
  int64_t fma_probe_flops_per_iter;
  // The same ISA's next kernel with another register tile, or null: a chain in order of
  // preference (see gemm_kernel_for).
  const GemmKernel* other_tile = nullptr;
};

const GemmKernel& active_gemm_kernel();

// The kernel of the active ISA whose register tiles cover a product of `rows` x `cols` (rows of
// A: filters, pixels or channels; columns of B: pixels or filters) with the least padded work,
// taking a tile later in the chain where it pads less: a tile as large as the best so far (as
// many FMAs a load, or more) wherever it does, a smaller one only by more than 8%, which its
// lower arithmetic intensity costs back (LeNet conv3's 16 filters: 16 rows of 8 instead of 24 of
// 12, 23% faster; Inception's 5x5 branch, 32 filters, 5% faster). cols = 0 stands for many
// columns (the pixels of a batch), whose padding then does not count.
const GemmKernel& gemm_kernel_for(int64_t rows, int64_t cols = 0);

// y[t] = scale * (the sum of the `plane` floats at x + t * plane) for t in [0, planes): global
// average pooling, memory-bound, as fast as the widest loads.
using PlaneMeans = void (*)(const float* x, int64_t planes, int64_t plane, float scale, float* y);

PlaneMeans active_plane_means();

// y[i] = act(scale * x[i] + shift + (z ? z[i] : 0)) for i < n, z may be null and y may alias x
// or z: activations, residual additions, batch normalisation folded to a per-plane affine map,
// and the activations the GEMM epilogue applies to a finished tile (nn/pointwise_impl.hpp).
using Pointwise = void (*)(float* y, const float* x, const float* z, int64_t n, float scale, float shift,
                           Activation act);

Pointwise active_pointwise();

// A depthwise filter's R x S taps for an output plane of P x Q: output (p, q) reads tap t at
// in[p * row_step + offsets[t] + q], every tap a unit-stride run along an output row (the padded
// input split into column phases by stride: conv/depthwise.cpp). The kernel computes each row
// in runs of `run` outputs (its choice, at most 64); the last run of a row reads up to
// round_up(Q, run) - 1 floats past offsets[t], which the padded input must hold.
struct DepthwiseTaps {
  int64_t r, s;
  const int64_t* offsets;  // R * S of them
  int64_t row_step, p, q;
};
// out (P x Q) = act(bias + the taps of filter w (R x S) over `in` (+ what out holds, when
// accumulating)): one output plane of a depthwise convolution (conv/depthwise_impl.hpp).
using DepthwisePlane = void (*)(const float* in, const float* w, const DepthwiseTaps& taps, float bias,
                                bool accumulate, Activation act, float* out);
// The active path's plane kernel for these taps (ld aside), chosen once per layer, and its run.
using DepthwiseSelect = DepthwisePlane (*)(const DepthwiseTaps& taps, int64_t* run);

DepthwiseSelect active_depthwise();

// One bilinear sampling call (see pyconvx/sample.hpp): y (N, C, out_h, out_w) from x (N, C, h, w)
// at positions given in xs and ys (N * out_h * out_w each) or, where maps is set, along one
// affine map per image (6 doubles each).
struct SampleRows {
  const float* x;
  int64_t c, h, w, out_h, out_w;
  const float* xs;
  const float* ys;
  const double* maps;
  float fill;
  float* y;
};
// Computes output rows [row_begin, row_end), numbered over the batch (n * out_h + p).
using BilinearRows = void (*)(const SampleRows& s, int64_t row_begin, int64_t row_end);

// The active path's sampler; it indexes a plane with 32-bit integers, so planes of 2^31 floats or
// more take bilinear_rows_generic, whose indices are 64-bit.
BilinearRows active_bilinear_rows();

// Per-ISA kernels, defined in gemm/ukernel_<isa>.cpp, pool/plane_means_<isa>.cpp,
// sample/bilinear_<isa>.cpp, nn/pointwise_<isa>.cpp and conv/depthwise_<isa>.cpp (the x86 ones
// only on x86-64 builds).
const GemmKernel& gemm_kernel_generic();
void plane_means_generic(const float* x, int64_t planes, int64_t plane, float scale, float* y);
void bilinear_rows_generic(const SampleRows& s, int64_t row_begin, int64_t row_end);
void pointwise_generic(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act);
DepthwisePlane depthwise_plane_generic(const DepthwiseTaps& taps, int64_t* run);
#if defined(PYCONVX_HAVE_X86_KERNELS)
const GemmKernel& gemm_kernel_avx2();
const GemmKernel& gemm_kernel_avx512();
void plane_means_avx2(const float* x, int64_t planes, int64_t plane, float scale, float* y);
void plane_means_avx512(const float* x, int64_t planes, int64_t plane, float scale, float* y);
void bilinear_rows_avx2(const SampleRows& s, int64_t row_begin, int64_t row_end);
void bilinear_rows_avx512(const SampleRows& s, int64_t row_begin, int64_t row_end);
void pointwise_avx2(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act);
void pointwise_avx512(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act);
DepthwisePlane depthwise_plane_avx2(const DepthwiseTaps& taps, int64_t* run);
DepthwisePlane depthwise_plane_avx512(const DepthwiseTaps& taps, int64_t* run);
#endif

}  // namespace pyconvx::detail
