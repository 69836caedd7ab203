"""Property-based fuzzing of every op in pyconvx.ops with random shapes and parameters, valid and
invalid: each call either agrees with the float64 reference (tests/reference.py) within the
documented tolerance, or raises ValueError / TypeError whose message names a parameter that is
wrong. A small model of each op's rules, written here from the docstrings, says which.

HYPOTHESIS_PROFILE=long runs thousands of examples per op (see conftest.py); the default "ci"
profile a few dozen.
"""

import re

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pyconvx  # noqa: E402
import reference as ref  # noqa: E402

small = st.integers(1, 4)


def data_array(draw, shape, seed_name="seed"):
    """Unit-normal float32 data of `shape`, seeded by hypothesis (so a failure replays)."""
    seed = draw(st.integers(0, 2**32 - 1), label=seed_name)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check(call, problems, compare, accept=()):
    """`problems` is a list of regexes, one per parameter the model finds wrong. With problems,
    the call must raise ValueError or TypeError naming one of them; without, it must return a
    result that `compare` accepts. `accept` lists regexes of errors a valid call may still raise
    (a forced algorithm that cannot compute the shape)."""
    if problems:
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        message = str(info.value)
        assert any(re.search(p, message) for p in problems), (
            f"error message {message!r} names none of the wrong parameters {problems}")
        return
    try:
        result = call()
    except ValueError as exc:
        if any(re.search(p, str(exc)) for p in accept):
            return
        raise
    compare(result)


def on_batch(fn, x, *args, **kwargs):
    """fn(x, ...) of the reference, which needs a non-empty batch: an empty batch's result is
    that of one image, cut to none."""
    if x.shape[0]:
        return fn(x, *args, **kwargs)
    result = fn(np.zeros((1,) + x.shape[1:], x.dtype), *args, **kwargs)
    return tuple(r[:0] for r in result) if isinstance(result, tuple) else result[:0]


def pair_values(draw, low, high):
    """An int or a pair in [low, high]."""
    if draw(st.booleans()):
        return draw(st.integers(low, high))
    return (draw(st.integers(low, high)), draw(st.integers(low, high)))


def as_pair(value):
    return tuple(value) if isinstance(value, tuple) else (value, value)


# --------------------------------------------------------------------------------------------
# conv2d, conv2d_backward, conv2d_algorithm
# --------------------------------------------------------------------------------------------

CONV_MUTATIONS = ["stride_zero", "stride_negative", "dilation_zero", "padding_negative", "groups_zero",
                  "groups_not_dividing", "weight_channels", "bias_length", "x_3d", "weight_5d", "activation",
                  "algorithm_unknown", "same_strided", "x_string", "stride_float", "padding_3_tuple",
                  "grad_out_shape", "x_complex"]


@st.composite
def conv_problem(draw):
    """(kwargs for conv2d, wrong-parameter regexes, the pieces the reference needs)."""
    groups = draw(st.integers(1, 3))
    c, k = groups * draw(small), groups * draw(small)
    n, h, w = draw(st.integers(0, 3)), draw(st.integers(1, 11)), draw(st.integers(1, 11))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, dilation = pair_values(draw, 1, 3), pair_values(draw, 1, 2)
    padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                             st.tuples(*[st.integers(0, 3)] * 4), st.sampled_from(["valid", "same"])))
    x = data_array(draw, (n, c, h, w), "x")
    weight = data_array(draw, (k, c // groups, r, s), "weight")
    bias = data_array(draw, (k,), "bias") if draw(st.booleans()) else None
    activation = draw(st.sampled_from([None, "relu"]))
    algorithm = draw(st.sampled_from(pyconvx.CONV_ALGORITHMS))
    mutation = draw(st.sampled_from(CONV_MUTATIONS)) if draw(st.booleans()) else None

    problems = []
    if mutation == "stride_zero":
        stride = (stride if isinstance(stride, int) else stride[0], 0)
    elif mutation == "stride_negative":
        stride = -1
    elif mutation == "dilation_zero":
        dilation = 0
    elif mutation == "padding_negative":
        padding = (-1, 1) if draw(st.booleans()) else (0, 0, 0, -2)
    elif mutation == "groups_zero":
        groups = 0
    elif mutation == "groups_not_dividing":
        groups = c + 1  # does not divide c
    elif mutation == "weight_channels":
        weight = data_array(draw, (k, c // groups + 1, r, s), "weight")
    elif mutation == "bias_length":
        bias = np.ones(k + 1, np.float32)
    elif mutation == "x_3d":
        x = x[0] if n else np.ones((c, h, w), np.float32)
    elif mutation == "weight_5d":
        weight = weight[None]
    elif mutation == "activation":
        activation = "tanh"
    elif mutation == "algorithm_unknown":
        algorithm = "fft"
    elif mutation == "same_strided":
        padding, stride = "same", 2
    elif mutation == "x_string":
        x = "an image"
    elif mutation == "stride_float":
        stride = 1.5
    elif mutation == "padding_3_tuple":
        padding = (1, 1, 1)
    # grad_out_shape is applied by the backward test only.

    # The model of conv2d's rules: which parameters are wrong.
    sh, sw = as_pair(stride) if not isinstance(stride, float) else (1, 1)
    dh, dw = as_pair(dilation)
    if isinstance(stride, float):
        problems.append(r"\bstride\b")
    if min(sh, sw) < 1:
        problems.append(r"\bstride\b")
    if min(dh, dw) < 1:
        problems.append(r"\bdilation\b")
    if isinstance(padding, tuple) and len(padding) not in (2, 4):
        problems.append(r"\bpadding\b")
    if padding == "same" and (sh, sw) != (1, 1):
        problems.append(r"\bpadding\b|same")
    if isinstance(x, str):
        problems.append(r"\bx\b")
    elif x.ndim != 4:
        problems.append(r"\bx\b")
    if weight.ndim != 4:
        problems.append(r"\bweight\b")
    if groups < 1 or (c % groups or k % groups):
        problems.append(r"\bgroups\b")
    if weight.ndim == 4 and groups >= 1 and weight.shape[1] * groups != c:
        problems += [r"\bweight\b", r"channels", r"\bgroups\b"]
    structural = list(problems)  # the kernel-size check needs well-formed shapes and parameters
    if bias is not None and bias.shape != (k,):
        problems.append(r"\bbias\b")
    if activation not in (None, "relu"):
        problems.append(r"\bactivation\b")
    if algorithm not in pyconvx.CONV_ALGORITHMS:
        problems.append(r"\balgorithm\b")
    if not structural:
        pads = ref.conv_padding(padding, (r, s), (dh, dw))
        if min(pads) < 0:
            problems.append(r"\bpadding\b")
        elif dh * (r - 1) + 1 > h + pads[0] + pads[1] or dw * (s - 1) + 1 > w + pads[2] + pads[3]:
            problems.append(r"\bkernel\b")
    kwargs = dict(x=x, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  activation=activation, algorithm=algorithm)
    return kwargs, problems, mutation


def forced_algorithm_refusal(algorithm):
    """A forced algorithm may refuse a shape it cannot compute, naming itself."""
    return [rf"algorithm='{algorithm}' cannot compute"] if algorithm != "auto" else []


def conv_tolerance_check(got, want, reduction, algorithm_used):
    if algorithm_used == "winograd":
        # Winograd trades accuracy for multiplications: 1e-3 of the largest output (test_winograd.py)
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 * scale)
    else:
        ref.assert_close(got, want, reduction)


@given(conv_problem())
def test_conv2d_matches_the_reference_or_names_the_bad_parameter(problem):
    kwargs, problems, _ = problem
    algorithm = kwargs["algorithm"]

    def compare(y):
        want = ref.conv2d(kwargs["x"], kwargs["weight"], kwargs["bias"], kwargs["stride"], kwargs["padding"],
                          kwargs["dilation"], kwargs["groups"], kwargs["activation"])
        assert y.dtype == np.float32 and y.flags.c_contiguous
        used = algorithm
        if algorithm == "auto" and y.size:
            used = pyconvx.conv2d_algorithm(kwargs["x"].shape, kwargs["weight"].shape, kwargs["stride"],
                                            kwargs["padding"], kwargs["dilation"], kwargs["groups"])
        w = kwargs["weight"]
        conv_tolerance_check(y, want, w.shape[1] * w.shape[2] * w.shape[3], used)

    check(lambda: pyconvx.conv2d(**kwargs), problems, compare, forced_algorithm_refusal(algorithm))


@given(conv_problem())
def test_conv2d_algorithm_names_an_algorithm_that_computes_the_shape_or_the_bad_parameter(problem):
    kwargs, problems, _ = problem
    problems = [p for p in problems if "activation" not in p and "algorithm" not in p and "bias" not in p]
    x, w = kwargs["x"], kwargs["weight"]
    if isinstance(x, str):
        return  # shapes, not arrays, are this function's input
    args = dict(stride=kwargs["stride"], padding=kwargs["padding"], dilation=kwargs["dilation"],
                groups=kwargs["groups"])
    if x.ndim != 4:
        problems.append(r"x_shape")
    if w.ndim != 4:
        problems.append(r"weight_shape")

    def compare(name):
        assert name in pyconvx.CONV_ALGORITHMS and name != "auto"
        if x.shape[0]:  # the named algorithm accepts the shape
            pyconvx.conv2d(x, w, algorithm=name, **args)

    check(lambda: pyconvx.conv2d_algorithm(x.shape, w.shape, **args), problems, compare)


@given(conv_problem(), st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_conv2d_backward_matches_the_reference_or_names_the_bad_parameter(problem, needs):
    kwargs, problems, mutation = problem
    problems = [p for p in problems if "activation" not in p and "algorithm" not in p and "bias" not in p]
    x, w = kwargs["x"], kwargs["weight"]
    args = dict(stride=kwargs["stride"], padding=kwargs["padding"], dilation=kwargs["dilation"],
                groups=kwargs["groups"])
    if problems:
        grad_out = np.ones((1, 1, 1, 1), np.float32)
        problems.append(r"\bgrad_out\b")  # the shape it should have is unknown, so it is wrong too
    else:
        shape = ref.conv2d(x[:, :, :, :], w, None, **args).shape
        if mutation == "grad_out_shape":
            shape = shape[:3] + (shape[3] + 1,)
            problems.append(r"\bgrad_out\b")
        grad_out = np.random.default_rng(shape[0] + shape[3]).standard_normal(shape).astype(np.float32)

    def compare(grads):
        want = ref.conv2d_backward(grad_out, x, w, **args)
        cg, r, s = w.shape[1:]
        reductions = ((w.shape[0] // kwargs["groups"]) * r * s, grad_out.shape[0] * grad_out.shape[2] *
                      grad_out.shape[3], grad_out.shape[0] * grad_out.shape[2] * grad_out.shape[3])
        for name, got, expected, reduction, needed in zip(("grad_x", "grad_weight", "grad_bias"), grads, want,
                                                           reductions, needs):
            if not needed:
                assert got is None, name
                continue
            # grad_x of a stride-1 3x3/5x5 layer may run on Winograd: judge it as the forward pass
            scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
            tol = max(ref.tolerance(reduction), 1e-3 * scale if name == "grad_x" else 0.0)
            np.testing.assert_allclose(got, expected, rtol=ref.tolerance(reduction), atol=tol, err_msg=name)

    check(lambda: pyconvx.conv2d_backward(grad_out, x, w, needs=needs, **args), problems, compare)


@pytest.mark.parametrize("needs", [(True,), (True, True, True, True), "xw", None, 3])
def test_conv2d_backward_needs_must_be_three_flags(needs):
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    with pytest.raises((ValueError, TypeError), match=r"\bneeds\b"):
        pyconvx.conv2d_backward(np.ones((1, 3, 3, 3), np.float32), x, w, needs=needs)


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------

POOL_MUTATIONS = ["kernel_zero", "stride_zero", "padding_negative", "padding_over_half", "x_3d", "x_string",
                  "kernel_float", "grad_out_shape", "padding_3_tuple"]


@st.composite
def pool_problem(draw):
    n, c, h, w = draw(st.integers(0, 3)), draw(small), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    kernel = pair_values(draw, 1, 4)
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    kh, kw = as_pair(kernel)
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    if draw(st.booleans()) and padding[0] == padding[1]:
        padding = padding[0]
    ceil_mode = draw(st.booleans())
    x = data_array(draw, (n, c, h, w), "x")
    mutation = draw(st.sampled_from(POOL_MUTATIONS)) if draw(st.booleans()) else None
    problems = []
    if mutation == "kernel_zero":
        kernel, problems = (kh, 0), [r"\bkernel_size\b|\bkernel\b"]
    elif mutation == "stride_zero":
        stride, problems = 0, [r"\bstride\b"]
    elif mutation == "padding_negative":
        padding, problems = (-1, 0), [r"\bpadding\b"]
    elif mutation == "padding_over_half":
        padding, problems = (kh // 2 + 1, 0), [r"\bpadding\b"]
    elif mutation == "x_3d":
        x, problems = np.ones((c, h, w), np.float32), [r"\bx\b"]
    elif mutation == "x_string":
        x, problems = "pixels", [r"\bx\b"]
    elif mutation == "kernel_float":
        kernel, problems = 2.0, [r"\bkernel_size\b"]
    elif mutation == "padding_3_tuple":
        padding, problems = (0, 0, 0), [r"\bpadding\b"]
    if not problems:
        sh, sw = as_pair(kernel if stride is None else stride)
        ph, pw = as_pair(padding)
        if kh > h + 2 * ph or kw > w + 2 * pw:
            problems = [r"\bkernel_size\b|\bkernel\b|\binput\b"]
        else:
            out = (ref.pool_output_size(h, kh, ph, sh, ceil_mode), ref.pool_output_size(w, kw, pw, sw, ceil_mode))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    grad_shape = (n, c) + out if not problems else (1, 1, 1, 1)
    if mutation == "grad_out_shape":
        grad_shape = (n, c + 1) + grad_shape[2:]
    grad_out = data_array(draw, grad_shape, "grad_out")
    return x, kwargs, problems, grad_out, mutation


def pool_grad_problems(problems, mutation):
    return problems + [r"\bgrad_out\b"] if problems or mutation == "grad_out_shape" else problems


@given(pool_problem())
def test_max_pool2d_matches_the_reference_or_names_the_bad_parameter(problem):
    x, kwargs, problems, _, _ = problem

    def compare(result):
        y, idx = result
        want, want_idx = on_batch(ref.max_pool2d, x, kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                                        kwargs["ceil_mode"])
        ref.assert_close(y, want)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(pyconvx.max_pool2d(x, **kwargs), y)

    check(lambda: pyconvx.max_pool2d(x, return_indices=True, **kwargs), problems, compare)


@given(pool_problem(), st.booleans())
def test_max_pool2d_backward_matches_the_reference_or_names_the_bad_parameter(problem, from_indices):
    x, kwargs, problems, grad_out, mutation = problem
    problems = pool_grad_problems(problems, mutation)
    indices = None
    if not problems:
        _, indices = on_batch(ref.max_pool2d, x, kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                                    kwargs["ceil_mode"])

    def call():
        if from_indices and indices is not None:
            return pyconvx.max_pool2d_backward(grad_out, x.shape, indices=indices, **kwargs)
        return pyconvx.max_pool2d_backward(grad_out, x, **kwargs)

    def compare(gx):
        want = ref.max_pool2d_backward(grad_out, x.shape, indices) if x.shape[0] else np.zeros(x.shape)
        ref.assert_close(gx, want)

    check(call, problems, compare)


@given(pool_problem(), st.booleans())
def test_avg_pool2d_matches_the_reference_or_names_the_bad_parameter(problem, count_include_pad):
    x, kwargs, problems, _, _ = problem
    kh, kw = as_pair(kwargs["kernel_size"]) if not isinstance(kwargs["kernel_size"], float) else (1, 1)

    def compare(y):
        want = on_batch(ref.avg_pool2d, x, kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                        kwargs["ceil_mode"], count_include_pad)
        ref.assert_close(y, want, kh * kw)

    check(lambda: pyconvx.avg_pool2d(x, count_include_pad=count_include_pad, **kwargs), problems, compare)


@given(pool_problem(), st.booleans())
def test_avg_pool2d_backward_matches_the_reference_or_names_the_bad_parameter(problem, count_include_pad):
    x, kwargs, problems, grad_out, mutation = problem
    problems = pool_grad_problems(problems, mutation)
    if isinstance(x, str) or x.ndim != 4:
        problems.append(r"\bx_shape\b")
    shape = x if isinstance(x, str) else x.shape

    def compare(gx):
        want = ref.avg_pool2d_backward(grad_out, x.shape, kwargs["kernel_size"], kwargs["stride"],
                                       kwargs["padding"], kwargs["ceil_mode"], count_include_pad)
        ref.assert_close(gx, want, 16)

    check(lambda: pyconvx.avg_pool2d_backward(grad_out, shape, count_include_pad=count_include_pad, **kwargs),
          problems, compare)


@st.composite
def global_pool_problem(draw):
    n, c, h, w = draw(st.integers(0, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x = data_array(draw, (n, c, h, w), "x")
    grad = data_array(draw, (n, c, 1, 1), "grad_out")
    mutation = draw(st.sampled_from([None, None, None, "x_3d", "empty_plane", "grad_wrong", "x_shape_negative"]))
    return x, grad, mutation


@given(global_pool_problem())
def test_global_avg_pool2d_and_its_backward_match_the_reference_or_name_the_bad_parameter(problem):
    x, grad, mutation = problem
    shape = x.shape
    forward_problems, backward_problems = [], []
    if mutation == "x_3d":
        x, shape = np.ones(x.shape[1:], np.float32), x.shape[1:]
        forward_problems, backward_problems = [r"\bx\b"], [r"\bx_shape\b", r"\bgrad_out\b"]
    elif mutation == "empty_plane":
        x, shape = np.ones(x.shape[:2] + (0, x.shape[3]), np.float32), x.shape[:2] + (0, x.shape[3])
        # the backward's message calls its x_shape "x shape"
        forward_problems, backward_problems = [r"\bx\b"], [r"\bx_shape\b", r"\bgrad_out\b", r"\bx shape\b"]
    elif mutation == "grad_wrong":
        grad = np.ones(grad.shape[:3] + (2,), np.float32)
        backward_problems = [r"\bgrad_out\b"]
    elif mutation == "x_shape_negative":
        shape = shape[:2] + (-shape[2], shape[3])
        backward_problems = [r"\bx_shape\b"]
    check(lambda: pyconvx.global_avg_pool2d(x), forward_problems,
          lambda y: ref.assert_close(y, ref.global_avg_pool2d(x), x.shape[2] * x.shape[3]))
    check(lambda: pyconvx.global_avg_pool2d_backward(grad, shape), backward_problems,
          lambda gx: ref.assert_close(gx, ref.global_avg_pool2d_backward(grad, shape)))


# --------------------------------------------------------------------------------------------
# bilinear_sample, affine_sample, crop_windows
# --------------------------------------------------------------------------------------------

position = st.one_of(st.floats(-12, 12, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38, -1.0]))


@st.composite
def sample_problem(draw):
    n, c, h, w = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    p, q = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    x = data_array(draw, (n, c, h, w), "x")
    xs = np.array(draw(st.lists(position, min_size=n * p * q, max_size=n * p * q)), np.float32).reshape(n, p, q)
    ys = np.array(draw(st.lists(position, min_size=n * p * q, max_size=n * p * q)), np.float32).reshape(n, p, q)
    maps = np.array(draw(st.lists(st.floats(-4, 4), min_size=6 * n, max_size=6 * n))).reshape(n, 2, 3)
    mutation = draw(st.sampled_from([None, None, None, "empty_channels", "ys_other_shape", "maps_other_n",
                                     "out_size_negative"]))
    return x, xs, ys, maps, (p, q), draw(st.floats(-2, 2)), mutation


@given(sample_problem())
def test_bilinear_and_affine_sample_match_the_reference_or_name_the_bad_parameter(problem):
    x, xs, ys, maps, out_size, fill, mutation = problem
    sample_problems, affine_problems = [], []
    if mutation == "empty_channels":
        x = np.ones(x.shape[:1] + (0,) + x.shape[2:], np.float32)
        sample_problems = affine_problems = [r"\bx\b"]
    elif mutation == "ys_other_shape":
        ys = np.zeros(ys.shape[:2] + (ys.shape[2] + 1,), np.float32)
        sample_problems = [r"\bys\b"]
    elif mutation == "maps_other_n":
        maps = np.zeros((len(maps) + 1, 2, 3))
        affine_problems = [r"\bmaps\b"]
    elif mutation == "out_size_negative":
        out_size = (-out_size[0] - 1, out_size[1])
        affine_problems = [r"\bout_h\b"]
    check(lambda: pyconvx.bilinear_sample(x, xs, ys, fill), sample_problems,
          lambda y: ref.assert_close(y, ref.bilinear_sample(x, xs, ys, fill), 4))
    check(lambda: pyconvx.affine_sample(x, maps, out_size, fill), affine_problems,
          lambda y: ref.assert_close(y, ref.affine_sample(x, maps, out_size, fill), 4))


@st.composite
def crop_problem(draw):
    n, c, h, w = draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(st.integers(0, 6)), draw(st.integers(0, 6))
    size = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    offset = st.one_of(st.integers(-8, 8), st.sampled_from([2 ** 62, -2 ** 62, 2 ** 62 + 1, -2 ** 63]))
    tops = np.array(draw(st.lists(offset, min_size=n, max_size=n)), np.int64)
    lefts = np.array(draw(st.lists(offset, min_size=n, max_size=n)), np.int64)
    return data_array(draw, (n, c, h, w), "x"), tops, lefts, size, draw(st.floats(-2, 2))


@given(crop_problem())
def test_crop_windows_match_the_reference_or_name_the_bad_parameter(problem):
    x, tops, lefts, size, fill = problem
    offsets = {"tops": tops, "lefts": lefts}
    problems = [name for name, values in offsets.items() if any(abs(int(v)) > 2 ** 62 for v in values)]
    check(lambda: pyconvx.crop_windows(x, tops, lefts, size, fill), [rf"\b{name}\b" for name in problems],
          lambda y: np.testing.assert_array_equal(y, ref.crop_windows(x, tops, lefts, size, fill)))


# --------------------------------------------------------------------------------------------
# im2col, col2im, conv_output_size
# --------------------------------------------------------------------------------------------


@st.composite
def im2col_problem(draw):
    n, c, h, w = draw(st.integers(0, 2)), draw(small), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel, stride, dilation = pair_values(draw, 1, 4), pair_values(draw, 1, 3), pair_values(draw, 1, 2)
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    # (kernel_size 0: see test_im2col_kernel_size_zero_is_reported_as_kernel_size)
    mutation = draw(st.sampled_from([None, None, None, "stride_zero", "dilation_zero", "padding_negative",
                                     "x_3d", "cols_wrong"]))
    problems = []
    if mutation == "stride_zero":
        stride, problems = (1, 0), [r"\bstride\b"]
    elif mutation == "dilation_zero":
        dilation, problems = 0, [r"\bdilation\b"]
    elif mutation == "padding_negative":
        padding, problems = (0, -1), [r"\bpadding\b"]
    x = data_array(draw, (n, c, h, w), "x")
    if mutation == "x_3d":
        x, problems = x.reshape((n * c, h, w)), [r"\bx\b"]
    kh, kw = as_pair(kernel)
    dh, dw = as_pair(dilation)
    if not problems and (dh * (kh - 1) + 1 > h + 2 * padding[0] or dw * (kw - 1) + 1 > w + 2 * padding[1]):
        problems = [r"\bkernel\b"]
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    return x, kwargs, problems, mutation


@given(im2col_problem())
def test_im2col_and_col2im_match_the_reference_or_name_the_bad_parameter(problem):
    x, kwargs, problems, mutation = problem
    check(lambda: pyconvx.im2col(x, **kwargs), problems,
          lambda cols: ref.assert_close(cols, ref.im2col(x, **kwargs)))
    if mutation == "x_3d":
        return  # col2im takes a shape, not x
    if problems:
        cols, shape = np.ones((1, 1, 1), np.float32), x.shape
        problems = problems + [r"\bcols\b"]  # its right shape is unknown
    else:
        cols = ref.im2col(x, **kwargs).astype(np.float32)
        shape = x.shape
        if mutation == "cols_wrong":
            cols = cols[:, :, :-1] if cols.shape[2] else np.ones((1, 1, 1), np.float32)
            problems = [r"\bcols\b"]
    kh, kw = as_pair(kwargs["kernel_size"])
    check(lambda: pyconvx.col2im(cols, shape, **kwargs), problems,
          lambda got: ref.assert_close(got, ref.col2im(cols, shape, **kwargs), max(kh * kw, 1)))


@pytest.mark.parametrize("op", ["im2col", "col2im"])
def test_im2col_kernel_size_zero_is_reported_as_kernel_size(op):
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"\bkernel_size\b"):
        if op == "im2col":
            pyconvx.im2col(x, (0, 2))
        else:
            pyconvx.col2im(np.ones((1, 0, 12), np.float32), x.shape, (0, 2))


@given(st.integers(-3, 12), st.integers(-1, 6), st.integers(-1, 3), st.integers(-1, 3), st.integers(-1, 3))
def test_conv_output_size_agrees_with_conv2d_or_names_the_bad_parameter(n, f, padding, stride, dilation):
    problems = []
    if n < 0:
        problems.append(r"\bn\b")
    if f < 1:
        problems.append(r"\bf\b")
    if padding < 0:
        problems.append(r"\bpadding\b")
    if stride < 1:
        problems.append(r"\bstride\b")
    if dilation < 1:
        problems.append(r"\bdilation\b")
    if not problems and dilation * (f - 1) + 1 > n + 2 * padding:
        problems.append(r"\bkernel\b")

    def compare(size):
        assert size == (n + 2 * padding - dilation * (f - 1) - 1) // stride + 1
        if n >= 1:
            y = pyconvx.conv2d(np.ones((1, 1, n, 1), np.float32), np.ones((1, 1, f, 1), np.float32),
                               stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
            assert y.shape[2] == size

    check(lambda: pyconvx.conv_output_size(n, f, padding, stride, dilation), problems, compare)


# --------------------------------------------------------------------------------------------
# correlate2d, convolve2d, gemm
# --------------------------------------------------------------------------------------------


@given(st.data(), st.sampled_from(["valid", "same", "full", "wrap"]))
def test_correlate2d_and_convolve2d_match_scipy_or_name_the_bad_parameter(data, mode):
    signal = pytest.importorskip("scipy.signal")
    draw = data.draw
    image = data_array(draw, (draw(st.integers(0, 9)), draw(st.integers(1, 9))), "image")
    kernel = data_array(draw, (draw(st.integers(1, 5)), draw(st.integers(1, 5))), "kernel")
    if draw(st.booleans()):
        kernel = kernel.reshape(-1)  # 1-D
    problems = []
    if mode == "wrap":
        problems.append(r"\bmode\b")
    if image.size == 0:
        problems.append(r"\bimage\b")
    if kernel.ndim != 2:
        problems.append(r"\bkernel\b")
    (h, w), (kh, kw) = image.shape, kernel.shape if kernel.ndim == 2 else (1, 1)
    if not problems and mode == "valid" and not ((h >= kh and w >= kw) or (h <= kh and w <= kw)):
        problems.append(r"\bimage\b.*\bkernel\b|valid")
    for ours, theirs in ((pyconvx.correlate2d, signal.correlate2d), (pyconvx.convolve2d, signal.convolve2d)):
        check(lambda: ours(image, kernel, mode), problems,
              lambda y: ref.assert_close(y, theirs(image.astype(np.float64), kernel.astype(np.float64), mode),
                                         kernel.size))


@given(st.data())
def test_gemm_matches_the_reference_or_names_the_bad_parameter(data):
    draw = data.draw
    m, k, n = draw(st.integers(0, 40)), draw(st.integers(0, 70)), draw(st.integers(0, 40))
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    a = data_array(draw, (k, m) if trans_a else (m, k), "a")
    b = data_array(draw, (n, k) if trans_b else (k, n), "b")
    mutation = draw(st.sampled_from([None, None, None, "inner", "a_1d", "b_3d", "b_string"]))
    problems = []
    if mutation == "inner":
        b = np.ones((n, k + 1) if trans_b else (k + 1, n), np.float32)
        problems = [r"\ba\b", r"\bb\b", "inner"]
    elif mutation == "a_1d":
        a, problems = a.reshape(-1), [r"\ba\b"]
    elif mutation == "b_3d":
        b, problems = b[None], [r"\bb\b"]
    elif mutation == "b_string":
        b, problems = "matrix", [r"\bb\b"]
    check(lambda: pyconvx.gemm(a, b, trans_a=trans_a, trans_b=trans_b), problems,
          lambda y: ref.assert_close(y, ref.gemm(a, b, trans_a, trans_b), max(k, 1)))


# --------------------------------------------------------------------------------------------
# Sizes that overflow 64 bits
# --------------------------------------------------------------------------------------------

X8 = np.ones((2, 4, 8, 8), np.float32)
W3 = np.ones((6, 4, 3, 3), np.float32)
OVERFLOW_CASES = [
    ("conv2d padding", lambda: pyconvx.conv2d(X8, W3, padding=2**40), r"\bpadding\b"),
    ("conv2d padding 2**62", lambda: pyconvx.conv2d(X8, W3, padding=2**62), r"\bpadding\b"),
    ("conv2d one side", lambda: pyconvx.conv2d(X8, W3, padding=(0, 0, 0, 2**62)), r"\bpadding\b"),
    ("conv2d dilation", lambda: pyconvx.conv2d(X8, W3, dilation=2**62), r"\bdilation\b"),
    ("conv2d_backward padding",
     lambda: pyconvx.conv2d_backward(np.ones((2, 6, 6, 6), np.float32), X8, W3, padding=2**40), r"\bpadding\b"),
    ("conv2d_algorithm x_shape", lambda: pyconvx.conv2d_algorithm((2**40, 2**40, 8, 8), (1, 2**40, 3, 3)),
     r"\bx_shape\b"),
    ("im2col padding", lambda: pyconvx.im2col(X8, 3, padding=2**40), r"\bpadding\b"),
    ("col2im x_shape", lambda: pyconvx.col2im(np.ones((1, 1, 1), np.float32), (1, 1, 2**40, 2**40), 1),
     r"\bx_shape\b"),
    ("avg_pool2d_backward x_shape",
     lambda: pyconvx.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (2**40, 2**40, 1, 1), 1), r"\bx_shape\b"),
    ("global_avg_pool2d_backward x_shape",
     lambda: pyconvx.global_avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2**40, 2**40)),
     r"\bx_shape\b"),
]


@pytest.mark.parametrize("call,pattern", [c[1:] for c in OVERFLOW_CASES], ids=[c[0] for c in OVERFLOW_CASES])
def test_a_size_overflow_is_a_value_error_naming_the_parameter(call, pattern):
    # No crash and no attempt at an exabyte allocation: the size arithmetic is checked, and the
    # message says which parameter took it past 64 bits (it used to name neither op nor parameter).
    with pytest.raises(ValueError, match=r"64-bit arithmetic|larger than") as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)
