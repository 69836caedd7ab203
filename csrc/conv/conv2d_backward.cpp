// Convolution backward, through the same blocked GEMM as the forward pass:
//   grad patches = W_g^T * grad_Y_g, scattered back into grad_X (col2im);
//   grad W_g    += grad_Y_g * patches(X_g)^T, summed over the batch;
//   grad bias    = grad_Y summed over batch and pixels.
// Patch matrices are produced a tile of output pixels at a time, so the scratch memory stays
// around 4 MiB per thread whatever the image size.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "../core/copy.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "algorithms.hpp"
#include "patches.hpp"
#include "pyconvx/conv.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

using namespace detail;

// Columns per patch tile: a tile of reduction x cols floats stays near 4 MiB (half an L3 slice
// per core here), is never narrower than four register tiles, nor wider than `columns`.
int64_t patch_tile_cols(const GemmKernel& kernel, const Conv2dProblem& pr, int64_t columns) {
  const int64_t budget = int64_t{1} << 20;
  const int64_t cols = std::max<int64_t>(4 * kernel.nr, budget / pr.reduction());
  return std::min(round_up(cols, kernel.nr), round_up(columns, kernel.nr));
}

// A plane of grad_Y summed in float four lanes wide; the planes of the batch are added in double.
double plane_sum(const float* row, int64_t count) {
  int64_t i = 0;
  const Quad total = sum_lanes(row, count, &i);
  double sum = (static_cast<double>(total[0]) + total[1]) + (static_cast<double>(total[2]) + total[3]);
  for (; i < count; ++i) sum += row[i];
  return sum;
}

void grad_bias(const Conv2dProblem& pr, const float* gy, float* gb) {
  const int64_t K = pr.k(), pq = pr.p * pr.q, N = pr.x.n;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(N * K * pq, get_num_threads()))
  for (int64_t k = 0; k < K; ++k) {
    double sum = 0.0;  // N planes: accumulate them in double (a plane of a few thousand terms keeps float)
    for (int64_t n = 0; n < N; ++n) sum += plane_sum(gy + (n * K + k) * pq, pq);
    gb[k] = static_cast<float>(sum);
  }
}

// With stride 1, grad_X is itself a convolution: of grad_Y with the weights flipped in both
// spatial axes and with input and output channels swapped (within each group), padded by
// dilation * (kernel - 1) - pad on each side. It then runs on the forward algorithms, tuned and
// tested already, instead of a GEMM followed by a scalar scatter. Needs pad <= dilation*(kernel-1).
// It computes every input pixel from K * R * S products where the GEMM form spends them on the
// output pixels only: with H * W above P * Q (a 5x5 filter on a 5x5 image: 25 times), the rest of
// its products are with the zero padding. Measured on Zen 4 (2 threads, grad input alone), the
// convolution wins up to about 1.4 times the work (16 -> 32 5x5 on 32x32, 1.31: 1.22 vs 1.41 ms;
// 64 -> 64 3x3 on 16x16: 0.72 vs 0.97; 8 -> 16 5x5 on 28x28, 1.36: 0.28 vs 0.30) and loses
// beyond (16 -> 32 3x3 on 12x12, 1.44: 0.36 vs 0.33; LeNet-5's conv3, 1.96: 0.68 vs 0.58;
// 128 -> 128 3x3 on 8x8, 1.78: 1.33 vs 0.91; 256 -> 256 3x3 on 6x6, 2.25: 2.93 vs 1.60). With 1
// to 3 input channels the convolution has that few filters to fill its register tiles and loses
// even without padding (LeNet-5's conv1, 1.31: 1.13 vs 0.51 ms; 3 -> 32 3x3 on 32x32 padded:
// 0.32 vs 0.21). Grouped layers (depthwise ones run the depthwise kernel as a convolution) keep
// the earlier limit of 3 times the work.
bool grad_input_is_convolution(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  const int64_t span_h = p.dilation_h * (pr.r() - 1), span_w = p.dilation_w * (pr.s() - 1);
  const bool pads_fit = p.pad_top <= span_h && p.pad_bottom <= span_h && p.pad_left <= span_w && p.pad_right <= span_w;
  if (p.stride_h != 1 || p.stride_w != 1 || !pads_fit) return false;
  const int64_t area = pr.x.h * pr.x.w, out_area = pr.p * pr.q;
  if (p.groups > 1) return area <= 3 * out_area;
  return pr.x.c > 3 && 5 * area <= 7 * out_area;
}

// B of grad_input's GEMM for `count` consecutive images of one group: column j is output pixel
// j % (P * Q) of image j / (P * Q), row k is that group's filter k. Small images (LeNet's last
// convolution has one output pixel) then fill register tiles together instead of one column each.
class ImagesPanelSource final : public BPanelSource {
 public:
  ImagesPanelSource(const float* first, int64_t image_stride, int64_t pq)
      : first_(first), image_stride_(image_stride), pq_(pq) {}
  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) const override {
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - j0);
      for (int64_t p = 0; p < kc; ++p) {
        float* out = dst + j0 * kc + p * nr;
        for (int64_t j = 0; j < cols;) {  // runs of one image's pixels
          const int64_t col = n0 + j0 + j, image = col / pq_, pixel = col % pq_;
          const int64_t run = std::min(cols - j, pq_ - pixel);
          copy_floats(out + j, first_ + image * image_stride_ + (k0 + p) * pq_ + pixel, run);
          j += run;
        }
        std::fill(out + cols, out + nr, 0.0f);
      }
    }
  }

 private:
  const float* first_;
  int64_t image_stride_, pq_;
};

void grad_input_by_convolution(const Conv2dProblem& pr, const float* gy, const float* weight, float* gx) {
  const int64_t G = pr.params.groups, Kg = pr.k_per_group(), Cg = pr.c_per_group(), R = pr.r(), S = pr.s();
  // Written in order, each task a transposed filter bank (a channel of a group), in the calling
  // thread's slot 3 so that its pages stay mapped from call to call; the reads jump between
  // filters, where writes to distant lines in a fresh buffer did worse (ResNet's stage 5, 512
  // -> 512 3x3 filters on Winograd: grad input 25.5 -> 19.1 ms; VGG conv5_2 21.9 -> 18.0 ms).
  float* const out = thread_scratch(3, pr.weight.numel());
  const int64_t rs = R * S;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) \
    num_threads(threads_for(pr.weight.numel(), get_num_threads()))
  for (int64_t gc = 0; gc < G * Cg; ++gc) {
    const int64_t g = gc / Cg, c = gc % Cg;
    for (int64_t k = 0; k < Kg; ++k) {
      const float* from = weight + ((g * Kg + k) * Cg + c) * rs;
      float* to = out + (gc * Kg + k) * rs;
      for (int64_t e = 0; e < rs; ++e) to[rs - 1 - e] = from[e];  // both spatial axes flipped
    }
  }
  Conv2dParams t = pr.params;
  const int64_t span_h = t.dilation_h * (R - 1), span_w = t.dilation_w * (S - 1);
  t.pad_top = span_h - pr.params.pad_top;
  t.pad_bottom = span_h - pr.params.pad_bottom;
  t.pad_left = span_w - pr.params.pad_left;
  t.pad_right = span_w - pr.params.pad_right;
  const Conv2dProblem transposed = make_conv2d_problem(Shape4{pr.x.n, pr.k(), pr.p, pr.q},
                                                       Shape4{pr.x.c, Kg, R, S}, t, "conv2d_backward");
  conv2d_forward(transposed, gy, out, nullptr, gx);
}

void grad_input(const Conv2dProblem& pr, const float* gy, const float* weight, float* gx) {
  if (grad_input_is_convolution(pr)) {
    grad_input_by_convolution(pr, gy, weight, gx);
    return;
  }
  const GemmKernel& kernel = active_gemm_kernel();
  const int threads = conv_threads(pr);
  const int64_t N = pr.x.n, G = pr.params.groups, Kg = pr.k_per_group(), Cg = pr.c_per_group();
  const int64_t red = pr.reduction(), plane = pr.x.h * pr.x.w, pq = pr.p * pr.q, rs = pr.r() * pr.s();
  std::fill(gx, gx + pr.x.numel(), 0.0f);

  const int64_t a_size = packed_a_size(kernel, red, Kg);
  AlignedBuffer packed(a_size * G);
  std::vector<PackedA> wt(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g)  // W_g^T: red x Kg
    wt[g] = pack_a(kernel, MatrixView{weight + g * Kg * red, 1, red}, red, Kg, packed.data() + g * a_size);

  auto source = [&](int64_t n, int64_t g) { return ImagesPanelSource(gy + (n * pr.k() + g * Kg) * pq, pr.k() * pq, pq); };
  auto image_of = [&](int64_t n, int64_t g) { return gx + (n * pr.x.c + g * Cg) * plane; };

  if (N * G >= threads) {
    // Tasks of whole images of one group, each scattering into its own images: one image each,
    // or as many as four register tiles of columns need, as long as every thread gets a task.
    const int64_t per_task = std::max<int64_t>(1, std::min({ceil_div(4 * kernel.nr, pq), N * G / threads, N}));
    const int64_t blocks = ceil_div(N, per_task);
    ParallelExceptions errors;
    detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(threads)
    for (int64_t t = 0; t < G * blocks; ++t) {
      errors.capture([&] {
        const int64_t g = t / blocks, n0 = t % blocks * per_task, count = std::min(per_task, N - n0);
        const int64_t columns = count * pq, tile = patch_tile_cols(kernel, pr, columns);
        float* cols = thread_scratch(1, red * tile);
        for (int64_t c0 = 0; c0 < columns; c0 += tile) {
          const int64_t c1 = std::min(columns, c0 + tile);
          gemm_blocked(kernel, wt[g], source(n0, g), 0, red, c0, c1, cols, tile, false, Epilogue{});
          for (int64_t i = c0 / pq; i * pq < c1; ++i) {  // the images this tile's columns belong to
            const int64_t lo = std::max(c0, i * pq), hi = std::min(c1, (i + 1) * pq);
            col2im_rows(pr, cols + (lo - c0), tile, 0, Cg, lo - i * pq, hi - i * pq, image_of(n0 + i, g));
          }
        }
      });
    }
    errors.rethrow();
    return;
  }
  // Few images: the threads share each GEMM, then scatter disjoint channels.
  const int64_t tile = patch_tile_cols(kernel, pr, pq);
  AlignedBuffer cols(red * tile);
  for (int64_t t = 0; t < N * G; ++t) {
    const int64_t n = t / G, g = t % G;
    for (int64_t c0 = 0; c0 < pq; c0 += tile) {
      const int64_t c1 = std::min(pq, c0 + tile);
      gemm_parallel(kernel, wt[g], source(n, g), c0, c1, cols.data(), tile, false, Epilogue{}, threads);
      detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads)
      for (int64_t c = 0; c < Cg; ++c) col2im_rows(pr, cols.data() + c * rs * tile, tile, c, c + 1, c0, c1, image_of(n, g));
    }
  }
}

// Pixels per reduction tile of the weight gradient (counted across images), never fewer than one
// KC slice. Where the patch matrix's columns fit one B panel (red <= NC), the GEMM reads each
// packed slice of the grad_Y tile once, right after packing it: a tile of 1 MiB (half of L2)
// is then still there, where 4 MiB went out to memory and came back (2 threads: ResNet's 1x1
// reduction 1.24x faster, its conv1 1.09x, AlexNet's conv1 1.08x). Wider patch matrices
// re-read the tile once per panel; there 4 MiB tiles were 1-5% faster (VGG's conv5_2,
// AlexNet's conv2).
int64_t weight_tile_pixels(const GemmKernel& kernel, const Conv2dProblem& pr) {
  const int64_t budget = pr.reduction() <= kernel.nc ? int64_t{1} << 18 : int64_t{1} << 20;  // floats
  const int64_t pixels = std::max(kernel.kc, budget / round_up(pr.k_per_group(), kernel.mr));
  return std::min(round_up(pixels, kernel.kc), pr.x.n * pr.p * pr.q);
}

// grad W_g (Kg x red) += grad_Y_g[:, pixels] (Kg x tile) * patches_g[:, pixels]^T (tile x red)
// over pixels [r0, r1) counted across images n0, n0 + 1, ... of group g: one long reduction
// instead of one short GEMM per image, each of which read and wrote all of grad W (9 MiB for
// VGG's conv5_2, whose images have 196 pixels). The patches are packed straight from the images.
void accumulate_weight(const GemmKernel& kernel, const Conv2dProblem& pr, const float* gy, const float* x, int64_t g,
                       int64_t n0, int64_t r0, int64_t r1, float* gw_group, int threads) {
  const int64_t Kg = pr.k_per_group(), Cg = pr.c_per_group(), red = pr.reduction(), pq = pr.p * pr.q;
  const int64_t length = r1 - r0, plane = pr.x.h * pr.x.w, mr = kernel.mr;
  // grad_Y's tile packed as A straight from grad_Y (pack_a's layout: KC slices of MR-row
  // slivers), one run of pixels of one image at a time: grad_Y's pixels of consecutive images
  // are K * P * Q floats apart, so the tile is no single strided matrix. Each run reads MR
  // contiguous rows; the strided writes stay inside a sliver.
  float* packed = thread_scratch(2, packed_a_size(kernel, Kg, length));
  const PackedA a{packed, Kg, length, round_up(Kg, mr)};
  // Threads that share the GEMM share this packing too, one sliver of a KC slice at a time.
  const int64_t slices = ceil_div(length, kernel.kc), slivers = a.m_padded / mr;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for if (threads > 1) firstprivate(float_mode) schedule(static) num_threads(threads)
  for (int64_t task = 0; task < slices * slivers; ++task) {
    const int64_t k0 = task / slivers * kernel.kc, i0 = task % slivers * mr;
    const int64_t kc = std::min(kernel.kc, length - k0), rows = std::min<int64_t>(mr, Kg - i0);
    float* out = packed + k0 * a.m_padded + i0 * kc;
    for (int64_t p = 0; p < kc;) {
      const int64_t flat = r0 + k0 + p, n = n0 + flat / pq, pixel = flat % pq;
      const int64_t run = std::min(kc - p, pq - pixel);
      interleave_rows(gy + (n * pr.k() + g * Kg + i0) * pq + pixel, pq, rows, mr, run, out + p * mr);
      p += run;
    }
  }
  // The images' pixels, padded and split into stride phases in the calling thread's slot 3, so
  // that each B panel is packed from in-bounds contiguous runs, four by four; unpadded stride-1
  // layers read the images as they are (the copy cost ResNet's 1x1 reduction a fifth of its
  // weight gradient).
  const PhaseSplitImages layout = phase_split_layout(pr, r0, length);
  const float* first = x + (n0 * pr.x.c + g * Cg) * plane;
  const PhaseSplitImages images =
      phase_split_in_place(pr) ? phase_split_view(pr, layout, first, pr.x.c * plane)
                               : phase_split(pr, layout, first, pr.x.c * plane, Cg,
                                             thread_scratch(3, phase_split_floats(layout, Cg)), threads);
  const PatchTransposePanelSource b(pr, images, r0);
  if (threads == 1)
    gemm_blocked(kernel, a, b, 0, Kg, 0, red, gw_group, red, true, Epilogue{});
  else
    gemm_parallel(kernel, a, b, 0, red, gw_group, red, true, Epilogue{}, threads);
}

// Sums images [t0, t1) of the (group, image) order t = g * N + n into grad W: each run of one
// group's consecutive images is one flattened reduction, in tiles.
void accumulate_images(const GemmKernel& kernel, const Conv2dProblem& pr, const float* gy, const float* x,
                       int64_t t0, int64_t t1, float* gw, int threads) {
  const int64_t N = pr.x.n, Kg = pr.k_per_group(), red = pr.reduction(), pq = pr.p * pr.q;
  const int64_t tile = weight_tile_pixels(kernel, pr);
  for (int64_t t = t0; t < t1;) {
    const int64_t g = t / N, n0 = t % N, count = std::min(t1 - t, N - n0);
    for (int64_t r0 = 0; r0 < count * pq; r0 += tile)
      accumulate_weight(kernel, pr, gy, x, g, n0, r0, std::min(count * pq, r0 + tile), gw + g * Kg * red, threads);
    t += count;
  }
}

void grad_weight(const Conv2dProblem& pr, const float* gy, const float* x, float* gw) {
  // Depthwise layers, where the forward pass goes direct too: as GEMMs they have one row each.
  if (choose_conv_algorithm(pr) == ConvAlgorithm::depthwise) {
    conv2d_depthwise_grad_weight(pr, gy, x, gw);
    return;
  }
  // Few filters (LeNet's conv3, Inception's 5x5 branch): the GEMM form would pack C * R * S
  // values per pixel to share them among only K filters (2-3x slower, measured). The channels
  // must fill at least 3/4 of the broadcast kernel's rows; with 1 or 3 (first layers) most would
  // idle.
  if (pr.params.groups == 1 && pr.k() <= 32 && 4 * pr.x.c >= 3 * gemm_kernel_for(pr.x.c, pr.k()).mr) {
    conv2d_broadcast_grad_weight(pr, gy, x, gw);
    return;
  }
  const GemmKernel& kernel = gemm_kernel_for(pr.k_per_group());
  const int threads = conv_threads(pr);
  const int64_t w_size = pr.weight.numel(), images = pr.x.n * pr.params.groups;
  std::fill(gw, gw + w_size, 0.0f);
  // The threads share each GEMM, split over grad W's columns, when there are too few images to
  // go round or when a copy of grad W per thread would not stay in L2 (over 1 MiB: half of this
  // machine's 2 MiB): zeroing and summing copies from L3 then cost more than the fork and join
  // per pixel tile. Measured against copies, 2 threads: ResNet's stage 5 (512 -> 512 3x3, 9 MiB
  // of weights) 64.3 -> 52.9 ms, VGG's conv5_2 74.1 -> 55.7 ms, AlexNet's conv2 (2.3 MiB) 50.8
  // -> 48.1 ms; the other way on small weights with long reductions: VGG's conv1_2 (144 KiB,
  // 100k pixels) 55.4 -> 60.5 ms, ResNet's 1x1 reduction 10.9 -> 11.5 ms.
  if (images < threads || w_size * int64_t{sizeof(float)} > (int64_t{1} << 20)) {
    accumulate_images(kernel, pr, gy, x, 0, images, gw, threads);
    return;
  }
  // Otherwise each thread sums a fixed contiguous block of images into a copy of grad W of its
  // own (the first thread into grad W itself); the copies are added at the end in thread order,
  // so results repeat run to run.
  AlignedBuffer partial(w_size * (threads - 1));
  std::fill(partial.data(), partial.data() + w_size * (threads - 1), 0.0f);
  auto copy_of = [&](int id) { return id == 0 ? gw : partial.data() + w_size * (id - 1); };
  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(threads)
  errors.capture([&] {
    const int id = omp_get_thread_num();
    int64_t t0, t1;
    split_range(images, 1, threads, id, &t0, &t1);
    accumulate_images(kernel, pr, gy, x, t0, t1, copy_of(id), 1);
  });
  errors.rethrow();
#pragma omp parallel for firstprivate(float_mode) schedule(static) num_threads(threads)
  for (int64_t i = 0; i < w_size; ++i)
    for (int th = 1; th < threads; ++th) gw[i] += copy_of(th)[i];
}

}  // namespace

void conv2d_backward(const Conv2dProblem& pr, const float* grad_y, const float* x, const float* weight, float* grad_x,
                     float* grad_weight_out, float* grad_bias_out) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "conv2d_backward");
  const bool any = grad_x || grad_weight_out || grad_bias_out;
  check_data(grad_y, any ? pr.y().numel() : 0, "grad_y", "conv2d_backward");
  check_data(x, grad_weight_out ? pr.x.numel() : 0, "x", "conv2d_backward");
  check_data(weight, grad_x ? pr.weight.numel() : 0, "weight", "conv2d_backward");
  if (grad_bias_out) grad_bias(pr, grad_y, grad_bias_out);
  if (grad_x) grad_input(pr, grad_y, weight, grad_x);
  if (grad_weight_out) grad_weight(pr, grad_y, x, grad_weight_out);
}

}  // namespace pyconvx
