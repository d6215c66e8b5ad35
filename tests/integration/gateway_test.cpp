// Messages cross nodes: two actor systems connected by CAF's middleman on
// loopback. Node A runs a store, the entity directory and an actor that
// serves wire commands as the cluster's gateway does
// (runtime::serve_wire_command), published on a free port; node B reaches it
// as a remote actor and sends commands as colony.v1.EntityCommand bytes.
// Every reply must be the one a local caller of node A gets (same entity,
// version, failure).
#include <caf/io/all.hpp>

#include "colony/actors/entities.hpp"
#include "colony/actors/wire.hpp"
#include "colony/protocol/json.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/gateway.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"
#include "support.hpp"

using namespace colony;
using namespace colony::actors;

namespace {

struct system_with_middleman {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  system_with_middleman() {
    cfg.load<caf::io::middleman>();
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// The JSON of a reply's entity, whichever form it has (message or bytes).
std::string entity_json(const entity_reply& r) {
  if (r.entity)
    return protocol::to_json(*r.entity);
  if (r.bytes)
    return protocol::bytes_to_json(r.type, *r.bytes);
  return "";
}

using wire_atom = caf::atom_constant<caf::atom("wire")>;

caf::behavior wire_server(caf::event_based_actor* self, std::shared_ptr<entity_router> router) {
  return {
    [self, router](wire_atom, const std::string& bytes) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      runtime::serve_wire_command(self, *router, bytes, nullptr,
                                  [rp](std::string reply) mutable { rp.deliver(std::move(reply)); });
      return rp;
    },
  };
}

struct two_nodes {
  system_with_middleman a, b;
  store_port store;
  runtime::entity_registry registry;
  caf::actor gateway;
  caf::actor remote; // node B's handle on node A's gateway
  std::unique_ptr<caf::scoped_actor> on_a, on_b;

  two_nodes() {
    adapters::store_options o;
    o.spec = test::store_spec();
    store = adapters::spawn_store(*a.sys, o);
    test::await_ready(*a.sys, store);
    entity_env env;
    env.store = store;
    registry = runtime::spawn_entity_registry(*a.sys, env, nullptr);
    gateway = a.sys->spawn(wire_server, registry.router);
    auto port = a.sys->middleman().publish(gateway, 0, "127.0.0.1");
    REQUIRE(port);
    auto handle = b.sys->middleman().remote_actor("127.0.0.1", *port);
    REQUIRE(handle);
    remote = *handle;
    on_a = std::make_unique<caf::scoped_actor>(*a.sys);
    on_b = std::make_unique<caf::scoped_actor>(*b.sys);
  }
  ~two_nodes() {
    on_a.reset();
    on_b.reset();
    runtime::stop_entity_registry(registry);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  }

  entity_reply local(const entity_key& key, const command& cmd) {
    entity_reply out = entity_reply::fail(fail(errc::internal, "no answer"));
    (*on_a)
      ->request(registry.actor, std::chrono::seconds(10), key, cmd)
      .receive([&](entity_reply& r) { out = std::move(r); },
               [&](caf::error& e) { out = entity_reply::fail(failure_from(e)); });
    return out;
  }
  entity_reply across(const entity_key& key, const command& cmd) {
    entity_reply out = entity_reply::fail(fail(errc::internal, "no answer"));
    (*on_b)
      ->request(remote, std::chrono::seconds(10), wire_atom::value, runtime::encode_command(key, cmd))
      .receive([&](std::string& bytes) { out = runtime::decode_reply(bytes); },
               [&](caf::error& e) { out = entity_reply::fail(fail(errc::unavailable, caf::to_string(e))); });
    return out;
  }
};

void same_reply(const entity_reply& remote, const entity_reply& local) {
  CHECK(remote.error.has_value() == local.error.has_value());
  if (remote.error && local.error) {
    CHECK(remote.error->code == local.error->code);
    CHECK(remote.error->detail == local.error->detail);
    CHECK(remote.error->errors.size() == local.error->errors.size());
  }
  CHECK(remote.version == local.version);
  CHECK(entity_json(remote) == entity_json(local));
  CHECK(static_cast<bool>(remote.entity) == static_cast<bool>(local.entity));
  CHECK(static_cast<bool>(remote.bytes) == static_cast<bool>(local.bytes));
}

} // namespace

TEST_CASE("a command sent through a remote node's gateway gets the reply a local caller gets", "[cluster][wire]") {
  two_nodes n;
  // A creation across the wire: the payload travels as its protobuf bytes.
  auto tid = protocol::new_uuid_v7();
  auto req = std::make_shared<v1::CreateTenantRequest>();
  req->set_slug("gw-" + tid.substr(24));
  req->set_name("Gateway");
  req->set_plan("free");
  command create;
  create.what = op::create;
  create.payload = req;
  create.meta.request_id = "req-across";
  entity_key tenant{entity_kind::tenant, tid, tid};
  auto created = n.across(tenant, create);
  REQUIRE_FALSE(created.error.has_value());
  REQUIRE(created.entity != nullptr);
  CHECK(static_cast<const v1::Tenant&>(*created.entity).slug() == "gw-" + tid.substr(24));
  CHECK(created.version == 1);

  // Reads: the tenant (a message) and a user (its bytes), remote and local alike.
  command get;
  get.what = op::get;
  same_reply(n.across(tenant, get), n.local(tenant, get));

  auto ureq = std::make_shared<v1::CreateUserRequest>();
  ureq->set_email("wire@example.com");
  ureq->add_roles("member");
  command create_user;
  create_user.what = op::create_user;
  create_user.payload = ureq;
  create_user.user_id = protocol::new_uuid_v7();
  create_user.new_id = true;
  auto user = n.across(tenant, create_user);
  REQUIRE_FALSE(user.error.has_value());
  entity_key ukey{entity_kind::user, tid, create_user.user_id};
  auto remote_read = n.across(ukey, get);
  same_reply(remote_read, n.local(ukey, get));
  CHECK(remote_read.bytes != nullptr);
  CHECK(remote_read.type == "colony.v1.User");

  // A patch with If-Match and the failures: precondition, validation, not found.
  command patch;
  patch.what = op::patch;
  patch.text = R"({"name":"Renamed"})";
  patch.if_match = {7, 9};
  auto stale = n.across(tenant, patch);
  REQUIRE(stale.error.has_value());
  CHECK(stale.error->code == errc::precondition_failed);
  patch.if_match = {1};
  auto patched = n.across(tenant, patch);
  REQUIRE_FALSE(patched.error.has_value());
  CHECK(patched.version == 2);
  patch.text = R"({"name":""})";
  patch.if_match.clear();
  auto invalid = n.across(tenant, patch);
  REQUIRE(invalid.error.has_value());
  CHECK(invalid.error->code == errc::invalid);
  CHECK_FALSE(invalid.error->errors.empty());
  same_reply(invalid, n.local(tenant, patch));
  auto nobody = protocol::new_uuid_v7();
  entity_key missing{entity_kind::tenant, nobody, nobody};
  same_reply(n.across(missing, get), n.local(missing, get));

  // Bytes that are not a command are refused with a failure, never dropped.
  entity_reply garbage = entity_reply::fail(fail(errc::internal, "no answer"));
  (*n.on_b)
    ->request(n.remote, std::chrono::seconds(10), wire_atom::value, std::string{"\xff\xff\x01", 3})
    .receive([&](std::string& bytes) { garbage = runtime::decode_reply(bytes); }, [](caf::error&) {});
  REQUIRE(garbage.error.has_value());
  CHECK(garbage.error->code == errc::malformed);
}
