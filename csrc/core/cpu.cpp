// Instruction-set dispatch: decided once, from cpuid and the PYCONVX_ISA environment variable.
#include <cstdlib>
#include <string>

#include "dispatch.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

struct Dispatch {
  CpuInfo info;
  const detail::GemmKernel* kernel = nullptr;
};

const detail::GemmKernel* kernel_named(const std::string& name) {
#if defined(PYCONVX_HAVE_X86_KERNELS)
  if (name == "avx512") return &detail::gemm_kernel_avx512();
  if (name == "avx2") return &detail::gemm_kernel_avx2();
#endif
  if (name == "generic") return &detail::gemm_kernel_generic();
  return nullptr;
}

std::vector<std::string> supported_paths() {
  std::vector<std::string> paths;
#if defined(PYCONVX_HAVE_X86_KERNELS)
  // __builtin_cpu_supports also checks (via xgetbv) that the OS saves the wide registers.
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    paths.push_back("avx512");
  if (fma && __builtin_cpu_supports("avx2")) paths.push_back("avx2");
#endif
  paths.push_back("generic");
  return paths;
}

Dispatch decide() {
  Dispatch d;
  d.info.supported = supported_paths();
  d.info.active = d.info.supported.front();
  if (const char* env = std::getenv("PYCONVX_ISA")) {
    d.info.forced = env;
    bool ok = false;
    for (const auto& path : d.info.supported) ok = ok || path == d.info.forced;
    if (ok) {
      d.info.active = d.info.forced;
    } else if (!d.info.forced.empty()) {
      std::string list;
      for (const auto& path : d.info.supported) list += (list.empty() ? "" : ", ") + path;
      d.info.note = "PYCONVX_ISA=" + d.info.forced + " is not one this CPU and build can run (supported: " + list +
                    "); using " + d.info.active;
    }
  }
  d.kernel = kernel_named(d.info.active);
  return d;
}

const Dispatch& dispatch() {
  static const Dispatch d = decide();  // thread-safe one-time initialisation
  return d;
}

}  // namespace

const CpuInfo& cpu_info() { return dispatch().info; }

namespace detail {
const GemmKernel& active_gemm_kernel() { return *dispatch().kernel; }
}  // namespace detail

}  // namespace pyconvx
