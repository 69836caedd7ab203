// Copies of short float runs, strided gathers, and rows interleaved into packed slivers (internal).
#pragma once

#include <cstdint>
#include <cstring>

#include "quad.hpp"

namespace pyconvx::detail {

// Packing copies runs of 16-64 floats (a sliver row, an output row). A libc memcpy call per
// run cost a third of a 1x1 convolution; fixed-size copies compile to inline vector moves. The
// tail is written out because GCC turns a copy loop of unknown count back into a memcpy call.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
  if (i + 4 <= n) {
    std::memcpy(dst + i, src + i, 4 * sizeof(float));
    i += 4;
  }
  if (i < n) dst[i] = src[i];
  if (i + 1 < n) dst[i + 1] = src[i + 1];
  if (i + 2 < n) dst[i + 2] = src[i + 2];
}

// dst[0, n) = 0 for the few floats of a padded edge, inline: GCC turns a fill loop into a memset
// call, which costs more than the row it pads; an index opaque to it keeps the loop a loop.
inline void zero_floats(float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    store_quad(dst + i, Quad{});
    __asm__("" : "+r"(i));
  }
  if (i < n) dst[i] = 0.0f;
  if (i + 1 < n) dst[i + 1] = 0.0f;
  if (i + 2 < n) dst[i + 2] = 0.0f;
}

// out[t] = src[t * Step] for t < n. A constant step lets GCC vectorise the gather (loads and
// shuffles); 0 reads `step` at run time.
template <int Step>
inline void gather_every(float* out, const float* src, int64_t n, int64_t step) {
  const int64_t s = Step ? Step : step;
  for (int64_t t = 0; t < n; ++t) out[t] = src[t * s];
}

// The strides of the classic networks' strided layers (2, and AlexNet's 4) get their own copies.
inline void copy_strided(float* out, const float* src, int64_t n, int64_t step) {
  if (step == 1)
    copy_floats(out, src, n);
  else if (step == 2)
    gather_every<2>(out, src, n, 2);
  else if (step == 4)
    gather_every<4>(out, src, n, 4);
  else
    gather_every<0>(out, src, n, step);
}

// out[t * MR + i] = src[i * ld + t] for t < run and i < rows, zero for rows <= i < MR: a block of
// rows interleaved pixel by pixel (MR adjacent writes, MR streams read). MR as a template
// argument, for the micro-kernels' 4 to 16 rows and 32 columns, unrolls the inner loops. Four rows
// by four pixels go through a register transpose (four loads, eight shuffles, four stores for 16
// floats): one value at a time took two memory operations a float, and packing A took 12% of a
// 240 x 1536 x 512 product (5% after).
template <int MR>
void interleave_rows_fixed(const float* src, int64_t ld, int64_t run, float* out) {
  constexpr int kBlocked = MR / 4 * 4;
  int64_t t = 0;
  for (; t + 4 <= run; t += 4) {
#pragma GCC unroll 8
    for (int i = 0; i < kBlocked; i += 4) {
      Quad v[4] = {load_quad(src + i * ld + t), load_quad(src + (i + 1) * ld + t), load_quad(src + (i + 2) * ld + t),
                   load_quad(src + (i + 3) * ld + t)};
      transpose_quads(v);
      for (int q = 0; q < 4; ++q) store_quad(out + (t + q) * MR + i, v[q]);
    }
    for (int i = kBlocked; i < MR; ++i)
      for (int q = 0; q < 4; ++q) out[(t + q) * MR + i] = src[i * ld + t + q];
  }
  for (; t < run; ++t)
    for (int i = 0; i < MR; ++i) out[t * MR + i] = src[i * ld + t];
}

inline void interleave_rows(const float* src, int64_t ld, int64_t rows, int64_t mr, int64_t run, float* out) {
  if (rows == mr) {
    switch (mr) {
      case 4: return interleave_rows_fixed<4>(src, ld, run, out);
      case 6: return interleave_rows_fixed<6>(src, ld, run, out);
      case 8: return interleave_rows_fixed<8>(src, ld, run, out);
      case 10: return interleave_rows_fixed<10>(src, ld, run, out);
      case 12: return interleave_rows_fixed<12>(src, ld, run, out);
      case 14: return interleave_rows_fixed<14>(src, ld, run, out);
      case 16: return interleave_rows_fixed<16>(src, ld, run, out);
      case 32: return interleave_rows_fixed<32>(src, ld, run, out);
      default: break;
    }
  }
  for (int64_t t = 0; t < run; ++t) {
    for (int64_t i = 0; i < rows; ++i) out[t * mr + i] = src[i * ld + t];
    for (int64_t i = rows; i < mr; ++i) out[t * mr + i] = 0.0f;
  }
}

}  // namespace pyconvx::detail
