// Patch (im2col) access to an image, shared by the convolution algorithms (internal).
//
// Row index of the patch matrix: (c * R + r) * S + s; column index: p * Q + q. The element is
// x[c, p*stride_h - pad_top + r*dilation_h, q*stride_w - pad_left + s*dilation_w], zero outside.
#pragma once

#include <cstdint>

#include "../gemm/gemm_driver.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

// Packs B panels of the patch matrix of one image (or one group of its channels) directly from
// the image: the implicit GEMM, with no im2col matrix in memory.
class PatchPanelSource final : public BPanelSource {
 public:
  // `image` points at the first channel of the group in one image.
  PatchPanelSource(const Conv2dProblem& problem, const float* image) : pr_(problem), image_(image) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override;

 private:
  const Conv2dProblem& pr_;
  const float* image_;
};

// Packs B panels of the transposed patch matrix of consecutive images (one channel group of
// each): row i is output pixel pixel0 + i counted across the images (image (pixel0 + i) / (P*Q)
// from `first_image`, images `image_stride` floats apart): the reduction of the weight gradient.
// Column (c * R + r) * S + s. Reading along output rows keeps the image reads contiguous; the
// strided writes stay in the L1-sized panel.
class PatchTransposePanelSource final : public BPanelSource {
 public:
  PatchTransposePanelSource(const Conv2dProblem& problem, const float* first_image, int64_t image_stride,
                            int64_t pixel0)
      : pr_(problem), image_(first_image), image_stride_(image_stride), pixel0_(pixel0) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override;

 private:
  const Conv2dProblem& pr_;
  const float* image_;
  int64_t image_stride_, pixel0_;
};

// Writes rows for channels [c_begin, c_end) and columns [col_begin, col_end) of the patch matrix
// of `image` into dst, row (c - c_begin) * R * S + r * S + s at dst + row * ld.
void im2col_rows(const Conv2dProblem& problem, const float* image, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* dst, int64_t ld);

// The adjoint: adds those rows of `src` back into the image's channels [c_begin, c_end).
void col2im_rows(const Conv2dProblem& problem, const float* src, int64_t ld, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* image);

}  // namespace pyconvx::detail
