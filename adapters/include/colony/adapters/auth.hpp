// Authentication at the HTTP edge: turns an `Authorization: Bearer` value into
// a principal (actors/access), or says why not in RFC 6750 terms.
//
// - JWTs from any OIDC issuer: HS256 with a configured secret; RS256 and ES256
//   with keys from a JWKS file or http(s) URL (`kid` selects the key, so keys
//   rotate; the set is re-read when the file changes, when a token names an
//   unknown kid, and every `jwks_refresh`). Checks signature, alg (only those
//   configured; never `none`), iss, aud, exp/nbf with leeway. Signatures are
//   verified by OpenSSL (EVP), never by code of ours.
// - API keys ("colony_<id>_<secret>"): minted here, stored as SHA-256 hashes.
//
// jwt_verifier::verify may be called from any thread concurrently; it never
// blocks on the network (a JWKS URL is fetched by a background thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "colony/actors/access/access_model.hpp"
#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/module.hpp"

namespace colony::adapters {

struct jwt_options {
  std::string hs256_secret;               // empty: HS256 off
  std::string jwks;                       // file path or http(s):// URL; empty: RS256/ES256 off
  std::string issuer;                     // empty: iss not checked
  std::string audience;                   // empty: aud not checked
  std::chrono::seconds leeway{60};        // clock skew allowed on exp and nbf
  std::chrono::seconds jwks_refresh{300}; // a URL is re-fetched this often
  std::string tenant_claim = "tenant_id"; // claim naming the caller's tenant
  std::string roles_claim = "roles";      // dotted path to the roles array, e.g. realm_access.roles
  std::string user_claim = "sub";         // claim naming the caller's Colony user id
  std::string ca_file;                    // extra CAs for an https JWKS URL

  [[nodiscard]] bool enabled() const { return !hs256_secret.empty() || !jwks.empty(); }
};

/// Why a credential was refused, as RFC 6750 puts it.
struct auth_error {
  std::string error;       // invalid_token | invalid_request
  std::string description; // for the WWW-Authenticate header and the problem detail; never echoes secrets
};

using auth_result = std::variant<actors::access::principal, auth_error>;

class jwt_verifier {
public:
  /// Loads the JWKS once; throws std::runtime_error naming what is wrong
  /// (the node then refuses to start).
  explicit jwt_verifier(jwt_options opts);
  ~jwt_verifier();
  jwt_verifier(const jwt_verifier&) = delete;
  jwt_verifier& operator=(const jwt_verifier&) = delete;

  [[nodiscard]] auth_result verify(std::string_view token, std::int64_t now_s) const;
  /// Number of keys in the current key set (for logs and tests).
  [[nodiscard]] std::size_t key_count() const;
  [[nodiscard]] const jwt_options& options() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// True if `token` has the shape of a Colony API key (not a JWT).
[[nodiscard]] bool looks_like_api_key(std::string_view token);
/// The id part of an API key, or nullopt if malformed.
[[nodiscard]] std::optional<std::string> api_key_id(std::string_view token);
/// Hex SHA-256 of a whole key: what the store keeps.
[[nodiscard]] std::string api_key_hash(std::string_view token);
/// Constant-time comparison of two hashes.
[[nodiscard]] bool same_hash(std::string_view a, std::string_view b);

struct minted_key {
  std::string key;         // shown once, never stored
  actors::api_key_row row; // what the store keeps (hash, not key)
};
/// A new random key (OpenSSL RAND_bytes). Throws std::runtime_error without randomness.
[[nodiscard]] minted_key mint_api_key(std::string tenant_id, std::vector<std::string> roles, std::string name,
                                      std::string created_by, std::int64_t now_us, std::int64_t expires_us);

/// The principal an API key row stands for, or why it is no longer valid.
[[nodiscard]] auth_result api_key_principal(const actors::api_key_row& row, std::int64_t now_us);

/// Writes `key` to `path` atomically with mode 0600 (temp file + rename).
/// Throws std::runtime_error naming the path on failure.
void write_secret_file(const std::string& path, const std::string& key);

/// The auth module (auth-*, auth.*): provides the node's `const
/// jwt_verifier` when tokens are configured, else makes sure a platform
/// admin API key exists (<data-dir>/admin.key on first start).
[[nodiscard]] std::unique_ptr<runtime::module> auth_module();

} // namespace colony::adapters
