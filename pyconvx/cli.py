"""The `pyconvx` command.

`pyconvx bench` times pyconvx's convolution and pooling kernels on the layers of classic networks,
and its GEMM on large square products, against torch (when installed) and a NumPy baseline;
`pyconvx train lenet5` trains LeNet-5 on the bundled handwritten digits; `pyconvx augment-grid`
draws augmented copies of the bundled photographs into a PNG; `pyconvx info` says what this
machine and build offer. Tables go to stdout, progress bars to stderr.
"""
import argparse
import json
import re
import sys

from . import benchmarks, recipes, runtime
from .benchmarks import engines  # noqa: F401  (benchmarks.engines, for the report)
from ._version import __version__


def _num(value, digits=2):
    """A number with `digits` decimals, or "-" for a figure that was not measured."""
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(value):
    """Milliseconds to about three significant digits: 123.4, 1.23, 0.123, 0.0123."""
    if value is None:
        return "-"
    digits = 1 if value >= 100 else 2 if value >= 1 else 3 if value >= 0.1 else 4
    return f"{value:.{digits}f}"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


_NUMERIC = re.compile(r"^(-|[-+]?[\d.]+x?)$")


def format_table(headers, rows, markdown=False):
    """Rows of strings under `headers`, as aligned plain text or as a Markdown table. Columns
    of numbers (and "-" for a missing one) are right-aligned, the others left-aligned."""
    numeric = [all(_NUMERIC.match(row[i]) for row in rows) for i in range(len(headers))]
    if markdown:
        rule = "|" + "|".join("--:" if right else ":--" for right in numeric) + "|"
        return "\n".join(["| " + " | ".join(headers) + " |", rule] + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(map(len, column)) for column in zip(headers, *rows)]

    def line(cells):
        padded = (cell.rjust(w) if right else cell.ljust(w) for cell, w, right in zip(cells, widths, numeric))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(row) for row in rows])


def _columns(rows, columns):
    """The headers and cells of the columns (header, key, cell function) that some row has a
    value for: no torch columns without torch, no backward columns with --no-backward."""
    kept = [(header, key, cell) for header, key, cell in columns if any(key(row) is not None for row in rows)]
    return [header for header, _, _ in kept], [[cell(key(row)) for _, key, cell in kept] for row in rows]


def _get(*path):
    """A function fetching row[path[0]][path[1]]..., None where a key is missing."""
    def get(row):
        for key in path:
            row = row.get(key) if isinstance(row, dict) else None
        return row

    return get


CONV_COLUMNS = [
    ("conv", _get("name"), str), ("shape", _get("shape"), str), ("algorithm", _get("algorithm"), str),
    ("fwd ws MiB", _get("forward_workspace_mib"), lambda v: _num(v, 1)),
    ("fwd ms", _get("forward_ms", "pyconvx"), _ms), ("GFLOP/s", _get("forward_gflops"), lambda v: _num(v, 1)),
    ("%peak", _get("forward_peak_percent"), lambda v: _num(v, 0)),
    ("torch ms", _get("forward_ms", "torch"), _ms), ("vs torch", _get("forward_vs_torch"), _ratio),
    ("numpy ms", _get("forward_ms", "numpy"), _ms), ("vs numpy", _get("forward_vs_numpy"), _ratio),
    ("bwd ws MiB", _get("backward_workspace_mib"), lambda v: _num(v, 1)),
    ("bwd ms", _get("backward_ms", "pyconvx"), _ms), ("bwd GFLOP/s", _get("backward_gflops"), lambda v: _num(v, 1)),
    ("torch bwd ms", _get("backward_ms", "torch"), _ms), ("bwd vs torch", _get("backward_vs_torch"), _ratio),
]

POOL_COLUMNS = [
    ("pool", _get("name"), str), ("shape", _get("shape"), str), ("ms", _get("ms", "pyconvx"), _ms),
    ("GB/s", _get("gbytes_per_s"), lambda v: _num(v, 1)), ("torch ms", _get("ms", "torch"), _ms),
    ("vs torch", _get("vs_torch"), _ratio),
]

GEMM_COLUMNS = [
    ("gemm", _get("name"), str), ("shape", _get("shape"), str), ("ms", _get("ms", "pyconvx"), _ms),
    ("GFLOP/s", _get("gflops"), lambda v: _num(v, 1)), ("peak GFLOP/s", _get("peak_gflops"), lambda v: _num(v, 0)),
    ("%peak", _get("peak_percent"), lambda v: _num(v, 0)), ("torch ms", _get("ms", "torch"), _ms),
    ("vs torch", _get("vs_torch"), _ratio),
    ("numpy ms", _get("ms", "numpy"), _ms), ("vs numpy", _get("vs_numpy"), _ratio),
]

NETWORK_COLUMNS = [
    ("network", _get("name"), str), ("run", _get("shape"), str), ("ms", _get("ms", "pyconvx"), _ms),
    ("torch ms", _get("ms", "torch"), _ms), ("vs torch", _get("vs_torch"), _ratio),
    ("peak MiB", _get("peak_mib", "total"), lambda v: _num(v, 1)),
]

ENGINE_COLUMNS = [
    ("network", _get("name"), str), ("ms", _get("ms", "pyconvx"), _ms), ("torch ms", _get("ms", "torch"), _ms),
    ("ORT ms", _get("ms", "onnxruntime"), _ms), ("OpenVINO ms", _get("ms", "openvino"), _ms),
    ("vs torch", _get("vs", "torch"), _ratio), ("vs ORT", _get("vs", "onnxruntime"), _ratio),
    ("vs OpenVINO", _get("vs", "openvino"), _ratio), ("vs best engine", _get("vs_best_engine"), _ratio),
    ("plan MiB", _get("plan_mib"), lambda v: _num(v, 0)),
]

SUMMARY_LABELS = [("forward_vs_torch", "conv forward vs torch"), ("backward_vs_torch", "conv backward vs torch"),
                  ("pool_vs_torch", "pooling vs torch"), ("forward_vs_numpy", "conv forward vs numpy"),
                  ("networks_vs_best_engine", "networks vs best engine"), ("networks_vs_torch", "networks vs torch")]


def _peers_line(report):
    """Which peers the run compared with, and how to add the missing ones."""
    found = [f"{peer} {version}" for peer, version in report["peers"].items() if peer in report["peers_run"]]
    missing = [f"{peer} ({benchmarks.engines.PEERS[peer]})" for peer in report["peers"]
               if peer not in report["peers_run"]]
    return (f"peers: {', '.join(found) or 'none'}" + (f"; not run: {', '.join(missing)}" if missing else ""))


def format_report(report, markdown=False):
    """The results of benchmarks.run_benchmarks as text: header, conv, pool and GEMM tables,
    summary and a warning for any output that did not match the reference."""
    load = report.get("load_average")
    out = [
        f"pyconvx {report['version']}  isa={report['isa']}  threads={report['threads']}  "
        f"torch={report['torch'] or 'not installed'}  numpy={report['numpy']}  "
        f"FMA peak={report['peak_gflops']:.0f} GFLOP/s" + ("" if load is None else f"  load={load:.1f}"),
        _peers_line(report),
        "ratio = other ms / pyconvx ms (>1: pyconvx faster); times are medians; "
        "NumPy's matmul runs on its BLAS's own threads",
        "",
    ]
    tables = ((report["conv"], CONV_COLUMNS), (report["pool"], POOL_COLUMNS), (report.get("gemm", []), GEMM_COLUMNS),
              (report.get("network", []), NETWORK_COLUMNS), (report.get("engines", []), ENGINE_COLUMNS))
    for rows, columns in tables:
        if rows:
            out += [format_table(*_columns(rows, columns), markdown=markdown), ""]
    summary = [[label, _ratio(stats["geomean"]), _ratio(stats["min"]), stats["min_name"], str(stats["rows"])]
               for key, label in SUMMARY_LABELS if (stats := report["summary"].get(key))]
    if summary:
        out += [format_table(["summary", "geomean", "min", "min at", "rows"], summary, markdown), ""]
    memory = report.get("memory") or {}
    if memory:
        out += [format_table(["resident memory growth of the first predict, fresh process", "MiB"],
                             [[key, _num(value, 0)] for key, value in memory.items()], markdown), ""]
    reference = "torch" if report["torch"] else "numpy"
    checked = (report["conv"] + report["pool"] + report.get("gemm", []) + report.get("network", [])
               + report.get("engines", []))
    for name, output, err in benchmarks.errors_above(checked):
        what, _, other = output.partition(" vs ")  # "logits vs onnxruntime": compared with that peer
        out.append(f"WARNING: {name}: pyconvx's {what} differs from {other or reference}'s (relative error {err:.2g})")
    return "\n".join(out).rstrip() + "\n"


def _progress_bar(specs):
    """Wraps the rows in a tqdm bar on stderr that names the row being measured."""
    try:
        from tqdm import tqdm
    except ImportError:  # a progress bar is a nicety, never a reason to fail
        yield from specs
        return
    with tqdm(specs, desc="pyconvx bench", unit="row", file=sys.stderr, leave=False) as bar:
        for spec in bar:
            bar.set_postfix_str(spec.name)
            yield spec


def _bench(args):
    benchmarks.keep_freed_memory()
    report = benchmarks.run_benchmarks(threads=args.threads, only=args.only, with_torch=not args.no_torch,
                                       backward=not args.no_backward, numpy_baseline=not args.no_numpy,
                                       min_time=args.min_time, quick=args.quick, progress=_progress_bar)
    if not any(report[table] for table in ("conv", "pool", "gemm", "network", "engines")):
        print(f"pyconvx bench: no row matches --only {args.only!r}", file=sys.stderr)
    sys.stdout.write(format_report(report, markdown=args.markdown))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


def _info(args):
    if args.threads:
        runtime.set_num_threads(args.threads)
    info = runtime.cpu_info()
    print(f"pyconvx {__version__}")
    print(f"isa: {info['active']} (supported: {', '.join(info['supported'])}; forced: {info['forced'] or 'no'})")
    if info["note"]:
        print(f"note: {info['note']}")
    caches = info["cache_bytes"]
    print(f"cpu: {info['model']}")
    print("caches: " + ", ".join(f"{level} {caches[level] // 1024} KiB" for level in ("l1d", "l2", "l3")))
    print(f"threads: {runtime.get_num_threads()}")
    cache = runtime.autotune_cache_info()["file"]
    print(f"autotune: {'on' if runtime.get_autotune() else 'off'} (cache: {cache or 'in memory only'})")
    print(f"FMA peak: {benchmarks.measure_peak(0.2):.0f} GFLOP/s")
    return 0


def _train(args):
    if args.threads:
        runtime.set_num_threads(args.threads)
    result = recipes.train_lenet5_digits(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                         verbose=0 if args.quiet else 1)
    print(f"lenet5 on digits: train accuracy {result['train_accuracy']:.4f}, dev accuracy "
          f"{result['dev_accuracy']:.4f} ({result['epochs']} epochs, {result['seconds']:.1f} s, "
          f"{runtime.get_num_threads()} threads)")
    return 0


def _augment_grid(args):
    image = recipes.augmentation_grid(args.out, copies=args.copies, seed=args.seed, height=args.height)
    print(f"wrote {args.out}: {image.shape[2]} x {image.shape[1]} pixels, each photo then {args.copies} "
          f"augmented copies (seed {args.seed})")
    return 0


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser():
    """The argument parser of the `pyconvx` command."""
    parser = argparse.ArgumentParser(prog="pyconvx", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"pyconvx {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{bench,train,augment-grid,info}")

    bench = commands.add_parser("bench", help="time convolution and pooling layers against torch and NumPy")
    bench.add_argument("--threads", type=_positive_int, help="threads for pyconvx and torch (default: pyconvx's)")
    bench.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    bench.add_argument("--only", metavar="NAME[,NAME]", help="only the rows whose name contains one of these")
    bench.add_argument("--no-torch", action="store_true", help="do not time torch")
    bench.add_argument("--no-backward", action="store_true", help="do not time the convolution backward pass")
    bench.add_argument("--no-numpy", action="store_true", help="do not time the NumPy im2col + matmul baseline")
    bench.add_argument("--min-time", type=_positive_float, default=0.3, metavar="SECONDS",
                       help="time each implementation for at least this long per row (default 0.3)")
    bench.add_argument("--quick", action="store_true", help="few repeats: a smoke run with noisy figures")
    bench.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    bench.set_defaults(run=_bench)

    train = commands.add_parser("train", help="train a classic network on bundled real data (needs the datasets extra)")
    train.add_argument("network", choices=["lenet5"], help="lenet5: LeNet-5 on the handwritten digits, 32x32")
    train.add_argument("--epochs", type=_positive_int, default=20, help="passes over the training set (default 20)")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="images per step (default 32)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffling (default 0)")
    train.add_argument("--threads", type=_positive_int, help="threads for the kernels (default: pyconvx's)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)

    grid = commands.add_parser("augment-grid", help="write a PNG of augmented copies of the bundled photographs "
                                                    "(needs the datasets and images extras)")
    grid.add_argument("out", metavar="OUT.png", help="the image file to write (.png or .jpg)")
    grid.add_argument("--copies", type=_positive_int, default=8, help="augmented copies of each photo (default 8)")
    grid.add_argument("--seed", type=int, default=0, help="seed of the augmentations (default 0)")
    grid.add_argument("--height", type=_positive_int, default=96, help="height of each picture in pixels (default 96)")
    grid.set_defaults(run=_augment_grid)

    info = commands.add_parser("info", help="version, instruction set, threads and FMA peak")
    info.add_argument("--threads", type=_positive_int, help="measure the peak on this many threads")
    info.set_defaults(run=_info)
    return parser


def main(argv=None):
    """Runs the `pyconvx` command with `argv` (default: sys.argv[1:]); returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
