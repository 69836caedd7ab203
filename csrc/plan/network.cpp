// Network: the layer calls, each checked and its output shape worked out as it is added.
#include "network.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "../conv/algorithms.hpp"
#include "pyconvx/shape.hpp"

namespace pyconvx {
namespace detail {

const char* layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::input: return "input";
    case LayerKind::conv2d: return "conv2d";
    case LayerKind::dense: return "dense";
    case LayerKind::batch_norm: return "batch_norm";
    case LayerKind::activation: return "activation";
    case LayerKind::add: return "add";
    case LayerKind::concat: return "concat";
    case LayerKind::max_pool2d: return "max_pool2d";
    case LayerKind::avg_pool2d: return "avg_pool2d";
    case LayerKind::global_avg_pool2d: return "global_avg_pool2d";
    case LayerKind::adaptive_avg_pool2d: return "adaptive_avg_pool2d";
    case LayerKind::flatten: return "flatten";
    case LayerKind::softmax: return "softmax";
    case LayerKind::lrn: return "lrn";
    case LayerKind::identity: return "identity";
  }
  return "unknown";
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul(n, d, "Network: tensor size");
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace detail

namespace {

using detail::Layer;
using detail::LayerKind;

// Errors name the layer about to be added by its index and kind.
[[noreturn]] void fail(const Network::Impl& net, LayerKind kind, const std::string& message) {
  throw std::invalid_argument("Network: layer " + std::to_string(net.layers.size()) + " (" +
                              detail::layer_kind_name(kind) + "): " + message);
}

const Layer& input_layer(const Network::Impl& net, Network::Tensor x, LayerKind kind) {
  if (x < 0 || x >= static_cast<Network::Tensor>(net.layers.size()))
    fail(net, kind, "input tensor " + std::to_string(x) + " is not a layer of this network (it has " +
                        std::to_string(net.layers.size()) + ")");
  return net.layers[x];
}

// The (C, H, W) of an image input; fails for another rank.
void check_image(const Network::Impl& net, const Layer& in, LayerKind kind) {
  if (in.shape.size() != 3) fail(net, kind, "expected a (C, H, W) input, got shape " + detail::shape_str(in.shape));
}

void check_activation(const Network::Impl& net, Activation a, LayerKind kind) {
  if (std::string(activation_name(a)) == "unknown")
    fail(net, kind, "unknown activation " + std::to_string(static_cast<int>(a)));
}

void check_weights(const Network::Impl& net, LayerKind kind, std::initializer_list<std::pair<const float*, const char*>> arrays) {
  for (const auto& [data, name] : arrays)
    if (data == nullptr) fail(net, kind, std::string(name) + " must not be null");
}

Network::Tensor push(Network::Impl& net, Layer layer) {
  net.layers.push_back(std::move(layer));
  return static_cast<Network::Tensor>(net.layers.size() - 1);
}

// A layer of `kind` over the one tensor x, its output shaped as x until the caller says otherwise.
Layer over(const Network::Impl& net, LayerKind kind, Network::Tensor x) {
  Layer layer;
  layer.kind = kind;
  layer.inputs = {x};
  layer.shape = input_layer(net, x, kind).shape;
  return layer;
}

}  // namespace

Network::Network() : impl_(std::make_unique<Impl>()) {}
Network::~Network() = default;
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;

int64_t Network::size() const { return static_cast<int64_t>(impl_->layers.size()); }

const std::vector<int64_t>& Network::shape(Tensor x) const {
  return input_layer(*impl_, x, LayerKind::identity).shape;
}

Network::Tensor Network::input(const std::vector<int64_t>& shape) {
  if (shape.empty()) fail(*impl_, LayerKind::input, "shape must have at least one axis");
  for (int64_t d : shape)
    if (d < 1) fail(*impl_, LayerKind::input, "sizes must be >= 1, got shape " + detail::shape_str(shape));
  detail::numel(shape);
  Layer layer;
  layer.kind = LayerKind::input;
  layer.shape = shape;
  layer.input_index = static_cast<int>(impl_->inputs.size());
  const Tensor t = push(*impl_, std::move(layer));
  impl_->inputs.push_back(t);
  return t;
}

Network::Tensor Network::conv2d(Tensor x, const Shape4& weight_shape, const float* weight, const float* bias,
                                const Conv2dParams& params, Activation activation, ConvAlgorithm algorithm) {
  constexpr LayerKind kind = LayerKind::conv2d;
  const Layer& in = input_layer(*impl_, x, kind);
  check_image(*impl_, in, kind);
  check_activation(*impl_, activation, kind);
  check_weights(*impl_, kind, {{weight, "weight"}});
  Conv2dProblem pr;
  try {
    pr = make_conv2d_problem(Shape4{1, in.shape[0], in.shape[1], in.shape[2]}, weight_shape, params, "conv2d");
    detail::resolve_conv_algorithm(pr, algorithm);  // a forced algorithm must be able to compute it
  } catch (const std::invalid_argument& e) {
    fail(*impl_, kind, e.what());
  }
  Layer layer = over(*impl_, kind, x);
  layer.shape = {pr.k(), pr.p, pr.q};
  layer.weight_shape = weight_shape;
  layer.weight = weight;
  layer.bias = bias;
  layer.conv = params;
  layer.activation = activation;
  layer.algorithm = algorithm;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::dense(Tensor x, int64_t units, const float* kernel, const float* bias, Activation activation) {
  constexpr LayerKind kind = LayerKind::dense;
  const Layer& in = input_layer(*impl_, x, kind);
  if (in.shape.size() != 1)
    fail(*impl_, kind, "expected a (features,) input, got shape " + detail::shape_str(in.shape) +
                           " (flatten or pool it first)");
  if (units < 1) fail(*impl_, kind, "units must be >= 1, got units=" + std::to_string(units));
  check_activation(*impl_, activation, kind);
  check_weights(*impl_, kind, {{kernel, "kernel"}});
  checked_mul(in.shape[0], units, "Network: dense kernel size");
  Layer layer = over(*impl_, kind, x);
  layer.shape = {units};
  layer.weight_shape = Shape4{units, in.shape[0], 1, 1};
  layer.weight = kernel;
  layer.bias = bias;
  layer.activation = activation;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::batch_norm(Tensor x, const float* gamma, const float* beta, const float* mean,
                                    const float* variance, double epsilon) {
  constexpr LayerKind kind = LayerKind::batch_norm;
  check_weights(*impl_, kind, {{gamma, "gamma"}, {beta, "beta"}, {mean, "mean"}, {variance, "variance"}});
  if (!(epsilon > 0.0)) fail(*impl_, kind, "epsilon must be > 0, got epsilon=" + std::to_string(epsilon));
  Layer layer = over(*impl_, kind, x);
  layer.gamma = gamma;
  layer.beta = beta;
  layer.mean = mean;
  layer.variance = variance;
  layer.epsilon = epsilon;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::activation(Tensor x, Activation activation) {
  constexpr LayerKind kind = LayerKind::activation;
  check_activation(*impl_, activation, kind);
  Layer layer = over(*impl_, kind, x);
  layer.activation = activation;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::add(const std::vector<Tensor>& xs, Activation activation) {
  constexpr LayerKind kind = LayerKind::add;
  if (xs.size() < 2) fail(*impl_, kind, "needs at least 2 inputs, got " + std::to_string(xs.size()));
  const std::vector<int64_t> shape = input_layer(*impl_, xs[0], kind).shape;
  for (Tensor x : xs)
    if (input_layer(*impl_, x, kind).shape != shape)
      fail(*impl_, kind, "inputs must have one shape, got " + detail::shape_str(shape) + " and " +
                             detail::shape_str(impl_->layers[x].shape));
  check_activation(*impl_, activation, kind);
  Layer layer;
  layer.kind = kind;
  layer.inputs = xs;
  layer.shape = shape;
  layer.activation = activation;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::concat(const std::vector<Tensor>& xs, int64_t axis) {
  constexpr LayerKind kind = LayerKind::concat;
  if (xs.empty()) fail(*impl_, kind, "needs at least 1 input");
  std::vector<int64_t> shape = input_layer(*impl_, xs[0], kind).shape;
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (axis < 0 || axis >= rank)
    fail(*impl_, kind, "axis must be in [0, " + std::to_string(rank) + ") for inputs of shape " +
                           detail::shape_str(shape) + ", got axis=" + std::to_string(axis));
  shape[axis] = 0;
  for (Tensor x : xs) {
    const std::vector<int64_t>& s = input_layer(*impl_, x, kind).shape;
    bool agree = static_cast<int64_t>(s.size()) == rank;
    for (int64_t d = 0; agree && d < rank; ++d) agree = d == axis || s[d] == shape[d];
    if (!agree)
      fail(*impl_, kind, "inputs must agree on every axis but axis " + std::to_string(axis) + ", got " +
                             detail::shape_str(impl_->layers[xs[0]].shape) + " and " + detail::shape_str(s));
    shape[axis] = checked_add(shape[axis], s[axis], "Network: concat size");
  }
  Layer layer;
  layer.kind = kind;
  layer.inputs = xs;
  layer.shape = shape;
  layer.axis = axis;
  return push(*impl_, std::move(layer));
}

namespace {

Network::Tensor pool(Network::Impl& net, LayerKind kind, Network::Tensor x, const Pool2dParams& params) {
  const Layer& in = input_layer(net, x, kind);
  check_image(net, in, kind);
  Pool2dProblem pr;
  try {
    pr = make_pool2d_problem(Shape4{1, in.shape[0], in.shape[1], in.shape[2]}, params, detail::layer_kind_name(kind));
  } catch (const std::invalid_argument& e) {
    fail(net, kind, e.what());
  }
  Layer layer = over(net, kind, x);
  layer.shape = {pr.x.c, pr.p, pr.q};
  layer.pool = params;
  return push(net, std::move(layer));
}

}  // namespace

Network::Tensor Network::max_pool2d(Tensor x, const Pool2dParams& params) {
  return pool(*impl_, LayerKind::max_pool2d, x, params);
}

Network::Tensor Network::avg_pool2d(Tensor x, const Pool2dParams& params) {
  return pool(*impl_, LayerKind::avg_pool2d, x, params);
}

Network::Tensor Network::global_avg_pool2d(Tensor x) {
  constexpr LayerKind kind = LayerKind::global_avg_pool2d;
  const Layer& in = input_layer(*impl_, x, kind);
  check_image(*impl_, in, kind);
  Layer layer = over(*impl_, kind, x);
  layer.shape = {in.shape[0]};
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::adaptive_avg_pool2d(Tensor x, int64_t out_h, int64_t out_w) {
  constexpr LayerKind kind = LayerKind::adaptive_avg_pool2d;
  const Layer& in = input_layer(*impl_, x, kind);
  check_image(*impl_, in, kind);
  if (out_h < 1 || out_w < 1)
    fail(*impl_, kind, "the output size must be >= 1, got (" + std::to_string(out_h) + ", " + std::to_string(out_w) +
                           ")");
  Layer layer = over(*impl_, kind, x);
  layer.shape = {in.shape[0], out_h, out_w};
  layer.pool.kernel_h = out_h;
  layer.pool.kernel_w = out_w;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::flatten(Tensor x) {
  constexpr LayerKind kind = LayerKind::flatten;
  const Layer& in = input_layer(*impl_, x, kind);
  Layer layer = over(*impl_, kind, x);
  layer.shape = {detail::numel(in.shape)};
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::softmax(Tensor x) { return push(*impl_, over(*impl_, LayerKind::softmax, x)); }

Network::Tensor Network::lrn(Tensor x, int64_t size, double alpha, double beta, double k) {
  constexpr LayerKind kind = LayerKind::lrn;
  if (size < 1) fail(*impl_, kind, "size must be >= 1, got size=" + std::to_string(size));
  Layer layer = over(*impl_, kind, x);
  layer.size = size;
  layer.alpha = alpha;
  layer.exponent = beta;
  layer.k = k;
  return push(*impl_, std::move(layer));
}

Network::Tensor Network::identity(Tensor x) { return push(*impl_, over(*impl_, LayerKind::identity, x)); }

void Network::output(Tensor x) {
  input_layer(*impl_, x, LayerKind::identity);
  impl_->outputs.push_back(x);
}

}  // namespace pyconvx
