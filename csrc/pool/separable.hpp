// Separable window reductions for pooling (internal).
//
// A max or a sum over a kh x kw window equals the reduction over kh rows of per-row reductions
// over kw columns. So each input row is first reduced horizontally into Q values (strided reads,
// done once even when windows overlap vertically), then each output row reduces kh of those
// rows elementwise: contiguous, vectorised loads. For a 3x3/s2 window that is 3 + 3 operations
// per output instead of 9 scattered ones.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "window.hpp"

namespace pyconvx::detail {

// max that lets NaN win from either side, so a window holding a NaN yields NaN (torch's value).
struct MaxNan {
  static float identity() { return -INFINITY; }
  static float apply(float acc, float v) { return (v > acc || v != v) ? v : acc; }
};

struct Sum {
  static float identity() { return 0.0f; }
  static float apply(float acc, float v) { return acc + v; }
};

// out[j] = Op over s < kw of base[j * Stride + s], for j < count. Stride is a template argument
// where it is 1 or 2 (every pooling layer of the classic networks): a constant stride lets GCC
// vectorise the loads (two vectors and a shuffle for stride 2); 0 reads `stride` at run time.
template <class Op, int Stride>
inline void reduce_columns(const float* base, int64_t count, int64_t kw, int64_t stride, float* out) {
  const int64_t step = Stride ? Stride : stride;
  for (int64_t j = 0; j < count; ++j) out[j] = base[j * step];
  for (int64_t s = 1; s < kw; ++s)
    for (int64_t j = 0; j < count; ++j) out[j] = Op::apply(out[j], base[j * step + s]);
}

// Reduces one H x W plane to P x Q with Op; `rows_buf` holds H * Q floats.
template <class Op>
void reduce_plane(const float* x, int64_t H, int64_t W, const std::vector<Window>& rows, const std::vector<Window>& cols,
                  int64_t kw, int64_t stride_w, int64_t pad_left, float* y, float* rows_buf) {
  const int64_t P = static_cast<int64_t>(rows.size()), Q = static_cast<int64_t>(cols.size());
  // [q_lo, q_hi): output columns whose window lies wholly inside the row, read without clipping.
  int64_t q_lo = 0, q_hi = Q;
  while (q_lo < Q && q_lo * stride_w - pad_left < 0) ++q_lo;
  while (q_hi > q_lo && (q_hi - 1) * stride_w - pad_left + kw > W) --q_hi;
  for (int64_t ih = 0; ih < H; ++ih) {
    const float* row = x + ih * W;
    float* out = rows_buf + ih * Q;
    for (int64_t q = 0; q < Q; ++q) {
      if (q == q_lo && q_lo < q_hi) {  // the interior: one strided pass per kernel column
        const float* base = row + q_lo * stride_w - pad_left;
        if (stride_w == 1)
          reduce_columns<Op, 1>(base, q_hi - q_lo, kw, 1, out + q_lo);
        else if (stride_w == 2)
          reduce_columns<Op, 2>(base, q_hi - q_lo, kw, 2, out + q_lo);
        else
          reduce_columns<Op, 0>(base, q_hi - q_lo, kw, stride_w, out + q_lo);
        q = q_hi - 1;
        continue;
      }
      float acc = Op::identity();
      for (int64_t iw = cols[q].begin; iw < cols[q].end; ++iw) acc = Op::apply(acc, row[iw]);
      out[q] = acc;
    }
  }
  for (int64_t p = 0; p < P; ++p) {
    float* out = y + p * Q;
    const float* first = rows_buf + rows[p].begin * Q;
    std::copy(first, first + Q, out);
    for (int64_t ih = rows[p].begin + 1; ih < rows[p].end; ++ih) {
      const float* r = rows_buf + ih * Q;
      for (int64_t q = 0; q < Q; ++q) out[q] = Op::apply(out[q], r[q]);
    }
  }
}

}  // namespace pyconvx::detail
