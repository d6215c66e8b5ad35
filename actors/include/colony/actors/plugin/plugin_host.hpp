// The host API a plugin's hooks reach through colony.* (docs/plugins.md,
// "Host API"): every function's arguments checked and its answer shaped
// here, the same for the node and for `colonyd plugin-test`. What a call
// reads and fetches goes through a host_io: the node's store, user actors
// and outgoing client (plugin_host_node.cpp), or a test's fixture
// (plugin_kit.cpp). What a call writes (kv.set, kv.delete, emit) is kept
// with the call; the node writes it in one transaction when the hook ends
// well, and a hook that fails leaves nothing behind.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/entity_store.hpp"
#include "colony/actors/ports/outbound_http.hpp"
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

/// One of the tenant's users in a page of colony.users.list.
struct listed_user {
  std::int64_t sort_number = 0; // createdAt in µs on the node: the page's keyset position with the id
  std::string id;
  std::string json; // the user as the API shows it
};

/// Where the host API's reads and fetches go. Each answers through its
/// callback, at once or later; an error is a sentence the plugin sees
/// after "colony.<fn>: ".
class host_io {
public:
  template <class T>
  using then_fn = std::function<void(T, std::optional<std::string> error)>;
  virtual ~host_io() = default;
  /// The stored value of `key` as JSON text (nullopt: no such key).
  virtual void kv_get(const host_call& call, const std::string& key, then_fn<std::optional<std::string>> then) = 0;
  /// Up to `limit` stored entries with `prefix`, after the key `after`, in key order.
  virtual void kv_list(const host_call& call, const std::string& prefix, const std::string& after, int limit,
                       then_fn<std::vector<plugin_kv>> then) = 0;
  /// The tenant's user `id` as JSON text ("null": no such user).
  virtual void user_get(const host_call& call, const std::string& id, then_fn<std::string> then) = 0;
  /// Up to q.limit + 1 of the tenant's users matching `q`, in its order.
  virtual void users_list(const host_call& call, list_query q, then_fn<std::vector<listed_user>> then) = 0;
  virtual void http(const host_call& call, outbound_request r, std::function<void(outbound_response)> then) = 0;
  /// The longest timeout a request may ask for (plugins.http-timeout);
  /// nullopt: no outgoing requests from here.
  [[nodiscard]] virtual std::optional<std::chrono::milliseconds> http_max_timeout() const = 0;
  /// Bytes a (tenant, plugin) store may hold (plugins.kv-quota).
  [[nodiscard]] virtual std::int64_t kv_quota() const = 0;
};

/// Answers `request` ({"fn": "kv.get", "args": [...]}) through `reply`, at
/// once or when `io` answered. A misuse (a wrong type, a key too long, no
/// permission) is an error raised in the plugin, naming the function.
void serve_host_call(host_io& io, host_call& call, const std::string& request, std::function<void(host_answer)> reply);

} // namespace colony::actors::detail
