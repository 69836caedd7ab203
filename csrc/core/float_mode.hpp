// Denormal flushing around the kernels (internal).
//
// CPUs that take microcode assists on denormal operands (Intel's, for multiplications and FMAs)
// run a layer of denormal inputs 30-120x slower. While the kernels compute, their threads
// flush denormals instead (set_flush_denormals, on by default): results below float32's
// smallest normal become zero (FTZ) and such inputs read as zero (DAZ). Every thread gets its
// own mode back afterwards, so the caller's arithmetic (NumPy's, say) keeps IEEE denormals.
// Only x86's MXCSR is set; elsewhere these classes do nothing.
#pragma once

namespace pyconvx::detail {

// Held by each public entry point for the calling thread, for the whole call (the serial work
// it does itself). Nested calls keep the outermost's decision.
class FloatModeScope {
 public:
  FloatModeScope();
  ~FloatModeScope();
  FloatModeScope(const FloatModeScope&) = delete;
  FloatModeScope& operator=(const FloatModeScope&) = delete;

 private:
  bool flush_;
};

// Listed in the firstprivate clause of every OpenMP region, which copy-constructs it in each
// thread of the team and destroys the copies when the region ends: each copy flushes its thread
// for the region (when the call flushes), then restores the thread's mode. The original, made
// by the calling thread just before the region, returns that thread to the caller's own mode
// while the region starts, because a thread the OpenMP runtime starts for it inherits the mode
// of the thread starting it and would otherwise keep flushing after the call. The calling thread
// stays in the caller's mode after the region too, until the original dies: declare it just
// before its region, in a scope where nothing but the region's own follow-up (a rethrow, another
// region listing the same original) comes after it.
class RegionFloatMode {
 public:
  RegionFloatMode();
  RegionFloatMode(const RegionFloatMode& original);
  ~RegionFloatMode();
  RegionFloatMode& operator=(const RegionFloatMode&) = delete;

 private:
  bool flush_;
  bool changed_ = false;
  unsigned saved_ = 0;
};

}  // namespace pyconvx::detail
