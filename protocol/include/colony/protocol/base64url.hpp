// base64url (RFC 4648 §5) without padding: list cursors, JWT segments, API keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace colony::protocol {

[[nodiscard]] std::string base64url_encode(std::string_view in);
/// nullopt for characters outside the alphabet, padding, or an impossible length.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view in);

} // namespace colony::protocol
