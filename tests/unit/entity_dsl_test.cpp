// Deterministic actor tests (CAF's test coordinator, caf/test/dsl.hpp): every
// message runs when the test says, so the interleavings that decide the
// directory's passivation handshake and the tenant's seat gating are chosen
// here, not left to the scheduler. The store is a scripted in-memory actor
// the test controls (commits can be held and released one by one); the
// real stores run the same entities in tests/integration/actors_test.cpp.
#define CAF_SUITE entity_dsl
#include <caf/test/dsl.hpp>
#include <caf/test/unit_test_impl.hpp>
#include <algorithm>
#include <map>
#include <thread>

#include "colony/actors/entities.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"

using namespace colony;
using namespace colony::actors;

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;

struct scripted_store_state {
  std::map<std::string, loaded> rows; // by entity id
  std::vector<std::pair<caf::response_promise, change>> held;
  bool hold_user_inserts = false;
  int loads = 0;
  int commits = 0;
};

commit_outcome apply(scripted_store_state& st, const change& c) {
  ++st.commits;
  loaded l;
  l.state = c.row.state;
  l.version = c.row.version;
  st.rows[c.row.id] = l;
  if (c.user_count_delta != 0)
    st.rows[c.row.tenant_id].user_count += c.user_count_delta;
  return {};
}

// `hold` is the initial hold_user_inserts. (An argument also keeps CAF 0.17's
// spawn of an argument-less function actor, which dereferences a null
// shared_ptr to its empty argument tuple, out of UBSan's way.)
caf::behavior scripted_store(caf::stateful_actor<scripted_store_state>* self, bool hold) {
  self->state.hold_user_inserts = hold;
  return {
    [self](load_atom, const entity_key& k) {
      ++self->state.loads;
      auto it = self->state.rows.find(k.id);
      if (it == self->state.rows.end()) {
        loaded none;
        none.status = store_status::not_found;
        return none;
      }
      return it->second;
    },
    [self](commit_atom, change& c) -> caf::result<commit_outcome> {
      if (self->state.hold_user_inserts && c.kind == entity_kind::user && c.what == change_kind::insert) {
        self->state.held.emplace_back(self->make_response_promise(), std::move(c));
        return caf::delegated<commit_outcome>{};
      }
      return apply(self->state, c);
    },
    // The test lets the oldest held commit go: applied (ok) or failed.
    [self](release_atom, bool ok) {
      auto [rp, c] = std::move(self->state.held.front());
      self->state.held.erase(self->state.held.begin());
      if (ok) {
        rp.deliver(apply(self->state, c));
      } else {
        commit_outcome failed;
        failed.status = store_status::unavailable;
        rp.deliver(failed);
      }
    },
    [](health_atom) {
      return store_health{true, "scripted", 0};
    },
  };
}

struct fixture : test_coordinator_fixture<> {
  caf::actor store_actor;
  runtime::entity_registry registry;
  std::string tid = protocol::new_uuid_v7();

  fixture() {
    store_actor = sys.spawn(scripted_store, false);
    entity_env env;
    env.store = caf::actor_cast<store_port>(store_actor);
    env.idle_timeout = std::chrono::milliseconds(10);
    env.rules.plans["one-seat"].max_users = 1;
    registry = runtime::spawn_entity_registry(sys, env, nullptr);
    consume_messages();
  }

  ~fixture() override {
    runtime::stop_entity_registry(registry);
    caf::anon_send_exit(store_actor, caf::exit_reason::user_shutdown);
    consume_messages();
  }

  scripted_store_state& store() { return deref<caf::stateful_actor<scripted_store_state>>(store_actor).state; }

  entity_key tenant_key() const { return {entity_kind::tenant, tid, tid}; }

  void send_create_tenant(const std::string& plan) {
    auto req = std::make_shared<v1::CreateTenantRequest>();
    req->set_slug("t-" + tid.substr(24));
    req->set_name("T");
    req->set_plan(plan);
    command cmd;
    cmd.what = op::create;
    cmd.payload = req;
    self->send(registry.actor, tenant_key(), cmd);
  }

  void send_read_tenant() {
    command cmd;
    cmd.what = op::get;
    self->send(registry.actor, tenant_key(), cmd);
  }

  void send_create_user(const std::string& email) {
    auto req = std::make_shared<v1::CreateUserRequest>();
    req->set_email(email);
    command cmd;
    cmd.what = op::create_user;
    cmd.payload = req;
    cmd.user_id = protocol::new_uuid_v7();
    cmd.new_id = true;
    self->send(registry.actor, tenant_key(), cmd);
  }

  /// The next reply the test received; fails the test if there is none.
  entity_reply reply() {
    entity_reply out = entity_reply::fail(fail(errc::internal, "no reply"));
    bool got = false;
    self->receive(
      [&](entity_reply& r) {
        out = std::move(r);
        got = true;
      },
      caf::after(std::chrono::seconds(0)) >> [] {});
    CAF_REQUIRE(got);
    return out;
  }

  bool no_reply() {
    bool got = false;
    self->receive([&](entity_reply&) { got = true; }, caf::after(std::chrono::seconds(0)) >> [] {});
    return !got;
  }

  runtime::registry_stats stats() {
    self->send(registry.actor, stats_atom::value);
    consume_messages();
    runtime::registry_stats s;
    self->receive([&](runtime::registry_stats& st) { s = st; }, caf::after(std::chrono::seconds(0)) >> [] {});
    return s;
  }

  /// Lets the registry's idle sweep run once with every activation stale:
  /// the tick is queued, not yet handled.
  void queue_sweep() {
    std::this_thread::sleep_for(std::chrono::milliseconds(15)); // the sweep compares with the steady clock
    CAF_REQUIRE(trigger_timeout());                             // the registry's tick
  }

  /// The one queued actor that is not the registry (an entity) handles one
  /// message, ahead of the registry.
  void entity_handles_one() {
    auto* reg = dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(registry.actor));
    auto it = std::find_if(sched.jobs.begin(), sched.jobs.end(), [&](caf::resumable* j) { return j != reg; });
    CAF_REQUIRE(it != sched.jobs.end());
    std::rotate(sched.jobs.begin(), it, std::next(it));
    sched.run_once();
  }

  /// The registry handles exactly one message, ahead of everything else.
  void registry_handles_one() {
    CAF_REQUIRE(sched.prioritize(registry.actor));
    sched.run_once();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(passivation_handshake, fixture)

CAF_TEST(a command routed before the idle offer keeps the activation) {
  send_create_tenant("free");
  consume_messages();
  CAF_REQUIRE(!reply().error);
  CAF_CHECK_EQUAL(stats().live_tenants, 1);
  auto loads = store().loads;
  // The sweep's idle offer is queued at the tenant, then a read is routed
  // to it: the tenant sees [idle, read]. The directory has handed out one
  // command more than the tenant has handled, so the offer is refused.
  queue_sweep();
  send_read_tenant();
  registry_handles_one(); // tick: idle_atom to the tenant
  registry_handles_one(); // the read: routed to the same activation
  consume_messages();
  auto r = reply();
  CAF_CHECK(!r.error);
  auto s = stats();
  CAF_CHECK_EQUAL(s.passivations, 0);
  CAF_CHECK_EQUAL(s.live_tenants, 1);
  CAF_CHECK_EQUAL(store().loads, loads); // served from memory: no reload
}

CAF_TEST(an idle activation goes and the next command gets a fresh one loaded from the store) {
  send_create_tenant("free");
  consume_messages();
  CAF_REQUIRE(!reply().error);
  auto loads = store().loads;
  // The offer is handled before anything else is routed: the tenant goes.
  queue_sweep();
  registry_handles_one();
  consume_messages();
  auto s = stats();
  CAF_CHECK_EQUAL(s.passivations, 1);
  CAF_CHECK_EQUAL(s.live_tenants, 0);
  send_read_tenant();
  consume_messages();
  auto r = reply();
  CAF_REQUIRE(!r.error);
  CAF_CHECK_EQUAL(store().loads, loads + 1);
  CAF_CHECK_EQUAL(stats().live_tenants, 1);
  CAF_CHECK_EQUAL(stats().activations, 2);
}

CAF_TEST(an offer while the read is still queued at the registry lets the tenant go first) {
  send_create_tenant("free");
  consume_messages();
  CAF_REQUIRE(!reply().error);
  // [tick, read] at the registry, but the tenant handles the offer before
  // the read is routed: it passivates, and the read activates a new one.
  queue_sweep();
  send_read_tenant();
  registry_handles_one(); // tick: idle_atom to the tenant
  entity_handles_one();   // the tenant: nothing on its way to it, so it goes
  consume_messages();     // the read reaches a new activation
  CAF_CHECK(!reply().error);
  auto s = stats();
  CAF_CHECK_EQUAL(s.passivations, 1);
  CAF_CHECK_EQUAL(s.activations, 2);
  CAF_CHECK_EQUAL(s.live_tenants, 1);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(seat_gating, fixture)

CAF_TEST(a creation in flight holds its seat; a failed one gives it back) {
  send_create_tenant("one-seat");
  consume_messages();
  CAF_REQUIRE(!reply().error);
  store().hold_user_inserts = true;
  // First creation: admitted, its commit held by the store.
  send_create_user("a@example.com");
  consume_messages();
  CAF_CHECK_EQUAL(store().held.size(), 1u);
  CAF_CHECK(no_reply());
  // Second creation while the first is in flight: the seat is taken.
  send_create_user("b@example.com");
  consume_messages();
  auto b = reply();
  CAF_REQUIRE(b.error.has_value());
  CAF_CHECK(b.error->code == errc::limit_exceeded);
  CAF_CHECK_EQUAL(store().held.size(), 1u);
  // The first commit fails: its seat comes back.
  self->send(store_actor, release_atom::value, false);
  consume_messages();
  auto a = reply();
  CAF_REQUIRE(a.error.has_value());
  CAF_CHECK(a.error->code == errc::unavailable);
  // Third creation: admitted again, and this time it commits.
  send_create_user("c@example.com");
  consume_messages();
  CAF_CHECK_EQUAL(store().held.size(), 1u);
  self->send(store_actor, release_atom::value, true);
  consume_messages();
  auto c = reply();
  CAF_CHECK(!c.error);
  // The seat is now used for good.
  send_create_user("d@example.com");
  consume_messages();
  auto d = reply();
  CAF_REQUIRE(d.error.has_value());
  CAF_CHECK(d.error->code == errc::limit_exceeded);
  CAF_CHECK(store().held.empty());
  CAF_CHECK_EQUAL(store().rows[tid].user_count, 1);
}

CAF_TEST_FIXTURE_SCOPE_END()
