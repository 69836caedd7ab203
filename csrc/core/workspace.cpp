#include "workspace.hpp"

#include <cstdlib>
#include <new>

namespace pyconvx::detail {

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

void AlignedBuffer::resize(int64_t count) {
  if (count <= size_) return;
  std::free(data_);
  data_ = nullptr;
  size_ = 0;
  const size_t bytes = static_cast<size_t>(round_up(count * static_cast<int64_t>(sizeof(float)), 64));
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (data_ == nullptr) throw std::bad_alloc();
  size_ = count;
}

float* thread_scratch(int slot, int64_t count) {
  thread_local AlignedBuffer buffers[3];
  buffers[slot].resize(count);
  return buffers[slot].data();
}

}  // namespace pyconvx::detail
