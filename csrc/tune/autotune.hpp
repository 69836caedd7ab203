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

// The weights prepared (to be kept) for the fastest candidate: each is prepared and run on
// random data of the problem's batch, once to warm up, then timed (the best of three runs, one
// for runs over 50 ms). The choice is remembered for the process by shapes, parameters, thread
// count and instruction set, so that rebuilding a plan (after its weights changed) times nothing.
std::unique_ptr<PreparedConv> prepare_fastest(const Conv2dProblem& problem, const float* weight, const float* bias);

}  // namespace pyconvx::detail
