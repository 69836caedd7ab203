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
#include <cstring>
#include <vector>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "../gemm/gemm_driver.hpp"
#include "../nn/pointwise_impl.hpp"
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
// (6 x r) and the output transform A^T (m x 6) follow from m and r = 7 - m. Row j of G is point
// j's powers over the product of its differences to the other finite points; the point at
// infinity takes the last tap. For F(4, 3)
//   G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6],
//        [1/24, -1/12, 1/6], [0, 0, 1]],
// and for F(2, 5) the same points' rows over five taps, [1/4, 0, 0, 0, 0], [-1/6] * 5,
// [-1/6, 1/6, -1/6, 1/6, -1/6], [1/24, 1/12, 1/6, 1/3, 2/3], [1/24, -1/12, 1/6, -1/3, 2/3],
// [0, 0, 0, 0, 1]; both applied by apply_g.

// F(m x m, r x r) with 6 x 6 tiles: m outputs per tile side from an r-tap filter.
template <int M>
struct Variant {
  static constexpr int kOut = M, kTaps = kTile + 1 - M;
  static_assert(M == 4 || M == 2, "F(4x4, 3x3) and F(2x2, 5x5)");
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

// The first n of v's lanes (n <= 4), stored one by one. Written as a loop, GCC made it a call to
// memcpy for each row of a clipped tile (every output row of F(2x2, 5x5), whose tiles are 2
// wide, and every second column of tiles on ResNet stage 5's 7 x 7 maps): 4-7% of that layer's
// profile, for copies of 4 to 12 bytes.
inline void store_first_lanes(float* p, const Lanes& v, int64_t n) {
  if (n > 0) p[0] = v[0];
  if (n > 1) p[1] = v[1];
  if (n > 2) p[2] = v[2];
  if (n > 3) p[3] = v[3];
}

// The first n of p's floats (n <= 4) in the first lanes, zeros after: the residual under a clipped
// tile row.
inline Lanes load_first_lanes(const float* p, int64_t n) {
  return Lanes{n > 0 ? p[0] : 0.0f, n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, n > 3 ? p[3] : 0.0f};
}

// G (6 x r) times an r-vector taken with stride `step`, written out: the points' symmetry pairs
// the rows for +-1 and +-2, which share the sums of the even and the odd taps (8 multiplications
// instead of 18 for r = 3, 12 instead of 30 for r = 5).
template <int R>
inline void apply_g(const Lanes* g, int step, Lanes* out, int out_step) {
  static_assert(R == 3 || R == 5, "F(4x4, 3x3) and F(2x2, 5x5)");
  const Lanes g0 = g[0], g1 = g[step], g2 = g[2 * step];
  Lanes even, odd, even_2, odd_2, last;  // even and odd taps summed for the rows at +-1, weighted for +-2
  if constexpr (R == 3) {
    even = g0 + g2;
    odd = g1;
    even_2 = (1.0f / 24) * g0 + (1.0f / 6) * g2;
    odd_2 = (1.0f / 12) * g1;
    last = g2;
  } else {
    const Lanes g3 = g[3 * step], g4 = g[4 * step];
    even = g0 + g2 + g4;
    odd = g1 + g3;
    even_2 = (1.0f / 24) * g0 + (1.0f / 6) * g2 + (2.0f / 3) * g4;
    odd_2 = (1.0f / 12) * g1 + (1.0f / 3) * g3;
    last = g4;
  }
  out[0] = (1.0f / 4) * g0;
  out[out_step] = (-1.0f / 6) * (even + odd);
  out[2 * out_step] = (-1.0f / 6) * (even - odd);
  out[3 * out_step] = even_2 + odd_2;
  out[4 * out_step] = even_2 - odd_2;
  out[5 * out_step] = last;
}

// u = G g G^T (6 x 6) for four r x r filters g[0 .. r * r) (lane l holds filter l): G on the
// columns, then on the rows.
template <class V>
void transform_filters(const Lanes* g, Lanes* u) {
  constexpr int R = V::kTaps;
  Lanes t[kTile * R];
  for (int j = 0; j < R; ++j) apply_g<R>(g + j, R, t + j, R);
  for (int i = 0; i < kTile; ++i) apply_g<R>(t + i * R, 1, u + i * kTile, 1);
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

// The image of a tile and the output row and column of its top left corner.
struct TilePlace {
  int64_t n, row, col;
};

// Where tile t (numbered over the batch, row-major within an image) lies; tiles are `out`
// outputs apart.
struct TileGrid {
  int64_t per_image, tiles_w, out;
  TilePlace locate(int64_t t) const {
    return {t / per_image, t % per_image / tiles_w * out, t % per_image % tiles_w * out};
  }
  // The places of tiles [t0, t0 + count), worked out once for all the channels or filters that
  // go through a block (three divisions a tile, every channel, took a tenth of a layer's time).
  void locate_block(int64_t t0, int64_t count, std::vector<TilePlace>* places) const {
    places->resize(count);
    for (int64_t t = 0; t < count; ++t) (*places)[t] = locate(t0 + t);
  }
};

// The sizes of one call's buffers, and how the work is shared out. Tiles go through in blocks:
// transform a block's inputs, run the 36 GEMMs on it, transform its outputs. The GEMMs stream U
// (36 * K * C floats) for block / 2 flops per byte of it.
// - Where U fits in a quarter of L3 (8 MiB; up to about 256 channels in and out), U is made once
//   and each thread takes blocks of its own from start to end, sized so that their transformed
//   inputs and GEMM results (36 * (C + K) floats a tile) stay in the thread's L2 (half of its
//   512 KiB): the three phases hand their data over in cache, and U comes from L3 (VGG conv1_2:
//   34 vs 64 ms with blocks shared as below).
// - Where U is larger (36 MiB for 512 channels in and out), made whole it would go out to memory
//   and come back once per block of tiles. There, all threads share one block of tiles at a time
//   (as many as fit in 16 MiB: ResNet's stage 5 has 128 tiles in all, one block) and go through
//   its filters in blocks whose U takes at most 8 MiB: transform those filters, run the 36
//   GEMMs on them, transform their outputs, each phase split among the threads (filters by
//   sliver, GEMMs by position, outputs by filter). U is then made and used in cache (VGG
//   conv5_2, 512 -> 512 on 14x14, two threads: 15.6 -> 12.2 ms against U made whole and read
//   from memory for each of three blocks of tiles; its GEMMs 8.9 -> 6.6 ms). With more tiles
//   than one block holds, U is made whole after all where it fits (below 36 MiB) and comes
//   from L3 for each block of tiles, rather than transformed again for each.
// U and V and M stay within 44 MiB in all: the workspace bound of 64 MiB then leaves room for a
// backward pass's own buffers beside them. V is held in the GEMM's packed-B layout, and M's
// rows are whole vectors of lanes long, so the transforms load and store full vectors.
struct WinogradPlan {
  TileGrid grid;
  bool shared;     // blocks of tiles shared by all threads, one at a time (else one thread's each)
  int64_t tiles, block;  // tiles in all, and in a block
  int64_t k_block;       // filters per U: K, or fewer where blocks are shared
  int64_t a_stride, v_stride, m_stride;

  WinogradPlan(const GemmKernel& kernel, const Conv2dProblem& pr, int threads, int out) {
    constexpr int64_t kMiB = int64_t{1} << 18;  // floats
    const int64_t C = pr.x.c, K = pr.k(), nr = kernel.nr, mr = kernel.mr;
    grid = TileGrid{ceil_div(pr.p, out) * ceil_div(pr.q, out), ceil_div(pr.q, out), out};
    tiles = pr.x.n * grid.per_image;
    const int64_t u = kXi * C * K;
    shared = u > 8 * kMiB;
    if (shared) {
      // Filter blocks of equal size, whole slivers, U at most 8 MiB.
      const int64_t most = std::max<int64_t>(mr, 8 * kMiB / (kXi * C) / mr * mr);
      const int64_t count = ceil_div(K, most);
      k_block = std::min(round_up(ceil_div(K, count), mr), round_up(K, mr));
      // Blocks of filters pay when all tiles go through at once, each filter then transformed
      // once; with several blocks of tiles U made whole once and read from L3 for each does
      // better (VGG conv3_2, 256 -> 256 on 56x56: 36 vs 41 ms), where it fits.
      if (round_up(tiles, kLanes) * kXi * (C + k_block) > 16 * kMiB && u <= 36 * kMiB) k_block = K;
      const int64_t budget = k_block == K ? std::max(4 * kMiB, std::min(16 * kMiB, 44 * kMiB - u)) : 16 * kMiB;
      const int64_t per_tile = kXi * (C + k_block);
      block = std::min(round_up(tiles, kLanes), std::max<int64_t>(kLanes, budget / per_tile / kLanes * kLanes));
    } else {
      k_block = K;
      const int64_t per_tile = kXi * (C + K);
      const int64_t fit = kMiB / 4 / per_tile / nr * nr;
      const int64_t spread = round_up(ceil_div(tiles, 3 * threads), nr);
      const int64_t cap = (44 * kMiB - u) / threads / per_tile / nr * nr;
      block = std::max(nr, std::min(cap, std::min(fit, spread)));
    }
    a_stride = packed_a_size(kernel, k_block, C) + kSkew;
    v_stride = C * round_up(block, nr) + kSkew;
    m_stride = k_block * block + kSkew;
  }
  int64_t u_floats() const { return kXi * a_stride; }
  int64_t vm_floats() const { return kXi * (v_stride + m_stride); }
  // V and M buffers in use at once.
  int64_t vm_buffers(int threads) const { return shared ? 1 : threads; }
};

}  // namespace

int64_t winograd_workspace_bytes(const Conv2dProblem& pr) {
  const GemmKernel& kernel = gemm_kernel_for(pr.k());
  const int threads = conv_threads(pr);
  const WinogradPlan plan(kernel, pr, threads, pr.r() == 5 ? 2 : 4);
  return scratch_bytes(plan.u_floats()) + plan.vm_buffers(threads) * scratch_bytes(plan.vm_floats()) +
         threads * scratch_bytes(b_panel_floats(kernel, pr.x.c, plan.k_block, plan.block));
}

namespace {

// U_xi = G g G^T for the 36 positions of the filters [k_first, k_first + k_count), sliver
// [k0, k0 + MR) of them, written straight into the GEMM's packed-A layout of a k_count x C
// matrix: for each sliver, channel by channel, the MR values of one position are adjacent.
// Four channels at a time, one per lane, for each of the sliver's filters; then for each
// position, transposes turn the lanes into the filters of each channel, and the sliver's
// 4 x MR values of the position, contiguous, are stored in order (vector loads built from
// scattered stores, and stores spread over 36 half-written lines, took 90% of the time).
// Filters past K are zero. (KC is a multiple of four, so the four channels lie in one KC
// slice, MR floats apart.)
template <class V>
void transform_filters_sliver(const GemmKernel& kernel, const float* weight, int64_t C, int64_t K, int64_t a_stride,
                              int64_t k_first, int64_t k_count, int64_t k0, float* u_block) {
  constexpr int kTaps = V::kTaps, kFilter = kTaps * kTaps;
  const int mr = kernel.mr;
  constexpr int kMaxMr = 16;  // MR is 12 at most on every path
  const int64_t padded = round_up(k_count, mr);
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const int64_t lanes = std::min<int64_t>(kLanes, C - c0);
    Lanes ul[kMaxMr][kXi];
    for (int f = 0; f < mr; ++f) {
      const int64_t k = k_first + k0 + f;
      Lanes gl[kFilter] = {};
      if (k0 + f < k_count && k < K) {
        const float* g = weight + (k * C + c0) * kFilter;
        // A sliver's filters lie C * R * S floats apart: MR streams, more than the hardware
        // prefetchers follow, whose loads stalled a quarter of this transform. Each requests
        // its channels four groups ahead (VGG conv5_2 forward 1.11-1.20x -> 1.18-1.30x
        // torch, ResNet stage 5 1.00-1.07x -> 1.05-1.20x, in six alternated runs each).
        for (int at = 0; at < kLanes * kFilter; at += 16) __builtin_prefetch(g + 4 * kLanes * kFilter + at);
        for (int e = 0; e < kFilter; ++e)
          gl[e] = lanes == kLanes ? Lanes{g[e], g[kFilter + e], g[2 * kFilter + e], g[3 * kFilter + e]}
                                  : Lanes{g[e], lanes > 1 ? g[kFilter + e] : 0.0f,
                                          lanes > 2 ? g[2 * kFilter + e] : 0.0f, 0.0f};
      }
      transform_filters<V>(gl, ul[f]);
    }
    for (int xi = 0; xi < kXi; ++xi) {
      float* dst = u_block + xi * a_stride + packed_a_index(kernel, padded, C, k0, c0);
      // The 36 positions are 36 streams of stores, more than the hardware prefetchers
      // follow: each line of U was fetched only when stored to, and the full store buffer
      // stalled the transform. Each stream requests its lines four channel groups ahead.
      for (int64_t at = 0; at < kLanes * mr; at += 16) __builtin_prefetch(dst + 4 * kLanes * mr + at, 1, 3);
      for (int f0 = 0; f0 < mr; f0 += kLanes) {
        const int filters = std::min(kLanes, mr - f0);
        Lanes by_channel[kLanes] = {};
        for (int f = 0; f < filters; ++f) by_channel[f] = ul[f0 + f][xi];
        transpose_quads(by_channel);
        for (int64_t l = 0; l < lanes; ++l) {
          if (filters == kLanes)
            store_lanes(dst + l * mr + f0, by_channel[l]);
          else
            std::memcpy(dst + l * mr + f0, &by_channel[l], filters * sizeof(float));
        }
      }
    }
  }
}

// U for all K filters, the slivers shared out among `threads` threads.
template <class V>
void transform_all_filters(const GemmKernel& kernel, const float* weight, int64_t C, int64_t K, int64_t a_stride,
                           float* u, int threads) {
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads)
  for (int64_t k0 = 0; k0 < K; k0 += kernel.mr) transform_filters_sliver<V>(kernel, weight, C, K, a_stride, 0, K, k0, u);
}

template <class V>
void winograd(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x, const ConvOutput& out) {
  constexpr int kOut = V::kOut;
  const GemmKernel& kernel = *prepared.kernel;
  const float* const weight = prepared.weights;
  const float* const bias = prepared.bias;
  const int64_t C = pr.x.c, K = pr.k(), H = pr.x.h, W = pr.x.w, P = pr.p, Q = pr.q;
  const int64_t pad_top = pr.params.pad_top, pad_left = pr.params.pad_left;
  const int threads = conv_threads(pr);
  const int mr = kernel.mr;
  const WinogradPlan plan(kernel, pr, threads, kOut);
  const TileGrid grid = plan.grid;
  const int64_t tiles = plan.tiles, block = plan.block;
  const int64_t a_stride = plan.a_stride, v_stride = plan.v_stride, m_stride = plan.m_stride;

  // U comes prepared, or the calling thread's scratch slot 2 holds it for the whole call, kept
  // from call to call so that its tens of MiB are not faulted in afresh each time. V and M take
  // slot 1: the calling thread's for blocks shared by all threads, each thread's own otherwise.
  // The GEMM's B panels take slot 0.
  const bool u_ready = prepared.transformed;
  float* const u = u_ready ? nullptr : thread_scratch(2, plan.u_floats());  // where U is made
  const float* const u_read = u_ready ? weight : u;
  // ReLU goes on the tiles' values in registers, unless a residual must be added first; the
  // other activations, and ReLU after a residual, as each row of a tile is stored.
  const bool relu_early = out.activation == Activation::relu && !out.accumulate;
  const Activation late = relu_early ? Activation::none : out.activation;
  float* const shared_v = plan.shared ? thread_scratch(1, plan.vm_floats()) : nullptr;
  float* const shared_m = plan.shared ? shared_v + kXi * v_stride : nullptr;

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(threads)
  {
    auto packed_filters = [&](int64_t k_count, int xi) {
      return PackedA{u_read + xi * a_stride, k_count, C, round_up(k_count, mr)};
    };

    // Transform the inputs of block [t0, t0 + count) for channels [c_begin, c_end) into V, four
    // tiles at a time, the tiles reading neighbouring parts of one plane. Each V_xi (C x count)
    // is written in the GEMM's packed-B layout, which the GEMMs then read in place instead of
    // packing it for each block of filters (16% of a ResNet stage-5 layer's time); its columns
    // past the block, up to a whole sliver, are zero.
    auto transform_block_inputs = [&](const TilePlace* places, int64_t count, float* v, int64_t c_begin,
                                      int64_t c_end) {
      const int64_t n_padded = round_up(count, kernel.nr), filled = round_up(count, kLanes);
      for (int64_t c = c_begin; c < c_end; ++c) {
        // Where row c of V_xi starts, and how far apart its slivers lie (index arithmetic per
        // store, two divisions each, took a quarter of VGG conv1_2's time).
        const int64_t row = packed_b_index(kernel, n_padded, C, c, 0);
        const int64_t sliver_stride = packed_b_index(kernel, n_padded, C, c, kernel.nr) - row;
        if (filled < n_padded)
          for (int xi = 0; xi < kXi; ++xi)
            std::fill_n(v + xi * v_stride + packed_b_index(kernel, n_padded, C, c, filled), n_padded - filled, 0.0f);
        for (int64_t t = 0; t < count; t += kLanes) {
          // Each lane reads its tile in place when the tile, 8 columns wide, lies inside the
          // plane, else from a zero-padded copy; lanes past the block repeat its last tile.
          alignas(16) float padded[kLanes][kTile * 2 * kLanes];
          const float* src[kLanes];
          int64_t row_stride[kLanes];
          for (int l = 0; l < kLanes; ++l) {
            const TilePlace& at = places[std::min(t + l, count - 1)];
            const int64_t ih0 = at.row - pad_top, iw0 = at.col - pad_left;
            const float* plane = x + (at.n * C + c) * H * W;
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
          const int64_t at = row + t / kernel.nr * sliver_stride + t % kernel.nr;
          for (int xi = 0; xi < kXi; ++xi) store_lanes(v + xi * v_stride + at, vl[xi]);
        }
      }
    };
    // M_xi = U_xi V_xi for one position xi and the k_count filters of U.
    auto multiply = [&](int64_t count, const float* v, int64_t k_count, float* m, int xi) {
      const PackedPanelSource v_xi(v + xi * v_stride, round_up(count, kernel.nr));
      gemm_blocked(kernel, packed_filters(k_count, xi), v_xi, 0, k_count, 0, count, m + xi * m_stride,
                   round_up(count, kLanes), false, Epilogue{});
    };
    // Transform the GEMM results of the block for filters [k_begin, k_end) into y, adding the
    // bias and applying the activation; M's rows start at filter k_first. Filter by filter, four
    // tiles at a time, so that M's rows are read front to back.
    auto transform_block_outputs = [&](const TilePlace* places, int64_t count, const float* m, int64_t k_first,
                                       int64_t k_begin, int64_t k_end) {
      const int64_t ld = round_up(count, kLanes);
      for (int64_t k = k_begin; k < k_end; ++k) {
        const float add = bias ? bias[k] : 0.0f;
        for (int64_t t = 0; t < count; t += kLanes) {
          Lanes ml[kXi], yl[kOut * kOut];
          for (int xi = 0; xi < kXi; ++xi) load_lanes(ml[xi], m + xi * m_stride + (k - k_first) * ld + t);
          transform_outputs<V>(ml, yl);
          for (int xi = 0; xi < kOut * kOut; ++xi) {
            yl[xi] += add;
            if (relu_early) yl[xi] = yl[xi] < Lanes{} ? Lanes{} : yl[xi];  // NaN stays
          }
          // Row i of the tiles: lanes become the four tiles' rows (one transpose), each stored
          // whole where the tile lies inside the output, else clipped value by value.
          float* dst[kLanes];
          int64_t rows[kLanes], cols[kLanes];
          const int lanes = static_cast<int>(std::min<int64_t>(kLanes, count - t));
          for (int l = 0; l < lanes; ++l) {
            const TilePlace& at = places[t + l];
            dst[l] = out.image(at.n) + (k * P + at.row) * Q + at.col;
            rows[l] = std::min<int64_t>(kOut, P - at.row);
            cols[l] = std::min<int64_t>(kOut, Q - at.col);
          }
          for (int i = 0; i < kOut; ++i) {
            Lanes rows_of[kLanes] = {};
            for (int j = 0; j < kOut; ++j) rows_of[j] = yl[i * kOut + j];
            transpose_quads(rows_of);
            for (int l = 0; l < lanes; ++l) {
              if (i >= rows[l]) continue;
              const bool whole = kOut == kLanes && cols[l] == kOut;
              float* row = dst[l] + i * Q;
              Lanes v = rows_of[l];
              if (out.accumulate) v += whole ? load_quad(row) : load_first_lanes(row, cols[l]);
              v = activate<kLanes>(v, late);
              if (whole)
                store_lanes(row, v);
              else
                store_first_lanes(row, v, cols[l]);
            }
          }
        }
      }
    };

    std::vector<TilePlace> places;
    const bool filters_once = plan.k_block >= K;  // U made whole, before any block of tiles
    if (filters_once && !u_ready) {
#pragma omp for schedule(static)
      for (int64_t k0 = 0; k0 < K; k0 += mr) transform_filters_sliver<V>(kernel, weight, C, K, a_stride, 0, K, k0, u);
    }
    if (plan.shared) {
      for (int64_t t0 = 0; t0 < tiles; t0 += block) {
        const int64_t count = std::min(tiles, t0 + block) - t0;
        grid.locate_block(t0, count, &places);
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; ++c) transform_block_inputs(places.data(), count, shared_v, c, c + 1);
        for (int64_t k_first = 0; k_first < K; k_first += plan.k_block) {
          const int64_t k_count = std::min(plan.k_block, K - k_first);
          if (!filters_once) {
#pragma omp for schedule(static)
            for (int64_t k0 = 0; k0 < k_count; k0 += mr)
              transform_filters_sliver<V>(kernel, weight, C, K, a_stride, k_first, k_count, k0, u);
          }
#pragma omp for schedule(dynamic)
          for (int xi = 0; xi < kXi; ++xi) errors.capture([&] { multiply(count, shared_v, k_count, shared_m, xi); });
#pragma omp for schedule(static)
          for (int64_t k = k_first; k < k_first + k_count; ++k)
            transform_block_outputs(places.data(), count, shared_m, k_first, k, k + 1);
        }
      }
    } else {
#pragma omp for schedule(dynamic)
      for (int64_t t0 = 0; t0 < tiles; t0 += block)
        errors.capture([&] {
          const int64_t count = std::min(tiles, t0 + block) - t0;
          float* const v = thread_scratch(1, plan.vm_floats());
          float* const m = v + kXi * v_stride;
          grid.locate_block(t0, count, &places);
          transform_block_inputs(places.data(), count, v, 0, C);
          for (int xi = 0; xi < kXi; ++xi) multiply(count, v, K, m, xi);
          transform_block_outputs(places.data(), count, m, 0, 0, K);
        });
    }
  }
  errors.rethrow();
}

}  // namespace

void prepare_winograd(const Conv2dProblem& pr, const float* weight, const float* bias, bool keep,
                      PreparedConv* prepared) {
  const GemmKernel& kernel = gemm_kernel_for(pr.k());
  prepared->kernel = &kernel;
  prepared->bias = keep_or_borrow(bias, pr.k(), keep, &prepared->bias_storage);
  const int threads = conv_threads(pr);
  const int out = pr.r() == 5 ? 2 : 4;
  const WinogradPlan plan(kernel, pr, threads, out);
  // Kept for a plan, the filters are transformed once where every block of tiles meets all of
  // them (U within 8 MiB); where they go through in blocks, each block's U is made in cache for
  // each call, from the filters as given. A single call transforms inside its own region.
  if (!keep || plan.shared) {
    prepared->weights = keep_or_borrow(weight, pr.weight.numel(), keep, &prepared->storage);
    return;
  }
  prepared->storage.make_model_memory();
  prepared->storage.resize(plan.u_floats());
  if (out == 2)
    transform_all_filters<Variant<2>>(kernel, weight, pr.x.c, pr.k(), plan.a_stride, prepared->storage.data(), threads);
  else
    transform_all_filters<Variant<4>>(kernel, weight, pr.x.c, pr.k(), plan.a_stride, prepared->storage.data(), threads);
  prepared->weights = prepared->storage.data();
  prepared->transformed = true;
}

void conv2d_winograd(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x, const ConvOutput& out) {
  if (pr.r() == 5)
    winograd<Variant<2>>(pr, prepared, x, out);
  else
    winograd<Variant<4>>(pr, prepared, x, out);
}

}  // namespace pyconvx::detail
