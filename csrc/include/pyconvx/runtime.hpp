// Process-wide settings: the thread count and the instruction set the kernels run on.
#pragma once

#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace pyconvx {

// Threads used by every kernel. Defaults to OpenMP's default (OMP_NUM_THREADS or the core count).
// Throws std::invalid_argument unless 1 <= n <= kMaxThreads. Safe to call while other threads run
// kernels: a kernel reads the count once when it starts. A process made by fork() runs the kernels
// on one thread and refuses n > 1 (the OpenMP runtime cannot start threads there).
constexpr int64_t kMaxThreads = 4096;
void set_num_threads(int64_t n);
// The count a kernel called from this thread uses: the process-wide one, capped by this thread's
// limit when it has one.
int get_num_threads();

// Caps the threads of the kernels this thread calls (0: no cap, the default), leaving other
// threads alone: a thread that does small work beside a training loop (a data loader's worker)
// takes one core instead of starting a team on every core. Throws std::invalid_argument unless
// 0 <= n <= kMaxThreads.
void set_thread_limit(int64_t n);
int get_thread_limit();

// Whether the kernels flush denormals (numbers below float32's smallest normal, 2^-126) to zero
// while they compute: on (the default), a denormal input reads as zero and a denormal result
// becomes zero, which changes a result by less than 2^-126 in absolute value; off, they keep
// IEEE arithmetic, which CPUs with microcode assists for denormals (Intel's) run 30-120x slower
// on such inputs. Only the kernels' threads, and only while a kernel runs, change mode: the
// caller's floating-point environment is left as it was. x86-64 only; elsewhere the setting is
// kept but the hardware's default mode applies. Safe to call while kernels run: each call reads
// it once when it starts.
void set_flush_denormals(bool flush);
bool get_flush_denormals();

struct CpuInfo {
  std::string active;                  // "avx512", "avx2" or "generic"
  std::vector<std::string> supported;  // the paths this CPU and build can run, best first
  std::string forced;                  // the PYCONVX_ISA value read at start-up ("" when unset)
  std::string note;                    // why a forced path was not taken, else ""
  // On the avx512 path: the CPU executes each 512-bit FMA as two 256-bit halves, one a cycle
  // (AMD Zen 4), rather than two a cycle (Intel's AVX-512 cores). The convolution heuristic reads it.
  bool split_512bit_fma = false;
  // The processor as it names itself (cpuid's brand string, or /proc/cpuinfo's model name) and
  // its vendor, family, model and stepping numbers: under a hypervisor the brand string may be
  // as vague as "AMD EPYC" for several generations, the numbers are not.
  std::string model;
  // Cache sizes in bytes as the operating system reports them (0 where it does not): the L1 data
  // cache and the L2 of one core, and one L3 (shared by the cores of a complex).
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;
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

// A cap on the kernels' scratch memory: a request that would take it past `bytes` throws
// WorkspaceLimitError (a std::bad_alloc naming the bytes requested, held and allowed) instead of
// being attempted. The default is the machine's physical memory, which no request can exceed and
// succeed. Throws std::invalid_argument for bytes < 0.
void set_workspace_limit(int64_t bytes);
int64_t get_workspace_limit();

class WorkspaceLimitError : public std::bad_alloc {
 public:
  explicit WorkspaceLimitError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Where the kernels' scratch memory comes from, for a caller that brings its own (an arena, a
// pool, memory with other limits): `allocate` returns `bytes` bytes aligned to 64, or null when it
// has none (the kernel then throws std::bad_alloc); `release` takes back exactly what `allocate`
// gave, with the same size. Both may be called from any of the kernels' threads at once, and
// `user` is passed to both. A buffer is always released through the allocator that made it, so
// the allocator may be replaced at any time; reset_workspace_allocator() returns to the heap.
// Per-thread scratch is kept between calls until reset_workspace_peak() releases it. The bytes
// held at once stay within conv2d_workspace_size; a thread may release a buffer and ask for a
// larger one within a call, so an arena should reuse what is released.
struct WorkspaceAllocator {
  void* (*allocate)(int64_t bytes, void* user) = nullptr;
  void (*release)(void* memory, int64_t bytes, void* user) = nullptr;
  void* user = nullptr;
};
void set_workspace_allocator(const WorkspaceAllocator& allocator);
void reset_workspace_allocator();

// Whether an InferencePlan chooses each convolution's algorithm by measurement (on by default;
// PYCONVX_AUTOTUNE=0 in the environment starts it off): when it is built, every algorithm that
// can compute a layer is timed on that layer's shapes and thread count, and the fastest kept;
// the choice is remembered for the process and in the autotune cache file (below), so rebuilding
// a plan, or building it in the next process, times nothing. Off, plans take
// the built-in heuristic's choice (choose_conv_algorithm), as single conv2d_forward calls do.
void set_autotune(bool on);
bool get_autotune();

// Where measured choices persist between processes: a directory holding one small text file per
// pyconvx version, instruction-set path and processor (autotune_cache_file()), so that a second
// process building the same plans times nothing. The default is PYCONVX_AUTOTUNE_CACHE when set
// ("", "0" or "off" turn the file off), else $XDG_CACHE_HOME/pyconvx, else ~/.cache/pyconvx. "" keeps the
// choices in memory only. A file that is damaged, truncated or written for another version or
// CPU is ignored with a warning and rewritten; it only ever chooses among the algorithms that
// can compute a layer, never what a layer computes.
void set_autotune_cache_dir(const std::string& dir);
std::string get_autotune_cache_dir();
std::string autotune_cache_file();  // "" when there is none
// What the autotuner did in this process: layers timed, layers whose choice was remembered (from
// this process or the file), and entries the file gave.
struct AutotuneCacheStats {
  int64_t measured = 0, reused = 0, loaded = 0;
};
AutotuneCacheStats autotune_cache_stats();
// The warnings about the file (ignored as damaged or foreign, an entry that proved wrong, a write
// that failed) not yet taken, oldest first; the Python binding turns them into RuntimeWarnings.
std::vector<std::string> take_autotune_warnings();

// Measures the FMA throughput (GFLOP/s) the active path reaches with the current thread count,
// running for about `seconds`: the machine's practical ceiling for the benchmarks' "% of peak".
double measure_peak_gflops(double seconds);

}  // namespace pyconvx
