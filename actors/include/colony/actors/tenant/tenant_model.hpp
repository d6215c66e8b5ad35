// Tenant domain rules: validation, plans and limits, lifecycle, merge patch.
//
// Pure functions over colony.v1.Tenant; no I/O. The tenant actor is the only
// caller in production; unit tests call them directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "colony/actors/domain.hpp"
#include "colony/v1/tenant.pb.h"

namespace colony::actors {

/// Limits of one plan; an empty optional means unlimited.
struct plan_limits {
  std::optional<std::int32_t> max_users;
  std::optional<std::int32_t> api_calls_per_month;
  std::optional<std::int32_t> storage_mb;
  std::optional<std::int32_t> ai_requests_per_month;
  std::optional<std::int32_t> max_plugins;
  std::optional<std::int32_t> requests_per_second; // API rate per tenant (token bucket); burst is its size
  std::optional<std::int32_t> burst;
};

/// The plans a node offers (from configuration) and the other tenant knobs.
struct tenant_rules {
  std::map<std::string, plan_limits> plans = default_plans();
  std::string default_plan = "free";
  std::int64_t trial_us = 14LL * 24 * 3600 * 1'000'000;
  std::int64_t payment_grace_us = 3LL * 24 * 3600 * 1'000'000; // past due → suspended after this

  /// free, starter, pro and enterprise with the limits a SaaS buyer expects.
  static std::map<std::string, plan_limits> default_plans();
};

namespace tenant_status {
inline constexpr std::string_view trial = "trial";
inline constexpr std::string_view active = "active";
inline constexpr std::string_view suspended = "suspended";
inline constexpr std::string_view cancelled = "cancelled";
} // namespace tenant_status

/// Maximum size of the free key/values in settings.custom (keys + values).
inline constexpr std::size_t max_custom_settings_bytes = 16 * 1024;

[[nodiscard]] bool valid_slug(std::string_view slug);

/// Copies a plan's limits into the wire form.
void fill_limits(v1::PlanLimits& out, const plan_limits& in);

/// Validates every client-controlled field of `t` (slug, name, plan, settings).
[[nodiscard]] std::optional<failure> validate_tenant(const v1::Tenant& t, const tenant_rules& rules);

/// A new tenant in trial, or why not.
[[nodiscard]] outcome<v1::Tenant> create_tenant(const v1::CreateTenantRequest& req, const tenant_rules& rules,
                                                std::string id, std::int64_t now_us);

/// Applies a billing fact. Returns the next state, or the current one
/// unchanged (same version) when the fact changes nothing:
/// - subscription_active: remembers customer/subscription, moves to the
///   subscription's plan (if configured and different) and activates a trial
///   or suspended tenant;
/// - payment_failed: payment_status past_due (since now); the caller sets the
///   grace timer; grace_expired then suspends with reason payment_failed
///   unless paid meanwhile;
/// - paid: payment_status ok; a tenant suspended for payment_failed is
///   activated again;
/// - subscription_deleted: cancels.
/// A cancelled tenant stays as it is.
outcome<v1::Tenant> apply_billing(const v1::Tenant& current, const v1::BillingChange& change, const tenant_rules& rules,
                                  std::int64_t now_us);

/// The usage as of `now_us`: the monthly counters (apiCallsThisMonth,
/// aiRequestsThisMonth) count from 0 again in a month other than the one
/// they were counted in; `month` is the month of `now_us`.
[[nodiscard]] v1::TenantUsage usage_at(const v1::TenantUsage& usage, std::int64_t now_us);

/// Adds tracked usage to the tenant's counters (of the month of `now_us`,
/// see usage_at); refused (limit_exceeded, naming the counter) if a counter
/// would pass its plan limit or go negative.
outcome<v1::Tenant> track_usage(const v1::Tenant& current, std::int64_t api_calls, std::int64_t ai_requests,
                                std::int32_t storage_mb, std::int64_t now_us);

/// Applies an RFC 7396 merge patch (slug, name, plan, settings are patchable).
/// A plan whose limits are below current usage is refused (plan_below_usage).
[[nodiscard]] outcome<v1::Tenant> patch_tenant(const v1::Tenant& current, std::string_view patch,
                                               const tenant_rules& rules, std::int64_t now_us);

/// True when the lifecycle allows from → to.
[[nodiscard]] bool transition_allowed(std::string_view from, std::string_view to);

/// Moves the tenant to `to` (active, suspended or cancelled), or why not.
[[nodiscard]] outcome<v1::Tenant> transition_tenant(const v1::Tenant& current, std::string_view to, std::string reason,
                                                    std::int64_t now_us);

/// Refuses writes to a tenant's users while it is suspended or cancelled.
[[nodiscard]] std::optional<failure> check_writable(const v1::Tenant& t);

/// Refuses a new user when the plan's seat limit is reached. `in_flight` counts
/// creations already admitted but not yet committed.
[[nodiscard]] std::optional<failure> check_seat_available(const v1::Tenant& t, std::int32_t in_flight);

} // namespace colony::actors
