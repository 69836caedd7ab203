// Aligned scratch memory (internal).
#pragma once

#include <cstddef>
#include <cstdint>

#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {

// A 64-byte-aligned float array owned by its creator. Scratch (the default) comes from the
// workspace allocator, within the workspace limit, and counts in the workspace statistics;
// model memory (an inference plan's prepared weights and activations, which live as long as the
// plan) comes from the heap and is reported by its owner instead.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(int64_t count, bool scratch = true) : scratch_(scratch) { resize(count); }
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  // Grows (never shrinks) to hold `count` floats; contents are not preserved.
  void resize(int64_t count);
  // Model memory from now on (see above); call while empty.
  void make_model_memory() { scratch_ = false; }
  bool is_model_memory() const { return !scratch_; }
  // Returns the memory.
  void release();
  float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
  const WorkspaceAllocator* allocator_ = nullptr;  // the one that made data_; null: the heap
  bool scratch_ = true;
};

// Per-thread scratch that lives as long as the thread, so the packing buffers of the OpenMP pool's
// threads are allocated once rather than on every call. Four slots, each used by one piece of
// code at a time: 0 for B panels (gemm_blocked), output tiles (direct convolution) or padded
// planes (depthwise); 1 for patch tiles, offset tables, tile buffers or gradient sums; 2 for
// packed A tiles or padded image bands; 3 for the flipped weights of a grad input computed as a
// convolution, held around the whole forward call that uses them. Some callers hold a slot of
// the calling thread for the whole call, around a parallel region whose threads take only the
// other slots: sgemm's packed A (slot 1), Winograd's transformed filters (slot 2) and, when its
// blocks are shared, its transformed tiles (slot 1). A caller must not hold two views of the
// same slot.
float* thread_scratch(int slot, int64_t count);

// Scratch memory accounting: every AlignedBuffer (thread scratch included) adds its bytes while
// it holds them, so the peak is the true high-water mark of the kernels' workspace.
struct WorkspaceStats {
  int64_t live_bytes, peak_bytes;
};
WorkspaceStats workspace_stats();
// Frees the calling thread pool's per-thread scratch (each of `threads` OpenMP threads frees its
// own) and restarts the peak at what is still live.
void release_workspace(int threads);

inline int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
// The bytes an AlignedBuffer of `count` floats holds (and the workspace statistics count).
inline int64_t scratch_bytes(int64_t count) { return round_up(count * static_cast<int64_t>(sizeof(float)), 64); }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace pyconvx::detail
