#include "sqlite_backend.hpp"

namespace colony::adapters::store::lite {

void sqlite_backend::open() {
  close();
  int rc =
    sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    close();
    throw unavailable_error("cannot open " + path_ + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
  // The files hold personal data and webhook secrets: readable by the
  // node's user only, also if they were made by an older version or
  // another umask (colonyd sets 077; the WAL files follow the database).
  for (const char* suffix : {"", "-wal", "-shm"})
    ::chmod((path_ + suffix).c_str(), 0600);
}

void sqlite_backend::migrate() {
  write_transaction([&] {
    exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
         "applied_us INTEGER NOT NULL)");
    for (const auto& m : sqlite_migrations()) {
      auto q = prepare("SELECT 1 FROM schema_migrations WHERE version = ?1");
      q.bind(1, static_cast<std::int64_t>(m.version));
      if (q.step())
        continue;
      exec(m.sql);
      prepare("INSERT INTO schema_migrations (version, name, applied_us) VALUES (?1, ?2, ?3)")
        .bind(1, static_cast<std::int64_t>(m.version))
        .bind(2, std::string{m.name})
        .bind(3, protocol::now_us())
        .step();
    }
  });
}

void sqlite_backend::ping() {
  if (db_ == nullptr)
    throw unavailable_error("not open");
  auto q = prepare("SELECT 1");
  (void)q.step();
}

loaded sqlite_backend::load(const entity_key& key) {
  loaded out;
  if (key.kind == entity_kind::tenant) {
    auto q = prepare("SELECT state, version, user_count FROM tenants WHERE id = ?1");
    q.bind(1, key.id);
    if (!q.step()) {
      out.status = store_status::not_found;
      return out;
    }
    out.state = q.text(0);
    out.version = static_cast<std::uint32_t>(q.integer(1));
    out.user_count = static_cast<std::int32_t>(q.integer(2));
  } else {
    auto q = prepare("SELECT state, version FROM users WHERE tenant_id = ?1 AND id = ?2");
    q.bind(1, key.tenant_id).bind(2, key.id);
    if (!q.step()) {
      out.status = store_status::not_found;
      return out;
    }
    out.state = q.text(0);
    out.version = static_cast<std::uint32_t>(q.integer(1));
  }
  return out;
}

std::vector<commit_outcome> sqlite_backend::commit(const std::vector<change>& batch) {
  std::vector<commit_outcome> out;
  out.reserve(batch.size());
  write_transaction([&] {
    for (const auto& ch : batch) {
      exec("SAVEPOINT c");
      commit_outcome o;
      try {
        if (!ch.message_key.empty()) // first: a redelivery is a duplicate, whatever else it would hit
          prepare("INSERT INTO processed_messages (message_key, applied_us) VALUES (?1, ?2)")
            .bind(1, ch.message_key)
            .bind(2, protocol::now_us())
            .step();
        o = apply(ch);
        if (o.status == store_status::ok && !ch.idempotency_scope.empty())
          prepare("UPDATE idempotency_keys SET state = 'committed', ref_kind = ?2, ref_tenant = ?3, ref_id = ?4 "
                  "WHERE scope = ?1 AND state = 'running'")
            .bind(1, ch.idempotency_scope)
            .bind(2, static_cast<std::int64_t>(ch.kind))
            .bind(3, ch.row.tenant_id)
            .bind(4, ch.row.id)
            .step();
      } catch (const sqlite_error& e) {
        if (e.code == SQLITE_CONSTRAINT_UNIQUE || e.code == SQLITE_CONSTRAINT_PRIMARYKEY) {
          o.status = store_status::duplicate;
          o.field = store::duplicate_field(e.what());
        } else if (e.code == SQLITE_CONSTRAINT_FOREIGNKEY) {
          o.status = store_status::not_found;
        } else {
          throw;
        }
      }
      if (o.status == store_status::ok)
        exec("RELEASE c");
      else
        exec("ROLLBACK TO c; RELEASE c");
      out.push_back(std::move(o));
    }
  });
  return out;
}

row_page sqlite_backend::list(const list_query& q) {
  auto built = build_list_sql(q, [](int n) { return "?" + std::to_string(n); });
  row_page page;
  auto s = prepare(built.sql);
  for (std::size_t i = 0; i < built.text_params.size(); ++i) {
    if (built.is_number[i])
      s.bind(static_cast<int>(i + 1), static_cast<std::int64_t>(std::stoll(built.text_params[i])));
    else
      s.bind(static_cast<int>(i + 1), built.text_params[i]);
  }
  bool numeric = q.sort_field == "createdAt";
  while (s.step()) {
    list_row r;
    r.state = s.text(0);
    r.user_count = static_cast<std::int32_t>(s.integer(1));
    if (numeric)
      r.sort_number = s.integer(2);
    else
      r.sort_text = s.text(2);
    r.id = s.text(3);
    page.rows.push_back(std::move(r));
  }
  return page;
}

bool sqlite_backend::processed(const std::string& message_key) {
  auto q = prepare("SELECT 1 FROM processed_messages WHERE message_key = ?1");
  q.bind(1, message_key);
  return q.step();
}

std::string sqlite_backend::resolve_external(const std::string& system, const std::string& id) {
  auto q = prepare("SELECT tenant_id FROM external_ids WHERE system = ?1 AND external_id = ?2");
  q.bind(1, system).bind(2, id);
  return q.step() ? q.text(0) : std::string{};
}

std::string sqlite_backend::resolve_slug(const std::string& slug) {
  auto q = prepare("SELECT id FROM tenants WHERE slug = ?1");
  q.bind(1, slug);
  return q.step() ? q.text(0) : std::string{};
}

event_page sqlite_backend::events(const event_query& q) {
  if (q.latest && !q.unpublished_only) {
    auto st = q.tenant_id.empty()
      ? prepare("SELECT seq, payload FROM (SELECT seq, payload FROM outbox ORDER BY seq DESC LIMIT ?1) ORDER BY seq")
      : prepare("SELECT seq, payload FROM (SELECT seq, payload FROM outbox WHERE tenant_id = ?2 ORDER BY seq DESC "
                "LIMIT ?1) ORDER BY seq");
    st.bind(1, static_cast<std::int64_t>(q.limit));
    if (!q.tenant_id.empty())
      st.bind(2, q.tenant_id);
    event_page page;
    while (st.step())
      page.rows.push_back(event_row{st.integer(0), st.text(1)});
    return page;
  }
  stmt st = q.unpublished_only
    ? prepare("SELECT seq, payload FROM outbox WHERE published_us IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2")
    : q.tenant_id.empty()
    ? prepare("SELECT seq, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")
    : prepare("SELECT seq, payload FROM outbox WHERE tenant_id = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2");
  st.bind(1, q.after).bind(2, static_cast<std::int64_t>(q.limit));
  if (!q.unpublished_only && !q.tenant_id.empty())
    st.bind(3, q.tenant_id);
  event_page page;
  while (st.step())
    page.rows.push_back(event_row{st.integer(0), st.text(1)});
  return page;
}

void sqlite_backend::mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) {
  write_transaction([&] {
    for (auto pos : positions)
      prepare("UPDATE outbox SET published_us = ?1 WHERE seq = ?2").bind(1, at_us).bind(2, pos).step();
  });
}

outbox_backlog sqlite_backend::backlog() {
  auto st = prepare("SELECT count(*), coalesce(min(created_us), 0) FROM outbox WHERE published_us IS NULL");
  outbox_backlog b;
  if (st.step()) {
    b.count = st.integer(0);
    b.oldest_us = st.integer(1);
  }
  return b;
}

// SQLite is one node's store (clustering refuses it): every timer is its own.
timer_page sqlite_backend::due_timers(std::int64_t now_us, std::int32_t limit, const actors::shard_scope&) {
  auto st = prepare("SELECT id, kind, tenant_id, target_id, due_us, attempts, payload FROM timers "
                    "WHERE due_us <= ?1 ORDER BY due_us LIMIT ?2");
  st.bind(1, now_us).bind(2, static_cast<std::int64_t>(limit));
  timer_page page;
  while (st.step())
    page.rows.push_back(timer_row{st.text(0), st.text(1), st.text(2), st.text(3), st.integer(4),
                                  static_cast<std::int32_t>(st.integer(5)), st.text(6)});
  return page;
}

void sqlite_backend::timer_done(const std::string& id, std::int64_t due_us) {
  prepare("DELETE FROM timers WHERE id = ?1 AND due_us = ?2").bind(1, id).bind(2, due_us).step();
}

void sqlite_backend::timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) {
  prepare("UPDATE timers SET due_us = ?1, attempts = ?2 WHERE id = ?3")
    .bind(1, due_us)
    .bind(2, static_cast<std::int64_t>(attempts))
    .bind(3, id)
    .step();
}

} // namespace colony::adapters::store::lite

namespace colony::adapters::store {

std::unique_ptr<backend> make_sqlite_backend(const std::string& path) {
  return std::make_unique<lite::sqlite_backend>(path);
}

} // namespace colony::adapters::store
