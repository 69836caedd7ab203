// The depthwise convolution's inner kernel, written once with GCC/Clang vector extensions and
// instantiated by each ISA's translation unit (depthwise_avx512.cpp, depthwise_avx2.cpp,
// depthwise_generic.cpp), compiled with that ISA's flags, as the GEMM micro-kernel is.
//
// One output plane of one filter from a zero-padded input plane: each output row is swept in
// runs of NA vectors of VL outputs that stay in registers across all R * S taps, one vector load
// (two and a shuffle at stride 2) and one FMA a tap and vector. A run is as short as the row
// allows (one vector on a 7 x 7 map), so small maps do not compute lanes they drop.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/dispatch.hpp"
#include "../nn/pointwise_impl.hpp"

namespace pyconvx::detail {

// VL floats from src, src + step, ...: a plain load at step 1, the even lanes of two loads at
// step 2 (MobileNet's and EfficientNet's strided layers), a gather otherwise.
template <int VL, int STEP>
__attribute__((always_inline)) inline typename VecOf<VL>::type load_every(const float* src, int64_t step) {
  typedef typename VecOf<VL>::type vec;
  typedef typename VecOf<VL>::index ivec;
  vec v;
  if constexpr (STEP == 1) {
    std::memcpy(&v, src, sizeof(vec));
  } else if constexpr (STEP == 2) {
    vec lo, hi;
    std::memcpy(&lo, src, sizeof(vec));
    std::memcpy(&hi, src + VL, sizeof(vec));
    ivec even;
    for (int l = 0; l < VL; ++l) even[l] = 2 * l;
    v = __builtin_shuffle(lo, hi, even);
  } else {
    for (int l = 0; l < VL; ++l) v[l] = src[l * step];
  }
  return v;
}

// Outputs j < count (<= NA * VL) of one row: bias + the taps, then the residual already in out
// (when accumulating) and the activation. The padded plane can always be read for a full run.
template <int VL, int NA, int STEP, int KR, int KS>
__attribute__((noinline)) void depthwise_run(const float* in, const float* w, const DepthwiseTaps& t, float bias,
                                             bool accumulate, Activation act, float* out, int64_t count) {
  typedef typename VecOf<VL>::type vec;
  const int64_t R = KR ? KR : t.r, S = KS ? KS : t.s, step = STEP ? STEP : t.sw;
  vec acc[NA];
#pragma GCC unroll 4
  for (int a = 0; a < NA; ++a) acc[a] = vec{} + bias;
#pragma GCC unroll 7
  for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 7
    for (int64_t s = 0; s < S; ++s) {
      const float* src = in + r * t.dh * t.ld + s * t.dw;
      const vec wv = vec{} + w[r * S + s];
#pragma GCC unroll 4
      for (int a = 0; a < NA; ++a) acc[a] += wv * load_every<VL, STEP>(src + a * VL * step, step);
    }
  // The last run of a row stores only its outputs, under a lane mask (a copy loop became a
  // memmove call a row: a tenth of a 14 x 14 layer's time).
#pragma GCC unroll 4
  for (int a = 0; a < NA; ++a) {
    const int64_t lanes = count - a * VL < VL ? count - a * VL : VL;
    if (lanes <= 0) break;
    vec v = acc[a];
    if (accumulate) v += load_first<VL>(out + a * VL, lanes);
    v = activate<VL>(v, act);
    if (lanes == VL)
      std::memcpy(out + a * VL, &v, sizeof(vec));
    else
      store_first<VL>(out + a * VL, v, lanes);
  }
}

template <int VL, int NA, int STEP, int KR, int KS>
void depthwise_plane_of(const float* in, const float* w, const DepthwiseTaps& t, float bias, bool accumulate,
                        Activation act, float* out) {
  constexpr int64_t run = NA * VL;
  const int64_t step = STEP ? STEP : t.sw;
  for (int64_t p = 0; p < t.p; ++p) {
    const float* row = in + p * t.sh * t.ld;
    for (int64_t q = 0; q < t.q; q += run)
      depthwise_run<VL, NA, STEP, KR, KS>(row + q * step, w, t, bias, accumulate, act, out + p * t.q + q,
                                          t.q - q < run ? t.q - q : run);
  }
}

template <int VL, int NA, int STEP>
DepthwisePlane depthwise_plane_for_kernel(const DepthwiseTaps& t) {
  if (t.r == 3 && t.s == 3) return depthwise_plane_of<VL, NA, STEP, 3, 3>;
  if (t.r == 5 && t.s == 5) return depthwise_plane_of<VL, NA, STEP, 5, 5>;
  return depthwise_plane_of<VL, NA, STEP, 0, 0>;
}

template <int VL, int NA>
DepthwisePlane depthwise_plane_for_stride(const DepthwiseTaps& t) {
  if (t.sw == 1) return depthwise_plane_for_kernel<VL, NA, 1>(t);
  if (t.sw == 2) return depthwise_plane_for_kernel<VL, NA, 2>(t);
  return depthwise_plane_for_kernel<VL, NA, 0>(t);
}

// The plane kernel for these taps: 1, 2 or 4 vectors a run, the fewest that cover a row (up to 4).
template <int VL>
DepthwisePlane depthwise_plane_body(const DepthwiseTaps& t, int64_t* run) {
  const int vectors = t.q <= VL ? 1 : t.q <= 2 * VL ? 2 : 4;
  *run = vectors * VL;
  if (vectors == 1) return depthwise_plane_for_stride<VL, 1>(t);
  if (vectors == 2) return depthwise_plane_for_stride<VL, 2>(t);
  return depthwise_plane_for_stride<VL, 4>(t);
}

}  // namespace pyconvx::detail
