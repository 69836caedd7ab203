// Process-wide settings: the thread count and the instruction set the kernels run on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyconvx {

// Threads used by every kernel. Defaults to OpenMP's default (OMP_NUM_THREADS or the core count).
// Throws std::invalid_argument unless 1 <= n <= kMaxThreads. Safe to call while other threads run
// kernels: a kernel reads the count once when it starts. A process made by fork() runs the kernels
// on one thread and refuses n > 1 (the OpenMP runtime cannot start threads there).
constexpr int64_t kMaxThreads = 4096;
void set_num_threads(int64_t n);
int get_num_threads();

struct CpuInfo {
  std::string active;                  // "avx512", "avx2" or "generic"
  std::vector<std::string> supported;  // the paths this CPU and build can run, best first
  std::string forced;                  // the PYCONVX_ISA value read at start-up ("" when unset)
  std::string note;                    // why a forced path was not taken, else ""
};

// The dispatch decision, made once (thread-safely) on first use from cpuid and PYCONVX_ISA.
const CpuInfo& cpu_info();

// Scratch memory of the kernels in bytes: held now, and the most held at once since the last
// reset_workspace_peak(). reset_workspace_peak() also frees the per-thread scratch that kernels
// keep between calls (on every thread of the calling thread's pool, including threads that a
// lowered thread count left idle), so the next peak is what the next calls need.
struct WorkspaceUsage {
  int64_t live_bytes, peak_bytes;
};
WorkspaceUsage workspace_usage();
void reset_workspace_peak();

// Measures the FMA throughput (GFLOP/s) the active path reaches with the current thread count,
// running for about `seconds`: the machine's practical ceiling for the benchmarks' "% of peak".
double measure_peak_gflops(double seconds);

}  // namespace pyconvx
