// Direct convolution: the GEMM micro-kernel reads the image in place, no packing.
//
// In the zero-padded image (row width Wp), output pixel (p, q), taken at the "virtual" column
// v = p * Wp + q, reads padded input v + offset(c, r, s) with offset = (c * Hp + r * dh) * Wp + s * dw:
// every row of the patch matrix is a contiguous, shifted slice of the padded image. So a B sliver
// needs no packing at all: the shifted micro-kernel loads its rows at base + offsets[k]. The price
// is Wp - Q junk columns per output row (computed, then dropped when the valid columns are copied
// out), i.e. a fraction (R - 1) * d / Wp of the work. What it saves is the patch gather, which
// dominates when there are few filters to amortise it over (LeNet's 6 and 16, Inception's 32).
// Each task pads only the band of rows it reads, so scratch memory does not grow with the batch.
//
// A stride (sh, sw) becomes stride 1 once the band is split by phase (copy_phase_rows): the
// padded rows a with a % sh fixed form one plane, and likewise the columns, so that output pixel
// (p, q) reads tap (r, s) at row p + r / sh, column q + s / sw of plane (r % sh, s % sw). Rows are
// then ceil(Wp / sw) wide and the junk columns shrink with the stride. The output comes out
// filter-major, in place in NCHW, where broadcasting the input pixels makes pixel-major tiles to
// transpose (ResNet's and AlexNet's first layers: a fifth of their time).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/copy.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../gemm/gemm_driver.hpp"
#include "algorithms.hpp"
#include "band.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

// Tasks: (image, group, chunk of virtual columns, block of filters). A chunk's output tile
// (Kp x chunk) is at most 1 MiB, and chunks are cut finer only as far as needed to give each
// thread four tasks; filters only where that leaves threads without work (filter_block).
// row_w is a band plane's row width.
struct DirectPlan {
  int threads;
  int64_t row_w, Kp, virtual_cols, chunk, chunks, filter_rows, filter_blocks, per_image, tasks;
  bool reads_in_place;  // 1x1, stride 1, no padding: the band is the image as it is

  DirectPlan(const GemmKernel& kernel, const Conv2dProblem& pr) {
    const Conv2dParams& cp = pr.params;
    const int64_t nr = kernel.nr, images = pr.x.n * cp.groups;
    row_w = ceil_div(pr.x.w + cp.pad_left + cp.pad_right, cp.stride_w);
    Kp = round_up(pr.k_per_group(), kernel.mr);
    virtual_cols = (pr.p - 1) * row_w + pr.q;
    const int wanted = conv_threads(pr);
    const int64_t cap = std::max(nr, (int64_t{1} << 18) / Kp / nr * nr);
    const int64_t split = std::max<int64_t>(1, ceil_div(4 * wanted, images));
    chunk = std::min(cap, std::max(4 * nr, round_up(ceil_div(virtual_cols, split), nr)));
    chunks = ceil_div(virtual_cols, chunk);
    filter_rows = filter_block(Kp, kernel.mr, images * chunks, wanted);
    reads_in_place = pr.r() == 1 && pr.s() == 1 && cp.stride_h == 1 && cp.stride_w == 1 && cp.pad_top == 0 &&
                     cp.pad_bottom == 0 && cp.pad_left == 0 && cp.pad_right == 0;
    filter_blocks = ceil_div(Kp, filter_rows);
    per_image = chunks * filter_blocks;
    tasks = images * per_image;
    threads = static_cast<int>(std::min<int64_t>(wanted, tasks));
  }
  // The rows of each band plane a chunk starting at virtual column v0 reads: its own output rows
  // plus (R - 1) * dilation / stride below. The most any chunk reads: one row more than its width
  // spans.
  static int64_t rows_below(const Conv2dProblem& pr) {
    return (pr.r() - 1) * pr.params.dilation_h / pr.params.stride_h;
  }
  int64_t band_rows(const Conv2dProblem& pr, int64_t v0, int64_t v1) const {
    return (v1 - 1) / row_w - v0 / row_w + 1 + rows_below(pr);
  }
  int64_t most_band_rows(const Conv2dProblem& pr) const {
    return std::min(pr.p, (std::min(chunk, virtual_cols) - 1) / row_w + 2) + rows_below(pr);
  }
  // The band's planes: one per channel and stride phase.
  static int64_t planes(const Conv2dProblem& pr) {
    return pr.c_per_group() * pr.params.stride_h * pr.params.stride_w;
  }
};

// Reduction slice: each of the kc rows of a B sliver is an unaligned NR-float load that spans
// two cache lines, so kc = KC / 2 keeps the sliver's lines (128 * 2 * 64 B = 16 KiB with AVX2)
// in L1 beside the streaming A sliver.
int64_t direct_slice(const GemmKernel& kernel) { return std::max<int64_t>(kernel.kc / 2, 1); }

}  // namespace

void prepare_direct(const Conv2dProblem& pr, const float* weight, const float* bias, bool keep,
                    PreparedConv* prepared) {
  // The weights of each group packed in direct_slice slices; the bias padded to whole register
  // tiles so that the kernel may read MR values.
  const GemmKernel& kernel = gemm_kernel_for(pr.k_per_group());
  const int64_t G = pr.params.groups, Kg = pr.k_per_group(), red = pr.reduction();
  const int64_t a_size = packed_a_size(kernel, Kg, red), Kp = round_up(Kg, kernel.mr);
  if (keep) {
    prepared->storage.make_model_memory();
    prepared->bias_storage.make_model_memory();
  }
  prepared->storage.resize(a_size * G);
  prepared->bias_storage.resize(Kp * G);
  float* padded = prepared->bias_storage.data();
  for (int64_t g = 0; g < G; ++g) {
    pack_a(kernel, MatrixView{weight + g * Kg * red, red, 1}, Kg, red, prepared->storage.data() + g * a_size,
           direct_slice(kernel));
    for (int64_t k = 0; k < Kp; ++k) padded[g * Kp + k] = (bias && k < Kg) ? bias[g * Kg + k] : 0.0f;
  }
  prepared->kernel = &kernel;
  prepared->weights = prepared->storage.data();
  prepared->bias = padded;
}

void conv2d_direct(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x, const ConvOutput& out) {
  const GemmKernel& kernel = *prepared.kernel;
  const Conv2dParams& cp = pr.params;
  const int64_t G = cp.groups, Kg = pr.k_per_group(), Cg = pr.c_per_group(), red = pr.reduction();
  const int64_t R = pr.r(), S = pr.s(), H = pr.x.h, W = pr.x.w, P = pr.p, Q = pr.q;
  const DirectPlan plan(kernel, pr);
  const int64_t row_w = plan.row_w, Kp = plan.Kp, virtual_cols = plan.virtual_cols, chunk = plan.chunk;
  const int64_t sh = cp.stride_h, sw = cp.stride_w;
  const int64_t per_image = plan.per_image, tasks = plan.tasks;
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t slice = direct_slice(kernel), a_size = packed_a_size(kernel, Kg, red);
  // ReLU and ReLU6 in the micro-kernel's registers unless a residual comes first: that is added as
  // the valid columns are copied out, with the activation after it. Tiles stored straight into y
  // (below) add the residual in registers too, so their clamp is always there.
  const float* clamp = out.accumulate ? nullptr : register_clamp(out.activation);
  const Activation after = clamp ? Activation::none : out.activation;
  const float* stored_clamp = register_clamp(out.activation);
  const Activation stored_after = stored_clamp ? Activation::none : out.activation;
  const int64_t whole_rows = Kg / mr * mr;  // filters in register tiles without padding rows
  const Pointwise pointwise = active_pointwise();

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(plan.threads)
  for (int64_t t = 0; t < tasks; ++t) {
    errors.capture([&] {
      const int64_t ig = t / per_image, g = ig % G, n = ig / G;
      const int64_t v0 = (t % per_image / plan.filter_blocks) * chunk, v1 = std::min(virtual_cols, v0 + chunk);
      const int64_t f0 = t % plan.filter_blocks * plan.filter_rows, f1 = std::min(Kp, f0 + plan.filter_rows);
      const int64_t width = round_up(v1 - v0, nr);
      const float* image = x + (n * pr.x.c + g * Cg) * H * W;
      // The band of padded rows this chunk reads, zero-padded into scratch and split by stride
      // phase, for each channel of the group. The last sliver may read up to nr - 1 floats past it.
      // A 1x1 unpadded stride-1 layer's band is the image itself, read in place, unless the
      // last sliver's overhang, read from the group's last channel, would reach past the end of
      // x: the last chunk of the last image, and on maps smaller than a sliver (1 x 1, in
      // squeeze-and-excitation blocks and dense heads) the last chunk of the images before it
      // too. The copy was half the time of MobileNetV2's projections (24 filters from 144
      // channels).
      const int64_t row0 = v0 / row_w;
      const int64_t read_end = (n * pr.x.c + g * Cg + Cg - 1) * H * W + v0 + width;  // one past the last float read
      const bool in_place = plan.reads_in_place && read_end <= pr.x.n * pr.x.c * H * W;
      const int64_t rows = in_place ? H : plan.band_rows(pr, v0, v1), plane = rows * row_w;
      const float* band = image;
      if (!in_place) {
        const int64_t band_size = DirectPlan::planes(pr) * plane + nr;
        float* copy = thread_scratch(2, band_size);
        copy_phase_rows(image, Cg, H, W, row0 * sh - cp.pad_top, rows, sh, sw, cp.pad_left, row_w, copy);
        std::fill(copy + band_size - nr, copy + band_size, 0.0f);
        band = copy;
      }
      int64_t* offsets = reinterpret_cast<int64_t*>(thread_scratch(1, 2 * red));
      for (int64_t c = 0, k = 0; c < Cg; ++c)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const int64_t dr = r * cp.dilation_h, ds = s * cp.dilation_w;
            offsets[k++] = ((c * sh + dr % sh) * sw + ds % sw) * plane + dr / sh * row_w + ds / sw;
          }

      const PackedA a{prepared.weights + g * a_size, Kg, red, Kp};
      const float* bias = prepared.bias + g * Kp;
      float* tile = thread_scratch(0, Kp * width);
      const float* base = in_place ? band + v0 : band + (v0 - row0 * row_w);
      float* y = out.image(n) + g * Kg * P * Q;
      // Read in place, the virtual columns are the output's pixels (row_w == Q), so a register
      // tile of real filters and whole columns is stored straight into y, the residual in y
      // accumulated in registers: no tile to copy out (on ResNet-50's 1x1 layers at batch 8 the
      // copy-out was a fifth of the time). Tiles with padding rows or the chunk's last partial
      // sliver, which would write over other filters' or chunks' outputs, still go to the tile.
      const int64_t stored_cols = in_place ? (v1 - v0) / nr * nr : 0;
      const int64_t stored_rows = in_place ? std::clamp(whole_rows, f0, f1) : f0;
      for (int64_t pc = 0; pc < red; pc += slice) {
        const int64_t kc = std::min(slice, red - pc);
        const bool last = pc + kc == red;
        for (int64_t ic = f0; ic < f1; ic += kernel.mc) {
          const int64_t ic_end = std::min(ic + kernel.mc, f1);
          for (int64_t jr = 0; jr < width; jr += nr)
            for (int64_t ir = ic; ir < ic_end; ir += mr) {
              const float* sliver = a.sliver(pc, kc, ir);
              if (ir < stored_rows && jr < stored_cols)
                kernel.ukernel_shifted(kc, sliver, base + jr, offsets + pc, y + ir * P * Q + v0 + jr, P * Q,
                                       pc > 0 || out.accumulate, last ? bias + ir : nullptr,
                                       last ? stored_clamp : nullptr);
              else
                kernel.ukernel_shifted(kc, sliver, base + jr, offsets + pc, tile + ir * width + jr, width, pc > 0,
                                       last ? bias + ir : nullptr, last ? clamp : nullptr);
            }
        }
      }
      if (stored_after != Activation::none)
        for (int64_t k = f0; k < stored_rows; ++k) {
          float* dst = y + k * P * Q + v0;
          pointwise(dst, dst, nullptr, stored_cols, 1.0f, 0.0f, stored_after);
        }
      // Keep the valid columns the tile holds: virtual column v is pixel (v / row_w, v % row_w)
      // when v % row_w < Q.
      for (int64_t v = v0; v < v1;) {
        const int64_t p = v / row_w, q = v % row_w, run = std::min(v1, p * row_w + row_w) - v;
        const int64_t valid = std::max<int64_t>(0, std::min(run, Q - q));
        if (valid > 0)
          for (int64_t k = f0; k < std::min(f1, Kg); ++k) {
            // Rows stored in y hold their first stored_cols columns already.
            const int64_t skip = k < stored_rows ? std::clamp(v0 + stored_cols - v, int64_t{0}, valid) : 0;
            float* dst = y + k * P * Q + p * Q + q + skip;
            const float* src = tile + k * width + (v - v0) + skip;
            if (out.accumulate || after != Activation::none)
              pointwise(dst, src, out.accumulate ? dst : nullptr, valid - skip, 1.0f, 0.0f, after);
            else
              copy_floats(dst, src, valid - skip);
          }
        v += run;
      }
    });
  }
  errors.rethrow();
}

int64_t direct_workspace_bytes(const Conv2dProblem& pr) {
  const GemmKernel& kernel = gemm_kernel_for(pr.k_per_group());
  const DirectPlan plan(kernel, pr);
  const int64_t G = pr.params.groups, red = pr.reduction();
  const int64_t band = DirectPlan::planes(pr) * plan.most_band_rows(pr) * plan.row_w + kernel.nr;
  return scratch_bytes(packed_a_size(kernel, pr.k_per_group(), red) * G) + scratch_bytes(plan.Kp * G) +
         plan.threads * (scratch_bytes(band) + scratch_bytes(2 * red) +
                         scratch_bytes(plan.Kp * round_up(plan.chunk, kernel.nr)));
}

}  // namespace pyconvx::detail
