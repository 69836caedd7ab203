// Helpers for OpenMP regions (internal).
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>

namespace pyconvx::detail {

// An exception may not leave an OpenMP region (the runtime would terminate the process), so a
// region runs its body through capture() and the caller rethrows the first failure afterwards.
class ParallelExceptions {
 public:
  template <class Body>
  void capture(Body&& body) {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
};

// Splits [0, count) into `parts` contiguous ranges of whole `unit`s; returns part `index`.
inline void split_range(int64_t count, int64_t unit, int parts, int index, int64_t* begin, int64_t* end) {
  const int64_t units = (count + unit - 1) / unit;
  const int64_t lo = units * index / parts, hi = units * (index + 1) / parts;
  *begin = lo * unit < count ? lo * unit : count;
  *end = hi * unit < count ? hi * unit : count;
}

}  // namespace pyconvx::detail
