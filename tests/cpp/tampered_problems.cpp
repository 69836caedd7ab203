// A problem edited after make_*_problem, or a null pointer, must be refused by the public entry
// points before any kernel reads or writes out of bounds. Prints one line per refused call.
#include <pyconvx/pyconvx.hpp>

#include <cstdio>
#include <stdexcept>
#include <vector>

template <class Call>
bool refused(const char* what, Call call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    std::printf("%s: %s\n", what, e.what());
    return true;
  }
  std::printf("%s: accepted\n", what);
  return false;
}

int main() {
  using namespace pyconvx;
  std::vector<float> x(1 * 2 * 6 * 6, 1.0f), w(3 * 2 * 3 * 3, 1.0f), y(1 * 3 * 8 * 8);
  Conv2dProblem conv = make_conv2d_problem({1, 2, 6, 6}, {3, 2, 3, 3}, Conv2dParams{});
  conv.p = 8;  // claims a larger output than the shapes give
  Pool2dParams pp;
  pp.kernel_h = pp.kernel_w = pp.stride_h = pp.stride_w = 2;
  Pool2dProblem pool = make_pool2d_problem({1, 2, 6, 6}, pp, "max_pool2d");
  pool.params.stride_h = 1;  // the stored output size no longer follows
  const Conv2dProblem good = make_conv2d_problem({1, 2, 6, 6}, {3, 2, 3, 3}, Conv2dParams{});
  bool all = refused("conv2d", [&] { conv2d_forward(conv, x.data(), w.data(), nullptr, y.data()); });
  all &= refused("conv2d_backward", [&] { conv2d_backward(conv, y.data(), x.data(), w.data(), x.data(), nullptr, nullptr); });
  all &= refused("max_pool2d", [&] { max_pool2d_forward(pool, x.data(), y.data(), nullptr); });
  all &= refused("null weight", [&] { conv2d_forward(good, x.data(), nullptr, nullptr, y.data()); });
  all &= refused("null grad_y", [&] { conv2d_backward(good, nullptr, x.data(), w.data(), nullptr, w.data(), nullptr); });
  const int64_t offsets[1] = {0};
  all &= refused("crop_windows", [&] { crop_windows({1, 2, -6, 6}, x.data(), 2, 2, offsets, offsets, 0.0f, y.data()); });
  double parameters[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, maps[6];
  all &= refused("affine_matrices", [&] { affine_matrices(-1, parameters, parameters, parameters, parameters, maps); });
  all &= refused("affine_pixel_maps", [&] { affine_pixel_maps(1, nullptr, 2, 2, 2, 2, maps); });
  return all ? 0 : 1;
}
