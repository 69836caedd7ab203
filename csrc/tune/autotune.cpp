// Algorithm choice by measurement, and the process-wide setting that turns it on (runtime.hpp).
#include "autotune.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "../core/float_mode.hpp"
#include "pyconvx/runtime.hpp"

namespace pyconvx {
namespace {

// PYCONVX_AUTOTUNE=0 (or "off", "false") turns measuring off from the start; set_autotune later.
bool autotune_from_environment() {
  const char* value = std::getenv("PYCONVX_AUTOTUNE");
  if (value == nullptr) return true;
  const std::string v(value);
  return !(v == "0" || v == "off" || v == "false" || v == "OFF" || v == "False");
}

std::atomic<bool> g_autotune{autotune_from_environment()};

}  // namespace

void set_autotune(bool on) { g_autotune.store(on); }
bool get_autotune() { return g_autotune.load(); }

namespace detail {
namespace {

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, std::string, int,
                       std::string>;

Key key_of(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  const std::string params = std::to_string(p.stride_h) + "," + std::to_string(p.stride_w) + "," +
                             std::to_string(p.pad_top) + "," + std::to_string(p.pad_bottom) + "," +
                             std::to_string(p.pad_left) + "," + std::to_string(p.pad_right) + "," +
                             std::to_string(p.dilation_h) + "," + std::to_string(p.dilation_w) + "," +
                             std::to_string(p.groups);
  return Key{pr.x.n, pr.x.c, pr.x.h, pr.x.w, pr.weight.n, pr.weight.c, pr.weight.h, pr.weight.w, params,
             get_num_threads(), cpu_info().active};
}

std::mutex g_mutex;
std::map<Key, ConvAlgorithm> g_chosen;

double seconds_of(const PreparedConv& prepared, const Conv2dProblem& pr, const float* x, const ConvOutput& out) {
  run_conv(prepared, pr, x, out);  // warm: scratch allocated, pages touched, caches filled
  double best = 0.0;
  for (int run = 0; run < 3; ++run) {
    const auto start = std::chrono::steady_clock::now();
    run_conv(prepared, pr, x, out);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = run == 0 || seconds < best ? seconds : best;
    if (seconds > 0.05) break;  // one run says enough of a long layer
  }
  return best;
}

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
  std::vector<std::pair<ConvAlgorithm, double>> times;
  for (ConvAlgorithm candidate : candidate_algorithms(pr)) {
    PreparedConv prepared;  // as the plan keeps it (Winograd's filters transformed once)
    prepare_conv(pr, candidate, weight, bias, true, &prepared);
    times.emplace_back(candidate, seconds_of(prepared, pr, x.data(), out));
  }
  return times;
}

std::unique_ptr<PreparedConv> prepare_fastest(const Conv2dProblem& pr, const float* weight, const float* bias) {
  const Key key = key_of(pr);
  ConvAlgorithm chosen = ConvAlgorithm::automatic;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    const auto found = g_chosen.find(key);
    if (found != g_chosen.end()) chosen = found->second;
  }
  if (chosen == ConvAlgorithm::automatic) {
    const std::vector<ConvAlgorithm> candidates = candidate_algorithms(pr);
    chosen = candidates[0];
    if (candidates.size() > 1) {
      double fastest = 0.0;
      for (const auto& [candidate, seconds] : time_candidates(pr, weight, bias))
        if (candidate == candidates[0] || seconds < fastest) {
          fastest = seconds;
          chosen = candidate;
        }
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    g_chosen.emplace(key, chosen);
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
