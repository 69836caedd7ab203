// Convolution as a GEMM whose rows are the output pixels: Y^T (P*Q x K) = patches^T (P*Q x
// C*R*S) * W^T (C*R*S x K), one product for the batch, transposed into NCHW as the epilogue adds the
// bias and the residual and applies the activation.
//
// The implicit GEMM puts the filters on the rows and the pixels on the columns, whose register
// tile is a vector wide or more: a 7 x 7 map's 49 pixels fill four 16-column tiles to 77%, 14 x
// 14's 196 fill thirteen to 94%. With the pixels on the rows, MR at a time (6 on AVX2) across the
// image rows, 49 pixels fill nine tiles to 91%, and the filters, a multiple of 16 in every
// network, fill their columns exactly. The filters are B here: packed once, read in place (for an
// inference plan, no packing at all per call) once for the whole batch, while the patches are
// packed as A slivers, the implicit GEMM's packing with MR-wide columns. This suits the deep layers
// of small batches, whose weights outweigh their activations.
#include <omp.h>

#include <algorithm>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "algorithms.hpp"
#include "patches.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

const GemmKernel& pixel_gemm_kernel(const Conv2dProblem& pr) { return gemm_kernel_for(pr.p * pr.q, pr.k()); }

// Whether patch column c of pixel i is x[c * P * Q + i] of its image: a 1x1 unpadded stride-1
// layer (each column a channel), or filters covering the whole unpadded image (one pixel, whose
// patch is the image itself: a dense layer, a classifier's 7x7 convolution, a
// squeeze-and-excitation block's 1x1 layers on 1x1 maps).
bool reads_in_place(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  const bool unpadded = p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
  return covers_whole_image(pr) || (pr.r() == 1 && pr.s() == 1 && p.stride_h == 1 && p.stride_w == 1 && unpadded);
}

// The product's rows: image n's pixels from row n * per_image. Patches packed from an image
// start a sliver of their own (per_image a multiple of MR); patches read in place run on across
// images (per_image = P * Q), so that a batch of one-pixel images fills whole slivers.
struct PixelRows {
  int64_t per_image, total;  // total: a multiple of MR
  PixelRows(const GemmKernel& kernel, const Conv2dProblem& pr) {
    const int64_t pixels = pr.p * pr.q;
    per_image = reads_in_place(pr) ? pixels : round_up(pixels, kernel.mr);
    total = round_up(pr.x.n * per_image, kernel.mr);
  }
};

}  // namespace

void prepare_pixel_gemm(const Conv2dProblem& pr, const float* weight, const float* bias, bool keep,
                        PreparedConv* prepared) {
  // W^T (red x K, filter k in column k) in the layout PackedPanelSource reads: each KC slice of
  // the reduction a region of NR-filter slivers.
  const GemmKernel& kernel = pixel_gemm_kernel(pr);
  const int64_t red = pr.reduction(), K = pr.k(), n_padded = round_up(K, kernel.nr);
  if (keep) prepared->storage.make_model_memory();
  prepared->storage.resize(red * n_padded);
  const MatrixPanelSource filters(MatrixView{weight, 1, red});
  for (int64_t k0 = 0; k0 < red; k0 += kernel.kc)
    filters.pack(k0, std::min(kernel.kc, red - k0), 0, K, kernel.nr, prepared->storage.data() + k0 * n_padded);
  prepared->kernel = &kernel;
  prepared->weights = prepared->storage.data();
  prepared->bias = keep_or_borrow(bias, K, keep, &prepared->bias_storage);
}

void conv2d_pixel_gemm(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                       const ConvOutput& out) {
  const GemmKernel& kernel = *prepared.kernel;
  const int64_t N = pr.x.n, K = pr.k(), red = pr.reduction(), pixels = pr.p * pr.q;
  const int64_t plane = pr.x.c * pr.x.h * pr.x.w, slices = ceil_div(red, kernel.kc);
  const PixelRows rows(kernel, pr);
  const int64_t m_padded = rows.total, slivers = m_padded / kernel.mr;
  const int threads = conv_threads(pr);
  // The calling thread's slots 1 and 2 (the GEMM's threads take only slot 0) keep the packed
  // patches and Y^T from call to call instead of faulting in fresh pages every time.
  float* const patches = thread_scratch(1, red * m_padded);
  float* const product = thread_scratch(2, m_padded * K);
  detail::RegionFloatMode float_mode;
  if (reads_in_place(pr)) {
    // Sliver by sliver: row j of the batch is pixel j % (P * Q) of image j / (P * Q).
#pragma omp parallel for firstprivate(float_mode) schedule(static) collapse(2) num_threads(threads)
    for (int64_t s = 0; s < slices; ++s)
      for (int64_t sliver = 0; sliver < slivers; ++sliver) {
        const int64_t k0 = s * kernel.kc, kc = std::min(kernel.kc, red - k0), j0 = sliver * kernel.mr;
        float* const dst = patches + k0 * m_padded + j0 * kc;
        int64_t from[32];  // where each row's patch column k0 lies, or -1 past the batch
        for (int i = 0; i < kernel.mr; ++i) {
          const int64_t j = j0 + i;
          from[i] = j < N * pixels ? j / pixels * plane + j % pixels + k0 * pixels : -1;
        }
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < kernel.mr; ++i) dst[p * kernel.mr + i] = from[i] >= 0 ? x[from[i] + p * pixels] : 0.0f;
      }
  } else {
#pragma omp parallel for firstprivate(float_mode) schedule(static) collapse(2) num_threads(threads)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < slices; ++s) {
        const int64_t k0 = s * kernel.kc, kc = std::min(kernel.kc, red - k0);
        float* const dst = patches + k0 * m_padded + n * rows.per_image * kc;
        PatchPanelSource(pr, x + n * plane).pack(k0, kc, 0, pixels, kernel.mr, dst);
      }
  }
  // One product for the batch: the filters stream from memory once, however many images.
  const PackedPanelSource filters(prepared.weights, round_up(K, kernel.nr));
  gemm_parallel(kernel, PackedA{patches, m_padded, red, m_padded}, filters, 0, K, product, K, false, Epilogue{}, threads);
  // Y^T into each image's K planes, eight filters at a time: each pixel's eight values are one
  // contiguous read of Y^T, each plane a contiguous write.
  const Pointwise activate = active_pointwise();
  const float* const bias = prepared.bias;
  const int64_t blocks = ceil_div(K, 8);
#pragma omp parallel for firstprivate(float_mode) schedule(static) collapse(2) num_threads(threads)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t k0 = block * 8, k1 = std::min(K, k0 + 8);
      float* const y = out.image(n);
      for (int64_t i = 0; i < pixels; ++i) {
        const float* from = product + (n * rows.per_image + i) * K;
        for (int64_t k = k0; k < k1; ++k)
          y[k * pixels + i] = (out.accumulate ? y[k * pixels + i] : 0.0f) + from[k] + (bias ? bias[k] : 0.0f);
      }
      if (out.activation != Activation::none)
        for (int64_t k = k0; k < k1; ++k)
          activate(y + k * pixels, y + k * pixels, nullptr, pixels, 1.0f, 0.0f, out.activation);
    }
}

int64_t pixel_gemm_batch_bytes(const Conv2dProblem& pr) {
  const int64_t m_padded = PixelRows(pixel_gemm_kernel(pr), pr).total;
  return scratch_bytes(pr.reduction() * m_padded) + scratch_bytes(m_padded * pr.k());
}

int64_t pixel_gemm_workspace_bytes(const Conv2dProblem& pr) {
  const GemmKernel& kernel = pixel_gemm_kernel(pr);
  const int64_t m_padded = PixelRows(kernel, pr).total;
  // The packed filters (scratch for a single call), the batch's patches and Y^T, the GEMM's panels.
  return scratch_bytes(pr.reduction() * round_up(pr.k(), kernel.nr)) + pixel_gemm_batch_bytes(pr) +
         conv_threads(pr) * scratch_bytes(b_panel_floats(kernel, pr.reduction(), m_padded, pr.k()));
}

}  // namespace pyconvx::detail
