// Secrets at rest: values the node must read back (webhook signing secrets)
// are stored sealed with AES-256-GCM under the node's secrets key, so that a
// copy of the database alone does not reveal them. The key comes from
// COLONY_SECRETS_KEY / secrets-key, or a key file (secrets-key-file, by
// default <data-dir>/secrets.key, made on first start with mode 0600); every
// node of a cluster needs the same key.
//
// Thread-safe: a secret_box is immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "colony/runtime/module.hpp"

namespace colony::adapters {

class secret_box {
public:
  /// A box with this 32-byte key.
  explicit secret_box(const std::array<unsigned char, 32>& key) : key_(key) {}

  /// The key from its text form (64 hex digits, or 43 base64url characters),
  /// nullopt if it is neither.
  [[nodiscard]] static std::optional<secret_box> from_text(std::string_view text);
  /// The key in `path`, written there first (random, mode 0600) if the file
  /// does not exist; throws std::runtime_error naming the file otherwise.
  [[nodiscard]] static secret_box from_file(const std::string& path);

  /// "enc:v1:" + base64url(nonce || ciphertext || tag); a fresh nonce each time.
  [[nodiscard]] std::string seal(std::string_view plain) const;
  /// The plain text of a sealed value; a value without the "enc:v1:" prefix
  /// (stored before sealing existed) is returned as it is; nullopt if it does
  /// not open under this key (another key, or tampered with).
  [[nodiscard]] std::optional<std::string> open(std::string_view stored) const;
  /// 16 hex digits that name the key without revealing it (an HMAC of a
  /// fixed text under it): the nodes of a cluster compare theirs at the hello.
  [[nodiscard]] std::string key_id() const;

private:
  std::array<unsigned char, 32> key_;
};

/// Hex HMAC-SHA256 of "<t>.<body>" under `secret`: the v1 of Stripe's
/// signature scheme, which Colony's outbound webhooks use too
/// (Colony-Signature: t=<unix>,v1=<hex>).
[[nodiscard]] std::string timestamped_signature(std::string_view secret, std::int64_t t, std::string_view body);

/// The secrets module (secrets-key, secrets-key-file): provides the node's
/// `const secret_box`.
[[nodiscard]] std::unique_ptr<runtime::module> secrets_module();

} // namespace colony::adapters
