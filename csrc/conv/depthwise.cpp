// Depthwise convolution (groups = C: each input channel feeds K / C filters of its own), directly.
//
// A depthwise layer does R * S multiply-adds per output and reads each input once, so it is
// bound by memory, not by FMAs; as GEMMs its groups would have one row each, five sixths of every
// register tile wasted. Here each task zero-pads one input plane into scratch (a few KiB: it
// stays in L1 or L2), then sweeps each output row in runs of 16 values that stay in registers
// across all R * S taps: one load of the input per tap, one store per output.
#include <omp.h>

#include <algorithm>

#include "../core/float_mode.hpp"
#include "../core/parallel.hpp"
#include "../core/quad.hpp"
#include "../core/workspace.hpp"
#include "../nn/pointwise_impl.hpp"
#include "algorithms.hpp"
#include "band.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx::detail {
namespace {

// Outputs per register run: four vectors of four lanes (quad.hpp).
constexpr int64_t kLanes = 4, kRun = 4 * kLanes;
typedef Quad Lanes;

// The zero-padded plane that the outputs read: `rows` x `cols` values in rows of `ld` floats, so
// that a run of kRun outputs at the right edge may read a full run (what it reads past `cols`
// only feeds outputs past Q, which are dropped).
struct PaddedPlane {
  int64_t rows, cols, ld;
  explicit PaddedPlane(const Conv2dProblem& pr)
      : rows((pr.p - 1) * pr.params.stride_h + (pr.r() - 1) * pr.params.dilation_h + 1),
        cols((pr.q - 1) * pr.params.stride_w + (pr.s() - 1) * pr.params.dilation_w + 1),
        ld(cols + kRun * pr.params.stride_w) {}
  int64_t size() const { return rows * ld; }

  // Copies `plane` (H x W) into `dst` behind pad_top rows and pad_left columns of zeros.
  void fill(const Conv2dProblem& pr, const float* plane, float* dst) const {
    copy_padded_rows(plane, 1, pr.x.h, pr.x.w, -pr.params.pad_top, rows, pr.params.pad_left, ld, dst);
  }
};

// Lanes j of `v` are src[j * step] (a plain vector load when step is 1).
template <bool Unit>
inline void load_lanes(Lanes& v, const float* src, int64_t step) {
  if (Unit) {
    v = load_quad(src);
  } else {
    for (int64_t j = 0; j < kLanes; ++j) v[j] = src[j * step];
  }
}

// The taps of a filter: R x S at dilation (dh, dw), over input rows `ld` floats long, at stride
// sw along a row. KR and KS fix R and S at compile time (0: read them at run time), so the 3x3
// case runs fully unrolled.
struct Taps {
  int64_t r, s, dh, dw, sw, ld;
};

// What happens to a run of outputs after the taps: the residual already in `out` added (when
// accumulating) and the activation.
struct RunEpilogue {
  bool accumulate;
  Activation activation;
};

// Outputs j < count (<= kRun) of one row: bias + the sum over taps (r, s) of
// w[r, s] * in[r * dh * ld + s * dw + j * sw], all kRun of them kept in registers. Padded past
// its right edge, the plane can always be read for a full run.
// Not inlined: alone, the function keeps its accumulators in registers; inlined into the
// parallel loop, GCC spilled them to the stack and each tap paid a load and a store per vector.
template <bool Unit, int KR, int KS>
__attribute__((noinline)) void output_run(const float* in, const float* w, const Taps taps, float bias,
                                          RunEpilogue epilogue, float* out, int64_t count) {
  const int64_t R = KR ? KR : taps.r, S = KS ? KS : taps.s, sw = Unit ? 1 : taps.sw;
  // Four named accumulators rather than an array: GCC keeps these in registers.
  Lanes acc0 = Lanes{bias, bias, bias, bias}, acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s) {
      const float* src = in + r * taps.dh * taps.ld + s * taps.dw;
      const Lanes wv = Lanes{} + w[r * S + s];
      Lanes a0, a1, a2, a3;
      load_lanes<Unit>(a0, src, sw);
      load_lanes<Unit>(a1, src + kLanes * sw, sw);
      load_lanes<Unit>(a2, src + 2 * kLanes * sw, sw);
      load_lanes<Unit>(a3, src + 3 * kLanes * sw, sw);
      acc0 += wv * a0;
      acc1 += wv * a1;
      acc2 += wv * a2;
      acc3 += wv * a3;
    }
  float tmp[kRun];
  float* dst = count == kRun ? out : tmp;
  if (epilogue.accumulate) {
    if (count < kRun)
      for (int64_t j = 0; j < kRun; ++j) tmp[j] = j < count ? out[j] : 0.0f;
    acc0 += load_quad(dst);
    acc1 += load_quad(dst + kLanes);
    acc2 += load_quad(dst + 2 * kLanes);
    acc3 += load_quad(dst + 3 * kLanes);
  }
  const Activation act = epilogue.activation;
  store_quad(dst, activate<kLanes>(acc0, act));
  store_quad(dst + kLanes, activate<kLanes>(acc1, act));
  store_quad(dst + 2 * kLanes, activate<kLanes>(acc2, act));
  store_quad(dst + 3 * kLanes, activate<kLanes>(acc3, act));
  if (count < kRun)
    for (int64_t j = 0; j < count; ++j) out[j] = tmp[j];
}

template <bool Unit, int KR, int KS>
void output_plane(const Conv2dProblem& pr, const Taps& taps, const float* in, const float* w, float bias,
                  RunEpilogue epilogue, float* out) {
  const int64_t P = pr.p, Q = pr.q;
  for (int64_t p = 0; p < P; ++p) {
    const float* row = in + p * pr.params.stride_h * taps.ld;
    for (int64_t q = 0; q < Q; q += kRun)
      output_run<Unit, KR, KS>(row + q * taps.sw, w, taps, bias, epilogue, out + p * Q + q, std::min(kRun, Q - q));
  }
}

using OutputPlane = void (*)(const Conv2dProblem&, const Taps&, const float*, const float*, float, RunEpilogue,
                             float*);

OutputPlane output_plane_for(const Taps& taps) {
  const bool k3x3 = taps.r == 3 && taps.s == 3;
  if (taps.sw == 1) return k3x3 ? output_plane<true, 3, 3> : output_plane<true, 0, 0>;
  return k3x3 ? output_plane<false, 3, 3> : output_plane<false, 0, 0>;
}

}  // namespace

void conv2d_depthwise(const Conv2dProblem& pr, const PreparedConv& prepared, const float* x,
                      const ConvOutput& out) {
  const Conv2dParams& cp = pr.params;
  const int64_t C = pr.x.c, M = pr.k_per_group(), RS = pr.r() * pr.s(), PQ = pr.p * pr.q;
  const int64_t planes = pr.x.n * C;
  const PaddedPlane padded(pr);
  const Taps taps{pr.r(), pr.s(), cp.dilation_h, cp.dilation_w, cp.stride_w, padded.ld};
  const OutputPlane output = output_plane_for(taps);
  const RunEpilogue epilogue{out.accumulate, out.activation};
  const float* const weight = prepared.weights;
  const float* const bias = prepared.bias;
  const int threads = conv_threads(pr);

  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic, 4) num_threads(threads)
  for (int64_t t = 0; t < planes; ++t) {
    errors.capture([&] {
      const int64_t n = t / C, c = t % C;
      float* in = thread_scratch(0, padded.size());
      padded.fill(pr, x + t * pr.x.h * pr.x.w, in);
      for (int64_t k = c * M; k < (c + 1) * M; ++k)
        output(pr, taps, in, weight + k * RS, bias ? bias[k] : 0.0f, epilogue, out.image(n) + k * PQ);
    });
  }
  errors.rethrow();
}

void conv2d_depthwise_grad_weight(const Conv2dProblem& pr, const float* grad_y, const float* x, float* grad_weight) {
  const Conv2dParams& cp = pr.params;
  const int64_t N = pr.x.n, C = pr.x.c, M = pr.k_per_group(), R = pr.r(), S = pr.s(), P = pr.p, Q = pr.q;
  const PaddedPlane padded(pr);
  const int threads = conv_threads(pr);

  // By channel: each thread owns whole filters and sums their images in order, so the result
  // does not depend on the thread count. Each tap is a dot product of the output gradient with
  // a shifted view of the padded plane: eight lanes per image, then summed in double.
  ParallelExceptions errors;
  detail::RegionFloatMode float_mode;
#pragma omp parallel for firstprivate(float_mode) schedule(dynamic) num_threads(threads)
  for (int64_t c = 0; c < C; ++c) {
    errors.capture([&] {
      float* in = thread_scratch(0, padded.size());
      double* sums = reinterpret_cast<double*>(thread_scratch(1, 2 * M * R * S));
      std::fill(sums, sums + M * R * S, 0.0);
      for (int64_t n = 0; n < N; ++n) {
        padded.fill(pr, x + (n * C + c) * pr.x.h * pr.x.w, in);
        for (int64_t k = c * M; k < (c + 1) * M; ++k) {
          const float* gy = grad_y + (n * pr.k() + k) * P * Q;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s) {
              const float* base = in + r * cp.dilation_h * padded.ld + s * cp.dilation_w;
              Lanes acc = Lanes{};
              float tail = 0.0f;
              for (int64_t p = 0; p < P; ++p) {
                const float* row = base + p * cp.stride_h * padded.ld;
                const float* g = gy + p * Q;
                int64_t q = 0;
                for (; q + kLanes <= Q; q += kLanes) {
                  Lanes gv, xv;
                  load_lanes<true>(gv, g + q, 1);
                  if (cp.stride_w == 1)
                    load_lanes<true>(xv, row + q, 1);
                  else
                    load_lanes<false>(xv, row + q * cp.stride_w, cp.stride_w);
                  acc += gv * xv;
                }
                for (; q < Q; ++q) tail += g[q] * row[q * cp.stride_w];
              }
              double total = tail;
              for (int64_t j = 0; j < kLanes; ++j) total += acc[j];
              sums[((k - c * M) * R + r) * S + s] += total;
            }
        }
      }
      for (int64_t i = 0; i < M * R * S; ++i) grad_weight[c * M * R * S + i] = static_cast<float>(sums[i]);
    });
  }
  errors.rethrow();
}

int64_t depthwise_workspace_bytes(const Conv2dProblem& pr) {
  return conv_threads(pr) * scratch_bytes(PaddedPlane(pr).size());
}

}  // namespace pyconvx::detail
