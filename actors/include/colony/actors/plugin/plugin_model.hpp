// Plugin domain rules (docs/plugins.md): names, semantic versions, hooks,
// a tenant's bindings (enable, upgrade, disable, suspend) and what the
// write-path hooks' answers mean. Pure functions; no I/O, no Lua.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/domain.hpp"
#include "colony/v1/plugin.pb.h"
#include "colony/v1/tenant.pb.h"

namespace colony::actors {

namespace plugin_hook {
inline constexpr std::string_view before_user_create = "before_user_create";
inline constexpr std::string_view before_user_update = "before_user_update";
inline constexpr std::string_view on_event = "on_event";
inline constexpr std::string_view http = "http";
} // namespace plugin_hook

[[nodiscard]] bool known_hook(std::string_view hook);
/// [a-z][a-z0-9-]{1,62}, no "--", not ending in "-".
[[nodiscard]] bool valid_plugin_name(std::string_view name);

/// A semantic version (semver.org 2.0.0).
struct semver {
  std::uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> pre; // pre-release identifiers; build metadata is dropped
};
[[nodiscard]] std::optional<semver> parse_semver(std::string_view text);
/// <0, 0, >0 by semver precedence (build metadata ignored).
[[nodiscard]] int compare(const semver& a, const semver& b);

/// Checks a publication (name, version, hooks, permissions; the schema and
/// the source are checked by their own parsers). Per-field errors.
[[nodiscard]] std::optional<failure> validate_publication(const v1::PublishPluginRequest& req);

/// The tenant with `binding` enabled: added at the end, or (same name) put in
/// place of the current one, keeping its place and enabledAt (an upgrade or
/// a new config is one commit). The plan's maxPlugins counts bindings.
[[nodiscard]] outcome<v1::Tenant> enable_plugin(const v1::Tenant& t, v1::PluginBinding binding, std::int64_t now_us);
[[nodiscard]] outcome<v1::Tenant> disable_plugin(const v1::Tenant& t, std::string_view name, std::int64_t now_us);
/// Suspended by the circuit breaker (its hooks are skipped until enabled again).
[[nodiscard]] outcome<v1::Tenant> suspend_plugin(const v1::Tenant& t, std::string_view name, std::string reason,
                                                 std::int64_t now_us);
[[nodiscard]] const v1::PluginBinding* find_binding(const v1::Tenant& t, std::string_view name);
/// Whether some live (not suspended) binding of `t` has `hook`.
[[nodiscard]] bool any_hook(const v1::Tenant& t, std::string_view hook);
[[nodiscard]] bool has_hook(const v1::PluginBinding& b, std::string_view hook);

/// Where a plugin's on_event feed stands for a tenant: none (not enabled, or
/// its version has no on_event), running, or paused (suspended).
enum class event_feed : std::uint8_t { none, running, paused };
[[nodiscard]] event_feed feed_of(const v1::Tenant* t, std::string_view name);
/// Every plugin whose feed differs between `before` (null: a new tenant) and
/// `after`, with its feed in `after`: what the change does to its cursor.
[[nodiscard]] std::vector<std::pair<std::string, event_feed>> feed_changes(const v1::Tenant* before,
                                                                           const v1::Tenant& after);
/// The backoff before on_event tries an event again after `attempts` failures:
/// 1 s doubling to 5 min, with `jitter` in [0, 1) adding up to a fifth.
[[nodiscard]] std::int64_t event_retry_us(std::int32_t attempts, double jitter);

/// The ctx a hook gets: {"tenantId", "plugin", "version", "config", "requestId", "traceparent"}.
[[nodiscard]] std::string hook_context(const std::string& tenant_id, const v1::PluginBinding& b,
                                       const std::string& request_id, const std::string& traceparent);
/// "[ctx, args...]": each argument is one JSON value.
[[nodiscard]] std::string hook_arguments(const std::string& ctx, const std::vector<std::string>& args);

/// What a before_user_* hook answered.
struct user_verdict {
  enum class kind : std::uint8_t { accept, reject, invalid } what = kind::invalid;
  std::string user;   // accept: the user as the plugin returned it (JSON object)
  std::string reason; // reject: the plugin's reason; invalid: what is wrong with the answer
};
[[nodiscard]] user_verdict user_hook_verdict(const std::string& results_json);

/// The members of a user a before_user_* hook may set: email, name, roles, status, attributes.
[[nodiscard]] const std::vector<std::string>& plugin_settable_user_fields();
/// before_user_create: the returned user as a creation body (only the settable
/// members), or why not (invalid).
[[nodiscard]] outcome<std::string> creation_from_hook(const std::string& returned_user);
/// before_user_create: why the node would refuse the returned user (not a
/// creation body, or not a valid CreateUserRequest); nullopt when it takes it.
[[nodiscard]] std::optional<std::string> created_user_error(const std::string& returned_user);
/// before_user_update: the user as the update would leave it, for the hook.
[[nodiscard]] outcome<std::string> proposed_user(const std::string& current_user, const std::string& patch);
/// before_user_update: the merge patch from `current_user` to what the hook
/// returned; a change to any member that is not settable is invalid.
[[nodiscard]] outcome<std::string> patch_from_hook(const std::string& current_user, const std::string& returned_user);

/// The request an http hook gets: {method, path (below /x/{plugin}/), query
/// (name -> value), headers ({"content-type"}: credentials never reach a
/// plugin), body (text), caller {credential, roles, userId}}.
struct plugin_http_request {
  std::string method, path, query_json = "{}", content_type, body, credential, user_id;
  std::vector<std::string> roles;
};
[[nodiscard]] std::string http_request_json(const plugin_http_request& r);

/// What an http hook answered: {status = 200..599 (default 200), headers =
/// {name = value}, body = a string (text/plain unless a content-type header
/// says otherwise) or a table (sent as JSON)}.
struct plugin_http_answer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers; // content-type excluded
  std::string content_type;
  std::string body;
};
/// The answer, or why it is not one (a header a plugin may not set, a status
/// out of range, a wrong type).
[[nodiscard]] outcome<plugin_http_answer> http_answer(const std::string& results_json);

} // namespace colony::actors
