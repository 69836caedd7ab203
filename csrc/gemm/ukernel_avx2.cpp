// AVX2 + FMA micro-kernel, compiled with -mavx2 -mfma (see setup.py: the flags follow the file name).
//
// 6 x 16 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers, and
// 12 independent FMA chains per k step (two FMA pipes x 4-cycle latency need at least 8).
// Blocks (32 KiB L1d, 512 KiB-1 MiB L2 per core): a KC x NR sliver of B is 256*16*4 = 16 KiB and
// stays in L1 while the MR slivers of A stream past it; an MC x KC block of A is
// 120*256*4 = 120 KiB and stays in L2; a KC x NC panel of B (2 MiB) lives in L3.
#include "../core/dispatch.hpp"
#include "ukernel_impl.hpp"

namespace pyconvx::detail {

void sgemm_ukernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                             const float* bias, const float* clamp) {
  sgemm_ukernel_tile<8, 6, 2>(kc, a, b, c, ldc, accumulate, bias, clamp);
}

void sgemm_ukernel_avx2_6x16_shifted(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                     int64_t ldc, bool accumulate, const float* bias, const float* clamp) {
  sgemm_ukernel_shifted_tile<8, 6, 2>(kc, a, base, offsets, c, ldc, accumulate, bias, clamp);
}

void sgemm_ukernel_avx2_6x16_gathered_a(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                        const float* b, float* c, int64_t ldc, bool accumulate) {
  sgemm_ukernel_gathered_a_tile<8, 6, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate);
}

void sgemm_ukernel_avx2_6x16_gathered_a_transposed(int64_t kc, const float* a_base, const int64_t* a_offsets,
                                                   int64_t a_step, const float* b, float* c, int64_t ldc,
                                                   bool accumulate, const float* bias, const float* clamp, int64_t filters,
                                                   int64_t width, int64_t pixels) {
  sgemm_ukernel_gathered_a_transposed_tile<8, 6, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp, filters,
                                                    width, pixels);
}

static float fma_probe_avx2(int64_t iters) { return fma_probe_loop<8, 12>(iters); }

const GemmKernel& gemm_kernel_avx2() {
  static const GemmKernel kernel{"avx2", 6, 16, 256, 120, 2048, sgemm_ukernel_avx2_6x16, sgemm_ukernel_avx2_6x16_shifted,
                                 sgemm_ukernel_avx2_6x16_gathered_a, sgemm_ukernel_avx2_6x16_gathered_a_transposed, 8,
                                 fma_probe_avx2, 12 * 8 * 2};
  return kernel;
}

}  // namespace pyconvx::detail
