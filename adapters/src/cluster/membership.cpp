#include "membership.hpp"

#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace colony::adapters::cluster {

namespace {

std::string interval(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " milliseconds"; }

std::string int_array(const std::vector<std::uint32_t>& xs) {
  std::string s = "{";
  for (std::size_t i = 0; i < xs.size(); ++i)
    s += (i ? "," : "") + std::to_string(xs[i]);
  return s + "}";
}

// The cluster's version row, locked until the transaction ends: every
// membership change takes it first, so changes are totally ordered.
void lock_version(pqxx::work& w, const std::string& cluster) {
  w.exec_params("SELECT version FROM cluster_version WHERE cluster_id = $1 FOR UPDATE", cluster);
}
void bump_version(pqxx::work& w, const std::string& cluster) {
  w.exec_params("UPDATE cluster_version SET version = version + 1, updated_at = now() WHERE cluster_id = $1", cluster);
}

constexpr const char* now_ms = "(EXTRACT(EPOCH FROM now()) * 1000)::bigint";

} // namespace

struct membership_table::connection {
  explicit connection(const std::string& dsn) : c(dsn) {}
  pqxx::connection c;
};

membership_table::membership_table(std::string dsn, self_info me, const runtime::node_config& cfg)
  : dsn_(std::move(dsn)), me_(std::move(me)), cfg_(cfg) {}

membership_table::~membership_table() = default;

bool membership_table::connected() const { return conn_ && conn_->c.is_open(); }

void membership_table::connect() {
  conn_.reset();
  auto holder = std::make_unique<connection>(dsn_);
  auto* c = &holder->c;
  {
    pqxx::nontransaction n{*c};
    // A membership statement never waits long: the manager's next tick tries again.
    n.exec("SET statement_timeout = '3s'");
    n.exec("SET lock_timeout = '2s'");
    n.exec("SET idle_in_transaction_session_timeout = '5s'");
  }
  pqxx::work w{*c};
  w.exec_params("INSERT INTO cluster_version (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING", me_.cluster);
  w.exec_params("INSERT INTO shard_owner (cluster_id, shard_id) SELECT $1, g FROM generate_series(0, $2) g "
                "ON CONFLICT DO NOTHING",
                me_.cluster, static_cast<int>(rc::shard_count - 1));
  w.commit();
  conn_ = std::move(holder);
}

void membership_table::join(const std::string& caf_node_id) {
  pqxx::work w{conn_->c};
  lock_version(w, me_.cluster);
  auto live = w.exec_params("SELECT generation FROM cluster_member WHERE cluster_id = $1 AND node_name = $2 "
                            "AND status < 4 FOR UPDATE",
                            me_.cluster, me_.node_name);
  for (const auto& row : live)
    if (row[0].as<std::int64_t>() > me_.generation)
      throw std::runtime_error("a newer incarnation of node '" + me_.node_name + "' is live");
  // The older-clone rule: a live row of this name is a previous process.
  w.exec_params("UPDATE cluster_member SET status = 4, dead_at = now(), dead_reason = 'superseded' "
                "WHERE cluster_id = $1 AND node_name = $2 AND status < 4",
                me_.cluster, me_.node_name);
  w.exec_params("INSERT INTO cluster_member (cluster_id, incarnation, node_name, generation, address, http_address, "
                "caf_node_id, status, lease_until, renewed_at) "
                "VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, 1, now() + $8::interval, now())",
                me_.cluster, me_.incarnation, me_.node_name, me_.generation, me_.advertise, me_.http, caf_node_id,
                interval(cfg_.cluster_lease));
  bump_version(w, me_.cluster);
  w.commit();
}

std::optional<std::int64_t> membership_table::renew() {
  pqxx::nontransaction n{conn_->c};
  auto r = n.exec_params("UPDATE cluster_member SET lease_until = now() + $3::interval, renewed_at = now() "
                         "WHERE cluster_id = $1 AND incarnation = $2::uuid AND status < 4 "
                         "RETURNING (SELECT version FROM cluster_version WHERE cluster_id = $1)",
                         me_.cluster, me_.incarnation, interval(cfg_.cluster_lease));
  if (r.empty())
    return std::nullopt;
  return r[0][0].as<std::int64_t>();
}

std::shared_ptr<routing> membership_table::read() {
  auto out = std::make_shared<routing>();
  out->owner.fill(-1);
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> t{conn_->c};
  out->version =
    t.exec_params("SELECT version FROM cluster_version WHERE cluster_id = $1", me_.cluster)[0][0].as<std::int64_t>();
  auto rows = t.exec_params(
    std::string{"SELECT incarnation::text, node_name, generation, address, http_address, status, "
                "(EXTRACT(EPOCH FROM (lease_until - now())) * 1000)::bigint, coalesce(dead_reason, ''), "
                "(SELECT coalesce(string_agg(v->>'by', ','), '') FROM jsonb_array_elements(suspect_times) v "
                " WHERE (v->>'at')::bigint > "} +
      now_ms +
      " - $2) "
      "FROM cluster_member WHERE cluster_id = $1 AND (status < 4 OR dead_at > now() - interval '10 minutes') "
      "ORDER BY status = 4, node_name, generation DESC",
    me_.cluster, static_cast<std::int64_t>(cfg_.cluster_vote_expiry.count()));
  std::unordered_map<std::string, std::int16_t> index;
  for (const auto& row : rows) {
    member m;
    m.incarnation = row[0].as<std::string>();
    m.node_name = row[1].as<std::string>();
    m.generation = row[2].as<std::int64_t>();
    m.address = row[3].as<std::string>();
    m.http = row[4].as<std::string>();
    m.state = static_cast<status>(row[5].as<int>());
    m.lease_ms = row[6].as<std::int64_t>();
    m.dead_reason = row[7].as<std::string>();
    std::stringstream voters{row[8].as<std::string>()};
    for (std::string v; std::getline(voters, v, ',');)
      if (!v.empty())
        m.voters.push_back(v);
    if (auto colon = m.address.rfind(':'); colon != std::string::npos) {
      m.host = m.address.substr(0, colon);
      m.port = static_cast<std::uint16_t>(std::stoi(m.address.substr(colon + 1)));
    }
    index.emplace(m.incarnation, static_cast<std::int16_t>(out->members.size()));
    if (m.incarnation == me_.incarnation)
      out->self = static_cast<int>(out->members.size());
    out->members.push_back(std::move(m));
  }
  auto shards = t.exec_params(
    "SELECT shard_id, coalesce(owner::text, ''), epoch FROM shard_owner WHERE cluster_id = $1", me_.cluster);
  for (const auto& row : shards) {
    auto s = row[0].as<std::uint32_t>();
    if (s >= rc::shard_count)
      continue;
    auto it = index.find(row[1].as<std::string>());
    out->owner[s] = it == index.end() ? std::int16_t{-1} : it->second;
    out->epoch[s] = row[2].as<std::int64_t>();
  }
  t.commit();
  return out;
}

void membership_table::set_status(status s, const std::string& reason) {
  pqxx::work w{conn_->c};
  lock_version(w, me_.cluster);
  auto r = w.exec_params("UPDATE cluster_member SET status = $3::smallint, dead_reason = nullif($4, ''), "
                         "dead_at = CASE WHEN $3::smallint = 4 THEN now() ELSE dead_at END "
                         "WHERE cluster_id = $1 AND incarnation = $2::uuid AND status < 4",
                         me_.cluster, me_.incarnation, static_cast<int>(s), reason);
  if (r.affected_rows() == 0)
    throw std::runtime_error("this incarnation is not live in the membership table");
  bump_version(w, me_.cluster);
  w.commit();
}

std::vector<std::string> membership_table::expire(std::chrono::milliseconds grace) {
  pqxx::work w{conn_->c};
  lock_version(w, me_.cluster);
  auto r = w.exec_params("UPDATE cluster_member SET status = 4, dead_at = now(), dead_reason = 'lease expired' "
                         "WHERE cluster_id = $1 AND status < 4 AND lease_until < now() - $2::interval "
                         "AND incarnation <> $3::uuid RETURNING node_name",
                         me_.cluster, interval(grace), me_.incarnation);
  std::vector<std::string> names;
  for (const auto& row : r)
    names.push_back(row[0].as<std::string>());
  if (!names.empty())
    bump_version(w, me_.cluster);
  w.commit();
  return names;
}

bool membership_table::suspect(const std::string& target) {
  if (target == me_.incarnation)
    return false;
  pqxx::work w{conn_->c};
  lock_version(w, me_.cluster);
  auto expiry = static_cast<std::int64_t>(cfg_.cluster_vote_expiry.count());
  auto r = w.exec_params(
    std::string{"UPDATE cluster_member SET suspect_times = "
                "(SELECT coalesce(jsonb_agg(v), '[]'::jsonb) FROM jsonb_array_elements(suspect_times) v "
                " WHERE v->>'by' <> $3::text AND (v->>'at')::bigint > "} +
      now_ms + " - $4) || jsonb_build_array(jsonb_build_object('by', $3::text, 'at', " + now_ms +
      ")) WHERE cluster_id = $1 AND incarnation = $2::uuid AND status < 4 "
      "AND EXISTS (SELECT 1 FROM cluster_member me WHERE me.cluster_id = $1 AND me.incarnation::text = $3::text "
      "            AND me.status = 2) "
      "RETURNING jsonb_array_length(suspect_times)",
    me_.cluster, target, me_.incarnation, expiry);
  if (r.empty()) {
    w.commit();
    return false;
  }
  auto votes = r[0][0].as<int>();
  auto live = w.exec_params("SELECT count(*) FROM cluster_member WHERE cluster_id = $1 AND status = 2 "
                            "AND lease_until > now()",
                            me_.cluster)[0][0]
                .as<int>();
  bool dead = votes >= rc::votes_needed(live);
  if (dead)
    w.exec_params("UPDATE cluster_member SET status = 4, dead_at = now(), dead_reason = $3 "
                  "WHERE cluster_id = $1 AND incarnation = $2::uuid",
                  me_.cluster, target, "declared dead by " + std::to_string(votes) + " suspicion votes");
  bump_version(w, me_.cluster);
  w.commit();
  return dead;
}

std::vector<std::pair<std::uint32_t, std::int64_t>> membership_table::claim(const std::vector<std::uint32_t>& shards) {
  std::vector<std::pair<std::uint32_t, std::int64_t>> got;
  if (shards.empty())
    return got;
  pqxx::work w{conn_->c};
  auto r =
    w.exec_params("UPDATE shard_owner s SET owner = $2::uuid, epoch = s.epoch + 1, changed_at = now() "
                  "WHERE s.cluster_id = $1 AND s.shard_id = ANY($3::int[]) "
                  "AND (s.owner IS NULL OR NOT EXISTS (SELECT 1 FROM cluster_member m WHERE m.cluster_id = $1 "
                  "     AND m.incarnation = s.owner AND m.status < 4)) "
                  "AND EXISTS (SELECT 1 FROM cluster_member m WHERE m.cluster_id = $1 AND m.incarnation = $2::uuid "
                  "     AND m.status = 2 AND m.lease_until > now()) "
                  "RETURNING s.shard_id, s.epoch",
                  me_.cluster, me_.incarnation, int_array(shards));
  for (const auto& row : r)
    got.emplace_back(row[0].as<std::uint32_t>(), row[1].as<std::int64_t>());
  w.commit();
  return got;
}

std::vector<std::uint32_t> membership_table::hand_off(const std::vector<std::uint32_t>& shards, const std::string& to) {
  std::vector<std::uint32_t> moved;
  if (shards.empty())
    return moved;
  pqxx::work w{conn_->c};
  auto r = w.exec_params("UPDATE shard_owner s SET owner = $3::uuid, epoch = s.epoch + 1, changed_at = now() "
                         "WHERE s.cluster_id = $1 AND s.owner = $2::uuid AND s.shard_id = ANY($4::int[]) "
                         "AND EXISTS (SELECT 1 FROM cluster_member m WHERE m.cluster_id = $1 "
                         "     AND m.incarnation = $3::uuid AND m.status = 2 AND m.lease_until > now()) "
                         "RETURNING s.shard_id",
                         me_.cluster, me_.incarnation, to, int_array(shards));
  for (const auto& row : r)
    moved.push_back(row[0].as<std::uint32_t>());
  w.commit();
  return moved;
}

int membership_table::release_all() {
  pqxx::work w{conn_->c};
  auto r = w.exec_params("UPDATE shard_owner SET owner = NULL, epoch = epoch + 1, changed_at = now() "
                         "WHERE cluster_id = $1 AND owner = $2::uuid",
                         me_.cluster, me_.incarnation);
  w.commit();
  return static_cast<int>(r.affected_rows());
}

drain_outcome membership_table::set_drain(const std::string& node_name, bool on) {
  drain_outcome out;
  pqxx::work w{conn_->c};
  lock_version(w, me_.cluster);
  auto row = w.exec_params("SELECT incarnation::text, status, coalesce(dead_reason, '') "
                           "FROM cluster_member WHERE cluster_id = $1 AND node_name = $2 AND status < 4",
                           me_.cluster, node_name);
  if (row.empty()) {
    out.code = 404;
    out.error = "no live member is named '" + node_name + "'";
    return out;
  }
  out.incarnation = row[0][0].as<std::string>();
  auto st = static_cast<status>(row[0][1].as<int>());
  auto reason = row[0][2].as<std::string>();
  out.status = to_string(st);
  if (on) {
    if (st == status::draining)
      return out; // already
    if (st != status::active) {
      out.code = 409;
      out.error = "member '" + node_name + "' is " + out.status + ", not active";
      return out;
    }
    auto others = w.exec_params("SELECT count(*) FROM cluster_member WHERE cluster_id = $1 AND status = 2 "
                                "AND lease_until > now() AND incarnation <> $2::uuid",
                                me_.cluster, out.incarnation)[0][0]
                    .as<int>();
    if (others == 0) {
      out.code = 409;
      out.error = "member '" + node_name + "' is the last active member: its shards would have nowhere to go";
      return out;
    }
  } else {
    if (st == status::active) {
      out.code = 200;
      return out; // nothing to undo
    }
    if (st != status::draining || reason != drain_requested) {
      out.code = 409;
      out.error = "member '" + node_name + "' is " + out.status + (st == status::draining ? " to stop" : "") +
        ", which an undrain cannot undo";
      return out;
    }
  }
  w.exec_params("UPDATE cluster_member SET status = $3::smallint, dead_reason = nullif($4, '') "
                "WHERE cluster_id = $1 AND incarnation = $2::uuid",
                me_.cluster, out.incarnation, static_cast<int>(on ? status::draining : status::active),
                std::string{on ? drain_requested : ""});
  bump_version(w, me_.cluster);
  w.commit();
  out.status = to_string(on ? status::draining : status::active);
  return out;
}

std::int64_t membership_table::force_claim(std::uint32_t shard) {
  pqxx::work w{conn_->c};
  auto r = w.exec_params("UPDATE shard_owner SET owner = $2::uuid, epoch = epoch + 1, changed_at = now() "
                         "WHERE cluster_id = $1 AND shard_id = $3 RETURNING epoch",
                         me_.cluster, me_.incarnation, shard);
  w.commit();
  return r.empty() ? 0 : r[0][0].as<std::int64_t>();
}

} // namespace colony::adapters::cluster
