#include "colony/actors/tenant/quota_policy.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

namespace colony::actors {

namespace {
std::int64_t window(double burst, double rate) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(burst / rate)));
}
} // namespace

std::optional<rate_policy> rate_policy_of(const tenant_rules& rules, const std::string& plan, int credential_percent) {
  auto it = rules.plans.find(plan);
  if (it == rules.plans.end() || !it->second.requests_per_second)
    return std::nullopt;
  rate_policy p;
  p.rate = *it->second.requests_per_second;
  p.burst = std::max(1.0, static_cast<double>(it->second.burst.value_or(*it->second.requests_per_second)));
  if (p.rate <= 0) {
    p.rate = 0;
    return p;
  }
  double share = credential_percent / 100.0;
  p.credential_rate = std::max(0.1, p.rate * share);
  p.credential_burst = std::max(1.0, std::floor(p.burst * share));
  p.window_s = window(p.burst, p.rate);
  p.credential_window_s = window(p.credential_burst, p.credential_rate);
  return p;
}

std::optional<std::int64_t> monthly_quota(const tenant_rules& rules, const std::string& plan) {
  if (auto it = rules.plans.find(plan); it != rules.plans.end() && it->second.api_calls_per_month)
    return *it->second.api_calls_per_month;
  return std::nullopt;
}

std::int64_t quota_retry_after_s(std::int64_t now_us) {
  std::time_t t = static_cast<std::time_t>(now_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::tm next{};
  next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
  next.tm_mon = (tm.tm_mon + 1) % 12;
  next.tm_mday = 1;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(timegm(&next)) - static_cast<std::int64_t>(t));
}

} // namespace colony::actors
