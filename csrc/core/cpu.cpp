// Instruction-set dispatch: decided once, from cpuid and the PYCONVX_ISA environment variable.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#if defined(PYCONVX_HAVE_X86_KERNELS)
#include <cpuid.h>

#include <cstring>
#endif

#include "dispatch.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

struct Dispatch {
  CpuInfo info;
  const detail::GemmKernel* kernel = nullptr;
  detail::PlaneMeans plane_means = nullptr;
  detail::BilinearRows bilinear_rows = nullptr;
  detail::Pointwise pointwise = nullptr;
  detail::DepthwiseSelect depthwise = nullptr;
};

// The kernels of a path in supported_paths().
void select_kernels(const std::string& name, Dispatch* d) {
#if defined(PYCONVX_HAVE_X86_KERNELS)
  if (name == "avx512") {
    d->kernel = &detail::gemm_kernel_avx512();
    d->plane_means = detail::plane_means_avx512;
    d->bilinear_rows = detail::bilinear_rows_avx512;
    d->pointwise = detail::pointwise_avx512;
    d->depthwise = detail::depthwise_plane_avx512;
    return;
  }
  if (name == "avx2") {
    d->kernel = &detail::gemm_kernel_avx2();
    d->plane_means = detail::plane_means_avx2;
    d->bilinear_rows = detail::bilinear_rows_avx2;
    d->pointwise = detail::pointwise_avx2;
    d->depthwise = detail::depthwise_plane_avx2;
    return;
  }
#endif
  d->kernel = &detail::gemm_kernel_generic();
  d->plane_means = detail::plane_means_generic;
  d->bilinear_rows = detail::bilinear_rows_generic;
  d->pointwise = detail::pointwise_generic;
  d->depthwise = detail::depthwise_plane_generic;
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

// AMD's family 19h (Zen 3 and 4; of the two only Zen 4 has AVX-512) runs 512-bit FMAs on its two
// 256-bit FMA pipes, one instruction a cycle; Zen 5 (family 1Ah) and Intel issue two.
bool splits_512bit_fma() {
#if defined(PYCONVX_HAVE_X86_KERNELS)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;  // "AuthenticAMD"
  if (!amd || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned base = (eax >> 8) & 0xf, family = base == 0xf ? base + ((eax >> 20) & 0xff) : base;
  return family == 0x19;
#else
  return false;
#endif
}

// "<brand> (<vendor> family F model M stepping S)" on x86, else /proc/cpuinfo's first model name.
std::string processor_model() {
#if defined(PYCONVX_HAVE_X86_KERNELS)
  unsigned regs[12] = {0}, eax = 0, ebx = 0, ecx = 0, edx = 0;
  std::string brand;
  if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) && eax >= 0x80000004) {
    for (unsigned leaf = 0; leaf < 3; ++leaf)
      __get_cpuid(0x80000002 + leaf, &regs[4 * leaf], &regs[4 * leaf + 1], &regs[4 * leaf + 2], &regs[4 * leaf + 3]);
    brand.assign(reinterpret_cast<const char*>(regs), sizeof(regs));
    brand = brand.substr(0, brand.find('\0'));
    brand = brand.substr(0, brand.find_last_not_of(' ') + 1);
    brand = brand.substr(brand.find_first_not_of(' ') == std::string::npos ? brand.size() : brand.find_first_not_of(' '));
  }
  char vendor[13] = {0};
  __get_cpuid(0, &eax, &ebx, &ecx, &edx);
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const unsigned base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
  const unsigned family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
  const unsigned model = base_family == 0xf || base_family == 0x6 ? base_model + (((eax >> 16) & 0xf) << 4) : base_model;
  return (brand.empty() ? std::string("unknown") : brand) + " (" + vendor + " family " + std::to_string(family) +
         " model " + std::to_string(model) + " stepping " + std::to_string(eax & 0xf) + ")";
#else
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    const auto colon = line.find(':');
    if (colon != std::string::npos && (line.rfind("model name", 0) == 0 || line.rfind("Hardware", 0) == 0))
      return line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  return "unknown";
#endif
}

// Bytes of the cache at `level` of `type` ("Data" or "Unified") that cpu0 sees, from sysfs (what
// the kernel read off the CPU, or off what a hypervisor shows of it); 0 where it says nothing.
int64_t sysfs_cache_bytes(int level, const std::string& type) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), type_file(dir + "type"), size_file(dir + "size");
    int found_level = 0;
    std::string found_type, size;
    if (!(level_file >> found_level) || !(type_file >> found_type) || !(size_file >> size)) continue;
    if (found_level != level || found_type != type) continue;
    std::istringstream in(size);
    int64_t value = 0;
    char unit = 0;
    if (!(in >> value)) continue;
    in >> unit;
    return value * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : unit == 'G' ? 1024 * 1024 * 1024 : 1);
  }
  return 0;
}

#if defined(_SC_LEVEL1_DCACHE_SIZE)
// glibc's answer for the same (`name` a _SC_LEVEL*_CACHE_SIZE), 0 where it has none.
int64_t sysconf_bytes(int name) {
  const long value = sysconf(name);
  return value > 0 ? value : 0;
}
#endif

void read_cache_sizes(CpuInfo* info) {
  info->l1d_bytes = sysfs_cache_bytes(1, "Data");
  info->l2_bytes = sysfs_cache_bytes(2, "Unified");
  info->l3_bytes = sysfs_cache_bytes(3, "Unified");
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  if (info->l1d_bytes == 0) info->l1d_bytes = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE);
  if (info->l2_bytes == 0) info->l2_bytes = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
  if (info->l3_bytes == 0) info->l3_bytes = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
#endif
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
  d.info.split_512bit_fma = d.info.active == "avx512" && splits_512bit_fma();
  d.info.model = processor_model();
  read_cache_sizes(&d.info);
  select_kernels(d.info.active, &d);
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

const GemmKernel& gemm_kernel_for(int64_t rows, int64_t cols) {
  const auto padded = [](int64_t n, int64_t tile) { return (n + tile - 1) / tile * tile; };
  const auto work = [&](const GemmKernel& k) { return padded(rows, k.mr) * (cols > 0 ? padded(cols, k.nr) : 1); };
  const GemmKernel* best = &active_gemm_kernel();
  for (const GemmKernel* k = best->other_tile; k; k = k->other_tile) {
    const bool no_smaller = k->mr * k->nr >= best->mr * best->nr;  // as many FMAs a load, or more
    if (100 * work(*k) < (no_smaller ? 100 : 92) * work(*best)) best = k;
  }
  return *best;
}
PlaneMeans active_plane_means() { return dispatch().plane_means; }
BilinearRows active_bilinear_rows() { return dispatch().bilinear_rows; }
Pointwise active_pointwise() { return dispatch().pointwise; }

const float* register_clamp(Activation activation) {
  static const float relu[2] = {0.0f, INFINITY}, relu6[2] = {0.0f, 6.0f};
  return activation == Activation::relu ? relu : activation == Activation::relu6 ? relu6 : nullptr;
}
DepthwiseSelect active_depthwise() { return dispatch().depthwise; }
}  // namespace detail

}  // namespace pyconvx
