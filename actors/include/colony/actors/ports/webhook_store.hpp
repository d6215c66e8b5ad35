// Outbound webhooks: endpoints, deliveries and the fan-out cursor.
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
#include "colony/actors/ports/shard_scope.hpp"

namespace colony::actors {

/// Outbound webhooks: endpoints, deliveries, and the fan-out cursor. One
/// message type with an operation, served by the reader or the writer.
struct webhook_endpoint {
  std::string id;
  std::string tenant_id;
  std::string url;
  std::vector<std::string> event_types; // empty: every event; "tenant.*" matches a prefix
  std::string secret;
  std::string description;
  std::int64_t created_us = 0;
};

struct webhook_delivery {
  std::string id;
  std::string endpoint_id;
  std::string tenant_id;
  std::string event_id;
  std::string event_type;
  std::string body;
  std::string status = "pending"; // pending | delivered | dead
  std::int32_t attempts = 0;
  std::int64_t next_attempt_us = 0;
  std::int32_t last_status = 0; // HTTP status of the last attempt (0: none)
  std::string last_error;
  std::int64_t created_us = 0;
  std::int64_t updated_us = 0;
  std::string url; // due(): the endpoint's URL and secret
  std::string secret;
};

struct webhook_op {
  enum class kind : std::uint8_t {
    create_endpoint, // endpoint
    list_endpoints,  // tenant_id
    get_endpoint,    // tenant_id, endpoint_id
    delete_endpoint, // tenant_id, endpoint_id (its pending deliveries die)
    read_cursor,     // cursor → position
    enqueue,         // deliveries + cursor/position, in one transaction
    due,             // now_us, limit, scope, lease_us → pending deliveries due (with url and secret),
                     // claimed: not due again before lease_us unless recorded

    record,          // deliveries (status, attempts, next_attempt_us, last_*)
    list_deliveries, // tenant_id, endpoint_id, after (delivery id), limit
    backlog,         // now_us, scope → the pending deliveries: how many, how many due, the oldest's creation
  } what = kind::list_endpoints;
  webhook_endpoint endpoint;
  std::optional<idempotency_op> answer; // create_endpoint: the Idempotency-Key's answer (finish), same transaction
  std::string tenant_id;
  std::string endpoint_id;
  std::string cursor;
  std::int64_t position = 0;
  std::vector<webhook_delivery> deliveries;
  std::int64_t now_us = 0;
  int limit = 100;
  shard_scope scope;         // due: whose deliveries (the shards this node owns on a cluster)
  std::int64_t lease_us = 0; // due: a claimed delivery's next_attempt_us until its attempt is recorded
  std::string after;
  std::vector<audit_record> audit; // create/delete_endpoint: written in the same transaction
};

struct webhook_result {
  store_status status = store_status::ok;
  std::vector<webhook_endpoint> endpoints;
  std::vector<webhook_delivery> deliveries;
  std::int64_t position = 0;
  std::string detail;
  std::int64_t pending = 0, due_now = 0, oldest_pending_us = 0; // backlog (oldest: 0 when none)
};

using webhook_store = caf::typed_actor<caf::replies_to<webhook_atom, webhook_op>::with<webhook_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::webhook_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::webhook_result)
