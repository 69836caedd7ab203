// Bilinear sampling: AVX2, compiled with -mavx2 -mfma (eight lanes, masked vector gathers).
#include <immintrin.h>

#include "bilinear_impl.hpp"

namespace pyconvx::detail {
namespace {

struct Avx2Gather {
  typedef SampleLanes<8>::f vf;
  typedef SampleLanes<8>::i vi;
  static vf get(const float* plane, vi rows, vi columns, int32_t width, vi mask, float fill) {
    const vi at = rows * width + columns;
    return (vf)_mm256_mask_i32gather_ps(_mm256_set1_ps(fill), plane, (__m256i)at, (__m256)mask, 4);
  }
  typedef GatheredBlock<Avx2Gather, vi, vf> Block;
};

}  // namespace

void bilinear_rows_avx2(const SampleRows& s, int64_t row_begin, int64_t row_end) {
  bilinear_rows_vl<8, Avx2Gather>(s, row_begin, row_end);
}

}  // namespace pyconvx::detail
