// The outbox: committed events in commit order (the event feed, the relay),
// marking them published, and the backlog the relay has not published.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"
#include "colony/actors/ports/entity_store.hpp"

namespace colony::actors {

/// A page of committed events after position `after`, in commit order. One
/// writer per store commits, so positions grow in commit order and a reader
/// that resumes after the last position it saw misses nothing.
struct event_query {
  std::string tenant_id; // empty: every tenant
  std::int64_t after = 0;
  int limit = 100;
  bool unpublished_only = false; // the relay's view: not yet acknowledged by Kafka
  bool latest = false;           // the last `limit` events (in position order); `after` is ignored
};

struct event_row {
  std::int64_t position = 0;
  std::string payload; // colony.v1.Event, serialized
};

struct event_page {
  store_status status = store_status::ok;
  std::vector<event_row> rows;
  std::string detail;
};

struct outbox_backlog {
  store_status status = store_status::ok;
  std::int64_t count = 0;     // rows not yet published
  std::int64_t oldest_us = 0; // created_us of the oldest of them; 0 when none
  std::string detail;
};

using outbox_store =
  caf::typed_actor<caf::replies_to<events_atom, event_query>::with<event_page>,
                   caf::replies_to<published_atom, std::vector<std::int64_t>, std::int64_t>::with<commit_outcome>,
                   caf::replies_to<backlog_atom>::with<outbox_backlog>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::event_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::event_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::outbox_backlog)
