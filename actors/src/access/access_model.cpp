#include "colony/actors/access/access_model.hpp"

#include <algorithm>
#include <array>

namespace colony::actors::access {

bool is_tenant_role(std::string_view r) { return r == owner || r == admin || r == member || r == viewer; }

bool principal::has(std::string_view role) const {
  return std::any_of(roles.begin(), roles.end(), [&](const std::string& r) { return r == role; });
}

decision authorize(const principal& who, permission what, std::string_view tenant_id, std::string_view target_user) {
  bool platform_credential = who.tenant_id.empty();
  // An operator action needs the operator role itself: platform_admin alone
  // does not give it, so a console opened with the bootstrap key stays
  // read-only.
  if (what == permission::operate)
    return platform_credential && who.has(platform_operator) ? decision::allow : decision::forbidden;
  if (what == permission::observe && platform_credential && who.has(platform_operator))
    return decision::allow;
  if (who.is_platform_admin() && platform_credential)
    return decision::allow;
  if (what == permission::platform || what == permission::observe)
    return decision::forbidden;
  if (what == permission::catalog) // no tenant in the path: any tenant's owner or admin
    return !platform_credential && (who.has(owner) || who.has(admin)) ? decision::allow : decision::forbidden;
  // Every other permission is about one tenant, and only its own credentials
  // see it. A platform_admin role inside a tenant token grants nothing more.
  if (who.tenant_id.empty() || who.tenant_id != tenant_id)
    return decision::hidden;
  auto any = [&](std::initializer_list<std::string_view> roles) {
    return std::any_of(roles.begin(), roles.end(), [&](std::string_view r) { return who.has(r); });
  };
  bool ok = false;
  switch (what) {
    case permission::platform:
    case permission::observe:
    case permission::operate:
    case permission::catalog: break;
    case permission::tenant_read:
    case permission::users_read: ok = any({owner, admin, member, viewer}); break;
    case permission::tenant_inspect: ok = any({owner, admin, viewer}); break;
    case permission::manage: ok = any({owner, admin}); break;
    case permission::own: ok = any({owner}); break;
    case permission::self_write:
      ok = any({owner, admin}) || (who.has(member) && !target_user.empty() && who.subject == target_user);
      break;
  }
  return ok ? decision::allow : decision::forbidden;
}

std::string first_ungrantable(const principal& who, const std::vector<std::string>& roles) {
  bool platform = who.is_platform_admin() && who.tenant_id.empty();
  for (const auto& r : roles) {
    if (!is_tenant_role(r))
      return r;
    if (platform || who.has(owner))
      continue;
    if (who.has(admin) && r != owner)
      continue;
    return r;
  }
  return {};
}

std::string first_field_not_self_writable(const std::vector<std::string>& fields) {
  static constexpr std::array<std::string_view, 3> allowed{"name", "email", "attributes"};
  for (const auto& f : fields)
    if (std::find(allowed.begin(), allowed.end(), f) == allowed.end())
      return f;
  return {};
}

} // namespace colony::actors::access
