// The plugin registry's contract on both stores: a published version is
// written with its audit record, never twice (duplicate, and the first one
// stays as it was), found by name and version, listed by name in pages, and
// holds any bytes of its state.
#include "support.hpp"

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
