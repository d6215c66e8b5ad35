// The singleton seam (runtime/singleton.hpp): the timer service fires the
// timers of the shards this node owns (as a cluster node would), none while
// it owns none, and catches up once it owns them.
#include <atomic>

#include "colony/actors/entities.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/timer_service.hpp"
#include "colony/v1/tenant.pb.h"
#include "support.hpp"

using namespace colony;
using namespace colony::actors;

namespace {
class switchable final : public runtime::singleton {
public:
  std::atomic<bool> on{false};
  std::atomic<int> asked{0};
  bool granted(std::string_view) override { return on.load(); }
  std::optional<std::vector<std::int32_t>> shards() override {
    ++asked;
    std::vector<std::int32_t> out;
    for (std::int32_t s = 0; on.load() && s < 4096; ++s)
      out.push_back(s);
    return out;
  }
};
} // namespace

TEST_CASE("timers fire only on the node that owns their shard", "[singleton][timers]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  adapters::store_options o;
  o.spec = test::store_spec();
  auto store = adapters::spawn_store(sys, o);
  test::await_ready(sys, store);
  entity_env env;
  env.store = store;
  env.rules.trial_us = 50'000; // a trial of 50 ms: its timer is due almost at once
  auto registry = runtime::spawn_entity_registry(sys, env, nullptr);
  auto owner = std::make_shared<switchable>();
  runtime::timer_options to;
  to.poll_interval = std::chrono::milliseconds(50);
  to.owner = owner;
  auto timers = runtime::spawn_timer_service(sys, store, registry.actor, to);

  caf::scoped_actor self{sys};
  auto status = [&](const std::string& id) {
    command get;
    get.what = op::get;
    std::string s;
    self->request(registry.actor, std::chrono::seconds(10), entity_key{entity_kind::tenant, id, id}, get)
      .receive(
        [&](entity_reply& r) {
          if (r.entity)
            s = static_cast<const v1::Tenant&>(*r.entity).status();
          else if (r.bytes) {
            v1::Tenant t;
            t.ParseFromString(*r.bytes);
            s = t.status();
          }
        },
        [](caf::error&) {});
    return s;
  };
  auto id = protocol::new_uuid_v7();
  auto req = std::make_shared<v1::CreateTenantRequest>();
  req->set_slug("sg-" + id.substr(24));
  req->set_name("Singleton");
  req->set_plan("free");
  command create;
  create.what = op::create;
  create.payload = req;
  bool created = false;
  self->request(registry.actor, std::chrono::seconds(10), entity_key{entity_kind::tenant, id, id}, create)
    .receive([&](entity_reply& r) { created = !r.error; }, [](caf::error&) {});
  REQUIRE(created);
  REQUIRE(status(id) == "trial");

  // No shard owned: the due timer waits, however long.
  REQUIRE(test::eventually([&] { return owner->asked.load() >= 10; }));
  CHECK(status(id) == "trial");
  // Its shard owned: the next poll fires it.
  owner->on = true;
  CHECK(test::eventually([&] { return status(id) == "suspended"; }));

  caf::anon_send(timers, stop_atom::value);
  runtime::stop_entity_registry(registry);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
}
