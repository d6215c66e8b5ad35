// User domain rules: email validation, roles, attributes, merge patch.
#include <catch2/catch.hpp>

#include "colony/actors/user/user_model.hpp"
#include "colony/protocol/json.hpp"

using namespace colony;
using namespace colony::actors;

namespace {
v1::User make(const std::string& email = "Ann@Example.com") {
  v1::CreateUserRequest req;
  req.set_email(email);
  req.set_name("Ann");
  auto u = create_user(req, "t1", "u1", 1000);
  REQUIRE(u.ok());
  return u.value();
}
} // namespace

TEST_CASE("email validation") {
  for (auto ok : {"a@b.co", "first.last+tag@sub.example.org", "X_Y@EXAMPLE.COM", "o'brien@ex-ample.io"})
    CHECK(valid_email(ok));
  for (auto bad : {"", "plain", "@b.co", "a@", "a@b", "a@b.c", "a b@c.de", "a@@b.co", "a@b..co", ".a@b.co", "a.@b.co",
                   "a@-b.co", "a@b-.co", "a@b.c0"})
    CHECK_FALSE(valid_email(bad));
  CHECK_FALSE(valid_email(std::string(65, 'a') + "@b.co"));
  CHECK(normalize_email("Ann@Example.COM") == "ann@example.com");
}

TEST_CASE("a new user gets defaults: member, active, version 1") {
  auto u = make();
  REQUIRE(u.roles_size() == 1);
  CHECK(u.roles(0) == "member");
  CHECK(u.status() == "active");
  CHECK(u.version() == 1);
  CHECK(u.tenant_id() == "t1");
  CHECK(u.email() == "Ann@Example.com"); // kept as given; uniqueness uses the normalized form
}

TEST_CASE("roles must be known and unique; status active or disabled") {
  v1::CreateUserRequest req;
  req.set_email("a@b.co");
  req.add_roles("root");
  auto r = create_user(req, "t", "u", 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors.at(0).field == "roles");
  req.clear_roles();
  req.add_roles("admin");
  req.add_roles("admin");
  CHECK_FALSE(create_user(req, "t", "u", 1).ok());
  req.clear_roles();
  req.add_roles("owner");
  req.add_roles("viewer");
  req.set_status("sleeping");
  r = create_user(req, "t", "u", 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors.at(0).field == "status");
  req.set_status("disabled");
  CHECK(create_user(req, "t", "u", 1).ok());
}

TEST_CASE("attributes are bounded to 16 KiB") {
  v1::CreateUserRequest req;
  req.set_email("a@b.co");
  (*req.mutable_attributes()->mutable_fields())["blob"].set_string_value(std::string(17 * 1024, 'x'));
  auto r = create_user(req, "t", "u", 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errors.at(0).field == "attributes");
}

TEST_CASE("user merge patch: nested attributes, nulls remove, read-only refused") {
  auto u = make();
  auto p1 = patch_user(u, R"({"attributes":{"team":"core","level":3}})", 2000);
  REQUIRE(p1.ok());
  auto p2 = patch_user(p1.value(), R"({"name":"Ann B","attributes":{"level":null,"tz":"UTC"}})", 3000);
  REQUIRE(p2.ok());
  const auto& n = p2.value();
  CHECK(n.name() == "Ann B");
  CHECK(n.version() == 3);
  const auto& f = n.attributes().fields();
  CHECK(f.at("team").string_value() == "core");
  CHECK(f.count("level") == 0);
  CHECK(f.at("tz").string_value() == "UTC");

  auto ro = patch_user(u, R"({"tenantId":"other"})", 1);
  REQUIRE_FALSE(ro.ok());
  CHECK(ro.error().errors.at(0).message == "read-only field");
  auto bad_email = patch_user(u, R"({"email":"nope"})", 1);
  REQUIRE_FALSE(bad_email.ok());
  CHECK(bad_email.error().errors.at(0).field == "email");
  auto roles = patch_user(u, R"({"roles":["admin","viewer"]})", 1);
  REQUIRE(roles.ok());
  CHECK(roles.value().roles_size() == 2);
}

TEST_CASE("JSON mapping: unknown fields and wrong types are errors naming the field") {
  v1::CreateUserRequest req;
  auto e1 = protocol::from_json(R"({"email":"a@b.co","nickname":"x"})", req);
  REQUIRE(e1.has_value());
  CHECK(e1->field == "nickname");
  CHECK(e1->message == "unknown field");
  auto e2 = protocol::from_json(R"({"email":5})", req);
  REQUIRE(e2.has_value());
  auto e3 = protocol::from_json(R"("text")", req);
  REQUIRE(e3.has_value());
  CHECK(e3->message.find("object") != std::string::npos);
  CHECK_FALSE(protocol::from_json(R"({"email":"a@b.co","roles":["admin"]})", req).has_value());
  CHECK(req.roles(0) == "admin");
}

TEST_CASE("client text that is not UTF-8 is made valid before it is echoed (found by fuzz_http)") {
  using colony::protocol::valid_utf8;
  CHECK(valid_utf8("plain ascii") == "plain ascii");
  CHECK(valid_utf8("grüße €𝄞") == "grüße €𝄞");
  CHECK(valid_utf8("/v1/t\xa2\x91"
                   "ants") ==
        "/v1/t\xEF\xBF\xBD\xEF\xBF\xBD"
        "ants");
  CHECK(valid_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");                 // overlong '/'
  CHECK(valid_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // a surrogate
  CHECK(valid_utf8("end\xe2\x82") == "end\xEF\xBF\xBD\xEF\xBF\xBD");           // cut short
}

TEST_CASE("owner_guard: without an owner's powers, an owner's roles, status and existence are out of reach") {
  v1::User owner;
  owner.add_roles("owner");
  owner.set_status("active");
  v1::User member;
  member.add_roles("member");
  member.set_status("active");
  auto demoted = owner;
  demoted.set_roles(0, "member");
  auto disabled = owner;
  disabled.set_status("disabled");
  auto renamed = owner;
  renamed.set_name("Ann");
  auto promoted = member;
  promoted.set_roles(0, "admin");
  // An admin (no owner powers):
  CHECK(owner_guard(owner, &demoted, false)->code == errc::forbidden);
  CHECK(owner_guard(owner, &disabled, false)->code == errc::forbidden);
  CHECK(owner_guard(owner, nullptr, false)->code == errc::forbidden);
  CHECK_FALSE(owner_guard(owner, &renamed, false));
  CHECK_FALSE(owner_guard(member, &promoted, false));
  CHECK_FALSE(owner_guard(member, nullptr, false));
  // An owner or the platform:
  CHECK_FALSE(owner_guard(owner, &demoted, true));
  CHECK_FALSE(owner_guard(owner, nullptr, true));
}
