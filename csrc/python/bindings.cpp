// The Python binding: turns arrays into shapes and pointers, allocates outputs, releases the GIL
// around each kernel. Validation stays in the C++ API (std::invalid_argument becomes ValueError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "pyconvx/pyconvx.hpp"

namespace py = pybind11;
using namespace pyconvx;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using pyconvx::python::conv_params;
using pyconvx::python::Pair;
using pyconvx::python::pool_params;
using pyconvx::python::Quad;

Shape4 shape_of(const py::array& a, const char* name) {
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  return make_shape4(dims.data(), static_cast<int>(a.ndim()), name);
}

Shape4 shape_from(const std::vector<int64_t>& dims, const char* name) {
  return make_shape4(dims.data(), static_cast<int>(dims.size()), name);
}

FloatArray empty(const Shape4& s) { return FloatArray({s.n, s.c, s.h, s.w}); }

float* data(FloatArray& a) { return a.mutable_data(); }

FloatArray conv2d(const FloatArray& x, const FloatArray& w, std::optional<FloatArray> bias, Pair stride, Quad padding,
                  Pair dilation, int64_t groups, bool relu, const std::string& algorithm) {
  const ConvAlgorithm algo = conv_algorithm_from_name(algorithm);
  const Conv2dProblem pr =
      make_conv2d_problem(shape_of(x, "x"), shape_of(w, "weight"), conv_params(stride, padding, dilation, groups));
  if (bias && (bias->ndim() != 1 || bias->shape(0) != pr.k()))
    throw std::invalid_argument("conv2d: bias must have shape (" + std::to_string(pr.k()) + ",) to match K=" +
                                std::to_string(pr.k()) + " filters");
  FloatArray y = empty(pr.y());
  const float* b = bias ? bias->data() : nullptr;
  float* out = data(y);
  py::gil_scoped_release release;
  conv2d_forward(pr, x.data(), w.data(), b, out, relu ? Activation::relu : Activation::none, algo);
  return y;
}

py::dict measure_conv_algorithms_py(const FloatArray& w, std::vector<int64_t> x_shape, Pair stride, Quad padding,
                                    Pair dilation, int64_t groups) {
  const Conv2dProblem pr = make_conv2d_problem(shape_from(x_shape, "x_shape"), shape_of(w, "weight"),
                                               conv_params(stride, padding, dilation, groups),
                                               "measure_conv_algorithms");
  std::vector<std::pair<ConvAlgorithm, double>> times;
  {
    py::gil_scoped_release release;
    times = measure_conv_algorithms(pr, w.data(), nullptr);
  }
  py::dict result;
  for (const auto& [algorithm, seconds] : times) result[conv_algorithm_name(algorithm)] = seconds;
  return result;
}

// The algorithm conv2d(..., algorithm="auto") takes for these shapes and parameters.
std::string conv2d_algorithm_py(std::vector<int64_t> x_shape, std::vector<int64_t> w_shape, Pair stride, Quad padding,
                                Pair dilation, int64_t groups) {
  const Conv2dProblem pr = make_conv2d_problem(shape_from(x_shape, "x_shape"), shape_from(w_shape, "weight_shape"),
                                               conv_params(stride, padding, dilation, groups), "conv2d_algorithm");
  return conv_algorithm_name(choose_conv_algorithm(pr));
}

int64_t conv2d_workspace_size_py(std::vector<int64_t> x_shape, std::vector<int64_t> w_shape, Pair stride, Quad padding,
                                 Pair dilation, int64_t groups, const std::string& algorithm) {
  const ConvAlgorithm algo = conv_algorithm_from_name(algorithm);
  const Conv2dProblem pr = make_conv2d_problem(shape_from(x_shape, "x_shape"), shape_from(w_shape, "weight_shape"),
                                               conv_params(stride, padding, dilation, groups), "conv2d_workspace_size");
  return conv2d_workspace_size(pr, algo);
}

py::tuple conv2d_backward_py(const FloatArray& gy, const FloatArray& x, const FloatArray& w, Pair stride, Quad padding,
                             Pair dilation, int64_t groups, bool need_x, bool need_w, bool need_b) {
  const Conv2dProblem pr = make_conv2d_problem(shape_of(x, "x"), shape_of(w, "weight"),
                                               conv_params(stride, padding, dilation, groups), "conv2d_backward");
  check_shape(shape_of(gy, "grad_out"), pr.y(), "grad_out", "conv2d_backward");
  std::optional<FloatArray> gx, gw, gb;
  if (need_x) gx = empty(pr.x);
  if (need_w) gw = empty(pr.weight);
  if (need_b) gb = FloatArray({pr.k()});
  float* px = gx ? data(*gx) : nullptr;
  float* pw = gw ? data(*gw) : nullptr;
  float* pb = gb ? data(*gb) : nullptr;
  {
    py::gil_scoped_release release;
    conv2d_backward(pr, gy.data(), x.data(), w.data(), px, pw, pb);
  }
  auto or_none = [](std::optional<FloatArray>& a) -> py::object { return a ? py::object(*a) : py::none(); };
  return py::make_tuple(or_none(gx), or_none(gw), or_none(gb));
}

FloatArray im2col_py(const FloatArray& x, Pair kernel, Pair stride, Quad padding, Pair dilation) {
  const Conv2dProblem pr =
      make_im2col_problem(shape_of(x, "x"), kernel[0], kernel[1], conv_params(stride, padding, dilation, 1));
  FloatArray cols({pr.x.n, pr.reduction(), pr.p * pr.q});
  float* out = cols.mutable_data();
  py::gil_scoped_release release;
  im2col(pr, x.data(), out);
  return cols;
}

FloatArray col2im_py(const FloatArray& cols, std::vector<int64_t> x_shape, Pair kernel, Pair stride, Quad padding,
                     Pair dilation) {
  const Conv2dProblem pr = make_im2col_problem(shape_from(x_shape, "x_shape"), kernel[0], kernel[1],
                                               conv_params(stride, padding, dilation, 1), "col2im");
  if (cols.ndim() != 3 || cols.shape(0) != pr.x.n || cols.shape(1) != pr.reduction() || cols.shape(2) != pr.p * pr.q)
    throw std::invalid_argument("col2im: cols must have shape (" + std::to_string(pr.x.n) + ", " +
                                std::to_string(pr.reduction()) + ", " + std::to_string(pr.p * pr.q) +
                                ") for x_shape " + pr.x.str() + " and this kernel, stride, padding and dilation");
  FloatArray x = empty(pr.x);
  float* out = data(x);
  py::gil_scoped_release release;
  col2im(pr, cols.data(), out);
  return x;
}

py::object max_pool2d_py(const FloatArray& x, Pair kernel, Pair stride, Quad padding, bool ceil_mode,
                         bool return_indices) {
  const Pool2dProblem pr =
      make_pool2d_problem(shape_of(x, "x"), pool_params(kernel, stride, padding, ceil_mode, true), "max_pool2d");
  FloatArray y = empty(pr.y());
  std::optional<IndexArray> idx;
  if (return_indices) idx = IndexArray({pr.x.n, pr.x.c, pr.p, pr.q});
  float* out = data(y);
  int64_t* where = idx ? idx->mutable_data() : nullptr;
  {
    py::gil_scoped_release release;
    max_pool2d_forward(pr, x.data(), out, where);
  }
  if (idx) return py::make_tuple(y, *idx);
  return std::move(y);
}

// x only supplies its shape when the indices are given: pass x_shape then and no input at all.
FloatArray max_pool2d_backward_impl(const FloatArray& gy, const Shape4& x_shape, const float* x,
                                    std::optional<IndexArray> indices, Pair kernel, Pair stride, Quad padding,
                                    bool ceil_mode) {
  const Pool2dProblem pr =
      make_pool2d_problem(x_shape, pool_params(kernel, stride, padding, ceil_mode, true), "max_pool2d_backward");
  check_shape(shape_of(gy, "grad_out"), pr.y(), "grad_out", "max_pool2d_backward");
  if (indices) check_shape(shape_of(*indices, "indices"), pr.y(), "indices", "max_pool2d_backward");
  FloatArray gx = empty(pr.x);
  float* out = data(gx);
  const int64_t* where = indices ? indices->data() : nullptr;
  py::gil_scoped_release release;
  max_pool2d_backward(pr, gy.data(), x, where, out);
  return gx;
}

FloatArray max_pool2d_backward_py(const FloatArray& gy, const FloatArray& x, std::optional<IndexArray> indices,
                                  Pair kernel, Pair stride, Quad padding, bool ceil_mode) {
  return max_pool2d_backward_impl(gy, shape_of(x, "x"), x.data(), std::move(indices), kernel, stride, padding,
                                  ceil_mode);
}

FloatArray max_pool2d_backward_indices_py(const FloatArray& gy, const std::vector<int64_t>& x_shape,
                                          const IndexArray& indices, Pair kernel, Pair stride, Quad padding,
                                          bool ceil_mode) {
  return max_pool2d_backward_impl(gy, shape_from(x_shape, "x_shape"), nullptr, indices, kernel, stride, padding,
                                  ceil_mode);
}

FloatArray avg_pool2d_py(const FloatArray& x, Pair kernel, Pair stride, Quad padding, bool ceil_mode,
                         bool count_include_pad) {
  const Pool2dProblem pr = make_pool2d_problem(
      shape_of(x, "x"), pool_params(kernel, stride, padding, ceil_mode, count_include_pad), "avg_pool2d");
  FloatArray y = empty(pr.y());
  float* out = data(y);
  py::gil_scoped_release release;
  avg_pool2d_forward(pr, x.data(), out);
  return y;
}

FloatArray avg_pool2d_backward_py(const FloatArray& gy, std::vector<int64_t> x_shape, Pair kernel, Pair stride,
                                  Quad padding, bool ceil_mode, bool count_include_pad) {
  const Pool2dProblem pr =
      make_pool2d_problem(shape_from(x_shape, "x_shape"), pool_params(kernel, stride, padding, ceil_mode, count_include_pad),
                          "avg_pool2d_backward");
  check_shape(shape_of(gy, "grad_out"), pr.y(), "grad_out", "avg_pool2d_backward");
  FloatArray gx = empty(pr.x);
  float* out = data(gx);
  py::gil_scoped_release release;
  avg_pool2d_backward(pr, gy.data(), out);
  return gx;
}

FloatArray global_avg_pool2d_py(const FloatArray& x) {
  const Shape4 s = shape_of(x, "x");
  FloatArray y({s.n, s.c, int64_t{1}, int64_t{1}});
  float* out = data(y);
  py::gil_scoped_release release;
  global_avg_pool2d_forward(s, x.data(), out);
  return y;
}

FloatArray global_avg_pool2d_backward_py(const FloatArray& gy, std::vector<int64_t> x_shape) {
  const Shape4 s = shape_from(x_shape, "x_shape");
  check_shape(shape_of(gy, "grad_out"), Shape4{s.n, s.c, 1, 1}, "grad_out", "global_avg_pool2d_backward");
  FloatArray gx = empty(s);
  float* out = data(gx);
  py::gil_scoped_release release;
  global_avg_pool2d_backward(s, gy.data(), out);
  return gx;
}

// "(2, 3, 4)": an array's shape for an error message.
std::string shape_text(const py::array& a) {
  std::string text = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) text += (i ? ", " : "") + std::to_string(a.shape(i));
  return text + (a.ndim() == 1 ? ",)" : ")");
}

FloatArray bilinear_sample_py(const FloatArray& x, const FloatArray& xs, const FloatArray& ys, float fill) {
  const Shape4 s = shape_of(x, "x");
  const bool same = xs.ndim() == 3 && ys.ndim() == 3 && ys.shape(0) == xs.shape(0) && ys.shape(1) == xs.shape(1) &&
                    ys.shape(2) == xs.shape(2);
  if (!same || xs.shape(0) != s.n)
    throw std::invalid_argument("bilinear_sample: xs and ys must both have shape (N, P, Q) with N=" +
                                std::to_string(s.n) + " (x's images), got xs " + shape_text(xs) + " and ys " +
                                shape_text(ys));
  FloatArray y = empty(Shape4{s.n, s.c, xs.shape(1), xs.shape(2)});
  float* out = data(y);
  py::gil_scoped_release release;
  bilinear_sample(s, x.data(), xs.shape(1), xs.shape(2), xs.data(), ys.data(), fill, out);
  return y;
}

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

FloatArray affine_sample_py(const FloatArray& x, const DoubleArray& maps, Pair out_size, float fill) {
  const Shape4 s = shape_of(x, "x");
  if (maps.ndim() != 3 || maps.shape(0) != s.n || maps.shape(1) != 2 || maps.shape(2) != 3)
    throw std::invalid_argument("affine_sample: maps must have shape (N, 2, 3) with N=" + std::to_string(s.n) +
                                " (x's images), got maps " + shape_text(maps));
  // A negative size gets an empty array here and is refused, with its value, by affine_sample.
  FloatArray y = empty(Shape4{s.n, s.c, std::max<int64_t>(out_size[0], 0), std::max<int64_t>(out_size[1], 0)});
  float* out = data(y);
  py::gil_scoped_release release;
  affine_sample(s, x.data(), out_size[0], out_size[1], maps.data(), fill, out);
  return y;
}

// Rows of `width` values (1: a number) in `values`: its shape (N, width), or (N,) for width 1.
int64_t rows_of(const DoubleArray& values, int64_t width) {
  const bool rows = width == 1 ? values.ndim() == 1 : values.ndim() == 2 && values.shape(1) == width;
  return rows ? values.shape(0) : -1;
}

// Per-image parameters, `width` values each, given once for every image (`width` values in any
// shape) or once per image (rows_of them).
std::vector<double> per_image(const DoubleArray& values, int64_t n, int64_t width, const char* name) {
  const int64_t count = values.size();
  if (count != width && rows_of(values, width) != n)
    throw std::invalid_argument(std::string("affine_matrices: ") + name + " must be " +
                                (width == 1 ? "a number" : "a pair") + " or one per image, " +
                                (width == 1 ? "(N,)" : "(N, 2)") + " with N=" + std::to_string(n) + ", got " +
                                name + " " + shape_text(values));
  std::vector<double> out(static_cast<size_t>(n * width));
  for (int64_t i = 0; i < n * width; ++i) out[i] = values.data()[count == width ? i % width : i];
  return out;
}

py::array_t<double> affine_matrices_py(const DoubleArray& angle, const DoubleArray& translate,
                                       const DoubleArray& scale, const DoubleArray& shear) {
  // N: the longest of the per-image parameters (1 where every one is given once).
  int64_t n = std::max({rows_of(angle, 1), rows_of(translate, 2), rows_of(scale, 1), rows_of(shear, 2)});
  if (n < 0) n = 1;
  const std::vector<double> a = per_image(angle, n, 1, "angle"), t = per_image(translate, n, 2, "translate");
  const std::vector<double> z = per_image(scale, n, 1, "scale"), h = per_image(shear, n, 2, "shear");
  py::array_t<double> matrices({n, int64_t{2}, int64_t{3}});
  affine_matrices(n, a.data(), t.data(), z.data(), h.data(), matrices.mutable_data());
  return matrices;
}

py::array_t<double> affine_pixel_maps_py(const DoubleArray& matrices, Pair out_size, Pair in_size) {
  if (matrices.ndim() != 3 || matrices.shape(1) != 2 || matrices.shape(2) != 3)
    throw std::invalid_argument("affine_pixel_maps: matrices must have shape (N, 2, 3), got matrices " +
                                shape_text(matrices));
  const int64_t n = matrices.shape(0);
  py::array_t<double> maps({n, int64_t{2}, int64_t{3}});
  affine_pixel_maps(n, matrices.data(), out_size[0], out_size[1], in_size[0], in_size[1], maps.mutable_data());
  return maps;
}

using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

FloatArray crop_windows_py(const FloatArray& x, const Int64Array& tops, const Int64Array& lefts, Pair size,
                           float fill) {
  const Shape4 s = shape_of(x, "x");
  if (tops.ndim() != 1 || lefts.ndim() != 1 || tops.shape(0) != s.n || lefts.shape(0) != s.n)
    throw std::invalid_argument("crop_windows: tops and lefts must both have shape (N,) with N=" +
                                std::to_string(s.n) + " (x's images), got tops " + shape_text(tops) + " and lefts " +
                                shape_text(lefts));
  // A negative size gets an empty array here and is refused, with its value, by crop_windows.
  FloatArray y = empty(Shape4{s.n, s.c, std::max<int64_t>(size[0], 0), std::max<int64_t>(size[1], 0)});
  float* out = data(y);
  py::gil_scoped_release release;
  crop_windows(s, x.data(), size[0], size[1], tops.data(), lefts.data(), fill, out);
  return y;
}

FloatArray gemm_py(const FloatArray& a, const FloatArray& b, bool trans_a, bool trans_b) {
  if (a.ndim() != 2 || b.ndim() != 2)
    throw std::invalid_argument("gemm: a and b must be 2-D, got a " + std::to_string(a.ndim()) + "-D and b " +
                                std::to_string(b.ndim()) + "-D");
  const int64_t m = trans_a ? a.shape(1) : a.shape(0), ka = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (ka != kb)
    throw std::invalid_argument("gemm: inner dimensions differ: op(a) is " + std::to_string(m) + " x " +
                                std::to_string(ka) + " but op(b) is " + std::to_string(kb) + " x " + std::to_string(n));
  FloatArray c({m, n});
  float* out = c.mutable_data();
  const int64_t lda = std::max<int64_t>(1, a.shape(1)), ldb = std::max<int64_t>(1, b.shape(1));
  py::gil_scoped_release release;
  sgemm(trans_a, trans_b, m, n, ka, a.data(), lda, b.data(), ldb, out, std::max<int64_t>(1, n));
  return c;
}

py::dict cpu_info_py() {
  const CpuInfo& info = cpu_info();
  py::dict d;
  d["active"] = info.active;
  d["supported"] = info.supported;
  d["forced"] = info.forced.empty() ? py::object(py::none()) : py::object(py::str(info.forced));
  d["note"] = info.note;
  d["split_512bit_fma"] = info.split_512bit_fma;
  d["model"] = info.model;
  py::dict caches;
  caches["l1d"] = info.l1d_bytes;
  caches["l2"] = info.l2_bytes;
  caches["l3"] = info.l3_bytes;
  d["cache_bytes"] = caches;
  d["num_threads"] = get_num_threads();
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyconvx C++ kernels (use the wrappers in pyconvx.ops)";
  m.attr("__version__") = PYCONVX_VERSION_STRING;
  // pybind11 turns std::bad_alloc into MemoryError but loses the message; this one names sizes.
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const WorkspaceLimitError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  const auto no_bias = py::arg("bias") = py::none();
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("weight"), no_bias, py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("relu"), py::arg("algorithm") = "auto");
  m.def("conv_algorithm_names", [] {
    std::vector<std::string> names;
    for (ConvAlgorithm a : conv_algorithms()) names.push_back(conv_algorithm_name(a));
    return names;
  });
  m.def("conv2d_algorithm", &conv2d_algorithm_py, py::arg("x_shape"), py::arg("weight_shape"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"));
  m.def("measure_conv_algorithms", &measure_conv_algorithms_py, py::arg("weight"), py::arg("x_shape"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"));
  m.def("conv2d_workspace_size", &conv2d_workspace_size_py, py::arg("x_shape"), py::arg("weight_shape"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("algorithm"));
  m.def("set_workspace_limit", &set_workspace_limit, py::arg("bytes"));
  m.def("get_workspace_limit", &get_workspace_limit);
  m.def("conv2d_backward", &conv2d_backward_py, py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("need_x"), py::arg("need_w"),
        py::arg("need_b"));
  m.def("im2col", &im2col_py, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"));
  m.def("col2im", &col2im_py, py::arg("cols"), py::arg("x_shape"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"));
  m.def("max_pool2d", &max_pool2d_py, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("return_indices"));
  m.def("max_pool2d_backward", &max_pool2d_backward_py, py::arg("grad_out"), py::arg("x"), py::arg("indices"),
        py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"));
  m.def("max_pool2d_backward_from_indices", &max_pool2d_backward_indices_py, py::arg("grad_out"), py::arg("x_shape"),
        py::arg("indices"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"));
  m.def("avg_pool2d", &avg_pool2d_py, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"));
  m.def("avg_pool2d_backward", &avg_pool2d_backward_py, py::arg("grad_out"), py::arg("x_shape"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"));
  m.def("global_avg_pool2d", &global_avg_pool2d_py, py::arg("x"));
  m.def("global_avg_pool2d_backward", &global_avg_pool2d_backward_py, py::arg("grad_out"), py::arg("x_shape"));
  m.def("bilinear_sample", &bilinear_sample_py, py::arg("x"), py::arg("xs"), py::arg("ys"), py::arg("fill"));
  m.def("affine_sample", &affine_sample_py, py::arg("x"), py::arg("maps"), py::arg("out_size"), py::arg("fill"));
  m.def("affine_matrices", &affine_matrices_py, py::arg("angle"), py::arg("translate"), py::arg("scale"),
        py::arg("shear"));
  m.def("affine_pixel_maps", &affine_pixel_maps_py, py::arg("matrices"), py::arg("out_size"), py::arg("in_size"));
  m.def("crop_windows", &crop_windows_py, py::arg("x"), py::arg("tops"), py::arg("lefts"), py::arg("size"),
        py::arg("fill"));
  m.def("gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("trans_a"), py::arg("trans_b"));
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("set_thread_limit", &set_thread_limit, py::arg("n"));
  m.def("get_thread_limit", &get_thread_limit);
  m.def("set_flush_denormals", &set_flush_denormals, py::arg("flush"));
  m.def("get_flush_denormals", &get_flush_denormals);
  m.def("cpu_info", &cpu_info_py);
  m.def("set_autotune", &set_autotune, py::arg("on"));
  m.def("get_autotune", &get_autotune);
  m.def("set_autotune_cache_dir", &set_autotune_cache_dir, py::arg("dir"));
  m.def("get_autotune_cache_dir", &get_autotune_cache_dir);
  m.def("autotune_cache_file", &autotune_cache_file);
  m.def("autotune_cache_stats", [] {
    const AutotuneCacheStats s = autotune_cache_stats();
    py::dict d;
    d["measured"] = s.measured;
    d["reused"] = s.reused;
    d["loaded"] = s.loaded;
    return d;
  });
  m.def("workspace_usage", [] {
    const WorkspaceUsage usage = workspace_usage();
    return py::dict(py::arg("live_bytes") = usage.live_bytes, py::arg("peak_bytes") = usage.peak_bytes);
  });
  m.def("reset_workspace_peak", &reset_workspace_peak, py::call_guard<py::gil_scoped_release>());
  m.def("measure_peak_gflops", &measure_peak_gflops, py::arg("seconds"), py::call_guard<py::gil_scoped_release>());
  pyconvx::python::bind_plan(m);
}
