// The role matrix of docs/security.md at the domain level: every permission ×
// every role × own tenant / another tenant. The HTTP e2e test checks the same
// matrix route by route.
#include <catch2/catch.hpp>
#include <map>

#include "colony/actors/access/access_model.hpp"

using namespace colony::actors::access;

namespace {

const std::string own = "0190a000-0000-7000-8000-00000000000a";
const std::string other = "0190a000-0000-7000-8000-00000000000b";

principal of(std::string role, std::string tenant = own, std::string subject = "u-1") {
  principal p;
  p.kind = "api_key";
  p.subject = std::move(subject);
  p.tenant_id = std::move(tenant);
  p.roles = {std::move(role)};
  return p;
}

} // namespace

TEST_CASE("every permission × role × tenant decides as the matrix says") {
  // role → permissions allowed in its own tenant
  const std::map<std::string, std::vector<permission>> allowed{
    {"owner",
     {permission::tenant_read, permission::tenant_inspect, permission::users_read, permission::manage, permission::own,
      permission::self_write}},
    {"admin",
     {permission::tenant_read, permission::tenant_inspect, permission::users_read, permission::manage,
      permission::self_write}},
    {"member", {permission::tenant_read, permission::users_read}},
    {"viewer", {permission::tenant_read, permission::tenant_inspect, permission::users_read}},
    {"none", {}},
  };
  const std::vector<permission> all{permission::platform,   permission::tenant_read, permission::tenant_inspect,
                                    permission::users_read, permission::manage,      permission::own,
                                    permission::self_write, permission::observe,     permission::operate};
  auto platform_level = [](permission p) {
    return p == permission::platform || p == permission::observe || p == permission::operate;
  };
  for (const auto& [role, perms] : allowed) {
    auto who = of(role);
    for (auto p : all) {
      INFO("role " << role << ", permission " << static_cast<int>(p));
      bool yes = std::find(perms.begin(), perms.end(), p) != perms.end();
      if (platform_level(p)) {
        CHECK(authorize(who, p, {}) == decision::forbidden);
        continue;
      }
      CHECK(authorize(who, p, own, "someone-else") == (yes ? decision::allow : decision::forbidden));
      CHECK(authorize(who, p, other, "someone-else") == decision::hidden); // never another tenant's
    }
  }
  auto root = of("platform_admin", "");
  for (auto p : all) {
    // Everything but the operator actions, which need the operator role itself.
    auto want = p == permission::operate ? decision::forbidden : decision::allow;
    CHECK(authorize(root, p, own) == want);
    CHECK(authorize(root, p, other) == want);
  }
}

TEST_CASE("a platform operator watches and acts, and may do nothing else") {
  auto op = of("platform_operator", "");
  for (auto p : {permission::platform, permission::tenant_read, permission::tenant_inspect, permission::users_read,
                 permission::manage, permission::own, permission::self_write}) {
    INFO("permission " << static_cast<int>(p));
    CHECK(authorize(op, p, p == permission::platform ? "" : own, "someone") != decision::allow);
  }
  CHECK(authorize(op, permission::observe, {}) == decision::allow);
  CHECK(authorize(op, permission::operate, {}) == decision::allow);
  principal both = op;
  both.roles.emplace_back("platform_admin");
  CHECK(authorize(both, permission::operate, {}) == decision::allow);
  CHECK(authorize(both, permission::platform, {}) == decision::allow);
  // The role inside a tenant's credential grants nothing.
  auto tenant_op = of("platform_operator", own);
  CHECK(authorize(tenant_op, permission::observe, {}) == decision::forbidden);
  CHECK(authorize(tenant_op, permission::operate, {}) == decision::forbidden);
}

TEST_CASE("a member may write only itself; a platform_admin role inside a tenant grants nothing more") {
  auto m = of("member", own, "u-1");
  CHECK(authorize(m, permission::self_write, own, "u-1") == decision::allow);
  CHECK(authorize(m, permission::self_write, own, "u-2") == decision::forbidden);
  CHECK(authorize(m, permission::self_write, own, "") == decision::forbidden);
  CHECK(authorize(of("viewer", own, "u-1"), permission::self_write, own, "u-1") == decision::forbidden);
  auto tenant_root = of("platform_admin", own);
  CHECK(authorize(tenant_root, permission::platform, {}) == decision::forbidden);
  CHECK(authorize(tenant_root, permission::users_read, own) == decision::forbidden);
  CHECK(authorize(tenant_root, permission::users_read, other) == decision::hidden);
  auto nobody = of("viewer", "");
  CHECK(authorize(nobody, permission::tenant_read, own) == decision::hidden);
}

TEST_CASE("who may grant which roles, and what a member may change about itself") {
  CHECK(first_ungrantable(of("owner"), {"owner", "admin", "member", "viewer"}).empty());
  CHECK(first_ungrantable(of("admin"), {"admin", "member", "viewer"}).empty());
  CHECK(first_ungrantable(of("admin"), {"member", "owner"}) == "owner");
  CHECK(first_ungrantable(of("member"), {"viewer"}) == "viewer");
  CHECK(first_ungrantable(of("owner"), {"platform_admin"}) == "platform_admin");
  CHECK(first_ungrantable(of("platform_admin", ""), {"owner"}).empty());
  CHECK(first_field_not_self_writable({"name", "email", "attributes"}).empty());
  CHECK(first_field_not_self_writable({"name", "roles"}) == "roles");
  CHECK(first_field_not_self_writable({"status"}) == "status");
}
