// Bilinear sampling of whole output rows, written once with GCC/Clang vector extensions and
// instantiated by each ISA's translation unit (bilinear_avx512.cpp, bilinear_avx2.cpp,
// bilinear_generic.cpp), which supplies the one operation vector extensions lack: the reads of
// VL lanes' neighbours at VL indices, with `fill` where a lane is masked off. Include it from
// those files only.
//
// VL outputs at a time: their positions, floors and weights in lane-wise arithmetic, then the
// four neighbours and the mix per channel. With sixteen lanes a 32x32 rotation costs about 1.3 ns
// an output on an Intel Xeon with vector gathers, and 3 ns on AMD Zen 4 with row windows (4.8
// with its slow gathers), against 4-10 ns for one output at a time.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/dispatch.hpp"

namespace pyconvx::detail {

// The lane types, one explicit specialisation per width: GCC drops a vector_size that depends on
// a template parameter.
template <int VL>
struct SampleLanes;
template <>
struct SampleLanes<4> {
  typedef float f __attribute__((vector_size(16)));
  typedef int32_t i __attribute__((vector_size(16)));
  typedef double d __attribute__((vector_size(32)));
};
template <>
struct SampleLanes<8> {
  typedef float f __attribute__((vector_size(32)));
  typedef int32_t i __attribute__((vector_size(32)));
  typedef double d __attribute__((vector_size(64)));
};
template <>
struct SampleLanes<16> {
  typedef float f __attribute__((vector_size(64)));
  typedef int32_t i __attribute__((vector_size(64)));
  typedef double d __attribute__((vector_size(128)));
};

// A position clipped to [-1, size], NaN to -1 (the comparison is false): far-off positions then
// read fill only, and every conversion after it is in range.
template <class V>
inline V clip_lanes(V at, V size) {
  const V low = V{} - 1;
  return at > low ? (at < size ? at : size) : low;
}

// The bilinear mix of the pixels a (top left), b (top right), c (bottom left), d (bottom right):
// two horizontal mixes, then the vertical one, in that order on every path.
template <class V>
inline V mix_lanes(V a, V b, V c, V d, V fx, V fy) {
  const V upper = a + fx * (b - a), lower = c + fx * (d - c);
  return upper + fy * (lower - upper);
}

// count (at most VL) floats from `from` to `to`: a whole vector's copy is a single load and store.
template <int VL>
inline void copy_lanes(void* to, const void* from, int64_t count) {
  if (count == VL)
    std::memcpy(to, from, VL * sizeof(float));
  else
    std::memcpy(to, from, count * sizeof(float));
}

// The four neighbours (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1) of every lane of a
// block, each where its mask is set and fill elsewhere, through four gathers: Gather::get(plane,
// y, x, width, mask, fill) returns, lane by lane, the pixel at row y and column x of `plane` where
// mask is set. read(plane, v) reads them from one channel's plane.
template <class Gather, class vi, class vf>
struct GatheredBlock {
  vi y0, x0;
  int32_t width;
  const vi* masks;
  float fill;
  GatheredBlock(vi y0_, vi x0_, int32_t width_, int32_t, const vi masks_[4], float fill_)
      : y0(y0_), x0(x0_), width(width_), masks(masks_), fill(fill_) {}
  void read(const float* plane, vf v[4]) const {
    v[0] = Gather::get(plane, y0, x0, width, masks[0], fill);
    v[1] = Gather::get(plane, y0, x0 + 1, width, masks[1], fill);
    v[2] = Gather::get(plane, y0 + 1, x0, width, masks[2], fill);
    v[3] = Gather::get(plane, y0 + 1, x0 + 1, width, masks[3], fill);
  }
};

// Outputs [row_begin, row_end) of rows numbered over the batch (row r: image r / out_h, row
// r % out_h). Gather::Block(y0, x0, width, height, masks, fill) is set up once per block of VL
// outputs, for all the channels; its read(plane, v) sets v[0..3] to the four neighbours of each
// lane as GatheredBlock's does (which serves where nothing is faster).
template <int VL, class Gather>
void bilinear_rows_vl(const SampleRows& s, int64_t row_begin, int64_t row_end) {
  typedef typename SampleLanes<VL>::f vf;
  typedef typename SampleLanes<VL>::i vi;
  typedef typename SampleLanes<VL>::d vd;
  const int64_t plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  const float right = static_cast<float>(s.w), bottom = static_cast<float>(s.h);
  const int32_t width = static_cast<int32_t>(s.w), height = static_cast<int32_t>(s.h);
  vi lane{};
  for (int l = 0; l < VL; ++l) lane[l] = l;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / s.out_h, p = r % s.out_h;
    const float* image = s.x + n * s.c * plane;
    float* out_row = s.y + n * s.c * out_plane + p * s.out_w;
    for (int64_t q0 = 0; q0 < s.out_w; q0 += VL) {
      const int64_t count = s.out_w - q0 < VL ? s.out_w - q0 : VL;
      vf columns, rows;
      if (s.maps) {
        // In double, then rounded to float (which turns positions past float's range into
        // infinities, clipped below like any other).
        const double* m = s.maps + 6 * n;
        const double v = static_cast<double>(p), column0 = m[1] * v + m[2], row0 = m[4] * v + m[5];
        const vd u = __builtin_convertvector(lane, vd) + static_cast<double>(q0);
        columns = __builtin_convertvector(m[0] * u + column0, vf);
        rows = __builtin_convertvector(m[3] * u + row0, vf);
      } else {
        const int64_t at = n * out_plane + p * s.out_w + q0;
        columns = rows = vf{};  // lanes past the row's end sample the top left corner, unused
        copy_lanes<VL>(&columns, s.xs + at, count);
        copy_lanes<VL>(&rows, s.ys + at, count);
      }
      // Clipping commutes with rounding to float: both bounds are whole floats.
      columns = clip_lanes(columns, vf{} + right);
      rows = clip_lanes(rows, vf{} + bottom);
      // Floors of positions in [-1, size]: truncation, minus one where it went up (below zero;
      // a true lane of a comparison is -1).
      const vi tx = __builtin_convertvector(columns, vi), ty = __builtin_convertvector(rows, vi);
      const vi x0 = tx + (__builtin_convertvector(tx, vf) > columns), y0 = ty + (__builtin_convertvector(ty, vf) > rows);
      const vf fx = columns - __builtin_convertvector(x0, vf), fy = rows - __builtin_convertvector(y0, vf);
      // x0 >= -1 and y0 >= -1, so x0 + 1 and y0 + 1 are never below zero.
      const vi has_x0 = (x0 >= 0) & (x0 < width), has_x1 = x0 + 1 < width;
      const vi has_y0 = (y0 >= 0) & (y0 < height), has_y1 = y0 + 1 < height;
      const vi masks[4] = {has_y0 & has_x0, has_y0 & has_x1, has_y1 & has_x0, has_y1 & has_x1};
      const typename Gather::Block block(y0, x0, width, height, masks, s.fill);
      for (int64_t c = 0; c < s.c; ++c) {
        vf v[4];
        block.read(image + c * plane, v);
        const vf result = mix_lanes(v[0], v[1], v[2], v[3], fx, fy);
        copy_lanes<VL>(out_row + c * out_plane + q0, &result, count);
      }
    }
  }
}

// The portable gather, one lane at a time with 64-bit indices (so it also serves planes too
// large for the 32-bit indices of the vector gathers).
template <int VL>
struct ScalarGather {
  typedef typename SampleLanes<VL>::f vf;
  typedef typename SampleLanes<VL>::i vi;
  static vf get(const float* plane, vi rows, vi columns, int32_t width, vi mask, float fill) {
    vf v;
    for (int l = 0; l < VL; ++l)
      v[l] = mask[l] ? plane[static_cast<int64_t>(rows[l]) * width + columns[l]] : fill;
    return v;
  }
  typedef GatheredBlock<ScalarGather, vi, vf> Block;
};

}  // namespace pyconvx::detail
