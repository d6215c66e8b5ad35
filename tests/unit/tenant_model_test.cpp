// Tenant domain rules: validation, lifecycle, plans and limits, merge patch.
#include <catch2/catch.hpp>

#include "colony/actors/tenant/tenant_model.hpp"
#include "colony/protocol/time.hpp"

using namespace colony;
using namespace colony::actors;

namespace {

constexpr std::int64_t now = 1'800'000'000'000'000;

v1::Tenant make(const std::string& slug = "acme", const std::string& plan = "") {
  v1::CreateTenantRequest req;
  req.set_slug(slug);
  req.set_name("Acme");
  req.set_plan(plan);
  auto t = create_tenant(req, tenant_rules{}, "id-1", now);
  REQUIRE(t.ok());
  return t.value();
}

} // namespace

TEST_CASE("a new tenant starts in trial with the default plan's limits") {
  auto t = make();
  CHECK(t.status() == "trial");
  CHECK(t.plan() == "free");
  CHECK(t.version() == 1);
  CHECK(t.limits().max_users() == 5);
  CHECK(protocol::timestamp_us(t.trial_ends_at()) == now + 14LL * 24 * 3600 * 1'000'000);
  CHECK(t.usage().users() == 0);
}

TEST_CASE("enterprise has no user limit") {
  auto t = make("big-co", "enterprise");
  CHECK_FALSE(t.limits().has_max_users());
  CHECK_FALSE(check_seat_available(t, 100000).has_value());
}

TEST_CASE("slugs are 3 to 63 of [a-z0-9-]") {
  CHECK(valid_slug("abc"));
  CHECK(valid_slug("a-1-b"));
  CHECK_FALSE(valid_slug("ab"));
  CHECK_FALSE(valid_slug(std::string(64, 'a')));
  CHECK(valid_slug(std::string(63, 'a')));
  CHECK_FALSE(valid_slug("Acme"));
  CHECK_FALSE(valid_slug("a_b"));
  CHECK_FALSE(valid_slug("ab c"));
}

TEST_CASE("creation validates every field and names the bad one") {
  v1::CreateTenantRequest req;
  req.set_slug("ok-slug");
  req.set_name("");
  auto r = create_tenant(req, tenant_rules{}, "x", now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == errc::invalid);
  REQUIRE(r.error().errors.size() == 1);
  CHECK(r.error().errors[0].field == "name");

  req.set_name("Fine");
  req.set_plan("platinum");
  r = create_tenant(req, tenant_rules{}, "x", now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors[0].field == "plan");

  req.set_plan("pro");
  req.mutable_settings()->set_primary_color("red");
  r = create_tenant(req, tenant_rules{}, "x", now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors[0].field == "settings.primaryColor");

  req.mutable_settings()->set_primary_color("#A0b1C2");
  req.mutable_settings()->set_logo_url("javascript:alert(1)");
  r = create_tenant(req, tenant_rules{}, "x", now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors[0].field == "settings.logoUrl");

  req.mutable_settings()->set_logo_url("https://cdn.example.com/logo.png");
  (*req.mutable_settings()->mutable_custom())["big"] = std::string(16 * 1024, 'x');
  r = create_tenant(req, tenant_rules{}, "x", now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors[0].field == "settings.custom");

  (*req.mutable_settings()->mutable_custom())["big"] = std::string(1000, 'x');
  CHECK(create_tenant(req, tenant_rules{}, "x", now).ok());
}

TEST_CASE("lifecycle: the allowed transitions and only those") {
  CHECK(transition_allowed("trial", "active"));
  CHECK(transition_allowed("trial", "suspended"));
  CHECK(transition_allowed("trial", "cancelled"));
  CHECK(transition_allowed("active", "suspended"));
  CHECK(transition_allowed("active", "cancelled"));
  CHECK(transition_allowed("suspended", "active"));
  CHECK(transition_allowed("suspended", "cancelled"));
  CHECK_FALSE(transition_allowed("active", "active"));
  CHECK_FALSE(transition_allowed("active", "trial"));
  CHECK_FALSE(transition_allowed("suspended", "trial"));
  for (auto to : {"trial", "active", "suspended", "cancelled"})
    CHECK_FALSE(transition_allowed("cancelled", to));
}

TEST_CASE("an illegal transition names both states") {
  auto t = make();
  auto c = transition_tenant(t, "cancelled", "bye", now + 1);
  REQUIRE(c.ok());
  CHECK(c.value().status() == "cancelled");
  CHECK(c.value().status_reason() == "bye");
  CHECK(c.value().version() == 2);
  auto again = transition_tenant(c.value(), "active", "", now + 2);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == errc::illegal_transition);
  CHECK(again.error().detail.find("'cancelled'") != std::string::npos);
  CHECK(again.error().detail.find("'active'") != std::string::npos);
}

TEST_CASE("users of a suspended or cancelled tenant cannot be written") {
  auto t = make();
  CHECK_FALSE(check_writable(t).has_value());
  auto s = transition_tenant(t, "suspended", "", now).value();
  REQUIRE(check_writable(s).has_value());
  CHECK(check_writable(s)->code == errc::tenant_suspended);
  auto c = transition_tenant(s, "cancelled", "", now).value();
  CHECK(check_writable(c)->code == errc::tenant_cancelled);
}

TEST_CASE("seat limit counts users and creations in flight") {
  auto t = make(); // free: 5 users
  t.mutable_usage()->set_users(4);
  CHECK_FALSE(check_seat_available(t, 0).has_value());
  auto f = check_seat_available(t, 1);
  REQUIRE(f.has_value());
  CHECK(f->code == errc::limit_exceeded);
  bool has_limit = false;
  for (auto& [k, v] : f->numbers)
    if (k == "limit" && v == 5)
      has_limit = true;
  CHECK(has_limit);
}

TEST_CASE("merge patch changes only what it names") {
  auto t = make();
  (*t.mutable_settings()->mutable_custom())["keep"] = "1";
  (*t.mutable_settings()->mutable_custom())["drop"] = "2";
  auto p =
    patch_tenant(t, R"({"name":"Acme GmbH","settings":{"primaryColor":"#112233","custom":{"drop":null,"new":"3"}}})",
                 tenant_rules{}, now + 5);
  REQUIRE(p.ok());
  const auto& n = p.value();
  CHECK(n.name() == "Acme GmbH");
  CHECK(n.slug() == "acme");
  CHECK(n.settings().primary_color() == "#112233");
  CHECK(n.settings().custom().at("keep") == "1");
  CHECK(n.settings().custom().count("drop") == 0);
  CHECK(n.settings().custom().at("new") == "3");
  CHECK(n.version() == 2);
  CHECK(protocol::timestamp_us(n.updated_at()) == now + 5);
  CHECK(protocol::timestamp_us(n.created_at()) == now);
}

TEST_CASE("merge patch refuses read-only and unknown fields and bad types") {
  auto t = make();
  for (auto body : {R"({"status":"active"})", R"({"version":7})", R"({"id":"x"})", R"({"usage":{"users":0}})"}) {
    auto p = patch_tenant(t, body, tenant_rules{}, now);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == errc::invalid);
    CHECK(p.error().errors.at(0).message == "read-only field");
  }
  auto u = patch_tenant(t, R"({"colour":"red"})", tenant_rules{}, now);
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().errors.at(0).message == "unknown field");
  auto ty = patch_tenant(t, R"({"name":42})", tenant_rules{}, now);
  REQUIRE_FALSE(ty.ok());
  auto arr = patch_tenant(t, R"([1,2])", tenant_rules{}, now);
  REQUIRE_FALSE(arr.ok());
  auto bad = patch_tenant(t, R"({"name":)", tenant_rules{}, now);
  REQUIRE_FALSE(bad.ok());
}

TEST_CASE("changing plan changes limits; lowering below usage is refused") {
  auto t = make("acme", "pro");
  t.mutable_usage()->set_users(7);
  auto down = patch_tenant(t, R"({"plan":"free"})", tenant_rules{}, now);
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().code == errc::plan_below_usage);
  CHECK(down.error().detail.find("5 users") != std::string::npos);
  CHECK(down.error().detail.find("has 7") != std::string::npos);
  auto side = patch_tenant(t, R"({"plan":"starter"})", tenant_rules{}, now);
  REQUIRE(side.ok());
  CHECK(side.value().limits().max_users() == 25);
  auto up = patch_tenant(t, R"({"plan":"enterprise"})", tenant_rules{}, now);
  REQUIRE(up.ok());
  CHECK_FALSE(up.value().limits().has_max_users());
}

TEST_CASE("trialEndsAt can be moved while in trial, and only then") {
  auto t = make();
  auto later = patch_tenant(t, R"({"trialEndsAt":"2027-03-01T00:00:00Z"})", tenant_rules{}, now);
  REQUIRE(later.ok());
  CHECK(protocol::format_rfc3339(protocol::timestamp_us(later.value().trial_ends_at())) ==
        "2027-03-01T00:00:00.000000Z");
  auto removed = patch_tenant(t, R"({"trialEndsAt":null})", tenant_rules{}, now);
  REQUIRE_FALSE(removed.ok());
  CHECK(removed.error().errors.at(0).field == "trialEndsAt");
  auto garbage = patch_tenant(t, R"({"trialEndsAt":"next tuesday"})", tenant_rules{}, now);
  REQUIRE_FALSE(garbage.ok());

  auto active = transition_tenant(t, tenant_status::active, "", now);
  REQUIRE(active.ok());
  auto moved = patch_tenant(active.value(), R"({"trialEndsAt":"2027-03-01T00:00:00Z"})", tenant_rules{}, now);
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.error().code == errc::conflict);
  CHECK(moved.error().detail.find("active") != std::string::npos);
}

TEST_CASE("monthly usage counts from 0 again in a new month (injected clock)") {
  // 2026-12-31T23:59:59Z and one second later.
  constexpr std::int64_t dec31 = 1798761599LL * 1'000'000, jan1 = dec31 + 1'000'000;
  CHECK(protocol::month_of(dec31) == "2026-12");
  CHECK(protocol::month_of(jan1) == "2027-01");
  v1::Tenant t;
  t.set_plan("free");
  t.mutable_usage()->set_month("2026-12");
  t.mutable_usage()->set_users(3);
  t.mutable_usage()->set_storage_mb(7);
  auto a = track_usage(t, 5, 2, 0, dec31);
  REQUIRE(a.ok());
  CHECK(a.value().usage().api_calls_this_month() == 5);
  CHECK(a.value().usage().month() == "2026-12");
  auto b = track_usage(a.value(), 1, 0, 0, jan1);
  REQUIRE(b.ok());
  CHECK(b.value().usage().api_calls_this_month() == 1);
  CHECK(b.value().usage().ai_requests_this_month() == 0);
  CHECK(b.value().usage().month() == "2027-01");
  CHECK(b.value().usage().users() == 3); // not monthly
  CHECK(b.value().usage().storage_mb() == 7);
  auto seen = usage_at(a.value().usage(), jan1);
  CHECK(seen.api_calls_this_month() == 0);
  CHECK(seen.month() == "2027-01");
  CHECK(usage_at(a.value().usage(), dec31).api_calls_this_month() == 5);
}
