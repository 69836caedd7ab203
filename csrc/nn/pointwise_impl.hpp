// The element-wise kernel y = act(scale * x + shift + z), written once with GCC/Clang vector
// extensions and instantiated by each ISA's translation unit (pointwise_avx512.cpp,
// pointwise_avx2.cpp, pointwise_generic.cpp), compiled with that ISA's flags, as the GEMM
// micro-kernel is. The portable convolution code (Winograd's and the depthwise kernel's stores)
// uses `activate` on four-float vectors too.
//
// exp follows Cephes' expf (Moshier): x = n ln 2 + r with |r| <= ln 2 / 2, ln 2 split in two
// parts so that n ln 2 is exact, e^r from a degree-6 polynomial, 2^n put into the exponent
// bits; relative error about 1e-7 over the clamped range. tanh takes Cephes' tanhf odd
// polynomial below |x| = 0.625, where 1 - 2 / (e^2x + 1) would cancel, and that form above.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/vec.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type vexp(typename VecOf<VL>::type x) {
  typedef typename VecOf<VL>::type vec;
  typedef typename VecOf<VL>::index ivec;
  typedef typename VecOf<VL>::bits uvec;
  // e^88.37 is near float's largest value, e^-87.33 its smallest normal; comparisons are false
  // for NaN, which so passes through (the integer part of a NaN is garbage, the result NaN).
  x = x > 88.3762626647949f ? vec{} + 88.3762626647949f : x;
  x = x < -87.3365447504f ? vec{} - 87.3365447504f : x;
  const vec fx = x * 1.44269504088896341f + 0.5f;
  vec n = __builtin_convertvector(__builtin_convertvector(fx, ivec), vec);  // toward zero
  n = n > fx ? n - 1.0f : n;                                                // floor
  vec r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vec p = vec{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const uvec bits = (__builtin_convertvector(__builtin_convertvector(n, ivec), uvec) + 127u) << 23;
  vec scale;
  std::memcpy(&scale, &bits, sizeof(vec));
  return p * scale;
}

template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type vsigmoid(typename VecOf<VL>::type x) {
  return 1.0f / (1.0f + vexp<VL>(-x));
}

template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type vtanh(typename VecOf<VL>::type x) {
  typedef typename VecOf<VL>::type vec;
  const vec a = x < 0.0f ? -x : x;
  const vec big = 1.0f - 2.0f / (vexp<VL>(a + a) + 1.0f);
  const vec z = x * x;
  vec small = vec{} - 5.70498872745e-3f;
  small = small * z + 2.06390887954e-2f;
  small = small * z - 5.37397155531e-2f;
  small = small * z + 1.33314422036e-1f;
  small = small * z - 3.33332819422e-1f;
  small = small * z * x + x;
  const vec signed_big = x < 0.0f ? -big : big;
  return a > 0.625f ? signed_big : small;  // NaN: the polynomial, NaN too
}

template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type vrelu6(typename VecOf<VL>::type x) {
  typedef typename VecOf<VL>::type vec;
  x = x < 0.0f ? vec{} : x;
  return x > 6.0f ? vec{} + 6.0f : x;
}

template <int VL>
__attribute__((always_inline)) inline typename VecOf<VL>::type activate(typename VecOf<VL>::type v,
                                                                             Activation act) {
  typedef typename VecOf<VL>::type vec;
  switch (act) {
    case Activation::none:
      return v;
    case Activation::relu:
      return v < 0.0f ? vec{} : v;
    case Activation::relu6:
      return vrelu6<VL>(v);
    case Activation::sigmoid:
      return vsigmoid<VL>(v);
    case Activation::tanh:
      return vtanh<VL>(v);
    case Activation::silu:
      return v * vsigmoid<VL>(v);
    case Activation::hardswish:
      return v * vrelu6<VL>(v + 3.0f) * (1.0f / 6.0f);
    case Activation::hardsigmoid:
      return vrelu6<VL>(v + 3.0f) * (1.0f / 6.0f);
  }
  return v;
}

// y[i] = act(scale * x[i] + shift + (z ? z[i] : 0)) for i < n; y may alias x or z. The
// activation is switched on once per call, outside the loop.
template <int VL, Activation A>
void pointwise_loop(float* y, const float* x, const float* z, int64_t n, float scale, float shift) {
  typedef typename VecOf<VL>::type vec;
  const vec vs = vec{} + scale, vt = vec{} + shift;
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    vec v;
    std::memcpy(&v, x + i, sizeof(vec));
    v = v * vs + vt;
    if (z) {
      vec w;
      std::memcpy(&w, z + i, sizeof(vec));
      v += w;
    }
    v = activate<VL>(v, A);
    std::memcpy(y + i, &v, sizeof(vec));
  }
  if (i < n) {  // the tail through a zero-padded vector
    alignas(64) float xt[VL] = {}, zt[VL] = {};
    for (int64_t j = 0; j < n - i; ++j) {
      xt[j] = x[i + j];
      if (z) zt[j] = z[i + j];
    }
    vec v, w;
    std::memcpy(&v, xt, sizeof(vec));
    std::memcpy(&w, zt, sizeof(vec));
    v = activate<VL>(v * vs + vt + w, A);
    std::memcpy(xt, &v, sizeof(vec));
    for (int64_t j = 0; j < n - i; ++j) y[i + j] = xt[j];
  }
}

template <int VL>
void pointwise_body(float* y, const float* x, const float* z, int64_t n, float scale, float shift, Activation act) {
  switch (act) {
    case Activation::none:
      return pointwise_loop<VL, Activation::none>(y, x, z, n, scale, shift);
    case Activation::relu:
      return pointwise_loop<VL, Activation::relu>(y, x, z, n, scale, shift);
    case Activation::relu6:
      return pointwise_loop<VL, Activation::relu6>(y, x, z, n, scale, shift);
    case Activation::sigmoid:
      return pointwise_loop<VL, Activation::sigmoid>(y, x, z, n, scale, shift);
    case Activation::tanh:
      return pointwise_loop<VL, Activation::tanh>(y, x, z, n, scale, shift);
    case Activation::silu:
      return pointwise_loop<VL, Activation::silu>(y, x, z, n, scale, shift);
    case Activation::hardswish:
      return pointwise_loop<VL, Activation::hardswish>(y, x, z, n, scale, shift);
    case Activation::hardsigmoid:
      return pointwise_loop<VL, Activation::hardsigmoid>(y, x, z, n, scale, shift);
  }
}

}  // namespace pyconvx::detail
