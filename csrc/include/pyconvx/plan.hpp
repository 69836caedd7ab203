// Whole-network inference: a Network (a graph of layers and their weights) compiled once into an
// InferencePlan that runs a batch through every layer in one call.
//
// Building the plan does the preparation once: batch normalisation folded into the convolution
// or dense layer before it, every weight matrix packed (or transformed, for Winograd) for the
// algorithm chosen for its shape, activations and residual additions fused into the convolution
// that feeds them, concatenated branches written straight into their slice of the result, and
// every intermediate tensor given a place in one arena by liveness. Running it allocates nothing
// after the first call and calls no Python: layer after layer, each kernel on the threads of
// get_num_threads().
//
//   pyconvx::Network net;
//   auto x = net.input({3, 224, 224});
//   auto y = net.conv2d(x, {64, 3, 7, 7}, w, nullptr, params);
//   y = net.batch_norm(y, gamma, beta, mean, var, 1e-5);
//   net.output(net.activation(y, pyconvx::Activation::relu));
//   pyconvx::InferencePlan plan(net, 8);        // up to 8 images a call
//   plan.run(n, inputs, outputs);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyconvx/conv.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx {

// A network for inference: layers over per-sample tensors, (C, H, W) for images or (features,),
// each call adding one layer and returning the id of its output. Every call checks its arguments
// and throws std::invalid_argument naming the layer (by its index and kind) and the values.
// Weights are borrowed: the arrays must stay valid and unchanged until every plan built from the
// network is built (the plan copies what it keeps); they may change or go away afterwards.
class Network {
 public:
  using Tensor = int;

  Network();
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;

  // A network input of per-sample `shape` (all sizes >= 1).
  Tensor input(const std::vector<int64_t>& shape);
  // y = act(conv(x, weight) + bias); x (C, H, W), weight K x C/groups x R x S, bias K values or null.
  // `algorithm` forces one (it must be able to compute the shape); automatic leaves the choice to
  // the plan (the heuristic, or the fastest measured when autotuning).
  Tensor conv2d(Tensor x, const Shape4& weight_shape, const float* weight, const float* bias,
                const Conv2dParams& params, Activation activation = Activation::none,
                ConvAlgorithm algorithm = ConvAlgorithm::automatic);
  // y = act(x @ kernel + bias); x (features,), kernel features x units (row-major), bias or null.
  Tensor dense(Tensor x, int64_t units, const float* kernel, const float* bias, Activation activation = Activation::none);
  // (x - mean) / sqrt(variance + epsilon) * gamma + beta per channel (axis 0 of the per-sample shape).
  Tensor batch_norm(Tensor x, const float* gamma, const float* beta, const float* mean, const float* variance,
                    double epsilon);
  Tensor activation(Tensor x, Activation activation);
  // act(the sum of xs), at least two tensors of one shape.
  Tensor add(const std::vector<Tensor>& xs, Activation activation = Activation::none);
  // The tensors joined along per-sample `axis` (0: channels); the other axes must agree.
  Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0);
  // Pooling of a (C, H, W) tensor with pool.hpp's semantics.
  Tensor max_pool2d(Tensor x, const Pool2dParams& params);
  Tensor avg_pool2d(Tensor x, const Pool2dParams& params);
  // (C, H, W) -> (C,): the mean of each plane.
  Tensor global_avg_pool2d(Tensor x);
  // (C, H, W) -> (C, out_h, out_w), torch's adaptive windows (which may overlap).
  Tensor adaptive_avg_pool2d(Tensor x, int64_t out_h, int64_t out_w);
  // Any shape -> (numel,), in C order.
  Tensor flatten(Tensor x);
  // Softmax over per-sample axis 0 (the classes of (classes,), the channels of (C, H, W)).
  Tensor softmax(Tensor x);
  // Local response normalisation across channels (see nn.hpp's lrn_forward).
  Tensor lrn(Tensor x, int64_t size, double alpha, double beta, double k);
  // The identity at inference (dropout, or a layer that only names its input).
  Tensor identity(Tensor x);
  // Marks x as an output of the network, in call order.
  void output(Tensor x);

  // The per-sample shape of a tensor.
  const std::vector<int64_t>& shape(Tensor x) const;
  int64_t size() const;  // layers so far

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// A network compiled for batches of at most `max_batch` images (>= 1), each convolution with the
// algorithm measured fastest for its shapes when get_autotune() is on (runtime.hpp), else the
// heuristic's. Thread-safe: several threads may run one plan at once (each run takes an arena of
// its own, kept for later runs).
class InferencePlan {
 public:
  InferencePlan(const Network& network, int64_t max_batch);
  ~InferencePlan();
  InferencePlan(const InferencePlan&) = delete;
  InferencePlan& operator=(const InferencePlan&) = delete;

  // Runs n images, 0 <= n <= max_batch: inputs[i] holds n samples of input i's shape,
  // outputs[i] receives n samples of output i's shape (all C-contiguous float32, the outputs
  // distinct from the inputs and from each other). Throws std::invalid_argument for a bad n or a
  // null pointer. With step_seconds, it receives the wall time of each step, in describe()'s order.
  void run(int64_t n, const float* const* inputs, float* const* outputs,
           std::vector<double>* step_seconds = nullptr) const;

  int64_t max_batch() const;
  const std::vector<std::vector<int64_t>>& input_shapes() const;
  const std::vector<std::vector<int64_t>>& output_shapes() const;
  // Bytes the plan holds for its prepared weights, and for the intermediate tensors of one run
  // (an arena; concurrent runs each hold one).
  int64_t weight_bytes() const;
  int64_t arena_bytes() const;
  // One line a step: what it computes (fused layers, the convolution algorithm), for tests,
  // profiles and curious users.
  std::string describe() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyconvx
