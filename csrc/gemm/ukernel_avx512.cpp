// AVX-512 micro-kernels, compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma.
//
// 12 x 32 tile: 24 zmm accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm registers.
// An 8 x 32 tile (16 accumulators, still twice the 8 chains that hide the FMA latency) serves
// products with few rows, where twelve would mostly pad them (see gemm_kernel_for_rows).
// On Zen 4 a 512-bit FMA runs as two 256-bit halves, so this path gains fewer instructions and a
// larger tile rather than more FLOPs. Blocks: a KC x NR sliver of B is 192*32*4 = 24 KiB (in the
// 32 KiB L1d); an MC x KC block of A is 240*192*4 = 180 KiB (in the 1 MiB L2).
#include "../core/dispatch.hpp"
#include "ukernel_impl.hpp"

namespace pyconvx::detail {

void sgemm_ukernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                                const float* bias, bool relu) {
  sgemm_ukernel_tile<16, 12, 2>(kc, a, b, c, ldc, accumulate, bias, relu);
}

void sgemm_ukernel_avx512_12x32_shifted(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                        int64_t ldc, bool accumulate, const float* bias, bool relu) {
  sgemm_ukernel_shifted_tile<16, 12, 2>(kc, a, base, offsets, c, ldc, accumulate, bias, relu);
}

void sgemm_ukernel_avx512_12x32_gathered_a(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                           const float* b, float* c, int64_t ldc, bool accumulate) {
  sgemm_ukernel_gathered_a_tile<16, 12, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate);
}

void sgemm_ukernel_avx512_8x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                               const float* bias, bool relu) {
  sgemm_ukernel_tile<16, 8, 2>(kc, a, b, c, ldc, accumulate, bias, relu);
}

void sgemm_ukernel_avx512_8x32_shifted(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                       int64_t ldc, bool accumulate, const float* bias, bool relu) {
  sgemm_ukernel_shifted_tile<16, 8, 2>(kc, a, base, offsets, c, ldc, accumulate, bias, relu);
}

void sgemm_ukernel_avx512_8x32_gathered_a(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                          const float* b, float* c, int64_t ldc, bool accumulate) {
  sgemm_ukernel_gathered_a_tile<16, 8, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate);
}

static float fma_probe_avx512(int64_t iters) { return fma_probe_loop<16, 12>(iters); }

static const GemmKernel& gemm_kernel_avx512_8x32() {
  static const GemmKernel kernel{"avx512", 8, 32, 192, 240, 2048, sgemm_ukernel_avx512_8x32,
                                 sgemm_ukernel_avx512_8x32_shifted, sgemm_ukernel_avx512_8x32_gathered_a,
                                 fma_probe_avx512, 12 * 16 * 2};
  return kernel;
}

const GemmKernel& gemm_kernel_avx512() {
  static const GemmKernel kernel{"avx512", 12, 32, 192, 240, 2048, sgemm_ukernel_avx512_12x32,
                                 sgemm_ukernel_avx512_12x32_shifted, sgemm_ukernel_avx512_12x32_gathered_a,
                                 fma_probe_avx512, 12 * 16 * 2, &gemm_kernel_avx512_8x32()};
  return kernel;
}

}  // namespace pyconvx::detail
