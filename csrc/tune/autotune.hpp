// Algorithm choice by measurement (internal): an inference plan's convolution times every
// algorithm that can compute it, on its own shapes and thread count, and keeps the fastest.
#pragma once

#include <memory>
#include <vector>

#include "../conv/algorithms.hpp"

namespace pyconvx::detail {

// The algorithms that can compute the problem, the heuristic's choice (choose_conv_algorithm)
// first.
std::vector<ConvAlgorithm> candidate_algorithms(const Conv2dProblem& problem);

// Each candidate prepared as a plan keeps it and timed on random data of the problem's batch:
// once to warm up, then the best of three runs taken in turns with the other candidates (one for
// runs over 50 ms), in seconds.
std::vector<std::pair<ConvAlgorithm, double>> time_candidates(const Conv2dProblem& problem, const float* weight,
                                                              const float* bias);

// The weights prepared (to be kept) for the fastest candidate (time_candidates). The choice is
// remembered by shapes, parameters and thread count, for the process and in the autotune cache
// file (autotune_cache.hpp), so that rebuilding a plan, or building it in another process, times
// nothing.
std::unique_ptr<PreparedConv> prepare_fastest(const Conv2dProblem& problem, const float* weight, const float* bias);

}  // namespace pyconvx::detail
