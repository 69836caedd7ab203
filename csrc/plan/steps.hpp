// The steps of an inference plan and where their tensors live (internal).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../conv/algorithms.hpp"
#include "../core/workspace.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx::detail {

// Where a value (a layer's output) lives during a run: in an arena buffer, or in one of the
// caller's input or output arrays. Image n's part starts at base + n * image_stride + offset:
// a value written into its slice of a concatenation has the concatenation's image stride and
// the slice's offset.
struct Place {
  enum Where { unplaced, arena, input, output };
  Where where = unplaced;
  int index = -1;  // the arena buffer, or the position of the input or output array
  int64_t offset = 0, image_stride = 0;
};

// The pointers of one run: the arena and the caller's arrays.
struct RunContext {
  float* arena;
  const std::vector<int64_t>* buffer_offsets;  // floats into the arena, by buffer
  const float* const* inputs;
  float* const* outputs;
  const std::vector<Place>* places;

  float* at(int value) const {
    const Place& p = (*places)[value];
    float* base = p.where == Place::arena    ? arena + (*buffer_offsets)[p.index]
                  : p.where == Place::output ? outputs[p.index]
                                             : const_cast<float*>(inputs[p.index]);
    return base + p.offset;
  }
  int64_t stride(int value) const { return (*places)[value].image_stride; }
};

// One step: reads the values `reads`, writes the value `writes`, for n images.
struct Step {
  std::vector<int> reads;
  int writes = -1;
  std::string what;  // for describe()
  virtual ~Step() = default;
  virtual void run(const RunContext& ctx, int64_t n) const = 0;
  virtual int64_t weight_bytes() const { return 0; }
};

// A convolution (or a dense layer, as a convolution over a 1 x 1 image) with its fused batch
// normalisation, activation and residual additions: reads[0] is its input, reads[1..] the
// residuals summed into its output before it accumulates onto them (nothing to do when the
// output already lives where the only residual does).
struct ConvStep final : Step {
  Conv2dProblem problem;  // N: the plan's batch
  std::unique_ptr<PreparedConv> prepared;
  AlignedBuffer raw, raw_bias;  // Winograd's filters as given, for inputs holding Inf or NaN
  Activation activation = Activation::none;
  void run(const RunContext& ctx, int64_t n) const override;
  int64_t weight_bytes() const override;
};

enum class PoolKind { max, average, global_average, adaptive_average };

struct PoolStep final : Step {
  PoolKind kind = PoolKind::max;
  Shape4 x;  // per-sample C, H, W in c, h, w
  Pool2dParams params;  // adaptive: the output size in kernel_h, kernel_w
  void run(const RunContext& ctx, int64_t n) const override;
};

// y = act(scale[c] * x + shift[c]) per channel (batch normalisation on its own), or, without
// scales, y = act(sum of reads) (activations and additions).
struct PointwiseStep final : Step {
  Activation activation = Activation::none;
  int64_t numel = 0, channels = 0;  // per sample
  AlignedBuffer scale_shift;        // 2 * channels floats, or empty
  void run(const RunContext& ctx, int64_t n) const override;
  int64_t weight_bytes() const override { return scratch_bytes(scale_shift.size()); }
};

// Copies each read value into its place in the written one, along per-sample axis `axis`:
// the concatenation of inputs that could not write their slices themselves, and outputs that
// must be copies (an input returned as an output, one value returned twice).
struct CopyStep final : Step {
  std::vector<int64_t> offsets;  // floats into each outer block of the written value, per read
  std::vector<int64_t> sizes;    // floats of each read value per outer block
  int64_t outer = 1;             // blocks per sample (the product of the sizes before the axis)
  int64_t block = 0;             // floats of the written value per outer block
  void run(const RunContext& ctx, int64_t n) const override;
};

struct SoftmaxStep final : Step {
  int64_t channels = 0, inner = 0;
  void run(const RunContext& ctx, int64_t n) const override;
};

struct LrnStep final : Step {
  Shape4 x;  // per-sample C, H, W (H * W may be 1 x 1)
  int64_t size = 0;
  double alpha = 0.0, beta = 0.0, k = 0.0;
  void run(const RunContext& ctx, int64_t n) const override;
};

}  // namespace pyconvx::detail
