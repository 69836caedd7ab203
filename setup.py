"""Builds the kernels as the shared library libpyconvx.so and the Python binding pyconvx._core on
top of it, from the sources listed in csrc/sources.txt (the list CMakeLists.txt reads too).

The wheel ships the library with the public headers and a CMake package configuration
(pyconvx/lib, pyconvx/include, pyconvx/cmake), so another extension or program can build against
the very kernels, thread pool and workspace the Python package uses: see pyconvx.get_include()
and pyconvx.get_cmake_dir().

No -march=native: a wheel built here must run on any x86-64 (or other) CPU. Instead each
instruction set's micro-kernel lives in its own translation unit, compiled with that ISA's flags
(chosen by the file name, csrc/isa_flags.txt), and the kernels pick one at run time by cpuid.

PYCONVX_SANITIZE=address,undefined (any -fsanitize= list) builds both with those sanitizers, for
the checks of .ci/sanitize; the interpreter then needs the runtime preloaded (see that script).
"""
import glob
import os
import platform
import re
import shutil
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup
from setuptools.modified import newer_group

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"
INCLUDE = os.path.join(CSRC, "include")
X86 = platform.machine().lower() in ("x86_64", "amd64")
SANITIZE = os.environ.get("PYCONVX_SANITIZE", "").strip()
# -O1 and frame pointers keep the sanitizers' stack traces readable; UB stops at the first report.
SANITIZE_FLAGS = ([f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]
                  if SANITIZE else [])
COMMON_FLAGS = ["-O3", "-g0", "-fopenmp", "-fno-math-errno", "-std=c++17"] + SANITIZE_FLAGS
MACROS = [("PYCONVX_HAVE_X86_KERNELS", "1")] if X86 else []


def listed_lines(name):
    with open(os.path.join(ROOT, CSRC, name)) as listing:
        return [line.strip() for line in listing if line.strip() and not line.startswith("#")]


def kernel_sources():
    """The source list, relative to the project root, without the x86 kernels elsewhere."""
    names = listed_lines("sources.txt")
    if not X86:
        names = [n for n in names if not n.endswith(("_avx2.cpp", "_avx512.cpp"))]
    return [os.path.join(CSRC, n) for n in names]


ISA_FLAGS = {line.split()[0]: line.split()[1:] for line in listed_lines("isa_flags.txt")}


def isa_flags(source):
    for suffix, flags in ISA_FLAGS.items():
        if source.endswith(suffix):
            return flags
    return []


def version():
    """major.minor.patch from csrc/include/pyconvx/version.hpp, the one place it is written."""
    with open(os.path.join(ROOT, INCLUDE, "pyconvx", "version.hpp")) as header:
        text = header.read()
    parts = [re.search(rf"#define PYCONVX_VERSION_{part} (\d+)", text).group(1) for part in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class BuildExt(build_ext):
    """Builds libpyconvx.so next to where _core goes (pyconvx/lib), copies the headers beside it
    (pyconvx/include), then builds _core linked to the library with an $ORIGIN-relative rpath."""

    def build_extensions(self):
        compile_one = self.compiler._compile

        def compile_with_isa(obj, src, ext, cc_args, extra_postargs, pp_opts):
            compile_one(obj, src, ext, cc_args, list(extra_postargs) + isa_flags(src), pp_opts)

        self.compiler._compile = compile_with_isa
        self.force = self.force or self.flags_changed()
        package_dir = os.path.dirname(self.get_ext_fullpath("pyconvx._core"))
        lib_dir = os.path.join(package_dir, "lib")
        self.build_kernel_library(lib_dir)
        self.copy_headers(os.path.join(package_dir, "include"))
        for ext in self.extensions:
            ext.library_dirs.append(lib_dir)
        super().build_extensions()

    def flags_changed(self):
        """Whether the last build in this build directory used other flags (with or without the
        sanitizers): its outputs look up to date but must be rebuilt."""
        stamp = os.path.join(self.build_temp, "pyconvx-flags.txt")
        flags = " ".join(COMMON_FLAGS)
        previous = open(stamp).read() if os.path.exists(stamp) else None
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as out:
            out.write(flags)
        return previous != flags

    def build_kernel_library(self, lib_dir):
        sources = kernel_sources()
        target = os.path.join(lib_dir, "libpyconvx.so")
        headers = glob.glob(os.path.join(CSRC, "**", "*.hpp"), recursive=True)
        if not (self.force or newer_group(sources + headers, target, "newer")):
            return
        objects = self.compiler.compile(sources, output_dir=self.build_temp, macros=MACROS, include_dirs=[INCLUDE],
                                        extra_postargs=COMMON_FLAGS + ["-fPIC"])
        os.makedirs(lib_dir, exist_ok=True)
        self.compiler.link_shared_object(objects, target, target_lang="c++",
                                         extra_postargs=["-fopenmp", "-Wl,-soname,libpyconvx.so"] + SANITIZE_FLAGS)

    def copy_headers(self, destination):
        shutil.rmtree(destination, ignore_errors=True)
        shutil.copytree(os.path.join(INCLUDE, "pyconvx"), os.path.join(destination, "pyconvx"))

    def copy_extensions_to_source(self):
        """--inplace: the library and headers go into the source tree's package with _core."""
        super().copy_extensions_to_source()
        self.inplace, inplace = 0, self.inplace  # where run() built them
        built = os.path.dirname(self.get_ext_fullpath("pyconvx._core"))
        self.inplace = inplace
        source = self.get_finalized_command("build_py").get_package_dir("pyconvx")
        for part in ("lib", "include"):
            shutil.rmtree(os.path.join(source, part), ignore_errors=True)
            shutil.copytree(os.path.join(built, part), os.path.join(source, part))


ParallelCompile("PYCONVX_BUILD_JOBS", default=os.cpu_count() or 1).install()

extension = Pybind11Extension(
    "pyconvx._core",
    sources=[os.path.join(CSRC, "python", name) for name in ("bindings.cpp", "plan_bindings.cpp")],
    include_dirs=[INCLUDE],
    define_macros=MACROS,
    cxx_std=17,
    extra_compile_args=["-O3", "-fno-math-errno"] + SANITIZE_FLAGS,
    extra_link_args=SANITIZE_FLAGS,
    libraries=["pyconvx"],
    runtime_library_dirs=["$ORIGIN/lib"],
)

if sys.platform == "darwin":  # Apple clang needs libomp; not a supported platform yet
    raise SystemExit("pyconvx: building on macOS is not supported yet")

setup(version=version(), ext_modules=[extension], cmdclass={"build_ext": BuildExt})
