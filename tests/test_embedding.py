"""The kernels as a library: the C API's status codes and messages (through ctypes), the version's
one source, and the C and C++ examples built with CMake against the package's library and
against a CMake build and install of the sources."""
import ctypes
import os
import re
import shutil
import subprocess
import sysconfig
import threading

import numpy as np
import pytest

import pyconvx
from conftest import run_child

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


class Shape4(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in "nchw"]


class ConvParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left",
                                                    "pad_right", "dilation_h", "dilation_w", "groups")]


class PoolParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top",
                                                    "pad_bottom", "pad_left", "pad_right")]
    _fields_ += [("ceil_mode", ctypes.c_int), ("count_include_pad", ctypes.c_int)]


FLOATS = ctypes.POINTER(ctypes.c_float)
OK, INVALID_ARGUMENT = 0, 1


@pytest.fixture(scope="module")
def capi():
    lib = ctypes.CDLL(pyconvx.get_library_path())
    lib.pyconvx_last_error.restype = ctypes.c_char_p
    lib.pyconvx_version.restype = ctypes.c_char_p
    lib.pyconvx_active_isa.restype = ctypes.c_char_p
    lib.pyconvx_conv2d_default_params.restype = ConvParams
    lib.pyconvx_pool2d_default_params.restype = PoolParams
    lib.pyconvx_pool2d_default_params.argtypes = [ctypes.c_int64, ctypes.c_int64]
    lib.pyconvx_set_num_threads.argtypes = [ctypes.c_int64]
    lib.pyconvx_conv2d_forward.argtypes = [Shape4, FLOATS, Shape4, FLOATS, FLOATS, ctypes.POINTER(ConvParams),
                                           ctypes.c_int, ctypes.c_char_p, FLOATS]
    lib.pyconvx_conv2d_output_shape.argtypes = [Shape4, Shape4, ctypes.POINTER(ConvParams), ctypes.POINTER(Shape4)]
    lib.pyconvx_max_pool2d_forward.argtypes = [Shape4, FLOATS, ctypes.POINTER(PoolParams), FLOATS,
                                               ctypes.POINTER(ctypes.c_int64)]
    lib.pyconvx_sgemm.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_int64] * 3 + [
        FLOATS, ctypes.c_int64, FLOATS, ctypes.c_int64, FLOATS, ctypes.c_int64, ctypes.c_int]
    return lib


def pointer(array):
    return None if array is None else array.ctypes.data_as(FLOATS)


def shape4(array_or_shape):
    return Shape4(*(array_or_shape.shape if hasattr(array_or_shape, "shape") else array_or_shape))


def conv_call(capi, x, w, bias=None, params=None, activation=0, algorithm=None, y=None):
    """Status of pyconvx_conv2d_forward and the output it wrote."""
    params = params or capi.pyconvx_conv2d_default_params()
    if y is None:
        shape = Shape4()
        capi.pyconvx_conv2d_output_shape(shape4(x), shape4(w), ctypes.byref(params), ctypes.byref(shape))
        y = np.full((shape.n, shape.c, shape.h, shape.w), np.nan, np.float32)
    status = capi.pyconvx_conv2d_forward(shape4(x), pointer(x), shape4(w), pointer(w), pointer(bias),
                                         ctypes.byref(params), activation, algorithm, pointer(y))
    return status, y


def last_error(capi):
    return capi.pyconvx_last_error().decode()


def test_version_has_one_source(capi):
    with open(os.path.join(pyconvx.get_include(), "pyconvx", "version.hpp")) as header:
        parts = dict(re.findall(r"#define PYCONVX_VERSION_(MAJOR|MINOR|PATCH) (\d+)", header.read()))
    assert pyconvx.__version__ == f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"
    assert capi.pyconvx_version().decode() == pyconvx.__version__


def test_c_api_conv_matches_the_python_api(capi):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 9), dtype=np.float32)
    w = rng.standard_normal((6, 4, 3, 3), dtype=np.float32)
    b = rng.standard_normal(6, dtype=np.float32)
    params = capi.pyconvx_conv2d_default_params()
    params.stride_h = params.stride_w = 2
    params.pad_top = params.pad_bottom = params.pad_left = params.pad_right = 1
    status, y = conv_call(capi, x, w, b, params, activation=1)
    assert status == OK, last_error(capi)
    expected = pyconvx.conv2d(x, w, b, stride=2, padding=1, activation="relu")
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert capi.pyconvx_active_isa().decode() == pyconvx.cpu_info()["active"]


@pytest.mark.parametrize("case, fragment", [
    ("channels", "x has C=3 channels"),
    ("groups", "groups=2 must divide"),
    ("null_x", "x is a null pointer"),
    ("null_y", "y is a null pointer"),
    ("activation", "activation=7"),
    ("algorithm", "algorithm='fastest'"),
    ("forced_algorithm", "algorithm='winograd' cannot compute"),
    ("negative_dim", "x has a negative dimension, got x shape (1, 4, -5, 5)"),
    ("kernel_larger", "larger than the padded input"),
])
def test_c_api_conv_errors_are_status_codes_with_messages(capi, case, fragment):
    x = np.ones((1, 4, 5, 5), np.float32)
    w = np.ones((2, 4, 3, 3), np.float32)
    params = capi.pyconvx_conv2d_default_params()
    y = np.full((1, 2, 3, 3), 7.0, np.float32)
    kwargs = {"params": params, "y": y}
    if case == "channels":
        x = np.ones((1, 3, 5, 5), np.float32)
    elif case == "groups":
        params.groups = 2
        w = np.ones((2, 1, 3, 3), np.float32)
        x = np.ones((1, 3, 5, 5), np.float32)
    elif case == "activation":
        kwargs["activation"] = 7
    elif case == "algorithm":
        kwargs["algorithm"] = b"fastest"
    elif case == "forced_algorithm":
        params.stride_h = 2
        kwargs["algorithm"] = b"winograd"
    elif case == "kernel_larger":
        w = np.ones((2, 4, 7, 7), np.float32)
    if case == "null_x":
        status = capi.pyconvx_conv2d_forward(shape4(x), None, shape4(w), pointer(w), None, ctypes.byref(params), 0,
                                             None, pointer(y))
    elif case == "null_y":
        status = capi.pyconvx_conv2d_forward(shape4(x), pointer(x), shape4(w), pointer(w), None, ctypes.byref(params),
                                             0, None, None)
    elif case == "negative_dim":
        status = capi.pyconvx_conv2d_forward(Shape4(1, 4, -5, 5), pointer(x), shape4(w), pointer(w), None,
                                             ctypes.byref(params), 0, None, pointer(y))
    else:
        status, _ = conv_call(capi, x, w, **kwargs)
    assert status == INVALID_ARGUMENT
    assert fragment in last_error(capi)
    assert np.all(y == 7.0), "a rejected call must not write its output"


def test_c_api_other_errors(capi):
    assert capi.pyconvx_set_num_threads(0) == INVALID_ARGUMENT
    assert "n" in last_error(capi) and "0" in last_error(capi)
    x = np.ones((1, 1, 4, 4), np.float32)
    y = np.empty((1, 1, 2, 2), np.float32)
    assert capi.pyconvx_max_pool2d_forward(shape4(x), pointer(x), None, pointer(y), None) == INVALID_ARGUMENT
    assert "params is a null pointer" in last_error(capi)
    pool = capi.pyconvx_pool2d_default_params(2, 2)
    pool.pad_top = 2
    assert capi.pyconvx_max_pool2d_forward(shape4(x), pointer(x), ctypes.byref(pool), pointer(y),
                                           None) == INVALID_ARGUMENT
    assert "padding must be at most half the kernel size" in last_error(capi)
    a = np.ones((2, 2), np.float32)
    assert capi.pyconvx_sgemm(0, 0, -1, 2, 2, pointer(a), 2, pointer(a), 2, pointer(a), 2, 0) == INVALID_ARGUMENT
    assert "m=-1" in last_error(capi)
    assert capi.pyconvx_sgemm(0, 0, 2, 2, 2, None, 2, pointer(a), 2, pointer(a), 2, 0) == INVALID_ARGUMENT
    assert "a is a null pointer" in last_error(capi)


def test_c_api_success_keeps_the_last_error_and_messages_are_per_thread(capi):
    x = np.ones((1, 3, 5, 5), np.float32)
    w = np.ones((2, 4, 3, 3), np.float32)
    status, _ = conv_call(capi, x, w, y=np.empty((1, 2, 3, 3), np.float32))
    assert status == INVALID_ARGUMENT
    message = last_error(capi)
    assert conv_call(capi, np.ones((1, 4, 5, 5), np.float32), w)[0] == OK
    assert last_error(capi) == message
    seen = []
    thread = threading.Thread(target=lambda: seen.append(last_error(capi)))
    thread.start()
    thread.join()
    assert seen == [""]


# ----- the examples, built with CMake -----

def pattern(count, multiplier, modulus):
    """The examples' input pattern, computed in float32 as they do."""
    i = np.arange(count, dtype=np.int64)
    return ((i * multiplier) % modulus).astype(np.float32) / np.float32(modulus / 2.0) - np.float32(1)


def expected_example_output():
    x = pattern(2 * 3 * 16 * 16, 37, 101).reshape(2, 3, 16, 16)
    w = pattern(8 * 3 * 3 * 3, 17, 23).reshape(8, 3, 3, 3)
    bias = np.float32(0.1) * np.arange(8, dtype=np.float32) - np.float32(0.3)
    z = pyconvx.max_pool2d(pyconvx.conv2d(x, w, bias, padding=1, activation="relu"), 2).astype(np.float64)
    return z.shape, z.sum(), (z * z).sum()


def require_cmake():
    if not os.path.isdir(EXAMPLES):
        pytest.skip("the examples are not next to the tests (installed package)")
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (the test extra installs it)")


def build_tool(command):
    """Runs a compiler or cmake without a preloaded sanitizer runtime (under .ci/sanitize the
    tools are not the code under test; the programs they build are)."""
    env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
    subprocess.run(command, check=True, capture_output=True, env=env)


def build_and_run(source_dir, build_dir, *cmake_args):
    build_tool(["cmake", "-S", source_dir, "-B", build_dir, *cmake_args])
    build_tool(["cmake", "--build", build_dir])
    program = os.path.join(build_dir, os.path.basename(source_dir))
    return subprocess.run([program], check=True, capture_output=True, text=True).stdout


def check_example_output(out):
    shape, total, squares = expected_example_output()
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines["pyconvx"].startswith(pyconvx.__version__)
    assert tuple(int(v) for v in lines["shape"].split()) == shape
    assert float(lines["sum"]) == pytest.approx(total, rel=1e-5)
    assert float(lines["squares"]) == pytest.approx(squares, rel=1e-5)
    assert "groups=2 must divide" in lines["error"]


@pytest.mark.parametrize("example", ["embed_cpp", "embed_c"])
def test_example_builds_against_the_package_and_matches_python(tmp_path, example):
    require_cmake()
    out = build_and_run(os.path.join(EXAMPLES, example), str(tmp_path / "build"),
                        f"-Dpyconvx_DIR={pyconvx.get_cmake_dir()}")
    check_example_output(out)
    if example == "embed_c":
        assert "error 1 " in out  # PYCONVX_INVALID_ARGUMENT


def resnet_pattern(count, salt, scale, offset=0.0):
    """examples/embed_resnet/main.cpp's weights and images, value for value."""
    i = np.arange(count, dtype=np.int64)
    return (((i * 7919 + salt * 104729) % 1000 / 1000.0 - 0.5) * scale).astype(np.float32) + np.float32(offset)


def embedded_resnet():
    """The network of examples/embed_resnet in pyconvx layers, with the example's weights (drawn
    in the order the example draws them: each convolution, then its batch normalisation's gamma,
    beta, mean and variance; the blocks' main path before the shortcut; the head)."""
    from pyconvx import layers

    model = pyconvx.Sequential([
        layers.Conv2D(16, 3, padding=1, use_bias=False, name="stem"), layers.BatchNormalization(name="stem_bn"),
        layers.ReLU(), layers.ResidualBlock(16, name="block1"), layers.ResidualBlock(32, strides=2, name="block2"),
        layers.GlobalAveragePooling2D(), layers.Dense(10, name="head")], input_shape=(3, 32, 32))
    salt = iter(range(1, 1000))

    def conv_bn(conv, bn):
        k = conv.params["kernel"]
        conv.set_weights([resnet_pattern(k.size, next(salt), 2.0 / np.sqrt(k[0].size)).reshape(k.shape)])
        c = k.shape[0]
        bn.set_weights([resnet_pattern(c, next(salt), 1.0, 1.0), resnet_pattern(c, next(salt), 0.2),
                        resnet_pattern(c, next(salt), 0.2), resnet_pattern(c, next(salt), 1.0, 1.0)])

    conv_bn(model.get_layer("stem"), model.get_layer("stem_bn"))
    for block in ("block1", "block2"):
        sub = {layer.name: layer for layer in model.get_layer(block).sublayers}
        pairs = [("conv1", "bn1"), ("conv2", "bn2")] + [("downsample.0", "downsample.1")] * ("downsample.0" in sub)
        for conv, bn in pairs:
            conv_bn(sub[conv], sub[bn])
    model.get_layer("head").set_weights([resnet_pattern(320, next(salt), 2.0).reshape(32, 10),
                                         resnet_pattern(10, next(salt), 0.02)])
    return model, resnet_pattern(3 * 3 * 32 * 32, 0, 2.0).reshape(3, 3, 32, 32)


def test_a_whole_resnet_runs_from_cpp_as_it_does_in_python(tmp_path):
    require_cmake()
    out = build_and_run(os.path.join(EXAMPLES, "embed_resnet"), str(tmp_path / "build"),
                        f"-Dpyconvx_DIR={pyconvx.get_cmake_dir()}")
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    model, images = embedded_resnet()
    want = model.forward(images, training=False)
    got = np.array([[float(v) for v in lines[f"logits{n}"].split()] for n in range(3)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert not np.allclose(got[0], got[1], rtol=1e-3)  # the images differ, and so do their logits
    # One step a convolution (batch norm, ReLU and the residual additions fused in), the pooling
    # and the head.
    assert int(lines["steps"]) == 8


def test_cmake_build_installs_a_package_the_examples_link_statically_and_dynamically(tmp_path):
    require_cmake()
    build, prefix = str(tmp_path / "build"), str(tmp_path / "prefix")
    build_tool(["cmake", "-S", ROOT, "-B", build, f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    build_tool(["cmake", "--build", build, "-j", str(os.cpu_count() or 1)])
    build_tool(["cmake", "--install", build])
    for example, args in [("embed_cpp", ["-DPYCONVX_STATIC=ON"]), ("embed_cpp", []), ("embed_c", [])]:
        out = build_and_run(os.path.join(EXAMPLES, example), str(tmp_path / f"{example}{len(args)}"),
                            f"-DCMAKE_PREFIX_PATH={prefix}", *args)
        check_example_output(out)


def run_cpp_test_program(tmp_path, name):
    """Builds tests/cpp/<name>.cpp against the package's headers and library, runs it, and
    returns its output lines (it must exit with 0)."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    source = os.path.join(ROOT, "tests", "cpp", f"{name}.cpp")
    if not os.path.exists(source):
        pytest.skip("not running from a source checkout")
    program = str(tmp_path / name)
    library_dir = os.path.dirname(pyconvx.get_library_path())
    build_tool([compiler, "-std=c++17", "-O1", source, "-I", pyconvx.get_include(), "-L", library_dir,
                f"-Wl,-rpath,{library_dir}", "-lpyconvx", "-o", program])
    result = subprocess.run([program], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_cpp_api_refuses_tampered_problems_and_null_pointers(tmp_path):
    lines = run_cpp_test_program(tmp_path, "tampered_problems")
    assert "does not follow from its shapes" in lines[0] and "(8, 4)" in lines[0]
    assert "does not follow from its shapes" in lines[1] and "does not follow" in lines[2]
    assert "weight is a null pointer but must hold 54 values" in lines[3]
    assert "grad_y is a null pointer" in lines[4]
    assert "crop_windows: x has a negative dimension, got x shape (1, 2, -6, 6)" in lines[5]
    assert "affine_matrices: n must be >= 0, got n=-1" in lines[6]
    assert "affine_pixel_maps: matrices is a null pointer" in lines[7]


def test_c_api_refuses_misaligned_pointers(capi):
    buffer = np.zeros(4 * 5 * 5 + 1, np.float32)
    misaligned = (ctypes.c_char * 4).from_buffer(buffer, 1)  # one byte into the first float
    w = np.ones((2, 4, 3, 3), np.float32)
    y = np.full((1, 2, 3, 3), 7.0, np.float32)
    params = capi.pyconvx_conv2d_default_params()
    status = capi.pyconvx_conv2d_forward(Shape4(1, 4, 5, 5), ctypes.cast(misaligned, FLOATS), shape4(w), pointer(w),
                                         None, ctypes.byref(params), 0, None, pointer(y))
    assert status == INVALID_ARGUMENT
    assert "conv2d: x must be aligned to 4 bytes" in last_error(capi)
    assert np.all(y == 7.0)


def test_cpp_callers_bring_their_own_workspace_within_the_queried_size(tmp_path):
    lines = run_cpp_test_program(tmp_path, "own_workspace")
    algorithms = [line for line in lines if not line.startswith("limit:")]
    assert {line.split(":")[0] for line in algorithms} >= {"implicit_gemm", "direct", "winograd", "broadcast"}
    assert all(line.endswith(", ok") for line in algorithms), algorithms
    assert "limit: pyconvx: the kernels' scratch memory would pass its limit" in lines[-1]
    assert "limit 1024 bytes" in lines[-1]


def test_c_api_workspace_size_and_limit(capi):
    capi.pyconvx_conv2d_workspace_size.argtypes = [Shape4, Shape4, ctypes.POINTER(ConvParams), ctypes.c_char_p,
                                                   ctypes.POINTER(ctypes.c_int64)]
    capi.pyconvx_set_workspace_limit.argtypes = [ctypes.c_int64]
    params = capi.pyconvx_conv2d_default_params()
    params.pad_top = params.pad_bottom = params.pad_left = params.pad_right = 1
    size = ctypes.c_int64(-1)
    assert capi.pyconvx_conv2d_workspace_size(Shape4(2, 16, 12, 12), Shape4(16, 16, 3, 3), ctypes.byref(params),
                                              b"direct", ctypes.byref(size)) == OK
    assert size.value == pyconvx.conv2d_workspace_size((2, 16, 12, 12), (16, 16, 3, 3), padding=1,
                                                       algorithm="direct") > 0
    x, w = np.ones((2, 16, 12, 12), np.float32), np.ones((16, 16, 3, 3), np.float32)
    limit = pyconvx.get_workspace_limit()
    pyconvx.reset_workspace_peak()
    assert capi.pyconvx_set_workspace_limit(64) == OK
    try:
        status, _ = conv_call(capi, x, w, params=params, algorithm=b"direct")
    finally:
        pyconvx.set_workspace_limit(limit)
    assert status == 2  # PYCONVX_OUT_OF_MEMORY
    assert "limit 64 bytes" in last_error(capi)
    assert capi.pyconvx_set_workspace_limit(-1) == INVALID_ARGUMENT and "bytes=-1" in last_error(capi)


def test_c_api_denormal_setting_is_the_python_one(capi):
    capi.pyconvx_set_flush_denormals.argtypes = [ctypes.c_int]
    before = pyconvx.get_flush_denormals()
    try:
        capi.pyconvx_set_flush_denormals(0)
        assert capi.pyconvx_get_flush_denormals() == 0 and not pyconvx.get_flush_denormals()
        capi.pyconvx_set_flush_denormals(7)
        assert capi.pyconvx_get_flush_denormals() == 1 and pyconvx.get_flush_denormals()
    finally:
        pyconvx.set_flush_denormals(before)


def test_a_pybind11_extension_builds_on_the_shipped_headers_and_shares_the_library(tmp_path):
    pybind11 = pytest.importorskip("pybind11")
    compiler = shutil.which("g++") or shutil.which("c++")
    source = os.path.join(ROOT, "tests", "cpp", "pybind_extension.cpp")
    if compiler is None or not os.path.exists(source):
        pytest.skip("needs a C++ compiler and a source checkout")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    library_dir = os.path.dirname(pyconvx.get_library_path())
    build_tool([compiler, "-std=c++17", "-O1", "-shared", "-fPIC", source, "-I", pyconvx.get_include(), "-I",
                pybind11.get_include(), "-I", sysconfig.get_paths()["include"], "-L", library_dir,
                f"-Wl,-rpath,{library_dir}", "-lpyconvx", "-o", str(tmp_path / f"pybind_extension{suffix}")])
    script = """
import sys, numpy as np, pyconvx
sys.path.insert(0, sys.argv[1])
import pybind_extension as ext
rng = np.random.default_rng(0)
x, w = rng.standard_normal((2, 3, 12, 12), dtype=np.float32), rng.standard_normal((5, 3, 3, 3), dtype=np.float32)
expected = pyconvx.max_pool2d(pyconvx.conv2d(x, w, padding=1, activation="relu"), 2)
print(np.array_equal(ext.conv_relu_pool(x, w), expected))
pyconvx.set_num_threads(1)
print(ext.get_num_threads())
pyconvx.reset_workspace_peak()
ext.conv_relu_pool(x, w)  # its scratch shows in the package's own accounting: one library
print(pyconvx.workspace_usage()["peak_bytes"] > 0, ext.live_workspace_bytes() == pyconvx.workspace_usage()["live_bytes"])
"""
    result = run_child(script, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "True", "True"]
