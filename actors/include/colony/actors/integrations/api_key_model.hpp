// API keys as the domain sees them: what a creation may ask for. Pure code;
// minting and hashing are the auth adapter's, storage the store's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/domain.hpp"

namespace colony::actors {

struct api_key_spec {
  std::string name;
  std::vector<std::string> roles; // 1 to 4 distinct tenant roles
  std::int64_t expires_us = 0;    // 0: never
};

/// A creation body (a JSON object that passed the JSON gate): name (≤ 100
/// characters), roles (required: distinct tenant roles), expiresAt (an RFC
/// 3339 time after `now_us`); unknown fields are refused.
[[nodiscard]] outcome<api_key_spec> api_key_spec_from_json(std::string_view body, std::int64_t now_us);

} // namespace colony::actors
