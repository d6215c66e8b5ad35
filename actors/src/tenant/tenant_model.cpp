#include "colony/actors/tenant/tenant_model.hpp"

#include <algorithm>
#include <limits>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"

namespace colony::actors {
namespace {

failure invalid(std::string field, std::string message) {
  failure f = fail(errc::invalid, "the tenant is not valid: " + field + " " + message);
  f.errors.push_back({std::move(field), std::move(message)});
  return f;
}

bool valid_color(std::string_view c) {
  if (c.size() != 7 || c[0] != '#')
    return false;
  return std::all_of(c.begin() + 1, c.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
  });
}

bool valid_url(std::string_view u) {
  if (u.size() > 2048)
    return false;
  auto rest = u.starts_with("https://") ? u.substr(8) : u.starts_with("http://") ? u.substr(7) : "";
  if (rest.empty())
    return false;
  return std::none_of(u.begin(), u.end(), [](unsigned char ch) { return ch <= 0x20 || ch == 0x7f; });
}

std::string limit_text(const std::optional<std::int32_t>& v) { return v ? std::to_string(*v) : "unlimited"; }

} // namespace

std::map<std::string, plan_limits> tenant_rules::default_plans() {
  return {
    {"free", {5, 10'000, 100, 100, 1, 20, 40}},
    {"starter", {25, 100'000, 1'024, 1'000, 5, 100, 200}},
    {"pro", {250, 1'000'000, 10'240, 10'000, 20, 500, 1'000}},
    {"enterprise", {std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt}},
  };
}

bool valid_slug(std::string_view slug) {
  if (slug.size() < 3 || slug.size() > 63)
    return false;
  return std::all_of(slug.begin(), slug.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

void fill_limits(v1::PlanLimits& out, const plan_limits& in) {
  out.Clear();
  if (in.max_users)
    out.set_max_users(*in.max_users);
  if (in.api_calls_per_month)
    out.set_api_calls_per_month(*in.api_calls_per_month);
  if (in.storage_mb)
    out.set_storage_mb(*in.storage_mb);
  if (in.ai_requests_per_month)
    out.set_ai_requests_per_month(*in.ai_requests_per_month);
  if (in.max_plugins)
    out.set_max_plugins(*in.max_plugins);
  if (in.requests_per_second)
    out.set_requests_per_second(*in.requests_per_second);
  if (in.burst)
    out.set_burst(*in.burst);
}

std::optional<failure> validate_tenant(const v1::Tenant& t, const tenant_rules& rules) {
  if (!valid_slug(t.slug()))
    return invalid("slug", "must be 3 to 63 characters of a-z, 0-9 and '-'");
  if (t.name().empty() || t.name().size() > 200)
    return invalid("name", "must be 1 to 200 characters");
  if (!rules.plans.contains(t.plan())) {
    std::string known;
    for (const auto& [name, _] : rules.plans)
      known += (known.empty() ? "" : ", ") + name;
    return invalid("plan", "must be one of: " + known);
  }
  const auto& s = t.settings();
  if (s.display_name().size() > 200)
    return invalid("settings.displayName", "must be at most 200 characters");
  if (!s.logo_url().empty() && !valid_url(s.logo_url()))
    return invalid("settings.logoUrl", "must be an http(s) URL of at most 2048 characters");
  if (!s.primary_color().empty() && !valid_color(s.primary_color()))
    return invalid("settings.primaryColor", "must be a color like #1a2b3c");
  std::size_t custom_bytes = 0;
  for (const auto& [k, v] : s.custom()) {
    if (k.empty() || k.size() > 128)
      return invalid("settings.custom", "keys must be 1 to 128 characters");
    custom_bytes += k.size() + v.size();
  }
  if (custom_bytes > max_custom_settings_bytes)
    return invalid("settings.custom", "must be at most 16 KiB in all");
  return std::nullopt;
}

outcome<v1::Tenant> create_tenant(const v1::CreateTenantRequest& req, const tenant_rules& rules, std::string id,
                                  std::int64_t now_us) {
  v1::Tenant t;
  t.set_id(std::move(id));
  t.set_slug(req.slug());
  t.set_name(req.name());
  t.set_plan(req.plan().empty() ? rules.default_plan : req.plan());
  *t.mutable_settings() = req.settings();
  if (auto err = validate_tenant(t, rules))
    return *err;
  t.set_status(std::string{tenant_status::trial});
  protocol::set_timestamp(*t.mutable_trial_ends_at(), now_us + rules.trial_us);
  fill_limits(*t.mutable_limits(), rules.plans.at(t.plan()));
  t.mutable_usage()->set_month(protocol::month_of(now_us));
  protocol::set_timestamp(*t.mutable_created_at(), now_us);
  protocol::set_timestamp(*t.mutable_updated_at(), now_us);
  t.set_version(1);
  return t;
}

outcome<v1::Tenant> patch_tenant(const v1::Tenant& current, std::string_view patch, const tenant_rules& rules,
                                 std::int64_t now_us) {
  static const std::vector<std::string> patchable{"slug", "name", "plan", "settings", "trialEndsAt"};
  v1::Tenant next;
  if (auto err = protocol::apply_merge_patch(current, patch, patchable, next)) {
    failure f = fail(errc::invalid, err->field.empty() ? err->message : err->field + ": " + err->message);
    f.errors.push_back(*err);
    return f;
  }
  // A merge patch that sets "plan": null means "back to the default plan".
  if (next.plan().empty())
    next.set_plan(rules.default_plan);
  if (auto err = validate_tenant(next, rules))
    return *err;
  if (protocol::timestamp_us(next.trial_ends_at()) != protocol::timestamp_us(current.trial_ends_at())) {
    if (current.status() != tenant_status::trial) {
      failure f = fail(errc::conflict,
                       "trialEndsAt can only change while the tenant is in trial (it is " + current.status() + ")");
      f.errors.push_back({"trialEndsAt", "the tenant is not in trial"});
      return f;
    }
    if (!next.has_trial_ends_at())
      return invalid("trialEndsAt", "cannot be removed while the tenant is in trial");
  }
  if (next.plan() != current.plan()) {
    const auto& limits = rules.plans.at(next.plan());
    const auto& usage = current.usage();
    auto below = [&](const std::optional<std::int32_t>& limit, std::int32_t used,
                     const char* what) -> std::optional<failure> {
      if (limit && used > *limit) {
        failure f = fail(errc::plan_below_usage,
                         "plan '" + next.plan() + "' allows " + limit_text(limit) + " " + what +
                           " but the tenant has " + std::to_string(used) + "; reduce usage first");
        f.strings.emplace_back("plan", next.plan());
        f.numbers.emplace_back("limit", *limit);
        f.numbers.emplace_back("current", used);
        return f;
      }
      return std::nullopt;
    };
    if (auto f = below(limits.max_users, usage.users(), "users"))
      return *f;
    if (auto f = below(limits.storage_mb, usage.storage_mb(), "MB of storage"))
      return *f;
    if (auto f = below(limits.max_plugins, usage.plugins(), "plugins"))
      return *f;
    fill_limits(*next.mutable_limits(), limits);
  }
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(current.version() + 1);
  return next;
}

bool transition_allowed(std::string_view from, std::string_view to) {
  using namespace tenant_status;
  if (from == trial)
    return to == active || to == suspended || to == cancelled;
  if (from == active)
    return to == suspended || to == cancelled;
  if (from == suspended)
    return to == active || to == cancelled;
  return false; // cancelled is final
}

outcome<v1::Tenant> transition_tenant(const v1::Tenant& current, std::string_view to, std::string reason,
                                      std::int64_t now_us) {
  if (reason.size() > 500)
    return invalid("reason", "must be at most 500 characters");
  if (!transition_allowed(current.status(), to)) {
    failure f =
      fail(errc::illegal_transition, "a tenant cannot go from '" + current.status() + "' to '" + std::string{to} + "'");
    f.strings.emplace_back("from", current.status());
    f.strings.emplace_back("to", std::string{to});
    return f;
  }
  v1::Tenant next = current;
  next.set_status(std::string{to});
  next.set_status_reason(std::move(reason));
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(current.version() + 1);
  return next;
}

std::optional<failure> check_writable(const v1::Tenant& t) {
  if (t.status() == tenant_status::suspended)
    return fail(errc::tenant_suspended,
                "tenant '" + t.slug() + "' is suspended: its users can be read but not changed");
  if (t.status() == tenant_status::cancelled)
    return fail(errc::tenant_cancelled,
                "tenant '" + t.slug() + "' is cancelled: its users can be read but not changed");
  return std::nullopt;
}

std::optional<failure> check_seat_available(const v1::Tenant& t, std::int32_t in_flight) {
  if (!t.limits().has_max_users())
    return std::nullopt;
  auto limit = t.limits().max_users();
  auto current = t.usage().users();
  if (current + in_flight < limit)
    return std::nullopt;
  failure f = fail(errc::limit_exceeded,
                   "plan '" + t.plan() + "' allows " + std::to_string(limit) + " users and the tenant has " +
                     std::to_string(current));
  f.strings.emplace_back("limitName", "maxUsers");
  f.numbers.emplace_back("limit", limit);
  f.numbers.emplace_back("current", current);
  return f;
}

outcome<v1::Tenant> apply_billing(const v1::Tenant& current, const v1::BillingChange& change, const tenant_rules& rules,
                                  std::int64_t now_us) {
  using namespace tenant_status;
  v1::Tenant next = current;
  if (current.status() == cancelled)
    return next;
  auto* billing = next.mutable_billing();
  if (!change.customer_id().empty())
    billing->set_customer_id(change.customer_id());
  if (!change.subscription_id().empty())
    billing->set_subscription_id(change.subscription_id());
  const auto& kind = change.kind();
  auto set_status = [&](std::string_view to, std::string reason) {
    next.set_status(std::string{to});
    next.set_status_reason(std::move(reason));
  };
  if (kind == "subscription_active") {
    if (!change.plan().empty() && change.plan() != next.plan()) {
      if (!rules.plans.contains(change.plan()))
        return fail(errc::invalid, "the subscription is for plan '" + change.plan() + "', which is not configured");
      auto moved = patch_tenant(current, "{\"plan\":\"" + protocol::json_escape(change.plan()) + "\"}", rules, now_us);
      if (!moved)
        return std::move(moved.error());
      next.set_plan(moved.value().plan());
      *next.mutable_limits() = moved.value().limits();
    }
    if (current.status() == trial || current.status() == suspended)
      set_status(active, "subscription_active");
  } else if (kind == "payment_failed") {
    if (billing->payment_status() != "past_due") {
      billing->set_payment_status("past_due");
      protocol::set_timestamp(*billing->mutable_past_due_since(), now_us);
    }
  } else if (kind == "grace_expired") {
    if (billing->payment_status() == "past_due" && (current.status() == active || current.status() == trial))
      set_status(suspended, "payment_failed");
  } else if (kind == "paid") {
    billing->set_payment_status("ok");
    billing->clear_past_due_since();
    if (current.status() == suspended && current.status_reason() == "payment_failed")
      set_status(active, "payment_received");
  } else if (kind == "subscription_deleted") {
    set_status(cancelled, "subscription_deleted");
  } else {
    return fail(errc::malformed, "unknown billing change '" + kind + "'");
  }
  if (next.SerializeAsString() == current.SerializeAsString())
    return next; // nothing changed: same version, no commit
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(current.version() + 1);
  return next;
}

v1::TenantUsage usage_at(const v1::TenantUsage& usage, std::int64_t now_us) {
  auto month = protocol::month_of(now_us);
  v1::TenantUsage out = usage;
  if (out.month() != month) {
    out.set_api_calls_this_month(0);
    out.set_ai_requests_this_month(0);
    out.set_month(month);
  }
  return out;
}

outcome<v1::Tenant> track_usage(const v1::Tenant& current, std::int64_t api_calls, std::int64_t ai_requests,
                                std::int32_t storage_mb, std::int64_t now_us) {
  if (api_calls < 0 || ai_requests < 0)
    return invalid(api_calls < 0 ? "apiCalls" : "aiRequests", "must not be negative");
  if (api_calls == 0 && ai_requests == 0 && storage_mb == 0)
    return invalid("trackActivity", "names no usage to add");
  const auto u = usage_at(current.usage(), now_us);
  const auto& l = current.limits();
  auto check = [](const char* field, std::int64_t next, bool limited, std::int64_t limit) -> std::optional<failure> {
    if (next < 0)
      return invalid(field, "would become negative");
    if (next > std::numeric_limits<std::int32_t>::max() || (limited && next > limit)) {
      failure f = fail(errc::limit_exceeded,
                       std::string{field} + " would reach " + std::to_string(next) + ", over the plan's limit of " +
                         std::to_string(limit));
      f.numbers.emplace_back("limit", static_cast<std::int32_t>(std::min<std::int64_t>(limit, INT32_MAX)));
      return f;
    }
    return std::nullopt;
  };
  std::int64_t calls = std::int64_t{u.api_calls_this_month()} + api_calls;
  std::int64_t ai = std::int64_t{u.ai_requests_this_month()} + ai_requests;
  std::int64_t storage = std::int64_t{u.storage_mb()} + storage_mb;
  if (auto f = check("apiCallsThisMonth", calls, l.has_api_calls_per_month(), l.api_calls_per_month()))
    return *f;
  if (auto f = check("aiRequestsThisMonth", ai, l.has_ai_requests_per_month(), l.ai_requests_per_month()))
    return *f;
  if (auto f = check("storageMb", storage, l.has_storage_mb(), l.storage_mb()))
    return *f;
  v1::Tenant next = current;
  *next.mutable_usage() = u;
  next.mutable_usage()->set_api_calls_this_month(static_cast<std::int32_t>(calls));
  next.mutable_usage()->set_ai_requests_this_month(static_cast<std::int32_t>(ai));
  next.mutable_usage()->set_storage_mb(static_cast<std::int32_t>(storage));
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(current.version() + 1);
  return next;
}

} // namespace colony::actors
