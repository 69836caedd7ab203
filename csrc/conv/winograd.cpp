// Winograd convolution F(4x4, 3x3) and F(2x2, 5x5) (Lavin and Gray, "Fast algorithms for
// convolutional neural networks", 2016): each m x m block of outputs comes from a 6x6 input tile
// d and an r x r filter g (m + r = 7) as
//   Y = A^T [ (G g G^T) . (B^T d B) ] A,
// 36 multiplications per tile and channel pair instead of 144 (3x3) or 100 (5x5). Summed over
// input channels, the elementwise products become 36 independent GEMMs, M_xi (K x tiles) = U_xi
// (K x C) V_xi (C x tiles), run on the blocked GEMM. The matrices use the interpolation points 0,
// +-1, +-2 and infinity, the usual choice for six points: small integer points keep the
// transforms' rounding error near float32 precision (the tests bound it against a float64
// reference).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "../gemm/gemm_driver.hpp"
#include "algorithms.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

constexpr int kTile = 6, kXi = kTile * kTile;

// The 36 matrices of U, V and M are written or read together, one element of each at a time. At
// strides that are (near) powers of two, such as C * block floats, those 36 streams all map to
// one or two cache sets and evict each other; a cache line of padding between the matrices
// spreads them over the sets.
constexpr int64_t kSkew = 16;

// The variants share the six points and so the input transform B^T; the filter transform G
// (6 x r) and the output transform A^T (m x 6) follow from m and r = 7 - m. G for F(4, 3):
constexpr float kG3[kTile][3] = {{1.0f / 4, 0, 0},
                                 {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                 {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                 {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                 {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                 {0, 0, 1}};
// and for F(2, 5). Row j of either is point j's powers over the product of its differences to the
// other finite points; the point at infinity takes the last tap.
constexpr float kG5[kTile][5] = {{1.0f / 4, 0, 0, 0, 0},
                                 {-1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6},
                                 {-1.0f / 6, 1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6},
                                 {1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3, 2.0f / 3},
                                 {1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3, 2.0f / 3},
                                 {0, 0, 0, 0, 1}};

// F(m x m, r x r) with 6 x 6 tiles: m outputs per tile side from an r-tap filter.
template <int M>
struct Variant {
  static constexpr int kOut = M, kTaps = kTile + 1 - M;
  static_assert(M == 4 || M == 2, "F(4x4, 3x3) and F(2x2, 5x5)");
  static constexpr float g(int i, int j) { return M == 4 ? kG3[i][j] : kG5[i][j]; }
};

// B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
//        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], applied by apply_bt;
// A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]] for
// F(4, 3) and its first two rows with a last column of [0, 1] for F(2, 5), applied by apply_at.

// The transforms run on four tiles (or filters) at once, one per vector lane: every step of a
// transform is the same for all of them, so a lane-wise vector type (quad.hpp) turns each scalar
// operation into one SIMD operation.
constexpr int kLanes = 4;
typedef Quad Lanes;

inline void load_lanes(Lanes& v, const float* p) { v = load_quad(p); }
inline void store_lanes(float* p, const Lanes& v) { store_quad(p, v); }

// u = G g G^T (6 x 6) for four r x r filters g[0 .. r * r) (lane l holds filter l).
template <class V>
void transform_filters(const Lanes* g, Lanes* u) {
  constexpr int R = V::kTaps;
  Lanes t[kTile][R];
  for (int i = 0; i < kTile; ++i)
    for (int j = 0; j < R; ++j) {
      Lanes sum = Lanes{};
      for (int e = 0; e < R; ++e) sum += V::g(i, e) * g[e * R + j];
      t[i][j] = sum;
    }
  for (int i = 0; i < kTile; ++i)
    for (int j = 0; j < kTile; ++j) {
      Lanes sum = Lanes{};
      for (int e = 0; e < R; ++e) sum += t[i][e] * V::g(j, e);
      u[i * kTile + j] = sum;
    }
}

// B^T times a 6-vector taken with stride `step` (B^T is mostly zeros; written out, a column takes
// 12 additions and 8 scalings instead of 36 multiply-adds).
inline void apply_bt(const Lanes* d, int step, Lanes* out, int out_step) {
  const Lanes d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step], d5 = d[5 * step];
  out[0] = 4.0f * d0 - 5.0f * d2 + d4;
  out[out_step] = -4.0f * (d1 + d2) + d3 + d4;
  out[2 * out_step] = 4.0f * (d1 - d2) - d3 + d4;
  out[3 * out_step] = 2.0f * (d3 - d1) - d2 + d4;
  out[4 * out_step] = 2.0f * (d1 - d3) - d2 + d4;
  out[5 * out_step] = 4.0f * d1 - 5.0f * d3 + d5;
}

// v = B^T d B (6 x 6) for four input tiles: B^T on the columns, then on the rows.
void transform_inputs(const Lanes* d, Lanes* v) {
  Lanes t[kXi];
  for (int j = 0; j < kTile; ++j) apply_bt(d + j, kTile, t + j, kTile);
  for (int i = 0; i < kTile; ++i) apply_bt(t + i * kTile, 1, v + i * kTile, 1);
}

// A^T (m x 6) times a 6-vector taken with stride `step`, written out like apply_bt.
template <int M>
inline void apply_at(const Lanes* m, int step, Lanes* out, int out_step) {
  const Lanes m0 = m[0], m1 = m[step], m2 = m[2 * step], m3 = m[3 * step], m4 = m[4 * step], m5 = m[5 * step];
  const Lanes sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4;
  out[0] = m0 + sum12 + sum34;
  if (M == 2) {
    out[out_step] = diff12 + 2.0f * diff34 + m5;
    return;
  }
  out[out_step] = diff12 + 2.0f * diff34;
  out[2 * out_step] = sum12 + 4.0f * sum34;
  out[3 * out_step] = diff12 + 8.0f * diff34 + m5;
}

// y = A^T m A (m x m) for four tiles of GEMM results.
template <class V>
void transform_outputs(const Lanes* m, Lanes* y) {
  constexpr int M = V::kOut;
  Lanes t[M * kTile];
  for (int j = 0; j < kTile; ++j) apply_at<M>(m + j, kTile, t + j, kTile);
  for (int i = 0; i < M; ++i) apply_at<M>(t + i * kTile, 1, y + i * M, 1);
}

// d[i * 6 + j] (lane l) = row i, column j of the 6 x 6 input tile of lane l, whose row i starts at
// src[l] + i * ld[l] and may be read 8 floats wide. Row by row: two vector loads per tile, then
// two transposes turn the tiles' rows into the lanes' columns, with no scalar stores that a
// vector load would have to wait for.
inline void gather_tiles(const float* const* src, const int64_t* ld, Lanes* d) {
  for (int i = 0; i < kTile; ++i) {
    Lanes left[kLanes], right[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      load_lanes(left[l], src[l] + i * ld[l]);
      load_lanes(right[l], src[l] + i * ld[l] + kLanes);
    }
    transpose_quads(left);
    transpose_quads(right);
    for (int j = 0; j < kLanes; ++j) d[i * kTile + j] = left[j];
    for (int j = kLanes; j < kTile; ++j) d[i * kTile + j] = right[j - kLanes];
  }
}

// Where tile t (numbered over the batch, row-major within an image) lies; tiles are `out`
// outputs apart.
struct TileGrid {
  int64_t per_image, tiles_w, out;
  void locate(int64_t t, int64_t* n, int64_t* row, int64_t* col) const {
    *n = t / per_image;
    *row = t % per_image / tiles_w * out;
    *col = t % per_image % tiles_w * out;
  }
};

// The sizes of one call's buffers, and how the tiles are shared out. Tiles go through in blocks:
// transform a block's inputs, run the 36 GEMMs on it, transform its outputs. The GEMMs stream all
// of U (36 * K * C floats) for block / 2 flops per byte of it.
// - Where U fits in a quarter of L3 (8 MiB; up to about 256 channels in and out), each thread
//   takes blocks of its own from start to end, sized so that their transformed inputs and GEMM
//   results (36 * (C + K) floats a tile) stay in the thread's L2 (half of its 512 KiB): the three
//   phases hand their data over in cache, and U comes from L3 (VGG conv1_2: 34 vs 64 ms with
//   blocks shared as below).
// - Where U is larger (36 MiB for 512 channels), it comes from memory, and only large blocks
//   amortise it: one block at a time of as many tiles as fit in 16 MiB, shared by all threads
//   phase by phase (inputs by channel, GEMMs by position, outputs by filter). ResNet's stage 5
//   has 128 tiles in all: one block, U read once (31 vs 43 ms with per-thread blocks).
// U and V and M stay within 44 MiB in all: the workspace bound of 64 MiB then leaves room for a
// backward pass's own buffers beside them. Rows of V and M are whole vectors of lanes long, so
// the transforms load and store full vectors.
struct WinogradPlan {
  TileGrid grid;
  bool shared;  // blocks shared by all threads, one at a time (else one thread's each)
  int64_t tiles, block, k_padded, a_stride, v_stride, m_stride;

  WinogradPlan(const GemmKernel& kernel, const Conv2dProblem& pr, int threads, int out) {
    constexpr int64_t kMiB = int64_t{1} << 18;  // floats
    const int64_t C = pr.x.c, K = pr.k(), nr = kernel.nr;
    grid = TileGrid{ceil_div(pr.p, out) * ceil_div(pr.q, out), ceil_div(pr.q, out), out};
    tiles = pr.x.n * grid.per_image;
    const int64_t per_tile = kXi * (C + K), u = kXi * C * K;
    shared = u > 8 * kMiB;
    if (shared) {
      const int64_t budget = std::max(4 * kMiB, std::min(16 * kMiB, 44 * kMiB - u));
      block = std::min(round_up(tiles, kLanes), std::max<int64_t>(kLanes, budget / per_tile / kLanes * kLanes));
    } else {
      const int64_t fit = kMiB / 4 / per_tile / nr * nr;
      const int64_t spread = round_up(ceil_div(tiles, 3 * threads), nr);
      const int64_t cap = (44 * kMiB - u) / threads / per_tile / nr * nr;
      block = std::max(nr, std::min(cap, std::min(fit, spread)));
    }
    k_padded = round_up(K, kernel.mr);
    a_stride = packed_a_size(kernel, K, C) + kSkew;
    v_stride = C * block + kSkew;
    m_stride = K * block + kSkew;
  }
  int64_t u_floats() const { return kXi * a_stride; }
  int64_t vm_floats() const { return kXi * (v_stride + m_stride); }
  // V and M buffers in use at once.
  int64_t vm_buffers(int threads) const { return shared ? 1 : threads; }
};

}  // namespace

int64_t winograd_workspace_bytes(const Conv2dProblem& pr) {
  const GemmKernel& kernel = active_gemm_kernel();
  const int threads = conv_threads(pr);
  const WinogradPlan plan(kernel, pr, threads, pr.r() == 5 ? 2 : 4);
  return scratch_bytes(plan.u_floats()) + plan.vm_buffers(threads) * scratch_bytes(plan.vm_floats()) +
         threads * scratch_bytes(b_panel_floats(kernel, pr.x.c, pr.k(), plan.block));
}

namespace {

template <class V>
void conv2d_winograd(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                     Activation activation) {
  constexpr int kOut = V::kOut, kTaps = V::kTaps, kFilter = kTaps * kTaps;
  const GemmKernel& kernel = active_gemm_kernel();
  const int64_t C = pr.x.c, K = pr.k(), H = pr.x.h, W = pr.x.w, P = pr.p, Q = pr.q;
  const int64_t pad_top = pr.params.pad_top, pad_left = pr.params.pad_left;
  const int threads = conv_threads(pr);
  const int mr = kernel.mr;
  const WinogradPlan plan(kernel, pr, threads, kOut);
  const TileGrid grid = plan.grid;
  const int64_t tiles = plan.tiles, block = plan.block, k_padded = plan.k_padded;
  const int64_t a_stride = plan.a_stride, v_stride = plan.v_stride, m_stride = plan.m_stride;

  // The calling thread's scratch slot 2 holds U for the whole call, kept from call to call so
  // that its tens of MiB are not faulted in afresh each time. V and M take slot 1: the calling
  // thread's for blocks shared by all threads, each thread's own otherwise. The GEMM's B panels
  // take slot 0.
  float* const u = thread_scratch(2, plan.u_floats());
  float* const shared_v = plan.shared ? thread_scratch(1, plan.vm_floats()) : nullptr;
  float* const shared_m = plan.shared ? shared_v + kXi * v_stride : nullptr;

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(threads)
  {
    // U_xi = G g G^T for the 36 positions, written straight into the GEMM's packed-A layout: for
    // each sliver of MR filters, channel by channel, the MR values of one position are adjacent,
    // so each of the 36 matrices is written front to back. Filters past K are zero.
#pragma omp for schedule(static)
    for (int64_t k0 = 0; k0 < k_padded; k0 += mr)
      for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
        const int64_t lanes = std::min<int64_t>(kLanes, C - c0);
        for (int64_t kk = 0; kk < mr; ++kk) {
          alignas(16) float g[kFilter][kLanes] = {};
          if (k0 + kk < K)
            for (int64_t l = 0; l < lanes; ++l)
              for (int e = 0; e < kFilter; ++e) g[e][l] = weight[((k0 + kk) * C + c0 + l) * kFilter + e];
          Lanes gl[kFilter], ul[kXi];
          for (int e = 0; e < kFilter; ++e) load_lanes(gl[e], g[e]);
          transform_filters<V>(gl, ul);
          for (int xi = 0; xi < kXi; ++xi) {
            float* dst = u + xi * a_stride + packed_a_index(kernel, k_padded, C, k0 + kk, c0);
            for (int64_t l = 0; l < lanes; ++l) dst[l * mr] = ul[xi][l];
          }
        }
      }
    std::vector<PackedA> a(kXi);
    for (int xi = 0; xi < kXi; ++xi) a[xi] = PackedA{u + xi * a_stride, K, C, k_padded};

    // Transform the inputs of block [t0, t0 + count) for channels [c_begin, c_end) into V, four
    // tiles at a time: each of the 36 rows of V a channel writes is filled front to back, and
    // the tiles read neighbouring parts of one plane.
    auto transform_block_inputs = [&](int64_t t0, int64_t count, float* v, int64_t c_begin, int64_t c_end) {
      const int64_t ld = round_up(count, kLanes);
      for (int64_t c = c_begin; c < c_end; ++c)
        for (int64_t t = 0; t < count; t += kLanes) {
          // Each lane reads its tile in place when the tile, 8 columns wide, lies inside the
          // plane, else from a zero-padded copy; lanes past the block repeat its last tile.
          alignas(16) float padded[kLanes][kTile * 2 * kLanes];
          const float* src[kLanes];
          int64_t row_stride[kLanes];
          for (int l = 0; l < kLanes; ++l) {
            int64_t n, ih0, iw0;
            grid.locate(t0 + std::min(t + l, count - 1), &n, &ih0, &iw0);
            ih0 -= pad_top;
            iw0 -= pad_left;
            const float* plane = x + (n * C + c) * H * W;
            if (ih0 >= 0 && iw0 >= 0 && ih0 + kTile <= H && iw0 + 2 * kLanes <= W) {
              src[l] = plane + ih0 * W + iw0;
              row_stride[l] = W;
              continue;
            }
            for (int i = 0; i < kTile; ++i)
              for (int j = 0; j < 2 * kLanes; ++j) {
                const int64_t ih = ih0 + i, iw = iw0 + j;
                padded[l][i * 2 * kLanes + j] =
                    j < kTile && ih >= 0 && ih < H && iw >= 0 && iw < W ? plane[ih * W + iw] : 0.0f;
              }
            src[l] = padded[l];
            row_stride[l] = 2 * kLanes;
          }
          Lanes dl[kXi], vl[kXi];
          gather_tiles(src, row_stride, dl);
          transform_inputs(dl, vl);
          for (int xi = 0; xi < kXi; ++xi) store_lanes(v + xi * v_stride + c * ld + t, vl[xi]);
        }
    };
    // M_xi = U_xi V_xi for one position xi.
    auto multiply = [&](int64_t count, const float* v, float* m, int xi) {
      const int64_t ld = round_up(count, kLanes);
      gemm_blocked(kernel, a[xi], MatrixPanelSource(MatrixView{v + xi * v_stride, ld, 1}), 0, K, 0, count,
                   m + xi * m_stride, ld, false, Epilogue{});
    };
    // Transform the GEMM results of the block for filters [k_begin, k_end) into y, adding the
    // bias and applying the activation; filter by filter, four tiles at a time, so that M's rows
    // are read front to back.
    auto transform_block_outputs = [&](int64_t t0, int64_t count, const float* m, int64_t k_begin, int64_t k_end) {
      const int64_t ld = round_up(count, kLanes);
      for (int64_t k = k_begin; k < k_end; ++k) {
        const float add = bias ? bias[k] : 0.0f;
        for (int64_t t = 0; t < count; t += kLanes) {
          Lanes ml[kXi], yl[kOut * kOut];
          for (int xi = 0; xi < kXi; ++xi) load_lanes(ml[xi], m + xi * m_stride + k * ld + t);
          transform_outputs<V>(ml, yl);
          for (int xi = 0; xi < kOut * kOut; ++xi) {
            yl[xi] += add;
            if (activation == Activation::relu) yl[xi] = yl[xi] < Lanes{} ? Lanes{} : yl[xi];  // NaN stays
          }
          // Row i of the tiles: lanes become the four tiles' rows (one transpose), each stored
          // whole where the tile lies inside the output, else clipped value by value.
          float* dst[kLanes];
          int64_t rows[kLanes], cols[kLanes];
          const int lanes = static_cast<int>(std::min<int64_t>(kLanes, count - t));
          for (int l = 0; l < lanes; ++l) {
            int64_t n, oh0, ow0;
            grid.locate(t0 + t + l, &n, &oh0, &ow0);
            dst[l] = y + ((n * K + k) * P + oh0) * Q + ow0;
            rows[l] = std::min<int64_t>(kOut, P - oh0);
            cols[l] = std::min<int64_t>(kOut, Q - ow0);
          }
          for (int i = 0; i < kOut; ++i) {
            Lanes rows_of[kLanes] = {};
            for (int j = 0; j < kOut; ++j) rows_of[j] = yl[i * kOut + j];
            transpose_quads(rows_of);
            for (int l = 0; l < lanes; ++l) {
              if (i >= rows[l]) continue;
              if (kOut == kLanes && cols[l] == kOut) {
                store_lanes(dst[l] + i * Q, rows_of[l]);
              } else {
                for (int64_t j = 0; j < cols[l]; ++j) dst[l][i * Q + j] = rows_of[l][j];
              }
            }
          }
        }
      }
    };

    if (plan.shared) {
      for (int64_t t0 = 0; t0 < tiles; t0 += block) {
        const int64_t count = std::min(tiles, t0 + block) - t0;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; ++c) transform_block_inputs(t0, count, shared_v, c, c + 1);
#pragma omp for schedule(dynamic)
        for (int xi = 0; xi < kXi; ++xi) errors.capture([&] { multiply(count, shared_v, shared_m, xi); });
#pragma omp for schedule(static)
        for (int64_t k = 0; k < K; ++k) transform_block_outputs(t0, count, shared_m, k, k + 1);
      }
    } else {
#pragma omp for schedule(dynamic)
      for (int64_t t0 = 0; t0 < tiles; t0 += block)
        errors.capture([&] {
          const int64_t count = std::min(tiles, t0 + block) - t0;
          float* const v = thread_scratch(1, plan.vm_floats());
          float* const m = v + kXi * v_stride;
          transform_block_inputs(t0, count, v, 0, C);
          for (int xi = 0; xi < kXi; ++xi) multiply(count, v, m, xi);
          transform_block_outputs(t0, count, m, 0, K);
        });
    }
  }
  errors.rethrow();
}

}  // namespace

void conv2d_winograd_f4x3(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                          Activation activation) {
  conv2d_winograd<Variant<4>>(pr, x, weight, bias, y, activation);
}

void conv2d_winograd_f2x5(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                          Activation activation) {
  conv2d_winograd<Variant<2>>(pr, x, weight, bias, y, activation);
}

}  // namespace pyconvx::detail
