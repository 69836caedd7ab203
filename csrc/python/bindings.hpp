// The parts of the Python binding shared by its files (internal to csrc/python).
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx::python {

using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

// Convolution and pooling parameters from Python's (stride, (top, bottom, left, right), ...).
inline Conv2dParams conv_params(Pair stride, Quad padding, Pair dilation, int64_t groups) {
  Conv2dParams p;
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.pad_top = padding[0];
  p.pad_bottom = padding[1];
  p.pad_left = padding[2];
  p.pad_right = padding[3];
  p.dilation_h = dilation[0];
  p.dilation_w = dilation[1];
  p.groups = groups;
  return p;
}

inline Pool2dParams pool_params(Pair kernel, Pair stride, Quad padding, bool ceil_mode, bool count_include_pad) {
  Pool2dParams p;
  p.kernel_h = kernel[0];
  p.kernel_w = kernel[1];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.pad_top = padding[0];
  p.pad_bottom = padding[1];
  p.pad_left = padding[2];
  p.pad_right = padding[3];
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

// Network, InferencePlan and the element-wise layers (plan_bindings.cpp).
void bind_plan(pybind11::module_& m);

}  // namespace pyconvx::python
