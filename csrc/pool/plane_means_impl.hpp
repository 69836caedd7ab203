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

// VL floats from p, which need not be aligned.
template <int VL>
inline typename Vectors<VL>::type load_floats(const float* p) {
  return *reinterpret_cast<const typename Vectors<VL>::unaligned*>(p);
}

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

// One round of summing VL vectors' lanes at once: vectors holding VL / (2H) planes' partial sums
// in blocks of 2H lanes become half as many holding twice the planes in blocks of H, each output
// lane the sum of two input lanes, blocks kept in plane order. log2(VL) rounds leave lane t with
// the whole sum of vector t: two shuffles and one addition a vector a round, VL - 1 vectors'
// worth in all, where folding each vector by itself costs log2(VL) shuffles (see lane_sum).
template <int VL, int H>
__attribute__((always_inline)) inline void fold_round(typename Vectors<VL>::type* v) {
  typename Vectors<VL>::index low, high;  // lane sources: 0..VL-1 from the first vector, VL.. from the second
  constexpr int per_input = VL / (2 * H);  // output blocks that come from the first vector
#pragma GCC unroll 16
  for (int l = 0; l < VL; ++l) {
    const int block = l / H, offset = l % H;
    const int from = block < per_input ? 0 : VL, in_block = block < per_input ? block : block - per_input;
    low[l] = from + in_block * 2 * H + offset;
    high[l] = from + in_block * 2 * H + H + offset;
  }
#pragma GCC unroll 16
  for (int i = 0; i < H; ++i)  // 2H vectors in, H out
    v[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], low) + __builtin_shuffle(v[2 * i], v[2 * i + 1], high);
  if constexpr (H > 1) fold_round<VL, H / 2>(v);
}

// The planes [0, planes - planes % VL) VL at a time, each plane LEAD whole vectors and one more
// ending at the plane's end, with the lanes the LEAD vectors cover masked off; returns the planes
// done (see plane_means_vl). `plane` is at least VL, so that last vector stays inside the plane.
// LEAD fixed at compile time makes each plane's loads a straight run at constant offsets.
template <int VL, int LEAD>
int64_t grouped_plane_means(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  typedef typename Vectors<VL>::type vec;
  typedef typename Vectors<VL>::index index;
  constexpr auto load = load_floats<VL>;
  const int64_t rest = plane - LEAD * VL;  // 1 to VL floats past the LEAD vectors
  index tail_lanes;  // the last `rest` lanes of the vector ending at the plane's end
#pragma GCC unroll 16
  for (int l = 0; l < VL; ++l) tail_lanes[l] = l >= VL - rest ? -1 : 0;
  int64_t t = 0;
  for (; t + VL <= planes; t += VL) {
    const float* first = x + t * plane;
    vec v[VL];
#pragma GCC unroll 16
    for (int j = 0; j < VL; ++j) {
      const float* p = first + j * plane;
      vec sum = reinterpret_cast<vec>(reinterpret_cast<index>(load(p + plane - VL)) & tail_lanes);
#pragma GCC unroll 8
      for (int i = 0; i < LEAD; ++i) sum += load(p + i * VL);
      v[j] = sum;
    }
    fold_round<VL, VL / 2>(v);
    *reinterpret_cast<typename Vectors<VL>::unaligned*>(y + t) = v[0] * scale;
  }
  return t;
}

// y[t] = scale * (the sum of x[t * plane, (t + 1) * plane)) for t in [0, planes). Planes of 1 to
// 6 vectors go VL at a time (grouped_plane_means): one accumulator each, kept in a register while
// the plane is read from start to end (the order the prefetchers follow; reading the VL planes'
// first vectors, then their second ones, ... was 40% slower), then one fold of all VL
// accumulators. Folding each plane's vector by itself left a ResNet head's 7x7 planes at a third
// of the L3 bandwidth (0.22 ms for 12.8 MB on 2 Zen 4 cores; grouped 0.10 ms, the loads alone
// 0.075 ms).
// Other planes, and the last planes % VL: four vector accumulators (one would chain every
// addition on the previous one; longer planes spend little on their own fold: 13x13, grouped,
// was 25% slower), then single vectors, then the rest one by one. The order is fixed, so results
// repeat run to run.
template <int VL>
void plane_means_vl(const float* x, int64_t planes, int64_t plane, float scale, float* y) {
  typedef typename Vectors<VL>::type vec;
  constexpr auto load = load_floats<VL>;
  int64_t t = 0;
  switch (plane >= VL ? (plane - 1) / VL : -1) {
    case 0: t = grouped_plane_means<VL, 0>(x, planes, plane, scale, y); break;
    case 1: t = grouped_plane_means<VL, 1>(x, planes, plane, scale, y); break;
    case 2: t = grouped_plane_means<VL, 2>(x, planes, plane, scale, y); break;
    case 3: t = grouped_plane_means<VL, 3>(x, planes, plane, scale, y); break;
    case 4: t = grouped_plane_means<VL, 4>(x, planes, plane, scale, y); break;
    case 5: t = grouped_plane_means<VL, 5>(x, planes, plane, scale, y); break;
    default: break;  // shorter than a vector, or longer than 6
  }
  for (; t < planes; ++t) {
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
