// What several store ports share: the status of an answer, audit records and outbox rows.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::actors {

enum class store_status : std::uint8_t {
  ok = 1,
  not_found,   // no such row (load), or the row to update/delete is gone
  stale,       // optimistic concurrency: the row's version is not the expected one
  duplicate,   // a unique constraint: `field` names it (slug, email)
  unavailable, // the database cannot be reached; retry later
  error,       // anything else; detail is for logs, never for clients
  moved,       // cluster fence: this node does not own the entity's shard (nothing was written)
};

/// One audit record: who did what to which target, and how it ended. Written
/// in the same transaction as the change it describes where there is one.
/// Never updated; erasure (GDPR) blanks personal details only.
struct audit_record {
  std::int64_t position = 0; // assigned by the store, in commit order
  std::string id;            // UUIDv7
  std::string tenant_id;     // empty: platform-level
  std::int64_t at_us = 0;
  std::string actor;  // "api_key:<id>", "jwt:<iss>#<sub>", "stripe", "kafka", "anonymous"
  std::string action; // "user.created", "api_key.revoked", "auth.failed", "access.denied", ...
  std::string target; // "user:<id>", "tenant:<id>", "api_key:<id>", or METHOD path
  std::string request_id;
  std::string client;      // peer address
  std::string outcome;     // success | failure | denied
  std::int32_t status = 0; // HTTP status, where one is known
  std::string detail;      // short; never a secret
};

/// One outbox row, written in the same transaction as its change.
struct outbox_event {
  std::string id;
  std::string type;
  std::string payload; // colony.v1.Event, serialized
};

} // namespace colony::actors
