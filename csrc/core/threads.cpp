// The process-wide thread count (with a per-thread cap), the denormal setting, and the FMA peak probe
// that runs on those threads.
#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

#include "dispatch.hpp"
#include "workspace.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {
std::atomic<int> g_num_threads{0};  // 0: not set, use OpenMP's default
// The most threads any count set so far allowed: the OpenMP pool keeps that many threads, each
// with its scratch, after the count is lowered.
std::atomic<int> g_most_threads{0};

void note_count(int n) {
  int most = g_most_threads.load(std::memory_order_relaxed);
  while (n > most && !g_most_threads.compare_exchange_weak(most, n, std::memory_order_relaxed)) {
  }
}

// GNU OpenMP keeps the threads a parallel region started; fork() copies the pool's bookkeeping but
// not its threads, so a forked child's first region with more than one thread waits for them
// forever (multiprocessing's default start method on Linux does exactly this). One thread never
// touches the pool, so a child runs its kernels on one.
std::atomic<bool> g_forked_child{false};

void one_thread_in_forked_child() {
  g_forked_child.store(true, std::memory_order_relaxed);
  g_num_threads.store(1, std::memory_order_relaxed);
}

[[maybe_unused]] const bool g_fork_handler_registered = pthread_atfork(nullptr, nullptr, one_thread_in_forked_child) == 0;

thread_local int t_thread_limit = 0;  // set_thread_limit's cap for the calling thread; 0: none

std::atomic<bool> g_flush_denormals{true};

int process_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}
}  // namespace

void set_num_threads(int64_t n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("set_num_threads: n must be in [1, " + std::to_string(kMaxThreads) +
                                "], got n=" + std::to_string(n));
  if (n > 1 && g_forked_child.load(std::memory_order_relaxed))
    throw std::invalid_argument("set_num_threads: this process was forked, where the kernels can only run on one "
                                "thread (start it with the 'spawn' or 'forkserver' method for more), got n=" +
                                std::to_string(n));
  note_count(process_threads());  // the count in force until now (OpenMP's default at first)
  g_num_threads.store(static_cast<int>(n), std::memory_order_relaxed);
  note_count(static_cast<int>(n));
}

int get_num_threads() {
  const int n = process_threads();
  return t_thread_limit > 0 && t_thread_limit < n ? t_thread_limit : n;
}

void set_thread_limit(int64_t n) {
  if (n < 0 || n > kMaxThreads)
    throw std::invalid_argument("set_thread_limit: n must be in [0, " + std::to_string(kMaxThreads) + "], got n=" +
                                std::to_string(n));
  t_thread_limit = static_cast<int>(n);
}

int get_thread_limit() { return t_thread_limit; }

void set_flush_denormals(bool flush) { g_flush_denormals.store(flush, std::memory_order_relaxed); }
bool get_flush_denormals() { return g_flush_denormals.load(std::memory_order_relaxed); }

WorkspaceUsage workspace_usage() {
  const detail::WorkspaceStats stats = detail::workspace_stats();
  return {stats.live_bytes, stats.peak_bytes};
}

void reset_workspace_peak() {
  note_count(process_threads());
  detail::release_workspace(g_most_threads.load(std::memory_order_relaxed));
}

double measure_peak_gflops(double seconds) {
  if (!(seconds > 0.0) || seconds > 60.0)
    throw std::invalid_argument("measure_peak_gflops: seconds must be in (0, 60], got " + std::to_string(seconds));
  const detail::GemmKernel& kernel = detail::active_gemm_kernel();
  const int threads = get_num_threads();
  const int64_t chunk = 1 << 14;
  std::atomic<int64_t> rounds{0};
  float sink = 0.0f;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    int64_t mine = 0;
    while (std::chrono::duration<double>(clock::now() - start).count() < seconds) {
      sink += kernel.fma_probe(chunk);
      ++mine;
    }
    rounds += mine;
  }
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  volatile float keep = sink;  // the probe's result must be observable
  (void)keep;
  return static_cast<double>(rounds.load()) * chunk * kernel.fma_probe_flops_per_iter / elapsed * 1e-9;
}

}  // namespace pyconvx
