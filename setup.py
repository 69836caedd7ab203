"""Builds pyconvx._core from the C++ sources listed in csrc/sources.txt.

No -march=native: a wheel built here must run on any x86-64 (or other) CPU. Instead each
instruction set's micro-kernel lives in its own translation unit, compiled with that ISA's flags
(chosen by the file name), and the kernels pick one at run time by cpuid.
"""
import os
import platform
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("csrc")
X86 = platform.machine().lower() in ("x86_64", "amd64")

ISA_FLAGS = {
    "_avx2.cpp": ["-mavx2", "-mfma", "-ffp-contract=fast"],
    "_avx512.cpp": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mfma", "-ffp-contract=fast"],
    "_generic.cpp": ["-ffp-contract=fast"],
}


def kernel_sources():
    """The source list, relative to the project root, without the x86 kernels elsewhere."""
    with open(os.path.join(ROOT, CSRC, "sources.txt")) as listing:
        names = [line.strip() for line in listing if line.strip() and not line.startswith("#")]
    if not X86:
        names = [n for n in names if not n.endswith(("_avx2.cpp", "_avx512.cpp"))]
    return [os.path.join(CSRC, n) for n in names]


def isa_flags(source):
    for suffix, flags in ISA_FLAGS.items():
        if source.endswith(suffix):
            return flags
    return []


class BuildExt(build_ext):
    """Adds each file's ISA flags on top of the common ones."""

    def build_extensions(self):
        compile_one = self.compiler._compile

        def compile_with_isa(obj, src, ext, cc_args, extra_postargs, pp_opts):
            compile_one(obj, src, ext, cc_args, list(extra_postargs) + isa_flags(src), pp_opts)

        self.compiler._compile = compile_with_isa
        super().build_extensions()


ParallelCompile("PYCONVX_BUILD_JOBS", default=os.cpu_count() or 1).install()

macros = [("PYCONVX_HAVE_X86_KERNELS", "1")] if X86 else []
extension = Pybind11Extension(
    "pyconvx._core",
    sources=kernel_sources() + [os.path.join(CSRC, "python", "bindings.cpp")],
    include_dirs=[os.path.join(CSRC, "include")],
    define_macros=macros,
    cxx_std=17,
    extra_compile_args=["-O3", "-fopenmp", "-fno-math-errno"],
    extra_link_args=["-fopenmp"],
)

if sys.platform == "darwin":  # Apple clang needs libomp; not a supported platform yet
    raise SystemExit("pyconvx: building on macOS is not supported yet")

setup(ext_modules=[extension], cmdclass={"build_ext": BuildExt})
