#include "workspace.hpp"

#include <omp.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace pyconvx::detail {
namespace {

std::atomic<int64_t> g_live{0}, g_peak{0};

int64_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : INT64_MAX;
}

std::atomic<int64_t> g_limit{physical_memory()};

// Allocators set so far, never freed: a buffer keeps a pointer to the one that made it.
std::mutex g_allocators_mutex;
std::deque<WorkspaceAllocator> g_allocators;
std::atomic<const WorkspaceAllocator*> g_allocator{nullptr};

void account(int64_t bytes) {
  const int64_t live = g_live.fetch_add(bytes) + bytes;
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
}

thread_local AlignedBuffer t_scratch[4];

}  // namespace

AlignedBuffer::~AlignedBuffer() { release(); }

void AlignedBuffer::release() {
  if (data_ == nullptr) return;
  const int64_t bytes = scratch_bytes(size_);
  if (allocator_)
    allocator_->release(data_, bytes, allocator_->user);
  else
    std::free(data_);
  if (scratch_) account(-bytes);
  allocator_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

void AlignedBuffer::resize(int64_t count) {
  if (count <= size_) return;
  release();
  if (!scratch_) {
    data_ = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(scratch_bytes(count))));
    if (data_ == nullptr) throw std::bad_alloc();
    size_ = count;
    return;
  }
  const int64_t bytes = scratch_bytes(count), live = g_live.load(), limit = g_limit.load();
  if (bytes > limit - live)
    throw WorkspaceLimitError("pyconvx: the kernels' scratch memory would pass its limit: " + std::to_string(bytes) +
                              " bytes requested, " + std::to_string(live) + " held, limit " + std::to_string(limit) +
                              " bytes (set_workspace_limit)");
  allocator_ = g_allocator.load();
  data_ = static_cast<float*>(allocator_ ? allocator_->allocate(bytes, allocator_->user)
                                         : std::aligned_alloc(64, static_cast<size_t>(bytes)));
  if (data_ == nullptr) throw std::bad_alloc();
  const auto address = reinterpret_cast<std::uintptr_t>(data_);
  if (address % 64 != 0) {
    allocator_->release(data_, bytes, allocator_->user);
    data_ = nullptr;
    throw std::invalid_argument("set_workspace_allocator: allocate must return 64-byte aligned memory, got address " +
                                std::to_string(address));
  }
  size_ = count;
  account(bytes);
}

float* thread_scratch(int slot, int64_t count) {
  t_scratch[slot].resize(count);
  return t_scratch[slot].data();
}

WorkspaceStats workspace_stats() { return {g_live.load(), g_peak.load()}; }

void release_workspace(int threads) {
#pragma omp parallel num_threads(threads)
  for (AlignedBuffer& buffer : t_scratch) buffer.release();
  for (AlignedBuffer& buffer : t_scratch) buffer.release();  // the calling thread's, if not in the team
  g_peak.store(g_live.load());
}

}  // namespace pyconvx::detail

namespace pyconvx {

void set_workspace_limit(int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("set_workspace_limit: bytes must be >= 0, got bytes=" + std::to_string(bytes));
  detail::g_limit.store(bytes);
}

int64_t get_workspace_limit() { return detail::g_limit.load(); }

void set_workspace_allocator(const WorkspaceAllocator& allocator) {
  if (allocator.allocate == nullptr || allocator.release == nullptr)
    throw std::invalid_argument("set_workspace_allocator: allocate and release must both be set");
  std::lock_guard<std::mutex> lock(detail::g_allocators_mutex);
  detail::g_allocators.push_back(allocator);
  detail::g_allocator.store(&detail::g_allocators.back());
}

void reset_workspace_allocator() { detail::g_allocator.store(nullptr); }

}  // namespace pyconvx
