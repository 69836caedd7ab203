// The depthwise convolution's inner kernel, written once with GCC/Clang vector extensions and
// instantiated by each ISA's translation unit (depthwise_avx512.cpp, depthwise_avx2.cpp,
// depthwise_generic.cpp), compiled with that ISA's flags, as the GEMM micro-kernel is.
//
// One output plane of one filter from a zero-padded input plane split into column phases: each
// output row is swept in runs of NA vectors of VL outputs that stay in registers across all
// R * S taps, one unit-stride vector load and one FMA a tap and vector, at any stride. A run is
// as short as the row allows (one vector on a 7 x 7 map), so small maps do not compute lanes
// they drop.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/dispatch.hpp"
#include "../core/vec.hpp"
#include "../nn/pointwise_impl.hpp"

namespace pyconvx::detail {

// Outputs j < count (<= NA * VL) of one row: bias + the taps, then the residual already in out
// (when accumulating) and the activation. The padded input can always be read for a full run.
template <int VL, int NA, int KR, int KS>
__attribute__((always_inline)) inline void depthwise_run(const float* in, const float* w, const DepthwiseTaps& t,
                                                         float bias, bool accumulate, Activation act, float* out,
                                                         int64_t count) {
  typedef typename VecOf<VL>::type vec;
  const int64_t taps = KR ? KR * KS : t.r * t.s;
  vec acc[NA];
#pragma GCC unroll 4
  for (int a = 0; a < NA; ++a) acc[a] = vec{} + bias;
#pragma GCC unroll 25
  for (int64_t tap = 0; tap < taps; ++tap) {
    const float* src = in + t.offsets[tap];
    const vec wv = w[tap] - vec{};  // broadcast (x - 0 is exact, so it folds)
#pragma GCC unroll 4
    for (int a = 0; a < NA; ++a) {
      vec v;
      std::memcpy(&v, src + a * VL, sizeof(vec));
      acc[a] += wv * v;
    }
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

template <int VL, int NA, int KR, int KS>
void depthwise_plane_of(const float* in, const float* w, const DepthwiseTaps& t, float bias, bool accumulate,
                        Activation act, float* out) {
  constexpr int64_t run = NA * VL;
  for (int64_t p = 0; p < t.p; ++p) {
    const float* row = in + p * t.row_step;
    for (int64_t q = 0; q < t.q; q += run)
      depthwise_run<VL, NA, KR, KS>(row + q, w, t, bias, accumulate, act, out + p * t.q + q,
                                    t.q - q < run ? t.q - q : run);
  }
}

template <int VL, int NA>
DepthwisePlane depthwise_plane_for_kernel(const DepthwiseTaps& t) {
  if (t.r == 3 && t.s == 3) return depthwise_plane_of<VL, NA, 3, 3>;
  if (t.r == 5 && t.s == 5) return depthwise_plane_of<VL, NA, 5, 5>;
  if (t.r == 7 && t.s == 7) return depthwise_plane_of<VL, NA, 7, 7>;
  return depthwise_plane_of<VL, NA, 0, 0>;
}

// The plane kernel for these taps: 1, 2 or 4 vectors a run, the fewest that cover a row (up to 4).
template <int VL>
DepthwisePlane depthwise_plane_body(const DepthwiseTaps& t, int64_t* run) {
  const int vectors = t.q <= VL ? 1 : t.q <= 2 * VL ? 2 : 4;
  *run = vectors * VL;
  if (vectors == 1) return depthwise_plane_for_kernel<VL, 1>(t);
  if (vectors == 2) return depthwise_plane_for_kernel<VL, 2>(t);
  return depthwise_plane_for_kernel<VL, 4>(t);
}

}  // namespace pyconvx::detail
