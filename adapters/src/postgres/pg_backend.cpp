#include "pg_backend.hpp"

namespace colony::adapters::store::pg {

void pg_backend::open() {
  try {
    conn_.reset();
    prepared_.clear();
    conn_ = std::make_unique<pqxx::connection>(dsn_);
    // A process frozen inside a transaction (SIGSTOP, a long GC-like pause)
    // must not hold its shard locks for ever: PostgreSQL ends such a session,
    // so a claim of its shards waits at most this long (docs/clustering.md).
    pqxx::nontransaction n{*conn_};
    n.exec("SET idle_in_transaction_session_timeout = '5s'");
  } catch (const std::exception& e) {
    conn_.reset();
    throw unavailable_error(std::string{"cannot connect to PostgreSQL: "} + first_line(e.what()));
  }
}

void pg_backend::migrate() {
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

void pg_backend::ping() {
  guard([&] {
    pqxx::nontransaction n{*conn_};
    n.exec("SELECT 1");
  });
}

loaded pg_backend::load(const entity_key& key) {
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

std::vector<loaded> pg_backend::load_many(const std::vector<entity_key>& keys) {
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

void pg_backend::order_outbox(pqxx::transaction_base& t) {
  if (fence_) // the key: "colony" in ASCII, the outbox's commit order
    t.exec("SELECT pg_advisory_xact_lock(109330211761785)");
}

std::vector<fence_pass> pg_backend::fenced(pqxx::transaction_base& t, const std::vector<change>& batch) {
  order_outbox(t); // first: every commit of a batch takes it (the fence's row locks come after)
  std::vector<fence_pass> out(batch.size());
  if (!fence_ || !fence_->armed())
    return out;
  std::vector<std::int32_t> shards(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i)
    shards[i] = static_cast<std::int32_t>(runtime::cluster::shard_of(batch[i].row.tenant_id));
  auto r = t.exec_params("SELECT shard_id, epoch FROM shard_owner WHERE cluster_id = $1 AND owner = $2::uuid "
                         "AND shard_id = ANY($3::int[]) FOR SHARE",
                         fence_->cluster(), fence_->incarnation(), int_array(shards));
  std::unordered_map<std::int32_t, std::int64_t> owned;
  for (const auto& row : r)
    owned[row[0].as<std::int32_t>()] = row[1].as<std::int64_t>();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto it = owned.find(shards[i]);
    out[i].ok = it != owned.end();
    if (out[i].ok)
      out[i].epoch = it->second;
  }
  return out;
}

std::vector<commit_outcome> pg_backend::commit(const std::vector<change>& batch) {
  return guard([&] {
    // Fast path for the common batch, user creations only: the whole batch
    // as one multi-statement round trip (multi-row INSERTs), instead of
    // five round trips per change. Any constraint violation rolls it all
    // back and the per-change path below finds out which change it was; so
    // does a batch the cluster fence refuses in part.
    if (batch.size() > 1 && std::all_of(batch.begin(), batch.end(), plain_user_insert)) {
      try {
        pqxx::work w{*conn_};
        auto allowed = fenced(w, batch);
        if (std::all_of(allowed.begin(), allowed.end(), [](const fence_pass& f) { return f.ok; })) {
          copy_user_inserts(w, batch, allowed);
          w.commit();
          return std::vector<commit_outcome>(batch.size());
        }
      } catch (const pqxx::integrity_constraint_violation&) {
        // fall through: one by one, with savepoints
      }
    }
    std::vector<commit_outcome> out;
    out.reserve(batch.size());
    pqxx::work w{*conn_};
    auto allowed = fenced(w, batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& ch = batch[i];
      commit_outcome o;
      if (!allowed[i].ok) { // another node owns the shard: nothing of this change is written
        o.status = store_status::moved;
        o.detail = "shard " + std::to_string(runtime::cluster::shard_of(ch.row.tenant_id)) + " is not owned here";
        out.push_back(std::move(o));
        continue;
      }
      // Explicit savepoints: one failing change must not abort the others.
      // (pqxx::subtransaction left the transaction aborted after a caught
      // unique_violation in libpqxx 6.4.)
      w.exec("SAVEPOINT c");
      try {
        if (!ch.message_key.empty()) // first: a redelivery is a duplicate, whatever else it would hit
          w.exec_params("INSERT INTO processed_messages (message_key, applied_us) VALUES ($1, $2)", ch.message_key,
                        protocol::now_us());
        o = apply(w, ch, allowed[i].epoch);
        if (o.status == store_status::ok && !ch.idempotency_scope.empty())
          w.exec_params("UPDATE idempotency_keys SET state = 'committed', ref_kind = $2, ref_tenant = $3, "
                        "ref_id = $4 WHERE scope = $1 AND state = 'running'",
                        ch.idempotency_scope, static_cast<int>(ch.kind), ch.row.tenant_id, ch.row.id);
      } catch (const pqxx::unique_violation& e) {
        o.status = store_status::duplicate;
        o.field = store::duplicate_field(e.what());
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

row_page pg_backend::list(const list_query& q) {
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

bool pg_backend::processed(const std::string& message_key) {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    return !n.exec_params("SELECT 1 FROM processed_messages WHERE message_key = $1", message_key).empty();
  });
}

std::string pg_backend::resolve_external(const std::string& system, const std::string& id) {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    auto r = n.exec_params("SELECT tenant_id FROM external_ids WHERE system = $1 AND external_id = $2", system, id);
    return r.empty() ? std::string{} : r[0][0].as<std::string>();
  });
}

std::string pg_backend::resolve_slug(const std::string& slug) {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    auto r = n.exec_params("SELECT id FROM tenants WHERE slug = $1", slug);
    return r.empty() ? std::string{} : r[0][0].as<std::string>();
  });
}

event_page pg_backend::events(const event_query& q) {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    pqxx::result r;
    if (q.unpublished_only)
      r = n.exec_params("SELECT seq, payload FROM outbox WHERE published_us IS NULL AND seq > $1 ORDER BY seq "
                        "LIMIT $2",
                        q.after, q.limit);
    else if (q.latest && q.tenant_id.empty())
      r = n.exec_params("SELECT seq, payload FROM (SELECT seq, payload FROM outbox ORDER BY seq DESC LIMIT $1) t "
                        "ORDER BY seq",
                        q.limit);
    else if (q.latest)
      r = n.exec_params("SELECT seq, payload FROM (SELECT seq, payload FROM outbox WHERE tenant_id = $2 ORDER BY seq "
                        "DESC LIMIT $1) t ORDER BY seq",
                        q.limit, q.tenant_id);
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

void pg_backend::mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) {
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

outbox_backlog pg_backend::backlog() {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    auto r = n.exec("SELECT count(*), coalesce(min(created_us), 0) FROM outbox WHERE published_us IS NULL");
    outbox_backlog b;
    b.count = r[0][0].as<std::int64_t>();
    b.oldest_us = r[0][1].as<std::int64_t>();
    return b;
  });
}

timer_page pg_backend::due_timers(std::int64_t now_us, std::int32_t limit, const actors::shard_scope& scope) {
  return guard([&] {
    pqxx::nontransaction n{*conn_};
    auto shards = int_array(scope.shards);
    auto r = n.exec_params("SELECT id, kind, tenant_id, target_id, due_us, attempts, payload FROM timers "
                           "WHERE due_us <= $1 AND ($3 OR shard = ANY($4::int[]) OR ($5 AND shard IS NULL)) "
                           "ORDER BY due_us LIMIT $2",
                           now_us, limit, scope.all, shards, scope.unsharded);
    timer_page page;
    for (const auto& row : r)
      page.rows.push_back(timer_row{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                                    row[3].as<std::string>(), row[4].as<std::int64_t>(), row[5].as<std::int32_t>(),
                                    row[6].as<std::string>()});
    return page;
  });
}

void pg_backend::timer_done(const std::string& id, std::int64_t due_us) {
  guard([&] {
    pqxx::work w{*conn_};
    w.exec_params("DELETE FROM timers WHERE id = $1 AND due_us = $2", id, due_us);
    w.commit();
    return 0;
  });
}

void pg_backend::timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) {
  guard([&] {
    pqxx::work w{*conn_};
    w.exec_params("UPDATE timers SET due_us = $1, attempts = $2 WHERE id = $3", due_us, attempts, id);
    w.commit();
    return 0;
  });
}

} // namespace colony::adapters::store::pg

namespace colony::adapters::store {

std::unique_ptr<backend> make_postgres_backend(const std::string& dsn,
                                               std::shared_ptr<const runtime::cluster::write_fence> fence) {
  return std::make_unique<pg::pg_backend>(dsn, std::move(fence));
}

} // namespace colony::adapters::store
