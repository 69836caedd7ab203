// InferencePlan: a compiled network and the arenas its runs use.
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>

#include "../core/float_mode.hpp"
#include "../tune/autotune_cache.hpp"
#include "compile.hpp"
#include "pyconvx/plan.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {

struct InferencePlan::Impl {
  detail::CompiledNetwork compiled;
  int64_t max_batch = 0;
  // Arenas of finished runs, for the next ones: one per run in progress at most.
  mutable std::mutex mutex;
  mutable std::vector<std::unique_ptr<detail::AlignedBuffer>> idle;

  std::unique_ptr<detail::AlignedBuffer> take_arena() const {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        auto arena = std::move(idle.back());
        idle.pop_back();
        return arena;
      }
    }
    auto arena = std::make_unique<detail::AlignedBuffer>();
    arena->make_model_memory();
    arena->resize(std::max<int64_t>(compiled.arena_floats, 16));
    return arena;
  }
  void give_back(std::unique_ptr<detail::AlignedBuffer> arena) const {
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(arena));
  }
};

InferencePlan::InferencePlan(const Network& network, int64_t max_batch) : impl_(std::make_unique<Impl>()) {
  if (max_batch < 1)
    throw std::invalid_argument("InferencePlan: max_batch must be >= 1, got max_batch=" + std::to_string(max_batch));
  const detail::FloatModeScope caller_mode;  // for the weight preparation this thread does itself
  impl_->max_batch = max_batch;
  impl_->compiled = detail::compile_network(network.impl(), max_batch, get_autotune());
  detail::flush_autotune_cache();  // what this plan measured, for the next process
}

InferencePlan::~InferencePlan() = default;

void InferencePlan::run(int64_t n, const float* const* inputs, float* const* outputs,
                        std::vector<double>* step_seconds) const {
  const detail::FloatModeScope caller_mode;  // for the work this thread does itself
  const detail::CompiledNetwork& c = impl_->compiled;
  if (n < 0 || n > impl_->max_batch)
    throw std::invalid_argument("InferencePlan.run: n must be in [0, " + std::to_string(impl_->max_batch) +
                                "] (the plan's batch), got n=" + std::to_string(n));
  if (n == 0) return;
  if (inputs == nullptr || outputs == nullptr)
    throw std::invalid_argument("InferencePlan.run: inputs and outputs must not be null");
  for (size_t i = 0; i < c.input_shapes.size(); ++i)
    check_data(inputs[i], 1, ("inputs[" + std::to_string(i) + "]").c_str(), "InferencePlan.run");
  for (size_t i = 0; i < c.output_shapes.size(); ++i)
    check_data(outputs[i], 1, ("outputs[" + std::to_string(i) + "]").c_str(), "InferencePlan.run");
  std::unique_ptr<detail::AlignedBuffer> arena = impl_->take_arena();
  struct GiveBack {
    const Impl& plan;
    std::unique_ptr<detail::AlignedBuffer>& arena;
    ~GiveBack() { plan.give_back(std::move(arena)); }
  } give_back{*impl_, arena};
  const detail::RunContext ctx{arena->data(), &c.buffer_offsets, inputs, outputs, &c.places};
  if (step_seconds == nullptr) {
    for (const auto& step : c.steps) step->run(ctx, n);
    return;
  }
  step_seconds->clear();
  for (const auto& step : c.steps) {
    const auto start = std::chrono::steady_clock::now();
    step->run(ctx, n);
    step_seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

int64_t InferencePlan::max_batch() const { return impl_->max_batch; }

const std::vector<std::vector<int64_t>>& InferencePlan::input_shapes() const { return impl_->compiled.input_shapes; }

const std::vector<std::vector<int64_t>>& InferencePlan::output_shapes() const {
  return impl_->compiled.output_shapes;
}

int64_t InferencePlan::weight_bytes() const {
  int64_t bytes = 0;
  for (const auto& step : impl_->compiled.steps) bytes += step->weight_bytes();
  return bytes;
}

int64_t InferencePlan::arena_bytes() const {
  return detail::scratch_bytes(impl_->compiled.arena_floats);
}

std::string InferencePlan::describe() const {
  std::string s;
  for (const auto& step : impl_->compiled.steps) s += step->what + "\n";
  return s;
}

}  // namespace pyconvx
