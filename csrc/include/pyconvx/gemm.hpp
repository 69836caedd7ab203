// Single-precision matrix multiplication.
#pragma once

#include <cstdint>

namespace pyconvx {

// C = op(A) * op(B) (+ C when accumulate), all row-major: op(A) is M x K, op(B) is K x N and C is
// M x N with leading dimension ldc. op transposes when trans_* is set, in which case the stored
// matrix is K x M (or N x K) with leading dimension lda (ldb). OpenMP-parallel over blocks of C.
// Throws std::invalid_argument for negative sizes or leading dimensions that are too small.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate = false);

}  // namespace pyconvx
