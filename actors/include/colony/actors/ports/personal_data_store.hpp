// GDPR: the export of one user's data, or its erasure.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"

namespace colony::actors {

/// GDPR: everything stored about one user (export), or its erasure: the
/// user's events lose their personal data (email, name, attributes; ids,
/// roles, status and times stay), so do the webhook deliveries made of them
/// and the details of audit records about the user; a tombstone event and
/// the erasure's own audit record are written in the same transaction.
struct user_data_op {
  bool erase = false;
  std::string tenant_id;
  std::string user_id;
  std::vector<outbox_event> tombstone; // erase: the user.erased event
  std::vector<audit_record> audit;     // erase: the erasure's record
  std::int64_t now_us = 0;
};

struct user_data {
  store_status status = store_status::ok;
  std::vector<std::string> events;  // export: the user's colony.v1.Event payloads, in commit order
  std::vector<audit_record> audit;  // export: records about the user
  std::int64_t events_scrubbed = 0; // erase: how much was changed
  std::int64_t deliveries_scrubbed = 0;
  std::int64_t audit_scrubbed = 0;
  std::string detail;
};

using personal_data_store = caf::typed_actor<caf::replies_to<user_data_atom, user_data_op>::with<user_data>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::user_data_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::user_data)
