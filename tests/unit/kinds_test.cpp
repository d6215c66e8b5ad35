// The kind registry (actors/kinds.hpp): kinds are found by id, timers map to
// their kind's command, and a taken id or timer name is refused.
#include <catch2/catch.hpp>

#include "colony/actors/entities.hpp"
#include "colony/actors/kinds.hpp"
#include "colony/v1/tenant.pb.h"

using namespace colony::actors;

TEST_CASE("the built-in kinds register themselves", "[kinds]") {
  const auto& k = builtin_kinds();
  REQUIRE(k.find(entity_kind::tenant) != nullptr);
  REQUIRE(k.find(entity_kind::user) != nullptr);
  CHECK(k.find(static_cast<entity_kind>(9)) == nullptr);
  CHECK(std::string{to_string(entity_kind::tenant)} == "tenant");
  CHECK(std::string{to_string(entity_kind::user)} == "user");
  CHECK(std::string{to_string(static_cast<entity_kind>(9))} == "unknown");
  CHECK(placement_key(entity_key{entity_kind::user, "t1", "u1"}) == "t1");
}

TEST_CASE("a due timer becomes its kind's command", "[kinds]") {
  timer_row t;
  t.id = "x1";
  t.kind = "trial_expiry";
  t.tenant_id = "t1";
  t.target_id = "t1";
  auto c = builtin_kinds().timer_command(t);
  REQUIRE(c);
  CHECK(c->first.kind == entity_kind::tenant);
  CHECK(c->first.id == "t1");
  CHECK(c->second.what == op::expire_trial);
  CHECK(c->second.meta.request_id == "timer-x1");
  t.kind = "payment_grace";
  c = builtin_kinds().timer_command(t);
  REQUIRE(c);
  CHECK(c->second.what == op::billing);
  REQUIRE(c->second.payload != nullptr);
  CHECK(static_cast<const colony::v1::BillingChange&>(*c->second.payload).kind() == "grace_expired");
  t.kind = "no_such_timer";
  CHECK_FALSE(builtin_kinds().timer_command(t));
}

TEST_CASE("a kind id or a timer name is registered once", "[kinds]") {
  kind_registry r;
  kind_spec a;
  a.kind = static_cast<entity_kind>(3);
  a.name = "plugin";
  a.timers.push_back({"tick", [](const timer_row&) { return command{}; }});
  r.add(a);
  kind_spec same_id = a;
  same_id.timers.clear();
  CHECK_THROWS_AS(r.add(same_id), std::invalid_argument);
  kind_spec same_timer;
  same_timer.kind = static_cast<entity_kind>(4);
  same_timer.name = "model";
  same_timer.timers.push_back({"tick", [](const timer_row&) { return command{}; }});
  CHECK_THROWS_AS(r.add(same_timer), std::invalid_argument);
  kind_spec out_of_range;
  out_of_range.kind = static_cast<entity_kind>(max_kinds);
  CHECK_THROWS_AS(r.add(out_of_range), std::invalid_argument);
  kind_spec zero;
  CHECK_THROWS_AS(r.add(zero), std::invalid_argument);
}
