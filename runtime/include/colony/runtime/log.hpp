// Structured logging: one event per line, readable text in a terminal or JSON
// lines in production (--log-format). Thread-safe; writes to stderr.
// Never pass secrets (passwords, DSNs with passwords, tokens) as fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace colony::log {

enum class level { trace, debug, info, warn, error };
enum class format { text, json };

struct field {
  field(std::string_view k, std::string_view v) : key(k), value(v), quoted(true) {}
  field(std::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  field(std::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  field(std::string_view k, std::int64_t v) : key(k), value(std::to_string(v)), quoted(false) {}
  field(std::string_view k, int v) : key(k), value(std::to_string(v)), quoted(false) {}
  field(std::string_view k, std::uint64_t v) : key(k), value(std::to_string(v)), quoted(false) {}
  field(std::string_view k, double v);
  std::string_view key;
  std::string value;
  bool quoted;
};

/// Configures the process-wide logger; call once at start (defaults: text, info).
void init(format fmt, level min_level);

[[nodiscard]] bool enabled(level lvl);

void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {});
/// The same with fields gathered at run time.
void write(level lvl, std::string_view msg, std::span<const field> fields);

inline void debug(std::string_view msg, std::initializer_list<field> f = {}) { write(level::debug, msg, f); }
inline void info(std::string_view msg, std::initializer_list<field> f = {}) { write(level::info, msg, f); }
inline void warn(std::string_view msg, std::initializer_list<field> f = {}) { write(level::warn, msg, f); }
inline void error(std::string_view msg, std::initializer_list<field> f = {}) { write(level::error, msg, f); }

/// Flushes buffered lines (at shutdown).
void flush();

} // namespace colony::log
