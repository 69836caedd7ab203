// Bilinear sampling: portable, baseline flags only (four lanes, gathered one by one).
#include "bilinear_impl.hpp"

namespace pyconvx::detail {

void bilinear_rows_generic(const SampleRows& s, int64_t row_begin, int64_t row_end) {
  bilinear_rows_vl<4, ScalarGather<4>>(s, row_begin, row_end);
}

}  // namespace pyconvx::detail
