// Who may do what: the roles of Colony and the permission each route needs.
// Pure domain code (no I/O): the HTTP edge authenticates a caller into a
// `principal`, then asks `authorize` before it touches any tenant's data.
//
// Isolation comes first: a credential of tenant A asking about tenant B gets
// `hidden` (answered as 404, exactly like a tenant that does not exist), so a
// caller cannot even learn which tenant ids exist. Only within its own tenant
// does a missing role show as `forbidden` (403).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace colony::actors::access {

/// Roles, from most to least powerful. platform_admin is not a tenant role:
/// it belongs to credentials without a tenant (the bootstrap admin key, or a
/// token whose roles claim lists it). platform_operator, also for platform
/// credentials only, may watch the platform (the console and its admin API)
/// and take the console's operator actions, and nothing else; platform_admin
/// does not imply it (docs/console.md: operator actions).
inline constexpr std::string_view platform_admin = "platform_admin";
inline constexpr std::string_view platform_operator = "platform_operator";
inline constexpr std::string_view owner = "owner";
inline constexpr std::string_view admin = "admin";
inline constexpr std::string_view member = "member";
inline constexpr std::string_view viewer = "viewer";

/// The roles a tenant credential (user or API key) may hold.
[[nodiscard]] bool is_tenant_role(std::string_view r);

/// An authenticated caller.
struct principal {
  std::string kind;       // "jwt" or "api_key"
  std::string subject;    // the token's user claim (default sub), or the API key's id
  std::string credential; // what authenticated: "jwt:<iss>#<sub>" or "api_key:<id>" (for logs and audit)
  std::string tenant_id;  // empty for platform credentials
  std::vector<std::string> roles;

  [[nodiscard]] bool has(std::string_view role) const;
  [[nodiscard]] bool is_platform_admin() const { return has(platform_admin); }
};

/// What a route does, in terms the role matrix speaks (docs/security.md).
enum class permission : std::uint8_t {
  platform,       // anything outside one tenant: create/list tenants, the global event feed, activate/suspend
  tenant_read,    // read the tenant itself: every tenant role
  tenant_inspect, // read usage, events, webhooks of the tenant: viewer, admin, owner
  users_read,     // list and read users: every tenant role
  manage,         // change users, keys, settings, webhooks, plan: admin, owner
  own,            // the owner's decisions: cancel the tenant
  self_write,     // update one user: admin, owner, or a member updating itself (see below)
  observe,        // watch the platform (the console, /v1/admin, /v1/cluster reads): platform_admin, platform_operator
  operate,        // the console's operator actions (drain a node, passivate an actor): platform_operator only
  catalog,        // read the plugin registry: platform_admin, and a tenant's owner or admin
};

enum class decision : std::uint8_t {
  allow = 1,
  forbidden, // 403: own tenant, missing role
  hidden,    // 404: another tenant's resource (no existence leak)
};

/// May `who` do `what` in `tenant_id` (empty for platform routes)?
/// `target_user` is the user a self_write addresses.
[[nodiscard]] decision authorize(const principal& who, permission what, std::string_view tenant_id,
                                 std::string_view target_user = {});

/// Roles `who` may hand out (to a user or an API key) in its tenant: an owner
/// any tenant role, an admin any but owner, nobody else any. Empty string if
/// all are grantable, else the first role that is not.
[[nodiscard]] std::string first_ungrantable(const principal& who, const std::vector<std::string>& roles);

/// A member updating itself may change its profile (name, email, attributes)
/// but never its roles or status. Empty if the fields are allowed, else the
/// first field that is not.
[[nodiscard]] std::string first_field_not_self_writable(const std::vector<std::string>& fields);

} // namespace colony::actors::access
