// Denormal flushing around the kernels: the calling thread's scope and the OpenMP regions' copies.
#include "float_mode.hpp"

#include "pyconvx/runtime.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define PYCONVX_HAVE_MXCSR 1
#endif

namespace pyconvx::detail {
namespace {

#if defined(PYCONVX_HAVE_MXCSR)
constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
unsigned get_mode() { return _mm_getcsr(); }
void set_mode(unsigned mode) { _mm_setcsr(mode); }
#else
constexpr unsigned kFlushToZero = 0, kDenormalsAreZero = 0;
unsigned get_mode() { return 0; }
void set_mode(unsigned) {}
#endif
constexpr unsigned kFlushing = kFlushToZero | kDenormalsAreZero;

thread_local int t_flushing_calls = 0;  // FloatModeScopes of this thread that flush
thread_local unsigned t_caller_mode = 0;  // this thread's mode before the outermost of them

}  // namespace

FloatModeScope::FloatModeScope() : flush_(t_flushing_calls > 0 || get_flush_denormals()) {
  if (!flush_) return;
  if (t_flushing_calls++ == 0) {
    t_caller_mode = get_mode();
    set_mode(t_caller_mode | kFlushing);
  }
}

FloatModeScope::~FloatModeScope() {
  if (flush_ && --t_flushing_calls == 0) set_mode(t_caller_mode);
}

RegionFloatMode::RegionFloatMode() : flush_(t_flushing_calls > 0) {
  if (!flush_) return;
  saved_ = get_mode();
  changed_ = saved_ != t_caller_mode;
  if (changed_) set_mode(t_caller_mode);
}

RegionFloatMode::RegionFloatMode(const RegionFloatMode& original) : flush_(original.flush_) {
  if (!flush_) return;
  saved_ = get_mode();
  changed_ = (saved_ | kFlushing) != saved_;
  if (changed_) set_mode(saved_ | kFlushing);
}

RegionFloatMode::~RegionFloatMode() {
  if (changed_) set_mode(saved_);
}

}  // namespace pyconvx::detail
