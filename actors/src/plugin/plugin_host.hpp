// The host API a plugin's hooks reach through colony.* (docs/plugins.md,
// "Host API"), served by the plugin actor while the hook's coroutine waits:
// colony.kv.* from the store (reads) and the call's own writes, colony.emit
// into the call's events, colony.users.* from the tenant's own users. What a
// call writes (kv.set, kv.delete, emit) is kept with the call and written in
// one transaction when the hook ends well (commit_effects); a hook that fails
// leaves nothing behind. Used by plugin_actor.cpp only.
#pragma once

#include <caf/fwd.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/entities.hpp"
#include "colony/actors/ports/plugin_store.hpp"
#include "colony/v1/plugin.pb.h"

namespace colony::actors::detail {

/// Limits of the host API (besides plugins.kv-quota and plugins.host-calls).
inline constexpr std::size_t kv_max_key = 256;          // bytes
inline constexpr std::size_t kv_max_value = 64 * 1024;  // bytes of JSON
inline constexpr int kv_max_list = 100;                 // entries of one kv.list page
inline constexpr int max_emits = 50;                    // colony.emit per call
inline constexpr std::size_t emit_max_data = 64 * 1024; // bytes of JSON
inline constexpr int users_max_list = 100;

/// One hook call in progress: whose it is and what it has written so far.
struct host_call {
  std::string tenant_id;
  v1::PluginBinding binding; // the version that runs, its permissions
  std::string hook;
  request_meta meta;
  plugin_effects effects;
  std::size_t pending_bytes = 0; // of effects.writes, bounded by the quota
  bool chained = false;          // on_event of another plugin's event: colony.emit is refused
};

struct host_answer {
  std::string json = "null";
  std::optional<std::string> error; // raised in the plugin
};

/// Answers `request` ({"fn": "kv.get", "args": [...]}) through `reply`, at
/// once or after the store or a user actor answered. A misuse (a wrong type,
/// a key too long, no permission) is an error raised in the plugin, naming
/// the function.
void serve_host_call(caf::event_based_actor* self, const entity_env& env, host_call& call, const std::string& request,
                     std::function<void(host_answer)> reply);

/// Writes the call's effects (nothing to write: `done(nullopt)` at once);
/// `done` gets nullopt when written, else the fault and why.
void commit_effects(caf::event_based_actor* self, const entity_env& env, host_call& call,
                    std::function<void(std::optional<std::pair<std::string, std::string>>)> done);

} // namespace colony::actors::detail
