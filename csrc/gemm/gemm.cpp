// The blocked SGEMM driver and the public sgemm().
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../core/copy.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "gemm_driver.hpp"
#include "pyconvx/gemm.hpp"
#include "pyconvx/runtime.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx {
namespace detail {

int64_t packed_a_size(const GemmKernel& kernel, int64_t m, int64_t k) { return round_up(m, kernel.mr) * k; }

PackedA pack_a(const GemmKernel& kernel, MatrixView a, int64_t m, int64_t k, float* dst, int64_t slice, int threads) {
  const int mr = kernel.mr;
  if (slice <= 0) slice = kernel.kc;
  PackedA packed{dst, m, k, round_up(m, mr)};
  const int64_t slivers = packed.m_padded / mr;
  for (int64_t k0 = 0; k0 < k; k0 += slice) {
    const int64_t kc = std::min(slice, k - k0);
    detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t sliver = 0; sliver < slivers; ++sliver) {
      const int64_t i0 = sliver * mr;
      float* out = dst + k0 * packed.m_padded + i0 * kc;
      const int64_t rows = std::min<int64_t>(mr, m - i0);
      const float* first = a.data + i0 * a.rs + k0 * a.cs;
      if (a.cs == 1) {  // rows of A contiguous (a weight, a row-major matrix): transposed in blocks
        interleave_rows(first, a.rs, rows, mr, kc, out);
        continue;
      }
      for (int64_t p = 0; p < kc; ++p) {
        const float* col = first + p * a.cs;
        int64_t i = 0;
        if (a.rs == 1) {  // columns contiguous: each is a run of the sliver
          copy_floats(out, col, rows);
          i = rows;
        }
        for (; i < rows; ++i) out[i] = col[i * a.rs];
        for (; i < mr; ++i) out[i] = 0.0f;
        out += mr;
      }
    }
  }
  return packed;
}

void MatrixPanelSource::pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const {
  // Rows of B are far apart (a 1x1 convolution's B is the image: one channel per row), so each
  // row is visited once per group of 8 slivers and 8 * nr contiguous floats are read at a time:
  // 8 cache misses in flight per row instead of one when going sliver by sliver.
  constexpr int64_t kGroup = 8;
  const int64_t slivers = ceil_div(nc, nr);
  for (int64_t s0 = 0; s0 < slivers; s0 += kGroup) {
    const int64_t s1 = std::min(slivers, s0 + kGroup);
    for (int64_t p = 0; p < kc; ++p) {
      const float* row = b_.data + (k0 + p) * b_.rs + n0 * b_.cs;
      for (int64_t sl = s0; sl < s1; ++sl) {
        float* out = dst + sl * kc * nr + p * nr;
        const int64_t j0 = sl * nr, cols = std::min<int64_t>(nr, nc - j0);
        int64_t j = 0;
        if (b_.cs == 1) {
          copy_floats(out, row + j0, cols);
          j = cols;
        } else {
          for (; j < cols; ++j) out[j] = row[(j0 + j) * b_.cs];
        }
        for (; j < nr; ++j) out[j] = 0.0f;
      }
    }
  }
}

void PackedPanelSource::pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const {
  copy_floats(dst, panel(k0, kc, n0, nc, nr, dst), ceil_div(nc, nr) * nr * kc);
}

namespace {

// Applies the activations the micro-kernel does not (all but ReLU and ReLU6, register_clamp) to
// a stored block of C, a row of the block per call.
void activate_block(Activation act, float* c, int64_t ldc, int64_t rows, int64_t cols) {
  if (act == Activation::none || register_clamp(act)) return;
  const Pointwise pointwise = active_pointwise();
  for (int64_t i = 0; i < rows; ++i) pointwise(c + i * ldc, c + i * ldc, nullptr, cols, 1.0f, 0.0f, act);
}

// The bias and the register clamp of a tile that overhangs C, stored through the edge buffer.
void apply_epilogue(const Epilogue& e, float* c, int64_t ldc, int64_t row0, int64_t rows, int64_t cols) {
  const float* clamp = register_clamp(e.activation);
  for (int64_t i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    const float add = e.bias ? e.bias[row0 + i] : 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = ci[j] + add;
      ci[j] = clamp ? (v < clamp[0] ? clamp[0] : v > clamp[1] ? clamp[1] : v) : v;  // NaN stays NaN
    }
  }
}

// A B panel is reused by every MC block of A. With a single block (a few filters, as in a 1x1
// convolution reducing channels) it is used once, straight after packing: a panel of at most
// 256 KiB (half of L2) is then still in L2 when the micro-kernels read it, where an NC-wide one
// (2 MiB) would have gone out to L3 and back.
int64_t panel_width(const GemmKernel& kernel, int64_t k, int64_t rows) {
  const int64_t kc_max = std::min(kernel.kc, k), nr = kernel.nr;
  return rows <= kernel.mc ? std::min(kernel.nc, std::max<int64_t>(4 * nr, (int64_t{1} << 16) / kc_max / nr * nr))
                           : kernel.nc;
}

}  // namespace

int64_t b_panel_floats(const GemmKernel& kernel, int64_t k, int64_t rows, int64_t cols) {
  if (k <= 0) return 0;
  return std::min(kernel.kc, k) * std::min(panel_width(kernel, k, rows), round_up(cols, kernel.nr));
}

void gemm_blocked(const GemmKernel& kernel, const PackedA& a, const BPanelSource& b, int64_t m_begin, int64_t m_end,
                  int64_t n_begin, int64_t n_end, float* c, int64_t ldc, bool accumulate, const Epilogue& epilogue) {
  const int mr = kernel.mr, nr = kernel.nr;
  const int64_t k = a.k;
  if (m_begin >= m_end || n_begin >= n_end) return;
  if (k == 0) {  // an empty reduction: C is zero (or unchanged) before the epilogue
    for (int64_t i = m_begin; i < m_end; ++i)
      if (!accumulate) std::fill(c + i * ldc, c + i * ldc + (n_end - n_begin), 0.0f);
    if (epilogue.active()) apply_epilogue(epilogue, c + m_begin * ldc, ldc, m_begin, m_end - m_begin, n_end - n_begin);
    return;
  }
  const int64_t nc_max = panel_width(kernel, k, m_end - m_begin);
  float* b_panel = thread_scratch(0, b_panel_floats(kernel, k, m_end - m_begin, n_end - n_begin));
  alignas(64) float edge[32 * 32];  // one register tile, for tiles that overhang C

  for (int64_t jc = n_begin; jc < n_end; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n_end - jc);
    for (int64_t pc = 0; pc < k; pc += kernel.kc) {
      const int64_t kc = std::min(kernel.kc, k - pc);
      const bool acc = accumulate || pc > 0;
      const bool last = pc + kc == k;
      const float* const panel = b.panel(pc, kc, jc, nc, nr, b_panel);
      for (int64_t ic = m_begin; ic < m_end; ic += kernel.mc) {
        const int64_t ic_end = std::min(ic + kernel.mc, m_end);
        for (int64_t ir = ic; ir < ic_end; ir += mr) {
          const int64_t rows = std::min<int64_t>(mr, ic_end - ir);
          const float* a_sliver = a.sliver(pc, kc, ir);
          const float* bias = last && epilogue.bias ? epilogue.bias + ir : nullptr;
          const float* clamp = last ? register_clamp(epilogue.activation) : nullptr;
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int64_t cols = std::min<int64_t>(nr, nc - jr);
            const float* b_sliver = panel + jr * kc;
            float* ct = c + ir * ldc + (jc - n_begin) + jr;
            if (rows == mr && cols == nr) {
              kernel.ukernel(kc, a_sliver, b_sliver, ct, ldc, acc, bias, clamp);
            } else {  // an overhanging tile goes through a register-tile buffer
              kernel.ukernel(kc, a_sliver, b_sliver, edge, nr, false, nullptr, nullptr);
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) ct[i * ldc + j] = (acc ? ct[i * ldc + j] : 0.0f) + edge[i * nr + j];
              if (last && epilogue.active()) apply_epilogue(epilogue, ct, ldc, ir, rows, cols);
            }
          }
        }
        // The other activations over the block just finished, a row of it at a time, while it is
        // in cache: one call a row of the panel rather than one a row of each tile.
        if (last) activate_block(epilogue.activation, c + ic * ldc + (jc - n_begin), ldc, ic_end - ic, nc);
      }
    }
  }
}

void gemm_parallel(const GemmKernel& kernel, const PackedA& a, const BPanelSource& b, int64_t n_begin, int64_t n_end,
                   float* c, int64_t ldc, bool accumulate, const Epilogue& epilogue, int threads) {
  const int64_t n = n_end - n_begin, m = a.m;
  if (n <= 0 || m <= 0) return;
  // Columns first: each thread then packs its own part of B and no two threads write the same
  // cache line of C except at a boundary. Rows take the threads that columns cannot keep busy
  // (at least four register tiles of columns per thread).
  int tn = threads;
  while (tn > 1 && ceil_div(n, kernel.nr) < 4 * tn) --tn;
  while (threads % tn != 0) --tn;
  int tm = std::max<int64_t>(1, std::min<int64_t>(threads / tn, ceil_div(m, kernel.mr)));
  if (tm * tn == 1) {
    gemm_blocked(kernel, a, b, 0, m, n_begin, n_end, c, ldc, accumulate, epilogue);
    return;
  }
  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(tm * tn)
  errors.capture([&] {
    const int id = omp_get_thread_num();
    int64_t m0, m1, j0, j1;
    split_range(m, kernel.mr, tm, id / tn, &m0, &m1);
    split_range(n, kernel.nr, tn, id % tn, &j0, &j1);
    gemm_blocked(kernel, a, b, m0, m1, n_begin + j0, n_begin + j1, c + j0, ldc, accumulate, epilogue);
  });
  errors.rethrow();
}

}  // namespace detail

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("sgemm: sizes must be >= 0, got m=" + std::to_string(m) + ", n=" + std::to_string(n) +
                                ", k=" + std::to_string(k));
  const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < std::max<int64_t>(1, a_cols) || ldb < std::max<int64_t>(1, b_cols) || ldc < std::max<int64_t>(1, n))
    throw std::invalid_argument("sgemm: leading dimensions too small: lda=" + std::to_string(lda) +
                                ", ldb=" + std::to_string(ldb) + ", ldc=" + std::to_string(ldc));
  check_data(c, checked_mul(m, n, "sgemm output"), "c", "sgemm");
  if (m == 0 || n == 0) return;
  check_data(a, checked_mul(m, k, "sgemm a"), "a", "sgemm");
  check_data(b, checked_mul(k, n, "sgemm b"), "b", "sgemm");
  const detail::GemmKernel& kernel = detail::active_gemm_kernel();
  // The calling thread's scratch (slot 1: gemm_parallel's threads take only slot 0) keeps the
  // packed A from call to call instead of faulting in fresh pages every time.
  float* packed = detail::thread_scratch(1, detail::packed_a_size(kernel, m, k));
  const detail::MatrixView av = trans_a ? detail::MatrixView{a, 1, lda} : detail::MatrixView{a, lda, 1};
  const detail::MatrixView bv = trans_b ? detail::MatrixView{b, 1, ldb} : detail::MatrixView{b, ldb, 1};
  // A is packed once for the whole product; for large ones (2048^2: 16 MiB read with a stride)
  // the copy is worth sharing among the threads too.
  const int threads = get_num_threads();
  const detail::PackedA pa =
      detail::pack_a(kernel, av, m, k, packed, 0, detail::threads_for(m * k, threads));
  detail::gemm_parallel(kernel, pa, detail::MatrixPanelSource(bv), 0, n, c, ldc, accumulate, detail::Epilogue{},
                        threads);
}

}  // namespace pyconvx
