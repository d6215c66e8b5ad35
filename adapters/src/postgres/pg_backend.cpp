// PostgreSQL store backend (libpqxx 6.4). One connection per worker; pqxx 6
// has neither a pool nor async, so the store service runs several workers.
// Driver exceptions stop here: connection loss → unavailable_error; unique
// violations → duplicate; nothing with SQL or a DSN reaches a client.
#include <algorithm>
#include <pqxx/pqxx>
#include <unordered_map>

#include "../store/backend.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters::store {
namespace {

using namespace actors;

class pg_backend final : public backend {
public:
  explicit pg_backend(std::string dsn) : dsn_(std::move(dsn)) {}

  void open() override {
    try {
      conn_.reset();
      prepared_.clear();
      conn_ = std::make_unique<pqxx::connection>(dsn_);
    } catch (const std::exception& e) {
      conn_.reset();
      throw unavailable_error(std::string{"cannot connect to PostgreSQL: "} + first_line(e.what()));
    }
  }

  void migrate() override {
    guard([&] {
      pqxx::work w{*conn_};
      // Serialize concurrent migrators (several nodes starting at once).
      w.exec("SELECT pg_advisory_xact_lock(7367196)");
      w.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
             "applied_us bigint NOT NULL)");
      for (const auto& m : postgres_migrations()) {
        auto r = w.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
        if (!r.empty())
          continue;
        w.exec(m.sql);
        w.exec_params("INSERT INTO schema_migrations (version, name, applied_us) VALUES ($1, $2, $3)", m.version,
                      std::string{m.name}, protocol::now_us());
      }
      w.commit();
    });
  }

  void ping() override {
    guard([&] {
      pqxx::nontransaction n{*conn_};
      n.exec("SELECT 1");
    });
  }

  loaded load(const entity_key& key) override {
    return guard([&] {
      loaded out;
      pqxx::nontransaction n{*conn_};
      pqxx::result r = key.kind == entity_kind::tenant
        ? n.exec_params("SELECT state, version, user_count FROM tenants WHERE id = $1", key.id)
        : n.exec_params("SELECT state, version, 0 FROM users WHERE tenant_id = $1 AND id = $2", key.tenant_id, key.id);
      if (r.empty()) {
        out.status = store_status::not_found;
        return out;
      }
      pqxx::binarystring blob{r[0][0]};
      out.state = blob.str();
      out.version = r[0][1].as<std::uint32_t>();
      out.user_count = r[0][2].as<std::int32_t>();
      return out;
    });
  }

  std::vector<loaded> load_many(const std::vector<entity_key>& keys) override {
    return guard([&] {
      // One round trip for the group: the keys as a VALUES list joined to
      // the table, which PostgreSQL runs as one primary-key probe per key
      // (~12 us each). Plainer forms planned badly: a row-value IN list became
      // ~200 ORed bitmap scans, and "tenant_id = t AND id IN (...)" made the
      // planner pick another (tenant_id, ...) index and filter a whole
      // tenant's rows whenever its statistics did not know the tenant yet
      // (5k instead of 40k activations/s). Values are quoted by libpq.
      std::vector<loaded> out(keys.size());
      for (auto& l : out)
        l.status = store_status::not_found;
      std::unordered_map<std::string, std::vector<std::size_t>> wanted; // "tenant/id" or "id" -> indexes
      std::string users, tenants;
      pqxx::nontransaction n{*conn_};
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const auto& k = keys[i];
        auto& slot = wanted[k.kind == entity_kind::tenant ? k.id : k.tenant_id + "/" + k.id];
        slot.push_back(i);
        if (slot.size() > 1)
          continue; // the same key twice: one row, two answers
        if (k.kind == entity_kind::tenant)
          tenants += (tenants.empty() ? "(" : ",(") + n.quote(k.id) + ")";
        else
          users += (users.empty() ? "(" : ",(") + n.quote(k.tenant_id) + "," + n.quote(k.id) + ")";
      }
      std::string sql;
      if (!users.empty())
        sql = "SELECT u.state, u.version, u.tenant_id || '/' || u.id, 0 FROM (VALUES " + users +
          ") AS k(tenant_id, id) JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.id";
      if (!tenants.empty())
        sql += (sql.empty() ? "" : " UNION ALL ") +
          std::string{"SELECT t.state, t.version, t.id, t.user_count FROM (VALUES "} + tenants +
          ") AS k(id) JOIN tenants t ON t.id = k.id";
      for (const auto& row : n.exec(sql)) {
        auto it = wanted.find(row[2].as<std::string>());
        if (it == wanted.end())
          continue;
        loaded l;
        l.state = pqxx::binarystring{row[0]}.str();
        l.version = row[1].as<std::uint32_t>();
        l.user_count = row[3].as<std::int32_t>();
        for (auto i : it->second)
          out[i] = l;
      }
      return out;
    });
  }

  std::vector<commit_outcome> commit(const std::vector<change>& batch) override {
    return guard([&] {
      // Fast path for the common batch, user creations only: the whole batch
      // as one multi-statement round trip (multi-row INSERTs), instead of
      // five round trips per change. Any constraint violation rolls it all
      // back and the per-change path below finds out which change it was.
      if (batch.size() > 1 && std::all_of(batch.begin(), batch.end(), plain_user_insert)) {
        try {
          pqxx::work w{*conn_};
          copy_user_inserts(w, batch);
          w.commit();
          return std::vector<commit_outcome>(batch.size());
        } catch (const pqxx::integrity_constraint_violation&) {
          // fall through: one by one, with savepoints
        }
      }
      std::vector<commit_outcome> out;
      out.reserve(batch.size());
      pqxx::work w{*conn_};
      for (const auto& ch : batch) {
        // Explicit savepoints: one failing change must not abort the others.
        // (pqxx::subtransaction left the transaction aborted after a caught
        // unique_violation in libpqxx 6.4.)
        commit_outcome o;
        w.exec("SAVEPOINT c");
        try {
          if (!ch.message_key.empty()) // first: a redelivery is a duplicate, whatever else it would hit
            w.exec_params("INSERT INTO processed_messages (message_key, applied_us) VALUES ($1, $2)", ch.message_key,
                          protocol::now_us());
          o = apply(w, ch);
          if (o.status == store_status::ok && !ch.idempotency_scope.empty())
            w.exec_params("UPDATE idempotency_keys SET state = 'committed', ref_kind = $2, ref_tenant = $3, "
                          "ref_id = $4 WHERE scope = $1 AND state = 'running'",
                          ch.idempotency_scope, static_cast<int>(ch.kind), ch.row.tenant_id, ch.row.id);
        } catch (const pqxx::unique_violation& e) {
          o.status = store_status::duplicate;
          std::string msg = e.what();
          o.field = msg.find("processed_messages") != std::string::npos ? "message_key"
            : msg.find("slug") != std::string::npos                     ? "slug"
            : msg.find("email_lc") != std::string::npos                 ? "email"
                                                                        : "id";
        } catch (const pqxx::foreign_key_violation&) {
          o.status = store_status::not_found;
        }
        w.exec(o.status == store_status::ok ? "RELEASE SAVEPOINT c" : "ROLLBACK TO SAVEPOINT c");
        out.push_back(std::move(o));
      }
      w.commit();
      return out;
    });
  }

  row_page list(const list_query& q) override {
    return guard([&] {
      auto built = build_list_sql(q, [](int n) { return "$" + std::to_string(n); });
      row_page page;
      pqxx::nontransaction n{*conn_};
      auto r = exec_dynamic(n, built);
      bool numeric = q.sort_field == "createdAt";
      for (const auto& row : r) {
        list_row lr;
        lr.state = pqxx::binarystring{row[0]}.str();
        lr.user_count = row[1].as<std::int32_t>();
        if (numeric)
          lr.sort_number = row[2].as<std::int64_t>();
        else
          lr.sort_text = row[2].as<std::string>();
        lr.id = row[3].as<std::string>();
        page.rows.push_back(std::move(lr));
      }
      return page;
    });
  }

  api_usage_result api_usage(const api_usage_op& op) override {
    return guard([&] {
      api_usage_result out;
      pqxx::work w{*conn_};
      for (const auto& r : op.rows) {
        auto res = op.add
          ? w.exec_params("INSERT INTO api_usage (tenant_id, month, calls) VALUES ($1, $2, $3) "
                          "ON CONFLICT (tenant_id, month) DO UPDATE SET calls = api_usage.calls + "
                          "excluded.calls RETURNING calls",
                          r.tenant_id, r.month, r.calls)
          : w.exec_params("SELECT calls FROM api_usage WHERE tenant_id = $1 AND month = $2", r.tenant_id, r.month);
        out.rows.push_back(api_usage_row{r.tenant_id, r.month, res.empty() ? 0 : res[0][0].as<std::int64_t>()});
      }
      w.commit();
      return out;
    });
  }

  api_key_result api_keys(const api_key_op& op) override {
    using k = api_key_op::kind;
    return guard([&] {
      api_key_result out;
      static const std::string cols =
        "id, tenant_id, name, roles, hash, created_by, created_us, expires_us, revoked_us FROM api_keys";
      auto read = [&](const pqxx::result& r) {
        for (const auto& row : r)
          out.keys.push_back(api_key_row{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                                         decode_list(row[3].as<std::string>()), row[4].as<std::string>(),
                                         row[5].as<std::string>(), row[6].as<std::int64_t>(), row[7].as<std::int64_t>(),
                                         row[8].as<std::int64_t>()});
      };
      switch (op.what) {
        case k::create: {
          const auto& r = op.key;
          pqxx::work w{*conn_};
          w.exec_params("INSERT INTO api_keys (id, tenant_id, name, roles, hash, created_by, created_us, expires_us) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        r.id, r.tenant_id, r.name, encode_list(r.roles), r.hash, r.created_by, r.created_us,
                        r.expires_us);
          write_audit(w, op.audit);
          if (op.answer)
            store_answer(w, *op.answer);
          w.commit();
          out.keys.push_back(r);
          break;
        }
        case k::list: {
          pqxx::nontransaction n{*conn_};
          read(
            n.exec_params("SELECT " + cols + " WHERE tenant_id = $1 ORDER BY created_us DESC, id DESC", op.tenant_id));
          break;
        }
        case k::get: {
          pqxx::nontransaction n{*conn_};
          read(n.exec_params("SELECT " + cols + " WHERE id = $1", op.id));
          break;
        }
        case k::revoke: {
          pqxx::work w{*conn_};
          auto r = w.exec_params("UPDATE api_keys SET revoked_us = $1 WHERE tenant_id = $2 AND id = $3 AND "
                                 "revoked_us = 0",
                                 op.now_us, op.tenant_id, op.id);
          if (r.affected_rows() == 0)
            out.status = store_status::not_found;
          else
            write_audit(w, op.audit);
          w.commit();
          break;
        }
        case k::count_platform: {
          pqxx::nontransaction n{*conn_};
          auto r = n.exec_params("SELECT count(*) FROM api_keys WHERE tenant_id = '' AND revoked_us = 0 AND "
                                 "(expires_us = 0 OR expires_us > $1)",
                                 op.now_us);
          out.count = r[0][0].as<std::int64_t>();
          break;
        }
      }
      return out;
    });
  }

  webhook_result webhooks(const webhook_op& op) override {
    using k = webhook_op::kind;
    return guard([&] {
      webhook_result out;
      auto endpoint_of = [&](const pqxx::row& r) {
        return webhook_endpoint{
          r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(), decode_list(r[3].as<std::string>()),
          r[4].as<std::string>(), r[5].as<std::string>(), r[6].as<std::int64_t>()};
      };
      auto delivery_of = [](const pqxx::row& r) {
        webhook_delivery d;
        d.id = r[0].as<std::string>();
        d.endpoint_id = r[1].as<std::string>();
        d.tenant_id = r[2].as<std::string>();
        d.event_id = r[3].as<std::string>();
        d.event_type = r[4].as<std::string>();
        d.body = r[5].as<std::string>();
        d.status = r[6].as<std::string>();
        d.attempts = r[7].as<std::int32_t>();
        d.next_attempt_us = r[8].as<std::int64_t>();
        d.last_status = r[9].as<std::int32_t>();
        d.last_error = r[10].as<std::string>();
        d.created_us = r[11].as<std::int64_t>();
        d.updated_us = r[12].as<std::int64_t>();
        return d;
      };
      static const std::string cols = "d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.body, d.status, "
                                      "d.attempts, d.next_attempt_us, d.last_status, d.last_error, d.created_us, "
                                      "d.updated_us";
      switch (op.what) {
        case k::create_endpoint: {
          const auto& e = op.endpoint;
          pqxx::work w{*conn_};
          w.exec_params("INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, description, "
                        "created_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        e.id, e.tenant_id, e.url, encode_list(e.event_types), e.secret, e.description, e.created_us);
          write_audit(w, op.audit);
          if (op.answer)
            store_answer(w, *op.answer);
          w.commit();
          out.endpoints.push_back(e);
          break;
        }
        case k::list_endpoints:
        case k::get_endpoint: {
          pqxx::nontransaction n{*conn_};
          auto r = op.what == k::list_endpoints
            ? n.exec_params("SELECT id, tenant_id, url, event_types, secret, description, created_us FROM "
                            "webhook_endpoints WHERE tenant_id = $1 ORDER BY created_us, id",
                            op.tenant_id)
            : n.exec_params("SELECT id, tenant_id, url, event_types, secret, description, created_us FROM "
                            "webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                            op.tenant_id, op.endpoint_id);
          for (const auto& row : r)
            out.endpoints.push_back(endpoint_of(row));
          break;
        }
        case k::delete_endpoint: {
          pqxx::work w{*conn_};
          auto r = w.exec_params("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", op.tenant_id,
                                 op.endpoint_id);
          if (r.affected_rows() == 0)
            out.status = store_status::not_found;
          else {
            w.exec_params("UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint deleted', "
                          "updated_us = $1 WHERE endpoint_id = $2 AND status = 'pending'",
                          op.now_us, op.endpoint_id);
            write_audit(w, op.audit);
          }
          w.commit();
          break;
        }
        case k::read_cursor: {
          pqxx::nontransaction n{*conn_};
          auto r = n.exec_params("SELECT position FROM outbox_cursors WHERE name = $1", op.cursor);
          out.position = r.empty() ? 0 : r[0][0].as<std::int64_t>();
          break;
        }
        case k::enqueue: {
          pqxx::work w{*conn_};
          for (const auto& d : op.deliveries)
            w.exec_params("INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_id, event_type, body, "
                          "status, attempts, next_attempt_us, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6, "
                          "'pending', 0, $7, $8, $8) ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                          d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.body, d.next_attempt_us,
                          d.created_us);
          w.exec_params("INSERT INTO outbox_cursors (name, position) VALUES ($1, $2) "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                        op.cursor, op.position);
          w.commit();
          break;
        }
        case k::due: {
          pqxx::nontransaction n{*conn_};
          auto r = n.exec_params("SELECT " + cols +
                                   ", e.url, e.secret FROM webhook_deliveries d JOIN "
                                   "webhook_endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND "
                                   "d.next_attempt_us <= $1 ORDER BY d.next_attempt_us LIMIT $2",
                                 op.now_us, op.limit);
          for (const auto& row : r) {
            auto d = delivery_of(row);
            d.url = row[13].as<std::string>();
            d.secret = row[14].as<std::string>();
            out.deliveries.push_back(std::move(d));
          }
          break;
        }
        case k::record: {
          pqxx::work w{*conn_};
          for (const auto& d : op.deliveries)
            w.exec_params("UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_us = $3, "
                          "last_status = $4, last_error = $5, updated_us = $6 WHERE id = $7",
                          d.status, d.attempts, d.next_attempt_us, d.last_status, d.last_error, d.updated_us, d.id);
          w.commit();
          break;
        }
        case k::list_deliveries: {
          pqxx::nontransaction n{*conn_};
          auto r =
            n.exec_params("SELECT " + cols +
                            " FROM webhook_deliveries d WHERE d.tenant_id = $1 AND "
                            "d.endpoint_id = $2 AND d.id COLLATE \"C\" > $3 ORDER BY d.id COLLATE \"C\" LIMIT $4",
                          op.tenant_id, op.endpoint_id, op.after, op.limit);
          for (const auto& row : r)
            out.deliveries.push_back(delivery_of(row));
          break;
        }
      }
      return out;
    });
  }

  /// An Idempotency-Key's answer, in transaction `w`.
  static void store_answer(pqxx::work& w, const idempotency_op& op) {
    w.exec_params("UPDATE idempotency_keys SET state = 'done', status = $2, headers = $3, body = $4 WHERE scope = $1",
                  op.scope, op.status, op.headers, op.body);
  }

  actors::idempotency_result idempotency(const idempotency_op& op) override {
    return guard([&] {
      actors::idempotency_result out;
      using k = idempotency_op::kind;
      using o = actors::idempotency_result::outcome;
      pqxx::work w{*conn_};
      if (op.what == k::release) {
        w.exec_params("DELETE FROM idempotency_keys WHERE scope = $1 AND state <> 'done'", op.scope);
      } else if (op.what == k::finish) {
        store_answer(w, op);
      } else {
        w.exec_params("DELETE FROM idempotency_keys WHERE expires_us <= $1", op.now_us);
        // Concurrent requests with one key (on any node): one insert wins.
        auto ins = w.exec_params("INSERT INTO idempotency_keys (scope, fingerprint, state, started_us, expires_us) "
                                 "VALUES ($1, $2, 'running', $3, $4) ON CONFLICT (scope) DO NOTHING RETURNING scope",
                                 op.scope, op.fingerprint, op.now_us, op.expires_us);
        if (ins.empty()) {
          auto r = w.exec_params("SELECT fingerprint, state, started_us, status, headers, body, ref_kind, ref_tenant, "
                                 "ref_id FROM idempotency_keys WHERE scope = $1 FOR UPDATE",
                                 op.scope);
          if (!r.empty()) {
            const auto& row = r[0];
            auto state = row[1].as<std::string>();
            if (row[0].as<std::string>() != op.fingerprint) {
              out.what = o::mismatch;
            } else if (state == "done") {
              out.what = o::replay;
              out.answer_status = row[3].as<std::int32_t>();
              out.headers = row[4].as<std::string>();
              out.body = row[5].as<std::string>();
            } else if (state == "committed") {
              out.what = o::committed;
              out.ref_kind = row[6].as<std::int32_t>();
              out.ref_tenant = row[7].as<std::string>();
              out.ref_id = row[8].as<std::string>();
            } else if (row[2].as<std::int64_t>() >= op.stale_before_us) {
              out.what = o::running;
            } else { // abandoned before its change committed (that would have marked it): run again
              w.exec_params("UPDATE idempotency_keys SET started_us = $2 WHERE scope = $1", op.scope, op.now_us);
            }
          }
        }
      }
      w.commit();
      return out;
    });
  }

  bool processed(const std::string& message_key) override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      return !n.exec_params("SELECT 1 FROM processed_messages WHERE message_key = $1", message_key).empty();
    });
  }

  std::string resolve_external(const std::string& system, const std::string& id) override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      auto r = n.exec_params("SELECT tenant_id FROM external_ids WHERE system = $1 AND external_id = $2", system, id);
      return r.empty() ? std::string{} : r[0][0].as<std::string>();
    });
  }

  std::string resolve_slug(const std::string& slug) override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      auto r = n.exec_params("SELECT id FROM tenants WHERE slug = $1", slug);
      return r.empty() ? std::string{} : r[0][0].as<std::string>();
    });
  }

  event_page events(const event_query& q) override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      pqxx::result r;
      if (q.unpublished_only)
        r = n.exec_params("SELECT seq, payload FROM outbox WHERE published_us IS NULL AND seq > $1 ORDER BY seq "
                          "LIMIT $2",
                          q.after, q.limit);
      else if (q.tenant_id.empty())
        r = n.exec_params("SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2", q.after, q.limit);
      else
        r = n.exec_params("SELECT seq, payload FROM outbox WHERE tenant_id = $3 AND seq > $1 ORDER BY seq LIMIT $2",
                          q.after, q.limit, q.tenant_id);
      event_page page;
      page.rows.reserve(r.size());
      for (const auto& row : r)
        page.rows.push_back(event_row{row[0].as<std::int64_t>(), pqxx::binarystring{row[1]}.str()});
      return page;
    });
  }

  void mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) override {
    guard([&] {
      std::string list = "{";
      for (std::size_t i = 0; i < positions.size(); ++i)
        list += (i ? "," : "") + std::to_string(positions[i]);
      list += "}";
      pqxx::work w{*conn_};
      w.exec_params("UPDATE outbox SET published_us = $1 WHERE seq = ANY($2::bigint[])", at_us, list);
      w.commit();
      return 0;
    });
  }

  outbox_backlog backlog() override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      auto r = n.exec("SELECT count(*), coalesce(min(created_us), 0) FROM outbox WHERE published_us IS NULL");
      outbox_backlog b;
      b.count = r[0][0].as<std::int64_t>();
      b.oldest_us = r[0][1].as<std::int64_t>();
      return b;
    });
  }

  timer_page due_timers(std::int64_t now_us, std::int32_t limit) override {
    return guard([&] {
      pqxx::nontransaction n{*conn_};
      auto r = n.exec_params("SELECT id, kind, tenant_id, target_id, due_us, attempts, payload FROM timers "
                             "WHERE due_us <= $1 ORDER BY due_us LIMIT $2",
                             now_us, limit);
      timer_page page;
      for (const auto& row : r)
        page.rows.push_back(timer_row{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                                      row[3].as<std::string>(), row[4].as<std::int64_t>(), row[5].as<std::int32_t>(),
                                      row[6].as<std::string>()});
      return page;
    });
  }

  void timer_done(const std::string& id, std::int64_t due_us) override {
    guard([&] {
      pqxx::work w{*conn_};
      w.exec_params("DELETE FROM timers WHERE id = $1 AND due_us = $2", id, due_us);
      w.commit();
      return 0;
    });
  }

  void timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) override {
    guard([&] {
      pqxx::work w{*conn_};
      w.exec_params("UPDATE timers SET due_us = $1, attempts = $2 WHERE id = $3", due_us, attempts, id);
      w.commit();
      return 0;
    });
  }

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
      ch.external_ids.empty() && ch.timers.empty();
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
  static void copy_user_inserts(pqxx::work& w, const std::vector<change>& batch) {
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
                                                      "aggregate_version", "created_us", "payload"}};
      for (const auto& ch : batch)
        for (const auto& ev : ch.events)
          outbox << std::make_tuple(ev.id, ev.type, ch.row.tenant_id, std::string{"user"}, ch.row.id, ch.row.version,
                                    now, bytea_hex(ev.payload));
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

  commit_outcome apply(pqxx::transaction_base& t, const change& ch) {
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
    for (const auto& ev : ch.events) {
      pqxx::binarystring payload{ev.payload};
      t.exec_params("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, "
                    "aggregate_version, created_us, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    ev.id, ev.type, r.tenant_id, std::string{to_string(ch.kind)}, r.id, version, now, payload);
    }
    for (const auto& [system, id] : ch.external_ids)
      t.exec_params("INSERT INTO external_ids (system, external_id, tenant_id) VALUES ($1, $2, $3) "
                    "ON CONFLICT (system, external_id) DO UPDATE SET tenant_id = excluded.tenant_id",
                    system, id, r.tenant_id);
    for (const auto& tm : ch.timers)
      t.exec_params("INSERT INTO timers (id, kind, tenant_id, target_id, due_us, attempts, payload) "
                    "VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, "
                    "tenant_id = excluded.tenant_id, target_id = excluded.target_id, due_us = excluded.due_us, "
                    "attempts = 0, payload = excluded.payload",
                    tm.id, tm.kind, tm.tenant_id, tm.target_id, tm.due_us, tm.payload);
    write_audit(t, ch.audit);
    return o;
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

  actors::user_data user_data(const user_data_op& op) override {
    return guard([&] {
      actors::user_data out;
      const std::string about = "%/users/" + op.user_id + "%";
      pqxx::work w{*conn_};
      if (!op.erase) {
        for (const auto& r : w.exec_params("SELECT payload FROM outbox WHERE tenant_id = $1 AND aggregate_kind = "
                                           "'user' AND aggregate_id = $2 ORDER BY seq",
                                           op.tenant_id, op.user_id))
          out.events.push_back(pqxx::binarystring{r[0]}.str());
        for (const auto& r : w.exec_params("SELECT position, id, tenant_id, at_us, actor, action, target, request_id, "
                                           "client, outcome, status, detail FROM audit_log WHERE tenant_id = $1 AND "
                                           "(target = $2 OR target LIKE $3) ORDER BY position",
                                           op.tenant_id, "user:" + op.user_id, about))
          out.audit.push_back(audit_of(r));
        w.commit();
        return out;
      }
      auto rows = w.exec_params("SELECT event_id, payload, type FROM outbox WHERE tenant_id = $1 AND aggregate_kind = "
                                "'user' AND aggregate_id = $2 FOR UPDATE",
                                op.tenant_id, op.user_id);
      // Not a user of this tenant (another tenant's, or none), or erased
      // already: nothing is written, no tombstone, no audit record.
      bool erased_before = false;
      for (const auto& r : rows)
        erased_before = erased_before || r[2].as<std::string>() == "user.erased";
      if (rows.empty() || erased_before) {
        out.status = store_status::not_found;
        return out; // the transaction rolls back
      }
      for (const auto& r : rows) {
        auto id = r[0].as<std::string>();
        auto payload = pqxx::binarystring{r[1]}.str();
        auto scrubbed = scrub_user_event(payload);
        if (scrubbed != payload) {
          w.exec_params("UPDATE outbox SET payload = $1 WHERE event_id = $2", pqxx::binarystring{scrubbed}, id);
          ++out.events_scrubbed;
        }
        out.deliveries_scrubbed +=
          w.exec_params("UPDATE webhook_deliveries SET body = $1 WHERE event_id = $2", event_json(scrubbed), id)
            .affected_rows();
      }
      out.audit_scrubbed = w.exec_params("UPDATE audit_log SET detail = '' WHERE tenant_id = $1 AND (target = $2 OR "
                                         "target LIKE $3) AND detail <> ''",
                                         op.tenant_id, "user:" + op.user_id, about)
                             .affected_rows();
      for (const auto& t : op.tombstone)
        w.exec_params("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, aggregate_version, "
                      "created_us, payload) VALUES ($1, $2, $3, 'user', $4, 0, $5, $6)",
                      t.id, t.type, op.tenant_id, op.user_id, op.now_us, pqxx::binarystring{t.payload});
      write_audit(w, op.audit);
      w.commit();
      return out;
    });
  }

  audit_page audit(const audit_op& op) override {
    return guard([&] {
      audit_page out;
      if (op.append) {
        pqxx::work w{*conn_};
        write_audit(w, op.records);
        w.commit();
        return out;
      }
      pqxx::nontransaction n{*conn_};
      std::string sql = "SELECT position, id, tenant_id, at_us, actor, action, target, request_id, client, outcome, "
                        "status, detail FROM audit_log WHERE true";
      if (!op.all_tenants)
        sql += " AND tenant_id = " + n.quote(op.tenant_id);
      if (!op.actor.empty())
        sql += " AND actor = " + n.quote(op.actor);
      if (!op.action.empty())
        sql += " AND action = " + n.quote(op.action);
      if (!op.target.empty())
        sql += " AND target = " + n.quote(op.target);
      if (op.from_us)
        sql += " AND at_us >= " + std::to_string(op.from_us);
      if (op.to_us)
        sql += " AND at_us < " + std::to_string(op.to_us);
      if (op.before)
        sql += " AND position < " + std::to_string(op.before);
      sql += " ORDER BY position DESC LIMIT " + std::to_string(op.limit);
      for (const auto& r : n.exec(sql))
        out.rows.push_back(audit_of(r));
      return out;
    });
  }

  std::string dsn_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::string, std::string> prepared_;
};

} // namespace

std::unique_ptr<backend> make_postgres_backend(const std::string& dsn) { return std::make_unique<pg_backend>(dsn); }

} // namespace colony::adapters::store
