// Bilinear sampling: AVX-512, compiled with -mavx512f (sixteen lanes, masked vector gathers).
#include <immintrin.h>

#include "bilinear_impl.hpp"

namespace pyconvx::detail {
namespace {

struct Avx512Gather {
  typedef SampleLanes<16>::f vf;
  typedef SampleLanes<16>::i vi;
  static vf get(const float* plane, vi rows, vi columns, int32_t width, vi mask, float fill) {
    const vi at = rows * width + columns;
    const __mmask16 lanes = _mm512_test_epi32_mask((__m512i)mask, (__m512i)mask);
    return (vf)_mm512_mask_i32gather_ps(_mm512_set1_ps(fill), lanes, (__m512i)at, plane, 4);
  }
};

}  // namespace

void bilinear_rows_avx512(const SampleRows& s, int64_t row_begin, int64_t row_end) {
  bilinear_rows_vl<16, Avx512Gather>(s, row_begin, row_end);
}

}  // namespace pyconvx::detail
