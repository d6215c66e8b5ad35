#include "pg_backend.hpp"

namespace colony::adapters::store::pg {

api_usage_result pg_backend::api_usage(const api_usage_op& op) {
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

api_key_result pg_backend::api_keys(const api_key_op& op) {
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
        read(n.exec_params("SELECT " + cols + " WHERE tenant_id = $1 ORDER BY created_us DESC, id DESC", op.tenant_id));
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

webhook_result pg_backend::webhooks(const webhook_op& op) {
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
        auto r =
          w.exec_params("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", op.tenant_id, op.endpoint_id);
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
                        "status, attempts, next_attempt_us, created_us, updated_us, shard) VALUES ($1, $2, $3, $4, "
                        "$5, $6, 'pending', 0, $7, $8, $8, $9) ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                        d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.body, d.next_attempt_us,
                        d.created_us, static_cast<std::int32_t>(runtime::cluster::shard_of(d.tenant_id)));
        w.exec_params("INSERT INTO outbox_cursors (name, position) VALUES ($1, $2) "
                      "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                      op.cursor, op.position);
        w.commit();
        break;
      }
      case k::due: {
        // Claimed in one statement: a delivery another node is attempting
        // (its lease not over) is not due here, whichever node owns its
        // shard now; one whose node died is due again when the lease ends.
        pqxx::work w{*conn_};
        auto r = w.exec_params("WITH due AS (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND "
                               "next_attempt_us <= $1 AND ($3 OR shard = ANY($4::int[]) OR ($5 AND shard IS NULL)) "
                               "ORDER BY next_attempt_us LIMIT $2 FOR UPDATE SKIP LOCKED) "
                               "UPDATE webhook_deliveries d SET next_attempt_us = $6 FROM due, webhook_endpoints e "
                               "WHERE d.id = due.id AND e.id = d.endpoint_id RETURNING " +
                                 cols + ", e.url, e.secret",
                               op.now_us, op.limit, op.scope.all, int_array(op.scope.shards), op.scope.unsharded,
                               std::max(op.lease_us, op.now_us));
        w.commit();
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
                        "last_status = $4, last_error = $5, updated_us = $6 WHERE id = $7 AND status = 'pending'",
                        d.status, d.attempts, d.next_attempt_us, d.last_status, d.last_error, d.updated_us, d.id);
        w.commit();
        break;
      }
      case k::backlog: {
        pqxx::nontransaction n{*conn_};
        auto r = n.exec_params("SELECT count(*), coalesce(min(created_us), 0), count(*) FILTER (WHERE "
                               "next_attempt_us <= $1) FROM webhook_deliveries WHERE status = 'pending' AND "
                               "($2 OR shard = ANY($3::int[]) OR ($4 AND shard IS NULL))",
                               op.now_us, op.scope.all, int_array(op.scope.shards), op.scope.unsharded);
        out.pending = r[0][0].as<std::int64_t>();
        out.oldest_pending_us = r[0][1].as<std::int64_t>();
        out.due_now = r[0][2].as<std::int64_t>();
        break;
      }
      case k::list_deliveries: {
        pqxx::nontransaction n{*conn_};
        auto r = n.exec_params("SELECT " + cols +
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

actors::idempotency_result pg_backend::idempotency(const idempotency_op& op) {
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

actors::user_data pg_backend::user_data(const user_data_op& op) {
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
    order_outbox(w); // the tombstone below is an outbox row
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

audit_page pg_backend::audit(const audit_op& op) {
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

plugin_result pg_backend::plugins(const plugin_op& op) {
  using k = plugin_op::kind;
  return guard([&] {
    plugin_result out;
    auto read = [&](const pqxx::result& r) {
      for (const auto& row : r)
        out.rows.push_back(plugin_row{row[0].as<std::string>(), row[1].as<std::string>(),
                                      pqxx::binarystring{row[3]}.str(), row[2].as<std::int64_t>()});
    };
    static const std::string cols = "SELECT name, version, published_us, state FROM plugin_versions ";
    static const std::string cursor_cols = "SELECT tenant_id, plugin, position, paused, attempts, next_attempt_us, "
                                           "last_error, updated_us FROM plugin_cursors ";
    auto read_cursors = [&](const pqxx::result& r) {
      for (const auto& row : r)
        out.cursors.push_back(plugin_cursor{
          row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::int64_t>(), row[3].as<bool>(),
          row[4].as<std::int32_t>(), row[5].as<std::int64_t>(), row[6].as<std::string>(), row[7].as<std::int64_t>()});
    };
    switch (op.what) {
      case k::publish: {
        const auto& r = op.row;
        pqxx::work w{*conn_};
        auto res = w.exec_params("INSERT INTO plugin_versions (name, version, published_us, state) "
                                 "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                                 r.name, r.version, r.published_us, pqxx::binarystring{r.state});
        if (res.affected_rows() == 0) {
          out.status = store_status::duplicate;
          return out;
        }
        write_audit(w, op.audit);
        w.commit();
        break;
      }
      case k::list: {
        pqxx::nontransaction n{*conn_};
        read(n.exec_params(cols +
                             "WHERE name IN (SELECT DISTINCT name FROM plugin_versions WHERE name > $1 "
                             "ORDER BY name LIMIT $2) ORDER BY name, published_us, version",
                           op.after, op.limit));
        break;
      }
      case k::versions: {
        pqxx::nontransaction n{*conn_};
        read(n.exec_params(cols + "WHERE name = $1 ORDER BY published_us, version", op.name));
        break;
      }
      case k::get: {
        pqxx::nontransaction n{*conn_};
        read(n.exec_params(cols + "WHERE name = $1 AND version = $2", op.name, op.version));
        if (out.rows.empty())
          out.status = store_status::not_found;
        break;
      }
      case k::cursor: {
        pqxx::nontransaction n{*conn_};
        read_cursors(n.exec_params(cursor_cols + "WHERE tenant_id = $1 AND plugin = $2", op.tenant_id, op.name));
        if (out.cursors.empty())
          out.status = store_status::not_found;
        break;
      }
      case k::due_cursors: { // the shards this node owns
        pqxx::nontransaction n{*conn_};
        read_cursors(n.exec_params(cursor_cols +
                                     "c WHERE NOT paused AND next_attempt_us <= $1 AND ($3 OR shard = ANY($4::int[])) "
                                     "AND EXISTS (SELECT 1 FROM outbox o WHERE o.tenant_id = c.tenant_id "
                                     "AND o.seq > c.position) LIMIT $2",
                                   op.now_us, op.limit, op.scope.all, int_array(op.scope.shards)));
        break;
      }
      case k::advance: {
        if (op.cursors.empty()) {
          out.status = store_status::error;
          break;
        }
        const auto& c = op.cursors.front();
        pqxx::work w{*conn_};
        auto res = w.exec_params("UPDATE plugin_cursors SET position = $3, attempts = $4, next_attempt_us = $5, "
                                 "last_error = $6, updated_us = $7 WHERE tenant_id = $1 AND plugin = $2 "
                                 "AND position = $8",
                                 c.tenant_id, c.plugin, c.position, c.attempts, c.next_attempt_us, c.last_error,
                                 c.updated_us, op.position);
        if (res.affected_rows() == 0) {
          out.status = store_status::stale;
          return out;
        }
        for (const auto& d : op.dead_letters)
          w.exec_params("INSERT INTO plugin_dead_letters (id, tenant_id, plugin, position, event_id, event_type, "
                        "event, error, attempts, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        d.id, d.tenant_id, d.plugin, d.position, d.event_id, d.event_type, pqxx::binarystring{d.event},
                        d.error, d.attempts, d.created_us);
        w.commit();
        break;
      }
      case k::kv_get: {
        pqxx::nontransaction n{*conn_};
        auto r = n.exec_params("SELECT key, value FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2 AND key = $3",
                               op.tenant_id, op.name, op.version);
        if (r.empty())
          out.status = store_status::not_found;
        for (const auto& row : r)
          out.kv.push_back(plugin_kv{row[0].as<std::string>(), row[1].as<std::string>()});
        break;
      }
      case k::kv_list: {
        pqxx::nontransaction n{*conn_};
        // The prefix compared as bytes (keys are COLLATE "C").
        auto r =
          n.exec_params("SELECT key, value FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2 AND key > $3 "
                        "AND substring(convert_to(key, 'UTF8') from 1 for $4) = convert_to($5, 'UTF8') "
                        "ORDER BY key LIMIT $6",
                        op.tenant_id, op.name, op.after, static_cast<int>(op.version.size()), op.version, op.limit);
        for (const auto& row : r)
          out.kv.push_back(plugin_kv{row[0].as<std::string>(), row[1].as<std::string>()});
        break;
      }
      case k::effects: {
        const auto& e = op.effects;
        pqxx::work w{*conn_};
        std::vector<change> scope(1);
        scope[0].row.tenant_id = op.tenant_id;
        auto allowed = fenced(w, scope); // takes the outbox order too
        if (!allowed[0].ok) {
          out.status = store_status::moved;
          return out;
        }
        auto last = store::last_writes(e);
        if (!last.empty()) {
          // One writer per (tenant, plugin) at a time: the quota sum below holds until commit.
          w.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", op.tenant_id + "\x1f" + op.name);
          auto total = w.exec_params("SELECT coalesce(sum(octet_length(key) + octet_length(value) + 64), 0)::bigint "
                                     "FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2",
                                     op.tenant_id, op.name);
          std::int64_t bytes = total[0][0].as<std::int64_t>();
          for (const auto& [key, value] : last) {
            auto cur = w.exec_params("SELECT octet_length(value) FROM plugin_kv WHERE tenant_id = $1 AND "
                                     "plugin = $2 AND key = $3",
                                     op.tenant_id, op.name, key);
            if (!cur.empty())
              bytes -= kv_footprint(key.size(), cur[0][0].as<std::size_t>());
            if (*value)
              bytes += kv_footprint(key.size(), (*value)->size());
          }
          if (!store::within_quota(bytes, e, out))
            return out; // rolled back: nothing written
        }
        auto now = protocol::now_us();
        for (const auto& [key, value] : last) {
          if (*value)
            w.exec_params("INSERT INTO plugin_kv (tenant_id, plugin, key, value, updated_us) VALUES ($1, $2, $3, $4, "
                          "$5) ON CONFLICT (tenant_id, plugin, key) DO UPDATE SET value = excluded.value, "
                          "updated_us = excluded.updated_us",
                          op.tenant_id, op.name, key, **value, now);
          else
            w.exec_params("DELETE FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2 AND key = $3", op.tenant_id,
                          op.name, key);
        }
        for (const auto& ev : e.events)
          w.exec_params("INSERT INTO outbox (event_id, type, tenant_id, aggregate_kind, aggregate_id, "
                        "aggregate_version, created_us, payload, shard_epoch) VALUES ($1, $2, $3, 'plugin', $4, 0, "
                        "$5, $6, $7)",
                        ev.id, ev.type, op.tenant_id, op.name, now, pqxx::binarystring{ev.payload}, allowed[0].epoch);
        w.commit();
        break;
      }
      case k::dead_letters: {
        pqxx::nontransaction n{*conn_};
        auto r = n.exec_params("SELECT id, tenant_id, plugin, position, event_id, event_type, event, error, attempts, "
                               "created_us FROM plugin_dead_letters WHERE tenant_id = $1 AND plugin = $2 AND id > $3 "
                               "ORDER BY id LIMIT $4",
                               op.tenant_id, op.name, op.after, op.limit);
        for (const auto& row : r)
          out.dead_letters.push_back(plugin_dead_letter{
            row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::int64_t>(),
            row[4].as<std::string>(), row[5].as<std::string>(), pqxx::binarystring{row[6]}.str(),
            row[7].as<std::string>(), row[8].as<std::int32_t>(), row[9].as<std::int64_t>()});
        break;
      }
    }
    return out;
  });
}

} // namespace colony::adapters::store::pg
