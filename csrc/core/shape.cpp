#include "pyconvx/shape.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace pyconvx {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

std::string pair(int64_t a, int64_t b) {
  std::ostringstream s;
  s << "(" << a << ", " << b << ")";
  return s.str();
}

}  // namespace

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  if (a < 0 || b < 0) fail(std::string(what) + ": negative size");
  if (a != 0 && b > kMax / a) {
    std::ostringstream s;
    s << what << ": size " << a << " * " << b << " overflows 64-bit arithmetic";
    fail(s.str());
  }
  return a * b;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  if (a < 0 || b < 0) fail(std::string(what) + ": negative size");
  if (b > kMax - a) {
    std::ostringstream s;
    s << what << ": size " << a << " + " << b << " overflows 64-bit arithmetic";
    fail(s.str());
  }
  return a + b;
}

int64_t Shape4::numel() const {
  return checked_mul(checked_mul(checked_mul(n, c, "element count"), h, "element count"), w, "element count");
}

std::string Shape4::str() const {
  std::ostringstream s;
  s << "(" << n << ", " << c << ", " << h << ", " << w << ")";
  return s.str();
}

Shape4 make_shape4(const int64_t* dims, int ndim, const char* name) {
  if (ndim != 4) {
    std::ostringstream s;
    s << name << " must be 4-D (N, C, H, W), got " << ndim << "-D";
    fail(s.str());
  }
  Shape4 shape{dims[0], dims[1], dims[2], dims[3]};
  for (int i = 0; i < 4; ++i)
    if (dims[i] < 0) fail(std::string(name) + " has a negative dimension, got " + name + " shape " + shape.str());
  try {
    shape.numel();
  } catch (const std::invalid_argument&) {
    fail(std::string(name) + "=" + shape.str() + " has more elements than 64-bit arithmetic can count");
  }
  return shape;
}

void check_shape(const Shape4& got, const Shape4& expected, const char* name, const char* op) {
  if (got.n != expected.n || got.c != expected.c || got.h != expected.h || got.w != expected.w)
    fail(std::string(op) + ": " + name + " must have shape " + expected.str() + ", got " + got.str());
}

int64_t conv_output_size(int64_t n, int64_t f, int64_t pad_before, int64_t pad_after, int64_t stride,
                         int64_t dilation) {
  const int64_t padded = checked_add(checked_add(n, pad_before, "padding"), pad_after, "padding");
  const int64_t span = checked_add(checked_mul(dilation, f - 1, "dilation"), 1, "dilation");
  if (span > padded) return 0;
  return (padded - span) / stride + 1;
}

Conv2dProblem make_conv2d_problem(const Shape4& x, const Shape4& weight, const Conv2dParams& pr, const char* op) {
  const std::string o(op);
  if (pr.stride_h < 1 || pr.stride_w < 1) fail(o + ": stride must be >= 1, got stride=" + pair(pr.stride_h, pr.stride_w));
  if (pr.dilation_h < 1 || pr.dilation_w < 1)
    fail(o + ": dilation must be >= 1, got dilation=" + pair(pr.dilation_h, pr.dilation_w));
  if (pr.pad_top < 0 || pr.pad_bottom < 0 || pr.pad_left < 0 || pr.pad_right < 0) {
    std::ostringstream s;
    s << o << ": padding must be >= 0, got padding (top, bottom, left, right)=(" << pr.pad_top << ", "
      << pr.pad_bottom << ", " << pr.pad_left << ", " << pr.pad_right << ")";
    fail(s.str());
  }
  if (pr.groups < 1) fail(o + ": groups must be >= 1, got groups=" + std::to_string(pr.groups));
  if (x.c < 1) fail(o + ": x must have at least one channel, got x shape " + x.str());
  if (weight.n < 1 || weight.h < 1 || weight.w < 1 || weight.c < 1)
    fail(o + ": weight dimensions must be >= 1, got weight shape " + weight.str());
  if (x.c % pr.groups != 0 || weight.n % pr.groups != 0) {
    std::ostringstream s;
    s << o << ": groups=" << pr.groups << " must divide both the input channels C=" << x.c
      << " and the output channels K=" << weight.n;
    fail(s.str());
  }
  if (weight.c * pr.groups != x.c) {
    std::ostringstream s;
    s << o << ": weight expects " << weight.c << " input channels per group (x groups=" << pr.groups
      << " = " << weight.c * pr.groups << " channels) but x has C=" << x.c << " channels; x shape "
      << x.str() << ", weight shape " << weight.str();
    fail(s.str());
  }
  Conv2dProblem p;
  p.x = x;
  p.weight = weight;
  p.params = pr;
  auto setting = [&] {  // what an overflow message names (built only then: every call comes here)
    std::ostringstream s;
    s << "x shape " << x.str() << ", weight shape " << weight.str() << ", stride " << pair(pr.stride_h, pr.stride_w)
      << ", padding (top, bottom, left, right)=(" << pr.pad_top << ", " << pr.pad_bottom << ", " << pr.pad_left
      << ", " << pr.pad_right << "), dilation " << pair(pr.dilation_h, pr.dilation_w);
    return s.str();
  };
  try {
    p.p = conv_output_size(x.h, weight.h, pr.pad_top, pr.pad_bottom, pr.stride_h, pr.dilation_h);
    p.q = conv_output_size(x.w, weight.w, pr.pad_left, pr.pad_right, pr.stride_w, pr.dilation_w);
  } catch (const std::invalid_argument& e) {
    fail(o + ": " + e.what() + " with " + setting());
  }
  if (p.p < 1 || p.q < 1) {
    std::ostringstream s;
    s << o << ": kernel size " << pair(weight.h, weight.w) << " with dilation "
      << pair(pr.dilation_h, pr.dilation_w) << " is larger than the padded input "
      << pair(x.h + pr.pad_top + pr.pad_bottom, x.w + pr.pad_left + pr.pad_right);
    fail(s.str());
  }
  try {  // the output and the patch matrix must be addressable
    p.y().numel();
    checked_mul(checked_mul(p.reduction(), p.p, "patch matrix size"), p.q, "patch matrix size");
  } catch (const std::invalid_argument&) {
    fail(o + ": the output (P, Q)=" + pair(p.p, p.q) + " of " + setting() +
         " has more elements than 64-bit arithmetic can count");
  }
  return p;
}

int64_t pool_output_size(int64_t n, int64_t k, int64_t before, int64_t after, int64_t stride, bool ceil_mode) {
  const int64_t span = checked_add(n, checked_add(before, after, "padding"), "padding") - k;
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? checked_add(span, stride - 1, "stride") / stride : span / stride) + 1;
  // torch: in ceil mode the last window must start inside the input or its left padding.
  if (ceil_mode && (out - 1) * stride >= n + before) --out;
  return out;
}

Pool2dProblem make_pool2d_problem(const Shape4& x, const Pool2dParams& pr, const char* op) {
  const std::string o(op);
  if (pr.kernel_h < 1 || pr.kernel_w < 1)
    fail(o + ": kernel_size must be >= 1, got kernel_size=" + pair(pr.kernel_h, pr.kernel_w));
  if (pr.stride_h < 1 || pr.stride_w < 1) fail(o + ": stride must be >= 1, got stride=" + pair(pr.stride_h, pr.stride_w));
  auto pads = [&] {  // for messages only
    return "(" + std::to_string(pr.pad_top) + ", " + std::to_string(pr.pad_bottom) + ", " + std::to_string(pr.pad_left) +
           ", " + std::to_string(pr.pad_right) + ")";
  };
  if (std::min({pr.pad_top, pr.pad_bottom, pr.pad_left, pr.pad_right}) < 0)
    fail(o + ": padding must be >= 0, got padding (top, bottom, left, right)=" + pads());
  // Every window then holds at least one real value (torch's rule).
  if (std::max(pr.pad_top, pr.pad_bottom) > pr.kernel_h / 2 || std::max(pr.pad_left, pr.pad_right) > pr.kernel_w / 2)
    fail(o + ": padding must be at most half the kernel size, got padding (top, bottom, left, right)=" + pads() +
         " with kernel_size=" + pair(pr.kernel_h, pr.kernel_w));
  if (x.c < 1 || x.h < 1 || x.w < 1) fail(o + ": x must have non-empty C, H and W, got x shape " + x.str());
  Pool2dProblem p;
  p.x = x;
  p.params = pr;
  auto setting = [&] {
    return "x shape " + x.str() + ", kernel_size " + pair(pr.kernel_h, pr.kernel_w) + ", stride " +
           pair(pr.stride_h, pr.stride_w) + ", padding (top, bottom, left, right)=" + pads();
  };
  try {
    p.p = pool_output_size(x.h, pr.kernel_h, pr.pad_top, pr.pad_bottom, pr.stride_h, pr.ceil_mode);
    p.q = pool_output_size(x.w, pr.kernel_w, pr.pad_left, pr.pad_right, pr.stride_w, pr.ceil_mode);
  } catch (const std::invalid_argument& e) {
    fail(o + ": " + e.what() + " with " + setting());
  }
  if (p.p < 1 || p.q < 1)
    fail(o + ": kernel_size " + pair(pr.kernel_h, pr.kernel_w) + " is larger than the padded input " +
         pair(x.h + pr.pad_top + pr.pad_bottom, x.w + pr.pad_left + pr.pad_right));
  try {
    p.y().numel();
  } catch (const std::invalid_argument&) {
    fail(o + ": the output (P, Q)=" + pair(p.p, p.q) + " of " + setting() +
         " has more elements than 64-bit arithmetic can count");
  }
  return p;
}

namespace {

template <class Problem>
void check_output_size(const Problem& given, const Problem& fresh, const char* op) {
  if (given.p != fresh.p || given.q != fresh.q)
    fail(std::string(op) + ": the problem's output size " + pair(given.p, given.q) + " does not follow from its " +
         "shapes and parameters, which give " + pair(fresh.p, fresh.q) + "; build problems with make_*_problem");
}

}  // namespace

void check_problem(const Conv2dProblem& problem, const char* op) {
  check_output_size(problem, make_conv2d_problem(problem.x, problem.weight, problem.params, op), op);
}

void check_problem(const Pool2dProblem& problem, const char* op) {
  check_output_size(problem, make_pool2d_problem(problem.x, problem.params, op), op);
}

void check_data(const void* data, int64_t count, const char* name, const char* op, int64_t alignment) {
  if (count <= 0) return;
  if (data == nullptr)
    fail(std::string(op) + ": " + name + " is a null pointer but must hold " + std::to_string(count) + " values");
  // A misaligned element pointer is undefined behaviour even where the CPU tolerates the loads.
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  if (address % static_cast<std::uintptr_t>(alignment) != 0)
    fail(std::string(op) + ": " + name + " must be aligned to " + std::to_string(alignment) + " bytes, got address " +
         std::to_string(address) + " (its elements' own alignment)");
}

}  // namespace pyconvx
