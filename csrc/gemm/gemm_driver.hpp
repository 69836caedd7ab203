// The blocked SGEMM driver shared by sgemm() and the convolutions (internal).
//
// Goto/BLIS structure: loop over NC-wide column panels of B, KC-deep slices of the reduction,
// MC-tall blocks of A, then register tiles: each MR-row sliver of A (KC x MR, 24 KiB on the
// AVX-512 path) stays in L1 while it meets every NR-column sliver of the B panel, which streams
// from L2 or L3: the 12 x 32 tile takes 128 bytes of it per 24 FMAs, which the prefetchers keep
// up with (the micro-kernel alone: 97-100% of the FMA peak with B in L1, 97% with 64 slivers in
// L3). Going the other way round, a B sliver held in L1 against A slivers read from L2, was
// 5-10% slower on Intel's 48 KiB L1 and 2 MiB L2 (2048^2 on one thread: 150 vs 165 GFLOP/s).
// A is packed once for the whole call (it is the convolution weight, reused by every image); B
// panels are packed per thread by a BPanelSource, which lets a convolution pack patches straight
// from the image (implicit GEMM) instead of materialising an im2col matrix.
#pragma once

#include <cstdint>

#include "../core/dispatch.hpp"
#include "../core/workspace.hpp"

namespace pyconvx::detail {

// Element (i, j) of a strided matrix is data[i * rs + j * cs].
struct MatrixView {
  const float* data;
  int64_t rs, cs;
};

// A packed for the whole call: for each KC slice [k0, k0 + kc) a region of m_padded * kc floats
// starting at k0 * m_padded, holding MR-row slivers of kc columns x MR values.
struct PackedA {
  const float* data = nullptr;
  int64_t m = 0, k = 0, m_padded = 0;
  const float* sliver(int64_t k0, int64_t kc, int64_t i0) const { return data + k0 * m_padded + i0 * kc; }
};

int64_t packed_a_size(const GemmKernel& kernel, int64_t m, int64_t k);

// Where element (i, p) of an m x k matrix lands in its packed form (pack_a's layout, KC slices),
// for producers that write packed A directly. m_padded = round_up(m, MR).
inline int64_t packed_a_index(const GemmKernel& kernel, int64_t m_padded, int64_t k, int64_t i, int64_t p) {
  const int64_t k0 = p / kernel.kc * kernel.kc, kc = k - k0 < kernel.kc ? k - k0 : kernel.kc;
  return k0 * m_padded + (i / kernel.mr) * kernel.mr * kc + (p - k0) * kernel.mr + i % kernel.mr;
}
// Packs the m x k matrix `a` into `dst` (packed_a_size floats, 64-byte aligned), in slices of
// `kc` columns (the kernel's KC unless given), on `threads` OpenMP threads.
PackedA pack_a(const GemmKernel& kernel, MatrixView a, int64_t m, int64_t k, float* dst, int64_t kc = 0,
               int threads = 1);

// Supplies B one panel at a time: rows [k0, k0 + kc) x columns [n0, n0 + nc) packed as
// ceil(nc / nr) slivers of kc rows x nr values, zero-padded past the last column.
class BPanelSource {
 public:
  virtual ~BPanelSource() = default;
  virtual void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const = 0;
  // The panel packed into `scratch`, or where it already lies packed.
  virtual const float* panel(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* scratch) const {
    pack(k0, kc, n0, nc, nr, scratch);
    return scratch;
  }
};

// A k x n matrix B held packed once for all of a call's panels, the layout pack_a gives A with
// rows and columns swapped: for each KC slice [k0, k0 + kc) a region of n_padded * kc floats
// starting at k0 * n_padded, holding NR-column slivers of kc rows x NR values (columns past n
// zero). Any panel of whole slivers is then a contiguous part of it. n_padded = round_up(n, NR).
inline int64_t packed_b_index(const GemmKernel& kernel, int64_t n_padded, int64_t k, int64_t row, int64_t col) {
  const int64_t k0 = row / kernel.kc * kernel.kc, kc = k - k0 < kernel.kc ? k - k0 : kernel.kc;
  return k0 * n_padded + (col / kernel.nr) * kernel.nr * kc + (row - k0) * kernel.nr + col % kernel.nr;
}

// B already in that layout (data holds k * n_padded floats): panels are read in place.
class PackedPanelSource final : public BPanelSource {
 public:
  PackedPanelSource(const float* data, int64_t n_padded) : data_(data), n_padded_(n_padded) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override;
  const float* panel(int64_t k0, int64_t kc, int64_t n0, int64_t, int, float*) const override {
    return data_ + k0 * n_padded_ + n0 * kc;
  }

 private:
  const float* data_;
  int64_t n_padded_;
};

// B given as a (strided) matrix.
class MatrixPanelSource final : public BPanelSource {
 public:
  explicit MatrixPanelSource(MatrixView b) : b_(b) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override;

 private:
  MatrixView b_;
};

// What happens to each finished tile of C: add a per-row bias, then the activation: ReLU in the
// micro-kernel's registers, the others over the tile just stored, while it is in L1.
struct Epilogue {
  const float* bias = nullptr;  // indexed by the row of C
  Activation activation = Activation::none;
  bool active() const { return bias != nullptr || activation != Activation::none; }
};

// Computes rows [m_begin, m_end) x columns [n_begin, n_end) of C = A * B (+ C when accumulate) on
// the calling thread. `c` points at C(0, n_begin): C(i, j) is c[i * ldc + (j - n_begin)].
// m_begin must be a multiple of the kernel's MR.
void gemm_blocked(const GemmKernel& kernel, const PackedA& a, const BPanelSource& b, int64_t m_begin, int64_t m_end,
                  int64_t n_begin, int64_t n_end, float* c, int64_t ldc, bool accumulate, const Epilogue& epilogue);

// The floats of the B panel gemm_blocked packs into the calling thread's scratch slot 0 for `rows`
// rows of A, `cols` columns of B and a reduction of k (at most that for fewer rows or columns).
int64_t b_panel_floats(const GemmKernel& kernel, int64_t k, int64_t rows, int64_t cols);

// The same over all rows and columns [n_begin, n_end), split over `threads` OpenMP threads in a
// grid chosen from the shape (columns first: each thread then packs a disjoint part of B).
void gemm_parallel(const GemmKernel& kernel, const PackedA& a, const BPanelSource& b, int64_t n_begin, int64_t n_end,
                   float* c, int64_t ldc, bool accumulate, const Epilogue& epilogue, int threads);

}  // namespace pyconvx::detail
