"""One inverse-mapping sampler behind every warp (rotation, affine, elastic): each output pixel
reads the input at a real-valued position, bilinearly.

Coordinates are in pixels with the origin at the image centre and y pointing down: pixel (row i,
column j) of an H x W image sits at (u, v) = (j - (W - 1) / 2, i - (H - 1) / 2). An affine map is
given forward (where an input point lands in the output), as a 2x3 matrix [A | t] per image, and
sampled through its inverse. The centre and the direction of rotation are torchvision's; in
normalised units this is torch's affine_grid(..., align_corners=False), whose theta is the inverse
map: with u -> B u + c the inverse in pixels and D = diag(W / 2, H / 2), theta = [D^-1 B D | D^-1 c].
"""
import numpy as np

__all__ = ["affine_matrices", "affine_grid", "bilinear_sample", "warp_affine"]


def affine_matrices(angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0)):
    """Forward (N, 2, 3) matrices: shear (x then y, in degrees), then scale, then rotation by
    `angle` degrees counter-clockwise as seen on screen, then translation by (tx, ty) pixels, all
    about the image centre. Each argument is a scalar or one value per image: angle (N,), translate
    (N, 2), scale (N,), shear (N, 2).

    A shear by sx degrees moves a point by tan(sx) times its height below the centre to the right:
    (u, v) -> (u + tan(sx) v, v); a shear by sy moves it down by tan(sy) times its offset to the
    right: (u, v) -> (u, v + tan(sy) u).

    >>> affine_matrices(angle=90.0).round(6)       # a point on the right goes to the top
    array([[[ 0.,  1.,  0.],
            [-1.,  0.,  0.]]])
    """
    angle = np.radians(np.atleast_1d(np.asarray(angle, dtype=np.float64)))
    translate = np.atleast_2d(np.asarray(translate, dtype=np.float64))
    scale = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    shear = np.radians(np.atleast_2d(np.asarray(shear, dtype=np.float64)))
    n = max(len(angle), len(translate), len(scale), len(shear))
    angle, scale = np.broadcast_to(angle, (n,)), np.broadcast_to(scale, (n,))
    translate, shear = np.broadcast_to(translate, (n, 2)), np.broadcast_to(shear, (n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    # Screen y points down, so a counter-clockwise turn sends (1, 0) to (cos, -sin).
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    ones, zeros = np.ones(n), np.zeros(n)
    shear_x = np.stack([np.stack([ones, np.tan(shear[:, 0])], -1), np.stack([zeros, ones], -1)], -2)
    shear_y = np.stack([np.stack([ones, zeros], -1), np.stack([np.tan(shear[:, 1]), ones], -1)], -2)
    linear = scale[:, None, None] * rotation @ shear_y @ shear_x
    return np.concatenate([linear, translate[:, :, None]], axis=2)


def affine_grid(matrices, out_size, in_size):
    """Sampling positions (xs, ys), each (N, P, Q) float32 in input pixel indices, of the forward
    affine maps `matrices` (N, 2, 3) from an in_size = (H, W) image to an out_size = (P, Q) one.

    >>> xs, ys = affine_grid(affine_matrices(translate=(1.0, 0.0)), (1, 3), (1, 3))
    >>> xs
    array([[[-1.,  0.,  1.]]], dtype=float32)
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    inverse = np.linalg.inv(matrices[:, :, :2])
    (out_h, out_w), (in_h, in_w) = out_size, in_size
    # source = inverse @ ((u, v) - shift) + centre: each coordinate is a * u + b * v + offset, one
    # row and one column vector per image, so no (N, 2, P*Q) matrix product is formed.
    offset = np.array([(in_w - 1) / 2, (in_h - 1) / 2]) - (inverse @ matrices[:, :, 2:])[:, :, 0]
    u = (np.arange(out_w) - (out_w - 1) / 2).astype(np.float32)[None, None, :]
    v = (np.arange(out_h) - (out_h - 1) / 2).astype(np.float32)[None, :, None]
    a, o = inverse.astype(np.float32)[:, :, :, None, None], offset.astype(np.float32)[:, :, None, None]
    return a[:, 0, 0] * u + (a[:, 0, 1] * v + o[:, 0]), a[:, 1, 0] * u + (a[:, 1, 1] * v + o[:, 1])


def bilinear_sample(images, xs, ys, fill=0.0):
    """images (N, C, H, W) read at positions xs, ys (N, P, Q) (column and row indices, real
    valued) -> (N, C, P, Q) float32. Each output mixes the four nearest pixels with bilinear
    weights; a neighbour outside the image counts as `fill` (so fill=0 matches torch's
    grid_sample with padding_mode="zeros").

    >>> bilinear_sample(np.array([[[[0.0, 10.0]]]]), np.array([[[0.25, 1.5]]]), np.zeros((1, 1, 2)), fill=2.0)
    array([[[[2.5, 6. ]]]], dtype=float32)
    """
    images = np.asarray(images, np.float32)
    n, channels, height, width = images.shape
    # A border of `fill` (one pixel before, two after) and positions clipped to [-1, size] keep
    # all four neighbours inside the bordered image: no masks, and far-off positions read fill
    # only (a clipped position sits on the border with zero weight beyond it). float32 throughout,
    # and each neighbour one gather from the flat batch (six times faster than per-axis gathers).
    rows, stride = height + 3, width + 3
    bordered = np.full((n, channels, rows, stride), fill, np.float32)
    bordered[:, :, 1:height + 1, 1:width + 1] = images
    flat = bordered.reshape(-1)
    xs = np.clip(xs, -1, width, dtype=np.float32)
    ys = np.clip(ys, -1, height, dtype=np.float32)
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0).reshape(n, 1, -1), (ys - y0).reshape(n, 1, -1)
    base = ((y0 + 1) * stride + (x0 + 1)).astype(np.intp).reshape(n, 1, -1)
    base = base + (np.arange(n * channels, dtype=np.intp) * (rows * stride)).reshape(n, channels, 1)
    a, b, c, d = (flat.take(base + offset) for offset in (0, 1, stride, stride + 1))
    top, bottom = a + fx * (b - a), c + fx * (d - c)
    return (top + fy * (bottom - top)).reshape((n, channels) + xs.shape[1:])


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
    xs, ys = affine_grid(matrices, in_size if out_size is None else out_size, in_size)
    return bilinear_sample(images, xs, ys, fill)
