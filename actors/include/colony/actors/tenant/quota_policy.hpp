// What a tenant's plan allows per second and per month, as pure functions of
// the plan (the rate limiter and the meter at the edge only store counts).
//
//   rate: each tenant has a token bucket of `burst` tokens refilled at
//     `rate` per second; each credential of the tenant has its own bucket of
//     `credential_percent` of both, so one client cannot use up the tenant.
//   month: the plan's apiCallsPerMonth, reset at the start of each calendar
//     month (UTC); the answer after it is 429 until then.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "colony/actors/tenant/tenant_model.hpp"

namespace colony::actors {

struct rate_policy {
  double rate = 0;            // tokens per second for the tenant; 0: the plan allows no calls
  double burst = 1;           // the tenant's bucket size
  double credential_rate = 0; // one credential's share
  double credential_burst = 1;
  std::int64_t window_s = 1; // the time the tenant's bucket takes to refill (RateLimit-Policy w=)
  std::int64_t credential_window_s = 1;
};

/// The rate limits of `plan`; nullopt when the plan sets none (or is unknown).
[[nodiscard]] std::optional<rate_policy> rate_policy_of(const tenant_rules& rules, const std::string& plan,
                                                        int credential_percent);
/// The monthly API call quota of `plan`; nullopt: unlimited.
[[nodiscard]] std::optional<std::int64_t> monthly_quota(const tenant_rules& rules, const std::string& plan);
/// Seconds from `now_us` until the quota of the month of `now_us` resets.
[[nodiscard]] std::int64_t quota_retry_after_s(std::int64_t now_us);

} // namespace colony::actors
