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

// A zero-padded copy of the input pixels that a range of output pixels reads, each channel split
// into its stride_h x stride_w phases: phase (a, b) holds padded pixel (i * stride_h + a,
// j * stride_w + b) at (i, j). Tap (r, s) of output pixel (p, q) is then element
// (p + r * dilation_h / stride_h, q + s * dilation_w / stride_w) of phase
// (r * dilation_h % stride_h, s * dilation_w % stride_w): for every tap an output row's pixels
// are one contiguous run, inside the copy whatever the padding, stride and dilation.
//
// The pixels are [pixel0, pixel0 + count), counted across images from the first one given.
// Each (channel, phase) plane stacks the images' row windows: the first image's from its first
// output row, the others' from row 0, each with the rows the taps reach below its last one.
//
// An unpadded stride-1 layer needs no copy: its images already are that layout, each channel a
// plane of one phase and each image's window all of its rows (see phase_split_in_place).
struct PhaseSplitImages {
  const float* data = nullptr;             // row first_row of the first image, channel 0
  int64_t first_image = 0, first_row = 0;  // of pixel0
  int64_t last_image = 0;                  // of the last pixel
  int64_t width = 0;                       // plane row length
  int64_t first_rows = 0, full_rows = 0;   // the first image's window; a later image's
  int64_t last_rows = 0;                   // the last image's window, counted from its row 0
  int64_t plane = 0;                       // floats of one (channel, phase) plane
  int64_t channel_stride = 0, image_stride = 0;  // floats from a channel, or image, to the next
  // Phases some tap reads: all of them, or with unit dilation and a kernel narrower than the
  // stride (a 1x1 stride-2 projection) the first R x S.
  int64_t phase_rows = 0, phase_cols = 0;

  // The offset of tap (c, r, s) of output pixel (0, 0).
  int64_t tap_offset(const Conv2dProblem& pr, int64_t c, int64_t r, int64_t s) const {
    const int64_t sh = pr.params.stride_h, sw = pr.params.stride_w;
    const int64_t rr = r * pr.params.dilation_h, ss = s * pr.params.dilation_w;
    return c * channel_stride + (rr % sh * phase_cols + ss % sw) * plane + rr / sh * width + ss / sw;
  }

  // The rows of image `image`'s window: from first_row in the first image, from 0 in the others.
  int64_t window_rows(int64_t image) const {
    return image == first_image ? first_rows : image == last_image ? last_rows : full_rows;
  }

  // The offset of output pixel (p, q) of image `image` (counted like pixel0) from tap (0, 0, 0).
  // (In the copy an image's window follows the previous one's, so image_stride = full_rows *
  // width: the first image's window is short by the first_row rows data starts after.)
  int64_t pixel_offset(int64_t image, int64_t p, int64_t q) const {
    return (image - first_image) * image_stride + (p - first_row) * width + q;
  }
};

// The layout of that copy (data unset) and the floats it takes, 3 more than its planes: a run
// read four pixels at a time may run that far past the last one.
PhaseSplitImages phase_split_layout(const Conv2dProblem& problem, int64_t pixel0, int64_t count);
int64_t phase_split_floats(const PhaseSplitImages& layout, int64_t channels);

// Fills the copy laid out as `layout` into dst (phase_split_floats of it) for channels
// [0, channels) of images `image_stride` floats apart from `first` (the image pixel 0 belongs
// to), on `threads` OpenMP threads; returns the layout with its data.
PhaseSplitImages phase_split(const Conv2dProblem& problem, const PhaseSplitImages& layout, const float* first,
                             int64_t image_stride, int64_t channels, float* dst, int threads);

// Whether the images themselves can stand for the copy: stride 1 and no padding. Then every
// phase-split plane is a channel plane as it lies in the images, whatever the dilation.
bool phase_split_in_place(const Conv2dProblem& problem);
// The images (laid out as phase_split's arguments) viewed as that copy.
PhaseSplitImages phase_split_view(const Conv2dProblem& problem, const PhaseSplitImages& layout, const float* first,
                                  int64_t image_stride);

// Packs B panels of the transposed patch matrix of consecutive images (one channel group of
// each) from their phase-split copy: row i is output pixel pixel0 + i of the copy, column
// (c * R + r) * S + s. Each output row's pixels are read as contiguous runs of every tap and go
// through 4 x 4 register transposes into the L1-sized panel.
class PatchTransposePanelSource final : public BPanelSource {
 public:
  PatchTransposePanelSource(const Conv2dProblem& problem, const PhaseSplitImages& images, int64_t pixel0)
      : pr_(problem), images_(images), pixel0_(pixel0) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override;

 private:
  const Conv2dProblem& pr_;
  PhaseSplitImages images_;
  int64_t pixel0_;
};

// Writes rows for channels [c_begin, c_end) and columns [col_begin, col_end) of the patch matrix
// of `image` into dst, row (c - c_begin) * R * S + r * S + s at dst + row * ld.
void im2col_rows(const Conv2dProblem& problem, const float* image, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* dst, int64_t ld);

// The adjoint: adds those rows of `src` back into the image's channels [c_begin, c_end).
void col2im_rows(const Conv2dProblem& problem, const float* src, int64_t ld, int64_t c_begin, int64_t c_end,
                 int64_t col_begin, int64_t col_end, float* image);

}  // namespace pyconvx::detail
