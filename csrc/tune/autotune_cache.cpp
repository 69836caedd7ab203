// The autotuner's memory: in the process, and in a file per version, ISA path and processor.
//
// The file, text so that a user can read what was chosen:
//   pyconvx-autotune 1
//   signature <pyconvx version> (<the algorithms>); <isa>; <processor>; <cache sizes>
//   <N C H W K C/g R S stride_h stride_w pad_t pad_b pad_l pad_r dilation_h dilation_w groups threads> <algorithm>
//   ...
//   checksum <FNV-1a 64 of every byte before this line, 16 hex digits>
#include "autotune_cache.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "pyconvx/runtime.hpp"
#include "pyconvx/version.hpp"

namespace pyconvx {
namespace {

constexpr const char* kMagic = "pyconvx-autotune 1";
constexpr int kKeyFields = 18;

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex16(uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof(s), "%016llx", static_cast<unsigned long long>(v));
  return s;
}

// What a file must have been written for: the same code choosing among the same algorithms (a
// build that adds one measures again, whatever its version says) on the same processor.
std::string signature() {
  const CpuInfo& cpu = cpu_info();
  std::string algorithms;
  for (ConvAlgorithm a : conv_algorithms())
    if (a != ConvAlgorithm::automatic) algorithms += std::string(algorithms.empty() ? "" : ",") + conv_algorithm_name(a);
  return std::string("pyconvx ") + PYCONVX_VERSION_STRING + " (" + algorithms + "); " + cpu.active + "; " + cpu.model +
         "; l1d " + std::to_string(cpu.l1d_bytes) + " l2 " + std::to_string(cpu.l2_bytes) + " l3 " +
         std::to_string(cpu.l3_bytes);
}

std::string default_dir() {
  if (const char* env = std::getenv("PYCONVX_AUTOTUNE_CACHE")) {
    return detail::turns_off(env) ? "" : env;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/pyconvx";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/pyconvx";
  return "";
}

// "N C ... threads" as read from a line: each field a non-negative integer, the sizes positive.
bool valid_key(const std::string& key) {
  std::istringstream in(key);
  int fields = 0;
  for (std::string field; in >> field; ++fields) {
    if (field.empty() || field.size() > 12 || field.find_first_not_of("0123456789") != std::string::npos) return false;
    const bool may_be_zero = fields >= 10 && fields <= 13;  // the paddings
    if (!may_be_zero && std::strtoll(field.c_str(), nullptr, 10) == 0) return false;
  }
  return fields == kKeyFields;
}

struct Cache {
  std::mutex mutex;
  bool dir_set = false;
  std::string dir;
  std::string loaded_file;        // the file whose entries `entries` holds ("" : none read yet)
  std::string failed_file;        // a file that could not be written: not tried again
  std::map<std::string, ConvAlgorithm> entries;
  bool dirty = false;             // something remembered since the file was last written
  AutotuneCacheStats stats;
  std::vector<std::string> warnings;

  std::string file_locked() {
    if (!dir_set) {
      dir = default_dir();
      dir_set = true;
    }
    if (dir.empty()) return "";
    const std::string sig = signature();
    return dir + "/autotune-" + cpu_info().active + "-" + hex16(fnv1a(sig)).substr(0, 12) + ".txt";
  }

  void warn(const std::string& message) { warnings.push_back(message); }

  // The entries of `path`, or false (and why, in `reason`) when it is missing, damaged or foreign.
  static bool read_file(const std::string& path, std::map<std::string, ConvAlgorithm>* out, std::string* reason) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      *reason = "";  // missing: nothing to say
      return false;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (int64_t{64} << 20)) {
      *reason = "it is larger than 64 MiB";
      return false;
    }
    const auto tail = text.rfind("checksum ");
    if (tail == std::string::npos || (tail > 0 && text[tail - 1] != '\n')) {
      *reason = "it has no checksum line (truncated or not an autotune cache)";
      return false;
    }
    const std::string body = text.substr(0, tail), written = text.substr(tail + 9);
    if (written != hex16(fnv1a(body)) + "\n") {
      *reason = "its checksum does not match its contents";
      return false;
    }
    std::istringstream lines(body);
    std::string line;
    if (!std::getline(lines, line) || line != kMagic) {
      *reason = "its first line is not '" + std::string(kMagic) + "'";
      return false;
    }
    if (!std::getline(lines, line) || line != "signature " + signature()) {
      *reason = "it was written for another pyconvx version or processor ('" + line + "', this one is 'signature " +
                signature() + "')";
      return false;
    }
    std::map<std::string, ConvAlgorithm> entries;
    while (std::getline(lines, line)) {
      const auto space = line.rfind(' ');
      const std::string key = space == std::string::npos ? "" : line.substr(0, space);
      const std::string name = space == std::string::npos ? "" : line.substr(space + 1);
      ConvAlgorithm algorithm = ConvAlgorithm::automatic;
      try {
        algorithm = conv_algorithm_from_name(name);
      } catch (const std::invalid_argument&) {
      }
      if (!valid_key(key) || algorithm == ConvAlgorithm::automatic) {
        *reason = "it holds a malformed entry '" + line.substr(0, 200) + "'";
        return false;
      }
      entries[key] = algorithm;
    }
    *out = std::move(entries);
    return true;
  }

  // Reads the current file once (after the directory changed, again), keeping what this process
  // measured where both have an entry.
  void load_locked() {
    const std::string path = file_locked();
    if (path == loaded_file) return;
    loaded_file = path;
    if (path.empty()) return;
    std::map<std::string, ConvAlgorithm> from_file;
    std::string reason;
    if (!read_file(path, &from_file, &reason)) {
      if (!reason.empty()) {
        warn("pyconvx: ignoring the autotune cache " + path + ": " + reason + "; it will be rewritten");
        dirty = true;
      }
      return;
    }
    for (const auto& [key, algorithm] : from_file) {
      if (entries.emplace(key, algorithm).second) ++stats.loaded;
    }
    if (entries.size() > from_file.size()) dirty = true;
  }

  void write_locked() {
    const std::string path = file_locked();
    if (path.empty() || !dirty || path == failed_file) return;
    // Entries other processes wrote since this one read the file join ours.
    std::map<std::string, ConvAlgorithm> on_disk;
    std::string ignored;
    if (read_file(path, &on_disk, &ignored))
      for (const auto& entry : on_disk) entries.insert(entry);
    std::string body = std::string(kMagic) + "\nsignature " + signature() + "\n";
    for (const auto& [key, algorithm] : entries) body += key + " " + conv_algorithm_name(algorithm) + "\n";
    const std::string text = body + "checksum " + hex16(fnv1a(body)) + "\n";
    std::string error;
    if (!make_dirs(dir, &error)) {
      fail(path, "cannot create the directory " + dir + " (" + error + ")");
      return;
    }
    const std::string temporary = path + ".tmp" + std::to_string(getpid());
    std::FILE* f = std::fopen(temporary.c_str(), "wb");
    if (f == nullptr) {
      fail(path, std::strerror(errno));
      return;
    }
    const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      std::remove(temporary.c_str());
      fail(path, why);
      return;
    }
    dirty = false;
  }

  void fail(const std::string& path, const std::string& why) {
    warn("pyconvx: cannot write the autotune cache " + path + ": " + why +
         "; the choices stay in memory for this process");
    failed_file = path;
  }

  static bool make_dirs(const std::string& dir, std::string* error) {
    for (size_t at = 1; at <= dir.size(); ++at) {
      if (at != dir.size() && dir[at] != '/') continue;
      const std::string prefix = dir.substr(0, at);
      if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        *error = std::strerror(errno);
        return false;
      }
    }
    return true;
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

void set_autotune_cache_dir(const std::string& dir) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.dir = dir;
  while (c.dir.size() > 1 && c.dir.back() == '/') c.dir.pop_back();
  c.dir_set = true;
  c.failed_file.clear();
  c.dirty = c.dirty || !c.entries.empty();  // the new file learns what this process knows
}

std::string get_autotune_cache_dir() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.file_locked();
  return c.dir;
}

std::string autotune_cache_file() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.file_locked();
}

AutotuneCacheStats autotune_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

std::vector<std::string> take_autotune_warnings() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<std::string> taken;
  taken.swap(c.warnings);
  return taken;
}

namespace detail {

std::string autotune_key(const Conv2dProblem& pr) {
  const Conv2dParams& p = pr.params;
  const int64_t fields[kKeyFields] = {pr.x.n,       pr.x.c,       pr.x.h,       pr.x.w,        pr.weight.n,
                                      pr.weight.c,  pr.weight.h,  pr.weight.w,  p.stride_h,    p.stride_w,
                                      p.pad_top,    p.pad_bottom, p.pad_left,   p.pad_right,   p.dilation_h,
                                      p.dilation_w, p.groups,     get_num_threads()};
  std::string key;
  for (int64_t field : fields) key += (key.empty() ? "" : " ") + std::to_string(field);
  return key;
}

ConvAlgorithm remembered_algorithm(const std::string& key) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.load_locked();
  const auto found = c.entries.find(key);
  return found == c.entries.end() ? ConvAlgorithm::automatic : found->second;
}

void remember_algorithm(const std::string& key, ConvAlgorithm algorithm) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.load_locked();
  c.entries[key] = algorithm;
  c.dirty = true;
}

void forget_algorithm(const std::string& key, ConvAlgorithm algorithm) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.warn("pyconvx: the autotune cache " + c.file_locked() + " names " + conv_algorithm_name(algorithm) +
         " for the layer '" + key + "', which it cannot compute; measured again");
  c.entries.erase(key);
  c.dirty = true;
}

void flush_autotune_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.write_locked();
}

bool turns_off(const std::string& v) {
  return v == "0" || v == "off" || v == "false" || v == "OFF" || v == "False";
}

void count_autotune(bool measured) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  ++(measured ? c.stats.measured : c.stats.reused);
}

}  // namespace detail
}  // namespace pyconvx
