// Another Python extension built on the kernels the package ships: it includes the headers from
// pyconvx.get_include(), links lib/libpyconvx.so, and so shares the package's thread count and
// workspace (one library in the process, not a second copy).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <pyconvx/pyconvx.hpp>

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// y = max_pool2d(relu(conv2d(x, w, padding=1)), 2), through the C++ API.
FloatArray conv_relu_pool(const FloatArray& x, const FloatArray& w) {
  using namespace pyconvx;
  Conv2dParams same;
  same.pad_top = same.pad_bottom = same.pad_left = same.pad_right = 1;
  const Conv2dProblem conv = make_conv2d_problem({x.shape(0), x.shape(1), x.shape(2), x.shape(3)},
                                                 {w.shape(0), w.shape(1), w.shape(2), w.shape(3)}, same);
  FloatArray y({conv.y().n, conv.y().c, conv.y().h, conv.y().w});
  conv2d_forward(conv, x.data(), w.data(), nullptr, y.mutable_data(), Activation::relu);
  Pool2dParams pool;
  pool.kernel_h = pool.kernel_w = pool.stride_h = pool.stride_w = 2;
  const Pool2dProblem pooling = make_pool2d_problem(conv.y(), pool, "max_pool2d");
  FloatArray z({pooling.y().n, pooling.y().c, pooling.y().h, pooling.y().w});
  max_pool2d_forward(pooling, y.data(), z.mutable_data(), nullptr);
  return z;
}

PYBIND11_MODULE(pybind_extension, m) {
  m.def("conv_relu_pool", &conv_relu_pool);
  m.def("get_num_threads", &pyconvx::get_num_threads);
  m.def("live_workspace_bytes", [] { return pyconvx::workspace_usage().live_bytes; });
}
