// The layers of a Network as the plan compiler reads them (internal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pyconvx/plan.hpp"

namespace pyconvx::detail {

enum class LayerKind {
  input, conv2d, dense, batch_norm, activation, add, concat, max_pool2d, avg_pool2d, global_avg_pool2d,
  adaptive_avg_pool2d, flatten, softmax, lrn, identity
};

const char* layer_kind_name(LayerKind kind);

// One layer: its kind, the ids of its inputs (earlier layers), its per-sample output shape and
// the parameters its kind uses. Weights are the caller's arrays (see Network).
struct Layer {
  LayerKind kind = LayerKind::input;
  std::vector<int> inputs;
  std::vector<int64_t> shape;
  Activation activation = Activation::none;
  // conv2d (weight K x C/groups x R x S) and dense (weight features x units, as given)
  Shape4 weight_shape;
  const float* weight = nullptr;
  const float* bias = nullptr;
  Conv2dParams conv;
  ConvAlgorithm algorithm = ConvAlgorithm::automatic;  // conv2d: forced, or the plan's choice
  // batch_norm
  const float *gamma = nullptr, *beta = nullptr, *mean = nullptr, *variance = nullptr;
  double epsilon = 0.0;
  // max_pool2d and avg_pool2d; adaptive_avg_pool2d's output size in pool.kernel_h, kernel_w
  Pool2dParams pool;
  // concat
  int64_t axis = 0;
  // lrn
  int64_t size = 0;
  double alpha = 0.0, exponent = 0.0, k = 0.0;
  int input_index = -1;  // input: its position among the network's inputs
};

int64_t numel(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pyconvx::detail

struct pyconvx::Network::Impl {
  std::vector<detail::Layer> layers;
  std::vector<int> inputs, outputs;
};
