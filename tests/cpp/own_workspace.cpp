// The kernels' scratch memory from the caller's allocator: every buffer comes from it and goes
// back to it, the bytes held at once stay within conv2d_workspace_size, results are those of the
// heap, and a workspace limit below what a call needs throws WorkspaceLimitError.
#include <pyconvx/pyconvx.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Tally {
  std::atomic<int64_t> live{0}, peak{0}, allocations{0}, releases{0};
};

void* allocate(int64_t bytes, void* user) {
  auto* tally = static_cast<Tally*>(user);
  const int64_t live = tally->live += bytes;
  int64_t peak = tally->peak.load();
  while (live > peak && !tally->peak.compare_exchange_weak(peak, live)) {
  }
  ++tally->allocations;
  return std::aligned_alloc(64, static_cast<size_t>(bytes));
}

void release(void* memory, int64_t bytes, void* user) {
  auto* tally = static_cast<Tally*>(user);
  tally->live -= bytes;
  ++tally->releases;
  std::free(memory);
}

}  // namespace

int main() {
  using namespace pyconvx;
  Conv2dParams same;
  same.pad_top = same.pad_bottom = same.pad_left = same.pad_right = 1;
  const Conv2dProblem pr = make_conv2d_problem({4, 32, 20, 20}, {48, 32, 3, 3}, same);
  std::vector<float> x(static_cast<size_t>(pr.x.numel())), w(static_cast<size_t>(pr.weight.numel()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) / 13.0f - 0.5f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) / 7.0f - 0.5f;
  std::vector<float> expected(static_cast<size_t>(pr.y().numel())), got(expected.size());
  bool ok = true;
  for (ConvAlgorithm algorithm : conv_algorithms()) {
    if (!conv_algorithm_unsupported_reason(pr, algorithm).empty()) continue;
    reset_workspace_peak();  // cached per-thread scratch goes back to the heap
    conv2d_forward(pr, x.data(), w.data(), nullptr, expected.data(), Activation::none, algorithm);
    reset_workspace_peak();
    Tally tally;
    set_workspace_allocator(WorkspaceAllocator{allocate, release, &tally});
    conv2d_forward(pr, x.data(), w.data(), nullptr, got.data(), Activation::none, algorithm);
    reset_workspace_peak();  // released through the caller's allocator
    reset_workspace_allocator();
    const int64_t bound = conv2d_workspace_size(pr, algorithm);
    const bool same_result = std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)) == 0;
    const bool fine = same_result && tally.allocations > 0 && tally.live == 0 &&
                      tally.allocations == tally.releases && tally.peak <= bound;
    ok = ok && fine;
    std::printf("%s: %lld allocations, peak %lld of %lld bytes, same result %d, %s\n", conv_algorithm_name(algorithm),
                static_cast<long long>(tally.allocations), static_cast<long long>(tally.peak.load()),
                static_cast<long long>(bound), same_result ? 1 : 0, fine ? "ok" : "FAILED");
  }
  const int64_t limit = get_workspace_limit();
  reset_workspace_peak();
  set_workspace_limit(1024);
  try {
    conv2d_forward(pr, x.data(), w.data(), nullptr, got.data());
    std::printf("limit: not enforced\n");
    ok = false;
  } catch (const WorkspaceLimitError& e) {
    std::printf("limit: %s\n", e.what());
  }
  set_workspace_limit(limit);
  return ok ? 0 : 1;
}
