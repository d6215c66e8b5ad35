// The plugin registry's contract on both stores: a published version is
// written with its audit record, never twice (duplicate, and the first one
// stays as it was), found by name and version, listed by name in pages, and
// holds any bytes of its state.
#include "support.hpp"

#include "colony/v1/event.pb.h"

using namespace colony;
using namespace colony::actors;

namespace {

struct registry : test::store_fixture {
  std::string prefix = "t" + protocol::new_uuid_v7().substr(0, 8) + "-";

  plugin_result ask(plugin_op op) {
    plugin_result out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), plugin_atom::value, std::move(op))
      .receive([&](plugin_result& r) { out = std::move(r); }, [](caf::error&) {});
    return out;
  }

  plugin_result publish(const std::string& name, const std::string& version, std::string state) {
    plugin_op op;
    op.what = plugin_op::kind::publish;
    op.row = plugin_row{name, version, std::move(state), protocol::now_us()};
    audit_record a;
    a.id = protocol::new_uuid_v7();
    a.at_us = protocol::now_us();
    a.actor = "api_key:test";
    a.action = "plugin.published";
    a.target = "plugin:" + name + "@" + version;
    a.outcome = "success";
    op.audit.push_back(a);
    return ask(op);
  }
};

} // namespace

TEST_CASE_METHOD(registry, "plugin registry: publish once, read by name and version, list by name", "[store]") {
  std::string bytes("\x00\x01state\xff", 8);
  REQUIRE(publish(prefix + "a", "1.0.0", bytes).status == store_status::ok);
  REQUIRE(publish(prefix + "a", "1.1.0", "second").status == store_status::ok);
  REQUIRE(publish(prefix + "b", "0.1.0", "b").status == store_status::ok);
  CHECK(publish(prefix + "a", "1.0.0", "changed").status == store_status::duplicate);

  plugin_op get;
  get.what = plugin_op::kind::get;
  get.name = prefix + "a";
  get.version = "1.0.0";
  auto one = ask(get);
  REQUIRE(one.status == store_status::ok);
  REQUIRE(one.rows.size() == 1);
  CHECK(one.rows[0].state == bytes); // the first publication, byte for byte
  get.version = "9.9.9";
  CHECK(ask(get).status == store_status::not_found);

  plugin_op versions;
  versions.what = plugin_op::kind::versions;
  versions.name = prefix + "a";
  auto vs = ask(versions);
  REQUIRE(vs.rows.size() == 2);
  CHECK(vs.rows[0].version == "1.0.0");
  CHECK(vs.rows[1].version == "1.1.0");

  plugin_op list;
  list.what = plugin_op::kind::list;
  list.after = prefix; // names of earlier runs sort before this run's prefix or after it
  list.limit = 1;
  auto page = ask(list);
  REQUIRE(page.rows.size() == 2); // every version of the first name
  CHECK(page.rows[0].name == prefix + "a");
  list.after = prefix + "a";
  auto next = ask(list);
  REQUIRE_FALSE(next.rows.empty());
  CHECK(next.rows[0].name == prefix + "b");

  // The publication's audit record is in its transaction: one, the duplicate wrote none.
  audit_op au;
  au.all_tenants = true;
  au.target = "plugin:" + prefix + "a@1.0.0";
  au.limit = 50;
  audit_page records;
  records.status = store_status::error;
  (*self)
    ->request(store, std::chrono::seconds(10), audit_atom::value, au)
    .receive([&](audit_page& r) { records = std::move(r); }, [](caf::error&) {});
  REQUIRE(records.status == store_status::ok);
  REQUIRE(records.rows.size() == 1);
  CHECK(records.rows[0].action == "plugin.published");
}

TEST_CASE_METHOD(registry, "plugin kv: effects write keys and events in one transaction, within the quota", "[store]") {
  auto tenant = prefix + "tenant";
  auto other = prefix + "other";
  auto effects = [&](const std::string& t, std::vector<plugin_kv> writes, std::vector<outbox_event> events,
                     std::int64_t quota) {
    plugin_op op;
    op.what = plugin_op::kind::effects;
    op.tenant_id = t;
    op.name = "counter";
    op.effects.writes = std::move(writes);
    op.effects.events = std::move(events);
    op.effects.quota = quota;
    return ask(op);
  };
  auto get = [&](const std::string& t, const std::string& key) {
    plugin_op op;
    op.what = plugin_op::kind::kv_get;
    op.tenant_id = t;
    op.name = "counter";
    op.version = key;
    return ask(op);
  };
  auto list = [&](const std::string& prefix_, const std::string& after, int limit) {
    plugin_op op;
    op.what = plugin_op::kind::kv_list;
    op.tenant_id = tenant;
    op.name = "counter";
    op.version = prefix_;
    op.after = after;
    op.limit = limit;
    return ask(op);
  };
  auto event = [&](const std::string& type) {
    v1::Event ev;
    ev.set_id(protocol::new_uuid_v7());
    ev.set_type(type);
    ev.set_tenant_id(tenant);
    return outbox_event{ev.id(), ev.type(), ev.SerializeAsString()};
  };

  auto first = effects(tenant, {{"a:1", "1"}, {"a:2", "{\"x\":2}"}, {"b", "\"é\""}, {"a:1", "11"}},
                       {event("plugin.counter.counted")}, 1 << 20);
  REQUIRE(first.status == store_status::ok);
  // The last write of a key wins; sizes are bytes ("é" is two).
  CHECK(first.kv_bytes == kv_footprint(3, 2) + kv_footprint(3, 7) + kv_footprint(1, 4));
  auto one = get(tenant, "a:1");
  REQUIRE(one.status == store_status::ok);
  REQUIRE(one.kv.size() == 1);
  CHECK(one.kv[0].value == std::optional<std::string>{"11"});
  CHECK(get(tenant, "nope").status == store_status::not_found);
  CHECK(get(other, "a:1").status == store_status::not_found); // another tenant's keys are its own

  // Listed by key, with a prefix, in pages.
  auto page = list("a:", "", 1);
  REQUIRE(page.kv.size() == 1);
  CHECK(page.kv[0].key == "a:1");
  page = list("a:", "a:1", 10);
  REQUIRE(page.kv.size() == 1);
  CHECK(page.kv[0].key == "a:2");
  CHECK(list("", "", 10).kv.size() == 3);

  // Over the quota: nothing of the call is written, not its events either.
  auto before = first.kv_bytes;
  auto refused = effects(tenant, {{"big", std::string(2000, 'x')}, {"a:1", std::nullopt}},
                         {event("plugin.counter.refused")}, before + 1000);
  CHECK(refused.over_quota);
  CHECK(refused.status != store_status::ok);
  CHECK(get(tenant, "big").status == store_status::not_found);
  CHECK(get(tenant, "a:1").status == store_status::ok);

  // A delete frees its bytes.
  auto freed = effects(tenant, {{"a:1", std::nullopt}}, {}, before);
  REQUIRE(freed.status == store_status::ok);
  CHECK(freed.kv_bytes == before - kv_footprint(3, 2));
  CHECK(get(tenant, "a:1").status == store_status::not_found);

  // The events: the one of the first call is in the tenant's outbox, as a plugin's; the refused one is not.
  event_page evs;
  evs.status = store_status::error;
  (*self)
    ->request(store, std::chrono::seconds(10), events_atom::value, event_query{tenant, 0, 100, false})
    .receive([&](event_page& r) { evs = std::move(r); }, [](caf::error&) {});
  REQUIRE(evs.status == store_status::ok);
  std::vector<std::string> types;
  for (const auto& r : evs.rows) {
    v1::Event ev;
    REQUIRE(ev.ParseFromString(r.payload));
    types.push_back(ev.type());
  }
  CHECK(types == std::vector<std::string>{"plugin.counter.counted"});
}
