// SQLite store backend: WAL journal, synchronous=FULL (an acknowledged commit
// survives power loss), one connection per worker, statements prepared once.
#include <map>
#include <sqlite3.h>
#include <sys/stat.h>

#include "../store/backend.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters::store {
namespace {

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

bool stmt::step() {
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

  void open() override {
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

  void migrate() override {
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

  void ping() override {
    if (db_ == nullptr)
      throw unavailable_error("not open");
    auto q = prepare("SELECT 1");
    (void)q.step();
  }

  loaded load(const entity_key& key) override {
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

  std::vector<commit_outcome> commit(const std::vector<change>& batch) override {
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
            std::string msg = e.what();
            o.field = msg.find("processed_messages") != std::string::npos ? "message_key"
              : msg.find("slug") != std::string::npos                     ? "slug"
              : msg.find("email_lc") != std::string::npos                 ? "email"
                                                                          : "id";
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

  row_page list(const list_query& q) override {
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

  api_usage_result api_usage(const api_usage_op& op) override {
    api_usage_result out;
    auto read_all = [&] {
      for (const auto& r : op.rows) {
        auto q = prepare("SELECT calls FROM api_usage WHERE tenant_id = ?1 AND month = ?2");
        q.bind(1, r.tenant_id).bind(2, r.month);
        out.rows.push_back(api_usage_row{r.tenant_id, r.month, q.step() ? q.integer(0) : 0});
      }
    };
    if (op.add)
      write_transaction([&] {
        for (const auto& r : op.rows)
          prepare("INSERT INTO api_usage (tenant_id, month, calls) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (tenant_id, month) DO UPDATE SET calls = calls + excluded.calls")
            .bind(1, r.tenant_id)
            .bind(2, r.month)
            .bind(3, r.calls)
            .step();
        read_all();
      });
    else
      read_all();
    return out;
  }

  api_key_result api_keys(const api_key_op& op) override {
    using k = api_key_op::kind;
    api_key_result out;
    static const std::string cols =
      "id, tenant_id, name, roles, hash, created_by, created_us, expires_us, revoked_us FROM api_keys";
    auto read = [&](stmt& q) {
      while (q.step())
        out.keys.push_back(api_key_row{q.text(0), q.text(1), q.text(2), decode_list(q.text(3)), q.text(4), q.text(5),
                                       q.integer(6), q.integer(7), q.integer(8)});
    };
    switch (op.what) {
      case k::create: {
        const auto& r = op.key;
        write_transaction([&] {
          prepare("INSERT INTO api_keys (id, tenant_id, name, roles, hash, created_by, created_us, expires_us) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .bind(1, r.id)
            .bind(2, r.tenant_id)
            .bind(3, r.name)
            .bind(4, encode_list(r.roles))
            .bind(5, r.hash)
            .bind(6, r.created_by)
            .bind(7, r.created_us)
            .bind(8, r.expires_us)
            .step();
          write_audit(op.audit);
          if (op.answer)
            store_answer(*op.answer);
        });
        out.keys.push_back(r);
        break;
      }
      case k::list: {
        auto q = prepare("SELECT " + cols + " WHERE tenant_id = ?1 ORDER BY created_us DESC, id DESC");
        q.bind(1, op.tenant_id);
        read(q);
        break;
      }
      case k::get: {
        auto q = prepare("SELECT " + cols + " WHERE id = ?1");
        q.bind(1, op.id);
        read(q);
        break;
      }
      case k::revoke: {
        write_transaction([&] {
          auto q = prepare("UPDATE api_keys SET revoked_us = ?1 WHERE tenant_id = ?2 AND id = ?3 AND revoked_us = 0");
          q.bind(1, op.now_us).bind(2, op.tenant_id).bind(3, op.id).step();
          if (q.changes() == 0)
            out.status = store_status::not_found;
          else
            write_audit(op.audit);
        });
        break;
      }
      case k::count_platform: {
        auto q = prepare("SELECT count(*) FROM api_keys WHERE tenant_id = '' AND revoked_us = 0 "
                         "AND (expires_us = 0 OR expires_us > ?1)");
        q.bind(1, op.now_us);
        out.count = q.step() ? q.integer(0) : 0;
        break;
      }
    }
    return out;
  }

  webhook_result webhooks(const webhook_op& op) override {
    using k = webhook_op::kind;
    webhook_result out;
    auto endpoint_of = [&](stmt& q) {
      return webhook_endpoint{q.text(0), q.text(1), q.text(2),   decode_list(q.text(3)),
                              q.text(4), q.text(5), q.integer(6)};
    };
    auto delivery_of = [](stmt& q) {
      webhook_delivery d;
      d.id = q.text(0);
      d.endpoint_id = q.text(1);
      d.tenant_id = q.text(2);
      d.event_id = q.text(3);
      d.event_type = q.text(4);
      d.body = q.text(5);
      d.status = q.text(6);
      d.attempts = static_cast<std::int32_t>(q.integer(7));
      d.next_attempt_us = q.integer(8);
      d.last_status = static_cast<std::int32_t>(q.integer(9));
      d.last_error = q.text(10);
      d.created_us = q.integer(11);
      d.updated_us = q.integer(12);
      return d;
    };
    static const std::string cols = "d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.body, d.status, "
                                    "d.attempts, d.next_attempt_us, d.last_status, d.last_error, d.created_us, "
                                    "d.updated_us";
    switch (op.what) {
      case k::create_endpoint: {
        const auto& e = op.endpoint;
        write_transaction([&] {
          prepare("INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, description, created_us) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .bind(1, e.id)
            .bind(2, e.tenant_id)
            .bind(3, e.url)
            .bind(4, encode_list(e.event_types))
            .bind(5, e.secret)
            .bind(6, e.description)
            .bind(7, e.created_us)
            .step();
          write_audit(op.audit);
          if (op.answer)
            store_answer(*op.answer);
        });
        out.endpoints.push_back(e);
        break;
      }
      case k::list_endpoints:
      case k::get_endpoint: {
        auto q = op.what == k::list_endpoints
          ? prepare("SELECT id, tenant_id, url, event_types, secret, description, created_us "
                    "FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY created_us, id")
          : prepare("SELECT id, tenant_id, url, event_types, secret, description, created_us "
                    "FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2");
        q.bind(1, op.tenant_id);
        if (op.what == k::get_endpoint)
          q.bind(2, op.endpoint_id);
        while (q.step())
          out.endpoints.push_back(endpoint_of(q));
        break;
      }
      case k::delete_endpoint: {
        write_transaction([&] {
          auto d = prepare("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2");
          d.bind(1, op.tenant_id).bind(2, op.endpoint_id).step();
          if (d.changes() == 0)
            out.status = store_status::not_found;
          else {
            prepare("UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint deleted', updated_us = ?1 "
                    "WHERE endpoint_id = ?2 AND status = 'pending'")
              .bind(1, op.now_us)
              .bind(2, op.endpoint_id)
              .step();
            write_audit(op.audit);
          }
        });
        break;
      }
      case k::read_cursor: {
        auto q = prepare("SELECT position FROM outbox_cursors WHERE name = ?1");
        q.bind(1, op.cursor);
        out.position = q.step() ? q.integer(0) : 0;
        break;
      }
      case k::enqueue: {
        write_transaction([&] {
          for (const auto& d : op.deliveries)
            prepare("INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_id, event_type, body, status, "
                    "attempts, next_attempt_us, created_us, updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, "
                    "?7, ?8, ?8) ON CONFLICT (endpoint_id, event_id) DO NOTHING")
              .bind(1, d.id)
              .bind(2, d.endpoint_id)
              .bind(3, d.tenant_id)
              .bind(4, d.event_id)
              .bind(5, d.event_type)
              .bind(6, d.body)
              .bind(7, d.next_attempt_us)
              .bind(8, d.created_us)
              .step();
          prepare("INSERT INTO outbox_cursors (name, position) VALUES (?1, ?2) "
                  "ON CONFLICT (name) DO UPDATE SET position = excluded.position")
            .bind(1, op.cursor)
            .bind(2, op.position)
            .step();
        });
        break;
      }
      case k::due: {
        auto q = prepare("SELECT " + cols +
                         ", e.url, e.secret FROM webhook_deliveries d JOIN webhook_endpoints e "
                         "ON e.id = d.endpoint_id WHERE d.status = 'pending' AND d.next_attempt_us <= ?1 "
                         "ORDER BY d.next_attempt_us LIMIT ?2");
        q.bind(1, op.now_us).bind(2, static_cast<std::int64_t>(op.limit));
        while (q.step()) {
          auto d = delivery_of(q);
          d.url = q.text(13);
          d.secret = q.text(14);
          out.deliveries.push_back(std::move(d));
        }
        break;
      }
      case k::record: {
        write_transaction([&] {
          for (const auto& d : op.deliveries)
            prepare("UPDATE webhook_deliveries SET status = ?1, attempts = ?2, next_attempt_us = ?3, last_status = ?4, "
                    "last_error = ?5, updated_us = ?6 WHERE id = ?7")
              .bind(1, d.status)
              .bind(2, static_cast<std::int64_t>(d.attempts))
              .bind(3, d.next_attempt_us)
              .bind(4, static_cast<std::int64_t>(d.last_status))
              .bind(5, d.last_error)
              .bind(6, d.updated_us)
              .bind(7, d.id)
              .step();
        });
        break;
      }
      case k::list_deliveries: {
        auto q = prepare("SELECT " + cols +
                         " FROM webhook_deliveries d WHERE d.tenant_id = ?1 AND d.endpoint_id = ?2 "
                         "AND d.id > ?3 ORDER BY d.id LIMIT ?4");
        q.bind(1, op.tenant_id).bind(2, op.endpoint_id).bind(3, op.after).bind(4, static_cast<std::int64_t>(op.limit));
        while (q.step())
          out.deliveries.push_back(delivery_of(q));
        break;
      }
    }
    return out;
  }

  /// An Idempotency-Key's answer, in the current transaction.
  void store_answer(const idempotency_op& op) {
    prepare("UPDATE idempotency_keys SET state = 'done', status = ?2, headers = ?3, body = ?4 WHERE scope = ?1")
      .bind(1, op.scope)
      .bind(2, static_cast<std::int64_t>(op.status))
      .bind(3, op.headers)
      .bind(4, op.body)
      .step();
  }

  actors::idempotency_result idempotency(const idempotency_op& op) override {
    actors::idempotency_result out;
    using k = idempotency_op::kind;
    write_transaction([&] {
      if (op.what == k::release) {
        prepare("DELETE FROM idempotency_keys WHERE scope = ?1 AND state <> 'done'").bind(1, op.scope).step();
        return;
      }
      if (op.what == k::finish) {
        store_answer(op);
        return;
      }
      prepare("DELETE FROM idempotency_keys WHERE expires_us <= ?1").bind(1, op.now_us).step();
      auto q = prepare("SELECT fingerprint, state, started_us, status, headers, body, ref_kind, ref_tenant, ref_id "
                       "FROM idempotency_keys WHERE scope = ?1");
      q.bind(1, op.scope);
      if (q.step()) {
        using o = actors::idempotency_result::outcome;
        auto state = q.text(1);
        if (q.text(0) != op.fingerprint) {
          out.what = o::mismatch;
        } else if (state == "done") {
          out.what = o::replay;
          out.answer_status = static_cast<std::int32_t>(q.integer(3));
          out.headers = q.text(4);
          out.body = q.text(5);
        } else if (state == "committed") {
          out.what = o::committed;
          out.ref_kind = static_cast<std::int32_t>(q.integer(6));
          out.ref_tenant = q.text(7);
          out.ref_id = q.text(8);
        } else if (q.integer(2) >= op.stale_before_us) {
          out.what = o::running;
        } else { // abandoned before its change committed (that would have marked it): run again
          prepare("UPDATE idempotency_keys SET started_us = ?2 WHERE scope = ?1")
            .bind(1, op.scope)
            .bind(2, op.now_us)
            .step();
        }
        return;
      }
      prepare("INSERT INTO idempotency_keys (scope, fingerprint, state, started_us, expires_us) VALUES "
              "(?1, ?2, 'running', ?3, ?4)")
        .bind(1, op.scope)
        .bind(2, op.fingerprint)
        .bind(3, op.now_us)
        .bind(4, op.expires_us)
        .step();
    });
    return out;
  }

  bool processed(const std::string& message_key) override {
    auto q = prepare("SELECT 1 FROM processed_messages WHERE message_key = ?1");
    q.bind(1, message_key);
    return q.step();
  }

  std::string resolve_external(const std::string& system, const std::string& id) override {
    auto q = prepare("SELECT tenant_id FROM external_ids WHERE system = ?1 AND external_id = ?2");
    q.bind(1, system).bind(2, id);
    return q.step() ? q.text(0) : std::string{};
  }

  std::string resolve_slug(const std::string& slug) override {
    auto q = prepare("SELECT id FROM tenants WHERE slug = ?1");
    q.bind(1, slug);
    return q.step() ? q.text(0) : std::string{};
  }

  event_page events(const event_query& q) override {
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

  void mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) override {
    write_transaction([&] {
      for (auto pos : positions)
        prepare("UPDATE outbox SET published_us = ?1 WHERE seq = ?2").bind(1, at_us).bind(2, pos).step();
    });
  }

  outbox_backlog backlog() override {
    auto st = prepare("SELECT count(*), coalesce(min(created_us), 0) FROM outbox WHERE published_us IS NULL");
    outbox_backlog b;
    if (st.step()) {
      b.count = st.integer(0);
      b.oldest_us = st.integer(1);
    }
    return b;
  }

  timer_page due_timers(std::int64_t now_us, std::int32_t limit) override {
    auto st = prepare("SELECT id, kind, tenant_id, target_id, due_us, attempts, payload FROM timers "
                      "WHERE due_us <= ?1 ORDER BY due_us LIMIT ?2");
    st.bind(1, now_us).bind(2, static_cast<std::int64_t>(limit));
    timer_page page;
    while (st.step())
      page.rows.push_back(timer_row{st.text(0), st.text(1), st.text(2), st.text(3), st.integer(4),
                                    static_cast<std::int32_t>(st.integer(5)), st.text(6)});
    return page;
  }

  void timer_done(const std::string& id, std::int64_t due_us) override {
    prepare("DELETE FROM timers WHERE id = ?1 AND due_us = ?2").bind(1, id).bind(2, due_us).step();
  }

  void timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) override {
    prepare("UPDATE timers SET due_us = ?1, attempts = ?2 WHERE id = ?3")
      .bind(1, due_us)
      .bind(2, static_cast<std::int64_t>(attempts))
      .bind(3, id)
      .step();
  }

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
    for (const auto& ev : ch.events) {
      prepare("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, aggregate_version, "
              "created_us, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .bind(1, ev.id)
        .bind(2, ev.type)
        .bind(3, r.tenant_id)
        .bind(4, std::string{to_string(ch.kind)})
        .bind(5, r.id)
        .bind(6, static_cast<std::int64_t>(ch.what == change_kind::remove ? ch.expected_version + 1 : r.version))
        .bind(7, now)
        .bind_blob(8, ev.payload)
        .step();
    }
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

  actors::user_data user_data(const user_data_op& op) override {
    actors::user_data out;
    const std::string about = "%/users/" + op.user_id + "%";
    if (!op.erase) {
      auto ev = prepare("SELECT payload FROM outbox WHERE tenant_id = ?1 AND aggregate_kind = 'user' AND "
                        "aggregate_id = ?2 ORDER BY seq");
      ev.bind(1, op.tenant_id).bind(2, op.user_id);
      while (ev.step())
        out.events.push_back(ev.text(0));
      auto au = prepare("SELECT position, id, tenant_id, at_us, actor, action, target, request_id, client, outcome, "
                        "status, detail FROM audit_log WHERE tenant_id = ?1 AND (target = ?2 OR target LIKE ?3) "
                        "ORDER BY position");
      au.bind(1, op.tenant_id).bind(2, "user:" + op.user_id).bind(3, about);
      while (au.step())
        out.audit.push_back(audit_of(au));
      return out;
    }
    write_transaction([&] {
      std::vector<std::pair<std::string, std::string>> events; // event id, payload
      bool erased_before = false;
      auto ev = prepare("SELECT event_id, payload, type FROM outbox WHERE tenant_id = ?1 AND aggregate_kind = 'user' "
                        "AND aggregate_id = ?2");
      ev.bind(1, op.tenant_id).bind(2, op.user_id);
      while (ev.step()) {
        if (ev.text(2) == "user.erased")
          erased_before = true;
        else
          events.emplace_back(ev.text(0), ev.text(1));
      }
      // Not a user of this tenant (another tenant's, or none), or erased
      // already: nothing is written, no tombstone, no audit record.
      if (events.empty() || erased_before) {
        out.status = store_status::not_found;
        return;
      }
      for (const auto& [id, payload] : events) {
        auto scrubbed = scrub_user_event(payload);
        if (scrubbed != payload) {
          prepare("UPDATE outbox SET payload = ?1 WHERE event_id = ?2").bind_blob(1, scrubbed).bind(2, id).step();
          ++out.events_scrubbed;
        }
        auto d = prepare("UPDATE webhook_deliveries SET body = ?1 WHERE event_id = ?2");
        d.bind(1, event_json(scrubbed)).bind(2, id).step();
        out.deliveries_scrubbed += d.changes();
      }
      auto au = prepare("UPDATE audit_log SET detail = '' WHERE tenant_id = ?1 AND (target = ?2 OR target LIKE ?3) "
                        "AND detail <> ''");
      au.bind(1, op.tenant_id).bind(2, "user:" + op.user_id).bind(3, about).step();
      out.audit_scrubbed = au.changes();
      for (const auto& t : op.tombstone)
        prepare("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, aggregate_version, "
                "created_us, payload) VALUES (?1, ?2, ?3, 'user', ?4, 0, ?5, ?6)")
          .bind(1, t.id)
          .bind(2, t.type)
          .bind(3, op.tenant_id)
          .bind(4, op.user_id)
          .bind(5, op.now_us)
          .bind_blob(6, t.payload)
          .step();
      write_audit(op.audit);
    });
    return out;
  }

  audit_page audit(const audit_op& op) override {
    audit_page out;
    if (op.append) {
      write_transaction([&] { write_audit(op.records); });
      return out;
    }
    std::string sql = "SELECT position, id, tenant_id, at_us, actor, action, target, request_id, client, outcome, "
                      "status, detail FROM audit_log WHERE (?1 OR tenant_id = ?2) AND (?3 = '' OR actor = ?3) AND "
                      "(?4 = '' OR action = ?4) AND (?5 = '' OR target = ?5) AND (?6 = 0 OR at_us >= ?6) AND "
                      "(?7 = 0 OR at_us < ?7) AND (?8 = 0 OR position < ?8) ORDER BY position DESC LIMIT ?9";
    auto q = prepare(sql);
    q.bind(1, static_cast<std::int64_t>(op.all_tenants))
      .bind(2, op.tenant_id)
      .bind(3, op.actor)
      .bind(4, op.action)
      .bind(5, op.target)
      .bind(6, op.from_us)
      .bind(7, op.to_us)
      .bind(8, op.before)
      .bind(9, static_cast<std::int64_t>(op.limit));
    while (q.step())
      out.rows.push_back(audit_of(q));
    return out;
  }

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

} // namespace

std::unique_ptr<backend> make_sqlite_backend(const std::string& path) { return std::make_unique<sqlite_backend>(path); }

} // namespace colony::adapters::store
