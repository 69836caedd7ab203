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

namespace pyconvx::detail {

template <int VL, int MR, int NV>
inline void sgemm_ukernel_tile(int64_t kc, const float* __restrict a, const float* __restrict b,
                               float* __restrict c, int64_t ldc, bool accumulate, const float* __restrict bias,
                               bool relu) {
  typedef float vec __attribute__((vector_size(VL * sizeof(float))));
  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = vec{};
  for (int64_t p = 0; p < kc; ++p) {
    vec bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const vec*>(b + j * VL);  // packed: aligned
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec av = a[i] - vec{};  // broadcast (x - 0 is exact, so it folds; x + 0 would not for -0)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += av * bv[j];
    }
    a += MR;
    b += NV * VL;
  }
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
      if (relu) out = out < vec{} ? vec{} : out;  // NaN stays NaN, as in torch
      std::memcpy(ci + j * VL, &out, sizeof(vec));
    }
  }
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
