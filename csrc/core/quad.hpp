// Four-float vectors for the portable translation units (internal).
//
// Code outside the per-ISA micro-kernels is compiled for the baseline instruction set, whose
// vectors hold four floats (SSE on x86-64, NEON on ARM): GCC keeps Quad values in registers,
// where wider generic vectors would live on the stack. Loads and stores go through an unaligned,
// may_alias view: a memcpy into a vector made GCC keep it in memory.
#pragma once

#include <cstdint>

namespace pyconvx::detail {

typedef float Quad __attribute__((vector_size(4 * sizeof(float))));
typedef int QuadIndex __attribute__((vector_size(4 * sizeof(int))));
typedef float UnalignedQuad __attribute__((vector_size(4 * sizeof(float)), aligned(4), may_alias));

inline Quad load_quad(const float* p) { return *reinterpret_cast<const UnalignedQuad*>(p); }
inline void store_quad(float* p, Quad v) { *reinterpret_cast<UnalignedQuad*>(p) = v; }

// Transposes the 4 x 4 matrix whose rows are v[0..3]: eight shuffles.
inline void transpose_quads(Quad* v) {
  const Quad lo01 = __builtin_shuffle(v[0], v[1], QuadIndex{0, 4, 1, 5});
  const Quad hi01 = __builtin_shuffle(v[0], v[1], QuadIndex{2, 6, 3, 7});
  const Quad lo23 = __builtin_shuffle(v[2], v[3], QuadIndex{0, 4, 1, 5});
  const Quad hi23 = __builtin_shuffle(v[2], v[3], QuadIndex{2, 6, 3, 7});
  v[0] = __builtin_shuffle(lo01, lo23, QuadIndex{0, 1, 4, 5});
  v[1] = __builtin_shuffle(lo01, lo23, QuadIndex{2, 3, 6, 7});
  v[2] = __builtin_shuffle(hi01, hi23, QuadIndex{0, 1, 4, 5});
  v[3] = __builtin_shuffle(hi01, hi23, QuadIndex{2, 3, 6, 7});
}

// Sums x[0, n) four lanes wide, sixteen floats a step in four independent vectors (one
// accumulator would chain every addition on the previous one, 3-4 cycles each), then four at a
// time; returns the lanes, the values from *done on are left to the caller. The order is fixed,
// so results repeat run to run.
inline Quad sum_lanes(const float* x, int64_t n, int64_t* done) {
  Quad a0{}, a1{}, a2{}, a3{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 += load_quad(x + i);
    a1 += load_quad(x + i + 4);
    a2 += load_quad(x + i + 8);
    a3 += load_quad(x + i + 12);
  }
  for (; i + 4 <= n; i += 4) a0 += load_quad(x + i);
  *done = i;
  return (a0 + a1) + (a2 + a3);
}

}  // namespace pyconvx::detail
