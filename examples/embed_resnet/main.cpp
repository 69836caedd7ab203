// A small ResNet (a CIFAR-sized residual network: a 3x3 stem, a basic block, a strided block
// with a projection shortcut, global average pooling, a dense head) run from C++ through the
// inference plan, with no Python: the network is described layer by layer, compiled once for
// batches of up to 4 images, then run on a batch of 3. The weights follow a fixed pattern, also
// written in tests/test_embedding.py, which builds the same network in Python and compares the
// logits this prints.
#include <pyconvx/pyconvx.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <deque>
#include <vector>

namespace {

using pyconvx::Network;

// count values in [-0.5, 0.5) from `salt`, times `scale`.
std::vector<float> pattern(int64_t count, int64_t salt, double scale) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    values[static_cast<size_t>(i)] = static_cast<float>(((i * 7919 + salt * 104729) % 1000 / 1000.0 - 0.5) * scale);
  return values;
}

// The network borrows its weights until the plan is built: they are kept here.
struct Weights {
  std::deque<std::vector<float>> arrays;
  int64_t salt = 0;
  const float* next(int64_t count, double scale, double offset = 0.0) {
    std::vector<float> values = pattern(count, ++salt, scale);
    for (float& v : values) v += static_cast<float>(offset);
    arrays.push_back(std::move(values));
    return arrays.back().data();
  }
};

Network::Tensor conv_bn(Network& net, Weights& w, Network::Tensor x, int64_t in, int64_t out, int64_t kernel,
                        int64_t stride, bool relu) {
  pyconvx::Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = kernel / 2;
  const double scale = 2.0 / std::sqrt(static_cast<double>(in * kernel * kernel));
  x = net.conv2d(x, pyconvx::Shape4{out, in, kernel, kernel}, w.next(out * in * kernel * kernel, scale), nullptr, p);
  const float* gamma = w.next(out, 1.0, 1.0);
  const float* beta = w.next(out, 0.2);
  const float* mean = w.next(out, 0.2);
  const float* variance = w.next(out, 1.0, 1.0);
  x = net.batch_norm(x, gamma, beta, mean, variance, 1e-5);
  return relu ? net.activation(x, pyconvx::Activation::relu) : x;
}

// torchvision's basic block: two 3x3 convolutions, the shortcut projected when the shape changes.
Network::Tensor basic_block(Network& net, Weights& w, Network::Tensor x, int64_t in, int64_t out, int64_t stride) {
  Network::Tensor h = conv_bn(net, w, x, in, out, 3, stride, true);
  h = conv_bn(net, w, h, out, out, 3, 1, false);
  const Network::Tensor shortcut = stride != 1 || in != out ? conv_bn(net, w, x, in, out, 1, stride, false) : x;
  return net.add({h, shortcut}, pyconvx::Activation::relu);
}

}  // namespace

int main() {
  Network net;
  Weights w;
  Network::Tensor x = net.input({3, 32, 32});
  Network::Tensor h = conv_bn(net, w, x, 3, 16, 3, 1, true);
  h = basic_block(net, w, h, 16, 16, 1);
  h = basic_block(net, w, h, 16, 32, 2);
  h = net.global_avg_pool2d(h);
  const float* kernel = w.next(32 * 10, 2.0);
  const float* bias = w.next(10, 0.02);
  net.output(net.dense(h, 10, kernel, bias));

  const pyconvx::InferencePlan plan(net, 4);
  const std::vector<float> images = pattern(3 * 3 * 32 * 32, 0, 2.0);
  std::vector<float> logits(3 * 10);
  const float* inputs[] = {images.data()};
  float* outputs[] = {logits.data()};
  plan.run(3, inputs, outputs);

  std::printf("pyconvx %s (%s)\n", PYCONVX_VERSION_STRING, pyconvx::cpu_info().active.c_str());
  const std::string steps = plan.describe();  // one line a step: what each fuses, which algorithm
  std::printf("steps %zu\n", static_cast<size_t>(std::count(steps.begin(), steps.end(), '\n')));
  for (int n = 0; n < 3; ++n) {
    std::printf("logits%d", n);
    for (int k = 0; k < 10; ++k) std::printf(" %.6f", logits[n * 10 + k]);
    std::printf("\n");
  }
  std::printf("weights %lld arena %lld\n", static_cast<long long>(plan.weight_bytes()),
              static_cast<long long>(plan.arena_bytes()));
  return 0;
}
