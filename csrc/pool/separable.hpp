// Separable window reductions for pooling (internal).
//
// A max or a sum over a kh x kw window equals the reduction over kw columns of a reduction over
// kh rows. Each output row first reduces its kh input rows elementwise into one row (contiguous,
// four floats a step), placed behind pad_left identities in a buffer that the identity also
// pads on the right; then each output is the reduction of kw consecutive values of that row
// (stride 1: unaligned quads; stride 2: quads of even lanes from two loads), with no clipping
// at the edges. For ResNet's 3x3/s2 pool on 112 x 112 that is about 1.5 quad operations per
// output where the scalar passes (rows first, then columns) took 6 scalar ones, and Inception's
// 3x3/s1 branch pools about 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/copy.hpp"
#include "../core/quad.hpp"
#include "window.hpp"

namespace pyconvx::detail {

// max that lets NaN win from either side, so a window holding a NaN yields NaN (torch's value).
struct MaxNan {
  static float identity() { return -INFINITY; }
  static float apply(float acc, float v) { return (v > acc || v != v) ? v : acc; }
  static Quad apply(Quad acc, Quad v) { return (v > acc) | (v != v) ? v : acc; }
};

struct Sum {
  static float identity() { return 0.0f; }
  static float apply(float acc, float v) { return acc + v; }
  static Quad apply(Quad acc, Quad v) { return acc + v; }
};

// Whether the windows may read their row through identity padding: kernels up to 16 wide whose
// left padding and right overhang (ceil mode may take the last window past the right padding)
// stay within a kernel width. Others (a window as large as 2^40 with as much padding) reduce
// each window clipped to the row.
inline bool pads_row(int64_t W, int64_t Q, int64_t kw, int64_t stride_w, int64_t pad_left) {
  return kw <= 16 && pad_left < kw && (Q - 1) * stride_w + kw <= pad_left + W + kw;
}

// The floats of reduce_plane's row buffer: the pad_left identities, the row, and identities up to
// the last window's end, with room for the last quad's loads; or just the row.
inline int64_t reduce_buffer_floats(int64_t W, int64_t Q, int64_t kw, int64_t stride_w, int64_t pad_left) {
  return pads_row(W, Q, kw, stride_w, pad_left) ? std::max(pad_left + W, (Q - 1) * stride_w + kw) + 4 : W;
}

// out[q] = Op over s < kw of buf[q * Stride + s], q < Q (Stride 0: `stride` read at run time).
template <class Op, int Stride>
inline void reduce_windows(const float* buf, int64_t Q, int64_t kw, int64_t stride, float* out) {
  int64_t q = 0;
  if constexpr (Stride == 1) {
    for (; q + 4 <= Q; q += 4) {
      Quad acc = load_quad(buf + q);
      for (int64_t s = 1; s < kw; ++s) acc = Op::apply(acc, load_quad(buf + q + s));
      store_quad(out + q, acc);
    }
  } else if constexpr (Stride == 2) {
    for (; q + 4 <= Q; q += 4) {
      const float* base = buf + 2 * q;
      Quad acc = __builtin_shuffle(load_quad(base), load_quad(base + 4), QuadIndex{0, 2, 4, 6});
      for (int64_t s = 1; s < kw; ++s)
        acc = Op::apply(acc, __builtin_shuffle(load_quad(base + s), load_quad(base + s + 4), QuadIndex{0, 2, 4, 6}));
      store_quad(out + q, acc);
    }
  }
  const int64_t step = Stride ? Stride : stride;
  for (; q < Q; ++q) {
    float acc = buf[q * step];
    for (int64_t s = 1; s < kw; ++s) acc = Op::apply(acc, buf[q * step + s]);
    out[q] = acc;
  }
}

// dst[i] = Op(dst[i], src[i]) for i < n (first: dst = src).
template <class Op>
inline void reduce_rows_into(float* dst, const float* src, int64_t n, bool first) {
  if (first) return copy_floats(dst, src, n);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store_quad(dst + i, Op::apply(load_quad(dst + i), load_quad(src + i)));
  for (; i < n; ++i) dst[i] = Op::apply(dst[i], src[i]);
}

// Reduces one plane of rows W floats long to P x Q with Op; `buf` holds reduce_buffer_floats floats.
template <class Op>
void reduce_plane(const float* x, int64_t W, const std::vector<Window>& rows, const std::vector<Window>& cols,
                  int64_t kw, int64_t stride_w, int64_t pad_left, float* y, float* buf) {
  const int64_t P = static_cast<int64_t>(rows.size()), Q = static_cast<int64_t>(cols.size());
  const bool padded = pads_row(W, Q, kw, stride_w, pad_left);
  float* const row = padded ? buf + pad_left : buf;
  if (padded) {
    std::fill(buf, row, Op::identity());
    std::fill(row + W, buf + reduce_buffer_floats(W, Q, kw, stride_w, pad_left), Op::identity());
  }
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t ih = rows[p].begin; ih < rows[p].end; ++ih) reduce_rows_into<Op>(row, x + ih * W, W, ih == rows[p].begin);
    float* out = y + p * Q;
    if (!padded) {
      for (int64_t q = 0; q < Q; ++q) {
        float acc = Op::identity();
        for (int64_t iw = cols[q].begin; iw < cols[q].end; ++iw) acc = Op::apply(acc, row[iw]);
        out[q] = acc;
      }
    } else if (stride_w == 1) {
      reduce_windows<Op, 1>(buf, Q, kw, 1, out);
    } else if (stride_w == 2) {
      reduce_windows<Op, 2>(buf, Q, kw, 2, out);
    } else {
      reduce_windows<Op, 0>(buf, Q, kw, stride_w, out);
    }
  }
}

}  // namespace pyconvx::detail
