// The plan compiler: fusion, placement and the arena (see compile.hpp).
#include "compile.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "../conv/algorithms.hpp"
#include "../tune/autotune.hpp"

namespace pyconvx::detail {
namespace {

// What one step will compute, gathered while the layers are read in order and fused.
struct Draft {
  LayerKind kind;
  int main;                // the layer whose parameters the step uses
  int bn = -1;             // a batch normalisation folded into a convolution or dense layer
  Activation activation = Activation::none;
  std::vector<int> reads;  // values: a convolution's input, then its residuals
  int writes;              // the value it produces: the last layer fused into it
  bool live = true;
};

bool is_conv(const Draft& d) { return d.kind == LayerKind::conv2d || d.kind == LayerKind::dense; }

std::string fused_names(const Draft& d) {
  std::string s;
  if (d.bn >= 0) s += " +batch_norm";
  if (d.reads.size() > 1 && is_conv(d)) s += " +add(" + std::to_string(d.reads.size() - 1) + ")";
  if (d.activation != Activation::none) s += std::string(" +") + activation_name(d.activation);
  return s;
}

std::string describe(const Network::Impl& net, const Draft& d) {
  const Layer& main = net.layers[d.main];
  std::string s = std::string(layer_kind_name(d.kind)) + "[" + std::to_string(d.main) + "]";
  if (d.kind == LayerKind::conv2d) {
    const Shape4& w = main.weight_shape;
    s += " " + std::to_string(w.n) + "x" + std::to_string(w.c) + "x" + std::to_string(w.h) + "x" + std::to_string(w.w) +
         " s" + std::to_string(main.conv.stride_h) + (main.conv.groups > 1 ? " g" + std::to_string(main.conv.groups) : "");
  }
  s += fused_names(d);
  return s + " -> " + shape_str(net.layers[d.writes].shape);
}

// The per-sample shape as N = 1 plus C, H, W (1 x 1 for a (features,) or other shape).
Shape4 image_of(const std::vector<int64_t>& shape) {
  if (shape.size() == 3) return Shape4{1, shape[0], shape[1], shape[2]};
  return Shape4{1, shape[0], numel(shape) / shape[0], 1};
}

std::unique_ptr<ConvStep> make_conv_step(const Network::Impl& net, const Draft& d, int64_t max_batch, bool autotune) {
  const Layer& main = net.layers[d.main];
  auto step = std::make_unique<ConvStep>();
  const std::vector<int64_t>& in = net.layers[d.reads[0]].shape;
  const Shape4& ws = main.weight_shape;
  const int64_t K = ws.n, red = ws.c * ws.h * ws.w;
  Conv2dParams params = main.conv;
  Shape4 x;
  if (d.kind == LayerKind::dense) {
    params = Conv2dParams{};
    x = Shape4{max_batch, numel(in), 1, 1};  // the source of a flatten keeps its own shape
  } else {
    x = Shape4{max_batch, in[0], in[1], in[2]};
  }
  step->problem = make_conv2d_problem(x, ws, params, "InferencePlan");
  // The filters (a dense kernel transposed to units x features) with the batch normalisation
  // folded in, computed in double: scale = gamma / sqrt(variance + epsilon) per filter.
  std::vector<float> weights, bias;
  const float* w = main.weight;
  const float* b = main.bias;
  if (d.kind == LayerKind::dense || d.bn >= 0) {
    weights.resize(static_cast<size_t>(K * red));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < red; ++j)
        weights[k * red + j] = d.kind == LayerKind::dense ? main.weight[j * K + k] : main.weight[k * red + j];
    w = weights.data();
  }
  if (d.bn >= 0) {
    const Layer& bn = net.layers[d.bn];
    bias.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      const double scale = bn.gamma[k] / std::sqrt(static_cast<double>(bn.variance[k]) + bn.epsilon);
      for (int64_t j = 0; j < red; ++j) weights[k * red + j] = static_cast<float>(weights[k * red + j] * scale);
      bias[k] = static_cast<float>(((main.bias ? main.bias[k] : 0.0) - bn.mean[k]) * scale + bn.beta[k]);
    }
    b = bias.data();
  }
  // A dense layer is a convolution whose filters cover its 1 x 1 image; a convolution takes the
  // algorithm forced on it, else the fastest measured or the heuristic's.
  const ConvAlgorithm forced = d.kind == LayerKind::dense ? ConvAlgorithm::automatic : main.algorithm;
  if (forced == ConvAlgorithm::automatic && autotune) {
    step->prepared = prepare_fastest(step->problem, w, b);
  } else {
    step->prepared = std::make_unique<PreparedConv>();
    prepare_conv(step->problem, forced == ConvAlgorithm::automatic ? choose_conv_algorithm(step->problem) : forced,
                 w, b, true, step->prepared.get());
  }
  if (step->prepared->algorithm == ConvAlgorithm::winograd) {
    keep_or_borrow(w, K * red, true, &step->raw);
    if (b) keep_or_borrow(b, K, true, &step->raw_bias);
  }
  step->activation = d.activation;
  step->what = describe(net, d) + " [" + conv_algorithm_name(step->prepared->algorithm) + "]";
  return step;
}

std::unique_ptr<Step> make_step(const Network::Impl& net, const Draft& d, int64_t max_batch, bool autotune) {
  const Layer& main = net.layers[d.main];
  std::unique_ptr<Step> step;
  switch (d.kind) {
    case LayerKind::conv2d:
    case LayerKind::dense:
      return make_conv_step(net, d, max_batch, autotune);
    case LayerKind::max_pool2d:
    case LayerKind::avg_pool2d:
    case LayerKind::global_avg_pool2d:
    case LayerKind::adaptive_avg_pool2d: {
      auto pool = std::make_unique<PoolStep>();
      pool->kind = d.kind == LayerKind::max_pool2d   ? PoolKind::max
                   : d.kind == LayerKind::avg_pool2d ? PoolKind::average
                   : d.kind == LayerKind::global_avg_pool2d ? PoolKind::global_average
                                                            : PoolKind::adaptive_average;
      pool->x = image_of(net.layers[d.reads[0]].shape);
      pool->params = main.pool;
      step = std::move(pool);
      break;
    }
    case LayerKind::batch_norm:
    case LayerKind::activation:
    case LayerKind::add: {
      auto pw = std::make_unique<PointwiseStep>();
      pw->activation = d.activation;
      pw->numel = numel(main.shape);
      if (d.kind == LayerKind::batch_norm) {
        const int64_t C = main.shape[0];
        pw->channels = C;
        pw->scale_shift.make_model_memory();
        pw->scale_shift.resize(2 * C);
        for (int64_t c = 0; c < C; ++c) {
          const double scale = main.gamma[c] / std::sqrt(static_cast<double>(main.variance[c]) + main.epsilon);
          pw->scale_shift.data()[c] = static_cast<float>(scale);
          pw->scale_shift.data()[C + c] = static_cast<float>(main.beta[c] - main.mean[c] * scale);
        }
      }
      step = std::move(pw);
      break;
    }
    case LayerKind::softmax: {
      auto sm = std::make_unique<SoftmaxStep>();
      sm->channels = main.shape[0];
      sm->inner = numel(main.shape) / main.shape[0];
      step = std::move(sm);
      break;
    }
    case LayerKind::lrn: {
      auto lrn = std::make_unique<LrnStep>();
      lrn->x = image_of(main.shape);
      lrn->size = main.size;
      lrn->alpha = main.alpha;
      lrn->beta = main.exponent;
      lrn->k = main.k;
      step = std::move(lrn);
      break;
    }
    default:
      throw std::logic_error("InferencePlan: no step for a layer of kind " + std::string(layer_kind_name(d.kind)));
  }
  step->what = describe(net, d);
  return step;
}

// A copy of `reads` into `writes` along per-sample axis `axis` at the given offsets (floats
// into each outer block).
std::unique_ptr<CopyStep> make_copy(const Network::Impl& net, const std::vector<int>& reads,
                                    const std::vector<int64_t>& axis_offsets, const std::vector<int64_t>& out_shape,
                                    int64_t axis, int writes, const std::string& what) {
  auto copy = std::make_unique<CopyStep>();
  copy->reads = reads;
  copy->writes = writes;
  for (int64_t d = 0; d < axis; ++d) copy->outer *= out_shape[d];
  copy->block = numel(out_shape) / copy->outer;
  const int64_t inner = copy->block / out_shape[axis];  // floats per index along the axis
  for (size_t r = 0; r < reads.size(); ++r) {
    copy->offsets.push_back(axis_offsets[r] * inner);
    copy->sizes.push_back(numel(net.layers[reads[r]].shape) / copy->outer);
  }
  copy->what = what;
  return copy;
}

}  // namespace

CompiledNetwork compile_network(const Network::Impl& net, int64_t max_batch, bool autotune) {
  const std::vector<Layer>& layers = net.layers;
  const int count = static_cast<int>(layers.size());
  if (net.outputs.empty()) throw std::invalid_argument("InferencePlan: the network has no outputs (call output())");
  CompiledNetwork out;

  // Views (flatten, identity) are their source's memory.
  std::vector<int> src(count);
  for (int t = 0; t < count; ++t) {
    const LayerKind k = layers[t].kind;
    src[t] = k == LayerKind::flatten || k == LayerKind::identity ? src[layers[t].inputs[0]] : t;
  }
  std::vector<int> uses(count, 0);
  std::vector<bool> exposed(count, false);
  for (int t = 0; t < count; ++t)
    if (src[t] == t && layers[t].kind != LayerKind::input)
      for (int in : layers[t].inputs) ++uses[src[in]];
  for (int o : net.outputs) {
    ++uses[src[o]];
    exposed[src[o]] = true;
  }
  const auto single_use = [&](int v) { return uses[v] == 1 && !exposed[v]; };

  // 1. Fusion, layer by layer.
  std::vector<Draft> drafts;
  std::vector<int> draft_of(count, -1);
  const auto fusable = [&](int v) -> Draft* {  // the draft making v, if it may take a next layer
    return draft_of[v] >= 0 && single_use(v) && drafts[draft_of[v]].activation == Activation::none
               ? &drafts[draft_of[v]]
               : nullptr;
  };
  for (int t = 0; t < count; ++t) {
    const Layer& layer = layers[t];
    if (src[t] != t || layer.kind == LayerKind::input) continue;
    std::vector<int> reads;
    for (int in : layer.inputs) reads.push_back(src[in]);
    if (layer.kind == LayerKind::batch_norm) {
      Draft* d = fusable(layer.inputs[0]);  // directly after (a flatten in between changes the channels)
      if (d && is_conv(*d) && d->bn < 0 && d->reads.size() == 1 && src[layer.inputs[0]] == layer.inputs[0]) {
        d->bn = t;
        draft_of[d->writes] = -1;
        d->writes = t;
        draft_of[t] = static_cast<int>(d - drafts.data());
        continue;
      }
    }
    if (layer.kind == LayerKind::activation) {
      Draft* d = fusable(reads[0]);
      if (d && (is_conv(*d) || d->kind == LayerKind::add || d->kind == LayerKind::batch_norm)) {
        d->activation = layer.activation;
        draft_of[d->writes] = -1;
        d->writes = t;
        draft_of[t] = static_cast<int>(d - drafts.data());
        continue;
      }
    }
    if (layer.kind == LayerKind::add) {
      // The latest convolution among the inputs accumulates onto the others.
      int chosen = -1;
      for (size_t i = 0; i < reads.size(); ++i) {
        Draft* d = fusable(reads[i]);
        const bool once = std::count(reads.begin(), reads.end(), reads[i]) == 1;
        if (d && is_conv(*d) && d->reads.size() == 1 && once && (chosen < 0 || reads[i] > reads[chosen]))
          chosen = static_cast<int>(i);
      }
      if (chosen >= 0) {
        Draft& d = drafts[draft_of[reads[chosen]]];
        for (size_t i = 0; i < reads.size(); ++i)
          if (static_cast<int>(i) != chosen) d.reads.push_back(reads[i]);
        d.activation = layer.activation;
        draft_of[d.writes] = -1;
        d.writes = t;
        draft_of[t] = static_cast<int>(&d - drafts.data());
        continue;
      }
    }
    Draft d{layer.kind, t};
    d.activation = layer.kind == LayerKind::dense || layer.kind == LayerKind::conv2d || layer.kind == LayerKind::add ||
                           layer.kind == LayerKind::activation
                       ? layer.activation
                       : Activation::none;
    d.reads = reads;
    d.writes = t;
    draft_of[t] = static_cast<int>(drafts.size());
    drafts.push_back(std::move(d));
  }
  // Steps run in the order of the values they write (a fused convolution where its addition
  // was); steps nothing needs are dropped.
  std::vector<int> order;
  for (size_t i = 0; i < drafts.size(); ++i) order.push_back(static_cast<int>(i));
  std::sort(order.begin(), order.end(), [&](int a, int b) { return drafts[a].writes < drafts[b].writes; });
  std::vector<bool> needed(count, false);
  for (int o : net.outputs) needed[src[o]] = true;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Draft& d = drafts[*it];
    d.live = needed[d.writes];
    if (d.live)
      for (int r : d.reads) needed[r] = true;
  }

  // 2. Placement.
  std::vector<Place>& places = out.places;
  places.resize(count);
  std::vector<int64_t> buffer_floats;
  const auto new_buffer = [&](int v) {
    buffer_floats.push_back(numel(layers[v].shape));
    places[v] = Place{Place::arena, static_cast<int>(buffer_floats.size()) - 1, 0, numel(layers[v].shape)};
  };
  for (int t : net.inputs) places[t] = Place{Place::input, layers[t].input_index, 0, numel(layers[t].shape)};
  std::vector<std::unique_ptr<Step>> output_copies;
  for (size_t o = 0; o < net.outputs.size(); ++o) {
    const int v = src[net.outputs[o]];
    out.output_shapes.push_back(layers[net.outputs[o]].shape);
    const Place external{Place::output, static_cast<int>(o), 0, numel(layers[v].shape)};
    if (places[v].where == Place::unplaced) {
      places[v] = external;
      continue;
    }
    places.push_back(external);  // an input returned, or a value returned twice: a copy
    output_copies.push_back(make_copy(net, {v}, {0}, {numel(layers[v].shape)}, 0,
                                      static_cast<int>(places.size()) - 1, "copy -> output " + std::to_string(o)));
  }
  for (int t : net.inputs) out.input_shapes.push_back(layers[t].shape);

  // Concatenations, outermost first: inputs that may write their slice get a place in it.
  std::vector<std::unique_ptr<CopyStep>> concat_copy(drafts.size());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Draft& d = drafts[*it];
    if (!d.live || d.kind != LayerKind::concat) continue;
    const int c = d.writes;
    const Layer& layer = layers[d.main];
    if (places[c].where == Place::unplaced) new_buffer(c);
    std::vector<int> copied;
    std::vector<int64_t> offsets, copied_offsets;
    int64_t at = 0;
    for (int r : d.reads) {
      offsets.push_back(at);
      at += layers[r].shape[layer.axis];
    }
    for (size_t i = 0; i < d.reads.size(); ++i) {
      const int r = d.reads[i];
      const Draft* maker = draft_of[r] >= 0 ? &drafts[draft_of[r]] : nullptr;
      const bool writes_slices = maker && (is_conv(*maker) || (maker->kind == LayerKind::concat &&
                                                               layers[maker->main].axis == 0));
      const bool once = std::count(d.reads.begin(), d.reads.end(), r) == 1;
      if (layer.axis == 0 && writes_slices && single_use(r) && once && places[r].where == Place::unplaced) {
        const int64_t inner = numel(layer.shape) / layer.shape[0];
        places[r] = places[c];
        places[r].offset += offsets[i] * inner;
        continue;
      }
      copied.push_back(r);
      copied_offsets.push_back(offsets[i]);
    }
    if (!copied.empty())
      concat_copy[*it] = make_copy(net, copied, copied_offsets, layer.shape, layer.axis, c,
                                   describe(net, d) + " (" + std::to_string(copied.size()) + " copied)");
  }

  // The steps, in order; the last step reading each value (for buffers taken over in place).
  std::vector<int> last_read(places.size(), -1);
  int position = 0;
  std::vector<int> step_of_draft(drafts.size(), -1);
  for (int i : order) {
    const Draft& d = drafts[i];
    if (!d.live || (d.kind == LayerKind::concat && !concat_copy[i])) continue;
    step_of_draft[i] = position;
    for (int r : d.reads) last_read[r] = position;
    ++position;
  }
  for (int o : net.outputs) last_read[src[o]] = INT_MAX;
  const auto can_take = [&](int r, int v, int at) {
    const Place& p = places[r];
    return p.where == Place::arena && p.offset == 0 && p.image_stride == numel(layers[r].shape) &&
           numel(layers[r].shape) == numel(layers[v].shape) && last_read[r] == at;
  };
  for (int i : order) {
    const Draft& d = drafts[i];
    if (!d.live) continue;
    if (d.kind == LayerKind::concat) {
      if (concat_copy[i]) out.steps.push_back(std::move(concat_copy[i]));
      continue;
    }
    const int v = d.writes, at = step_of_draft[i];
    if (places[v].where == Place::unplaced) {
      // In place: an element-wise step over any input that dies with it; a convolution over its
      // first residual (never over its own input, which it reads while it writes).
      const bool elementwise = d.kind == LayerKind::activation || d.kind == LayerKind::add ||
                               d.kind == LayerKind::batch_norm;
      if (elementwise) {
        for (int r : d.reads)
          if (can_take(r, v, at)) {
            places[v] = places[r];
            break;
          }
      } else if (is_conv(d) && d.reads.size() > 1 && d.reads[1] != d.reads[0] && can_take(d.reads[1], v, at)) {
        places[v] = places[d.reads[1]];
      }
      if (places[v].where == Place::unplaced) new_buffer(v);
    }
    std::unique_ptr<Step> step = make_step(net, d, max_batch, autotune);
    step->reads = d.reads;
    step->writes = v;
    out.steps.push_back(std::move(step));
  }
  for (auto& copy : output_copies) out.steps.push_back(std::move(copy));

  // 3. The arena: each buffer's life in steps, then offsets, largest first.
  const int buffers = static_cast<int>(buffer_floats.size());
  std::vector<int> first(buffers, INT_MAX), last(buffers, -1);
  for (int s = 0; s < static_cast<int>(out.steps.size()); ++s) {
    const Step& step = *out.steps[s];
    const auto touch = [&](int v) {
      if (places[v].where != Place::arena) return;
      first[places[v].index] = std::min(first[places[v].index], s);
      last[places[v].index] = std::max(last[places[v].index], s);
    };
    touch(step.writes);
    for (int r : step.reads) touch(r);
  }
  std::vector<int> by_size(buffers);
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(), [&](int a, int b) { return buffer_floats[a] > buffer_floats[b]; });
  out.buffer_offsets.assign(buffers, 0);
  std::vector<int> placed;
  for (int b : by_size) {
    // 64-byte aligned starts; the lowest offset clear of every placed buffer alive at the same time.
    const int64_t size = (checked_mul(buffer_floats[b], max_batch, "InferencePlan: arena") + 15) / 16 * 16;
    std::vector<std::pair<int64_t, int64_t>> taken;
    for (int other : placed)
      if (first[other] <= last[b] && first[b] <= last[other])
        taken.push_back({out.buffer_offsets[other],
                         out.buffer_offsets[other] + (buffer_floats[other] * max_batch + 15) / 16 * 16});
    std::sort(taken.begin(), taken.end());
    int64_t offset = 0;
    for (const auto& [lo, hi] : taken) {
      if (offset + size <= lo) break;
      offset = std::max(offset, hi);
    }
    out.buffer_offsets[b] = offset;
    out.arena_floats = std::max(out.arena_floats, offset + size);
    placed.push_back(b);
  }
  return out;
}

}  // namespace pyconvx::detail
