// Parsing and formatting of option values, shared by the option rows
// (options.cpp) and the config reader (config.cpp). Private to runtime/src.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace colony::runtime::detail {

/// "30s", "500ms", "5min", "2h", or a plain number of milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& s);
/// "1048576", "512KiB", "1MiB".
std::optional<std::int64_t> parse_size(const std::string& s);
std::string format_duration(std::chrono::milliseconds d);

} // namespace colony::runtime::detail
