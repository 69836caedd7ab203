// Algorithm choice by measurement, and the process-wide setting that turns it on (runtime.hpp).
#include "autotune.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../core/float_mode.hpp"
#include "autotune_cache.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

// PYCONVX_AUTOTUNE=0 (or "off", "false") turns measuring off from the start; set_autotune later.
bool autotune_from_environment() {
  const char* value = std::getenv("PYCONVX_AUTOTUNE");
  if (value == nullptr) return true;
  return !detail::turns_off(value);
}

std::atomic<bool> g_autotune{autotune_from_environment()};

}  // namespace

void set_autotune(bool on) { g_autotune.store(on); }
bool get_autotune() { return g_autotune.load(); }

namespace detail {
namespace {

double seconds_of_run(const PreparedConv& prepared, const Conv2dProblem& pr, const float* x, const ConvOutput& out) {
  const auto start = std::chrono::steady_clock::now();
  run_conv(prepared, pr, x, out);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The prepared weights of every candidate are held at once (so that their runs can take turns)
// up to this many bytes; a layer past it (VGG's fc6 as a convolution: 400 MiB a candidate) times
// one candidate after another.
constexpr int64_t kTurnsBytes = int64_t{256} << 20;

}  // namespace

std::vector<ConvAlgorithm> candidate_algorithms(const Conv2dProblem& pr) {
  std::vector<ConvAlgorithm> candidates{choose_conv_algorithm(pr)};
  for (ConvAlgorithm a : conv_algorithms())
    if (a != ConvAlgorithm::automatic && a != candidates[0] && conv_algorithm_unsupported_reason(pr, a).empty())
      candidates.push_back(a);
  return candidates;
}

std::vector<std::pair<ConvAlgorithm, double>> time_candidates(const Conv2dProblem& pr, const float* weight,
                                                              const float* bias) {
  // Inputs drawn from a fixed pattern in [-1, 1): every algorithm's time on finite data.
  AlignedBuffer x(pr.x.numel()), y(pr.y().numel());
  for (int64_t i = 0; i < pr.x.numel(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 2001) / 1000.0f - 1.0f;
  const ConvOutput out{y.data(), pr.k() * pr.p * pr.q, false, Activation::none};
  const std::vector<ConvAlgorithm> candidates = candidate_algorithms(pr);
  // Each candidate prepared as the plan keeps it (Winograd's filters transformed once), run once
  // to warm up (scratch allocated, pages touched, caches filled), then timed in three rounds
  // that take turns, the best of each candidate's kept: on a shared machine, whose speed drifts
  // by 10-30% over a second, a slow spell then slows every candidate alike instead of one. A run
  // over 50 ms says enough in one round.
  std::vector<std::unique_ptr<PreparedConv>> prepared;
  int64_t held = 0;
  for (ConvAlgorithm candidate : candidates) {
    if (held > kTurnsBytes) break;
    prepared.push_back(std::make_unique<PreparedConv>());
    prepare_conv(pr, candidate, weight, bias, true, prepared.back().get());
    held += prepared.back()->model_bytes();
  }
  std::vector<std::pair<ConvAlgorithm, double>> times;
  if (held > kTurnsBytes) {  // one candidate at a time
    prepared.clear();
    for (ConvAlgorithm candidate : candidates) {
      PreparedConv one;
      prepare_conv(pr, candidate, weight, bias, true, &one);
      run_conv(one, pr, x.data(), out);
      double best = seconds_of_run(one, pr, x.data(), out);
      for (int round = 1; round < 3 && best < 0.05; ++round) best = std::min(best, seconds_of_run(one, pr, x.data(), out));
      times.emplace_back(candidate, best);
    }
    return times;
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    run_conv(*prepared[i], pr, x.data(), out);
    times.emplace_back(candidates[i], seconds_of_run(*prepared[i], pr, x.data(), out));
  }
  bool long_runs = false;
  for (const auto& entry : times) long_runs = long_runs || entry.second > 0.05;
  for (int round = 1; round < 3 && !long_runs; ++round)
    for (size_t i = 0; i < candidates.size(); ++i)
      times[i].second = std::min(times[i].second, seconds_of_run(*prepared[i], pr, x.data(), out));
  return times;
}

std::unique_ptr<PreparedConv> prepare_fastest(const Conv2dProblem& pr, const float* weight, const float* bias) {
  const std::string key = autotune_key(pr);
  const std::vector<ConvAlgorithm> candidates = candidate_algorithms(pr);
  ConvAlgorithm chosen = remembered_algorithm(key);
  if (chosen != ConvAlgorithm::automatic && std::find(candidates.begin(), candidates.end(), chosen) == candidates.end()) {
    forget_algorithm(key, chosen);
    chosen = ConvAlgorithm::automatic;
  }
  count_autotune(chosen == ConvAlgorithm::automatic);
  if (chosen == ConvAlgorithm::automatic) {
    chosen = candidates[0];
    if (candidates.size() > 1) {
      double fastest = 0.0;
      for (const auto& [candidate, seconds] : time_candidates(pr, weight, bias))
        if (candidate == candidates[0] || seconds < fastest) {
          fastest = seconds;
          chosen = candidate;
        }
    }
    remember_algorithm(key, chosen);
  }
  auto prepared = std::make_unique<PreparedConv>();
  prepare_conv(pr, chosen, weight, bias, true, prepared.get());
  return prepared;
}

}  // namespace detail

std::vector<std::pair<ConvAlgorithm, double>> measure_conv_algorithms(const Conv2dProblem& pr, const float* weight,
                                                                     const float* bias) {
  const detail::FloatModeScope caller_mode;
  check_problem(pr, "measure_conv_algorithms");
  check_data(weight, pr.weight.numel(), "weight", "measure_conv_algorithms");
  if (pr.x.n == 0) return {};
  return detail::time_candidates(pr, weight, bias);
}

}  // namespace pyconvx
