// The host API's way into the node (plugin_host.hpp's host_io): the store
// for colony.kv, the tenant's user actors and the store's list for
// colony.users, the plugins module's client for colony.http; and the write
// of a call's effects in one transaction. Used by plugin_actor.cpp only.
#pragma once

#include <caf/fwd.hpp>

#include "colony/actors/entities.hpp"
#include "colony/actors/plugin/plugin_host.hpp"

namespace colony::actors::detail {

/// Lives for one host call's synchronous part: what answers later holds
/// copies of what it needs, never the io.
class node_host_io final : public host_io {
public:
  node_host_io(caf::event_based_actor* self, const entity_env& env) : self_(self), env_(env) {}
  void kv_get(const host_call& call, const std::string& key, then_fn<std::optional<std::string>> then) override;
  void kv_list(const host_call& call, const std::string& prefix, const std::string& after, int limit,
               then_fn<std::vector<plugin_kv>> then) override;
  void user_get(const host_call& call, const std::string& id, then_fn<std::string> then) override;
  void users_list(const host_call& call, list_query q, then_fn<std::vector<listed_user>> then) override;
  void http(const host_call& call, outbound_request r, std::function<void(outbound_response)> then) override;
  [[nodiscard]] std::optional<std::chrono::milliseconds> http_max_timeout() const override;
  [[nodiscard]] std::int64_t kv_quota() const override { return env_.plugin_kv_quota; }

private:
  caf::event_based_actor* self_;
  const entity_env& env_;
};

/// Writes the call's effects (nothing to write: `done(nullopt)` at once);
/// `done` gets nullopt when written, else the fault and why.
void commit_effects(caf::event_based_actor* self, const entity_env& env, host_call& call,
                    std::function<void(std::optional<std::pair<std::string, std::string>>)> done);

} // namespace colony::actors::detail
