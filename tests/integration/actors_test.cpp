// Entity actors behind the registry, on a real store: activation on demand,
// passivation and re-activation with state intact, crash isolation, one writer
// per entity, seat limits under concurrency.
#include <algorithm>
#include <cctype>
#include <set>

#include "colony/actors/entities.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"
#include "support.hpp"

using namespace colony;
using namespace colony::actors;

namespace {

struct node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  store_port store;
  caf::actor registry;
  std::unique_ptr<caf::scoped_actor> self;

  explicit node(std::chrono::milliseconds idle = std::chrono::minutes(5)) {
    sys = std::make_unique<caf::actor_system>(cfg);
    adapters::store_options o;
    o.spec = test::store_spec();
    store = adapters::spawn_store(*sys, o);
    test::await_ready(*sys, store);
    entity_env env;
    env.store = store;
    env.idle_timeout = idle;
    env.fault_injection = true;
    registry = runtime::spawn_entity_registry(*sys, env, nullptr).actor;
    self = std::make_unique<caf::scoped_actor>(*sys);
  }
  ~node() {
    caf::anon_send(registry, stop_atom::value);
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  }

  entity_reply ask(entity_key key, command cmd) {
    entity_reply out = entity_reply::fail(fail(errc::internal, "no answer"));
    (*self)
      ->request(registry, std::chrono::seconds(10), std::move(key), std::move(cmd))
      .receive([&](entity_reply& r) { out = std::move(r); },
               [&](caf::error& e) { out = entity_reply::fail(failure_from(e)); });
    return out;
  }
  runtime::registry_stats stats() {
    runtime::registry_stats s;
    (*self)
      ->request(registry, std::chrono::seconds(5), stats_atom::value)
      .receive([&](runtime::registry_stats& st) { s = st; }, [](caf::error&) {});
    return s;
  }
  std::string create_tenant(const std::string& plan = "free") {
    auto id = protocol::new_uuid_v7();
    auto req = std::make_shared<v1::CreateTenantRequest>();
    req->set_slug("t-" + id.substr(24));
    req->set_name("T");
    req->set_plan(plan);
    command cmd;
    cmd.what = op::create;
    cmd.payload = req;
    auto r = ask({entity_kind::tenant, id, id}, cmd);
    REQUIRE_FALSE(r.error.has_value());
    return id;
  }
  entity_reply create_user(const std::string& tid, const std::string& email) {
    auto req = std::make_shared<v1::CreateUserRequest>();
    req->set_email(email);
    command cmd;
    cmd.what = op::create_user;
    cmd.payload = req;
    cmd.user_id = protocol::new_uuid_v7();
    return ask({entity_kind::tenant, tid, tid}, cmd);
  }
};

/// The user in a reply: a message after writes, its encoding after reads.
v1::User as_user(const entity_reply& r) {
  if (r.entity)
    return static_cast<const v1::User&>(*r.entity);
  REQUIRE(r.bytes != nullptr);
  CHECK(r.type == "colony.v1.User");
  v1::User u;
  REQUIRE(u.ParseFromString(*r.bytes));
  return u;
}

} // namespace

TEST_CASE("entities activate on demand, passivate when idle and come back intact", "[actors]") {
  node n{std::chrono::milliseconds(150)};
  auto tid = n.create_tenant();
  auto created = n.create_user(tid, "ann@example.com");
  REQUIRE_FALSE(created.error.has_value());
  auto uid = as_user(created).id();
  command patch;
  patch.what = op::patch_user;
  patch.user_id = uid;
  patch.text = R"({"name":"Ann","attributes":{"team":"core"}})";
  REQUIRE_FALSE(n.ask({entity_kind::tenant, tid, tid}, patch).error.has_value());
  CHECK(n.stats().live_users == 1);

  REQUIRE(test::eventually([&] {
    auto s = n.stats();
    return s.live_users == 0 && s.live_tenants == 0;
  }));
  auto before = n.stats();
  CHECK(before.passivations >= 2);

  command get;
  get.what = op::get;
  auto again = n.ask({entity_kind::user, tid, uid}, get);
  REQUIRE_FALSE(again.error.has_value());
  CHECK(as_user(again).name() == "Ann");
  CHECK(as_user(again).attributes().fields().at("team").string_value() == "core");
  CHECK(again.version == 2);
  CHECK(n.stats().activations == before.activations + 1);
}

TEST_CASE("an entity that does not exist answers 404 and does not stay live", "[actors]") {
  node n;
  auto id = protocol::new_uuid_v7();
  command get;
  get.what = op::get;
  auto r = n.ask({entity_kind::tenant, id, id}, get);
  REQUIRE(r.error.has_value());
  CHECK(r.error->code == errc::not_found);
  REQUIRE(test::eventually([&] { return n.stats().live_tenants == 0; }));
}

TEST_CASE("a crash is isolated, counted, and the entity comes back on the next message", "[actors]") {
  node n;
  auto tid = n.create_tenant();
  auto other = n.create_tenant();
  command boom;
  boom.what = op::get;
  boom.inject_crash = true;
  auto r = n.ask({entity_kind::tenant, tid, tid}, boom);
  REQUIRE(r.error.has_value());
  CHECK(r.error->code == errc::internal);
  REQUIRE(test::eventually([&] { return n.stats().crashes == 1; }));
  command get;
  get.what = op::get;
  auto back = n.ask({entity_kind::tenant, tid, tid}, get);
  REQUIRE_FALSE(back.error.has_value());
  CHECK(back.version == 1);
  CHECK_FALSE(n.ask({entity_kind::tenant, other, other}, get).error.has_value());
}

TEST_CASE("one writer per entity: concurrent patches of one user apply one at a time", "[actors]") {
  node n;
  auto tid = n.create_tenant();
  auto uid = as_user(n.create_user(tid, "w@example.com")).id();
  constexpr int writers = 30;
  for (int i = 0; i < writers; ++i) {
    command c;
    c.what = op::patch_user;
    c.user_id = uid;
    c.text = R"({"attributes":{"k)" + std::to_string(i) + R"(":1}})";
    (*n.self)->send(n.registry, entity_key{entity_kind::tenant, tid, tid}, c);
  }
  std::set<std::uint32_t> versions;
  for (int i = 0; i < writers; ++i)
    (*n.self)->receive([&](entity_reply& r) {
      REQUIRE_FALSE(r.error.has_value());
      versions.insert(r.version);
    });
  CHECK(versions.size() == writers);
  CHECK(*versions.begin() == 2);
  CHECK(*versions.rbegin() == writers + 1);
  command get;
  get.what = op::get;
  auto final_state = n.ask({entity_kind::user, tid, uid}, get);
  CHECK(as_user(final_state).attributes().fields().size() == writers); // no lost update
}

TEST_CASE("seat limit holds under concurrent creations; a delete frees a seat", "[actors]") {
  node n;
  auto tid = n.create_tenant("free"); // 5 users
  for (int i = 0; i < 8; ++i) {
    auto req = std::make_shared<v1::CreateUserRequest>();
    req->set_email("u" + std::to_string(i) + "@example.com");
    command cmd;
    cmd.what = op::create_user;
    cmd.payload = req;
    cmd.user_id = protocol::new_uuid_v7();
    (*n.self)->send(n.registry, entity_key{entity_kind::tenant, tid, tid}, cmd);
  }
  int ok = 0, limited = 0;
  std::string some_user;
  for (int i = 0; i < 8; ++i)
    (*n.self)->receive([&](entity_reply& r) {
      if (!r.error) {
        ++ok;
        some_user = as_user(r).id();
      } else if (r.error->code == errc::limit_exceeded) {
        ++limited;
      }
    });
  CHECK(ok == 5);
  CHECK(limited == 3);
  command del;
  del.what = op::remove_user;
  del.user_id = some_user;
  REQUIRE_FALSE(n.ask({entity_kind::tenant, tid, tid}, del).error.has_value());
  CHECK_FALSE(n.create_user(tid, "new@example.com").error.has_value());
  auto full = n.create_user(tid, "one-more@example.com");
  REQUIRE(full.error.has_value());
  CHECK(full.error->code == errc::limit_exceeded);
}

TEST_CASE("users of a suspended tenant can be read but not written", "[actors]") {
  node n;
  auto tid = n.create_tenant();
  auto uid = as_user(n.create_user(tid, "r@example.com")).id();
  command s;
  s.what = op::suspend;
  REQUIRE_FALSE(n.ask({entity_kind::tenant, tid, tid}, s).error.has_value());
  command p;
  p.what = op::patch_user;
  p.user_id = uid;
  p.text = R"({"name":"x"})";
  auto r = n.ask({entity_kind::tenant, tid, tid}, p);
  REQUIRE(r.error.has_value());
  CHECK(r.error->code == errc::tenant_suspended);
  command get;
  get.what = op::get;
  CHECK_FALSE(n.ask({entity_kind::user, tid, uid}, get).error.has_value());
}

TEST_CASE("the directory keeps ids that are not canonical UUIDs apart and exact", "[actors]") {
  // Ids from the API are lower-case UUIDs (packed into 33 bytes by the
  // directory); any other id keeps its text form and must behave the same.
  node n;
  auto tid = n.create_tenant();
  auto create = [&](const std::string& uid, const std::string& email) {
    auto req = std::make_shared<v1::CreateUserRequest>();
    req->set_email(email);
    command cmd;
    cmd.what = op::create_user;
    cmd.payload = req;
    cmd.user_id = uid;
    return n.ask({entity_kind::tenant, tid, tid}, cmd);
  };
  auto upper = protocol::new_uuid_v7();
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const auto& uid : {std::string{"legacy-42"}, upper}) {
    INFO(uid);
    auto r = create(uid, "odd-" + std::to_string(uid.size()) + "@example.com");
    REQUIRE_FALSE(r.error.has_value());
    command get;
    get.what = op::get;
    auto found = n.ask({entity_kind::user, tid, uid}, get);
    REQUIRE_FALSE(found.error.has_value());
    CHECK(as_user(found).id() == uid);
    std::string lower = uid;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower != uid) { // another key, another (missing) user
      auto other = n.ask({entity_kind::user, tid, lower}, get);
      REQUIRE(other.error.has_value());
      CHECK(other.error->code == errc::not_found);
    }
  }
  // The packed and the text keys live side by side.
  auto normal = n.create_user(tid, "normal@example.com");
  REQUIRE_FALSE(normal.error.has_value());
  command get;
  get.what = op::get;
  auto again = n.ask({entity_kind::user, tid, as_user(normal).id()}, get);
  REQUIRE_FALSE(again.error.has_value());
  CHECK(as_user(again).email() == "normal@example.com");
  CHECK(n.stats().live_users >= 3);
}
