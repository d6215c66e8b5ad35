// Entity persistence: load an entity's last committed state, commit a change with its outbox
// events, timers and audit records atomically (group commit: many concurrent
// commits share a transaction, each succeeds or fails on its own), list pages
// for the read side, resolve slugs and external ids, tell whether a message
// key was applied, and report health.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"
#include "colony/actors/ports/plugin_store.hpp"

namespace colony::actors {

/// The indexed columns of an entity next to its serialized state.
struct entity_row {
  std::string tenant_id;
  std::string id;
  std::string unique_key; // tenant: slug; user: lower-cased email
  std::string name;
  std::string status;
  std::string plan;  // tenant only
  std::string roles; // user only: ",admin,member,"
  std::int64_t created_us = 0;
  std::int64_t updated_us = 0;
  std::uint32_t version = 0;
  std::string state; // the colony.v1 message, serialized
};

/// A durable timer. Its id names what it is for (e.g. "trial:<tenantId>"):
/// setting a timer with an existing id moves it.
struct timer_row {
  std::string id;
  std::string kind; // trial_expiry, ...
  std::string tenant_id;
  std::string target_id; // the entity it is addressed to
  std::int64_t due_us = 0;
  std::int32_t attempts = 0;
  std::string payload;
};

enum class change_kind : std::uint8_t { insert = 1, update, remove };

struct change {
  entity_kind kind = entity_kind::tenant;
  change_kind what = change_kind::insert;
  entity_row row;                     // for remove: tenant_id and id suffice
  std::uint32_t expected_version = 0; // update/remove: the version being replaced
  std::int32_t user_count_delta = 0;  // applied to the user's tenant in the same transaction
  std::vector<outbox_event> events;
  std::vector<timer_row> timers; // set (insert or move) in the same transaction
  std::string message_key;       // non-empty: the change applies at most once per key (duplicate otherwise)
  std::vector<std::pair<std::string, std::string>> external_ids; // (system, id) → this tenant
  std::vector<audit_record> audit;                               // written with the change, only if it commits
  std::string idempotency_scope; // non-empty: marks that Idempotency-Key's row committed, in this transaction
  std::vector<plugin_cursor_change> plugin_cursors; // on_event cursors opened, paused or removed with the change
};

struct commit_outcome {
  store_status status = store_status::ok;
  std::string field;  // for duplicate: which unique field
  std::string detail; // for logs
};

struct loaded {
  store_status status = store_status::ok;
  std::string state;
  std::uint32_t version = 0;
  std::int32_t user_count = 0; // tenants only
  std::string detail;
};

/// A page request of the read side. Sort is by (sort_field, id); `after_*` is
/// the keyset position of the last row of the previous page.
struct list_query {
  entity_kind kind = entity_kind::tenant;
  std::string tenant_id; // users only
  std::string status;
  std::string plan;                     // tenants only
  std::string role;                     // users only
  std::string q;                        // users only: substring of email or name
  std::string sort_field = "createdAt"; // createdAt | name | slug | email
  bool descending = false;
  bool has_after = false;
  std::string after_text;
  std::int64_t after_number = 0;
  std::string after_id;
  int limit = 50; // the store returns up to limit + 1 rows so the caller knows if more follow
};

struct list_row {
  std::string state;
  std::int32_t user_count = 0;
  std::string sort_text;
  std::int64_t sort_number = 0;
  std::string id;
};

struct row_page {
  store_status status = store_status::ok;
  std::vector<list_row> rows;
  std::string detail;
};

struct store_health {
  bool ready = false;
  std::string detail; // e.g. "sqlite:/var/colony.db ok" or why not
  std::int64_t since_us = 0;
};

using entity_store = caf::typed_actor<
  caf::replies_to<load_atom, entity_key>::with<loaded>, caf::replies_to<commit_atom, change>::with<commit_outcome>,
  caf::replies_to<list_atom, list_query>::with<row_page>, caf::replies_to<resolve_atom, std::string>::with<std::string>,
  caf::replies_to<resolve_atom, std::string, std::string>::with<std::string> /* (system, external id) -> tenant id */,
  caf::replies_to<processed_atom, std::string>::with<bool> /* was this message key applied? */,
  caf::replies_to<health_atom>::with<store_health>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::commit_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::loaded)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::list_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::row_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::store_health)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::change>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::loaded>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::commit_outcome>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::entity_key>)
