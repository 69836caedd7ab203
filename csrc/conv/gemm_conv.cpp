// Convolution forward as GEMM: one GEMM per (image, group), Y_g = W_g * patches(X_g), with the
// weights packed once (per call, or once for an inference plan) and the patch panels packed
// straight from the image (implicit GEMM, no im2col matrix). The pointwise variant (1x1, stride
// 1, no padding) skips the patch gather: the image itself is the B matrix.
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "algorithms.hpp"
#include "patches.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

bool is_whole_image(const Conv2dProblem& pr, bool pointwise) {
  return !pointwise && pr.params.groups == 1 && covers_whole_image(pr);
}

// Filters covering the whole image, one group: Y^T (K x N) = W (K x C*R*S) * X^T, where column n
// of X^T is image n flattened, then transposed into Y (N x K). One GEMM over the batch, where
// the per-image GEMMs would have one column each. The GEMM adds the bias; the residual and the
// activation follow in the transposition.
void whole_image_convolution(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                             const ConvOutput& out) {
  const GemmKernel& kernel = *prepared.kernel;
  const int64_t N = pr.x.n, K = pr.k(), red = pr.reduction();
  const PackedA a{prepared.weights, K, red, round_up(K, kernel.mr)};
  AlignedBuffer transposed(K * N);
  gemm_parallel(kernel, a, MatrixPanelSource(MatrixView{x, 1, red}), 0, N, transposed.data(), N, false,
                Epilogue{prepared.bias, out.accumulate ? Activation::none : out.activation}, conv_threads(pr));
  const Pointwise pointwise = active_pointwise();
  for (int64_t n = 0; n < N; ++n) {
    float* row = out.image(n);
    for (int64_t k = 0; k < K; ++k) row[k] = (out.accumulate ? row[k] : 0.0f) + transposed.data()[k * N + n];
    if (out.accumulate) pointwise(row, row, nullptr, K, 1.0f, 0.0f, out.activation);
  }
}

// Tasks: (image, group, column chunk, block of filters). Columns are split only as far as needed
// to give every thread about four tasks (dynamic scheduling then evens out the tail), and never
// below 128 columns, where packing and loop overheads would start to show; filters only where
// that leaves threads without work (filter_block).
struct GemmConvPlan {
  int threads;
  int64_t a_size, chunk_cols, col_chunks, row_block, row_blocks, tasks;

  GemmConvPlan(const GemmKernel& kernel, const Conv2dProblem& pr) {
    const int64_t pq = pr.p * pr.q, images = pr.x.n * pr.params.groups;
    const int wanted = conv_threads(pr);
    a_size = packed_a_size(kernel, pr.k_per_group(), pr.reduction());
    const int64_t max_chunks = std::max<int64_t>(1, pq / 128);
    const int64_t chunks = std::min(max_chunks, std::max<int64_t>(1, ceil_div(4 * wanted, images)));
    chunk_cols = round_up(ceil_div(pq, chunks), kernel.nr);
    col_chunks = ceil_div(pq, chunk_cols);
    row_block = filter_block(pr.k_per_group(), kernel.mr, images * col_chunks, wanted);
    row_blocks = ceil_div(pr.k_per_group(), row_block);
    tasks = images * col_chunks * row_blocks;
    threads = static_cast<int>(std::min<int64_t>(wanted, tasks));
  }
};

}  // namespace

void prepare_gemm_convolution(const Conv2dProblem& pr, const float* weight, const float* bias, bool keep,
                              PreparedConv* prepared) {
  // The weights of each group packed once, shared read-only by every task.
  const GemmKernel& kernel = gemm_kernel_for(pr.k_per_group());
  const int64_t G = pr.params.groups, Kg = pr.k_per_group(), red = pr.reduction();
  const int64_t a_size = packed_a_size(kernel, Kg, red);
  if (keep) prepared->storage.make_model_memory();
  prepared->storage.resize(a_size * G);
  for (int64_t g = 0; g < G; ++g)
    pack_a(kernel, MatrixView{weight + g * Kg * red, red, 1}, Kg, red, prepared->storage.data() + g * a_size);
  prepared->kernel = &kernel;
  prepared->weights = prepared->storage.data();
  prepared->bias = keep_or_borrow(bias, pr.k(), keep, &prepared->bias_storage);
}

namespace {

// Where the filters are split (a batch of one on a small map: few images, one chunk each), every
// block would pack the same B panels again: 1024 -> 512 1x1 on 14 x 14 packed its image four
// times, which took as long as the arithmetic. There each (image, group, chunk) has its B
// packed once, all its KC slices, the threads sharing the slices, into the calling thread's
// slot 2 (PackedPanelSource's layout), and then the threads share its blocks of filters.
void gemm_convolution_shared_b(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                               const ConvOutput& out, bool pointwise, const GemmConvPlan& plan) {
  const GemmKernel& kernel = *prepared.kernel;
  const int64_t G = pr.params.groups, Kg = pr.k_per_group(), Cg = pr.c_per_group(), red = pr.reduction();
  const int64_t plane = pr.x.h * pr.x.w, pq = pr.p * pr.q, nr = kernel.nr;
  const int64_t n_padded = round_up(plan.chunk_cols, nr), slices = ceil_div(red, kernel.kc);
  float* const packed = thread_scratch(2, red * n_padded);
  ParallelExceptions errors;
  for (int64_t group = 0; group < pr.x.n * G * plan.col_chunks; ++group) {
    const int64_t ig = group / plan.col_chunks, n = ig / G, g = ig % G;
    const int64_t c0 = group % plan.col_chunks * plan.chunk_cols, c1 = std::min(pq, c0 + plan.chunk_cols);
    const float* image = x + (n * pr.x.c + g * Cg) * plane;
    float* y = out.image(n) + g * Kg * pq;
    const PackedA a{prepared.weights + g * plan.a_size, Kg, red, round_up(Kg, kernel.mr)};
    const Epilogue epilogue{prepared.bias ? prepared.bias + g * Kg : nullptr, out.activation};
    const MatrixPanelSource rows(MatrixView{image, plane, 1});
    const PatchPanelSource patches(pr, image);
    const BPanelSource& source = pointwise ? static_cast<const BPanelSource&>(rows) : patches;
    detail::RegionFloatMode float_mode;
#pragma omp parallel firstprivate(float_mode) num_threads(plan.threads)
    {
#pragma omp for schedule(static)
      for (int64_t s = 0; s < slices; ++s) {
        const int64_t k0 = s * kernel.kc;
        source.pack(k0, std::min(kernel.kc, red - k0), c0, c1 - c0, static_cast<int>(nr), packed + k0 * n_padded);
      }
#pragma omp for schedule(dynamic)
      for (int64_t block = 0; block < plan.row_blocks; ++block)
        errors.capture([&] {
          const int64_t r0 = block * plan.row_block, r1 = std::min(Kg, r0 + plan.row_block);
          gemm_blocked(kernel, a, PackedPanelSource(packed, n_padded), r0, r1, 0, c1 - c0, y + c0, pq,
                       out.accumulate, epilogue);
        });
    }
  }
  errors.rethrow();
}

}  // namespace

void conv2d_gemm(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x, const ConvOutput& out,
                 bool pointwise) {
  if (is_whole_image(pr, pointwise)) return whole_image_convolution(pr, prepared, x, out);
  const GemmKernel& kernel = *prepared.kernel;
  const int64_t G = pr.params.groups, Kg = pr.k_per_group(), Cg = pr.c_per_group(), red = pr.reduction();
  const int64_t plane = pr.x.h * pr.x.w, pq = pr.p * pr.q;
  const GemmConvPlan plan(kernel, pr);
  const int64_t a_size = plan.a_size, chunk_cols = plan.chunk_cols, tasks = plan.tasks;
  if (plan.row_blocks > 1) return gemm_convolution_shared_b(pr, prepared, x, out, pointwise, plan);

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(plan.threads)
  for (int64_t t = 0; t < tasks; ++t) {
    errors.capture([&] {
      const int64_t per_image = plan.col_chunks * plan.row_blocks;
      const int64_t ig = t / per_image, n = ig / G, g = ig % G;
      const int64_t chunk = t % per_image / plan.row_blocks, block = t % plan.row_blocks;
      const int64_t c0 = chunk * chunk_cols, c1 = std::min(pq, c0 + chunk_cols);
      const int64_t r0 = block * plan.row_block, r1 = std::min(Kg, r0 + plan.row_block);
      const float* image = x + (n * pr.x.c + g * Cg) * plane;
      float* y = out.image(n) + g * Kg * pq;
      const PackedA a{prepared.weights + g * a_size, Kg, red, round_up(Kg, kernel.mr)};
      const Epilogue epilogue{prepared.bias ? prepared.bias + g * Kg : nullptr, out.activation};
      if (pointwise) {
        gemm_blocked(kernel, a, MatrixPanelSource(MatrixView{image, plane, 1}), r0, r1, c0, c1, y + c0, pq,
                     out.accumulate, epilogue);
      } else {
        gemm_blocked(kernel, a, PatchPanelSource(pr, image), r0, r1, c0, c1, y + c0, pq, out.accumulate, epilogue);
      }
    });
  }
  errors.rethrow();
}

int64_t gemm_convolution_workspace_bytes(const Conv2dProblem& pr, bool pointwise) {
  const GemmKernel& kernel = gemm_kernel_for(pr.k_per_group());
  const int64_t red = pr.reduction(), K = pr.k();
  if (is_whole_image(pr, pointwise)) {
    const int64_t N = pr.x.n;
    return scratch_bytes(packed_a_size(kernel, K, red)) + scratch_bytes(K * N) +
           conv_threads(pr) * scratch_bytes(b_panel_floats(kernel, red, K, N));
  }
  const GemmConvPlan plan(kernel, pr);
  const int64_t shared_b = plan.row_blocks > 1 ? scratch_bytes(red * round_up(plan.chunk_cols, kernel.nr)) : 0;
  return scratch_bytes(plan.a_size * pr.params.groups) + shared_b +
         plan.threads * scratch_bytes(b_panel_floats(kernel, red, pr.k_per_group(), plan.chunk_cols));
}

}  // namespace pyconvx::detail
