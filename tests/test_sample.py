"""ops.bilinear_sample and ops.affine_sample (the warps' sampler) and ops.crop_windows (the
crops') against the float64 reference, their error messages, and runtime.thread_limit."""
import threading

import numpy as np
import pytest

import pyconvx
import reference as ref
from pyconvx import ops, runtime


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def positions(rng, shape, height, width):
    """Columns and rows mostly inside, some past every edge, some on whole pixels and on the
    edges themselves (-1, 0, size - 1, size), some far off."""
    xs = rng.uniform(-3, width + 2, shape).astype(np.float32)
    ys = rng.uniform(-3, height + 2, shape).astype(np.float32)
    flat_x, flat_y = xs.reshape(-1), ys.reshape(-1)
    special = np.array([-1, 0, width - 1, width, 2.0, -1e30, 1e30, np.inf, -np.inf], np.float32)
    flat_x[:len(special)] = special
    flat_y[len(special):2 * len(special)] = np.array([-1, 0, height - 1, height, 1.0, -1e30, 1e30, np.inf, -np.inf])
    return xs, ys


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 1), (3, 2, 1, 6), (2, 4, 9, 2)])
@pytest.mark.parametrize("fill", [0.0, -0.75])
def test_bilinear_sample_matches_the_reference(rng, shape, fill):
    x = rng.standard_normal(shape).astype(np.float32)
    xs, ys = positions(rng, (shape[0], 4, 6), *shape[2:])
    got = ops.bilinear_sample(x, xs, ys, fill=fill)
    assert got.shape == (shape[0], shape[1], 4, 6) and got.dtype == np.float32
    ref.assert_close(got, ref.bilinear_sample(x, xs, ys, fill), 4, f"bilinear_sample {shape}")


def test_whole_pixel_positions_copy_pixels_exactly(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(4, dtype=np.float32), np.arange(5, dtype=np.float32), indexing="ij")
    xs, ys = np.broadcast_to(cols, (2, 4, 5)), np.broadcast_to(rows, (2, 4, 5))
    np.testing.assert_array_equal(ops.bilinear_sample(x, xs, ys, fill=9.0), x)


def test_nan_positions_read_fill_and_nan_pixels_spread_only_to_their_neighbours():
    x = np.ones((1, 1, 3, 3), np.float32)
    x[0, 0, 0, 0] = np.nan
    xs = np.array([[[np.nan, 1.0, 0.5, 2.0]]], np.float32)
    ys = np.array([[[1.0, np.nan, 0.5, 2.0]]], np.float32)
    got = ops.bilinear_sample(x, xs, ys, fill=-2.0)[0, 0, 0]
    assert got[0] == -2.0 and got[1] == -2.0 and np.isnan(got[2]) and got[3] == 1.0


def test_affine_sample_is_bilinear_sample_at_the_maps_positions(rng):
    from pyconvx.augment import sampling

    x = rng.standard_normal((3, 2, 6, 7)).astype(np.float32)
    matrices = sampling.affine_matrices(angle=[30.0, -75.0, 180.0], translate=[(1, -2), (0.5, 0), (0, 3)],
                                        scale=[1.0, 0.7, 1.4], shear=[(10, 0), (0, -5), (3, 4)])
    maps = sampling.pixel_maps(matrices, (5, 8), (6, 7))
    xs, ys = sampling.affine_grid(matrices, (5, 8), (6, 7))
    got = ops.affine_sample(x, maps, out_size=(5, 8), fill=0.5)
    # The same positions (float64 maps, rounded to float32 once), so the same bits.
    np.testing.assert_array_equal(got, ops.bilinear_sample(x, xs, ys, fill=0.5))
    ref.assert_close(got, ref.affine_sample(x, maps, (5, 8), 0.5), 4, "affine_sample")


@pytest.mark.parametrize("shape", [(2, 3, 9, 70), (3, 1, 32, 32), (1, 2, 5, 17)])
def test_affine_sample_matches_the_reference_for_small_and_large_turns_shifts_and_zooms(rng, shape):
    # Sixteen outputs of a row read a band of rows and columns: narrow for small turns and
    # shifts (read as whole row windows on AVX-512), wide for large turns and zooms (gathered),
    # across the image's edges for shifts past them.
    from pyconvx.augment import sampling

    n, _, height, width = shape
    x = rng.standard_normal(shape).astype(np.float32)
    for angle, shift, scale in [(7.0, (0.0, 0.0), 1.0), (-12.0, (width - 3.0, 1.0), 1.0), (90.0, (0.0, 0.0), 1.0),
                                (3.0, (-5.5, -height + 2.0), 0.4), (-2.0, (0.3, 0.0), 2.5)]:
        matrices = sampling.affine_matrices(np.full(n, angle), np.tile(shift, (n, 1)), np.full(n, scale))
        maps = sampling.pixel_maps(matrices, (height + 1, width - 1), (height, width))
        got = ops.affine_sample(x, maps, out_size=(height + 1, width - 1), fill=-0.5)
        ref.assert_close(got, ref.affine_sample(x, maps, (height + 1, width - 1), -0.5), 4, f"{shape} {angle}")


@pytest.mark.skipif(__import__("os").name != "posix", reason="needs mmap and mprotect (POSIX)")
def test_affine_sample_reads_nothing_past_the_image(rng):
    # The image ends where an inaccessible page begins, and the map shifts it left, so that the
    # last row's outputs read its last columns and, were nothing masked, the memory after them.
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    count = 3 * 20 * 20
    readable = -(-4 * count // page) * page
    pages = mmap.mmap(-1, readable + page)
    start = ctypes.addressof(ctypes.c_char.from_buffer(pages))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(ctypes.c_void_p(start + readable), page, 0) == 0  # PROT_NONE
    x = np.frombuffer(pages, np.float32, count, readable - 4 * count).reshape(1, 3, 20, 20)
    x[...] = rng.standard_normal(x.shape)
    maps = np.array([[[1.0, 0.0, 17.5], [0.0, 1.0, 0.25]]])  # column q reads q + 17.5
    got = ops.affine_sample(x, maps, fill=2.0)
    ref.assert_close(got, ref.affine_sample(x, maps, (20, 20), 2.0), 4, "affine_sample at the end of memory")


def test_affine_sample_keeps_the_image_size_by_default(rng):
    x = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    identity = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (2, 1, 1))
    np.testing.assert_array_equal(ops.affine_sample(x, identity), x)
    assert ops.affine_sample(x, identity, out_size=(0, 3)).shape == (2, 1, 0, 3)


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((16, 3, 40, 40)).astype(np.float32)
    xs, ys = positions(rng, (16, 40, 40), 40, 40)
    before = runtime.get_num_threads()
    try:
        runtime.set_num_threads(1)
        one = ops.bilinear_sample(x, xs, ys)
        runtime.set_num_threads(2)
        np.testing.assert_array_equal(ops.bilinear_sample(x, xs, ys), one)
    finally:
        runtime.set_num_threads(before)


@pytest.mark.parametrize("call, names", [
    (lambda: ops.bilinear_sample(np.zeros((2, 1, 3, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2, 2))), "xs and ys"),
    (lambda: ops.bilinear_sample(np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2, 3))), "xs and ys"),
    (lambda: ops.bilinear_sample(np.zeros((1, 1, 3, 3)), np.zeros((2, 2)), np.zeros((2, 2))), "xs and ys"),
    (lambda: ops.bilinear_sample(np.zeros((1, 0, 3, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2, 2))), "x must"),
    (lambda: ops.bilinear_sample(np.zeros((1, 3, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2, 2))), "x"),
    (lambda: ops.bilinear_sample(np.zeros((1, 1, 1, 2**24), np.float32), np.zeros((1, 1, 1)), np.zeros((1, 1, 1))),
     r"height and width must be below 2\^24, got x shape \(1, 1, 1, 16777216\)"),
    (lambda: ops.affine_sample(np.zeros((2, 1, 3, 3)), np.zeros((1, 2, 3))), "maps"),
    (lambda: ops.affine_sample(np.zeros((1, 1, 3, 3)), np.zeros((1, 3, 3))), "maps"),
    (lambda: ops.affine_sample(np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 3)), out_size=(-1, 2)), "out_h=-1"),
    (lambda: ops.affine_sample(np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 3)), out_size=(2, 2, 2)), "out_size"),
])
def test_bad_arguments_raise_value_errors_naming_them(call, names):
    with pytest.raises(ValueError, match=names):
        call()


def test_thread_limit_caps_the_calling_thread_only():
    before = runtime.get_num_threads()
    try:
        runtime.set_num_threads(2)
        seen = {}

        def other():
            seen["other"] = runtime.get_num_threads()

        with runtime.thread_limit(1):
            assert runtime.get_num_threads() == 1 == pyconvx.cpu_info()["num_threads"]
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()
            with runtime.thread_limit(8):  # a cap above the count changes nothing
                assert runtime.get_num_threads() == 2
            assert runtime.get_num_threads() == 1  # the inner block put the outer cap back
        assert seen["other"] == 2 and runtime.get_num_threads() == 2
    finally:
        runtime.set_num_threads(before)


@pytest.mark.parametrize("n", [0, -1, 1.5, "2"])
def test_thread_limit_refuses_what_is_not_a_positive_int(n):
    with pytest.raises((ValueError, TypeError), match="n"):
        with runtime.thread_limit(n):
            pass


def test_pixel_maps_refuse_a_singular_map():
    from pyconvx.augment import sampling

    singular = np.array([[[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]])
    with pytest.raises(ValueError, match=r"invertible, got determinant 0 at matrices\[0\]"):
        sampling.pixel_maps(singular, (3, 3), (3, 3))
    nearly = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1e-200, 0.0, 0.0], [0.0, 1e-200, 0.0]]])
    with pytest.raises(ValueError, match=r"got determinant 0 at matrices\[1\]"):  # underflows to 0
        sampling.pixel_maps(nearly, (3, 3), (3, 3))
    with pytest.raises(ValueError, match=r"got determinant nan at matrices\[0\]"):
        sampling.pixel_maps(np.full((1, 2, 3), np.nan), (3, 3), (3, 3))


def test_affine_matrices_compose_shear_scale_rotation_and_translation(rng):
    from pyconvx.augment import sampling

    angle, scale = rng.uniform(-180, 180, 5), rng.uniform(0.5, 2, 5)
    translate, shear = rng.uniform(-3, 3, (5, 2)), rng.uniform(-30, 30, (5, 2))
    got = sampling.affine_matrices(angle, translate, scale, shear)
    for i in range(5):
        a, (sx, sy) = np.radians(angle[i]), np.tan(np.radians(shear[i]))
        rotation = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        forward = scale[i] * rotation @ np.array([[1.0, 0.0], [sy, 1.0]]) @ np.array([[1.0, sx], [0.0, 1.0]])
        np.testing.assert_allclose(got[i], np.hstack([forward, translate[i][:, None]]), rtol=1e-13, atol=1e-13)
    # A parameter given once serves every image.
    np.testing.assert_array_equal(sampling.affine_matrices(angle, (1.0, 2.0))[:, :, 2], np.tile([1.0, 2.0], (5, 1)))
    assert sampling.affine_matrices(np.zeros(0)).shape == (0, 2, 3)


@pytest.mark.parametrize("kwargs, name", [(dict(angle=np.zeros(3), scale=np.ones(2)), "scale"),
                                          (dict(translate=np.zeros((2, 3))), "translate"),
                                          (dict(angle=np.zeros(2), shear=np.zeros((3, 2))), "angle"),
                                          (dict(shear=[1.0, 2.0, 3.0]), "shear")])
def test_affine_matrices_name_a_parameter_of_the_wrong_shape(kwargs, name):
    from pyconvx.augment import sampling

    with pytest.raises(ValueError, match=f"affine_matrices: {name} must be"):
        sampling.affine_matrices(**kwargs)


def test_pixel_maps_name_a_bad_shape_or_size():
    from pyconvx.augment import sampling

    with pytest.raises(ValueError, match=r"matrices must have shape \(N, 2, 3\), got matrices \(2, 3\)"):
        sampling.pixel_maps(np.zeros((2, 3)), (3, 3), (3, 3))
    with pytest.raises(ValueError, match=r"sizes must be >= 0, got out_size=\(-1, 3\)"):
        sampling.pixel_maps(sampling.affine_matrices(), (-1, 3), (3, 3))


@pytest.mark.parametrize("shape, size", [((3, 2, 5, 7), (4, 3)), ((2, 1, 1, 1), (2, 2)), ((1, 3, 4, 4), (0, 2))])
def test_crop_windows_match_the_reference_inside_across_and_past_every_edge(rng, shape, size):
    n = shape[0]
    x = rng.standard_normal(shape).astype(np.float32)
    tops = np.array([-size[0] - 2, -1, shape[2] - 1][:n], np.int64)
    lefts = np.array([1, shape[3], -2][:n], np.int64)
    got = ops.crop_windows(x, tops, lefts, size, fill=-0.5)
    assert got.shape == shape[:2] + size and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref.crop_windows(x, tops, lefts, size, -0.5))


def test_crop_windows_inside_the_image_are_its_slices(rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    got = ops.crop_windows(x, [0, 4], [3, 0], (5, 5))
    np.testing.assert_array_equal(got[0], x[0, :, 0:5, 3:8])
    np.testing.assert_array_equal(got[1], x[1, :, 4:9, 0:5])


@pytest.mark.parametrize("call, message", [
    (lambda x: ops.crop_windows(x, [0], [0, 0], 2), r"tops and lefts must both have shape \(N,\) with N=2"),
    (lambda x: ops.crop_windows(x, [0, 0], [0.5, 0], 2), "lefts must hold integers, got dtype float64"),
    (lambda x: ops.crop_windows(x, [0, 0], [0, 0], (-1, 2)), "out_h=-1"),
    (lambda x: ops.crop_windows(x, [0, 2 ** 62 + 1], [0, 0], 2), r"tops\[1\]=4611686018427387905"),
    (lambda x: ops.crop_windows(x, [0, 0], [-2 ** 63, 0], 2), r"lefts\[0\]=-9223372036854775808"),
])
def test_crop_windows_name_the_bad_parameter(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(np.zeros((2, 1, 3, 3), np.float32))
