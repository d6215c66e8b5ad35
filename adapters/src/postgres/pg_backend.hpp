// PostgreSQL store backend (libpqxx 6.4). One connection per worker; pqxx 6
// has neither a pool nor async, so the store service runs several workers.
// Driver exceptions stop here: connection loss → unavailable_error; unique
// violations → duplicate; nothing with SQL or a DSN reaches a client.
//
// The class is declared here; pg_backend.cpp / sqlite_backend.cpp hold the
// connection, entity, outbox and timer repositories, *_repositories.cpp the
// integration ones (usage, API keys, webhooks, idempotency, personal data,
// audit).
#pragma once

#include <algorithm>
#include <optional>
#include <pqxx/pqxx>
#include <unordered_map>

#include "backend.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters::store::pg {

using namespace actors;

/// A PostgreSQL int[] literal ("{1,2,3}") for a $n::int[] parameter.
inline std::string int_array(const std::vector<std::int32_t>& xs) {
  std::string out = "{";
  for (std::size_t i = 0; i < xs.size(); ++i)
    out += (i ? "," : "") + std::to_string(xs[i]);
  return out + "}";
}

/// What the cluster fence says of one change: whether it may commit, and
/// the epoch of its shard's ownership it commits under (none on one node;
/// written with its events, outbox.shard_epoch).
struct fence_pass {
  bool ok = true;
  std::optional<std::int64_t> epoch;
};

class pg_backend final : public backend {
public:
  explicit pg_backend(std::string dsn, std::shared_ptr<const runtime::cluster::write_fence> fence = nullptr)
    : dsn_(std::move(dsn)), fence_(std::move(fence)) {}

  void open() override;

  void migrate() override;

  void ping() override;

  loaded load(const entity_key& key) override;

  std::vector<loaded> load_many(const std::vector<entity_key>& keys) override;

  std::vector<commit_outcome> commit(const std::vector<change>& batch) override;

  row_page list(const list_query& q) override;

  api_usage_result api_usage(const api_usage_op& op) override;

  api_key_result api_keys(const api_key_op& op) override;

  webhook_result webhooks(const webhook_op& op) override;

  /// An Idempotency-Key's answer, in transaction `w`.
  static void store_answer(pqxx::work& w, const idempotency_op& op) {
    w.exec_params("UPDATE idempotency_keys SET state = 'done', status = $2, headers = $3, body = $4 WHERE scope = $1",
                  op.scope, op.status, op.headers, op.body);
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
  static std::string first_line(const char* what) {
    std::string s = what;
    if (auto nl = s.find('\n'); nl != std::string::npos)
      s.erase(nl);
    return s;
  }

  /// Runs f; a lost connection becomes unavailable_error (and a reconnect).
  template <class F>
  auto guard(F f) -> decltype(f()) {
    if (!conn_ || !conn_->is_open())
      throw unavailable_error("not connected to PostgreSQL");
    try {
      return f();
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      throw unavailable_error(std::string{"lost the PostgreSQL connection: "} + first_line(e.what()));
    } catch (const pqxx::in_doubt_error& e) {
      conn_.reset();
      throw unavailable_error(std::string{"commit outcome unknown: "} + first_line(e.what()));
    }
  }

  static bool plain_user_insert(const change& ch) {
    return ch.kind == entity_kind::user && ch.what == change_kind::insert && ch.message_key.empty() &&
      ch.external_ids.empty() && ch.timers.empty() && ch.plugin_cursors.empty();
  }

  /// A bytea value in PostgreSQL's hex input form ("\\x..."), for COPY.
  static std::string bytea_hex(const std::string& b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.resize(2 + b.size() * 2);
    out[0] = '\\';
    out[1] = 'x';
    for (std::size_t i = 0; i < b.size(); ++i) {
      auto c = static_cast<unsigned char>(b[i]);
      out[2 + 2 * i] = digits[c >> 4];
      out[3 + 2 * i] = digits[c & 15];
    }
    return out;
  }

  /// A batch of plain user creations: the users, their outbox rows and audit
  /// records with COPY (one stream per table, no SQL text to parse per row),
  /// then the tenants' seat counts, last, so that the tenant rows are locked
  /// only until the commit. Before, the batch was one multi-row INSERT
  /// statement per table with quoted literals: PostgreSQL spent about a third
  /// of its time lexing, parsing, analysing and planning it
  /// (docs/performance.md). A violated constraint surfaces from a COPY as from
  /// an INSERT (pqxx::integrity_constraint_violation), and the caller falls
  /// back to one change at a time.
  static void copy_user_inserts(pqxx::work& w, const std::vector<change>& batch, const std::vector<fence_pass>& fence) {
    auto now = protocol::now_us();
    std::map<std::string, int> seats;
    bool events = false, audit = false;
    {
      pqxx::stream_to users{w, "users",
                            std::vector<std::string>{"tenant_id", "id", "email_lc", "name", "status", "roles",
                                                     "created_us", "updated_us", "version", "state"}};
      for (const auto& ch : batch) {
        const auto& r = ch.row;
        users << std::make_tuple(r.tenant_id, r.id, r.unique_key, r.name, r.status, r.roles, r.created_us, r.updated_us,
                                 r.version, bytea_hex(r.state));
        seats[r.tenant_id] += ch.user_count_delta;
        events = events || !ch.events.empty();
        audit = audit || !ch.audit.empty();
      }
      users.complete();
    }
    if (events) {
      pqxx::stream_to outbox{w, "outbox",
                             std::vector<std::string>{"event_id", "type", "tenant_id", "aggregate_kind", "aggregate_id",
                                                      "aggregate_version", "created_us", "payload", "shard_epoch"}};
      for (std::size_t i = 0; i < batch.size(); ++i)
        for (const auto& ev : batch[i].events)
          outbox << std::make_tuple(ev.id, ev.type, batch[i].row.tenant_id, std::string{"user"}, batch[i].row.id,
                                    batch[i].row.version, now, bytea_hex(ev.payload), fence[i].epoch);
      outbox.complete();
    }
    if (audit) {
      pqxx::stream_to records{w, "audit_log", audit_columns()};
      for (const auto& ch : batch)
        for (const auto& a : ch.audit)
          records << std::make_tuple(a.id, a.tenant_id, a.at_us, a.actor, a.action, a.target, a.request_id, a.client,
                                     a.outcome, a.status, a.detail);
      records.complete();
    }
    std::string sql;
    for (const auto& [tenant, n] : seats)
      if (n != 0)
        sql += "UPDATE tenants SET user_count = user_count + " + std::to_string(n) + " WHERE id = " + w.quote(tenant) +
          ";\n";
    if (!sql.empty())
      w.exec(sql);
  }

  std::string prepared_name(const std::string& sql) {
    auto it = prepared_.find(sql);
    if (it != prepared_.end())
      return it->second;
    auto name = "l" + std::to_string(prepared_.size());
    conn_->prepare(name, sql);
    prepared_.emplace(sql, name);
    return name;
  }

  pqxx::result exec_dynamic(pqxx::transaction_base& t, const list_sql& built) {
    return t.exec_prepared(prepared_name(built.sql), pqxx::prepare::make_dynamic_params(built.text_params));
  }

  commit_outcome missing(pqxx::transaction_base& t, const change& ch) {
    commit_outcome o;
    auto r = ch.kind == entity_kind::tenant
      ? t.exec_params("SELECT 1 FROM tenants WHERE id = $1", ch.row.id)
      : t.exec_params("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2", ch.row.tenant_id, ch.row.id);
    o.status = r.empty() ? store_status::not_found : store_status::stale;
    return o;
  }

  commit_outcome apply(pqxx::transaction_base& t, const change& ch, std::optional<std::int64_t> epoch) {
    commit_outcome o;
    const auto& r = ch.row;
    pqxx::binarystring state{r.state};
    if (ch.kind == entity_kind::tenant) {
      if (ch.what == change_kind::insert) {
        t.exec_params("INSERT INTO tenants (id, slug, name, plan, status, created_us, updated_us, version, state) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                      r.id, r.unique_key, r.name, r.plan, r.status, r.created_us, r.updated_us, r.version, state);
      } else {
        auto res = t.exec_params("UPDATE tenants SET slug = $1, name = $2, plan = $3, status = $4, updated_us = $5, "
                                 "version = $6, state = $7 WHERE id = $8 AND version = $9",
                                 r.unique_key, r.name, r.plan, r.status, r.updated_us, r.version, state, r.id,
                                 ch.expected_version);
        if (res.affected_rows() == 0)
          return missing(t, ch);
      }
    } else {
      if (ch.what == change_kind::insert) {
        t.exec_params("INSERT INTO users (tenant_id, id, email_lc, name, status, roles, created_us, updated_us, "
                      "version, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                      r.tenant_id, r.id, r.unique_key, r.name, r.status, r.roles, r.created_us, r.updated_us, r.version,
                      state);
      } else if (ch.what == change_kind::update) {
        auto res = t.exec_params("UPDATE users SET email_lc = $1, name = $2, status = $3, roles = $4, "
                                 "updated_us = $5, version = $6, state = $7 "
                                 "WHERE tenant_id = $8 AND id = $9 AND version = $10",
                                 r.unique_key, r.name, r.status, r.roles, r.updated_us, r.version, state, r.tenant_id,
                                 r.id, ch.expected_version);
        if (res.affected_rows() == 0)
          return missing(t, ch);
      } else {
        auto res = t.exec_params("DELETE FROM users WHERE tenant_id = $1 AND id = $2 AND version = $3", r.tenant_id,
                                 r.id, ch.expected_version);
        if (res.affected_rows() == 0)
          return missing(t, ch);
      }
      if (ch.user_count_delta != 0) {
        auto res = t.exec_params("UPDATE tenants SET user_count = user_count + $1 WHERE id = $2", ch.user_count_delta,
                                 r.tenant_id);
        if (res.affected_rows() == 0) {
          o.status = store_status::not_found;
          return o;
        }
      }
    }
    auto now = protocol::now_us();
    std::uint32_t version = ch.what == change_kind::remove ? ch.expected_version + 1 : r.version;
    write_cursor_changes(t, ch.plugin_cursors, now); // before the events: a cursor opens at the outbox's end
    for (const auto& ev : ch.events) {
      pqxx::binarystring payload{ev.payload};
      t.exec_params("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, "
                    "aggregate_version, created_us, payload, shard_epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    ev.id, ev.type, r.tenant_id, std::string{to_string(ch.kind)}, r.id, version, now, payload, epoch);
    }
    for (const auto& [system, id] : ch.external_ids)
      t.exec_params("INSERT INTO external_ids (system, external_id, tenant_id) VALUES ($1, $2, $3) "
                    "ON CONFLICT (system, external_id) DO UPDATE SET tenant_id = excluded.tenant_id",
                    system, id, r.tenant_id);
    for (const auto& tm : ch.timers)
      t.exec_params("INSERT INTO timers (id, kind, tenant_id, target_id, due_us, attempts, payload, shard) "
                    "VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, "
                    "tenant_id = excluded.tenant_id, target_id = excluded.target_id, due_us = excluded.due_us, "
                    "attempts = 0, payload = excluded.payload, shard = excluded.shard",
                    tm.id, tm.kind, tm.tenant_id, tm.target_id, tm.due_us, tm.payload,
                    static_cast<std::int32_t>(runtime::cluster::shard_of(tm.tenant_id)));
    write_audit(t, ch.audit);
    return o;
  }

  static void write_cursor_changes(pqxx::transaction_base& t, const std::vector<actors::plugin_cursor_change>& changes,
                                   std::int64_t now) {
    using k = actors::plugin_cursor_change::kind;
    for (const auto& c : changes) {
      if (c.what == k::open)
        t.exec_params("INSERT INTO plugin_cursors (tenant_id, plugin, position, updated_us, shard) "
                      "VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) FROM outbox), $3, $4) "
                      "ON CONFLICT (tenant_id, plugin) DO UPDATE SET paused = false, updated_us = excluded.updated_us",
                      c.tenant_id, c.plugin, now, static_cast<std::int32_t>(runtime::cluster::shard_of(c.tenant_id)));
      else if (c.what == k::pause)
        t.exec_params("UPDATE plugin_cursors SET paused = true, updated_us = $3 WHERE tenant_id = $1 AND plugin = $2",
                      c.tenant_id, c.plugin, now);
      else
        t.exec_params("DELETE FROM plugin_cursors WHERE tenant_id = $1 AND plugin = $2", c.tenant_id, c.plugin);
    }
  }

  /// A row of "SELECT position, id, tenant_id, at_us, actor, action, target,
  /// request_id, client, outcome, status, detail FROM audit_log".
  static audit_record audit_of(const pqxx::row& r) {
    return audit_record{r[0].as<std::int64_t>(), r[1].as<std::string>(),   r[2].as<std::string>(),
                        r[3].as<std::int64_t>(), r[4].as<std::string>(),   r[5].as<std::string>(),
                        r[6].as<std::string>(),  r[7].as<std::string>(),   r[8].as<std::string>(),
                        r[9].as<std::string>(),  r[10].as<std::int32_t>(), r[11].as<std::string>()};
  }

  /// The columns an audit record is written to (in audit_values' order), for
  /// INSERT and for COPY.
  static const std::vector<std::string>& audit_columns() {
    static const std::vector<std::string> columns{"id",         "tenant_id", "at_us",   "actor",  "action", "target",
                                                  "request_id", "client",    "outcome", "status", "detail"};
    return columns;
  }

  static std::string audit_values(pqxx::transaction_base& t, const audit_record& a) {
    return "(" + t.quote(a.id) + "," + t.quote(a.tenant_id) + "," + std::to_string(a.at_us) + "," + t.quote(a.actor) +
      "," + t.quote(a.action) + "," + t.quote(a.target) + "," + t.quote(a.request_id) + "," + t.quote(a.client) + "," +
      t.quote(a.outcome) + "," + std::to_string(a.status) + "," + t.quote(a.detail) + ")";
  }

  /// Audit records in the caller's transaction: one statement for all.
  static void write_audit(pqxx::transaction_base& t, const std::vector<audit_record>& records) {
    if (records.empty())
      return;
    const auto& columns = audit_columns();
    std::string sql = "INSERT INTO audit_log (";
    for (std::size_t i = 0; i < columns.size(); ++i)
      sql += (i ? ", " : "") + columns[i];
    sql += ") VALUES ";
    for (std::size_t i = 0; i < records.size(); ++i)
      sql += (i ? "," : "") + audit_values(t, records[i]);
    t.exec(sql);
  }

  actors::user_data user_data(const user_data_op& op) override;

  audit_page audit(const audit_op& op) override;

  actors::plugin_result plugins(const actors::plugin_op& op) override;

  /// The cluster fence of a batch, in transaction `t`: which changes this
  /// incarnation may commit (its shard is owned by it in shard_owner). The
  /// owned rows are locked FOR SHARE until the commit, so a claim or a
  /// hand-off of one of them waits for this transaction, and a check made
  /// while a claim is pending waits for it and then sees the new owner.
  /// All true when the fence is off (one node).
  std::vector<fence_pass> fenced(pqxx::transaction_base& t, const std::vector<change>& batch);
  /// On a cluster, before a transaction that may write outbox rows: takes
  /// the outbox lock (a transaction-level advisory lock), so the positions
  /// (outbox.seq, drawn at insert) of concurrent writers are drawn and
  /// committed in one order and a reader never sees position n+1 while n
  /// may still commit (docs/events.md). One writer per node already holds
  /// that order: nothing is taken without a cluster.
  void order_outbox(pqxx::transaction_base& t);

  std::string dsn_;
  std::shared_ptr<const runtime::cluster::write_fence> fence_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::string, std::string> prepared_;
};

} // namespace colony::adapters::store::pg
