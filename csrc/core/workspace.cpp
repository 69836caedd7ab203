#include "workspace.hpp"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace pyconvx::detail {
namespace {

std::atomic<int64_t> g_live{0}, g_peak{0};

void account(int64_t bytes) {
  const int64_t live = g_live.fetch_add(bytes) + bytes;
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
}

int64_t bytes_for(int64_t count) { return round_up(count * static_cast<int64_t>(sizeof(float)), 64); }

thread_local AlignedBuffer t_scratch[3];

}  // namespace

AlignedBuffer::~AlignedBuffer() { release(); }

void AlignedBuffer::release() {
  if (data_ == nullptr) return;
  std::free(data_);
  account(-bytes_for(size_));
  data_ = nullptr;
  size_ = 0;
}

void AlignedBuffer::resize(int64_t count) {
  if (count <= size_) return;
  release();
  const int64_t bytes = bytes_for(count);
  data_ = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(bytes)));
  if (data_ == nullptr) throw std::bad_alloc();
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
