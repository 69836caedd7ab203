// Shapes and parameters shared by every pyconvx kernel.
//
// The letters follow the convolution literature and are used everywhere in csrc/:
//   N  batch size                 C  input channels      H, W  input height and width
//   K  output channels (filters)  R, S  kernel height and width
//   P, Q  output height and width
// Data is NCHW float32 at every public boundary. All sizes are int64_t and every product
// that becomes an element count or a byte count goes through the checked helpers below, so a
// hostile shape raises std::invalid_argument instead of wrapping around.
#pragma once

#include <cstdint>
#include <string>

namespace pyconvx {

// a * b, a + b for non-negative sizes; throws std::invalid_argument naming `what` on overflow.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
int64_t checked_add(int64_t a, int64_t b, const char* what);

// A 4-D NCHW shape.
struct Shape4 {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t numel() const;  // checked: throws if the product overflows
  std::string str() const;
};

// Builds a Shape4 from `ndim` dimensions, or throws std::invalid_argument naming `name`
// (e.g. "x") when ndim is not 4 or a dimension is negative.
Shape4 make_shape4(const int64_t* dims, int ndim, const char* name);

// Convolution hyper-parameters. Padding is given per side so that "same" padding with an
// even total (torch puts the extra row/column at the bottom/right) needs no special case.
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// The non-linearities a kernel applies as it writes its output, with torch's definitions:
// relu6 = min(max(x, 0), 6), silu = x * sigmoid(x), hardswish = x * relu6(x + 3) / 6,
// hardsigmoid = relu6(x + 3) / 6. NaN stays NaN through every one.
enum class Activation { none = 0, relu = 1, relu6 = 2, sigmoid = 3, tanh = 4, silu = 5, hardswish = 6, hardsigmoid = 7 };

const char* activation_name(Activation activation);
// Throws std::invalid_argument naming `op`, the value and the valid names for an unknown name.
Activation activation_from_name(const std::string& name, const char* op);

// Everything a convolution kernel needs to know, after validation.
struct Conv2dProblem {
  Shape4 x;        // N, C, H, W
  Shape4 weight;   // K, C / groups, R, S
  Conv2dParams params;
  int64_t p = 0, q = 0;  // output height and width
  Shape4 y() const { return Shape4{x.n, weight.n, p, q}; }
  int64_t k() const { return weight.n; }
  int64_t r() const { return weight.h; }
  int64_t s() const { return weight.w; }
  int64_t c_per_group() const { return x.c / params.groups; }
  int64_t k_per_group() const { return weight.n / params.groups; }
  // Reduction length of one output element: C/groups * R * S.
  int64_t reduction() const { return weight.c * weight.h * weight.w; }
};

// Throws std::invalid_argument "<op>: <name> must have shape <expected>, got <got>" on mismatch.
void check_shape(const Shape4& got, const Shape4& expected, const char* name, const char* op);

// Validates a convolution and computes its output size. `op` prefixes error messages.
// Throws std::invalid_argument naming the parameter and the offending values.
Conv2dProblem make_conv2d_problem(const Shape4& x, const Shape4& weight, const Conv2dParams& params,
                                  const char* op = "conv2d");

// floor((n + pad_before + pad_after - dilation*(f-1) - 1) / stride) + 1, checked;
// returns a value < 1 when the (dilated) kernel does not fit in the padded input.
int64_t conv_output_size(int64_t n, int64_t f, int64_t pad_before, int64_t pad_after, int64_t stride,
                         int64_t dilation);

// Pooling hyper-parameters (no dilation).
struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // each at most half the kernel
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};

struct Pool2dProblem {
  Shape4 x;
  Pool2dParams params;
  int64_t p = 0, q = 0;
  Shape4 y() const { return Shape4{x.n, x.c, p, q}; }
};

// Validates pooling parameters with torch's rules (padding at most half the kernel, and in
// ceil mode the last window must start inside the input or its left padding).
Pool2dProblem make_pool2d_problem(const Shape4& x, const Pool2dParams& params, const char* op);

// The checks of each public entry point on what a caller may have built or passed by hand: a
// problem whose output size does not follow from its shapes and parameters, or a null or
// misaligned pointer for data that is not empty (`alignment`: the element type's, in bytes).
// Both throw std::invalid_argument naming `op` and the value.
void check_problem(const Conv2dProblem& problem, const char* op);
void check_problem(const Pool2dProblem& problem, const char* op);
void check_data(const void* data, int64_t count, const char* name, const char* op,
                int64_t alignment = sizeof(float));

// Output size of one pooling axis under those rules, padded by `before` and `after` at its ends.
int64_t pool_output_size(int64_t n, int64_t k, int64_t before, int64_t after, int64_t stride, bool ceil_mode);

}  // namespace pyconvx
