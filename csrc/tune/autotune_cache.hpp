// The autotuner's memory (internal): the algorithm measured fastest for each convolution shape,
// kept for the process and in a file shared by the processes of one machine (see runtime.hpp's
// set_autotune_cache_dir for where and when).
//
// The file is a hint, never trusted: it is read only when its header names this pyconvx
// version, instruction-set path and processor and its checksum matches, and an entry is used
// only for an algorithm that can compute the layer it is asked for (the caller checks), so a
// damaged or edited file can cost speed but never change a result. Anything else is ignored
// with a warning (take_autotune_warnings) and rewritten from what this process measures.
#pragma once

#include <string>

#include "pyconvx/conv.hpp"

namespace pyconvx::detail {

// The text that names a problem's shapes, parameters and the thread count among the entries.
std::string autotune_key(const Conv2dProblem& problem);

// The choice remembered for `key` (from this process or the file), or ConvAlgorithm::automatic.
ConvAlgorithm remembered_algorithm(const std::string& key);
// Remembers a measured choice; the file is written at the next flush.
void remember_algorithm(const std::string& key, ConvAlgorithm algorithm);
// Forgets an entry that proved wrong (it named an algorithm that cannot compute its layer), with
// a warning naming the file and the entry.
void forget_algorithm(const std::string& key, ConvAlgorithm algorithm);
// Writes the file (atomically: a temporary file renamed over it) when something was remembered
// since the last write, merged with what other processes wrote to it meanwhile.
void flush_autotune_cache();
// Whether an environment variable's value turns a setting off: "0", "off" or "false".
bool turns_off(const std::string& value);

// A layer was timed (measured) or its choice found remembered (reused): autotune_cache_stats.
void count_autotune(bool measured);

}  // namespace pyconvx::detail
