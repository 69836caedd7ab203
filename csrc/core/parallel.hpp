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

// Threads worth waking for `work` elements of streaming work: below about 128K elements per
// thread (tens of microseconds) waking a second thread costs more than it saves, and far more
// when the other core is busy and the woken thread must wait to be scheduled.
inline int threads_for(int64_t work, int threads) {
  constexpr int64_t kGrain = int64_t{1} << 17;
  const int64_t useful = work / kGrain;
  return static_cast<int>(useful < 1 ? 1 : (useful < threads ? useful : threads));
}

// Splits [0, count) into `parts` contiguous ranges of whole `unit`s; returns part `index`.
inline void split_range(int64_t count, int64_t unit, int parts, int index, int64_t* begin, int64_t* end) {
  const int64_t units = (count + unit - 1) / unit;
  const int64_t lo = units * index / parts, hi = units * (index + 1) / parts;
  *begin = lo * unit < count ? lo * unit : count;
  *end = hi * unit < count ? hi * unit : count;
}

}  // namespace pyconvx::detail
