// Vectors of VL floats for the per-ISA kernels (internal): the type, written with GCC/Clang
// vector extensions, and loads and stores of a vector's first lanes. Included by the files that
// are compiled once per instruction set (the *_impl.hpp headers), and by portable code at VL = 4.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pyconvx::detail {

template <int VL>
struct VecOf {  // (a struct, not an alias: GCC drops the vector_size attribute of a template argument)
  typedef float type __attribute__((vector_size(VL * sizeof(float))));
  typedef int32_t index __attribute__((vector_size(VL * sizeof(float))));
  typedef uint32_t bits __attribute__((vector_size(VL * sizeof(float))));
};

// dst[0, n) = v[0, n) for 0 < n < VL. A loop of unknown count over a vector's lanes became a
// spill to the stack and a libc memcpy call (with a vzeroupper) per filter of a tile; AVX-512 and
// AVX2 store under a lane mask instead (the last strip of each task, so 0.5-1.5% of the broadcast
// convolutions' forward passes: LeNet-5's conv3, ResNet's conv1).
template <int VL>
__attribute__((always_inline)) inline void store_first(float* dst, typename VecOf<VL>::type v, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (VL == 16) {
    _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (VL == 8) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(dst, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes),
                        reinterpret_cast<__m256>(v));
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = v[i];
    __asm__("" : "+r"(i));  // keeps the loop a loop (see zero_floats in core/copy.hpp)
  }
}

// v[0, n) = src[0, n) and zeros after, for 0 < n <= VL, without reading past src + n.
template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type load_first(const float* src, int64_t n) {
  typedef typename VecOf<VL>::type vec;
  vec v{};
  if (n == VL) {
    std::memcpy(&v, src, sizeof(vec));
    return v;
  }
#if defined(__AVX512F__)
  if constexpr (VL == 16) return reinterpret_cast<vec>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), src));
#endif
#if defined(__AVX2__)
  if constexpr (VL == 8) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return reinterpret_cast<vec>(
        _mm256_maskload_ps(src, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes)));
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    v[i] = src[i];
    __asm__("" : "+r"(i));  // keeps the loop a loop (see store_first)
  }
  return v;
}

}  // namespace pyconvx::detail
