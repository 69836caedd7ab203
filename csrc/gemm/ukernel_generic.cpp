// Portable micro-kernel, compiled with the compiler's baseline flags only (SSE2 on x86-64), so it
// runs on any CPU the wheel can be installed on.
//
// 4 x 8 tile of 4-float vectors: 8 accumulators + 2 B vectors + 1 broadcast fit in 16 registers.
// Blocks as for AVX2 with half the tile width: B sliver 256*8*4 = 8 KiB in L1, A block 128 x 256.
#include "../core/dispatch.hpp"
#include "ukernel_impl.hpp"

namespace pyconvx::detail {

void sgemm_ukernel_generic_4x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                               const float* bias, const float* clamp) {
  sgemm_ukernel_tile<4, 4, 2>(kc, a, b, c, ldc, accumulate, bias, clamp);
}

void sgemm_ukernel_generic_4x8_shifted(int64_t kc, const float* a, const float* base, const int64_t* offsets, float* c,
                                       int64_t ldc, bool accumulate, const float* bias, const float* clamp) {
  sgemm_ukernel_shifted_tile<4, 4, 2>(kc, a, base, offsets, c, ldc, accumulate, bias, clamp);
}

void sgemm_ukernel_generic_4x8_gathered_a(int64_t kc, const float* a_base, const int64_t* a_offsets, int64_t a_step,
                                          const float* b, float* c, int64_t ldc, bool accumulate) {
  sgemm_ukernel_gathered_a_tile<4, 4, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate);
}

void sgemm_ukernel_generic_4x8_gathered_a_transposed(int64_t kc, const float* a_base, const int64_t* a_offsets,
                                                     int64_t a_step, const float* b, float* c, int64_t ldc,
                                                     bool accumulate, const float* bias, const float* clamp, int64_t filters,
                                                     int64_t width, int64_t pixels) {
  sgemm_ukernel_gathered_a_transposed_tile<4, 4, 2>(kc, a_base, a_offsets, a_step, b, c, ldc, accumulate, bias, clamp, filters,
                                                    width, pixels);
}

static float fma_probe_generic(int64_t iters) { return fma_probe_loop<4, 8>(iters); }

const GemmKernel& gemm_kernel_generic() {
  static const GemmKernel kernel{"generic", 4, 8, 256, 128, 1024, sgemm_ukernel_generic_4x8, sgemm_ukernel_generic_4x8_shifted,
                                 sgemm_ukernel_generic_4x8_gathered_a, sgemm_ukernel_generic_4x8_gathered_a_transposed, 4,
                                 fma_probe_generic, 8 * 4 * 2};
  return kernel;
}

}  // namespace pyconvx::detail
