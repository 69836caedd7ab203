// Bilinear sampling of images at real-valued positions: the warps of data augmentation (rotations,
// affine maps, elastic distortions) and the sampler of spatial transformer networks; and the
// windows of its crops.
#pragma once

#include <cstdint>

#include "pyconvx/shape.hpp"

namespace pyconvx {

// y (N, C, out_h, out_w): pixel (p, q) of image n reads x[n] (x_shape: N, C, H, W) at column
// xs[n, p, q] and row ys[n, p, q] (pixel indices, real valued), mixing the four nearest pixels with
// bilinear weights; a neighbour outside the image counts as `fill` (fill = 0 is torch's grid_sample
// with padding_mode="zeros" once its grid is in pixels). Positions are clipped to [-1, W] and
// [-1, H] first, which changes no value (past that every neighbour is outside); a NaN position
// reads fill. xs and ys hold N * out_h * out_w floats.
void bilinear_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const float* xs,
                     const float* ys, float fill, float* y);

// The same at the positions of one affine map per image: pixel (p, q) of image n reads column
// m[0] * q + m[1] * p + m[2] and row m[3] * q + m[4] * p + m[5], where m = maps + 6 * n (each a
// row-major 2 x 3 matrix from output to input pixel indices). Nothing the size of the output but
// the output itself is written.
void affine_sample(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const double* maps, float fill,
                   float* y);

// The forward affine maps (n row-major 2 x 3 matrices [A | t], where an input point u about the
// image centre lands at A u + t in the output) of n images: shear by shear[2i] degrees along x
// (u, v) -> (u + tan(sx) v, v) and by shear[2i + 1] along y (u, v) -> (u, v + tan(sy) u), then
// scale by scale[i], rotation by angle[i] degrees counter-clockwise as seen on screen (y points
// down), then translation by (translate[2i], translate[2i + 1]) pixels.
void affine_matrices(int64_t n, const double* angle, const double* translate, const double* scale, const double* shear,
                     double* matrices);

// The maps affine_sample takes (from output pixel indices (q, p, 1) to input ones) of n forward
// matrices from an in_h x in_w image to an out_h x out_w one, each matrix about its image's
// centre; a matrix whose 2 x 2 part is singular or not finite is refused.
void affine_pixel_maps(int64_t n, const double* matrices, int64_t out_h, int64_t out_w, int64_t in_h, int64_t in_w,
                       double* maps);

// y (N, C, out_h, out_w): the out_h x out_w window of image n of x (x_shape: N, C, H, W) whose top
// left pixel is (tops[n], lefts[n]), `fill` wherever the window reaches past the image (so a
// crop of an image padded by P pixels is the window at offsets shifted by -P). tops and lefts hold N
// values each, in [-2^62, 2^62].
void crop_windows(const Shape4& x_shape, const float* x, int64_t out_h, int64_t out_w, const int64_t* tops,
                  const int64_t* lefts, float fill, float* y);

}  // namespace pyconvx
