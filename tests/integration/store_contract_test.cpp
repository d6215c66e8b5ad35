// One contract for every store adapter (SQLite and PostgreSQL): the same
// assertions run against both (see COLONY_TEST_STORE).
#include <pqxx/pqxx>
#include <set>
#include <sqlite3.h>

#include "colony/runtime/cluster.hpp"
#include "colony/v1/event.pb.h"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"
#include "support.hpp"

using namespace colony;
using namespace colony::actors;

namespace {

struct fixture : test::store_fixture {
  commit_outcome commit(change ch) {
    commit_outcome out{store_status::error, {}, "no answer"};
    (*self)
      ->request(store, std::chrono::seconds(10), commit_atom::value, std::move(ch))
      .receive([&](commit_outcome& o) { out = o; }, [](caf::error&) {});
    return out;
  }
  loaded load(entity_key k) {
    loaded out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), load_atom::value, std::move(k))
      .receive([&](loaded& l) { out = l; }, [](caf::error&) {});
    return out;
  }
  event_page events(event_query q) {
    event_page out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), events_atom::value, std::move(q))
      .receive([&](event_page& p) { out = p; }, [](caf::error&) {});
    return out;
  }
  outbox_backlog backlog() {
    outbox_backlog out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), backlog_atom::value)
      .receive([&](outbox_backlog& b) { out = b; }, [](caf::error&) {});
    return out;
  }
  commit_outcome mark_published(std::vector<std::int64_t> positions) {
    commit_outcome out{store_status::error, {}, "no answer"};
    (*self)
      ->request(store, std::chrono::seconds(10), published_atom::value, std::move(positions), protocol::now_us())
      .receive([&](commit_outcome& o) { out = o; }, [](caf::error&) {});
    return out;
  }
  timer_page due(std::int64_t now, shard_scope scope = {}) {
    timer_page out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), timers_atom::value, now, std::int32_t{1000}, std::move(scope))
      .receive([&](timer_page& p) { out = p; }, [](caf::error&) {});
    return out;
  }
  template <class... Ts>
  commit_outcome ask(Ts... xs) {
    commit_outcome out{store_status::error, {}, "no answer"};
    (*self)
      ->request(store, std::chrono::seconds(10), xs...)
      .receive([&](commit_outcome& o) { out = o; }, [](caf::error&) {});
    return out;
  }
  row_page list(list_query q) {
    row_page out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), list_atom::value, std::move(q))
      .receive([&](row_page& p) { out = p; }, [](caf::error&) {});
    return out;
  }
};

// Real colony.v1 states, so that other tests sharing the database can read them.
std::string tenant_state(const std::string& id, const std::string& slug, const std::string& name = "T") {
  v1::Tenant t;
  t.set_id(id);
  t.set_slug(slug);
  t.set_name(name);
  t.set_plan("free");
  t.set_status("trial");
  return t.SerializeAsString();
}

// A real colony.v1.Event, so that the HTTP feed can render what tests leave behind.
outbox_event event_for(const std::string& type, const std::string& tid, const std::string& aggregate_id) {
  v1::Event ev;
  ev.set_id(protocol::new_uuid_v7());
  ev.set_type(type);
  ev.set_tenant_id(tid);
  ev.set_aggregate_id(aggregate_id);
  return outbox_event{ev.id(), type, ev.SerializeAsString()};
}

change tenant_insert(const std::string& id, const std::string& slug, std::int64_t created = protocol::now_us()) {
  change ch;
  ch.kind = entity_kind::tenant;
  ch.what = change_kind::insert;
  ch.row = entity_row{id, id, slug, "Tenant " + slug, "trial", "free", "", created, created, 1, tenant_state(id, slug)};
  ch.events.push_back(event_for("tenant.created", id, id));
  return ch;
}

change user_insert(const std::string& tid, const std::string& id, const std::string& email, const std::string& name,
                   std::int64_t created, const std::string& roles = ",member,", const std::string& status = "active") {
  change ch;
  ch.kind = entity_kind::user;
  ch.what = change_kind::insert;
  v1::User u;
  u.set_id(id);
  u.set_tenant_id(tid);
  u.set_email(email);
  u.set_name(name);
  ch.row = entity_row{tid, id, email, name, status, "", roles, created, created, 1, u.SerializeAsString()};
  ch.user_count_delta = 1;
  ch.events.push_back(event_for("user.created", tid, id));
  return ch;
}

std::string slug_for(const std::string& id) { return "t-" + id.substr(24); }

} // namespace

TEST_CASE_METHOD(fixture, "store: tenants insert, load, optimistic update, unique slug", "[store]") {
  auto id = protocol::new_uuid_v7();
  auto slug = slug_for(id);
  CHECK(load({entity_kind::tenant, id, id}).status == store_status::not_found);
  REQUIRE(commit(tenant_insert(id, slug)).status == store_status::ok);
  auto l = load({entity_kind::tenant, id, id});
  REQUIRE(l.status == store_status::ok);
  CHECK(l.state == tenant_state(id, slug));
  CHECK(l.version == 1);
  CHECK(l.user_count == 0);

  auto dup = commit(tenant_insert(protocol::new_uuid_v7(), slug));
  CHECK(dup.status == store_status::duplicate);
  CHECK(dup.field == "slug");
  // The same id again: the primary key, named as "id".
  auto same_id = commit(tenant_insert(id, slug_for(protocol::new_uuid_v7())));
  CHECK(same_id.status == store_status::duplicate);
  CHECK(same_id.field == "id");
  // A redelivered message: its key, whatever else the change would hit.
  auto fresh = protocol::new_uuid_v7();
  change once = tenant_insert(fresh, slug_for(fresh));
  once.message_key = "contract-" + fresh;
  REQUIRE(commit(once).status == store_status::ok);
  auto again = commit(once);
  CHECK(again.status == store_status::duplicate);
  CHECK(again.field == "message_key");

  change up = tenant_insert(id, slug);
  up.what = change_kind::update;
  up.row.version = 2;
  up.row.state = tenant_state(id, slug, "v2");
  up.expected_version = 5; // wrong
  CHECK(commit(up).status == store_status::stale);
  up.expected_version = 1;
  REQUIRE(commit(up).status == store_status::ok);
  l = load({entity_kind::tenant, id, id});
  CHECK(l.version == 2);
  CHECK(l.state == tenant_state(id, slug, "v2"));

  auto missing = protocol::new_uuid_v7();
  change none = tenant_insert(missing, slug_for(missing));
  none.what = change_kind::update;
  none.expected_version = 1;
  CHECK(commit(none).status == store_status::not_found);

  std::string resolved;
  (*self)
    ->request(store, std::chrono::seconds(5), resolve_atom::value, slug)
    .receive([&](std::string& s) { resolved = s; }, [](caf::error&) {});
  CHECK(resolved == id);
}

TEST_CASE_METHOD(fixture, "store: users count seats, unique email per tenant, deletes free seats", "[store]") {
  auto t1 = protocol::new_uuid_v7(), t2 = protocol::new_uuid_v7();
  REQUIRE(commit(tenant_insert(t1, slug_for(t1))).status == store_status::ok);
  REQUIRE(commit(tenant_insert(t2, slug_for(t2))).status == store_status::ok);
  auto u1 = protocol::new_uuid_v7();
  REQUIRE(commit(user_insert(t1, u1, "ann@example.com", "Ann", 1)).status == store_status::ok);
  auto dup = commit(user_insert(t1, protocol::new_uuid_v7(), "ann@example.com", "Ann 2", 2));
  CHECK(dup.status == store_status::duplicate);
  CHECK(dup.field == "email");
  CHECK(commit(user_insert(t2, protocol::new_uuid_v7(), "ann@example.com", "Ann", 3)).status == store_status::ok);
  CHECK(load({entity_kind::tenant, t1, t1}).user_count == 1); // the failed insert left nothing behind
  CHECK(load({entity_kind::user, t1, u1}).status == store_status::ok);
  CHECK(load({entity_kind::user, t2, u1}).status == store_status::not_found); // other tenant: invisible

  change del;
  del.kind = entity_kind::user;
  del.what = change_kind::remove;
  del.row.tenant_id = t1;
  del.row.id = u1;
  del.expected_version = 1;
  del.user_count_delta = -1;
  REQUIRE(commit(del).status == store_status::ok);
  CHECK(load({entity_kind::tenant, t1, t1}).user_count == 0);
  CHECK(load({entity_kind::user, t1, u1}).status == store_status::not_found);

  // A user for a tenant that does not exist is refused, not orphaned.
  auto ghost = protocol::new_uuid_v7();
  CHECK(commit(user_insert(ghost, protocol::new_uuid_v7(), "x@example.com", "X", 1)).status == store_status::not_found);
}

TEST_CASE_METHOD(fixture, "store: concurrent commits are grouped and each succeeds or fails alone", "[store]") {
  auto tid = protocol::new_uuid_v7();
  REQUIRE(commit(tenant_insert(tid, slug_for(tid))).status == store_status::ok);
  // 60 concurrent inserts, every 10th one a duplicate email.
  std::vector<std::string> emails;
  for (int i = 0; i < 60; ++i)
    emails.push_back(i % 10 == 9 ? "dup@example.com" : "user" + std::to_string(i) + "@example.com");
  int ok = 0, dups = 0;
  for (int i = 0; i < 60; ++i)
    (*self)->send(store, commit_atom::value, user_insert(tid, protocol::new_uuid_v7(), emails[i], "U", i));
  for (int i = 0; i < 60; ++i)
    (*self)->receive([&](commit_outcome& o) {
      if (o.status == store_status::ok)
        ++ok;
      else if (o.status == store_status::duplicate)
        ++dups;
      else
        FAIL_CHECK("unexpected outcome " << static_cast<int>(o.status) << ": " << o.detail);
    });
  CHECK(ok == 55);
  CHECK(dups == 5);
  CHECK(load({entity_kind::tenant, tid, tid}).user_count == 55);
}

TEST_CASE_METHOD(fixture, "store: a grouped batch of creations writes every row, seat and event exactly once",
                 "[store]") {
  // Many plain creations in flight at once: PostgreSQL writes such a batch
  // as multi-row statements; the result must be the same as one by one.
  auto tid = protocol::new_uuid_v7();
  REQUIRE(commit(tenant_insert(tid, slug_for(tid))).status == store_status::ok);
  std::vector<change> sent;
  for (int i = 0; i < 80; ++i)
    sent.push_back(user_insert(tid, protocol::new_uuid_v7(), "batch" + std::to_string(i) + "@example.com",
                               // what COPY's text format escapes, and "\N", its NULL
                               "O'Brien \"" + std::to_string(i) + "\" \\ ünï\t\r\n\\N\\.", i));
  for (const auto& ch : sent)
    (*self)->send(store, commit_atom::value, ch);
  int ok = 0;
  for (std::size_t i = 0; i < sent.size(); ++i)
    (*self)->receive([&](commit_outcome& o) { ok += o.status == store_status::ok ? 1 : 0; });
  REQUIRE(ok == 80);
  CHECK(load({entity_kind::tenant, tid, tid}).user_count == 80);
  for (const auto& ch : sent) {
    auto l = load({entity_kind::user, tid, ch.row.id});
    REQUIRE(l.status == store_status::ok);
    CHECK(l.state == ch.row.state); // bytes intact, quotes and backslashes in names included
  }
  // The indexed columns too, read back as the list's sort keys.
  list_query q;
  q.kind = entity_kind::user;
  q.tenant_id = tid;
  q.sort_field = "name";
  q.limit = 100;
  auto names = list(q);
  REQUIRE(names.status == store_status::ok);
  std::multiset<std::string> got, want;
  for (const auto& r : names.rows)
    got.insert(r.sort_text);
  for (const auto& ch : sent)
    want.insert(ch.row.name);
  CHECK(got == want);
  auto page = events(event_query{tid, 0, 1000, false});
  REQUIRE(page.status == store_status::ok);
  REQUIRE(page.rows.size() == 81); // tenant.created + one user.created each
  std::set<std::string> payloads;
  for (std::size_t i = 1; i < page.rows.size(); ++i)
    payloads.insert(page.rows[i].payload);
  for (const auto& ch : sent)
    CHECK(payloads.contains(ch.events.front().payload));

  // Creations for a tenant that does not exist: refused, each alone, none written.
  auto ghost = protocol::new_uuid_v7();
  for (int i = 0; i < 10; ++i)
    (*self)->send(store, commit_atom::value,
                  user_insert(ghost, protocol::new_uuid_v7(), "g" + std::to_string(i) + "@x.io", "G", i));
  for (int i = 0; i < 10; ++i)
    (*self)->receive([&](commit_outcome& o) { CHECK(o.status == store_status::not_found); });
  CHECK(events(event_query{ghost, 0, 100, false}).rows.empty());
}

TEST_CASE_METHOD(fixture, "store: concurrent loads are grouped and each gets its own row", "[store]") {
  // Two tenants with users; then many loads in flight at once, mixing kinds,
  // tenants, a key asked twice and keys that do not exist.
  std::vector<std::string> tids{protocol::new_uuid_v7(), protocol::new_uuid_v7()};
  std::vector<change> users;
  for (const auto& tid : tids) {
    REQUIRE(commit(tenant_insert(tid, slug_for(tid))).status == store_status::ok);
    for (int i = 0; i < 30; ++i) {
      users.push_back(user_insert(tid, protocol::new_uuid_v7(), "l" + std::to_string(i) + "@example.com", "L", i));
      REQUIRE(commit(users.back()).status == store_status::ok);
    }
  }
  struct ask {
    entity_key key;
    std::string state; // "" = must not exist
    std::int32_t user_count = 0;
  };
  std::vector<ask> asks;
  for (const auto& u : users)
    asks.push_back({{entity_kind::user, u.row.tenant_id, u.row.id}, u.row.state, 0});
  asks.push_back(asks.front()); // the same key twice
  for (const auto& tid : tids)
    asks.push_back({{entity_kind::tenant, tid, tid}, tenant_state(tid, slug_for(tid)), 30});
  asks.push_back({{entity_kind::user, tids[0], protocol::new_uuid_v7()}, "", 0});
  asks.push_back({{entity_kind::user, protocol::new_uuid_v7(), users.front().row.id}, "", 0}); // wrong tenant
  asks.push_back({{entity_kind::tenant, "", "no-such-tenant"}, "", 0});
  // Replies come back in any order: match them by content.
  for (const auto& a : asks)
    (*self)->send(store, load_atom::value, a.key);
  std::map<std::string, std::vector<loaded>> by_state;
  int missing = 0;
  for (std::size_t i = 0; i < asks.size(); ++i)
    (*self)->receive([&](loaded& l) {
      if (l.status == store_status::not_found)
        ++missing;
      else
        by_state[l.state].push_back(l);
    });
  CHECK(missing == 3);
  std::map<std::string, int> expected;
  for (const auto& a : asks)
    if (!a.state.empty())
      ++expected[a.state];
  for (const auto& a : asks) {
    if (a.state.empty())
      continue;
    INFO(a.key.str());
    auto it = by_state.find(a.state);
    REQUIRE(it != by_state.end());
    CHECK(static_cast<int>(it->second.size()) == expected[a.state]); // the duplicate ask: two answers
    for (const auto& l : it->second) {
      CHECK(l.status == store_status::ok);
      CHECK(l.version == 1);
      CHECK(l.user_count == a.user_count);
    }
  }
}

TEST_CASE("store: a load the database does not answer in time is answered unavailable", "[store]") {
  // PostgreSQL: a second connection holds an exclusive lock on the users, so
  // the reader's query waits; the store answers `unavailable` after its load
  // timeout (checked every quarter of it), long before the database would.
  // SQLite (WAL): readers never wait for a writer, so a second connection
  // holding the write lock must not delay the load at all.
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  adapters::store_options o;
  o.spec = test::store_spec();
  o.load_timeout = std::chrono::milliseconds(300);
  auto store = adapters::spawn_store(sys, o);
  struct stop_on_exit { // also when a REQUIRE throws: ~actor_system waits for the store
    actors::store_port s;
    ~stop_on_exit() { caf::anon_send_exit(s, caf::exit_reason::user_shutdown); }
  } stop{store};
  test::await_ready(sys, store);
  caf::scoped_actor self{sys};
  auto load = [&] {
    loaded out;
    out.status = store_status::error;
    self
      ->request(store, std::chrono::seconds(10), load_atom::value,
                entity_key{entity_kind::user, protocol::new_uuid_v7(), protocol::new_uuid_v7()})
      .receive([&](loaded& l) { out = l; }, [](caf::error&) {});
    return out;
  };
  bool sqlite = o.spec.starts_with("sqlite:");
  std::unique_ptr<pqxx::connection> pg;
  std::unique_ptr<pqxx::work> lock;
  sqlite3* lite = nullptr;
  if (sqlite) {
    REQUIRE(sqlite3_open(o.spec.substr(7).c_str(), &lite) == SQLITE_OK);
    REQUIRE(sqlite3_exec(lite, "BEGIN IMMEDIATE; UPDATE schema_migrations SET name = name;", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
  } else {
    pg = std::make_unique<pqxx::connection>(o.spec);
    lock = std::make_unique<pqxx::work>(*pg);
    lock->exec("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
  }
  auto started = std::chrono::steady_clock::now();
  auto out = load();
  auto waited = std::chrono::steady_clock::now() - started;
  if (sqlite) {
    CHECK(out.status == store_status::not_found);
    CHECK(waited < std::chrono::milliseconds(300));
    sqlite3_exec(lite, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(lite);
    return;
  }
  CHECK(out.status == store_status::unavailable);
  CHECK(out.detail.find("did not answer within 300 ms") != std::string::npos);
  CHECK(waited < std::chrono::seconds(1));
  // Released, the store serves loads again (the stuck reader answers late and is reused).
  lock->commit();
  CHECK(test::eventually([&] { return load().status == store_status::not_found; }));
}

TEST_CASE_METHOD(fixture, "store: keyset pages are complete, ordered and stable while rows are added", "[store]") {
  auto tid = protocol::new_uuid_v7();
  REQUIRE(commit(tenant_insert(tid, slug_for(tid))).status == store_status::ok);
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "name-%02d", (i * 7) % 25);
    auto roles = i % 5 == 0 ? ",admin," : ",member,";
    REQUIRE(commit(user_insert(tid, protocol::new_uuid_v7(), "u" + std::to_string(i) + "@ex.com", name, 1000 + i, roles,
                               i % 4 == 0 ? "disabled" : "active"))
              .status == store_status::ok);
  }
  auto page_all = [&](list_query q, bool add_midway) {
    std::vector<std::string> keys;
    int pages = 0;
    while (true) {
      auto p = list(q);
      REQUIRE(p.status == store_status::ok);
      bool more = p.rows.size() > static_cast<std::size_t>(q.limit);
      if (more)
        p.rows.resize(q.limit);
      for (auto& r : p.rows)
        keys.push_back(q.sort_field == "createdAt" ? std::to_string(r.sort_number) : r.sort_text);
      ++pages;
      if (add_midway && pages == 1)
        REQUIRE(commit(user_insert(tid, protocol::new_uuid_v7(), "late@ex.com", "aaa-first", 1)).status ==
                store_status::ok);
      if (!more)
        break;
      q.has_after = true;
      q.after_id = p.rows.back().id;
      q.after_number = p.rows.back().sort_number;
      q.after_text = p.rows.back().sort_text;
    }
    return keys;
  };
  list_query q;
  q.kind = entity_kind::user;
  q.tenant_id = tid;
  q.sort_field = "name";
  q.limit = 10;
  auto names = page_all(q, true);
  CHECK(names.size() == 25); // the row added before the cursor is not seen, nothing is repeated or lost
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == 25);

  q.descending = true;
  auto desc = page_all(q, false);
  CHECK(desc.size() == 26);
  CHECK(std::is_sorted(desc.rbegin(), desc.rend()));

  list_query f = q;
  f.descending = false;
  f.sort_field = "createdAt";
  f.role = "admin";
  CHECK(page_all(f, false).size() == 5);
  f.role.clear();
  f.status = "disabled";
  CHECK(page_all(f, false).size() == 7);
  f.status.clear();
  f.q = "NAME-1"; // name-10 .. name-19 (case-insensitive substring)
  CHECK(page_all(f, false).size() == 10);
  f.q = "late@";
  CHECK(page_all(f, false).size() == 1);
  f.q = "%";
  CHECK(page_all(f, false).empty()); // LIKE wildcards are literal
}

TEST_CASE_METHOD(fixture, "store: the outbox holds exactly the events of committed changes, in commit order",
                 "[store][events]") {
  auto before = backlog();
  REQUIRE(before.status == store_status::ok);
  auto tid = protocol::new_uuid_v7();
  auto t = tenant_insert(tid, slug_for(tid));
  auto tenant_event = t.events.front();
  REQUIRE(commit(t).status == store_status::ok);
  auto u1 = user_insert(tid, protocol::new_uuid_v7(), "a@example.com", "A", protocol::now_us());
  auto u2 = user_insert(tid, protocol::new_uuid_v7(), "a@example.com", "dup", protocol::now_us()); // same email
  auto u1_event = u1.events.front();
  REQUIRE(commit(u1).status == store_status::ok);
  REQUIRE(commit(u2).status == store_status::duplicate);

  // The tenant's feed: its two events, in commit order; the refused change left none.
  auto page = events(event_query{tid, 0, 100, false});
  REQUIRE(page.status == store_status::ok);
  REQUIRE(page.rows.size() == 2);
  CHECK(page.rows[0].position < page.rows[1].position);
  CHECK(page.rows[0].payload == tenant_event.payload);
  CHECK(page.rows[1].payload == u1_event.payload);

  // Resuming after the first position gives the second; limit bounds the page.
  auto rest = events(event_query{tid, page.rows[0].position, 100, false});
  REQUIRE(rest.rows.size() == 1);
  CHECK(rest.rows[0].position == page.rows[1].position);
  CHECK(events(event_query{tid, 0, 1, false}).rows.size() == 1);
  // The latest: the last `limit`, in position order (the console's tail starts there).
  auto last = events(event_query{tid, 0, 1, false, true});
  REQUIRE(last.rows.size() == 1);
  CHECK(last.rows[0].position == page.rows[1].position);
  auto both = events(event_query{tid, 0, 5, false, true});
  REQUIRE(both.rows.size() == 2);
  CHECK(both.rows[0].position == page.rows[0].position);
  auto newest = events(event_query{"", 0, 1, false, true});
  REQUIRE(newest.rows.size() == 1);
  CHECK(newest.rows[0].position >= page.rows[1].position);

  // The all-tenants feed has them too, at the same positions.
  auto all = events(event_query{"", page.rows[0].position - 1, 1000, false});
  REQUIRE(all.status == store_status::ok);
  REQUIRE(all.rows.size() >= 2);
  CHECK(all.rows[0].position == page.rows[0].position);

  // Both wait for the relay until marked published.
  auto waiting = backlog();
  CHECK(waiting.count == before.count + 2);
  CHECK(waiting.oldest_us > 0);
  auto unpublished = events(event_query{"", page.rows[0].position - 1, 1000, true});
  std::set<std::int64_t> positions;
  for (const auto& r : unpublished.rows)
    positions.insert(r.position);
  CHECK(positions.contains(page.rows[0].position));
  CHECK(positions.contains(page.rows[1].position));

  REQUIRE(mark_published({page.rows[0].position, page.rows[1].position}).status == store_status::ok);
  CHECK(backlog().count == before.count);
  unpublished = events(event_query{"", page.rows[0].position - 1, 1000, true});
  for (const auto& r : unpublished.rows) {
    CHECK(r.position != page.rows[0].position);
    CHECK(r.position != page.rows[1].position);
  }
  // Published events stay in the feed.
  CHECK(events(event_query{tid, 0, 100, false}).rows.size() == 2);
}

TEST_CASE_METHOD(fixture, "store: timers are set with their change, found when due, moved, retried and deleted",
                 "[store][timers]") {
  auto tid = protocol::new_uuid_v7();
  auto base = protocol::now_us() + 3'600'000'000LL * 24 * 365 * 50; // far ahead of other tests' timers
  auto t = tenant_insert(tid, slug_for(tid));
  t.timers.push_back(timer_row{"trial:" + tid, "trial_expiry", tid, tid, base + 1000, 0, {}});
  REQUIRE(commit(t).status == store_status::ok);
  auto mine = [&](std::int64_t now, shard_scope scope = {}) {
    std::vector<timer_row> out;
    for (auto& r : due(now, std::move(scope)).rows)
      if (r.tenant_id == tid)
        out.push_back(r);
    return out;
  };
  CHECK(mine(base).empty()); // not yet due
  auto found = mine(base + 1000);
  REQUIRE(found.size() == 1);
  CHECK(found[0].id == "trial:" + tid);
  CHECK(found[0].kind == "trial_expiry");
  CHECK(found[0].attempts == 0);
  if (test::store_spec().starts_with("postgres")) { // per owned shard (SQLite is one node's: it fires all)
    auto shard = static_cast<std::int32_t>(runtime::cluster::shard_of(tid));
    CHECK(mine(base + 1000, {false, {shard}, false}).size() == 1);
    CHECK(mine(base + 1000, {false, {(shard + 1) % 4096, (shard + 2) % 4096}, false}).empty());
    CHECK(mine(base + 1000, {false, {}, true}).empty()); // it has a shard: not for the holder of the unsharded ones
  }

  // A refused change sets no timer.
  auto dup = tenant_insert(protocol::new_uuid_v7(), slug_for(tid));
  dup.timers.push_back(timer_row{"trial:dup-" + tid, "trial_expiry", tid, tid, base, 0, {}});
  REQUIRE(commit(dup).status == store_status::duplicate);
  CHECK(mine(base + 1000).size() == 1);

  // Setting it again moves it (same id); "done" for the old due time leaves the moved one alone.
  change up = tenant_insert(tid, slug_for(tid));
  up.what = change_kind::update;
  up.expected_version = 1;
  up.row.version = 2;
  up.timers.push_back(timer_row{"trial:" + tid, "trial_expiry", tid, tid, base + 5000, 0, {}});
  REQUIRE(commit(up).status == store_status::ok);
  CHECK(mine(base + 1000).empty());
  REQUIRE(ask(timer_done_atom::value, "trial:" + tid, base + 1000).status == store_status::ok);
  REQUIRE(mine(base + 5000).size() == 1);

  REQUIRE(ask(timer_retry_atom::value, "trial:" + tid, base + 9000, std::int32_t{3}).status == store_status::ok);
  CHECK(mine(base + 5000).empty());
  auto retried = mine(base + 9000);
  REQUIRE(retried.size() == 1);
  CHECK(retried[0].attempts == 3);
  REQUIRE(ask(timer_done_atom::value, "trial:" + tid, base + 9000).status == store_status::ok);
  CHECK(mine(base + 100000).empty());
}

TEST_CASE_METHOD(fixture, "store: API keys are created, listed per tenant, found by id, revoked once", "[store]") {
  auto ask = [&](api_key_op op) {
    api_key_result out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), api_key_atom::value, std::move(op))
      .receive([&](api_key_result& r) { out = r; }, [](caf::error&) {});
    return out;
  };
  auto tenant = protocol::new_uuid_v7();
  // Platform keys counted at two instants, before this test adds one valid
  // at the first and expired at the second: the database may hold keys of
  // earlier runs (on PostgreSQL it is reused), so both are baselines.
  auto platform_at = [&](std::int64_t now_us) {
    api_key_op op;
    op.what = api_key_op::kind::count_platform;
    op.now_us = now_us;
    return ask(op).count;
  };
  auto platform_before_3500 = platform_at(3'500), platform_before_4000 = platform_at(4'000);
  auto make = [&](std::string tid, std::string id, std::int64_t created, std::int64_t expires) {
    api_key_op op;
    op.what = api_key_op::kind::create;
    auto hash = "h-" + id;
    op.key = api_key_row{std::move(id),
                         std::move(tid),
                         "name 'quoted' \\ ü",
                         {"admin", "viewer"},
                         std::move(hash),
                         "api_key:creator",
                         created,
                         expires,
                         0};
    return ask(op);
  };
  auto key_id = [] { // 32 hex digits, unique per run (a UUIDv7 without its dashes)
    auto u = protocol::new_uuid_v7();
    u.erase(std::remove(u.begin(), u.end(), '-'), u.end());
    return u;
  };
  auto id1 = key_id(), id2 = key_id(), id3 = key_id();
  REQUIRE(make(tenant, id1, 1'000, 0).status == store_status::ok);
  REQUIRE(make(tenant, id2, 2'000, 9'000).status == store_status::ok);
  REQUIRE(make("", id3, 3'000, 4'000).status == store_status::ok); // a platform key, expiring at 4000

  api_key_op list;
  list.what = api_key_op::kind::list;
  list.tenant_id = tenant;
  auto page = ask(list);
  REQUIRE(page.status == store_status::ok);
  REQUIRE(page.keys.size() == 2);
  CHECK(page.keys[0].id == id2); // newest first
  CHECK(page.keys[1].name == "name 'quoted' \\ ü");
  CHECK(page.keys[1].roles == std::vector<std::string>{"admin", "viewer"});
  CHECK(page.keys[1].hash == "h-" + id1);
  CHECK(page.keys[0].expires_us == 9'000);

  api_key_op get;
  get.what = api_key_op::kind::get;
  get.id = id3;
  auto found = ask(get);
  REQUIRE(found.keys.size() == 1);
  CHECK(found.keys[0].tenant_id.empty());
  get.id = "ffffffffffffffffffffffffffffffff";
  CHECK(ask(get).keys.empty());

  CHECK(platform_at(3'500) == platform_before_3500 + 1);
  CHECK(platform_at(4'000) == platform_before_4000); // expired keys do not count

  api_key_op revoke;
  revoke.what = api_key_op::kind::revoke;
  revoke.tenant_id = "another-tenant";
  revoke.id = id1;
  revoke.now_us = 7'000;
  CHECK(ask(revoke).status == store_status::not_found); // not across tenants
  revoke.tenant_id = tenant;
  CHECK(ask(revoke).status == store_status::ok);
  CHECK(ask(revoke).status == store_status::not_found); // once
  get.id = id1;
  CHECK(ask(get).keys.at(0).revoked_us == 7'000);
}

TEST_CASE_METHOD(fixture, "store: metered API calls add up per tenant and month, in one batch", "[store]") {
  auto ask = [&](api_usage_op op) {
    api_usage_result out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), usage_atom::value, std::move(op))
      .receive([&](api_usage_result& r) { out = r; }, [](caf::error&) {});
    return out;
  };
  auto a = protocol::new_uuid_v7(), b = protocol::new_uuid_v7();
  api_usage_op add;
  add.add = true;
  add.rows = {{a, "2026-11", 3}, {b, "2026-11", 7}, {a, "2026-12", 1}};
  auto r = ask(add);
  REQUIRE(r.status == store_status::ok);
  REQUIRE(r.rows.size() == 3);
  CHECK(r.rows[0].calls == 3);
  CHECK(r.rows[1].calls == 7);
  CHECK(r.rows[2].calls == 1);
  add.rows = {{a, "2026-11", 4}};
  CHECK(ask(add).rows.at(0).calls == 7);
  api_usage_op read;
  read.rows = {{a, "2026-11", 0}, {b, "2026-12", 0}, {b, "2026-11", 0}};
  auto got = ask(read);
  REQUIRE(got.rows.size() == 3);
  CHECK(got.rows[0].calls == 7);
  CHECK(got.rows[1].calls == 0); // nothing metered that month
  CHECK(got.rows[2].calls == 7);
}

TEST_CASE_METHOD(fixture,
                 "store: audit records commit with their change or not at all; pages newest first with filters",
                 "[store]") {
  auto ask = [&](audit_op op) {
    audit_page out;
    out.status = store_status::error;
    (*self)
      ->request(store, std::chrono::seconds(10), audit_atom::value, std::move(op))
      .receive([&](audit_page& p) { out = p; }, [](caf::error&) {});
    return out;
  };
  auto record = [](std::string tenant, std::string actor, std::string action, std::int64_t at) {
    audit_record a;
    a.id = protocol::new_uuid_v7();
    a.tenant_id = std::move(tenant);
    a.at_us = at;
    a.actor = std::move(actor);
    a.action = std::move(action);
    a.target = "user:x";
    a.request_id = "req-1";
    a.client = "127.0.0.1";
    a.outcome = "success";
    a.detail = "it's \"quoted\" \\ ü";
    return a;
  };
  auto tid = protocol::new_uuid_v7();
  auto ins = tenant_insert(tid, slug_for(tid));
  ins.audit.push_back(record(tid, "api_key:a", "tenant.created", 1'000));
  REQUIRE(commit(ins).status == store_status::ok);
  // A batch of plain user creations (PostgreSQL's multi-row path) carries its records too.
  std::vector<change> users;
  for (int i = 0; i < 5; ++i) {
    users.push_back(user_insert(tid, protocol::new_uuid_v7(), "a" + std::to_string(i) + "@example.com", "A", i));
    users.back().audit.push_back(record(tid, "api_key:b", "user.created", 2'000 + i));
  }
  for (const auto& ch : users)
    (*self)->send(store, commit_atom::value, ch);
  for (std::size_t i = 0; i < users.size(); ++i)
    (*self)->receive([&](commit_outcome& o) { CHECK(o.status == store_status::ok); });
  // A change that fails writes no record.
  auto dup = user_insert(tid, protocol::new_uuid_v7(), "a0@example.com", "dup", 9);
  dup.audit.push_back(record(tid, "api_key:c", "user.created", 3'000));
  CHECK(commit(dup).status == store_status::duplicate);
  // Records without a change (denials, failures) are appended on their own.
  audit_op append;
  append.append = true;
  append.records = {record(tid, "anonymous", "access.denied", 4'000), record("", "anonymous", "auth.failed", 4'001)};
  REQUIRE(ask(append).status == store_status::ok);

  audit_op q;
  q.tenant_id = tid;
  auto all = ask(q);
  REQUIRE(all.status == store_status::ok);
  REQUIRE(all.rows.size() == 7);
  CHECK(all.rows.front().action == "access.denied"); // newest (last committed) first
  CHECK(all.rows.back().action == "tenant.created");
  CHECK(all.rows.back().detail == "it's \"quoted\" \\ ü");
  for (const auto& r : all.rows)
    CHECK(r.actor != "api_key:c");
  q.actor = "api_key:b";
  CHECK(ask(q).rows.size() == 5);
  q.actor.clear();
  q.action = "tenant.created";
  CHECK(ask(q).rows.size() == 1);
  q.action.clear();
  q.from_us = 2'001;
  q.to_us = 2'004; // [from, to)
  CHECK(ask(q).rows.size() == 3);
  q.from_us = q.to_us = 0;
  q.limit = 3;
  auto first = ask(q);
  REQUIRE(first.rows.size() == 3);
  q.before = first.rows.back().position;
  auto second = ask(q);
  REQUIRE(second.rows.size() == 3);
  CHECK(second.rows.front().position < first.rows.back().position);
  audit_op platform;
  platform.tenant_id = "";
  auto p = ask(platform);
  REQUIRE_FALSE(p.rows.empty());
  for (const auto& r : p.rows)
    CHECK(r.tenant_id.empty());
}
