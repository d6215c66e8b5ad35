// User domain rules: validation, defaults and merge patch. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "colony/actors/domain.hpp"
#include "colony/v1/user.pb.h"

namespace colony::actors {

namespace user_status {
inline constexpr std::string_view active = "active";
inline constexpr std::string_view disabled = "disabled";
} // namespace user_status

inline constexpr std::size_t max_attributes_bytes = 16 * 1024;

/// A syntactically valid address (RFC 5321 limits, a dotted domain).
[[nodiscard]] bool valid_email(std::string_view email);

/// The form used for uniqueness: ASCII lower case.
[[nodiscard]] std::string normalize_email(std::string_view email);

[[nodiscard]] std::optional<failure> validate_user(const v1::User& u);

[[nodiscard]] outcome<v1::User> create_user(const v1::CreateUserRequest& req, std::string tenant_id, std::string id,
                                            std::int64_t now_us);

/// Applies an RFC 7396 merge patch (email, name, roles, status, attributes).
[[nodiscard]] outcome<v1::User> patch_user(const v1::User& current, std::string_view patch, std::int64_t now_us);

/// Owners are protected from callers without an owner's powers (an admin):
/// such a caller may not change an owner's roles or status, nor delete an
/// owner (`next` null). Nothing if the change is allowed.
[[nodiscard]] std::optional<failure> owner_guard(const v1::User& current, const v1::User* next, bool owner_powers);

} // namespace colony::actors
