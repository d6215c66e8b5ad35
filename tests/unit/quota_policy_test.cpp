// The tenant's rate and quota policy (actors/tenant/quota_policy.hpp).
#include <catch2/catch.hpp>

#include "colony/actors/tenant/quota_policy.hpp"

using namespace colony::actors;

TEST_CASE("a plan's rate limits size the tenant's and each credential's bucket", "[quota]") {
  tenant_rules rules;
  rules.plans = {{"slow", plan_limits{}}, {"none", plan_limits{}}, {"open", plan_limits{}}};
  rules.plans["slow"].requests_per_second = 10;
  rules.plans["slow"].burst = 25;
  rules.plans["none"].requests_per_second = 0;
  auto p = rate_policy_of(rules, "slow", 50);
  REQUIRE(p);
  CHECK(p->rate == 10);
  CHECK(p->burst == 25);
  CHECK(p->credential_rate == 5);
  CHECK(p->credential_burst == 12); // floor(25 × 50 %)
  CHECK(p->window_s == 3);          // ceil(25 / 10)
  CHECK(p->credential_window_s == 3);
  auto zero = rate_policy_of(rules, "none", 50);
  REQUIRE(zero);
  CHECK(zero->rate == 0);
  CHECK_FALSE(rate_policy_of(rules, "open", 50));
  CHECK_FALSE(rate_policy_of(rules, "unknown", 50));
  rules.plans["slow"].burst.reset(); // the burst defaults to one second of rate
  CHECK(rate_policy_of(rules, "slow", 1)->credential_burst == 1);
  CHECK(rate_policy_of(rules, "slow", 1)->credential_rate == Approx(0.1));
}

TEST_CASE("the monthly quota comes from the plan and resets on the 1st (UTC)", "[quota]") {
  tenant_rules rules;
  rules.plans = {{"p", plan_limits{}}, {"u", plan_limits{}}};
  rules.plans["p"].api_calls_per_month = 1000;
  CHECK(monthly_quota(rules, "p") == 1000);
  CHECK_FALSE(monthly_quota(rules, "u"));
  CHECK_FALSE(monthly_quota(rules, "x"));
  CHECK(quota_retry_after_s(1'798'761'599'000'000) == 1);          // 2026-12-31T23:59:59Z → 2027-01-01
  CHECK(quota_retry_after_s(1'796'083'200'000'000) == 31 * 86400); // 2026-12-01T00:00:00Z
}
