"""One inverse-mapping sampler behind every warp (rotation, affine, elastic): each output pixel
reads the input at a real-valued position, bilinearly (the kernels' ops.bilinear_sample and
ops.affine_sample, one call per batch).

Coordinates are in pixels with the origin at the image centre and y pointing down: pixel (row i,
column j) of an H x W image sits at (u, v) = (j - (W - 1) / 2, i - (H - 1) / 2). An affine map is
given forward (where an input point lands in the output), as a 2x3 matrix [A | t] per image, and
sampled through its inverse. The centre and the direction of rotation are torchvision's; in
normalised units this is torch's affine_grid(..., align_corners=False), whose theta is the inverse
map: with u -> B u + c the inverse in pixels and D = diag(W / 2, H / 2), theta = [D^-1 B D | D^-1 c].
"""
import numpy as np

from .. import _core, ops

__all__ = ["affine_matrices", "pixel_maps", "affine_grid", "bilinear_sample", "warp_affine"]


def affine_matrices(angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0)):
    """Forward (N, 2, 3) matrices: shear (x then y, in degrees), then scale, then rotation by
    `angle` degrees counter-clockwise as seen on screen, then translation by (tx, ty) pixels, all
    about the image centre. Each argument is a scalar or one value per image: angle (N,), translate
    (N, 2), scale (N,), shear (N, 2).

    A shear by sx degrees moves a point by tan(sx) times its height below the centre to the right:
    (u, v) -> (u + tan(sx) v, v); a shear by sy moves it down by tan(sy) times its offset to the
    right: (u, v) -> (u, v + tan(sy) u).

    One call of the kernels' affine_matrices, as every matrix of a batch is a few dozen flops.

    >>> affine_matrices(angle=90.0).round(6)       # a point on the right goes to the top
    array([[[ 0.,  1.,  0.],
            [-1.,  0.,  0.]]])
    """
    return _core.affine_matrices(angle, translate, scale, shear)


def pixel_maps(matrices, out_size, in_size):
    """The (N, 2, 3) maps from output pixel indices (q, p, 1) to input ones (column, row) of the
    forward affine maps `matrices` (N, 2, 3) from an in_size = (H, W) image to an out_size = (P, Q)
    one: what ops.affine_sample takes (the kernels' affine_pixel_maps, which refuses a singular map).

    >>> pixel_maps(affine_matrices(translate=(1.0, 0.0)), (1, 3), (1, 3))
    array([[[ 1.,  0., -1.],
            [ 0.,  1.,  0.]]])
    """
    return _core.affine_pixel_maps(matrices, tuple(out_size), tuple(in_size))


def affine_grid(matrices, out_size, in_size):
    """Sampling positions (xs, ys), each (N, P, Q) float32 in input pixel indices, of the forward
    affine maps `matrices` (N, 2, 3) from an in_size = (H, W) image to an out_size = (P, Q) one
    (the positions warp_affine samples, computed there on the fly).

    >>> xs, ys = affine_grid(affine_matrices(translate=(1.0, 0.0)), (1, 3), (1, 3))
    >>> xs
    array([[[-1.,  0.,  1.]]], dtype=float32)
    """
    maps = pixel_maps(matrices, out_size, in_size)[:, :, :, None, None]
    q, p = np.arange(out_size[1])[None, :], np.arange(out_size[0])[:, None]
    return tuple((maps[:, i, 0] * q + maps[:, i, 1] * p + maps[:, i, 2]).astype(np.float32) for i in (0, 1))


def bilinear_sample(images, xs, ys, fill=0.0):
    """images (N, C, H, W) read at positions xs, ys (N, P, Q) (column and row indices, real
    valued) -> (N, C, P, Q) float32. Each output mixes the four nearest pixels with bilinear
    weights; a neighbour outside the image counts as `fill` (so fill=0 matches torch's
    grid_sample with padding_mode="zeros"). ops.bilinear_sample.

    >>> bilinear_sample(np.array([[[[0.0, 10.0]]]]), np.array([[[0.25, 1.5]]]), np.zeros((1, 1, 2)), fill=2.0)
    array([[[[2.5, 6. ]]]], dtype=float32)
    """
    return ops.bilinear_sample(images, xs, ys, fill)


def warp_affine(images, matrices, fill=0.0, out_size=None):
    """images (N, C, H, W) moved by the forward affine maps `matrices` (N, 2, 3) (see
    affine_matrices), bilinear, `fill` where the output sees past the input's edge.

    >>> x = np.zeros((1, 1, 3, 3)); x[0, 0, 1, 2] = 1.0           # right of the centre
    >>> warp_affine(x, affine_matrices(angle=90.0))[0, 0].round(6)  # now above it
    array([[0., 1., 0.],
           [0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """
    in_size = images.shape[-2:]
    out_size = in_size if out_size is None else tuple(out_size)
    return ops.affine_sample(images, pixel_maps(matrices, out_size, in_size), out_size, fill)
