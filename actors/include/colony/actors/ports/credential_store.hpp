// API keys (hashes only).
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"
#include "colony/actors/ports/idempotency_store.hpp"

namespace colony::actors {

/// API keys: only the SHA-256 of a key is stored, never the key. A key
/// without a tenant is a platform key. One message type with an operation.
struct api_key_row {
  std::string id;
  std::string tenant_id; // empty: a platform key
  std::string name;
  std::vector<std::string> roles;
  std::string hash;       // hex SHA-256 of the whole key
  std::string created_by; // credential that made it ("bootstrap" for the first admin key)
  std::int64_t created_us = 0;
  std::int64_t expires_us = 0; // 0: never
  std::int64_t revoked_us = 0; // 0: not revoked
};

struct api_key_op {
  enum class kind : std::uint8_t {
    create,         // key
    list,           // tenant_id (newest first)
    get,            // id (any tenant: for authentication)
    revoke,         // tenant_id, id, now_us (not_found if no such live key)
    count_platform, // live platform keys → count
  } what = kind::list;
  api_key_row key;
  std::optional<idempotency_op> answer; // create: the Idempotency-Key's answer (finish), in the same transaction
  std::string tenant_id;
  std::string id;
  std::int64_t now_us = 0;
  std::vector<audit_record> audit; // create/revoke: written in the same transaction (revoke: only if it revoked)
};

struct api_key_result {
  store_status status = store_status::ok;
  std::vector<api_key_row> keys;
  std::int64_t count = 0;
  std::string detail;
};

using credential_store = caf::typed_actor<caf::replies_to<api_key_atom, api_key_op>::with<api_key_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_key_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_key_result)
