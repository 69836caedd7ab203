// Convolution with the input pixels as the broadcast operand (after Zhang, Franchetti and Low,
// "High performance zero-memory overhead direct convolutions", 2018).
//
// For a strip of MR output pixels of one output row and a sliver of NR filters, the micro-kernel
// broadcasts each pixel's input value for tap p = (c, r, s), read in place from a zero-padded band
// of the image, against a vector of the NR filters' weights for that tap; the weights are packed
// once per call. Nothing of the image is packed, where the implicit GEMM packs every patch for
// every call of its GEMM: with short patches and few filters to share each packed value (first
// layers: 3 channels, 64 or 96 filters, stride 2 or 4) that packing took a third of the time.
// The tile comes out pixel-major and is transposed in registers as it is stored, filter by
// filter, into the NCHW output.
#include <omp.h>

#include <algorithm>
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

// Tasks: (image, block of output rows, block of filter slivers). A task's band holds the input
// rows its output rows read, zero-padded, wide enough for the last strip of MR pixels to read past
// the right edge; each sliver's packed weights are read once per strip.
//
// Where the packed weights fit in half of L2 with room to spare, the rows split (at most 8 a
// task, about four tasks a thread) and every task reads all the weights, which stay in L2.
// Larger weights (the deep layers: 512 -> 512 3x3, 9 MiB) would then stream from L3 or memory
// once per row block; there a task takes whole images and a block of slivers instead, so the
// weights go through L2 once per image, each sliver reused by every strip of the image from L2
// (512 -> 512 3x3 on 7 x 7: 2.8 -> 1.8 ms with the remainder strips below; 256 -> 256 on 14 x
// 14: 2.1 -> 1.4).
struct BroadcastPlan {
  int threads;
  int64_t slivers, rows_per_task, per_image, sliver_block, sliver_blocks, tasks, band_w, band_rows;

  BroadcastPlan(const GemmKernel& kernel, const Conv2dProblem& pr) {
    const Conv2dParams& cp = pr.params;
    const int64_t N = pr.x.n, P = pr.p, Q = pr.q, mr = kernel.mr;
    const int wanted = conv_threads(pr);
    slivers = ceil_div(pr.k(), kernel.nr);
    const int64_t l2 = cpu_info().l2_bytes > 0 ? cpu_info().l2_bytes : int64_t{512} << 10;
    const int64_t red = pr.reduction();
    // The last strip of MR pixels starts at column round_up(Q, MR) - MR.
    band_w = std::max(pr.x.w + cp.pad_left + cp.pad_right,
                      (round_up(Q, mr) - 1) * cp.stride_w + (pr.s() - 1) * cp.dilation_w + 1);
    const int64_t image_band = pr.x.c * ((P - 1) * cp.stride_h + (pr.r() - 1) * cp.dilation_h + 1) * band_w;
    const bool large_weights = scratch_bytes(slivers * kernel.nr * red) > l2 / 2;
    // Whole images only where a sliver and the image's band fit in L2 together: the strips'
    // gathers from a band in L3 cost more than the weights' streams they save (512 -> 512 3x3/s2
    // from 14 x 14, whose band is 480 KiB: 2.8 ms against 2.4 with a row a task).
    if (large_weights && scratch_bytes(kernel.nr * red) + scratch_bytes(image_band) <= l2) {
      per_image = 1;
      sliver_blocks = std::min(slivers, ceil_div(2 * wanted, N));
    } else {
      // The rows of an image split evenly: 8 + 2 would copy the R - 1 rows below each block
      // twice for two rows of output (LeNet-5's 10 x 10 maps).
      per_image = ceil_div(P, std::max<int64_t>(1, std::min<int64_t>(8, ceil_div(P * N, 4 * wanted))));
      sliver_blocks = 1;
    }
    rows_per_task = ceil_div(P, per_image);
    sliver_block = ceil_div(slivers, sliver_blocks);
    sliver_blocks = ceil_div(slivers, sliver_block);
    tasks = N * per_image * sliver_blocks;
    band_rows = (rows_per_task - 1) * cp.stride_h + (pr.r() - 1) * cp.dilation_h + 1;
    threads = static_cast<int>(std::min<int64_t>(wanted, tasks));
  }
};

}  // namespace

void prepare_broadcast(const Conv2dProblem& pr, const float* weight, const float* bias, bool keep,
                       PreparedConv* prepared) {
  // The weights as B (red x K, filter k in column k), packed into slivers of NR filters.
  const GemmKernel& kernel = gemm_kernel_for(pr.q, pr.k());
  const int64_t red = pr.reduction(), nr = kernel.nr;
  if (keep) prepared->storage.make_model_memory();
  prepared->storage.resize(ceil_div(pr.k(), nr) * nr * red);
  MatrixPanelSource(MatrixView{weight, 1, red}).pack(0, red, 0, pr.k(), static_cast<int>(nr), prepared->storage.data());
  prepared->kernel = &kernel;
  prepared->weights = prepared->storage.data();
  prepared->bias = keep_or_borrow(bias, pr.k(), keep, &prepared->bias_storage);
}

void conv2d_broadcast(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                      const ConvOutput& out) {
  const GemmKernel& kernel = *prepared.kernel;
  const Conv2dParams& cp = pr.params;
  const int64_t C = pr.x.c, H = pr.x.h, W = pr.x.w, K = pr.k(), R = pr.r(), S = pr.s();
  const int64_t P = pr.p, Q = pr.q, red = pr.reduction(), mr = kernel.mr, nr = kernel.nr;
  const BroadcastPlan plan(kernel, pr);
  const int64_t slivers = plan.slivers, rows_per_task = plan.rows_per_task, per_image = plan.per_image;
  const int64_t tasks = plan.tasks, band_w = plan.band_w, band_rows = plan.band_rows;
  const float* const bias = prepared.bias;
  // ReLU and ReLU6 (after the residual, when accumulating) in the micro-kernel's registers; the
  // other activations over each output row of a sliver once its strips are stored.
  const float* clamp = register_clamp(out.activation);
  const Activation after = clamp ? Activation::none : out.activation;
  const Pointwise pointwise = active_pointwise();
  // Where tap (c, r, s) lies in every task's band, from the band's first row.
  AlignedBuffer tap_offsets(2 * red);
  int64_t* const offsets = reinterpret_cast<int64_t*>(tap_offsets.data());
  for (int64_t c = 0, p = 0; c < C; ++c)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) offsets[p++] = (c * band_rows + r * cp.dilation_h) * band_w + s * cp.dilation_w;

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(plan.threads)
  for (int64_t t = 0; t < tasks; ++t) {
    errors.capture([&] {
      const int64_t block = t % plan.sliver_blocks, rows = t / plan.sliver_blocks;
      const int64_t n = rows / per_image, oh0 = rows % per_image * rows_per_task, oh1 = std::min(P, oh0 + rows_per_task);
      const int64_t ih0 = oh0 * cp.stride_h - cp.pad_top;
      float* band = thread_scratch(2, C * band_rows * band_w);
      copy_padded_rows(x + n * C * H * W, C, H, W, ih0, band_rows, cp.pad_left, band_w, band);

      // A sliver of filters at a time over all the task's rows, its packed weights (ResNet's
      // first layer: 147 taps x 32 filters, 18 KiB) reused by every strip of the task. Each strip
      // is stored straight into the NCHW output, transposed in registers (staged and transposed
      // afterwards, 4 x 4 at a time, ResNet's and AlexNet's first layers took 12-15% longer). The
      // task writes each filter's pixels [oh0 * Q, oh1 * Q) in increasing order, so a strip may
      // store a whole vector wherever the lanes past its pixels stay in that range: they land on
      // pixels stored after it. The others store exactly their pixels, as every strip does when
      // it adds a residual, which the lanes past it would add twice.
      const int64_t task_pixels = (oh1 - oh0) * Q;
      for (int64_t sl = block * plan.sliver_block; sl < std::min(slivers, (block + 1) * plan.sliver_block); ++sl) {
        const int64_t k0 = sl * nr, filters = std::min(nr, K - k0);
        const float* weights = prepared.weights + sl * nr * red;
        const float* sliver_bias = bias ? bias + k0 : nullptr;
        for (int64_t i = 0; i < oh1 - oh0; ++i) {
          const float* row = band + i * cp.stride_h * band_w;
          float* y = out.image(n) + (k0 * P + oh0 + i) * Q;
          for (int64_t ow0 = 0; ow0 < Q; ow0 += mr) {
            const bool whole = !out.accumulate && i * Q + ow0 + kernel.vl <= task_pixels;
            const int64_t pixels = std::min(mr, Q - ow0), width = whole ? kernel.vl : pixels;
            kernel.ukernel_gathered_a_transposed(red, row + ow0 * cp.stride_w, offsets, cp.stride_w, weights, y + ow0,
                                                 P * Q, out.accumulate, sliver_bias, clamp, filters, width, pixels);
          }
          if (after != Activation::none)
            for (int64_t f = 0; f < filters; ++f) pointwise(y + f * P * Q, y + f * P * Q, nullptr, Q, 1.0f, 0.0f, after);
        }
      }
    });
  }
  errors.rethrow();
}

// The weight gradient with the same micro-kernel, the other way round: a tile is MR channels x
// NR filters of grad W at one tap (r, s), its reduction runs over output pixels, the input values
// (channel c0 + i, pixel p shifted by the tap) are read in place from a padded band and broadcast
// against a vector of NR filters' grad_Y at pixel p. Only grad_Y is packed (transposed, pixel by
// pixel), K values a pixel, where the GEMM form packs the C * R * S values of every patch: with
// few filters to share them (LeNet's 16, Inception's 5x5 branch's 32) that packing was most of
// its time.
void conv2d_broadcast_grad_weight(const Conv2dProblem& pr, const float* grad_y, const float* x, float* grad_weight) {
  const GemmKernel& kernel = gemm_kernel_for(pr.x.c, pr.k());
  const Conv2dParams& cp = pr.params;
  const int64_t N = pr.x.n, C = pr.x.c, H = pr.x.h, W = pr.x.w, K = pr.k(), R = pr.r(), S = pr.s();
  const int64_t P = pr.p, Q = pr.q, mr = kernel.mr, nr = kernel.nr;
  const int64_t c_pad = round_up(C, mr), k_pad = round_up(K, nr), slivers = k_pad / nr;
  const int threads = conv_threads(pr);

  // A chunk is a few output rows of one image, about 256 pixels: its packed grad_Y sliver
  // (256 pixels x NR floats, 16 KiB for NR = 16) stays in L1 while every channel block and tap
  // of the chunk reads it.
  const int64_t rows_per_chunk = std::max<int64_t>(1, std::min<int64_t>(P, 256 / Q));
  const int64_t band_w = W + cp.pad_left + cp.pad_right;
  const int64_t band_rows = (rows_per_chunk - 1) * cp.stride_h + (R - 1) * cp.dilation_h + 1;
  const int64_t plane = band_rows * band_w, sums_size = R * S * c_pad * k_pad;

  // Each thread sums a fixed contiguous range of the N * P output rows into its own copy of
  // grad W, laid out (r, s, channel, filter) so that a tile is a block of rows; the copies are
  // added in thread order at the end, so results repeat run to run.
  AlignedBuffer sums(sums_size * threads);
  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(threads)
  errors.capture([&] {
    const int id = omp_get_thread_num();
    float* own = sums.data() + id * sums_size;
    std::fill(own, own + sums_size, 0.0f);
    float* band = thread_scratch(2, c_pad * plane);
    std::fill(band + C * plane, band + c_pad * plane, 0.0f);  // the channels past C of the last block
    float* packed = thread_scratch(1, k_pad * rows_per_chunk * Q);
    std::vector<int64_t> pixel_offsets(static_cast<size_t>(rows_per_chunk * Q));
    int64_t first, last;
    split_range(N * P, 1, threads, id, &first, &last);
    for (int64_t row = first; row < last;) {
      const int64_t n = row / P, oh0 = row % P, oh1 = std::min({P, oh0 + rows_per_chunk, oh0 + last - row});
      const int64_t pixels = (oh1 - oh0) * Q;
      copy_padded_rows(x + n * C * H * W, C, H, W, oh0 * cp.stride_h - cp.pad_top, band_rows, cp.pad_left, band_w,
                       band);
      for (int64_t i = 0, p = 0; i < oh1 - oh0; ++i)
        for (int64_t q = 0; q < Q; ++q) pixel_offsets[p++] = i * cp.stride_h * band_w + q * cp.stride_w;
      const float* gy = grad_y + (n * K * P + oh0) * Q;
      for (int64_t sl = 0; sl < slivers; ++sl)
        interleave_rows(gy + sl * nr * P * Q, P * Q, std::min(nr, K - sl * nr), nr, pixels, packed + sl * nr * pixels);
      for (int64_t sl = 0; sl < slivers; ++sl)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t c0 = 0; c0 < c_pad; c0 += mr)
              kernel.ukernel_gathered_a(pixels, band + c0 * plane + r * cp.dilation_h * band_w + s * cp.dilation_w,
                                        pixel_offsets.data(), plane, packed + sl * nr * pixels,
                                        own + ((r * S + s) * c_pad + c0) * k_pad + sl * nr, k_pad, true);
      row += oh1 - oh0;
    }
  });
  errors.rethrow();

  // grad W[k, c, r, s] = the threads' sums at (r, s, c, k), added in thread order.
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t rs = 0; rs < R * S; ++rs) {
        const int64_t at = (rs * c_pad + c) * k_pad + k;
        float total = sums.data()[at];
        for (int th = 1; th < threads; ++th) total += sums.data()[th * sums_size + at];
        grad_weight[(k * C + c) * R * S + rs] = total;
      }
}

int64_t broadcast_workspace_bytes(const Conv2dProblem& pr) {
  const GemmKernel& kernel = gemm_kernel_for(pr.q, pr.k());
  const BroadcastPlan plan(kernel, pr);
  const int64_t red = pr.reduction();
  return scratch_bytes(plan.slivers * kernel.nr * red) + scratch_bytes(2 * red) +
         plan.threads * scratch_bytes(pr.x.c * plan.band_rows * plan.band_w);
}

}  // namespace pyconvx::detail
