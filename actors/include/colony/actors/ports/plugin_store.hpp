// The plugin registry (published versions, immutable once written) and the
// on_event cursors: per (tenant, plugin) its read position in the tenant's
// events, its retry state and its dead letters.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"
#include "colony/actors/ports/shard_scope.hpp"

namespace colony::actors {

/// One published version. `state` is its colony.v1.PluginVersion (with the
/// source); name and version are its key.
struct plugin_row {
  std::string name;
  std::string version;
  std::string state;
  std::int64_t published_us = 0;
};

/// Where one (tenant, plugin) is in its tenant's events (on_event). Opened
/// at the outbox's end when the hook is enabled, in the enabling change's
/// transaction; paused while the plugin is suspended.
struct plugin_cursor {
  std::string tenant_id;
  std::string plugin;
  std::int64_t position = 0; // the last event handled (or dead-lettered)
  bool paused = false;
  std::int32_t attempts = 0;        // failed attempts at the event after `position`
  std::int64_t next_attempt_us = 0; // not due before
  std::string last_error;
  std::int64_t updated_us = 0;
};

/// An event on_event failed on `attempts` times: set aside, the cursor moved past it.
struct plugin_dead_letter {
  std::string id; // UUIDv7: the list's order
  std::string tenant_id;
  std::string plugin;
  std::int64_t position = 0;
  std::string event_id;
  std::string event_type;
  std::string event; // colony.v1.Event, serialized
  std::string error;
  std::int32_t attempts = 0;
  std::int64_t created_us = 0;
};

/// What a change does to a cursor (entity_store's change carries these).
struct plugin_cursor_change {
  enum class kind : std::uint8_t {
    open,   // insert at the outbox's end if absent; unpause if present
    pause,  // the plugin is suspended: not due until opened again
    remove, // disabled, or its version has no on_event
  } what = kind::open;
  std::string tenant_id;
  std::string plugin;
};

/// One entry of a plugin's key-value store (colony.kv), per (tenant, plugin).
/// `value` is JSON text; a write with no value deletes the key.
struct plugin_kv {
  std::string key;
  std::optional<std::string> value;
};

/// What a hook call leaves behind when it ends well (colony.kv.set/delete
/// and colony.emit), written in one transaction or not at all.
struct plugin_effects {
  std::vector<plugin_kv> writes;    // in call order; the last write of a key wins
  std::vector<outbox_event> events; // plugin.<name>.<type>, aggregate (plugin, name)
  std::int64_t quota = 0;           // bytes the (tenant, plugin) store may hold after the writes
};

/// Bytes an entry counts against the quota: key, value and a fixed overhead
/// (so a flood of tiny keys is bounded too).
[[nodiscard]] inline std::int64_t kv_footprint(std::size_t key, std::size_t value) {
  return static_cast<std::int64_t>(key + value + 64);
}

struct plugin_op {
  enum class kind : std::uint8_t {
    publish,      // row + audit, one transaction; duplicate if (name, version) exists
    list,         // after (a name), limit: every version of the first `limit` names after `after`
    versions,     // name: its versions, oldest first
    get,          // name, version
    cursor,       // tenant_id, name → cursors[0] (not_found: none)
    advance,      // cursors[0] written if its position in the store is still `position`
                  // (conflict otherwise), with dead_letters, one transaction
    due_cursors,  // now_us, scope, limit → unpaused cursors due with events after their position
    dead_letters, // tenant_id, name, after (an id), limit → dead_letters, oldest first
    kv_get,       // tenant_id, name, version (the key) → kv[0] (not_found: none)
    kv_list,      // tenant_id, name, version (a key prefix), after (a key), limit → kv, by key
    effects,      // tenant_id, name, effects: the writes and events, one transaction (fenced);
                  // over_quota (nothing written) if the store would hold more than effects.quota
  } what = kind::list;
  plugin_row row;
  std::string name;
  std::string version;
  std::string after;
  int limit = 50;
  std::vector<audit_record> audit;
  std::string tenant_id;
  std::int64_t position = 0;
  std::int64_t now_us = 0;
  shard_scope scope;
  std::vector<plugin_cursor> cursors;
  std::vector<plugin_dead_letter> dead_letters;
  plugin_effects effects;
};

struct plugin_result {
  store_status status = store_status::ok;
  std::vector<plugin_row> rows;
  std::vector<plugin_cursor> cursors;
  std::vector<plugin_dead_letter> dead_letters;
  std::vector<plugin_kv> kv;
  bool over_quota = false;   // effects: refused, the store would hold more than the quota
  std::int64_t kv_bytes = 0; // effects: what the store would have held (refused) or holds (written)
  std::string detail;
};

using plugin_store = caf::typed_actor<caf::replies_to<plugin_atom, plugin_op>::with<plugin_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::plugin_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::plugin_result)
