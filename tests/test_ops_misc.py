"""gemm, im2col/col2im, conv_output_size, correlate2d/convolve2d, filters, threads, package surface."""

import itertools

import numpy as np
import pytest
import scipy.signal

import pyconvx
import reference as ref
from conftest import INPUT_VARIANTS, as_variant, assert_output_array, assert_unchanged, snapshot


def randn(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Package surface
# ---------------------------------------------------------------------------------------------

API = ["conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
       "global_avg_pool2d", "global_avg_pool2d_backward", "im2col", "col2im", "conv_output_size",
       "correlate2d", "convolve2d", "gemm"]


@pytest.mark.parametrize("name", API)
def test_ops_are_reexported(name):
    import pyconvx.ops

    assert callable(getattr(pyconvx, name))
    assert getattr(pyconvx, name) is getattr(pyconvx.ops, name)


def test_version_is_a_nonempty_string():
    assert isinstance(pyconvx.__version__, str) and pyconvx.__version__


# ---------------------------------------------------------------------------------------------
# gemm
# ---------------------------------------------------------------------------------------------

GEMM_SHAPES = [(1, 1, 1), (7, 300, 5), (1, 64, 33), (33, 64, 1), (129, 257, 65), (600, 700, 300)]
TRANSPOSES = list(itertools.product([False, True], repeat=2))


def gemm_operands(rng, m, k, n, trans_a, trans_b):
    """Random a, b stored so that op(a) is m x k and op(b) is k x n."""
    a = randn(rng, (k, m) if trans_a else (m, k))
    b = randn(rng, (n, k) if trans_b else (k, n))
    return a, b


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m, k, n", GEMM_SHAPES, ids=lambda v: str(v))
def test_gemm_matches_numpy(m, k, n, trans_a, trans_b, rng):
    a, b = gemm_operands(rng, m, k, n, trans_a, trans_b)
    c = pyconvx.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert_output_array(c, (m, n))
    ref.assert_close(c, ref.gemm(a, b, trans_a, trans_b), k, f"{m}x{k}x{n} {trans_a} {trans_b}")


def test_gemm_positional_transpose_flags(rng):
    a, b = gemm_operands(rng, 5, 6, 7, True, True)
    ref.assert_close(pyconvx.gemm(a, b, True, True), a.T.astype(np.float64) @ b.T, 6)


@pytest.mark.parametrize("m, k, n", [(0, 5, 3), (4, 5, 0), (4, 0, 3)], ids=["m0", "n0", "k0"])
def test_gemm_empty_dimensions(m, k, n):
    a = np.ones((m, k), dtype=np.float32)
    b = np.ones((k, n), dtype=np.float32)
    c = pyconvx.gemm(a, b)
    assert_output_array(c, (m, n))
    assert not c.any()  # k == 0 gives the empty sum, zero


@pytest.mark.parametrize("variant", INPUT_VARIANTS)
def test_gemm_accepts_any_layout_and_leaves_inputs_alone(variant, rng):
    a, b = gemm_operands(rng, 37, 70, 19, False, False)
    av, bv = as_variant(a, variant), as_variant(b, variant)
    saved = snapshot(av), snapshot(bv)
    c = pyconvx.gemm(av, bv)
    assert_output_array(c, (37, 19))
    ref.assert_close(c, ref.gemm(a, b), 70)
    assert_unchanged(av, saved[0])
    assert_unchanged(bv, saved[1])


def test_gemm_on_transposed_views(rng):
    # a.T of a C array is a Fortran view: the same product as a transpose flag.
    a, b = gemm_operands(rng, 40, 30, 20, True, True)
    ref.assert_close(pyconvx.gemm(a.T, b.T), pyconvx.gemm(a, b, trans_a=True, trans_b=True), 30)


# ---------------------------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------------------------

UNFOLD_CASES = [
    pytest.param(dict(kernel_size=(3, 2)), (2, 3, 7, 8), id="k3x2"),
    pytest.param(dict(kernel_size=3, stride=2, padding=1, dilation=2), (1, 2, 9, 9), id="k3_s2_p1_d2"),
    pytest.param(dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 2, 8, 10),
                 id="k2x3_s2x1_p1x0_d1x2"),
    pytest.param(dict(kernel_size=1), (2, 4, 5, 3), id="k1"),
    pytest.param(dict(kernel_size=(5, 4)), (1, 3, 5, 4), id="kernel_equals_image"),
    pytest.param(dict(kernel_size=3, stride=4), (1, 33, 11, 13), id="stride_gt_kernel_c33"),
]


@pytest.mark.parametrize("kwargs, shape", UNFOLD_CASES)
def test_im2col_matches_reference(kwargs, shape, rng):
    x = randn(rng, shape)
    cols = pyconvx.im2col(x, **kwargs)
    want = ref.im2col(x, **kwargs)
    assert_output_array(cols, want.shape)
    np.testing.assert_array_equal(cols, want.astype(np.float32))  # a pure copy: exact


@pytest.mark.parametrize("kwargs, shape", UNFOLD_CASES)
def test_col2im_matches_reference(kwargs, shape, rng):
    r, s = ref.pair(kwargs["kernel_size"])
    cols_shape = ref.im2col(np.zeros(shape), **kwargs).shape
    cols = randn(rng, cols_shape)
    x = pyconvx.col2im(cols, shape, **kwargs)
    assert_output_array(x, shape)
    ref.assert_close(x, ref.col2im(cols, shape, **kwargs), r * s)


def test_col2im_of_im2col_counts_overlaps():
    shape = (1, 1, 5, 5)
    cols = pyconvx.im2col(np.ones(shape, dtype=np.float32), 3, padding=1)
    counts = pyconvx.col2im(cols, shape, 3, padding=1)
    # Each pixel is covered by as many 3x3 windows as fit around it: 4 in a corner, 9 inside.
    expected = np.array([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]])
    np.testing.assert_array_equal(counts[0, 0], expected)


def test_conv2d_is_gemm_of_im2col(rng):
    x = randn(rng, (2, 3, 9, 8))
    w = randn(rng, (5, 3, 3, 2))
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2))
    y = pyconvx.conv2d(x, w, **kw)
    cols = pyconvx.im2col(x, (3, 2), **kw)
    via_gemm = np.stack([pyconvx.gemm(w.reshape(5, -1), cols[i]) for i in range(2)]).reshape(y.shape)
    ref.assert_close(y, via_gemm, 18)


def test_im2col_input_handling(rng):
    x = randn(rng, (2, 3, 6, 5))
    want = pyconvx.im2col(x, 3, padding=1)
    for variant in INPUT_VARIANTS:
        xv = as_variant(x, variant)
        saved = snapshot(xv)
        got = pyconvx.im2col(xv, 3, padding=1)
        assert_output_array(got, want.shape)
        np.testing.assert_array_equal(got, want, err_msg=variant)
        assert_unchanged(xv, saved)
    cols = randn(rng, want.shape)
    want_x = pyconvx.col2im(cols, x.shape, 3, padding=1)
    for variant in INPUT_VARIANTS:
        cv = as_variant(cols, variant)
        saved = snapshot(cv)
        got = pyconvx.col2im(cv, x.shape, 3, padding=1)
        assert_output_array(got, x.shape)
        ref.assert_close(got, want_x, 9, variant)
        assert_unchanged(cv, saved)


def test_im2col_col2im_zero_batch():
    cols = pyconvx.im2col(np.zeros((0, 3, 6, 5), dtype=np.float32), 3)
    assert_output_array(cols, (0, 27, 12))
    assert_output_array(pyconvx.col2im(cols, (0, 3, 6, 5), 3), (0, 3, 6, 5))


# ---------------------------------------------------------------------------------------------
# conv_output_size
# ---------------------------------------------------------------------------------------------


CONV_OUTPUT_SIZE = [
    # (positional args, keyword args, expected)
    ((6, 3), {}, 4),
    ((5, 5), {}, 1),
    ((7, 3), dict(padding=1, stride=2), 4),
    ((8, 3), dict(padding=1, stride=2), 4),
    ((224, 7), dict(padding=3, stride=2), 112),
    ((10, 3), dict(dilation=2), 6),
    ((10, 3), dict(padding=2, dilation=2), 10),
    ((11, 2), dict(stride=3), 4),
    ((6, 3, 1, 1, 1), {}, 6),  # positional (n, f, padding, stride, dilation)
    ((9, 3, 0, 2, 3), {}, 2),
]


def _cos_id(args, kwargs):
    parts = [f"n{args[0]}_f{args[1]}"] + [f"{k}{v}" for k, v in kwargs.items()]
    if len(args) > 2:
        parts.append("positional" + "_".join(map(str, args[2:])))
    return "_".join(parts)


@pytest.mark.parametrize("args, kwargs, expected",
                         [pytest.param(a, k, e, id=_cos_id(a, k)) for a, k, e in CONV_OUTPUT_SIZE])
def test_conv_output_size(args, kwargs, expected):
    got = pyconvx.conv_output_size(*args, **kwargs)
    assert type(got) is int
    assert got == expected


def test_conv_output_size_agrees_with_conv2d(rng):
    for n, f, p, s, d in [(9, 3, 1, 2, 1), (13, 2, 0, 3, 2), (7, 1, 2, 1, 1)]:
        x = randn(rng, (1, 1, n, n))
        w = randn(rng, (1, 1, f, f))
        y = pyconvx.conv2d(x, w, stride=s, padding=p, dilation=d)
        size = pyconvx.conv_output_size(n, f, padding=p, stride=s, dilation=d)
        assert y.shape == (1, 1, size, size)


# ---------------------------------------------------------------------------------------------
# correlate2d / convolve2d against scipy.signal
# ---------------------------------------------------------------------------------------------

IMAGE_KERNEL = [
    ((7, 9), (3, 3)),
    ((7, 9), (1, 1)),
    ((8, 8), (2, 2)),
    ((7, 9), (2, 4)),
    ((6, 10), (4, 5)),
    ((9, 6), (5, 2)),
    ((5, 5), (5, 5)),
]
# Kernels larger than the image: allowed in "full" and "same"; in "valid" only when the kernel
# is at least as large in every dimension (scipy then swaps the roles of the two inputs).
BIG_KERNEL = [((3, 4), (5, 6)), ((2, 2), (3, 4)), ((3, 5), (4, 2))]


def corr_params():
    params = []
    for (img, ker), mode in itertools.product(IMAGE_KERNEL + BIG_KERNEL, ["valid", "same", "full"]):
        contains = all(a >= b for a, b in zip(img, ker)) or all(a <= b for a, b in zip(img, ker))
        if mode == "valid" and not contains:
            continue
        params.append(pytest.param(img, ker, mode, id=f"img{img[0]}x{img[1]}_k{ker[0]}x{ker[1]}_{mode}"))
    return params


@pytest.mark.parametrize("image_shape, kernel_shape, mode", corr_params())
@pytest.mark.parametrize("fn", ["correlate2d", "convolve2d"])
def test_correlate_convolve_match_scipy(fn, image_shape, kernel_shape, mode, rng):
    image = randn(rng, image_shape)
    kernel = randn(rng, kernel_shape)
    got = getattr(pyconvx, fn)(image, kernel, mode=mode)
    want = getattr(scipy.signal, fn)(image.astype(np.float64), kernel.astype(np.float64), mode=mode)
    assert_output_array(got, want.shape)
    ref.assert_close(got, want, kernel.size, f"{fn} {mode}")


@pytest.mark.parametrize("fn", ["correlate2d", "convolve2d"])
def test_valid_mode_requires_one_input_to_contain_the_other(fn):
    image = np.ones((3, 5), dtype=np.float32)
    kernel = np.ones((4, 2), dtype=np.float32)
    with pytest.raises(ValueError):
        getattr(scipy.signal, fn)(image, kernel, mode="valid")  # documents the rule we follow
    with pytest.raises(ValueError):
        getattr(pyconvx, fn)(image, kernel, mode="valid")


def test_default_mode_is_valid(rng):
    image, kernel = randn(rng, (6, 7)), randn(rng, (3, 2))
    assert pyconvx.correlate2d(image, kernel).shape == (4, 6)
    assert pyconvx.convolve2d(image, kernel).shape == (4, 6)


@pytest.mark.parametrize("mode", ["valid", "full"])  # in "same" the centring of even kernels differs
def test_convolve_is_correlate_with_flipped_kernel(mode, rng):
    image, kernel = randn(rng, (8, 9)), randn(rng, (3, 4))
    ref.assert_close(pyconvx.convolve2d(image, kernel, mode=mode),
                     pyconvx.correlate2d(image, kernel[::-1, ::-1], mode=mode), 12)


def test_correlate2d_input_handling(rng):
    image, kernel = randn(rng, (7, 8)), randn(rng, (3, 2))
    want = pyconvx.correlate2d(image, kernel, mode="full")
    for variant in INPUT_VARIANTS + ["list"]:
        iv, kv = as_variant(image, variant), as_variant(kernel, variant)
        saved = snapshot(iv), snapshot(kv)
        got = pyconvx.correlate2d(iv, kv, mode="full")
        assert_output_array(got, want.shape)
        ref.assert_close(got, want, 6, variant)
        assert_unchanged(iv, saved[0])
        assert_unchanged(kv, saved[1])


# ---------------------------------------------------------------------------------------------
# Edge filters
# ---------------------------------------------------------------------------------------------

FILTERS = {
    "vertical_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "sobel_x": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "scharr_x": [[3, 0, -3], [10, 0, -10], [3, 0, -3]],
}
TRANSPOSED = {"horizontal_edge": "vertical_edge", "sobel_y": "sobel_x", "scharr_y": "scharr_x"}


@pytest.mark.parametrize("name", list(FILTERS) + list(TRANSPOSED))
def test_filter_values(name):
    f = getattr(pyconvx.filters, name)
    assert isinstance(f, np.ndarray) and f.dtype == np.float32 and f.shape == (3, 3)
    expected = np.array(FILTERS[name]) if name in FILTERS else np.array(FILTERS[TRANSPOSED[name]]).T
    np.testing.assert_array_equal(f, expected)


def test_vertical_edge_detects_left_bright_right_dark():
    # Andrew Ng's example: rows of [10, 10, 10, 0, 0, 0] give rows of [0, 30, 30, 0].
    image = np.tile(np.array([10, 10, 10, 0, 0, 0], dtype=np.float32), (6, 1))
    out = pyconvx.correlate2d(image, pyconvx.filters.vertical_edge)
    np.testing.assert_allclose(out, np.tile([0.0, 30.0, 30.0, 0.0], (4, 1)), atol=1e-5)
    # Same through conv2d with a 1x1x3x3 weight.
    y = pyconvx.conv2d(image[None, None], pyconvx.filters.vertical_edge[None, None])
    np.testing.assert_allclose(y[0, 0], out, atol=1e-5)
    # A dark-to-bright edge flips the sign.
    flipped = pyconvx.correlate2d(image[:, ::-1], pyconvx.filters.vertical_edge)
    np.testing.assert_allclose(flipped, -out, atol=1e-5)


def test_vertical_edge_on_integer_image():
    image = np.tile(np.array([10, 10, 10, 0, 0, 0]), (6, 1))  # int64: any array-like is accepted
    out = pyconvx.correlate2d(image, pyconvx.filters.vertical_edge)
    assert_output_array(out, (4, 4))
    np.testing.assert_allclose(out, np.tile([0.0, 30.0, 30.0, 0.0], (4, 1)), atol=1e-5)


def test_horizontal_edge_detects_top_bright_bottom_dark():
    image = np.tile(np.array([10, 10, 10, 0, 0, 0], dtype=np.float32)[:, None], (1, 6))
    out = pyconvx.correlate2d(image, pyconvx.filters.horizontal_edge)
    np.testing.assert_allclose(out, np.tile(np.array([0.0, 30.0, 30.0, 0.0])[:, None], (1, 4)), atol=1e-5)


@pytest.mark.parametrize("name, weight", [("sobel_x", 4), ("scharr_x", 16)])
def test_gradient_filters_on_a_ramp(name, weight):
    # I[i, j] = j: every interior horizontal difference I[., j-1] - I[., j+1] is -2.
    image = np.tile(np.arange(8, dtype=np.float32), (5, 1))
    out = pyconvx.correlate2d(image, getattr(pyconvx.filters, name))
    np.testing.assert_allclose(out, np.full((3, 6), -2.0 * weight), atol=1e-4)
    transposed = pyconvx.correlate2d(image, getattr(pyconvx.filters, name.replace("_x", "_y")))
    np.testing.assert_allclose(transposed, np.zeros((3, 6)), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------


def test_set_get_num_threads_roundtrip(restore_threads):
    for n in (1, 2, 3, 1):
        pyconvx.set_num_threads(n)
        assert pyconvx.get_num_threads() == n
        assert pyconvx.cpu_info()["num_threads"] == n


@pytest.mark.parametrize("n", [0, -1, 4097, 2**40])
def test_set_num_threads_out_of_range_is_a_value_error(restore_threads, n):
    before = pyconvx.get_num_threads()
    with pytest.raises(ValueError, match="n must be in"):
        pyconvx.set_num_threads(n)
    assert pyconvx.get_num_threads() == before


def test_set_num_threads_rejects_non_integers(restore_threads):
    with pytest.raises(TypeError, match="n must be an integer"):
        pyconvx.set_num_threads(1.5)


def test_results_agree_with_one_and_two_threads(restore_threads, rng):
    case = next(c for c in ref.CONV_CASES if c.id.startswith("large_k150"))
    x, w, b = case.make(rng)
    grad_out = randn(rng, case.out_shape())
    a, bb = gemm_operands(rng, 129, 257, 65, False, True)
    results = {}
    for n in (1, 2):
        pyconvx.set_num_threads(n)
        results[n] = (
            pyconvx.conv2d(x, w, b, activation=case.activation, **case.kwargs()),
            *pyconvx.conv2d_backward(grad_out, x, w, **case.kwargs()),
            pyconvx.gemm(a, bb, trans_b=True),
            pyconvx.max_pool2d(x, 3, stride=2, padding=1),
            pyconvx.avg_pool2d(x, 3, stride=2, padding=1),
        )
    reductions = [case.fwd_reduction(), case.grad_x_reduction(), case.grad_w_reduction(),
                  case.grad_w_reduction(), 257, 1, 9]
    for one, two, red in zip(results[1], results[2], reductions):
        ref.assert_close(two, one, red)


def test_concurrent_calls_from_python_threads(rng):
    """Kernels called from several Python threads at once give the same results as serially."""
    from concurrent.futures import ThreadPoolExecutor

    case = next(c for c in ref.CONV_CASES if c.id.startswith("blocking_k17"))
    inputs = [case.make(rng) for _ in range(6)]

    def work(i):
        x, w, b = inputs[i]
        y = pyconvx.conv2d(x, w, b, **case.kwargs())
        gx, gw, _ = pyconvx.conv2d_backward(y, x, w, **case.kwargs())
        return y, gx, gw, pyconvx.gemm(w.reshape(case.k, -1), w.reshape(case.k, -1), trans_b=True)

    serial = [work(i) for i in range(len(inputs))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(work, range(len(inputs))))
    for s_res, p_res in zip(serial, parallel):
        for a, b in zip(s_res, p_res):
            ref.assert_close(b, a, case.grad_w_reduction())


def test_misaligned_float32_input_is_copied_to_an_aligned_array():
    # A float32 view one byte into a buffer is C-contiguous but misaligned; handing its pointer to
    # the kernels was undefined behaviour (UBSan reported the pooling loads).
    from pyconvx._args import as_float32
    x = np.ndarray((2, 3, 8, 8), dtype=np.float32, buffer=bytearray(2 * 3 * 8 * 8 * 4 + 1), offset=1)
    x[...] = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    assert not x.flags.aligned
    converted = as_float32(x, "x")
    assert converted.flags.aligned and converted.flags.c_contiguous
    np.testing.assert_array_equal(converted, x)
