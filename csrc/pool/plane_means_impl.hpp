// The reduction of global average pooling, written once with GCC/Clang vector extensions and
// instantiated by each ISA's translation unit (plane_means_avx512.cpp, plane_means_avx2.cpp,
// plane_means_generic.cpp). Include it from those files only.
//
// Global pooling reads every input float once and does one addition per float: at a ResNet head
// (7x7 planes, a 12.8 MB batch held in L3) it runs at L3 bandwidth only if the loads are as wide
// as the ISA allows; four-float vectors left it at half that.
#pragma once

#include <cstdint>
#include <cstddef>
#include <utility>

namespace pyconvx::detail {

// The vector types, one explicit specialisation per width: GCC drops a vector_size that depends
// on a template parameter.
template <int VL>
struct Vectors;
template <>
struct Vectors<4> {
  typedef float type __attribute__((vector_size(16)));
  typedef float unaligned __attribute__((vector_size(16), aligned(4), may_alias));
};
template <>
struct Vectors<8> {
  typedef float type __attribute__((vector_size(32)));
  typedef float unaligned __attribute__((vector_size(32), aligned(4), may_alias));
};
template <>
struct Vectors<16> {
  typedef float type __attribute__((vector_size(64)));
  typedef float unaligned __attribute__((vector_size(64), aligned(4), may_alias));
};

// The halves of a vector, taken in registers. (Copying them out with memcpy spilled the vector to
// the stack and read its halves back: a wide store that a narrower load at an offset cannot be
// forwarded from, which stalled every plane and held a ResNet head's 7x7 planes at two thirds of
// the L3 bandwidth.)
template <int VL, std::size_t... I>
inline typename Vectors<VL / 2>::type low_half(typename Vectors<VL>::type v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, I...);
}
template <int VL, std::size_t... I>
inline typename Vectors<VL / 2>::type high_half(typename Vectors<VL>::type v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (I + VL / 2)...);
}

// The sum of the lanes: the upper half added to the lower until four lanes remain (one
// instruction-set-independent order, so every path sums a plane the same way up to its width).
template <int VL>
inline float lane_sum(typename Vectors<VL>::type v) {
  if constexpr (VL == 4) {
    return (v[0] + v[2]) + (v[1] + v[3]);
  } else {
    const auto halves = std::make_index_sequence<VL / 2>{};
    return lane_sum<VL / 2>(low_half<VL>(v, halves) + high_half<VL>(v, halves));
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
