// The binding of the inference plan (Network, InferencePlan) and of the element-wise layers it
// shares with Python (nn.hpp). The Network keeps every array it was given alive, so that its
// borrowed pointers stay valid until the plans built from it are built.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "pyconvx/nn.hpp"
#include "pyconvx/plan.hpp"
#include "pyconvx/runtime.hpp"

namespace py = pybind11;

namespace pyconvx::python {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

class PyNetwork {
 public:
  using Tensor = Network::Tensor;

  Tensor input(const std::vector<int64_t>& shape) { return net_.input(shape); }

  Tensor conv2d(Tensor x, const FloatArray& weight, const std::optional<FloatArray>& bias, Pair stride, Quad padding,
                Pair dilation, int64_t groups, const std::string& activation, const std::string& algorithm) {
    if (weight.ndim() != 4)
      throw std::invalid_argument("Network.conv2d: weight must be 4-D (K, C/groups, R, S), got " +
                                  std::to_string(weight.ndim()) + "-D");
    const Shape4 w{weight.shape(0), weight.shape(1), weight.shape(2), weight.shape(3)};
    check_bias(bias, w.n, "Network.conv2d");
    return net_.conv2d(x, w, keep(weight), bias ? keep(*bias) : nullptr, conv_params(stride, padding, dilation, groups),
                       act(activation), conv_algorithm_from_name(algorithm));
  }

  Tensor dense(Tensor x, const FloatArray& kernel, const std::optional<FloatArray>& bias,
               const std::string& activation) {
    // The array must match the input (the C++ API cannot see a pointer's length); the input's
    // own shape is the C++ API's to check.
    const std::vector<int64_t>& in = net_.shape(x);
    if (kernel.ndim() != 2 || (in.size() == 1 && kernel.shape(0) != in[0]))
      throw std::invalid_argument("Network.dense: kernel must be (features, units) with features=" +
                                  std::to_string(in[0]) + ", got a " + std::to_string(kernel.ndim()) + "-D kernel" +
                                  (kernel.ndim() == 2 ? " of " + std::to_string(kernel.shape(0)) + " rows" : ""));
    check_bias(bias, kernel.shape(1), "Network.dense");
    return net_.dense(x, kernel.shape(1), keep(kernel), bias ? keep(*bias) : nullptr, act(activation));
  }

  Tensor batch_norm(Tensor x, const FloatArray& gamma, const FloatArray& beta, const FloatArray& mean,
                    const FloatArray& variance, double epsilon) {
    const int64_t c = net_.shape(x).at(0);
    for (const FloatArray* a : {&gamma, &beta, &mean, &variance})
      if (a->ndim() != 1 || a->shape(0) != c)
        throw std::invalid_argument("Network.batch_norm: gamma, beta, mean and variance must each hold " +
                                    std::to_string(c) + " values (the channels)");
    return net_.batch_norm(x, keep(gamma), keep(beta), keep(mean), keep(variance), epsilon);
  }

  Tensor activation(Tensor x, const std::string& activation) { return net_.activation(x, act(activation)); }
  Tensor add(const std::vector<Tensor>& xs, const std::string& activation) { return net_.add(xs, act(activation)); }
  Tensor concat(const std::vector<Tensor>& xs, int64_t axis) { return net_.concat(xs, axis); }

  Tensor pool2d(Tensor x, const std::string& kind, Pair kernel, Pair stride, Quad padding, bool ceil_mode,
                bool count_include_pad) {
    const Pool2dParams p = pool_params(kernel, stride, padding, ceil_mode, count_include_pad);
    if (kind == "max") return net_.max_pool2d(x, p);
    if (kind == "avg") return net_.avg_pool2d(x, p);
    throw std::invalid_argument("Network.pool2d: kind must be 'max' or 'avg', got kind='" + kind + "'");
  }

  Tensor global_avg_pool2d(Tensor x) { return net_.global_avg_pool2d(x); }
  Tensor adaptive_avg_pool2d(Tensor x, Pair size) { return net_.adaptive_avg_pool2d(x, size[0], size[1]); }
  Tensor flatten(Tensor x) { return net_.flatten(x); }
  Tensor softmax(Tensor x) { return net_.softmax(x); }
  Tensor lrn(Tensor x, int64_t size, double alpha, double beta, double k) { return net_.lrn(x, size, alpha, beta, k); }
  Tensor identity(Tensor x) { return net_.identity(x); }
  void output(Tensor x) { net_.output(x); }
  std::vector<int64_t> shape(Tensor x) const { return net_.shape(x); }
  int64_t size() const { return net_.size(); }
  const Network& network() const { return net_; }

 private:
  static Activation act(const std::string& name) { return activation_from_name(name, "Network"); }

  static void check_bias(const std::optional<FloatArray>& bias, int64_t count, const char* op) {
    if (bias && (bias->ndim() != 1 || bias->shape(0) != count))
      throw std::invalid_argument(std::string(op) + ": bias must have shape (" + std::to_string(count) + ",)");
  }

  // The array's data, the array kept alive as long as the network.
  const float* keep(const FloatArray& a) {
    kept_.push_back(a);
    return a.data();
  }

  Network net_;
  std::vector<py::object> kept_;
};

// An input or output array of a run: n samples of `shape`, C-contiguous float32.
void check_io(const py::array& a, int64_t n, const std::vector<int64_t>& shape, const std::string& name) {
  bool ok = a.dtype().is(py::dtype::of<float>()) && (a.flags() & py::array::c_style) &&
            a.ndim() == static_cast<py::ssize_t>(shape.size() + 1) && a.shape(0) == n;
  for (size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape(d + 1) == shape[d];
  if (!ok) {
    std::string expected = "(" + std::to_string(n);
    for (int64_t d : shape) expected += ", " + std::to_string(d);
    throw std::invalid_argument("InferencePlan.run: " + name + " must be a C-contiguous float32 array of shape " +
                                expected + ")");
  }
}

std::vector<double> run_plan(const InferencePlan& plan, const std::vector<py::array>& inputs,
                             std::vector<py::array>& outputs, bool timed) {
  const auto& in_shapes = plan.input_shapes();
  const auto& out_shapes = plan.output_shapes();
  if (inputs.size() != in_shapes.size() || outputs.size() != out_shapes.size())
    throw std::invalid_argument("InferencePlan.run: expected " + std::to_string(in_shapes.size()) + " inputs and " +
                                std::to_string(out_shapes.size()) + " outputs, got " + std::to_string(inputs.size()) +
                                " and " + std::to_string(outputs.size()));
  const int64_t n = inputs.empty() ? 0 : inputs[0].shape(0);
  std::vector<const float*> in(inputs.size());
  std::vector<float*> out(outputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_io(inputs[i], n, in_shapes[i], "inputs[" + std::to_string(i) + "]");
    in[i] = static_cast<const float*>(inputs[i].data());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    check_io(outputs[i], n, out_shapes[i], "outputs[" + std::to_string(i) + "]");
    if (!outputs[i].writeable())
      throw std::invalid_argument("InferencePlan.run: outputs[" + std::to_string(i) + "] must be writable");
    out[i] = static_cast<float*>(outputs[i].mutable_data());
  }
  std::vector<double> seconds;
  py::gil_scoped_release release;
  plan.run(n, in.data(), out.data(), timed ? &seconds : nullptr);
  return seconds;
}

FloatArray pointwise_py(const FloatArray& x, const std::optional<FloatArray>& z, const std::string& activation) {
  const Activation act = activation_from_name(activation, "activation");
  if (z && (z->ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), z->shape())))
    throw std::invalid_argument("add: the operands must have one shape");
  FloatArray y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  float* out = y.mutable_data();
  const float* other = z ? z->data() : nullptr;
  py::gil_scoped_release release;
  if (other)
    add_forward(x.data(), other, out, x.size(), act);
  else
    activation_forward(x.data(), out, x.size(), act);
  return y;
}

// The autotune cache's warnings (a file ignored, a write that failed) as RuntimeWarnings.
void warn_about_autotune_cache() {
  for (const std::string& message : take_autotune_warnings())
    if (PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 1) != 0) throw py::error_already_set();
}

}  // namespace

void bind_plan(py::module_& m) {
  py::class_<PyNetwork>(m, "Network")
      .def(py::init<>())
      .def("input", &PyNetwork::input, py::arg("shape"))
      .def("conv2d", &PyNetwork::conv2d, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"),
           py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation"),
           py::arg("algorithm") = "auto")
      .def("dense", &PyNetwork::dense, py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("activation"))
      .def("batch_norm", &PyNetwork::batch_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("mean"),
           py::arg("variance"), py::arg("epsilon"))
      .def("activation", &PyNetwork::activation, py::arg("x"), py::arg("activation"))
      .def("add", &PyNetwork::add, py::arg("xs"), py::arg("activation"))
      .def("concat", &PyNetwork::concat, py::arg("xs"), py::arg("axis"))
      .def("pool2d", &PyNetwork::pool2d, py::arg("x"), py::arg("kind"), py::arg("kernel"), py::arg("stride"),
           py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"))
      .def("global_avg_pool2d", &PyNetwork::global_avg_pool2d, py::arg("x"))
      .def("adaptive_avg_pool2d", &PyNetwork::adaptive_avg_pool2d, py::arg("x"), py::arg("size"))
      .def("flatten", &PyNetwork::flatten, py::arg("x"))
      .def("softmax", &PyNetwork::softmax, py::arg("x"))
      .def("lrn", &PyNetwork::lrn, py::arg("x"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"))
      .def("identity", &PyNetwork::identity, py::arg("x"))
      .def("output", &PyNetwork::output, py::arg("x"))
      .def("shape", &PyNetwork::shape, py::arg("x"))
      .def("__len__", &PyNetwork::size);
  py::class_<InferencePlan>(m, "InferencePlan")
      .def(py::init([](const PyNetwork& net, int64_t max_batch) {
             std::unique_ptr<InferencePlan> plan;
             {
               py::gil_scoped_release release;
               plan = std::make_unique<InferencePlan>(net.network(), max_batch);
             }
             warn_about_autotune_cache();
             return plan;
           }),
           py::arg("network"), py::arg("max_batch"))
      .def("run", &run_plan, py::arg("inputs"), py::arg("outputs"), py::arg("timed") = false)
      .def_property_readonly("max_batch", &InferencePlan::max_batch)
      .def_property_readonly("input_shapes", &InferencePlan::input_shapes)
      .def_property_readonly("output_shapes", &InferencePlan::output_shapes)
      .def_property_readonly("weight_bytes", &InferencePlan::weight_bytes)
      .def_property_readonly("arena_bytes", &InferencePlan::arena_bytes)
      .def("describe", &InferencePlan::describe);
  m.def("pointwise", &pointwise_py, py::arg("x"), py::arg("z"), py::arg("activation"));
  m.def("activation_names", [] {
    std::vector<std::string> names;
    for (int a = 0; a <= static_cast<int>(Activation::hardsigmoid); ++a)
      names.push_back(activation_name(static_cast<Activation>(a)));
    return names;
  });
}

}  // namespace pyconvx::python
