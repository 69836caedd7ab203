/* pyconvx C API: the kernels for callers in C or through a foreign-function interface.
 *
 * Every function returns a pyconvx_status. On failure the outputs hold unspecified values and
 * pyconvx_last_error() returns a message naming the parameter and the values, as the C++ API's
 * exceptions do. The message is kept per thread until that thread's next failing call.
 *
 * Arrays are dense NCHW float32 (C order), shapes are given as pyconvx_shape4 and every size is
 * an int64_t. Letters: N batch, C input channels, H W input height and width, K filters,
 * R S kernel height and width, P Q output height and width.
 */
#ifndef PYCONVX_PYCONVX_H
#define PYCONVX_PYCONVX_H

#include <stdint.h>

#include "pyconvx/version.hpp"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pyconvx_status {
  PYCONVX_OK = 0,
  PYCONVX_INVALID_ARGUMENT = 1, /* a shape, parameter or pointer the call cannot accept */
  PYCONVX_OUT_OF_MEMORY = 2,    /* the kernels' scratch memory could not be allocated */
  PYCONVX_INTERNAL_ERROR = 3    /* anything else: a bug, please report the message */
} pyconvx_status;

typedef struct pyconvx_shape4 {
  int64_t n, c, h, w;
} pyconvx_shape4;

typedef struct pyconvx_conv2d_params {
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t dilation_h, dilation_w;
  int64_t groups;
} pyconvx_conv2d_params;

typedef struct pyconvx_pool2d_params {
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int ceil_mode;         /* 0 or 1 */
  int count_include_pad; /* average pooling only; 0 or 1 */
} pyconvx_pool2d_params;

typedef enum pyconvx_activation { PYCONVX_ACTIVATION_NONE = 0, PYCONVX_ACTIVATION_RELU = 1 } pyconvx_activation;

/* Stride 1, no padding, dilation 1, one group. */
pyconvx_conv2d_params pyconvx_conv2d_default_params(void);
/* A kernel_h x kernel_w window with stride equal to the kernel (torch's default), no padding. */
pyconvx_pool2d_params pyconvx_pool2d_default_params(int64_t kernel_h, int64_t kernel_w);

/* The message of this thread's last failure ("" when none). Valid until the next failing call. */
const char* pyconvx_last_error(void);
/* "major.minor.patch" of the library the program runs with (the header's may differ). */
const char* pyconvx_version(void);

pyconvx_status pyconvx_set_num_threads(int64_t n);
int pyconvx_get_num_threads(void);
/* Nonzero (the default): the kernels flush denormals to zero while they compute; zero: IEEE
 * denormals, much slower on CPUs with microcode assists. See set_flush_denormals in
 * pyconvx/runtime.hpp. */
void pyconvx_set_flush_denormals(int flush);
int pyconvx_get_flush_denormals(void);
/* "avx512", "avx2" or "generic": the instruction-set path the kernels run on. */
const char* pyconvx_active_isa(void);

/* A cap on the kernels' scratch memory: a call that would pass it fails with
 * PYCONVX_OUT_OF_MEMORY and a message giving the bytes requested, held and allowed. */
pyconvx_status pyconvx_set_workspace_limit(int64_t bytes);
/* The caller's own memory for the kernels' scratch: allocate returns `bytes` bytes aligned to 64
 * (or NULL), release takes them back; both may run on several threads at once. NULL functions
 * return to the heap. See set_workspace_allocator in pyconvx/runtime.hpp. */
typedef void* (*pyconvx_allocate_fn)(int64_t bytes, void* user);
typedef void (*pyconvx_release_fn)(void* memory, int64_t bytes, void* user);
pyconvx_status pyconvx_set_workspace_allocator(pyconvx_allocate_fn allocate, pyconvx_release_fn release, void* user);

/* The output shape (N, K, P, Q) of a convolution, after validating every argument. */
pyconvx_status pyconvx_conv2d_output_shape(pyconvx_shape4 x, pyconvx_shape4 weight, const pyconvx_conv2d_params* params,
                                           pyconvx_shape4* y);

/* y = activation(conv(x, weight) + bias), activation a pyconvx_activation (an int, so that a value
 * outside the enumeration reaches the check rather than undefined behaviour). weight is
 * K x C/groups x R x S, bias K values or NULL,
 * params NULL for pyconvx_conv2d_default_params(). algorithm is NULL or "auto", or one of
 * "implicit_gemm", "pointwise", "direct", "winograd", "depthwise", "broadcast", "pixel_gemm". */
pyconvx_status pyconvx_conv2d_forward(pyconvx_shape4 x_shape, const float* x, pyconvx_shape4 weight_shape,
                                      const float* weight, const float* bias, const pyconvx_conv2d_params* params,
                                      int activation, const char* algorithm, float* y);

/* The most scratch memory, in bytes, pyconvx_conv2d_forward holds for these arguments with the
 * current thread count (see conv2d_workspace_size in pyconvx/conv.hpp). */
pyconvx_status pyconvx_conv2d_workspace_size(pyconvx_shape4 x, pyconvx_shape4 weight, const pyconvx_conv2d_params* params,
                                             const char* algorithm, int64_t* bytes);

/* Gradients of conv(x, weight) + bias given grad_y (the output's shape). Any of grad_x (x's
 * shape), grad_weight (weight's shape) and grad_bias (K values) may be NULL to skip it. */
pyconvx_status pyconvx_conv2d_backward(pyconvx_shape4 x_shape, const float* x, pyconvx_shape4 weight_shape,
                                       const float* weight, const pyconvx_conv2d_params* params, const float* grad_y,
                                       float* grad_x, float* grad_weight, float* grad_bias);

/* The output shape (N, C, P, Q) of a pooling, after validating every argument. */
pyconvx_status pyconvx_pool2d_output_shape(pyconvx_shape4 x, const pyconvx_pool2d_params* params, pyconvx_shape4* y);

/* Max pooling; indices (NULL to skip) receive each maximum's flat h*W + w within its plane. */
pyconvx_status pyconvx_max_pool2d_forward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                          float* y, int64_t* indices);
/* grad_x receives grad_y at each window's maximum, found from indices when not NULL, else from x. */
pyconvx_status pyconvx_max_pool2d_backward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                           const float* grad_y, const int64_t* indices, float* grad_x);

pyconvx_status pyconvx_avg_pool2d_forward(pyconvx_shape4 x_shape, const float* x, const pyconvx_pool2d_params* params,
                                          float* y);
pyconvx_status pyconvx_avg_pool2d_backward(pyconvx_shape4 x_shape, const pyconvx_pool2d_params* params,
                                           const float* grad_y, float* grad_x);

/* y (N x C) = the mean of each plane of x. */
pyconvx_status pyconvx_global_avg_pool2d_forward(pyconvx_shape4 x_shape, const float* x, float* y);

/* C = op(A) op(B) (+ C when accumulate), row-major; see sgemm in pyconvx/gemm.hpp. */
pyconvx_status pyconvx_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                             const float* b, int64_t ldb, float* c, int64_t ldc, int accumulate);

#ifdef __cplusplus
}
#endif

#endif /* PYCONVX_PYCONVX_H */
