// The webhook deliveries' contract on both stores: a due delivery is claimed
// (not due again until its lease ends: the node attempting it died), a
// recorded attempt ends the claim, a dead delivery stays dead, and on a
// cluster (PostgreSQL) a node sees only the deliveries of its shards.
#include <algorithm>
#include <set>

#include "colony/runtime/cluster.hpp"
#include "support.hpp"

using namespace colony;
using namespace colony::actors;

namespace {

struct hooks : test::store_fixture {
  std::string tenant = "t-" + protocol::new_uuid_v7();
  std::string endpoint = "we-" + protocol::new_uuid_v7();
  std::int64_t now = protocol::now_us();

  webhook_result ask(webhook_op op) {
    webhook_result out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), webhook_atom::value, std::move(op))
      .receive([&](webhook_result& r) { out = std::move(r); }, [](caf::error&) {});
    return out;
  }

  hooks() {
    webhook_op e;
    e.what = webhook_op::kind::create_endpoint;
    e.endpoint = {endpoint, tenant, "https://hooks.example.com/x", {}, "sealed", "", now - 10'000'000};
    REQUIRE(ask(e).status == store_status::ok);
  }

  std::vector<std::string> enqueue(int n) {
    webhook_op op;
    op.what = webhook_op::kind::enqueue;
    op.cursor = "test-" + endpoint;
    op.position = 1;
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      webhook_delivery d;
      d.id = "wd-" + protocol::new_uuid_v7();
      d.endpoint_id = endpoint;
      d.tenant_id = tenant;
      d.event_id = "ev-" + protocol::new_uuid_v7();
      d.event_type = "user.created";
      d.body = "{}";
      d.next_attempt_us = now - 1000;
      d.created_us = now;
      ids.push_back(d.id);
      op.deliveries.push_back(std::move(d));
    }
    REQUIRE(ask(op).status == store_status::ok);
    return ids;
  }

  /// This test's deliveries among those due at `at` (claimed until `lease`).
  std::set<std::string> due(std::int64_t at, std::int64_t lease, shard_scope scope = {}) {
    webhook_op op;
    op.what = webhook_op::kind::due;
    op.now_us = at;
    op.lease_us = lease;
    op.limit = 1000;
    op.scope = std::move(scope);
    auto r = ask(op);
    REQUIRE(r.status == store_status::ok);
    std::set<std::string> out;
    for (const auto& d : r.deliveries)
      if (d.endpoint_id == endpoint) {
        CHECK(d.url == "https://hooks.example.com/x");
        CHECK(d.next_attempt_us == lease);
        out.insert(d.id);
      }
    return out;
  }

  webhook_delivery record(const std::string& id, const std::string& status, std::int64_t next) {
    webhook_delivery d;
    d.id = id;
    d.endpoint_id = endpoint;
    d.tenant_id = tenant;
    d.status = status;
    d.attempts = 1;
    d.next_attempt_us = next;
    d.last_status = status == "delivered" ? 204 : 500;
    d.updated_us = now;
    webhook_op op;
    op.what = webhook_op::kind::record;
    op.deliveries.push_back(d);
    REQUIRE(ask(op).status == store_status::ok);
    return d;
  }

  std::map<std::string, std::string> statuses() {
    webhook_op op;
    op.what = webhook_op::kind::list_deliveries;
    op.tenant_id = tenant;
    op.endpoint_id = endpoint;
    op.limit = 100;
    std::map<std::string, std::string> out;
    for (const auto& d : ask(op).deliveries)
      out[d.id] = d.status;
    return out;
  }
};

constexpr std::int64_t minute = 60'000'000;

} // namespace

TEST_CASE_METHOD(hooks, "webhooks: a due delivery is claimed until its lease ends or its attempt is recorded",
                 "[store][webhooks]") {
  auto ids = enqueue(3);
  std::set<std::string> all(ids.begin(), ids.end());
  CHECK(due(now, now + minute) == all);
  CHECK(due(now, now + minute).empty());                  // claimed: not due again
  CHECK(due(now + minute / 2, now + 2 * minute).empty()); // still claimed
  CHECK(due(now + minute + 1, now + 3 * minute) == all);  // the claimer died: due again, claimed anew
  record(ids[0], "delivered", now);
  record(ids[1], "pending", now + 4 * minute); // a failed attempt: its retry time
  CHECK(due(now + 3 * minute + 1, now + 10 * minute) == std::set<std::string>{ids[2]});
  CHECK(due(now + 4 * minute + 1, now + 10 * minute) == std::set<std::string>{ids[1]});
  auto st = statuses();
  CHECK(st[ids[0]] == "delivered");
  CHECK(st[ids[1]] == "pending");
}

TEST_CASE_METHOD(hooks, "webhooks: a dead delivery stays dead when a late attempt is recorded", "[store][webhooks]") {
  auto ids = enqueue(1);
  REQUIRE(due(now, now + minute).size() == 1);
  webhook_op del; // the endpoint is deleted while the attempt runs
  del.what = webhook_op::kind::delete_endpoint;
  del.tenant_id = tenant;
  del.endpoint_id = endpoint;
  del.now_us = now;
  REQUIRE(ask(del).status == store_status::ok);
  record(ids[0], "pending", now + 1); // the attempt failed: it would retry
  CHECK(statuses()[ids[0]] == "dead");
  CHECK(due(now + 2 * minute, now + 3 * minute).empty());
}

TEST_CASE_METHOD(hooks, "webhooks: on a cluster a node sees the due deliveries of its own shards",
                 "[store][webhooks]") {
  auto ids = enqueue(2);
  std::set<std::string> all(ids.begin(), ids.end());
  auto mine = static_cast<std::int32_t>(runtime::cluster::shard_of(tenant));
  auto other = (mine + 1) % static_cast<std::int32_t>(runtime::cluster::shard_count);
  if (test::store_kind() == "postgres") {
    CHECK(due(now, now + minute, shard_scope{false, {other}, true}).empty()); // unsharded: not these
    CHECK(due(now, now + minute, shard_scope{false, {}, false}).empty());
  }
  CHECK(due(now, now + minute, shard_scope{false, {other, mine}, false}) == all); // SQLite: one node owns all
}
