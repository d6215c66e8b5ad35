// A blocking database connection behind the store worker actors. One instance
// per connection, used by one worker (one thread at a time).
#pragma once

#include "colony/actors/user/personal_data.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/cluster.hpp"

namespace colony::adapters::store {

/// The database cannot be reached (connection refused or lost). Retry later.
struct unavailable_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One repository interface per store port (actors/ports/*.hpp); a backend
// implements them all on one connection. A new concern is a new repository
// here, its port, its worker handler and its two dialect files.

class entity_repository {
public:
  virtual ~entity_repository() = default;
  virtual actors::loaded load(const actors::entity_key& key) = 0;
  /// Several loads in one go (one round trip where the database allows);
  /// answers in the order of `keys`. By default one load after the other.
  virtual std::vector<actors::loaded> load_many(const std::vector<actors::entity_key>& keys) {
    std::vector<actors::loaded> out;
    out.reserve(keys.size());
    for (const auto& k : keys)
      out.push_back(load(k));
    return out;
  }
  /// Commits all changes in one transaction; each change in its own savepoint,
  /// so one failing change does not fail the others.
  virtual std::vector<actors::commit_outcome> commit(const std::vector<actors::change>& batch) = 0;
  virtual actors::row_page list(const actors::list_query& q) = 0;
  virtual std::string resolve_slug(const std::string& slug) = 0;
  virtual std::string resolve_external(const std::string& system, const std::string& id) = 0;
  virtual bool processed(const std::string& message_key) = 0;
};

class outbox_repository {
public:
  virtual ~outbox_repository() = default;
  virtual actors::event_page events(const actors::event_query& q) = 0;
  /// Marks the outbox rows at these positions as published at `at_us`.
  virtual void mark_published(const std::vector<std::int64_t>& positions, std::int64_t at_us) = 0;
  virtual actors::outbox_backlog backlog() = 0;
};

class timer_repository {
public:
  virtual ~timer_repository() = default;
  virtual actors::timer_page due_timers(std::int64_t now_us, std::int32_t limit, const actors::shard_scope& scope) = 0;
  /// Deletes the timer if it is still due at `due_us` (not moved meanwhile).
  virtual void timer_done(const std::string& id, std::int64_t due_us) = 0;
  virtual void timer_retry(const std::string& id, std::int64_t due_us, std::int32_t attempts) = 0;
};

class webhook_repository {
public:
  virtual ~webhook_repository() = default;
  virtual actors::webhook_result webhooks(const actors::webhook_op& op) = 0;
};

class credential_repository {
public:
  virtual ~credential_repository() = default;
  virtual actors::api_key_result api_keys(const actors::api_key_op& op) = 0;
};

class usage_repository {
public:
  virtual ~usage_repository() = default;
  /// Adds (in one transaction) or reads metered API calls.
  virtual actors::api_usage_result api_usage(const actors::api_usage_op& op) = 0;
};

class audit_repository {
public:
  virtual ~audit_repository() = default;
  /// Appends audit records (one transaction) or reads a page of them.
  virtual actors::audit_page audit(const actors::audit_op& op) = 0;
};

class personal_data_repository {
public:
  virtual ~personal_data_repository() = default;
  /// GDPR export or erasure of one user (erasure in one transaction).
  virtual actors::user_data user_data(const actors::user_data_op& op) = 0;
};

class idempotency_repository {
public:
  virtual ~idempotency_repository() = default;
  /// Idempotency-Key records; begin decides in one transaction.
  virtual actors::idempotency_result idempotency(const actors::idempotency_op& op) = 0;
};

class plugin_repository {
public:
  virtual ~plugin_repository() = default;
  /// The plugin registry: publish (with its audit, one transaction) or read versions.
  virtual actors::plugin_result plugins(const actors::plugin_op& op) = 0;
};

class backend : public entity_repository,
                public outbox_repository,
                public timer_repository,
                public webhook_repository,
                public credential_repository,
                public usage_repository,
                public audit_repository,
                public personal_data_repository,
                public idempotency_repository,
                public plugin_repository {
public:
  /// Opens the connection. Throws unavailable_error.
  virtual void open() = 0;
  /// Applies missing migrations in one transaction, recording each. Idempotent.
  virtual void migrate() = 0;
  /// A cheap round trip. Throws unavailable_error.
  virtual void ping() = 0;
};

using backend_factory = std::function<std::unique_ptr<backend>()>;

std::unique_ptr<backend> make_sqlite_backend(const std::string& path);
std::unique_ptr<backend> make_postgres_backend(const std::string& dsn,
                                               std::shared_ptr<const runtime::cluster::write_fence> fence = nullptr);

/// One migration file, embedded at build time.
struct migration {
  int version;
  const char* name;
  const char* sql;
};
const std::vector<migration>& sqlite_migrations();
const std::vector<migration>& postgres_migrations();

/// Builds the SQL for a list query (both dialects use '?'-free numbered
/// placeholders through `placeholder(n)`). Returns SQL and its parameters.
struct list_sql {
  std::string sql;
  std::vector<std::string> text_params; // all parameters are bound as text or int64
  std::vector<bool> is_number;
};
/// The field a unique violation of an entity commit is about, from the
/// violated constraint's name as the database reports it: PostgreSQL's
/// `duplicate key value violates unique constraint "users_tenant_id_email_lc_key"`
/// or SQLite's `UNIQUE constraint failed: users.tenant_id, users.email_lc`.
/// "slug", "email", "message_key", or "id" (a primary key, or a constraint
/// this list does not know).
std::string duplicate_field(std::string_view error_text);

/// A list of names in one text column, as both stores keep it: ",a,b," ("" = none).
std::string encode_list(const std::vector<std::string>& items);
std::vector<std::string> decode_list(const std::string& text);

/// An event payload with the user's personal data removed (the rule is the domain's).
using actors::scrub_user_event;
/// The JSON of an event payload, as webhook deliveries carry it.
std::string event_json(const std::string& payload);

list_sql build_list_sql(const actors::list_query& q, const std::function<std::string(int)>& placeholder);

/// colony.kv effects: the last write of each key (the one that counts), by key.
inline std::map<std::string, const std::optional<std::string>*> last_writes(const actors::plugin_effects& e) {
  std::map<std::string, const std::optional<std::string>*> last;
  for (const auto& w : e.writes)
    last[w.key] = &w.value;
  return last;
}

/// Whether the store would hold `bytes` within the effects' quota; records
/// them in `out`, and (false) marks it over quota, nothing to be written.
inline bool within_quota(std::int64_t bytes, const actors::plugin_effects& e, actors::plugin_result& out) {
  out.kv_bytes = bytes;
  if (bytes <= e.quota)
    return true;
  out.over_quota = true;
  out.status = actors::store_status::error;
  return false;
}

} // namespace colony::adapters::store
