// The SGEMM micro-kernel, written once with GCC/Clang vector extensions and instantiated by each
// ISA's translation unit (ukernel_avx512.cpp, ukernel_avx2.cpp, ukernel_generic.cpp), which is
// compiled with that ISA's flags: the same source becomes zmm, ymm or xmm code. Include it from
// those files only.
//
// Register tile: MR rows x NV vectors of VL floats. Each k step loads NV vectors of B, broadcasts
// MR values of A and issues MR*NV independent FMAs into accumulators that stay in registers.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/vec.hpp"

namespace pyconvx::detail {

// Where the k-th row of the B sliver comes from. (Templated on the width, not on the vector
// type: GCC drops the vector_size attribute of a type used as a template argument.)
template <int VL, int NV>
struct PackedRows {  // a packed sliver: kc rows of NV*VL values, 64-byte aligned
  typedef float vec __attribute__((vector_size(VL * sizeof(float))));
  const float* b;
  vec load(int64_t p, int j) const { return *reinterpret_cast<const vec*>(b + (p * NV + j) * VL); }
};

template <int VL>
struct ShiftedRows {  // row p starts at base + offsets[p]: a shifted view of an image, unaligned
  typedef float vec __attribute__((vector_size(VL * sizeof(float))));
  const float* base;
  const int64_t* offsets;
  vec load(int64_t p, int j) const {
    vec v;
    std::memcpy(&v, base + offsets[p] + j * VL, sizeof(vec));
    return v;
  }
};

// Where the k-th column of the A sliver comes from.
template <int MR>
struct PackedCols {  // a packed sliver: kc columns of MR values
  const float* a;
  float get(int64_t p, int i) const { return a[p * MR + i]; }
};

// A(i, p) = base[offsets[p] + i * step]: input pixels read in place. STEP > 0 fixes the step at
// compile time, so that a k step's MR reads address off one register with constant
// displacements; with a step known only at run time they hang off a chain of MR dependent adds.
template <int STEP = 0>
struct GatheredCols {
  const float* base;
  const int64_t* offsets;
  int64_t step;
  float get(int64_t p, int i) const { return base[offsets[p] + i * (STEP > 0 ? STEP : step)]; }
};


// v clamped to [clamp[0], clamp[1]]: ReLU ([0, inf]) and ReLU6 ([0, 6]) in registers. NaN stays
// NaN, as in torch (both comparisons are false for it).
template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type clamped(typename VecOf<VL>::type v,
                                                                        const float* clamp) {
  typedef typename VecOf<VL>::type vec;
  const vec lo = clamp[0] - vec{}, hi = clamp[1] - vec{};
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// acc = A_sliver * B_sliver over kc steps: MR x NV vectors of VL floats, in registers. A tile of
// fewer than 8 accumulators (a strip's last pixels, a row or two) would wait on the FMA latency
// (4 cycles, 2 pipes: 8 chains in flight): it sums SPLIT interleaved runs of k steps in SPLIT sets
// of accumulators, added at the end.
template <int VL, int MR, int NV, class Cols, class Rows>
__attribute__((always_inline)) inline void accumulate_tile(int64_t kc, Cols cols, Rows rows,
                                                           typename VecOf<VL>::type (&acc)[MR][NV]) {
  typedef typename VecOf<VL>::type vec;
  constexpr int SPLIT = MR * NV >= 8 ? 1 : (8 + MR * NV - 1) / (MR * NV);
  vec sums[SPLIT][MR][NV];
#pragma GCC unroll 8
  for (int u = 0; u < SPLIT; ++u)
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) sums[u][i][j] = vec{};
  const auto step = [&](int64_t p, vec(&into)[MR][NV]) __attribute__((always_inline)) {
    vec bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = rows.load(p, j);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec av = cols.get(p, i) - vec{};  // broadcast (x - 0 is exact, so it folds; x + 0 would not for -0)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) into[i][j] += av * bv[j];
    }
  };
  int64_t p = 0;
  if constexpr (SPLIT > 1)
    for (; p + SPLIT <= kc; p += SPLIT)
#pragma GCC unroll 8
      for (int u = 0; u < SPLIT; ++u) step(p + u, sums[u]);
  for (; p < kc; ++p) step(p, sums[0]);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      vec total = sums[0][i][j];
#pragma GCC unroll 8
      for (int u = 1; u < SPLIT; ++u) total += sums[u][i][j];
      acc[i][j] = total;
    }
}

template <int VL, int MR, int NV, class Cols, class Rows>
inline void sgemm_ukernel_body(int64_t kc, Cols cols, Rows rows, float* __restrict c, int64_t ldc, bool accumulate,
                               const float* __restrict bias, const float* clamp) {
  typedef typename VecOf<VL>::type vec;
  // The tile of C is read (when accumulating) and written once after kc steps, and its MR rows
  // lie ldc floats apart, usually far outside the caches: fetched on demand, its lines stall the
  // store for as long as the whole k loop of a small kc takes. Requested now, they arrive while
  // the FMAs run.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NV * VL - 1, 1, 3);
  }
  vec acc[MR][NV];
  accumulate_tile<VL, MR, NV>(kc, cols, rows, acc);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    const vec row_bias = bias ? bias[i] - vec{} : vec{};
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      vec out = acc[i][j];
      if (accumulate) {
        vec old;
        std::memcpy(&old, ci + j * VL, sizeof(vec));
        out += old;
      }
      out += row_bias;
      if (clamp) out = clamped<VL>(out, clamp);
      std::memcpy(ci + j * VL, &out, sizeof(vec));
    }
  }
}

// B from a packed sliver.
template <int VL, int MR, int NV>
inline void sgemm_ukernel_tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                               const float* bias, const float* clamp) {
  sgemm_ukernel_body<VL, MR, NV>(kc, PackedCols<MR>{a}, PackedRows<VL, NV>{b}, c, ldc, accumulate, bias, clamp);
}

// B read in place: row p is the NV*VL floats at base + offsets[p] (the direct convolution).
template <int VL, int MR, int NV>
inline void sgemm_ukernel_shifted_tile(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                       int64_t ldc, bool accumulate, const float* bias, const float* clamp) {
  sgemm_ukernel_body<VL, MR, NV>(kc, PackedCols<MR>{a}, ShiftedRows<VL>{base, offsets}, c, ldc, accumulate, bias, clamp);
}

// A read in place (row i of column p at a_base + a_offsets[p] + i * a_step: the convolution that
// broadcasts input pixels), B from a packed sliver; no bias or activation.
template <int VL, int MR, int NV>
inline void sgemm_ukernel_gathered_a_tile(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                          const float* b, float* c, int64_t ldc, bool accumulate) {
  sgemm_ukernel_body<VL, MR, NV>(kc, GatheredCols<>{a_base, a_offsets, a_step}, PackedRows<VL, NV>{b}, c, ldc,
                                 accumulate, nullptr, nullptr);
}

// The VL x VL matrix in r[0..VL) transposed in place, log2(VL) rounds of two-vector shuffles:
// the round for H swaps, in every pair of rows (i, i + H) with bit H of i clear, the lanes with
// bit H set in row i against those with it clear in row i + H (the off-diagonal H x H blocks).
// Each output vector takes one shuffle a round: VL log2(VL) in all (64 for 16 x 16).
template <int VL, int H>
__attribute__((always_inline)) inline void transpose_square(typename VecOf<VL>::type* r) {
  typedef typename VecOf<VL>::index index;
  index low, high;  // lane sources: 0..VL-1 from the first vector, VL.. from the second
#pragma GCC unroll 16
  for (int l = 0; l < VL; ++l) {
    low[l] = (l & H) == 0 ? l : VL + l - H;
    high[l] = (l & H) == 0 ? l + H : VL + l;
  }
#pragma GCC unroll 16
  for (int i = 0; i < VL; ++i)
    if ((i & H) == 0) {
      const typename VecOf<VL>::type x = r[i], y = r[i + H];
      r[i] = __builtin_shuffle(x, y, low);
      r[i + H] = __builtin_shuffle(x, y, high);
    }
  if constexpr (H > 1) transpose_square<VL, H / 2>(r);
}

// The gathered-A tile stored transposed: c[f * ldc + i] = act(tile(i, f) + bias[f]) for filter
// f < filters of the NR = NV * VL and pixel i of the MR. Each vector of VL filters goes through
// a VL x VL transpose (rows past MR zero), so that filter f's MR pixels leave in one vector:
// `width` = VL stores all VL lanes (the VL - MR past the tile land on pixels the caller writes
// later), a smaller width only that many floats: the NCHW output of the convolution that
// broadcasts input pixels (conv/broadcast.cpp). Accumulating, the `width` floats stored are
// first read and added (a residual), before the activation.
template <int VL, int MR, int NV, int STEP>
inline void gathered_a_transposed_body(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                       const float* b, float* __restrict c, int64_t ldc, bool accumulate,
                                       const float* __restrict bias, const float* clamp, int64_t filters, int64_t width) {
  static_assert(MR <= VL, "a tile's pixels must fit one vector");
  typedef typename VecOf<VL>::type vec;
  // Each filter's MR outputs lie on one or two lines ldc floats apart from the next filter's:
  // requested now, they arrive while the FMAs run (see sgemm_ukernel_body).
  for (int64_t f = 0; f < filters; ++f) {
    __builtin_prefetch(c + f * ldc, 1, 3);
    __builtin_prefetch(c + f * ldc + MR - 1, 1, 3);
  }
  vec acc[MR][NV];
  accumulate_tile<VL, MR, NV>(kc, GatheredCols<STEP>{a_base, a_offsets, a_step}, PackedRows<VL, NV>{b}, acc);
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    vec t[VL];
#pragma GCC unroll 16
    for (int i = 0; i < VL; ++i) t[i] = i < MR ? acc[i < MR ? i : 0][j] : vec{};
    transpose_square<VL, VL / 2>(t);
    const int64_t count = filters - j * VL < VL ? filters - j * VL : VL;
#pragma GCC unroll 16
    for (int l = 0; l < VL; ++l) {
      if (l >= count) break;
      const int64_t f = j * VL + l;
      vec out = t[l] + (bias ? bias[f] - vec{} : vec{});
      if (accumulate) out += load_first<VL>(c + f * ldc, width);
      if (clamp) out = clamped<VL>(out, clamp);
      if (width == VL)
        std::memcpy(c + f * ldc, &out, sizeof(vec));
      else
        store_first<VL>(c + f * ldc, out, width);
    }
  }
}

// Dispatches on the step: the strides of the first layers and of the strided 3x3 layers get
// constant ones (see GatheredCols).
template <int VL, int MR, int NV>
inline void gathered_a_transposed_stepped(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                          const float* b, float* c, int64_t ldc, bool accumulate, const float* bias,
                                          const float* clamp, int64_t filters, int64_t width) {
  switch (a_step) {
    case 1:
      return gathered_a_transposed_body<VL, MR, NV, 1>(kc, a_base, a_offsets, 1, b, c, ldc, accumulate, bias, clamp, filters, width);
    case 2:
      return gathered_a_transposed_body<VL, MR, NV, 2>(kc, a_base, a_offsets, 2, b, c, ldc, accumulate, bias, clamp, filters, width);
    case 4:
      return gathered_a_transposed_body<VL, MR, NV, 4>(kc, a_base, a_offsets, 4, b, c, ldc, accumulate, bias, clamp, filters, width);
    default:
      return gathered_a_transposed_body<VL, MR, NV, 0>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp,
                                                        filters, width);
  }
}

// A strip of `pixels` (1 to MR) runs the tile of the fewest rows of MR, 4, 2 and 1 that covers
// them: the last strip of a row computes its own pixels, not MR. (A 7-pixel row on AVX2's 6-row
// tile took two whole tiles, 12 pixels' work; now 6 and 1.)
template <int VL, int MR, int NV>
inline void sgemm_ukernel_gathered_a_transposed_tile(int64_t kc, const float* a_base, const int64_t* a_offsets,
                                                     int64_t a_step, const float* b, float* c, int64_t ldc,
                                                     bool accumulate, const float* bias, const float* clamp, int64_t filters,
                                                     int64_t width, int64_t pixels) {
  if constexpr (MR > 1)
    if (pixels <= 1)
      return gathered_a_transposed_stepped<VL, 1, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp,
                                                      filters, width);
  if constexpr (MR > 2)
    if (pixels <= 2)
      return gathered_a_transposed_stepped<VL, 2, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp,
                                                      filters, width);
  if constexpr (MR > 4)
    if (pixels <= 4)
      return gathered_a_transposed_stepped<VL, 4, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp,
                                                      filters, width);
  gathered_a_transposed_stepped<VL, MR, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp, filters,
                                            width);
}

// CHAINS independent accumulators hide the FMA latency (4 cycles, 2 pipes: at least 8 chains).
template <int VL, int CHAINS>
inline float fma_probe_loop(int64_t iters) {
  typedef float vec __attribute__((vector_size(VL * sizeof(float))));
  vec acc[CHAINS];
  const vec m = vec{} + 0.999999f, add = vec{} + 1e-7f;
#pragma GCC unroll 32
  for (int i = 0; i < CHAINS; ++i) acc[i] = vec{} + static_cast<float>(i);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < CHAINS; ++i) acc[i] = acc[i] * m + add;  // not foldable without -ffast-math
  }
  float sum = 0.0f;
  for (int i = 0; i < CHAINS; ++i)
    for (int l = 0; l < VL; ++l) sum += acc[i][l];
  return sum;
}

}  // namespace pyconvx::detail
