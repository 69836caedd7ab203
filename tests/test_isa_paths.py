"""Every instruction-set path this CPU supports gives the same answers.

Each path runs in its own process (PYCONVX_ISA is read once at start-up), computes a fixed set
of operations on fixed seeded inputs and saves them to an .npz; the paths are then compared with
each other and with the float64 reference.
"""

import json
import os
import platform
import sys
import textwrap

import numpy as np
import pytest

import pyconvx
from conftest import run_child
import reference as ref

ISAS = ["avx512", "avx2", "generic"]

# Shapes chosen to cross the GEMM blocking boundaries and exercise remainders.
CONV = ref.ConvCase("isa", 2, 33, 13, 11, 17, 3, 3, stride=1, padding=1, groups=1)
CONV_GROUPED = ref.ConvCase("isa_grouped", 1, 6, 9, 8, 9, 3, 2, stride=2, padding=(1, 0), dilation=(1, 2), groups=3)
CONV_1X1 = ref.ConvCase("isa_1x1", 1, 20, 7, 9, 13, 1, 1)
# A strided 1x1 layer (a ResNet projection): the implicit GEMM.
CONV_1X1_STRIDED = ref.ConvCase("isa_1x1_s2", 2, 20, 9, 11, 14, 1, 1, stride=2)
# Enough channels and tiles for the heuristic to pick Winograd (asserted below).
CONV_WINOGRAD = ref.ConvCase("isa_winograd", 3, 65, 13, 11, 70, 3, 3, padding=1)
CONV_WINOGRAD_5X5 = ref.ConvCase("isa_winograd_5x5", 2, 33, 12, 13, 40, 5, 5, padding=2)
# Few channels, strided: input pixels broadcast against filters (40 fill a tile on every ISA).
CONV_BROADCAST = ref.ConvCase("isa_broadcast", 2, 3, 19, 17, 40, 5, 5, stride=2, padding=(2, 1))
# Depthwise with two filters per channel, rows wider than one run of 16 outputs.
CONV_DEPTHWISE = ref.ConvCase("isa_depthwise", 2, 12, 11, 19, 24, 3, 3, padding=1, groups=12)
# Stride 2 (the padded plane split into column phases), a 5x5 filter, rows of two vectors on AVX2.
CONV_DEPTHWISE_S2 = ref.ConvCase("isa_depthwise_s2", 2, 7, 17, 27, 7, 5, 5, stride=2, padding=(2, 1, 2, 1), groups=7)
GEMM_MKN = (129, 557, 65)  # k crosses the AVX2 and the AVX-512 KC slices

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyconvx

    out_path, spec = sys.argv[1], json.loads(sys.argv[2])
    GAP_PLANES = [tuple(p) for p in spec["gap_planes"]]
    rng = np.random.default_rng(20240611)
    info = pyconvx.cpu_info()
    res = {"active": np.array(info["active"]), "forced": np.array(str(info["forced"])),
           "split_512bit_fma": np.array(info["split_512bit_fma"])}
    for name, c in spec["convs"].items():
        c["kw"] = {key: tuple(v) if isinstance(v, list) else v for key, v in c["kw"].items()}
        x = rng.standard_normal(c["x"]).astype(np.float32)
        w = rng.standard_normal(c["w"]).astype(np.float32)
        b = rng.standard_normal(c["w"][0]).astype(np.float32)
        y = pyconvx.conv2d(x, w, b, **c["kw"])
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx, gw, gb = pyconvx.conv2d_backward(g, x, w, **c["kw"])
        res.update({name + "_x": x, name + "_w": w, name + "_b": b, name + "_y": y, name + "_g": g,
                    name + "_relu": pyconvx.conv2d(x, w, b, activation="relu", **c["kw"]),
                    name + "_gx": gx, name + "_gw": gw, name + "_gb": gb})
    for name, c in spec["forced"].items():  # one algorithm forced on a shape, forward only
        kw = {key: tuple(v) if isinstance(v, list) else v for key, v in c["kw"].items()}
        x = rng.standard_normal(c["x"]).astype(np.float32)
        w = rng.standard_normal(c["w"]).astype(np.float32)
        b = rng.standard_normal(c["w"][0]).astype(np.float32)
        res.update({name + "_x": x, name + "_w": w, name + "_b": b,
                    name + "_y": pyconvx.conv2d(x, w, b, activation="relu", algorithm=c["algorithm"], **kw)})
    m, k, n = spec["gemm"]
    a = rng.standard_normal((m, k)).astype(np.float32)
    bt = rng.standard_normal((n, k)).astype(np.float32)
    res.update(gemm_a=a, gemm_bt=bt, gemm=pyconvx.gemm(a, bt, trans_b=True),
               gemm_tn=pyconvx.gemm(a.T.copy(), bt.T.copy(), trans_a=True))
    px = rng.standard_normal((2, 5, 11, 10)).astype(np.float32)
    mp, mi = pyconvx.max_pool2d(px, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    pg = rng.standard_normal(mp.shape).astype(np.float32)
    res.update(pool_x=px, pool_g=pg, max=mp, max_idx=mi,
               max_gx=pyconvx.max_pool2d_backward(pg, px, 3, stride=2, padding=1, ceil_mode=True),
               avg=pyconvx.avg_pool2d(px, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
               avg_gx=pyconvx.avg_pool2d_backward(pg, px.shape, 3, stride=2, padding=1, ceil_mode=True,
                                                  count_include_pad=False),
               gap=pyconvx.global_avg_pool2d(px))
    for h, w in GAP_PLANES:  # global pooling's vector loops at each width, and their remainders
        gx = rng.standard_normal((3, 7, h, w)).astype(np.float32)  # 21 planes: whole groups and a rest
        res.update({f"gap_x_{h}x{w}": gx, f"gap_{h}x{w}": pyconvx.global_avg_pool2d(gx)})
    from pyconvx import _core
    ax = (rng.standard_normal(1061) * 10).astype(np.float32)  # whole vectors of every width and a tail
    res["act_x"] = ax
    for name in _core.activation_names():
        res["act_" + name] = _core.pointwise(ax, None, name)
    for name, kwargs in spec["networks"].items():  # whole networks through the inference plan
        model = getattr(pyconvx.models, kwargs.pop("model"))(seed=0, **kwargs)
        nx = rng.standard_normal((3,) + tuple(kwargs["input_shape"])).astype(np.float32)
        res.update({name + "_x": nx, name + "_plan": model.predict(nx, batch_size=2)})
    np.savez(out_path, **res)
    """
)


def conv_spec(case):
    return {"x": list(case.x_shape), "w": list(case.w_shape), "kw": case.kwargs()}


CASES = {"conv": CONV, "grouped": CONV_GROUPED, "one": CONV_1X1, "one_s2": CONV_1X1_STRIDED, "winograd": CONV_WINOGRAD,
         "winograd_5x5": CONV_WINOGRAD_5X5, "broadcast": CONV_BROADCAST, "depthwise": CONV_DEPTHWISE,
         "depthwise_s2": CONV_DEPTHWISE_S2}
# Plane sizes (H, W) for global pooling: under 4, 8 and 16 floats (no full vector), 16 and 32
# (whole vectors, summed in groups of planes), 7x7 (a ResNet head: vectors and a remainder), 9x9,
# 5x19 (95 floats: on AVX-512 near the longest plane summed in groups, on AVX2 summed alone) and
# 13x13 (rounds of four 8- and 16-float vectors, then single ones, then a remainder).
GAP_PLANES = [(1, 3), (1, 7), (3, 5), (4, 4), (4, 8), (7, 7), (9, 9), (5, 19), (13, 13)]
# Networks through the inference plan: fused batch normalisation, residuals and concatenated
# branches on every path.
NETWORKS = {"resnet18": dict(model="resnet18", num_classes=10, input_shape=(3, 32, 32)),
            "googlenet": dict(model="googlenet", num_classes=10, input_shape=(3, 48, 48))}
# Algorithms the heuristic picks for none of the cases above, forced: the GEMM with pixels as rows
# (3x3 with a batch whose images' pixels fill no whole tile; 1x1 read in place) and the broadcast
# kernel's remainder strips (rows of 7, 11 and 13 pixels: one to four pixels past whole tiles).
FORCED = {"pixel_gemm_3x3": (ref.ConvCase("isa_pixel_gemm", 3, 20, 7, 9, 13, 3, 3, padding=1), "pixel_gemm"),
          "pixel_gemm_1x1": (ref.ConvCase("isa_pixel_gemm_1x1", 2, 20, 7, 7, 24, 1, 1), "pixel_gemm"),
          "broadcast_rows": (ref.ConvCase("isa_broadcast_rows", 2, 16, 9, 13, 40, 3, 3, padding=(1, 0)), "broadcast"),
          "broadcast_rows_7": (ref.ConvCase("isa_broadcast_rows_7", 1, 64, 7, 7, 32, 3, 3, padding=1), "broadcast")}


def forced_spec(case, algorithm):
    return dict(conv_spec(case), algorithm=algorithm)


SPEC = {"convs": {name: conv_spec(case) for name, case in CASES.items()}, "gemm": list(GEMM_MKN),
        "forced": {name: forced_spec(*entry) for name, entry in FORCED.items()},
        "gap_planes": GAP_PLANES, "networks": NETWORKS}


def supported():
    return list(pyconvx.cpu_info()["supported"])


@pytest.fixture(scope="module")
def isa_results(tmp_path_factory):
    out = {}
    for isa in supported():
        path = tmp_path_factory.mktemp(isa) / "out.npz"
        env = dict(os.environ, PYCONVX_ISA=isa)
        proc = run_child(CHILD, str(path), json.dumps(SPEC), env=env)
        assert proc.returncode == 0, f"{isa} child failed:\n{proc.stderr[-3000:]}"
        with np.load(path) as data:
            out[isa] = {k: data[k] for k in data.files}
    return out


def test_cpu_info_shape():
    info = pyconvx.cpu_info()
    assert {"active", "supported", "forced", "split_512bit_fma", "num_threads"} <= set(info)
    assert info["active"] in ISAS
    assert info["active"] in info["supported"]
    assert "generic" in info["supported"]
    # "best first": the order is a subsequence of avx512, avx2, generic.
    assert info["supported"] == [isa for isa in ISAS if isa in info["supported"]]
    assert info["forced"] == (os.environ.get("PYCONVX_ISA") or None)
    if info["forced"] is None:
        assert info["active"] == info["supported"][0]
    assert info["num_threads"] == pyconvx.get_num_threads()


def test_cpu_info_names_the_processor_and_its_caches():
    info = pyconvx.cpu_info()
    assert isinstance(info["model"], str) and info["model"] and info["model"] == info["model"].strip()
    if platform.machine() in ("x86_64", "AMD64"):  # the numbers the brand string may leave out
        assert " family " in info["model"] and " model " in info["model"] and " stepping " in info["model"]
    caches = info["cache_bytes"]
    assert set(caches) == {"l1d", "l2", "l3"} and all(isinstance(v, int) and v >= 0 for v in caches.values())
    if sys.platform.startswith("linux") and os.path.exists("/sys/devices/system/cpu/cpu0/cache/index0/size"):
        assert 4096 <= caches["l1d"] <= caches["l2"], caches


def test_every_supported_path_runs_as_forced(isa_results):
    assert set(isa_results) == set(supported())
    for isa, res in isa_results.items():
        assert str(res["forced"]) == isa
        assert str(res["active"]) == isa
        if isa != "avx512":  # a property of the 512-bit path only
            assert not bool(res["split_512bit_fma"])


FALLBACK_CHILD = textwrap.dedent(
    """
    import warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import pyconvx
    info = pyconvx.cpu_info()
    y = pyconvx.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), padding=1)
    print(info["active"], info["forced"], float(y[0, 0, 2, 2]), float(y[0, 1, 0, 0]))
    """
)


@pytest.mark.parametrize("value", [isa for isa in ISAS if isa not in supported()] + ["sse9"])
def test_forcing_an_unavailable_path_falls_back_without_crashing(value):
    """An ISA this CPU cannot run (or a misspelt one) must not crash with SIGILL: the process
    either falls back to a supported path or refuses with a Python exception."""
    env = dict(os.environ, PYCONVX_ISA=value)
    proc = run_child(FALLBACK_CHILD, env=env, timeout=120)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    if proc.returncode == 0:
        active, forced, centre, corner = proc.stdout.split()
        assert active in supported() and forced == value
        assert float(centre) == 27.0 and float(corner) == 12.0
    else:
        assert "Error" in proc.stderr


def test_the_cases_cover_every_algorithm_the_heuristic_picks():
    chosen = {pyconvx.conv2d_algorithm(c.x_shape, c.w_shape, **c.kwargs()) for c in CASES.values()}
    assert chosen == {"broadcast", "depthwise", "direct", "implicit_gemm", "pointwise", "winograd"}


@pytest.mark.parametrize("name", list(CASES))
def test_conv_paths_agree_with_each_other_and_the_reference(name, isa_results):
    case = CASES[name]
    base = next(iter(isa_results.values()))
    x, w, b, g = (base[f"{name}_{s}"] for s in ("x", "w", "b", "g"))
    want_y = ref.conv2d(x, w, b, **case.kwargs())
    want_gx, want_gw, want_gb = ref.conv2d_backward(g, x, w, **case.kwargs())
    for isa, res in isa_results.items():
        # Inputs are generated identically in every process.
        np.testing.assert_array_equal(res[f"{name}_x"], x)
        ref.assert_close(res[f"{name}_y"], want_y, case.fwd_reduction(), f"{isa} {name} y")
        ref.assert_close(res[f"{name}_relu"], np.maximum(want_y, 0), case.fwd_reduction(), f"{isa} relu")
        ref.assert_close(res[f"{name}_gx"], want_gx, case.grad_x_reduction(), f"{isa} {name} gx")
        ref.assert_close(res[f"{name}_gw"], want_gw, case.grad_w_reduction(), f"{isa} {name} gw")
        ref.assert_close(res[f"{name}_gb"], want_gb, case.grad_w_reduction(), f"{isa} {name} gb")
        for key, red in (("y", case.fwd_reduction()), ("gx", case.grad_x_reduction()),
                         ("gw", case.grad_w_reduction())):
            ref.assert_close(res[f"{name}_{key}"], base[f"{name}_{key}"], red, f"{isa} vs first path {key}")


@pytest.mark.parametrize("name", list(FORCED))
def test_forced_algorithms_agree_with_the_reference_on_every_path(name, isa_results):
    case, algorithm = FORCED[name]
    base = next(iter(isa_results.values()))
    x, w, b = (base[f"{name}_{s}"] for s in ("x", "w", "b"))
    want = np.maximum(ref.conv2d(x, w, b, **case.kwargs()), 0)
    for isa, res in isa_results.items():
        ref.assert_close(res[f"{name}_y"], want, case.fwd_reduction(), f"{isa} {algorithm} {name}")


def test_gemm_paths_agree(isa_results):
    base = next(iter(isa_results.values()))
    want = ref.gemm(base["gemm_a"], base["gemm_bt"], trans_b=True)
    k = GEMM_MKN[1]
    for isa, res in isa_results.items():
        ref.assert_close(res["gemm"], want, k, f"{isa} gemm NT")
        ref.assert_close(res["gemm_tn"], want, k, f"{isa} gemm TN")
        ref.assert_close(res["gemm"], base["gemm"], k, f"{isa} vs first path")


def test_pool_paths_agree(isa_results):
    base = next(iter(isa_results.values()))
    x, g = base["pool_x"], base["pool_g"]
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    want_max, want_idx = ref.max_pool2d(x, **kw)
    want_avg = ref.avg_pool2d(x, count_include_pad=False, **kw)
    for isa, res in isa_results.items():
        np.testing.assert_array_equal(res["max"], want_max.astype(np.float32), err_msg=isa)
        np.testing.assert_array_equal(res["max_idx"], want_idx, err_msg=isa)
        ref.assert_close(res["max_gx"], ref.max_pool2d_backward(g, x.shape, want_idx), 9, f"{isa} max_gx")
        ref.assert_close(res["avg"], want_avg, 9, f"{isa} avg")
        ref.assert_close(res["avg_gx"], ref.avg_pool2d_backward(g, x.shape, count_include_pad=False, **kw), 9,
                         f"{isa} avg_gx")
        ref.assert_close(res["gap"], ref.global_avg_pool2d(x), 110, f"{isa} gap")
        for h, w in GAP_PLANES:
            gx = res[f"gap_x_{h}x{w}"]
            ref.assert_close(res[f"gap_{h}x{w}"], ref.global_avg_pool2d(gx), h * w, f"{isa} gap {h}x{w}")


def test_activation_paths_agree_with_the_reference(isa_results):
    from pyconvx import _core

    for isa, res in isa_results.items():
        x = res["act_x"]
        for name in _core.activation_names():
            np.testing.assert_allclose(res["act_" + name], ref.activation(name, x), rtol=2e-6, atol=1e-7,
                                       err_msg=f"{isa} {name}")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_inference_plan_paths_agree_with_the_layers(name, isa_results):
    kwargs = dict(NETWORKS[name])
    model = getattr(pyconvx.models, kwargs.pop("model"))(seed=0, **kwargs)
    for isa, res in isa_results.items():
        want = model.forward(res[name + "_x"], training=False)
        np.testing.assert_allclose(res[name + "_plan"], want, rtol=0, atol=1e-5 * np.abs(want).max(),
                                   err_msg=f"{isa} {name}")
