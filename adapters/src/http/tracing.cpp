#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>

#include "colony/protocol/time.hpp"

namespace colony::adapters::http {

std::string pick_request_id(std::string_view incoming) {
  bool ok = !incoming.empty() && incoming.size() <= 128;
  for (char c : incoming)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      ok = false;
  return ok ? std::string{incoming} : protocol::new_uuid_v7();
}

std::string pick_traceparent(std::string_view in) {
  auto hex = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  if (in.size() == 55 && in[2] == '-' && in[35] == '-' && in[52] == '-' && hex(in.substr(0, 2)) &&
      hex(in.substr(3, 32)) && hex(in.substr(36, 16)) && hex(in.substr(53, 2)) && in.substr(0, 2) != "ff" &&
      in.substr(3, 32) != std::string(32, '0') && in.substr(36, 16) != std::string(16, '0'))
    return std::string{in};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[56];
  std::snprintf(buf, sizeof buf, "00-%016llx%016llx-%016llx-01", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() | 1), static_cast<unsigned long long>(rng() | 1));
  return buf;
}

std::string pick_tracestate(std::string_view incoming_parent, std::string_view picked, std::string_view state) {
  if (state.empty() || state.size() > 512 || incoming_parent != picked)
    return {};
  for (char ch : state)
    if (ch < 0x20 || ch > 0x7e)
      return {};
  return std::string{state};
}

} // namespace colony::adapters::http
