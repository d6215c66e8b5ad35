#include "sqlite_backend.hpp"

#include <algorithm>
#include <map>

namespace colony::adapters::store::lite {

api_usage_result sqlite_backend::api_usage(const api_usage_op& op) {
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

api_key_result sqlite_backend::api_keys(const api_key_op& op) {
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

webhook_result sqlite_backend::webhooks(const webhook_op& op) {
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
    case k::due: { // one node: every shard is its own; claimed as on PostgreSQL
      write_transaction([&] {
        auto q = prepare("SELECT " + cols +
                         ", e.url, e.secret FROM webhook_deliveries d JOIN webhook_endpoints e "
                         "ON e.id = d.endpoint_id WHERE d.status = 'pending' AND d.next_attempt_us <= ?1 "
                         "ORDER BY d.next_attempt_us LIMIT ?2");
        q.bind(1, op.now_us).bind(2, static_cast<std::int64_t>(op.limit));
        while (q.step()) {
          auto d = delivery_of(q);
          d.url = q.text(13);
          d.secret = q.text(14);
          d.next_attempt_us = std::max(op.lease_us, op.now_us);
          out.deliveries.push_back(std::move(d));
        }
        for (const auto& d : out.deliveries)
          prepare("UPDATE webhook_deliveries SET next_attempt_us = ?1 WHERE id = ?2")
            .bind(1, d.next_attempt_us)
            .bind(2, d.id)
            .step();
      });
      break;
    }
    case k::backlog: { // one node: every shard is its own
      auto q = prepare("SELECT count(*), coalesce(min(created_us), 0), coalesce(sum(next_attempt_us <= ?1), 0) "
                       "FROM webhook_deliveries WHERE status = 'pending'");
      q.bind(1, op.now_us);
      if (q.step()) {
        out.pending = q.integer(0);
        out.oldest_pending_us = q.integer(1);
        out.due_now = q.integer(2);
      }
      break;
    }
    case k::record: {
      write_transaction([&] {
        for (const auto& d : op.deliveries)
          prepare("UPDATE webhook_deliveries SET status = ?1, attempts = ?2, next_attempt_us = ?3, last_status = ?4, "
                  "last_error = ?5, updated_us = ?6 WHERE id = ?7 AND status = 'pending'")
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

actors::idempotency_result sqlite_backend::idempotency(const idempotency_op& op) {
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

actors::user_data sqlite_backend::user_data(const user_data_op& op) {
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
      write_event(t, op.tenant_id, "user", op.user_id, 0, op.now_us);
    write_audit(op.audit);
  });
  return out;
}

audit_page sqlite_backend::audit(const audit_op& op) {
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

plugin_result sqlite_backend::plugins(const plugin_op& op) {
  using k = plugin_op::kind;
  plugin_result out;
  auto read = [&](stmt& q) {
    while (q.step())
      out.rows.push_back(plugin_row{q.text(0), q.text(1), q.text(3), q.integer(2)});
  };
  static const std::string cols = "SELECT name, version, published_us, state FROM plugin_versions ";
  static const std::string cursor_cols = "SELECT tenant_id, plugin, position, paused, attempts, next_attempt_us, "
                                         "last_error, updated_us FROM plugin_cursors ";
  auto read_cursors = [&](stmt& q) {
    while (q.step())
      out.cursors.push_back(plugin_cursor{q.text(0), q.text(1), q.integer(2), q.integer(3) != 0,
                                          static_cast<std::int32_t>(q.integer(4)), q.integer(5), q.text(6),
                                          q.integer(7)});
  };
  switch (op.what) {
    case k::publish: {
      const auto& r = op.row;
      write_transaction([&] {
        auto q = prepare("INSERT INTO plugin_versions (name, version, published_us, state) VALUES (?1, ?2, ?3, ?4) "
                         "ON CONFLICT DO NOTHING");
        q.bind(1, r.name).bind(2, r.version).bind(3, r.published_us).bind_blob(4, r.state).step();
        if (q.changes() == 0) {
          out.status = store_status::duplicate;
          return;
        }
        write_audit(op.audit);
      });
      break;
    }
    case k::list: {
      auto q = prepare(cols +
                       "WHERE name IN (SELECT DISTINCT name FROM plugin_versions WHERE name > ?1 "
                       "ORDER BY name LIMIT ?2) ORDER BY name, published_us, version");
      q.bind(1, op.after).bind(2, static_cast<std::int64_t>(op.limit));
      read(q);
      break;
    }
    case k::versions: {
      auto q = prepare(cols + "WHERE name = ?1 ORDER BY published_us, version");
      q.bind(1, op.name);
      read(q);
      break;
    }
    case k::get: {
      auto q = prepare(cols + "WHERE name = ?1 AND version = ?2");
      q.bind(1, op.name).bind(2, op.version);
      read(q);
      if (out.rows.empty())
        out.status = store_status::not_found;
      break;
    }
    case k::cursor: {
      auto q = prepare(cursor_cols + "WHERE tenant_id = ?1 AND plugin = ?2");
      q.bind(1, op.tenant_id).bind(2, op.name);
      read_cursors(q);
      if (out.cursors.empty())
        out.status = store_status::not_found;
      break;
    }
    case k::due_cursors: { // one node: every shard is its own
      auto q = prepare(cursor_cols +
                       "c WHERE paused = 0 AND next_attempt_us <= ?1 AND EXISTS (SELECT 1 FROM outbox o "
                       "WHERE o.tenant_id = c.tenant_id AND o.seq > c.position) LIMIT ?2");
      q.bind(1, op.now_us).bind(2, static_cast<std::int64_t>(op.limit));
      read_cursors(q);
      break;
    }
    case k::advance: {
      if (op.cursors.empty()) {
        out.status = store_status::error;
        break;
      }
      const auto& c = op.cursors.front();
      write_transaction([&] {
        auto q = prepare("UPDATE plugin_cursors SET position = ?3, attempts = ?4, next_attempt_us = ?5, "
                         "last_error = ?6, updated_us = ?7 WHERE tenant_id = ?1 AND plugin = ?2 AND position = ?8");
        q.bind(1, c.tenant_id)
          .bind(2, c.plugin)
          .bind(3, c.position)
          .bind(4, static_cast<std::int64_t>(c.attempts))
          .bind(5, c.next_attempt_us)
          .bind(6, c.last_error)
          .bind(7, c.updated_us)
          .bind(8, op.position)
          .step();
        if (q.changes() == 0) {
          out.status = store_status::stale;
          return;
        }
        for (const auto& d : op.dead_letters)
          prepare("INSERT INTO plugin_dead_letters (id, tenant_id, plugin, position, event_id, event_type, event, "
                  "error, attempts, created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .bind(1, d.id)
            .bind(2, d.tenant_id)
            .bind(3, d.plugin)
            .bind(4, d.position)
            .bind(5, d.event_id)
            .bind(6, d.event_type)
            .bind_blob(7, d.event)
            .bind(8, d.error)
            .bind(9, static_cast<std::int64_t>(d.attempts))
            .bind(10, d.created_us)
            .step();
      });
      break;
    }
    case k::kv_get: {
      auto q = prepare("SELECT key, value FROM plugin_kv WHERE tenant_id = ?1 AND plugin = ?2 AND key = ?3");
      q.bind(1, op.tenant_id).bind(2, op.name).bind(3, op.version);
      if (q.step())
        out.kv.push_back(plugin_kv{q.text(0), q.text(1)});
      else
        out.status = store_status::not_found;
      break;
    }
    case k::kv_list: {
      // The prefix compared as bytes (substr of a blob counts bytes, of text characters).
      auto q = prepare("SELECT key, value FROM plugin_kv WHERE tenant_id = ?1 AND plugin = ?2 AND key > ?3 "
                       "AND substr(CAST(key AS BLOB), 1, ?4) = ?5 ORDER BY key LIMIT ?6");
      q.bind(1, op.tenant_id)
        .bind(2, op.name)
        .bind(3, op.after)
        .bind(4, static_cast<std::int64_t>(op.version.size()))
        .bind_blob(5, op.version)
        .bind(6, static_cast<std::int64_t>(op.limit));
      while (q.step())
        out.kv.push_back(plugin_kv{q.text(0), q.text(1)});
      break;
    }
    case k::effects: {
      const auto& e = op.effects;
      write_transaction([&] {
        auto last = last_writes(e);
        if (!last.empty()) {
          auto total = prepare("SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) + 64), 0) "
                               "FROM plugin_kv WHERE tenant_id = ?1 AND plugin = ?2");
          total.bind(1, op.tenant_id).bind(2, op.name);
          std::int64_t bytes = total.step() ? total.integer(0) : 0;
          for (const auto& [key, value] : last) {
            auto cur = prepare("SELECT length(CAST(value AS BLOB)) FROM plugin_kv WHERE tenant_id = ?1 AND "
                               "plugin = ?2 AND key = ?3");
            cur.bind(1, op.tenant_id).bind(2, op.name).bind(3, key);
            if (cur.step())
              bytes -= kv_footprint(key.size(), static_cast<std::size_t>(cur.integer(0)));
            if (*value)
              bytes += kv_footprint(key.size(), (*value)->size());
          }
          if (!within_quota(bytes, e, out))
            return; // nothing written
        }
        auto now = protocol::now_us();
        for (const auto& [key, value] : last) {
          if (*value)
            prepare("INSERT INTO plugin_kv (tenant_id, plugin, key, value, updated_us) VALUES (?1, ?2, ?3, ?4, ?5) "
                    "ON CONFLICT (tenant_id, plugin, key) DO UPDATE SET value = excluded.value, "
                    "updated_us = excluded.updated_us")
              .bind(1, op.tenant_id)
              .bind(2, op.name)
              .bind(3, key)
              .bind(4, **value)
              .bind(5, now)
              .step();
          else
            prepare("DELETE FROM plugin_kv WHERE tenant_id = ?1 AND plugin = ?2 AND key = ?3")
              .bind(1, op.tenant_id)
              .bind(2, op.name)
              .bind(3, key)
              .step();
        }
        for (const auto& ev : e.events)
          write_event(ev, op.tenant_id, "plugin", op.name, 0, now);
      });
      break;
    }
    case k::dead_letters: {
      auto q = prepare("SELECT id, tenant_id, plugin, position, event_id, event_type, event, error, attempts, "
                       "created_us FROM plugin_dead_letters WHERE tenant_id = ?1 AND plugin = ?2 AND id > ?3 "
                       "ORDER BY id LIMIT ?4");
      q.bind(1, op.tenant_id).bind(2, op.name).bind(3, op.after).bind(4, static_cast<std::int64_t>(op.limit));
      while (q.step())
        out.dead_letters.push_back(plugin_dead_letter{q.text(0), q.text(1), q.text(2), q.integer(3), q.text(4),
                                                      q.text(5), q.text(6), q.text(7),
                                                      static_cast<std::int32_t>(q.integer(8)), q.integer(9)});
      break;
    }
  }
  return out;
}

} // namespace colony::adapters::store::lite
