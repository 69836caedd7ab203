// The reduction of global average pooling, written once with GCC/Clang vector extensions and
// instantiated by each ISA's translation unit (plane_means_avx512.cpp, plane_means_avx2.cpp,
// plane_means_generic.cpp). Include it from those files only.
//
// Global pooling reads every input float once and does one addition per float: at a ResNet head
// (7x7 planes, a 12.8 MB batch held in L3) it runs at L3 bandwidth only if the loads are as wide
// as the ISA allows; four-float vectors left it at half that.
#pragma once

#include <cstdint>

namespace pyconvx::detail {

// The vector types, one explicit specialisation per width: GCC drops a vector_size that depends
// on a template parameter.
template <int VL>
struct Vectors;
template <>
struct Vectors<4> {
  typedef float type __attribute__((vector_size(16)));
  typedef float unaligned __attribute__((vector_size(16), aligned(4), may_alias));
  typedef int32_t index __attribute__((vector_size(16)));
};
template <>
struct Vectors<8> {
  typedef float type __attribute__((vector_size(32)));
  typedef float unaligned __attribute__((vector_size(32), aligned(4), may_alias));
  typedef int32_t index __attribute__((vector_size(32)));
};
template <>
struct Vectors<16> {
  typedef float type __attribute__((vector_size(64)));
  typedef float unaligned __attribute__((vector_size(64), aligned(4), may_alias));
  typedef int32_t index __attribute__((vector_size(64)));
};

// The sum of the lanes: the upper half of the live lanes added to the lower until four remain
// (one instruction-set-independent order, so every path sums a plane the same way up to its
// width). Each fold is one full-width shuffle, in registers: copying the halves out with memcpy
// spilled the vector to the stack and read the halves back, a wide store that the narrower loads
// at an offset cannot be forwarded from, which stalled every plane and held a ResNet head's 7x7
// planes at two thirds of the L3 bandwidth.
template <int VL, int LIVE = VL>
inline float lane_sum(typename Vectors<VL>::type v) {
  if constexpr (LIVE == 4) {
    return (v[0] + v[2]) + (v[1] + v[3]);
  } else {
    typename Vectors<VL>::index upper;  // lane l + LIVE / 2 into lane l
#pragma GCC unroll 16
    for (int l = 0; l < VL; ++l) upper[l] = (l + LIVE / 2) % VL;
    return lane_sum<VL, LIVE / 2>(v + __builtin_shuffle(v, upper));
  }
}

// y[t] = scale * (the sum of x[t * plane, (t + 1) * plane)) for t in [0, planes): four vector
// accumulators (one would chain every addition on the previous one), then single vectors, then
// the last plane % VL floats one by one. The order is fixed, so results repeat run to run.
template <int VL>
void plane_means_vl(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  typedef typename Vectors<VL>::type vec;
  auto load = [](const float* p) -> vec { return *reinterpret_cast<const typename Vectors<VL>::unaligned*>(p); };
  for (int64_t t = 0; t < planes; ++t) {
    const float* p = x + t * plane;
    vec a0{}, a1{}, a2{}, a3{};
    int64_t i = 0;
    for (; i + 4 * VL <= plane; i += 4 * VL) {
      a0 += load(p + i);
      a1 += load(p + i + VL);
      a2 += load(p + i + 2 * VL);
      a3 += load(p + i + 3 * VL);
    }
    for (; i + VL <= plane; i += VL) a0 += load(p + i);
    float sum = lane_sum<VL>((a0 + a1) + (a2 + a3));
    for (; i < plane; ++i) sum += p[i];
    y[t] = sum * scale;
  }
}

}  // namespace pyconvx::detail
