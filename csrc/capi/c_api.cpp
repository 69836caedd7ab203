// The C API: each function converts its plain-C arguments, calls the C++ API, and turns an
// exception into a status code and a per-thread message. No validation of its own: the C++ API
// checks every shape, parameter and pointer.
#include "pyconvx/pyconvx.h"

#include <new>
#include <stdexcept>
#include <string>

#include "pyconvx/pyconvx.hpp"

namespace {

using namespace pyconvx;

thread_local std::string t_last_error;

template <class Body>
pyconvx_status guarded(Body&& body) {
  try {
    body();
    return PYCONVX_OK;
  } catch (const std::invalid_argument& e) {
    t_last_error = e.what();
    return PYCONVX_INVALID_ARGUMENT;
  } catch (const WorkspaceLimitError& e) {
    t_last_error = e.what();
    return PYCONVX_OUT_OF_MEMORY;
  } catch (const std::bad_alloc&) {
    t_last_error = "out of memory: the kernels' scratch memory could not be allocated";
    return PYCONVX_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    t_last_error = e.what();
    return PYCONVX_INTERNAL_ERROR;
  } catch (...) {
    t_last_error = "unknown error";
    return PYCONVX_INTERNAL_ERROR;
  }
}

Shape4 shape(pyconvx_shape4 s, const char* name) {
  const int64_t dims[4] = {s.n, s.c, s.h, s.w};
  return make_shape4(dims, 4, name);
}

pyconvx_shape4 c_shape(const Shape4& s) { return {s.n, s.c, s.h, s.w}; }

// A null parameter pointer means the defaults, as an omitted keyword would in Python.
Conv2dParams conv_params(const pyconvx_conv2d_params* p) {
  Conv2dParams out;
  if (p == nullptr) return out;
  out.stride_h = p->stride_h;
  out.stride_w = p->stride_w;
  out.pad_top = p->pad_top;
  out.pad_bottom = p->pad_bottom;
  out.pad_left = p->pad_left;
  out.pad_right = p->pad_right;
  out.dilation_h = p->dilation_h;
  out.dilation_w = p->dilation_w;
  out.groups = p->groups;
  return out;
}

Pool2dParams pool_params(const pyconvx_pool2d_params* p, const char* op) {
  if (p == nullptr) throw std::invalid_argument(std::string(op) + ": params is a null pointer (it holds the kernel size)");
  Pool2dParams out;
  out.kernel_h = p->kernel_h;
  out.kernel_w = p->kernel_w;
  out.stride_h = p->stride_h;
  out.stride_w = p->stride_w;
  out.pad_top = p->pad_top;
  out.pad_bottom = p->pad_bottom;
  out.pad_left = p->pad_left;
  out.pad_right = p->pad_right;
  out.ceil_mode = p->ceil_mode != 0;
  out.count_include_pad = p->count_include_pad != 0;
  return out;
}

Conv2dProblem conv_problem(pyconvx_shape4 x, pyconvx_shape4 weight, const pyconvx_conv2d_params* params,
                           const char* op) {
  return make_conv2d_problem(shape(x, "x"), shape(weight, "weight"), conv_params(params), op);
}

Pool2dProblem pool_problem(pyconvx_shape4 x, const pyconvx_pool2d_params* params, const char* op) {
  return make_pool2d_problem(shape(x, "x"), pool_params(params, op), op);
}

ConvAlgorithm algorithm_of(const char* name) {
  return name ? conv_algorithm_from_name(name) : ConvAlgorithm::automatic;
}

Activation activation_of(int a) {
  if (a == PYCONVX_ACTIVATION_NONE) return Activation::none;
  if (a == PYCONVX_ACTIVATION_RELU) return Activation::relu;
  throw std::invalid_argument("conv2d: activation must be PYCONVX_ACTIVATION_NONE (0) or PYCONVX_ACTIVATION_RELU (1), "
                              "got activation=" + std::to_string(a));
}

}  // namespace

extern "C" {

pyconvx_conv2d_params pyconvx_conv2d_default_params(void) { return {1, 1, 0, 0, 0, 0, 1, 1, 1}; }

pyconvx_pool2d_params pyconvx_pool2d_default_params(int64_t kernel_h, int64_t kernel_w) {
  return {kernel_h, kernel_w, kernel_h, kernel_w, 0, 0, 0, 0, 0, 1};
}

const char* pyconvx_last_error(void) { return t_last_error.c_str(); }

const char* pyconvx_version(void) { return PYCONVX_VERSION_STRING; }

pyconvx_status pyconvx_set_num_threads(int64_t n) {
  return guarded([&] { set_num_threads(n); });
}

int pyconvx_get_num_threads(void) { return get_num_threads(); }

void pyconvx_set_flush_denormals(int flush) { set_flush_denormals(flush != 0); }

int pyconvx_get_flush_denormals(void) { return get_flush_denormals() ? 1 : 0; }

const char* pyconvx_active_isa(void) { return cpu_info().active.c_str(); }

pyconvx_status pyconvx_set_workspace_limit(int64_t bytes) {
  return guarded([&] { set_workspace_limit(bytes); });
}

pyconvx_status pyconvx_set_workspace_allocator(pyconvx_allocate_fn allocate, pyconvx_release_fn release, void* user) {
  return guarded([&] {
    if (allocate == nullptr && release == nullptr) return reset_workspace_allocator();
    set_workspace_allocator(WorkspaceAllocator{allocate, release, user});
  });
}

pyconvx_status pyconvx_conv2d_output_shape(pyconvx_shape4 x, pyconvx_shape4 weight, const pyconvx_conv2d_params* params,
                                           pyconvx_shape4* y) {
  return guarded([&] {
    const Conv2dProblem pr = conv_problem(x, weight, params, "conv2d");
    check_data(y, 1, "y", "conv2d_output_shape");
    *y = c_shape(pr.y());
  });
}

pyconvx_status pyconvx_conv2d_forward(pyconvx_shape4 x_shape, const float* x, pyconvx_shape4 weight_shape,
                                      const float* weight, const float* bias, const pyconvx_conv2d_params* params,
                                      int activation, const char* algorithm, float* y) {
  return guarded([&] {
    const Conv2dProblem pr = conv_problem(x_shape, weight_shape, params, "conv2d");
    conv2d_forward(pr, x, weight, bias, y, activation_of(activation), algorithm_of(algorithm));
  });
}

pyconvx_status pyconvx_conv2d_workspace_size(pyconvx_shape4 x, pyconvx_shape4 weight, const pyconvx_conv2d_params* params,
                                             const char* algorithm, int64_t* bytes) {
  return guarded([&] {
    const Conv2dProblem pr = conv_problem(x, weight, params, "conv2d_workspace_size");
    check_data(bytes, 1, "bytes", "conv2d_workspace_size", sizeof(int64_t));
    *bytes = conv2d_workspace_size(pr, algorithm_of(algorithm));
  });
}

pyconvx_status pyconvx_conv2d_backward(pyconvx_shape4 x_shape, const float* x, pyconvx_shape4 weight_shape,
                                       const float* weight, const pyconvx_conv2d_params* params, const float* grad_y,
                                       float* grad_x, float* grad_weight, float* grad_bias) {
  return guarded([&] {
    const Conv2dProblem pr = conv_problem(x_shape, weight_shape, params, "conv2d_backward");
    conv2d_backward(pr, grad_y, x, weight, grad_x, grad_weight, grad_bias);
  });
}

pyconvx_status pyconvx_pool2d_output_shape(pyconvx_shape4 x, const pyconvx_pool2d_params* params, pyconvx_shape4* y) {
  return guarded([&] {
    const Pool2dProblem pr = pool_problem(x, params, "pool2d");
    check_data(y, 1, "y", "pool2d_output_shape");
    *y = c_shape(pr.y());
  });
}

pyconvx_status pyconvx_max_pool2d_forward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                          float* y, int64_t* indices) {
  return guarded([&] { max_pool2d_forward(pool_problem(x_shape, params, "max_pool2d"), x, y, indices); });
}

pyconvx_status pyconvx_max_pool2d_backward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                           const float* grad_y, const int64_t* indices, float* grad_x) {
  return guarded([&] {
    max_pool2d_backward(pool_problem(x_shape, params, "max_pool2d_backward"), grad_y, x, indices, grad_x);
  });
}

pyconvx_status pyconvx_avg_pool2d_forward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                          float* y) {
  return guarded([&] { avg_pool2d_forward(pool_problem(x_shape, params, "avg_pool2d"), x, y); });
}

pyconvx_status pyconvx_avg_pool2d_backward(pyconvx_shape4 x_shape, const pyconvx_pool2d_params* params,
                                           const float* grad_y, float* grad_x) {
  return guarded([&] { avg_pool2d_backward(pool_problem(x_shape, params, "avg_pool2d_backward"), grad_y, grad_x); });
}

pyconvx_status pyconvx_global_avg_pool2d_forward(pyconvx_shape4 x_shape, const float* x, float* y) {
  return guarded([&] { global_avg_pool2d_forward(shape(x_shape, "x"), x, y); });
}

pyconvx_status pyconvx_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                             const float* b, int64_t ldb, float* c, int64_t ldc, int accumulate) {
  return guarded([&] { sgemm(trans_a != 0, trans_b != 0, m, n, k, a, lda, b, ldb, c, ldc, accumulate != 0); });
}

}  // extern "C"
