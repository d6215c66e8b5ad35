#include "colony/runtime/log.hpp"

#include <cstdio>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "colony/protocol/json.hpp"

namespace colony::log {
namespace {

format g_format = format::text;
std::shared_ptr<spdlog::logger> g_logger;

spdlog::level::level_enum to_spd(level l) {
  switch (l) {
    case level::trace: return spdlog::level::trace;
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

spdlog::logger& logger() {
  if (!g_logger)
    init(format::text, level::info);
  return *g_logger;
}

bool needs_quotes(std::string_view v) {
  if (v.empty())
    return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20)
      return true;
  return false;
}

} // namespace

field::field(std::string_view k, double v) : key(k), quoted(false) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

void init(format fmt, level min_level) {
  g_format = fmt;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  g_logger = std::make_shared<spdlog::logger>("colony", sink);
  if (fmt == format::json)
    g_logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})", spdlog::pattern_time_type::utc);
  else
    g_logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
  g_logger->set_level(to_spd(min_level));
  g_logger->flush_on(spdlog::level::warn);
}

bool enabled(level lvl) { return logger().should_log(to_spd(lvl)); }

void write(level lvl, std::string_view msg, std::span<const field> fields) {
  auto& lg = logger();
  if (!lg.should_log(to_spd(lvl)))
    return;
  std::string line;
  line.reserve(128);
  if (g_format == format::json) {
    line += "\"msg\":\"";
    line += protocol::json_escape(msg);
    line += '"';
    for (const auto& f : fields) {
      line += ",\"";
      line += protocol::json_escape(f.key);
      line += "\":";
      if (f.quoted) {
        line += '"';
        line += protocol::json_escape(f.value);
        line += '"';
      } else {
        line += f.value;
      }
    }
  } else {
    line += msg;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      if (f.quoted && needs_quotes(f.value)) {
        line += '"';
        line += protocol::json_escape(f.value);
        line += '"';
      } else {
        line += f.value;
      }
    }
  }
  lg.log(to_spd(lvl), "{}", line);
}

void write(level lvl, std::string_view msg, std::initializer_list<field> fields) {
  write(lvl, msg, std::span<const field>{fields.begin(), fields.size()});
}

void flush() {
  if (g_logger)
    g_logger->flush();
}

} // namespace colony::log
