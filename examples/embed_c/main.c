/* Convolution + ReLU + 2x2 max pooling through the C API, on the same deterministic data as
 * examples/embed_cpp, printing the same lines; then an invalid call and its status and message. */
#include <pyconvx/pyconvx.h>

#include <stdio.h>
#include <stdlib.h>

/* The input pattern, also written in tests/test_embedding.py: values in [-1, 1). */
static float *pattern(int64_t count, int64_t multiplier, int64_t modulus) {
  float *values = malloc((size_t)count * sizeof(float));
  for (int64_t i = 0; values && i < count; ++i)
    values[i] = (float)((i * multiplier) % modulus) / (modulus / 2.0f) - 1.0f;
  return values;
}

static int check(pyconvx_status status, const char *what) {
  if (status == PYCONVX_OK) return 0;
  fprintf(stderr, "%s failed (status %d): %s\n", what, (int)status, pyconvx_last_error());
  return 1;
}

int main(void) {
  const pyconvx_shape4 x_shape = {2, 3, 16, 16}, w_shape = {8, 3, 3, 3};
  pyconvx_conv2d_params conv = pyconvx_conv2d_default_params();
  conv.pad_top = conv.pad_bottom = conv.pad_left = conv.pad_right = 1;
  pyconvx_pool2d_params pool = pyconvx_pool2d_default_params(2, 2);

  pyconvx_shape4 y_shape, z_shape;
  if (check(pyconvx_conv2d_output_shape(x_shape, w_shape, &conv, &y_shape), "conv2d_output_shape") ||
      check(pyconvx_pool2d_output_shape(y_shape, &pool, &z_shape), "pool2d_output_shape"))
    return 1;

  float *x = pattern(2 * 3 * 16 * 16, 37, 101), *w = pattern(8 * 3 * 3 * 3, 17, 23);
  float bias[8];
  for (int k = 0; k < 8; ++k) bias[k] = 0.1f * (float)k - 0.3f;
  float *y = malloc((size_t)(y_shape.n * y_shape.c * y_shape.h * y_shape.w) * sizeof(float));
  const int64_t z_count = z_shape.n * z_shape.c * z_shape.h * z_shape.w;
  float *z = malloc((size_t)z_count * sizeof(float));
  if (!x || !w || !y || !z) return 1;

  if (check(pyconvx_conv2d_forward(x_shape, x, w_shape, w, bias, &conv, PYCONVX_ACTIVATION_RELU, NULL, y), "conv2d") ||
      check(pyconvx_max_pool2d_forward(y_shape, y, &pool, z, NULL), "max_pool2d"))
    return 1;

  double sum = 0, squares = 0;
  for (int64_t i = 0; i < z_count; ++i) {
    sum += z[i];
    squares += (double)z[i] * z[i];
  }
  printf("pyconvx %s (%s)\n", pyconvx_version(), pyconvx_active_isa());
  printf("shape %lld %lld %lld %lld\n", (long long)z_shape.n, (long long)z_shape.c, (long long)z_shape.h,
         (long long)z_shape.w);
  printf("sum %.6f\nsquares %.6f\n", sum, squares);

  /* An invalid call returns a status and leaves a message naming the parameter. */
  pyconvx_conv2d_params bad = conv;
  bad.groups = 2;
  const pyconvx_status status = pyconvx_conv2d_forward(x_shape, x, w_shape, w, bias, &bad, PYCONVX_ACTIVATION_NONE,
                                                       NULL, y);
  printf("error %d %s\n", (int)status, pyconvx_last_error());

  free(x);
  free(w);
  free(y);
  free(z);
  return status == PYCONVX_INVALID_ARGUMENT ? 0 : 1;
}
