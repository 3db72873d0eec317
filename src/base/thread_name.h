// Names the calling thread as `top -H`, perf and gdb show it (Linux: at most 15 characters;
// longer names are cut). Threads of the server are named "sy-<module>[-<what>]".
#pragma once

#include <string_view>

namespace sy {

void SetThreadName(std::string_view name);

}  // namespace sy
