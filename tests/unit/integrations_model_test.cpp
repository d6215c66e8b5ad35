// The integration rules (actors/integrations): webhook registrations and
// matching, delivery backoff and dead letters, API key creation bodies.
#include <catch2/catch.hpp>

#include "colony/actors/integrations/api_key_model.hpp"
#include "colony/actors/integrations/webhook_model.hpp"

using namespace colony::actors;

namespace {
bool any_url(const std::string&) { return true; }
const std::int64_t now = 1'800'000'000'000'000; // 2027-01-15
} // namespace

TEST_CASE("a webhook registration is read with every field error", "[webhooks]") {
  auto ok = webhook_spec_from_json(
    R"({"url":"https://x.example/h","eventTypes":["user.*","tenant.created"],"description":"d"})", any_url);
  REQUIRE(ok);
  CHECK(ok.value().url == "https://x.example/h");
  CHECK(ok.value().event_types == std::vector<std::string>{"user.*", "tenant.created"});
  CHECK(ok.value().description == "d");

  auto missing = webhook_spec_from_json("{}", any_url);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::invalid);
  CHECK(missing.error().detail == "url: is required");

  auto bad = webhook_spec_from_json(R"({"url":"ftp://x","eventTypes":["User.Created"],"extra":1})",
                                    [](const std::string& u) { return u.starts_with("http"); });
  REQUIRE_FALSE(bad);
  REQUIRE(bad.error().errors.size() == 3);
  CHECK(bad.error().errors[0].field == "eventTypes"); // members in key order, then the URL's syntax
  CHECK(bad.error().errors[1].field == "extra");
  CHECK(bad.error().errors[2].field == "url");

  std::string many = R"({"url":"https://x","eventTypes":[)";
  for (int i = 0; i < 51; ++i)
    many += std::string{i ? "," : ""} + "\"a\"";
  auto too_many = webhook_spec_from_json(many + "]}", any_url);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.error().errors[0].message == "must be an array of at most 50 event types");

  auto not_object = webhook_spec_from_json("[1]", any_url);
  REQUIRE_FALSE(not_object);
  CHECK(not_object.error().code == errc::malformed);
  auto long_description =
    webhook_spec_from_json(R"({"url":"https://x","description":")" + std::string(501, 'x') + "\"}", any_url);
  REQUIRE_FALSE(long_description);
  CHECK(long_description.error().errors[0].field == "description");
}

TEST_CASE("an endpoint receives the events its patterns name", "[webhooks]") {
  CHECK(webhook_matches({}, "user.created"));
  CHECK(webhook_matches({"*"}, "tenant.suspended"));
  CHECK(webhook_matches({"user.*"}, "user.deleted"));
  CHECK_FALSE(webhook_matches({"user.*"}, "tenant.created"));
  CHECK_FALSE(webhook_matches({"user.*"}, "users.created"));
  CHECK(webhook_matches({"tenant.created", "user.created"}, "user.created"));
  CHECK_FALSE(webhook_matches({"user.created"}, "user.created.v2"));
  CHECK(valid_event_pattern("user.created"));
  CHECK_FALSE(valid_event_pattern(""));
  CHECK_FALSE(valid_event_pattern("User"));
  CHECK_FALSE(valid_event_pattern(std::string(101, 'a')));
}

TEST_CASE("a failed delivery backs off exponentially, then is dead-lettered", "[webhooks]") {
  using s = delivery_next::state;
  auto base = std::chrono::milliseconds(1000);
  CHECK(after_attempt(true, 3, 8, base, 0.3, now).what == s::delivered);
  auto first = after_attempt(false, 1, 8, base, 0.0, now);
  CHECK(first.what == s::retry);
  CHECK(first.next_attempt_us == now + 500'000); // 1 s × 2^0, jitter at 50 %
  auto third = after_attempt(false, 3, 8, base, 0.999999, now);
  CHECK(third.next_attempt_us > now + 3'999'000);
  CHECK(third.next_attempt_us <= now + 4'000'000); // 1 s × 2^2
  auto late = after_attempt(false, 30, 40, base, 0.999999, now);
  CHECK(late.next_attempt_us <= now + 3'600'000'000); // capped at one hour
  CHECK(after_attempt(false, 8, 8, base, 0.5, now).what == s::dead);
}

TEST_CASE("an API key creation is read with every field error", "[api_keys]") {
  auto ok =
    api_key_spec_from_json(R"({"name":"ci","roles":["admin","viewer"],"expiresAt":"2030-01-01T00:00:00Z"})", now);
  REQUIRE(ok);
  CHECK(ok.value().name == "ci");
  CHECK(ok.value().roles == std::vector<std::string>{"admin", "viewer"});
  CHECK(ok.value().expires_us == 1'893'456'000'000'000);

  auto missing = api_key_spec_from_json(R"({"name":"x"})", now);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().detail == "roles: is required");

  for (const char* roles : {R"([])", R"(["admin","admin"])", R"(["root"])",
                            R"(["owner","admin","member","viewer","owner"])", R"("admin")"}) {
    auto r = api_key_spec_from_json(std::string{R"({"roles":)"} + roles + "}", now);
    REQUIRE_FALSE(r);
    CHECK(r.error().errors[0].field == "roles");
  }
  auto past = api_key_spec_from_json(R"({"roles":["viewer"],"expiresAt":"2020-01-01T00:00:00Z"})", now);
  REQUIRE_FALSE(past);
  CHECK(past.error().errors[0].message == "must be in the future");
  auto garbled = api_key_spec_from_json(R"({"roles":["viewer"],"expiresAt":"tomorrow","x":1})", now);
  REQUIRE_FALSE(garbled);
  CHECK(garbled.error().errors.size() == 2);
  CHECK(api_key_spec_from_json("null", now).error().code == errc::malformed);
}
