#include "plugin_host_node.hpp"

#include <caf/all.hpp>

#include "colony/protocol/json.hpp"
#include "colony/v1/user.pb.h"

namespace colony::actors::detail {
namespace {

std::string user_json(const entity_reply& r) {
  if (r.bytes) {
    v1::User u;
    if (u.ParseFromString(*r.bytes))
      return protocol::to_json(u);
    return "null";
  }
  if (const auto* u = dynamic_cast<const v1::User*>(r.entity.get()))
    return protocol::to_json(*u);
  return "null";
}

} // namespace

void node_host_io::kv_get(const host_call& call, const std::string& key, then_fn<std::optional<std::string>> then) {
  plugin_op op;
  op.what = plugin_op::kind::kv_get;
  op.tenant_id = call.tenant_id;
  op.name = call.binding.name();
  op.version = key;
  self_->request(caf::actor_cast<plugin_store>(env_.store), env_.store_timeout, plugin_atom::value, std::move(op))
    .then(
      [then](plugin_result& r) {
        if (r.status == store_status::not_found || (r.status == store_status::ok && r.kv.empty()))
          then(std::nullopt, std::nullopt);
        else if (r.status != store_status::ok || !r.kv.front().value)
          then(std::nullopt, "the store is unavailable; retry later");
        else
          then(std::move(r.kv.front().value), std::nullopt);
      },
      [then](caf::error&) { then(std::nullopt, "the store did not answer; retry later"); });
}

void node_host_io::kv_list(const host_call& call, const std::string& prefix, const std::string& after, int limit,
                           then_fn<std::vector<plugin_kv>> then) {
  plugin_op op;
  op.what = plugin_op::kind::kv_list;
  op.tenant_id = call.tenant_id;
  op.name = call.binding.name();
  op.version = prefix;
  op.after = after;
  op.limit = limit;
  self_->request(caf::actor_cast<plugin_store>(env_.store), env_.store_timeout, plugin_atom::value, std::move(op))
    .then(
      [then](plugin_result& r) {
        if (r.status != store_status::ok)
          then({}, "the store is unavailable; retry later");
        else
          then(std::move(r.kv), std::nullopt);
      },
      [then](caf::error&) { then({}, "the store did not answer; retry later"); });
}

void node_host_io::user_get(const host_call& call, const std::string& id, then_fn<std::string> then) {
  auto router = env_.router.lock();
  auto target = router ? router->route(entity_key{entity_kind::user, call.tenant_id, id}) : caf::actor{};
  if (!target) {
    then("null", "the node is shutting down");
    return;
  }
  command get;
  get.what = op::get;
  get.meta.request_id = call.meta.request_id;
  get.meta.traceparent = call.meta.traceparent;
  self_->request(target, env_.store_timeout, std::move(get))
    .then(
      [then](entity_reply& r) {
        if (r.error && r.error->code == errc::not_found)
          then("null", std::nullopt);
        else if (r.error)
          then("null", r.error->detail);
        else
          then(user_json(r), std::nullopt);
      },
      [then](caf::error&) { then("null", "the user did not answer; retry later"); });
}

void node_host_io::users_list(const host_call& /*call*/, list_query q, then_fn<std::vector<listed_user>> then) {
  self_->request(env_.store, env_.store_timeout, list_atom::value, std::move(q))
    .then(
      [then](row_page& page) {
        if (page.status != store_status::ok) {
          then({}, "the store is unavailable; retry later");
          return;
        }
        std::vector<listed_user> rows;
        rows.reserve(page.rows.size());
        for (auto& r : page.rows) {
          v1::User u;
          rows.push_back(
            listed_user{r.sort_number, std::move(r.id), u.ParseFromString(r.state) ? protocol::to_json(u) : "null"});
        }
        then(std::move(rows), std::nullopt);
      },
      [then](caf::error&) { then({}, "the store did not answer; retry later"); });
}

void node_host_io::http(const host_call& /*call*/, outbound_request r, std::function<void(outbound_response)> then) {
  auto wait = r.timeout + std::chrono::seconds(1);
  self_->request(env_.plugin_http->client, wait, http_fetch_atom::value, std::move(r))
    .then([then](outbound_response& res) { then(std::move(res)); },
          [then](caf::error&) {
            outbound_response res;
            res.error = "timeout";
            then(std::move(res));
          });
}

std::optional<std::chrono::milliseconds> node_host_io::http_max_timeout() const {
  if (!env_.plugin_http)
    return std::nullopt;
  return env_.plugin_http->max_timeout;
}

void commit_effects(caf::event_based_actor* self, const entity_env& env, host_call& call,
                    std::function<void(std::optional<std::pair<std::string, std::string>>)> done) {
  if (call.effects.writes.empty() && call.effects.events.empty()) {
    done(std::nullopt);
    return;
  }
  plugin_op op;
  op.what = plugin_op::kind::effects;
  op.tenant_id = call.tenant_id;
  op.name = call.binding.name();
  op.effects = std::move(call.effects);
  op.effects.quota = env.plugin_kv_quota;
  call.effects = {};
  auto quota = env.plugin_kv_quota;
  self->request(caf::actor_cast<plugin_store>(env.store), env.store_timeout, plugin_atom::value, std::move(op))
    .then(
      [done, quota](plugin_result& r) {
        if (r.status == store_status::ok)
          done(std::nullopt);
        else if (r.over_quota)
          done(std::make_pair(std::string{"kv-quota"},
                              "colony.kv: the plugin's store would hold " + std::to_string(r.kv_bytes) +
                                " bytes, over its quota of " + std::to_string(quota) +
                                "; nothing of this call was written"));
        else
          done(std::make_pair(std::string{"store"},
                              r.status == store_status::moved
                                ? std::string{"the tenant moved to another node; nothing of this call was written"}
                                : std::string{"the store could not write this call's kv writes and events; retry"}));
      },
      [done](caf::error&) {
        done(std::make_pair(std::string{"store"},
                            std::string{"the store did not answer; the call's writes may "
                                        "or may not be written"}));
      });
}

} // namespace colony::actors::detail
