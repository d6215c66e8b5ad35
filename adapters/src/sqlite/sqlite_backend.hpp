// SQLite store backend: WAL journal, synchronous=FULL (an acknowledged commit
// survives power loss), one connection per worker, statements prepared once.
//
// The class is declared here; pg_backend.cpp / sqlite_backend.cpp hold the
// connection, entity, outbox and timer repositories, *_repositories.cpp the
// integration ones (usage, API keys, webhooks, idempotency, personal data,
// audit).
#pragma once

#include <map>
#include <sqlite3.h>
#include <sys/stat.h>

#include "backend.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters::store::lite {

using namespace actors;

class stmt {
public:
  stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;
  ~stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  /// Returns true while there is a row.
  bool step();
  [[nodiscard]] std::string text(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string{};
  }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] int changes() const { return sqlite3_changes(db_); }

private:
  sqlite3* db_;
  sqlite3_stmt* s_;
};

/// A SQLite error; `code` is the extended result code.
struct sqlite_error : std::runtime_error {
  sqlite_error(int c, const std::string& msg) : std::runtime_error(msg), code(c) {}
  int code;
};

inline bool stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  int ext = sqlite3_extended_errcode(db_);
  throw sqlite_error(ext, sqlite3_errmsg(db_));
}

class sqlite_backend final : public backend {
public:
  explicit sqlite_backend(std::string path) : path_(std::move(path)) {}
  ~sqlite_backend() override { close(); }

  void open() override;

  void migrate() override;

  void ping() override;

  loaded load(const entity_key& key) override;

  std::vector<commit_outcome> commit(const std::vector<change>& batch) override;

  row_page list(const list_query& q) override;

  api_usage_result api_usage(const api_usage_op& op) override;

  api_key_result api_keys(const api_key_op& op) override;

  webhook_result webhooks(const webhook_op& op) override;

  /// An Idempotency-Key's answer, in the current transaction.
  void store_answer(const idempotency_op& op) {
    prepare("UPDATE idempotency_keys SET state = 'done', status = ?2, headers = ?3, body = ?4 WHERE scope = ?1")
      .bind(1, op.scope)
      .bind(2, static_cast<std::int64_t>(op.status))
      .bind(3, op.headers)
      .bind(4, op.body)
      .step();
  }

  actors::idempotency_result idempotency(const idempotency_op& op) override;

  bool processed(const std::string& message_key) override;

  std::string resolve_external(const std::string& system, const std::string& id) override;

  std::string resolve_slug(const std::string& slug) override;

  event_page events(const event_query& q) override;

  void mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) override;

  outbox_backlog backlog() override;

  timer_page due_timers(std::int64_t now_us, std::int32_t limit, const actors::shard_scope& scope) override;

  void timer_done(const std::string& id, std::int64_t due_us) override;

  void timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) override;

private:
  commit_outcome apply(const change& ch) {
    commit_outcome o;
    const auto& r = ch.row;
    if (ch.kind == entity_kind::tenant) {
      if (ch.what == change_kind::insert) {
        prepare("INSERT INTO tenants (id, slug, name, plan, status, created_us, updated_us, version, state) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
          .bind(1, r.id)
          .bind(2, r.unique_key)
          .bind(3, r.name)
          .bind(4, r.plan)
          .bind(5, r.status)
          .bind(6, r.created_us)
          .bind(7, r.updated_us)
          .bind(8, static_cast<std::int64_t>(r.version))
          .bind_blob(9, r.state)
          .step();
      } else {
        auto u = prepare("UPDATE tenants SET slug = ?1, name = ?2, plan = ?3, status = ?4, updated_us = ?5, "
                         "version = ?6, state = ?7 WHERE id = ?8 AND version = ?9");
        u.bind(1, r.unique_key)
          .bind(2, r.name)
          .bind(3, r.plan)
          .bind(4, r.status)
          .bind(5, r.updated_us)
          .bind(6, static_cast<std::int64_t>(r.version))
          .bind_blob(7, r.state)
          .bind(8, r.id)
          .bind(9, static_cast<std::int64_t>(ch.expected_version));
        (void)u.step();
        if (u.changes() == 0)
          return missing(ch);
      }
    } else {
      if (ch.what == change_kind::insert) {
        prepare("INSERT INTO users (tenant_id, id, email_lc, name, status, roles, created_us, updated_us, version, "
                "state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
          .bind(1, r.tenant_id)
          .bind(2, r.id)
          .bind(3, r.unique_key)
          .bind(4, r.name)
          .bind(5, r.status)
          .bind(6, r.roles)
          .bind(7, r.created_us)
          .bind(8, r.updated_us)
          .bind(9, static_cast<std::int64_t>(r.version))
          .bind_blob(10, r.state)
          .step();
      } else if (ch.what == change_kind::update) {
        auto u = prepare("UPDATE users SET email_lc = ?1, name = ?2, status = ?3, roles = ?4, updated_us = ?5, "
                         "version = ?6, state = ?7 WHERE tenant_id = ?8 AND id = ?9 AND version = ?10");
        u.bind(1, r.unique_key)
          .bind(2, r.name)
          .bind(3, r.status)
          .bind(4, r.roles)
          .bind(5, r.updated_us)
          .bind(6, static_cast<std::int64_t>(r.version))
          .bind_blob(7, r.state)
          .bind(8, r.tenant_id)
          .bind(9, r.id)
          .bind(10, static_cast<std::int64_t>(ch.expected_version));
        (void)u.step();
        if (u.changes() == 0)
          return missing(ch);
      } else {
        auto d = prepare("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2 AND version = ?3");
        d.bind(1, r.tenant_id).bind(2, r.id).bind(3, static_cast<std::int64_t>(ch.expected_version));
        (void)d.step();
        if (d.changes() == 0)
          return missing(ch);
      }
      if (ch.user_count_delta != 0) {
        auto c = prepare("UPDATE tenants SET user_count = user_count + ?1 WHERE id = ?2");
        c.bind(1, static_cast<std::int64_t>(ch.user_count_delta)).bind(2, r.tenant_id);
        (void)c.step();
        if (c.changes() == 0) {
          o.status = store_status::not_found;
          return o;
        }
      }
    }
    auto now = protocol::now_us();
    write_cursor_changes(ch.plugin_cursors, now); // before the events: a cursor opens at the outbox's end
    for (const auto& ev : ch.events)
      write_event(ev, r.tenant_id, to_string(ch.kind), r.id,
                  static_cast<std::int64_t>(ch.what == change_kind::remove ? ch.expected_version + 1 : r.version), now);
    for (const auto& [system, id] : ch.external_ids)
      prepare("INSERT INTO external_ids (system, external_id, tenant_id) VALUES (?1, ?2, ?3) "
              "ON CONFLICT (system, external_id) DO UPDATE SET tenant_id = excluded.tenant_id")
        .bind(1, system)
        .bind(2, id)
        .bind(3, r.tenant_id)
        .step();
    for (const auto& t : ch.timers)
      prepare("INSERT INTO timers (id, kind, tenant_id, target_id, due_us, attempts, payload) "
              "VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, "
              "tenant_id = excluded.tenant_id, target_id = excluded.target_id, due_us = excluded.due_us, "
              "attempts = 0, payload = excluded.payload")
        .bind(1, t.id)
        .bind(2, t.kind)
        .bind(3, t.tenant_id)
        .bind(4, t.target_id)
        .bind(5, t.due_us)
        .bind(6, t.payload)
        .step();
    write_audit(ch.audit);
    return o;
  }

  void write_cursor_changes(const std::vector<actors::plugin_cursor_change>& changes, std::int64_t now) {
    using k = actors::plugin_cursor_change::kind;
    for (const auto& c : changes) {
      if (c.what == k::open)
        prepare("INSERT INTO plugin_cursors (tenant_id, plugin, position, updated_us) "
                "VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) FROM outbox), ?3) "
                "ON CONFLICT (tenant_id, plugin) DO UPDATE SET paused = 0, updated_us = excluded.updated_us")
          .bind(1, c.tenant_id)
          .bind(2, c.plugin)
          .bind(3, now)
          .step();
      else if (c.what == k::pause)
        prepare("UPDATE plugin_cursors SET paused = 1, updated_us = ?3 WHERE tenant_id = ?1 AND plugin = ?2")
          .bind(1, c.tenant_id)
          .bind(2, c.plugin)
          .bind(3, now)
          .step();
      else
        prepare("DELETE FROM plugin_cursors WHERE tenant_id = ?1 AND plugin = ?2")
          .bind(1, c.tenant_id)
          .bind(2, c.plugin)
          .step();
    }
  }

  /// A row of "SELECT position, id, tenant_id, at_us, actor, action, target,
  /// request_id, client, outcome, status, detail FROM audit_log".
  static audit_record audit_of(const stmt& q) {
    return audit_record{q.integer(0),
                        q.text(1),
                        q.text(2),
                        q.integer(3),
                        q.text(4),
                        q.text(5),
                        q.text(6),
                        q.text(7),
                        q.text(8),
                        q.text(9),
                        static_cast<std::int32_t>(q.integer(10)),
                        q.text(11)};
  }

  /// Audit records in the current transaction.
  void write_audit(const std::vector<audit_record>& records) {
    for (const auto& a : records)
      prepare("INSERT INTO audit_log (id, tenant_id, at_us, actor, action, target, request_id, client, outcome, "
              "status, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        .bind(1, a.id)
        .bind(2, a.tenant_id)
        .bind(3, a.at_us)
        .bind(4, a.actor)
        .bind(5, a.action)
        .bind(6, a.target)
        .bind(7, a.request_id)
        .bind(8, a.client)
        .bind(9, a.outcome)
        .bind(10, static_cast<std::int64_t>(a.status))
        .bind(11, a.detail)
        .step();
  }

  actors::user_data user_data(const user_data_op& op) override;

  audit_page audit(const audit_op& op) override;

  actors::plugin_result plugins(const actors::plugin_op& op) override;

  /// The row to update is absent or at another version: tell which.
  commit_outcome missing(const change& ch) {
    commit_outcome o;
    auto q = ch.kind == entity_kind::tenant ? prepare("SELECT 1 FROM tenants WHERE id = ?1")
                                            : prepare("SELECT 1 FROM users WHERE id = ?1 AND tenant_id = ?2");
    q.bind(1, ch.row.id);
    if (ch.kind == entity_kind::user)
      q.bind(2, ch.row.tenant_id);
    o.status = q.step() ? store_status::stale : store_status::not_found;
    return o;
  }

  /// Runs `f` in one write transaction: committed if it returns, rolled back if it throws.
  template <class F>
  void write_transaction(F f) {
    exec("BEGIN IMMEDIATE");
    try {
      f();
      exec("COMMIT");
    } catch (...) {
      exec_noexcept("ROLLBACK");
      throw;
    }
  }

  /// One outbox row: `ev` about (kind, aggregate_id) of `tenant_id` at `version`.
  void write_event(const outbox_event& ev, const std::string& tenant_id, const std::string& kind,
                   const std::string& aggregate_id, std::int64_t version, std::int64_t now) {
    prepare("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, aggregate_version, "
            "created_us, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
      .bind(1, ev.id)
      .bind(2, ev.type)
      .bind(3, tenant_id)
      .bind(4, kind)
      .bind(5, aggregate_id)
      .bind(6, version)
      .bind(7, now)
      .bind_blob(8, ev.payload)
      .step();
  }

  stmt prepare(const std::string& sql) {
    if (db_ == nullptr)
      throw unavailable_error("not open");
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK)
        throw sqlite_error(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
      it = cache_.emplace(sql, s).first;
    }
    return stmt{db_, it->second};
  }

  void exec(const char* sql) {
    if (db_ == nullptr)
      throw unavailable_error("not open");
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw sqlite_error(sqlite3_extended_errcode(db_), msg);
    }
  }

  void exec_noexcept(const char* sql) noexcept {
    if (db_ != nullptr)
      sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  }

  void close() {
    for (auto& [_, s] : cache_)
      sqlite3_finalize(s);
    cache_.clear();
    if (db_ != nullptr)
      sqlite3_close_v2(db_);
    db_ = nullptr;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*> cache_;
};

} // namespace colony::adapters::store::lite
