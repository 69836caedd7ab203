// Convolution forward: which algorithm computes a given shape, and the dispatch to it.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "../core/dispatch.hpp"
#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "algorithms.hpp"
#include "pyconvx/conv.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

struct AlgorithmEntry {
  ConvAlgorithm id;
  const char* name;
};

constexpr AlgorithmEntry kAlgorithms[] = {
    {ConvAlgorithm::automatic, "auto"},
    {ConvAlgorithm::implicit_gemm, "implicit_gemm"},
    {ConvAlgorithm::pointwise, "pointwise"},
    {ConvAlgorithm::direct, "direct"},
    {ConvAlgorithm::winograd, "winograd"},
    {ConvAlgorithm::depthwise, "depthwise"},
    {ConvAlgorithm::broadcast, "broadcast"},
    {ConvAlgorithm::pixel_gemm, "pixel_gemm"},
};

// The most scratch memory an algorithm may hold beyond the size of the output.
constexpr int64_t kWorkspaceBound = int64_t{64} << 20;

bool is_stride1(const Conv2dProblem& pr) { return pr.params.stride_h == 1 && pr.params.stride_w == 1; }

}  // namespace

bool is_depthwise(const Conv2dProblem& pr) { return pr.params.groups == pr.x.c; }

bool covers_whole_image(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  return pr.r() == pr.x.h && pr.s() == pr.x.w && p.dilation_h == 1 && p.dilation_w == 1 && p.pad_top == 0 &&
         p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}

namespace {

bool is_pointwise(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  return pr.r() == 1 && pr.s() == 1 && is_stride1(pr) && p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 &&
         p.pad_right == 0;
}

}  // namespace

std::vector<ConvAlgorithm> conv_algorithms() {
  std::vector<ConvAlgorithm> all;
  for (const AlgorithmEntry& e : kAlgorithms) all.push_back(e.id);
  return all;
}

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  for (const AlgorithmEntry& e : kAlgorithms)
    if (e.id == algorithm) return e.name;
  return "unknown";
}

ConvAlgorithm conv_algorithm_from_name(const std::string& name) {
  std::string names;
  for (const AlgorithmEntry& e : kAlgorithms) {
    if (name == e.name) return e.id;
    names += std::string(names.empty() ? "" : ", ") + "'" + e.name + "'";
  }
  throw std::invalid_argument("conv2d: algorithm must be one of " + names + ", got algorithm='" + name + "'");
}

std::string conv_algorithm_unsupported_reason(const Conv2dProblem& pr, ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::automatic:
    case ConvAlgorithm::implicit_gemm:
    case ConvAlgorithm::direct:
      return "";
    case ConvAlgorithm::pointwise:
      return is_pointwise(pr) ? "" : "pointwise needs a 1x1 kernel, stride 1 and no padding";
    case ConvAlgorithm::winograd:
      if (!((pr.r() == 3 && pr.s() == 3) || (pr.r() == 5 && pr.s() == 5)) || !is_stride1(pr) ||
          pr.params.dilation_h != 1 || pr.params.dilation_w != 1 || pr.params.groups != 1)
        return "winograd needs a 3x3 or 5x5 kernel, stride 1, dilation 1 and groups 1";
      // The transformed filters (36 packed K x C matrices) grow with K * C; the workspace stays
      // within its 64 MiB bound.
      if (detail::winograd_workspace_bytes(pr) > kWorkspaceBound)
        return "winograd's transformed filters would take its workspace past 64 MiB for K=" +
               std::to_string(pr.k()) + " and C=" + std::to_string(pr.x.c);
      return "";
    case ConvAlgorithm::depthwise:
      return is_depthwise(pr) ? "" : "depthwise needs groups equal to the input channels C";
    case ConvAlgorithm::broadcast:
      return pr.params.groups == 1 ? "" : "broadcast needs groups 1";
    case ConvAlgorithm::pixel_gemm:
      if (pr.params.groups != 1) return "pixel_gemm needs groups 1";
      // The packed patches and Y^T of the batch grow with its pixels.
      if (detail::pixel_gemm_batch_bytes(pr) > kWorkspaceBound)
        return "pixel_gemm's packed patches would take its workspace past 64 MiB for " + std::to_string(pr.p) +
               "x" + std::to_string(pr.q) + " output pixels and a reduction of " + std::to_string(pr.reduction());
      return "";
  }
  return "unknown algorithm";
}

namespace {

bool is_winograd_worthwhile(const Conv2dProblem& pr) {
  if (!conv_algorithm_unsupported_reason(pr, ConvAlgorithm::winograd).empty()) return false;
  const int64_t out = pr.r() == 5 ? 2 : 4;  // outputs per tile side: F(2x2, 5x5) or F(4x4, 3x3)
  const int64_t tiles = pr.x.n * ((pr.p + out - 1) / out) * ((pr.q + out - 1) / out);
  return pr.x.c >= 32 && pr.k() >= 32 && tiles >= 32;
}

bool is_broadcast_worthwhile(const Conv2dProblem& pr) {
  const bool strided = pr.params.stride_h > 1 || pr.params.stride_w > 1;
  const bool few_channels = pr.x.c <= 32 || (strided && pr.r() * pr.s() > 1 && pr.x.c <= 256);
  const int tile_nr = detail::gemm_kernel_for(pr.q, pr.k()).nr;
  const bool narrow_and_long =
      tile_nr < detail::active_gemm_kernel().nr && pr.reduction() >= 256 && !cpu_info().split_512bit_fma;
  return pr.params.groups == 1 && few_channels && pr.reduction() >= 64 && pr.k() >= tile_nr &&
         (strided || !narrow_and_long);
}

}  // namespace

// The heuristic, from measurements on the benchmark table (two threads, the algorithms timed in
// alternation). For a 3x3 stride-1 layer Winograd F(4x4, 3x3) does 2.25 multiplications per
// output instead of 9; its transforms cost O(C + K) per tile against the GEMMs' O(C * K), and the
// filter transform O(C * K) against the GEMMs' O(C * K * tiles). So it pays once C and K are both
// at least 32 and there are a few dozen tiles (direct / Winograd time: 32 -> 32 channels on 56x56
// 1.15, 64 -> 64 1.67, 256 -> 32 on 28x28 1.38, 256 -> 256 on 14x14 1.83), not with 16 channels in
// (1.06), 3 or 8 (0.5-0.6), nor on 4 tiles of 512 channels (0.41). F(2x2, 5x5) does 9 instead
// of 25 per output, with the same transforms per tile but a quarter of the outputs per tile; the
// same rule holds for it (AlexNet conv2, 96 -> 256: 1.43; 32 -> 64 on 28x28: 1.34; 16 -> 32:
// 0.90). For the other stride-1 layers the direct algorithm wins or ties the implicit GEMM:
// clearly where few filters share each packed patch (LeNet conv1 16 vs 48 GFLOP/s on one thread,
// Inception 5x5 45 vs 66) and also on big layers (AlexNet conv2 125 vs 122). A 1x1 layer has no
// patch gather to save, and a plain GEMM on the image, packed in row groups, beats it (ResNet's
// 256 -> 64 reduction 10.4 vs 11.7 ms, 64 -> 64 2.6 vs 3.1). Layers with few input channels
// (at most 32) and at least a register tile of filters broadcast input pixels instead, packing
// nothing: at any stride (ResNet conv1 19 vs 27 ms for the implicit GEMM, AlexNet conv1 15 vs
// 19) and ahead of direct at stride 1 (Inception 5x5 1.14 vs 1.54 ms, 8 -> 16 channels on 56x56
// 0.79 vs 1.33), provided each micro-kernel call has a reduction of 64 or more to amortise its
// tile's store (3 channels with a 3x3 filter: 40 vs 30 ms) and the filters fill the tile it
// takes for them (LeNet conv1's 6 filters: 0.61 vs 0.22; LeNet conv3's 16 on AVX-512's 10 x 16
// tile, rows of 10 pixels: 0.23-0.31 vs 0.29-0.36 ms on AMD Zen 4). Not, at stride 1 on Intel,
// where the filters take a tile narrower than the widest (AVX-512's one vector of 16 filters: its
// 1 + MR loads a step for MR FMAs keep it under the rate of two FMAs a cycle) and the reduction is
// long enough for direct's kc slices: 16 -> 16 5x5 on 56x56 2.7 vs 3.7 ms, 24 -> 16 5x5 on 28x28
// 1.1 vs 1.4, 32 -> 16 (Inception's 5x5 grad input) 1.5 vs 1.8; with reductions of 72 and 150
// (8 -> 16 3x3, LeNet conv3) broadcasting still wins (0.91 vs 1.17, 0.45 vs 0.53). On Zen 4,
// one FMA a cycle (CpuInfo::split_512bit_fma), the loads keep up and broadcasting wins there too:
// 16 -> 16 5x5 on 56x56 1.72 vs 1.76 ms, 24 -> 16 on 28x28 0.66 vs 0.70, 32 -> 16 0.90 vs 0.96.
// A strided layer with a spatial filter packs each input pixel into several patches, which
// broadcasting saves up to 256 channels (ResNet's 3x3/s2 layers, 128 and 256 channels: 11.0 vs 13.2
// and 10.9 vs 13.7 ms; a 5x5/s2 on 96: 2.6 vs 4.6), but not with 512 channels on 14x14 (18.0 vs
// 15.5: its weights no longer sit in L2 and rows of 7 pixels pad the tile), nor at 1x1 (ResNet's
// projection: 14.0 vs 11.7). The other strided layers with a spatial filter go direct, the band
// split by stride phase, which saves the patch gather there too: clearly with few filters (16
// filters 3x3/s2 on 64 channels of 56x56: 1.41 vs 1.84 ms; 24 filters 7x7/s2 on 3 channels of
// 224x224: 5.5 vs 9.2; 8 -> 24 5x5/s2: 0.44 vs 0.74), a tie with many (512 -> 512 3x3/s2 on 14x14:
// 19.7 vs 19.3). Strided 1x1 layers read one phase of four and take the implicit GEMM (ResNet's
// projection: 10.9 vs 17.5 ms direct). Depthwise layers go direct.
ConvAlgorithm choose_conv_algorithm(const Conv2dProblem& pr) {
  if (is_depthwise(pr) && pr.x.c > 1) return ConvAlgorithm::depthwise;
  // One output pixel from the whole image (a dense layer, LeNet-5's C5, VGG's fc6 as a 7x7
  // convolution, a squeeze-and-excitation block's 1x1 layers on 1x1 maps): one product over the
  // batch, either with the images as the columns (the implicit GEMM) or as the rows (pixel_gemm,
  // the image read in place as its patch). A lone image fills one column of a 16-wide tile, but
  // one row of a 6-row one: on Zen 3, 1280 -> 1000 dense 0.09 against 0.23 ms, 512 x 7 x 7 ->
  // 1024 3.8 against 5.4; at batch 8 the two are within 10-30% either way (2048 -> 1000 0.31 vs
  // 0.43, the 7x7 5.8 vs 5.2). The pointwise GEMM would run one image at a time, one column each
  // (512 -> 1000 at batch 8: 0.78 ms against 0.11); any per-pixel kernel fills its register
  // tile's pixels with a single one (LeNet-5's C5 on the broadcast kernel: 0.64 ms, torch 0.28).
  if (covers_whole_image(pr) && pr.params.groups == 1)
    return pr.x.n == 1 ? ConvAlgorithm::pixel_gemm : ConvAlgorithm::implicit_gemm;
  if (is_pointwise(pr)) return ConvAlgorithm::pointwise;
  if (is_winograd_worthwhile(pr)) return ConvAlgorithm::winograd;
  if (is_broadcast_worthwhile(pr)) return ConvAlgorithm::broadcast;
  return is_stride1(pr) || pr.r() * pr.s() > 1 ? ConvAlgorithm::direct : ConvAlgorithm::implicit_gemm;
}

ConvAlgorithm detail::resolve_conv_algorithm(const Conv2dProblem& pr, ConvAlgorithm algorithm) {
  if (algorithm == ConvAlgorithm::automatic) algorithm = choose_conv_algorithm(pr);
  const std::string why = conv_algorithm_unsupported_reason(pr, algorithm);
  if (!why.empty())
    throw std::invalid_argument(std::string("conv2d: algorithm='") + conv_algorithm_name(algorithm) +
                                "' cannot compute this convolution: " + why);
  return algorithm;
}

int64_t conv2d_workspace_size(const Conv2dProblem& pr, ConvAlgorithm algorithm) {
  check_problem(pr, "conv2d_workspace_size");
  algorithm = detail::resolve_conv_algorithm(pr, algorithm);
  if (pr.x.n == 0) return 0;
  switch (algorithm) {
    case ConvAlgorithm::pointwise:
      return detail::gemm_convolution_workspace_bytes(pr, true);
    case ConvAlgorithm::direct:
      return detail::direct_workspace_bytes(pr);
    case ConvAlgorithm::winograd:  // or the implicit GEMM, for inputs holding Inf or NaN
      return std::max(detail::winograd_workspace_bytes(pr), detail::gemm_convolution_workspace_bytes(pr, false));
    case ConvAlgorithm::depthwise:
      return detail::depthwise_workspace_bytes(pr);
    case ConvAlgorithm::broadcast:
      return detail::broadcast_workspace_bytes(pr);
    case ConvAlgorithm::pixel_gemm:
      return detail::pixel_gemm_workspace_bytes(pr);
    default:
      return detail::gemm_convolution_workspace_bytes(pr, false);
  }
}

void conv2d_forward(const Conv2dProblem& pr, const float* x, const float* weight, const float* bias, float* y,
                    Activation activation, ConvAlgorithm algorithm) {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  check_problem(pr, "conv2d");
  check_data(x, pr.x.numel(), "x", "conv2d");
  check_data(weight, pr.weight.numel(), "weight", "conv2d");
  check_data(y, pr.y().numel(), "y", "conv2d");
  algorithm = detail::resolve_conv_algorithm(pr, algorithm);
  if (pr.x.n == 0) return;
  // Winograd's transforms mix every value of a tile into every output of it (and Inf - Inf is
  // NaN), so one Inf would turn a whole tile to NaN: such inputs take the implicit GEMM, which
  // propagates them as torch does (prepare_conv does the same for such weights).
  if (algorithm == ConvAlgorithm::winograd && !detail::all_finite(x, pr.x.numel()))
    algorithm = ConvAlgorithm::implicit_gemm;
  detail::PreparedConv prepared;
  detail::prepare_conv(pr, algorithm, weight, bias, false, &prepared);
  detail::run_conv(prepared, pr, x, detail::ConvOutput{y, pr.k() * pr.p * pr.q, false, activation});
}

namespace detail {

bool all_finite(const float* x, int64_t n) {
  bool finite = true;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(static) reduction(&& : finite) \
    num_threads(detail::threads_for(n, get_num_threads()))
  for (int64_t block = 0; block < n; block += 4096) {
    const int64_t end = std::min(n, block + 4096);
    detail::Quad zeros{};
    int64_t i = block;
    for (; i + 4 <= end; i += 4) zeros += detail::load_quad(x + i) * 0.0f;
    float rest = (zeros[0] + zeros[1]) + (zeros[2] + zeros[3]);
    for (; i < end; ++i) rest += x[i] * 0.0f;
    finite = finite && rest == 0.0f;
  }
  return finite;
}

int64_t PreparedConv::model_bytes() const {
  const auto bytes = [](const AlignedBuffer& b) { return b.is_model_memory() ? scratch_bytes(b.size()) : 0; };
  return bytes(storage) + bytes(bias_storage);
}

const float* keep_or_borrow(const float* data, int64_t count, bool keep, AlignedBuffer* buffer) {
  if (!keep || data == nullptr) return data;
  buffer->make_model_memory();
  buffer->resize(count);
  std::copy(data, data + count, buffer->data());
  return buffer->data();
}

void prepare_conv(const Conv2dProblem& pr, ConvAlgorithm algorithm, const float* weight, const float* bias, bool keep,
                  PreparedConv* prepared) {
  if (algorithm == ConvAlgorithm::winograd && !all_finite(weight, pr.weight.numel()))
    algorithm = ConvAlgorithm::implicit_gemm;
  prepared->algorithm = algorithm;
  switch (algorithm) {
    case ConvAlgorithm::direct:
      return prepare_direct(pr, weight, bias, keep, prepared);
    case ConvAlgorithm::winograd:
      return prepare_winograd(pr, weight, bias, keep, prepared);
    case ConvAlgorithm::broadcast:
      return prepare_broadcast(pr, weight, bias, keep, prepared);
    case ConvAlgorithm::pixel_gemm:
      return prepare_pixel_gemm(pr, weight, bias, keep, prepared);
    case ConvAlgorithm::depthwise:
      prepared->weights = keep_or_borrow(weight, pr.weight.numel(), keep, &prepared->storage);
      prepared->bias = keep_or_borrow(bias, pr.k(), keep, &prepared->bias_storage);
      return;
    default:
      return prepare_gemm_convolution(pr, weight, bias, keep, prepared);
  }
}

void run_conv(const PreparedConv& prepared, const Conv2dProblem& pr, const float* x, const ConvOutput& out) {
  if (pr.x.n == 0) return;
  switch (prepared.algorithm) {
    case ConvAlgorithm::pointwise:
      return conv2d_gemm(pr, prepared, x, out, true);
    case ConvAlgorithm::direct:
      return conv2d_direct(pr, prepared, x, out);
    case ConvAlgorithm::winograd:
      return conv2d_winograd(pr, prepared, x, out);
    case ConvAlgorithm::depthwise:
      return conv2d_depthwise(pr, prepared, x, out);
    case ConvAlgorithm::broadcast:
      return conv2d_broadcast(pr, prepared, x, out);
    case ConvAlgorithm::pixel_gemm:
      return conv2d_pixel_gemm(pr, prepared, x, out);
    default:
      return conv2d_gemm(pr, prepared, x, out, false);
  }
}

}  // namespace detail

}  // namespace pyconvx
