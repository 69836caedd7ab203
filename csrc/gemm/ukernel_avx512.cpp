// AVX-512 micro-kernels, compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma.
//
// The main tile is 12 x 32: 24 zmm accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm
// registers; each k step loads 2 + 12 values for 24 FMAs, within the two loads a cycle that feed
// the two FMA pipes. The other tiles serve products whose rows or columns the main one would
// mostly pad (see gemm_kernel_for):
// - 8 x 32 (16 accumulators, still twice the 8 chains that hide the FMA latency): 16 or 32 filters;
// - 14 x 32 (28 accumulators, 31 registers): rows of 28, 55 or 112 pixels (Inception's 28 x 28
//   maps, the first layers of AlexNet and ResNet);
// - 8 x 16 (one vector of filters): the weight gradient of LeNet-5's conv3, 6 channels x 16
//   filters. With one B vector a step loads 1 + 8 values for 8 FMAs, at most 8/9 of the FMA pipes'
//   rate: it serves where the wide tiles would pad by half.
// - 10 x 16: LeNet-5's conv3 forward, output rows of 10 pixels x 16 filters (the 8 x 16 tile
//   would compute 16 pixels a row). Ten accumulator chains cover the FMA latency at one 512-bit
//   FMA a cycle (Zen 4), not quite at two (Intel).
// On Zen 4 a 512-bit FMA runs as two 256-bit halves, so this path gains fewer instructions and a
// larger tile rather than more FLOPs. Blocks: the MR x KC sliver of A that stays in L1 while it
// meets the whole B panel is 12*512*4 = 24 KiB (in Zen 4's 32 KiB L1d; 28 KiB for 14 rows); each
// C tile is then loaded and stored once per 512 steps of the reduction instead of 192. On Zen 4,
// KC = 512 against 192: 2048^2 on 2 threads 88.7% of the FMA peak against 82.4%, 1024^2 on one
// thread 87% against 81%, the convolutions' backward passes 2-3% faster, their forward passes
// unchanged. MC is a multiple of MR (252 for 14 rows): the convolutions step through packed A by
// whole slivers.
#include "../core/dispatch.hpp"
#include "ukernel_impl.hpp"

namespace pyconvx::detail {
namespace {

// The entry points of one MR x (NV * 16) tile.
template <int MR, int NV>
struct Tile {
  static void packed(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                     const float* bias, const float* clamp) {
    sgemm_ukernel_tile<16, MR, NV>(kc, a, b, c, ldc, accumulate, bias, clamp);
  }
  static void shifted(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c, int64_t ldc,
                      bool accumulate, const float* bias, const float* clamp) {
    sgemm_ukernel_shifted_tile<16, MR, NV>(kc, a, base, offsets, c, ldc, accumulate, bias, clamp);
  }
  static void gathered_a(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step, const float* b,
                         float* c, int64_t ldc, bool accumulate) {
    sgemm_ukernel_gathered_a_tile<16, MR, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate);
  }
  static void gathered_a_transposed(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                    const float* b, float* c, int64_t ldc, bool accumulate,
                                    const float* bias, const float* clamp, int64_t filters, int64_t width,
                                    int64_t pixels) {
    sgemm_ukernel_gathered_a_transposed_tile<16, MR, NV>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp, filters,
                                                         width, pixels);
  }
};

float fma_probe_avx512(int64_t iters) { return fma_probe_loop<16, 12>(iters); }

template <int MR, int NV>
GemmKernel tile_kernel(int64_t mc, const GemmKernel* next) {
  return GemmKernel{"avx512", MR, NV * 16, 512, mc, 2048, Tile<MR, NV>::packed, Tile<MR, NV>::shifted,
                    Tile<MR, NV>::gathered_a, Tile<MR, NV>::gathered_a_transposed, 16, fma_probe_avx512, 12 * 16 * 2,
                    next};
}

// The tiles in the order gemm_kernel_for prefers them.
const GemmKernel& kernel_10x16() {
  static const GemmKernel kernel = tile_kernel<10, 1>(240, nullptr);
  return kernel;
}
const GemmKernel& kernel_8x16() {
  static const GemmKernel kernel = tile_kernel<8, 1>(240, &kernel_10x16());
  return kernel;
}
const GemmKernel& kernel_14x32() {
  static const GemmKernel kernel = tile_kernel<14, 2>(252, &kernel_8x16());
  return kernel;
}
const GemmKernel& kernel_8x32() {
  static const GemmKernel kernel = tile_kernel<8, 2>(240, &kernel_14x32());
  return kernel;
}

}  // namespace

const GemmKernel& gemm_kernel_avx512() {
  static const GemmKernel kernel = tile_kernel<12, 2>(240, &kernel_8x32());
  return kernel;
}

}  // namespace pyconvx::detail
