// What GDPR erasure removes (actors/user/personal_data.hpp).
#include <catch2/catch.hpp>

#include "colony/actors/user/personal_data.hpp"

using namespace colony;
using namespace colony::actors;

TEST_CASE("erasure removes a user's personal data from its events and leaves a tombstone", "[gdpr]") {
  v1::Event ev;
  ev.set_id("e1");
  ev.set_type("user.updated");
  auto* u = ev.mutable_user_changed()->mutable_state();
  u->set_id("u1");
  u->set_email("ann@example.com");
  u->set_name("Ann");
  (*u->mutable_attributes()->mutable_fields())["team"].set_string_value("core");
  u->add_roles("admin");
  v1::Event scrubbed;
  REQUIRE(scrubbed.ParseFromString(scrub_user_event(ev.SerializeAsString())));
  const auto& s = scrubbed.user_changed().state();
  CHECK(s.email().empty());
  CHECK(s.name().empty());
  CHECK(s.attributes().fields().empty());
  CHECK(s.id() == "u1"); // who it was stays: the id is not personal data
  CHECK(s.roles_size() == 1);
  CHECK(scrubbed.type() == "user.updated");

  v1::Event other;
  other.set_type("tenant.created");
  CHECK(scrub_user_event(other.SerializeAsString()) == other.SerializeAsString());
  CHECK(scrub_user_event("\xff\xff") == "\xff\xff"); // unreadable: left as it is

  auto t = erased_event("t1", "u1", "req", "00-trace", 1'800'000'000'000'000);
  CHECK(t.type() == "user.erased");
  CHECK(t.tenant_id() == "t1");
  CHECK(t.aggregate_kind() == "user");
  CHECK(t.aggregate_id() == "u1");
  CHECK(t.user_deleted().user_id() == "u1");
  CHECK(t.request_id() == "req");
  CHECK(t.occurred_at().seconds() == 1'800'000'000);
  CHECK(t.id().size() == 36);
}
