#include "colony/actors/user/user_model.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"

namespace colony::actors {
namespace {

constexpr std::array<std::string_view, 4> known_roles{"owner", "admin", "member", "viewer"};

failure invalid(std::string field, std::string message) {
  failure f = fail(errc::invalid, "the user is not valid: " + field + " " + message);
  f.errors.push_back({std::move(field), std::move(message)});
  return f;
}

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

} // namespace

bool valid_email(std::string_view email) {
  if (email.size() > 254)
    return false;
  auto at = email.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64)
    return false;
  auto local = email.substr(0, at);
  auto domain = email.substr(at + 1);
  static constexpr std::string_view local_specials = "!#$%&'*+/=?^_`{|}~.-";
  for (char c : local) {
    if (!(label_char(c) || local_specials.find(c) != std::string_view::npos))
      return false;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos)
    return false;
  std::size_t start = 0;
  while (start <= domain.size()) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? domain.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    if (!std::all_of(label.begin(), label.end(), label_char))
      return false;
    if (dot == std::string_view::npos) {
      // top-level domain: letters only, at least two
      if (label.size() < 2 ||
          !std::all_of(label.begin(), label.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
        return false;
      break;
    }
    start = dot + 1;
  }
  return true;
}

std::string normalize_email(std::string_view email) {
  std::string out{email};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<failure> validate_user(const v1::User& u) {
  if (!valid_email(u.email()))
    return invalid("email", "must be a valid email address");
  if (u.name().size() > 200)
    return invalid("name", "must be at most 200 characters");
  std::set<std::string> seen;
  for (const auto& r : u.roles()) {
    if (std::find(known_roles.begin(), known_roles.end(), r) == known_roles.end())
      return invalid("roles", "'" + r + "' is not a role (owner, admin, member, viewer)");
    if (!seen.insert(r).second)
      return invalid("roles", "'" + r + "' is listed twice");
  }
  if (u.status() != user_status::active && u.status() != user_status::disabled)
    return invalid("status", "must be 'active' or 'disabled'");
  if (u.has_attributes() && protocol::to_json(u.attributes()).size() > max_attributes_bytes)
    return invalid("attributes", "must be at most 16 KiB as JSON");
  return std::nullopt;
}

outcome<v1::User> create_user(const v1::CreateUserRequest& req, std::string tenant_id, std::string id,
                              std::int64_t now_us) {
  v1::User u;
  u.set_id(std::move(id));
  u.set_tenant_id(std::move(tenant_id));
  u.set_email(req.email());
  u.set_name(req.name());
  if (req.roles().empty())
    u.add_roles("member");
  else
    *u.mutable_roles() = req.roles();
  u.set_status(req.status().empty() ? std::string{user_status::active} : req.status());
  *u.mutable_attributes() = req.attributes();
  if (auto err = validate_user(u))
    return *err;
  protocol::set_timestamp(*u.mutable_created_at(), now_us);
  protocol::set_timestamp(*u.mutable_updated_at(), now_us);
  u.set_version(1);
  return u;
}

outcome<v1::User> patch_user(const v1::User& current, std::string_view patch, std::int64_t now_us) {
  static const std::vector<std::string> patchable{"email", "name", "roles", "status", "attributes"};
  v1::User next;
  if (auto err = protocol::apply_merge_patch(current, patch, patchable, next)) {
    failure f = fail(errc::invalid, err->field.empty() ? err->message : err->field + ": " + err->message);
    f.errors.push_back(*err);
    return f;
  }
  if (next.status().empty())
    next.set_status(std::string{user_status::active});
  if (auto err = validate_user(next))
    return *err;
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(current.version() + 1);
  return next;
}

std::optional<failure> owner_guard(const v1::User& current, const v1::User* next, bool owner_powers) {
  if (owner_powers)
    return std::nullopt;
  bool is_owner = std::find(current.roles().begin(), current.roles().end(), "owner") != current.roles().end();
  if (!is_owner)
    return std::nullopt;
  if (next == nullptr)
    return fail(errc::forbidden, "only an owner may delete an owner");
  bool same_roles =
    std::equal(current.roles().begin(), current.roles().end(), next->roles().begin(), next->roles().end());
  if (!same_roles || current.status() != next->status())
    return fail(errc::forbidden, "only an owner may change the roles or status of an owner");
  return std::nullopt;
}

} // namespace colony::actors
