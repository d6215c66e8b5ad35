// Outbound webhook endpoints as the domain sees them: what a registration
// may say, which events an endpoint receives, and what happens to a
// delivery after an attempt (retry with backoff, or dead letter). Pure code;
// the HTTP routes, the store and the notifier apply it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/domain.hpp"

namespace colony::actors {

struct webhook_spec {
  std::string url; // checked for syntax and address by the webhooks adapter
  std::string description;
  std::vector<std::string> event_types; // empty: every event
};

inline constexpr std::size_t max_event_types = 50;

/// A registration body (a JSON object that passed the JSON gate): url
/// (required), description (≤ 500 characters), eventTypes (≤ 50 patterns
/// such as user.created, tenant.* or *); unknown fields are refused.
/// `url_ok` judges the URL's syntax (the webhooks adapter's parser).
[[nodiscard]] outcome<webhook_spec> webhook_spec_from_json(std::string_view body,
                                                           const std::function<bool(const std::string&)>& url_ok);
/// An event type pattern: 1 to 100 of [a-z_.*].
[[nodiscard]] bool valid_event_pattern(std::string_view p);
/// Does an endpoint with `patterns` receive events of `type`?
[[nodiscard]] bool webhook_matches(const std::vector<std::string>& patterns, std::string_view type);

/// What becomes of a delivery after an attempt.
struct delivery_next {
  enum class state { delivered, dead, retry } what = state::retry;
  std::int64_t next_attempt_us = 0; // for retry
};
/// `attempts` counts the one just made; `jitter` in [0, 1) (drawn by the caller).
/// Retries back off exponentially: base × 2^(attempts−1), capped at one hour,
/// drawn from [50 %, 100 %] of that.
[[nodiscard]] delivery_next after_attempt(bool ok, int attempts, int max_attempts, std::chrono::milliseconds base,
                                          double jitter, std::int64_t now_us);

} // namespace colony::actors
