// Bilinear sampling: AVX-512, compiled with -mavx512f (sixteen lanes).
//
// The neighbours come from whole row windows where the sixteen lanes read few rows and a narrow
// band of columns, as rotations, shifts and moderate zooms do: each row of the band is two masked
// loads of 32 columns and two lane permutes, against four vector gathers for the block. A gather
// is microcoded on AMD Zen 4 (about 30 cycles for sixteen lanes, measured, and it stalls the
// decoder meanwhile), so the windows make a 32x32 rotation about 1.5 times faster there; other
// blocks take the masked gathers.
#include <immintrin.h>

#include "bilinear_impl.hpp"

namespace pyconvx::detail {
namespace {

// Beyond this many rows a block's window costs about what its four gathers do.
constexpr int kMaxWindowRows = 16;

struct Avx512Gather {
  typedef SampleLanes<16>::f vf;
  typedef SampleLanes<16>::i vi;
  static vf get(const float* plane, vi rows, vi columns, int32_t width, vi mask, float fill) {
    const vi at = rows * width + columns;
    const __mmask16 lanes = _mm512_test_epi32_mask((__m512i)mask, (__m512i)mask);
    return (vf)_mm512_mask_i32gather_ps(_mm512_set1_ps(fill), lanes, (__m512i)at, plane, 4);
  }

  class Block;
};

// A block's reads: from its window of rows where the window is narrow enough, else gathered. The
// window, its masks and the lanes' final masks are worked out once for all the channels.
class Avx512Gather::Block {
 public:
  Block(vi y0, vi x0, int32_t width, int32_t height, const vi masks[4], float fill)
      : gathered_(y0, x0, width, height, masks, fill), rows_((__m512i)y0), width_(width), fill_(fill) {
    const __m512i columns = (__m512i)x0;
    const int32_t first_row = _mm512_reduce_min_epi32(rows_), last_row = _mm512_reduce_max_epi32(rows_) + 1;
    // The window's first column is never left of the image, so that no load address precedes the
    // plane; a lane at column -1 then indexes window column 31 (permutes read 5 bits), garbage
    // its mask discards.
    const int32_t first_column = _mm512_reduce_min_epi32(columns);
    left_ = first_column < 0 ? 0 : first_column;
    const int32_t right = _mm512_reduce_max_epi32(columns) + 1;
    windowed_ = right - left_ <= 31 && last_row - first_row <= kMaxWindowRows;
    if (!windowed_) return;
    // Window columns left .. left + 31 that lie in the image: the low 16 and the high 16.
    const int64_t inside = width - left_ < 32 ? width - left_ : 32;
    const uint32_t in_row = inside >= 32 ? ~uint32_t{0} : (uint32_t{1} << inside) - 1;
    low_ = static_cast<__mmask16>(in_row);
    high_ = static_cast<__mmask16>(in_row >> 16);
    at0_ = _mm512_sub_epi32(columns, _mm512_set1_epi32(left_));
    at1_ = _mm512_add_epi32(at0_, _mm512_set1_epi32(1));
    begin_ = first_row < 0 ? 0 : first_row;
    end_ = last_row < height ? last_row : height - 1;
    for (int k = 0; k < 4; ++k) set_[k] = _mm512_test_epi32_mask((__m512i)masks[k], (__m512i)masks[k]);
  }

  void read(const float* plane, vf v[4]) const {
    if (!windowed_) {
      gathered_.read(plane, v);
      return;
    }
    __m512 top0 = _mm512_setzero_ps(), top1 = top0, bottom0 = top0, bottom1 = top0;
    for (int32_t r = begin_; r <= end_; ++r) {
      const float* row = plane + static_cast<int64_t>(r) * width_ + left_;
      const __m512 lo = _mm512_maskz_loadu_ps(low_, row), hi = _mm512_maskz_loadu_ps(high_, row + 16);
      const __m512 p0 = _mm512_permutex2var_ps(lo, at0_, hi), p1 = _mm512_permutex2var_ps(lo, at1_, hi);
      const __mmask16 is_top = _mm512_cmpeq_epi32_mask(rows_, _mm512_set1_epi32(r));
      const __mmask16 is_bottom = _mm512_cmpeq_epi32_mask(rows_, _mm512_set1_epi32(r - 1));
      top0 = _mm512_mask_mov_ps(top0, is_top, p0);
      top1 = _mm512_mask_mov_ps(top1, is_top, p1);
      bottom0 = _mm512_mask_mov_ps(bottom0, is_bottom, p0);
      bottom1 = _mm512_mask_mov_ps(bottom1, is_bottom, p1);
    }
    const __m512 outside = _mm512_set1_ps(fill_);
    const __m512 found[4] = {top0, top1, bottom0, bottom1};
    for (int k = 0; k < 4; ++k) v[k] = (vf)_mm512_mask_mov_ps(outside, set_[k], found[k]);
  }

 private:
  GatheredBlock<Avx512Gather, vi, vf> gathered_;
  __m512i rows_, at0_, at1_;
  int32_t width_, left_, begin_ = 0, end_ = -1;
  float fill_;
  bool windowed_;
  __mmask16 low_ = 0, high_ = 0, set_[4] = {};
};

}  // namespace

void bilinear_rows_avx512(const SampleRows& s, int64_t row_begin, int64_t row_end) {
  bilinear_rows_vl<16, Avx512Gather>(s, row_begin, row_end);
}

}  // namespace pyconvx::detail
