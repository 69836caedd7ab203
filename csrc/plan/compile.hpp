// Compiling a Network into the steps of an inference plan (internal).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "network.hpp"
#include "steps.hpp"

namespace pyconvx::detail {

struct CompiledNetwork {
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<Place> places;            // by value: the network's layers, then the copied outputs
  std::vector<int64_t> buffer_offsets;  // floats into the arena, by buffer
  int64_t arena_floats = 0;             // for the plan's batch
  std::vector<std::vector<int64_t>> input_shapes, output_shapes;
};

// 1. Fusion: a batch normalisation folds into the convolution or dense layer before it, an
//    activation into the convolution, addition or batch normalisation before it, and an
//    addition into one of the convolutions feeding it (which accumulates onto the others), where
//    the value in between feeds nothing else and is not an output.
// 2. Placement: outputs are written straight into the caller's arrays; a convolution (or a
//    concatenation) feeding only a concatenation along channels writes its slice of it; an
//    element-wise step, or a convolution adding a residual, takes over the buffer of an input
//    that dies with it; every other value gets a buffer of its own.
// 3. The arena: buffers whose lives do not overlap share memory, placed largest first at the
//    lowest offset free for their whole life.
// With autotune, each convolution takes the algorithm measured fastest (tune/autotune.hpp).
CompiledNetwork compile_network(const Network::Impl& network, int64_t max_batch, bool autotune);

}  // namespace pyconvx::detail
