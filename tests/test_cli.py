"""The `pyconvx` command and the benchmark helpers behind it (correctness, not speed)."""
import json
import platform

import numpy as np
import pytest

import pyconvx
from pyconvx import benchmarks, cli
from conftest import run_child


def test_info_prints_isa_and_threads(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"pyconvx {pyconvx.__version__}" in out
    assert f"isa: {pyconvx.cpu_info()['active']}" in out
    assert f"cpu: {pyconvx.cpu_info()['model']}" in out and "caches: l1d " in out
    assert "autotune: " in out and (pyconvx.autotune_cache_info()["file"] or "in memory only") in out
    assert "FMA peak:" in out


def test_bench_prints_rows_summary_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "lenet_c1,avg_2x2", "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lenet_c1" in out and "avg_2x2_s2" in out and "geomean" in out
    assert "vgg" not in out
    data = json.loads(path.read_text())
    assert data["threads"] == 1 and data["peak_gflops"] > 0
    row = data["conv"][0]
    assert row["name"] == "lenet_c1" and row["algorithm"] in pyconvx.CONV_ALGORITHMS
    assert row["forward_ms"]["pyconvx"] > 0 and row["backward_ms"]["pyconvx"] > 0
    assert data["pool"][0]["gbytes_per_s"] > 0


def test_bench_markdown_and_no_torch(capsys):
    assert cli.main(["bench", "--quick", "--only", "global_avg", "--no-torch", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| global_avg |" in out and "torch=not installed" in out


def test_bench_reports_the_gemm_against_the_peak(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "gemm_1024", "--no-torch", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gemm_1024" in out and "1024x1024 @ 1024x1024" in out and "WARNING" not in out
    data = json.loads(path.read_text())
    assert not data["conv"] and not data["pool"]
    row = data["gemm"][0]
    assert row["gflops"] > 0 and 0 < row["peak_percent"] < 200 and row["vs_numpy"] > 0
    # The percentage is against the probe run in the GEMM's own rounds.
    assert row["peak_gflops"] > 0 and row["peak_percent"] == pytest.approx(100 * row["gflops"] / row["peak_gflops"])
    assert row["errors"]["out"] < 1e-3


def test_bench_compares_whole_networks_with_the_engines_it_finds(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "mobilenet_v2_b1", "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    data = json.loads(path.read_text())
    assert "mobilenet_v2_b1" in out and "peers:" in out and "WARNING" not in out
    assert not data["conv"] and len(data["engines"]) == 1
    row = data["engines"][0]
    assert row["ms"]["pyconvx"] > 0 and row["plan_mib"] > 13  # at least the 3.5 M parameters
    assert set(row["ms"]) == {"pyconvx"} | set(data["peers_run"])
    for peer in data["peers_run"]:
        assert row["vs"][peer] > 0 and row["errors"][f"logits vs {peer}"] < 1e-4, peer
    for peer, version in data["peers"].items():  # each installed peer runs (given torch, which exports)
        assert (peer in data["peers_run"]) == (version is not None and data["torch"] is not None)


def test_bench_without_torch_says_which_peers_did_not_run(capsys):
    assert cli.main(["bench", "--quick", "--only", "resnet18_b1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "peers: none; not run: torch (pip install 'pyconvx[bench]')" in out and "resnet18_b1" in out


def test_bench_rejects_bad_thread_count():
    with pytest.raises(SystemExit):
        cli.main(["bench", "--threads", "0"])


@pytest.mark.parametrize("spec", [s for s in benchmarks.CONV_TABLE if s.name in ("resnet_conv1", "alexnet_c1")],
                         ids=lambda s: s.name)
def test_numpy_baseline_is_a_correct_convolution(spec):
    small = benchmarks.ConvSpec(spec.name, 1, spec.c, 31, 4, spec.r, spec.stride, spec.pad)
    x, w, b, _ = small.make(np.random.default_rng(1))
    got = benchmarks.numpy_conv2d(x, w, b, small.stride, small.pad)
    want = pyconvx.conv2d(x, w, b, stride=small.stride, padding=small.pad)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_tables_compute_flops_and_bytes():
    vgg = next(s for s in benchmarks.CONV_TABLE if s.name == "vgg_c3_2")
    assert vgg.out_hw == 56 and vgg.flops == 2 * 8 * 256 * 56 * 56 * 256 * 9
    pool = next(s for s in benchmarks.POOL_TABLE if s.name == "max_3x3_s2")
    assert pool.out_shape() == (8, 64, 56, 56)
    assert pool.bytes == 4 * (8 * 64 * 112 * 112 + 8 * 64 * 56 * 56)
    assert benchmarks.geometric_mean([2.0, 0.5]) == pytest.approx(1.0)


def test_bench_reports_the_workspace_of_each_row(tmp_path):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "lenet_c3", "--no-torch", "--no-numpy", "--json", str(path)]) == 0
    row = json.loads(path.read_text())["conv"][0]
    assert 0 < row["forward_workspace_mib"] < 64 and 0 < row["backward_workspace_mib"] < 64



def test_bench_reports_the_peak_memory_of_each_network_row(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "lenet5_epoch", "--no-torch", "--threads", "1",
                     "--json", str(path)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("network"))
    assert header.split()[-2:] == ["peak", "MiB"]
    peak = json.loads(path.read_text())["network"][0]["peak_mib"]
    # An epoch in batches of 64 holds at least one batch's first activations (64x6x28x28 float32,
    # 1.1 MiB) and its gradient; far less than the 1024 images' (24 MiB).
    assert 2 < peak["python"] < 24 and peak["workspace"] > 0
    assert peak["total"] == pytest.approx(peak["python"] + peak["workspace"])


def test_peak_memory_counts_arrays_and_kernel_scratch_and_leaves_tracemalloc_as_it_was():
    import tracemalloc

    x = np.ones((4, 64, 28, 28), np.float32)
    w = np.ones((64, 64, 3, 3), np.float32)
    peak = benchmarks.peak_memory_mib(lambda: pyconvx.conv2d(x, w, padding=1))
    assert peak["python"] == pytest.approx(x.nbytes / 2**20, rel=0.05)  # the result, as large as x
    assert peak["workspace"] > 0 and not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        kept = np.ones(2**20, np.uint8)  # allocated before: not counted
        again = benchmarks.peak_memory_mib(lambda: pyconvx.conv2d(x, w, padding=1))
        assert again["python"] == pytest.approx(peak["python"], rel=0.05) and tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    del kept


KEEP_FREED_MEMORY = """
import resource, sys
import numpy as np
from pyconvx import benchmarks
if sys.argv[1] == "keep":
    assert benchmarks.keep_freed_memory()
def faults_of_a_fresh_output():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(16 * 2**20, np.float32)  # 64 MiB written, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_fresh_output()
print(faults_of_a_fresh_output())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_spares_the_page_faults_of_a_repeated_output():
    # Each process gets its own allocator: the setting must not leak into the test session.
    def faults(mode):
        run = run_child(KEEP_FREED_MEMORY, mode)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    default, kept = faults("default"), faults("keep")
    assert default >= 32  # 64 MiB mapped and zeroed again: 2 MiB pages at the fewest
    assert kept * 8 < default
