// Stores that bypass the caches, for outputs too large to stay in them (internal).
//
// A plain store to a line that is not cached first reads the line (read for ownership), so an
// output far larger than the caches crosses the memory bus twice. A non-temporal store writes
// whole lines without reading them. Writing 25 MiB on both cores of the benchmark machine took
// 31 GB/s streamed against 14-17 GB/s stored plainly; up to 16 MiB plain stores were as fast
// or faster (35-65 GB/s), and they leave the lines cached for whatever reads them next.
#pragma once

#include <cstdint>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "quad.hpp"

namespace pyconvx::detail {

// Whether an output of `floats` values is written with streaming stores.
inline bool stream_output(int64_t floats) { return floats * int64_t{sizeof(float)} > (int64_t{16} << 20); }

// p must be 16-byte aligned; elsewhere than x86 a plain store.
inline void stream_quad(float* p, Quad v) {
#if defined(__SSE__)
  _mm_stream_ps(p, reinterpret_cast<__m128>(v));
#else
  store_quad(p, v);
#endif
}

// Streaming stores are weakly ordered: each thread fences its own before others read the output.
inline void streaming_fence() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}

}  // namespace pyconvx::detail
