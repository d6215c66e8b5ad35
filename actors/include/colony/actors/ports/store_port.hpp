// store_port: the contract between entity actors (and the read side of the API)
// and a persistent store. Implemented by the SQLite and PostgreSQL adapters.
//
// - load: an entity's last committed state (protobuf bytes) and version.
// - commit: one entity change plus its outbox events, atomically; the adapter
//   may group many concurrent commits into one transaction (group commit), but
//   each change succeeds or fails on its own.
// - list: a page of tenants or users for the read side (keyset pagination).
// - resolve: tenant slug → id; (system, external id) → tenant id.
// - events: committed outbox rows in commit order (the event feed, the relay).
// - published: marks outbox rows as delivered to Kafka.
// - backlog: how many outbox rows wait for the relay, and since when.
// - timers: due durable timers; timer_done deletes one (if still at that due
//   time), timer_retry moves it later and counts the attempt.
// - api_key: create, list, read, revoke API keys (hashes only).
// - usage: API calls metered per tenant and month (batched increments).
// - audit: append audit records without a change, or read them (newest first).
// - user_data: GDPR export of one user's data, or its erasure.
// - health: whether the database answers, and why not.
#pragma once

#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::actors {

enum class store_status : std::uint8_t {
  ok = 1,
  not_found,   // no such row (load), or the row to update/delete is gone
  stale,       // optimistic concurrency: the row's version is not the expected one
  duplicate,   // a unique constraint: `field` names it (slug, email)
  unavailable, // the database cannot be reached; retry later
  error,       // anything else; detail is for logs, never for clients
};

/// One audit record: who did what to which target, and how it ended. Written
/// in the same transaction as the change it describes where there is one.
/// Never updated; erasure (GDPR) blanks personal details only.
struct audit_record {
  std::int64_t position = 0; // assigned by the store, in commit order
  std::string id;            // UUIDv7
  std::string tenant_id;     // empty: platform-level
  std::int64_t at_us = 0;
  std::string actor;  // "api_key:<id>", "jwt:<iss>#<sub>", "stripe", "kafka", "anonymous"
  std::string action; // "user.created", "api_key.revoked", "auth.failed", "access.denied", ...
  std::string target; // "user:<id>", "tenant:<id>", "api_key:<id>", or METHOD path
  std::string request_id;
  std::string client;      // peer address
  std::string outcome;     // success | failure | denied
  std::int32_t status = 0; // HTTP status, where one is known
  std::string detail;      // short; never a secret
};

/// One outbox row, written in the same transaction as its change.
struct outbox_event {
  std::string id;
  std::string type;
  std::string payload; // colony.v1.Event, serialized
};

/// The indexed columns of an entity next to its serialized state.
struct entity_row {
  std::string tenant_id;
  std::string id;
  std::string unique_key; // tenant: slug; user: lower-cased email
  std::string name;
  std::string status;
  std::string plan;  // tenant only
  std::string roles; // user only: ",admin,member,"
  std::int64_t created_us = 0;
  std::int64_t updated_us = 0;
  std::uint32_t version = 0;
  std::string state; // the colony.v1 message, serialized
};

/// A durable timer. Its id names what it is for (e.g. "trial:<tenantId>"):
/// setting a timer with an existing id moves it.
struct timer_row {
  std::string id;
  std::string kind; // trial_expiry, ...
  std::string tenant_id;
  std::string target_id; // the entity it is addressed to
  std::int64_t due_us = 0;
  std::int32_t attempts = 0;
  std::string payload;
};

struct timer_page {
  store_status status = store_status::ok;
  std::vector<timer_row> rows;
  std::string detail;
};

enum class change_kind : std::uint8_t { insert = 1, update, remove };

struct change {
  entity_kind kind = entity_kind::tenant;
  change_kind what = change_kind::insert;
  entity_row row;                     // for remove: tenant_id and id suffice
  std::uint32_t expected_version = 0; // update/remove: the version being replaced
  std::int32_t user_count_delta = 0;  // applied to the user's tenant in the same transaction
  std::vector<outbox_event> events;
  std::vector<timer_row> timers; // set (insert or move) in the same transaction
  std::string message_key;       // non-empty: the change applies at most once per key (duplicate otherwise)
  std::vector<std::pair<std::string, std::string>> external_ids; // (system, id) → this tenant
  std::vector<audit_record> audit;                               // written with the change, only if it commits
  std::string idempotency_scope; // non-empty: marks that Idempotency-Key's row committed, in this transaction
};

struct commit_outcome {
  store_status status = store_status::ok;
  std::string field;  // for duplicate: which unique field
  std::string detail; // for logs
};

struct loaded {
  store_status status = store_status::ok;
  std::string state;
  std::uint32_t version = 0;
  std::int32_t user_count = 0; // tenants only
  std::string detail;
};

/// A page request of the read side. Sort is by (sort_field, id); `after_*` is
/// the keyset position of the last row of the previous page.
struct list_query {
  entity_kind kind = entity_kind::tenant;
  std::string tenant_id; // users only
  std::string status;
  std::string plan;                     // tenants only
  std::string role;                     // users only
  std::string q;                        // users only: substring of email or name
  std::string sort_field = "createdAt"; // createdAt | name | slug | email
  bool descending = false;
  bool has_after = false;
  std::string after_text;
  std::int64_t after_number = 0;
  std::string after_id;
  int limit = 50; // the store returns up to limit + 1 rows so the caller knows if more follow
};

struct list_row {
  std::string state;
  std::int32_t user_count = 0;
  std::string sort_text;
  std::int64_t sort_number = 0;
  std::string id;
};

struct row_page {
  store_status status = store_status::ok;
  std::vector<list_row> rows;
  std::string detail;
};

/// A page of committed events after position `after`, in commit order. One
/// writer per store commits, so positions grow in commit order and a reader
/// that resumes after the last position it saw misses nothing.
struct event_query {
  std::string tenant_id; // empty: every tenant
  std::int64_t after = 0;
  int limit = 100;
  bool unpublished_only = false; // the relay's view: not yet acknowledged by Kafka
};

struct event_row {
  std::int64_t position = 0;
  std::string payload; // colony.v1.Event, serialized
};

struct event_page {
  store_status status = store_status::ok;
  std::vector<event_row> rows;
  std::string detail;
};

struct outbox_backlog {
  store_status status = store_status::ok;
  std::int64_t count = 0;     // rows not yet published
  std::int64_t oldest_us = 0; // created_us of the oldest of them; 0 when none
  std::string detail;
};

/// Outbound webhooks: endpoints, deliveries, and the fan-out cursor. One
/// message type with an operation, served by the reader or the writer.
struct webhook_endpoint {
  std::string id;
  std::string tenant_id;
  std::string url;
  std::vector<std::string> event_types; // empty: every event; "tenant.*" matches a prefix
  std::string secret;
  std::string description;
  std::int64_t created_us = 0;
};

struct webhook_delivery {
  std::string id;
  std::string endpoint_id;
  std::string tenant_id;
  std::string event_id;
  std::string event_type;
  std::string body;
  std::string status = "pending"; // pending | delivered | dead
  std::int32_t attempts = 0;
  std::int64_t next_attempt_us = 0;
  std::int32_t last_status = 0; // HTTP status of the last attempt (0: none)
  std::string last_error;
  std::int64_t created_us = 0;
  std::int64_t updated_us = 0;
  std::string url; // due(): the endpoint's URL and secret
  std::string secret;
};

/// Idempotency-Key records (docs/api.md). begin: take the key for a new
/// request, or say why not; finish: store the answer; release: forget the
/// key (the request failed in a way a retry may redo).
struct idempotency_op {
  enum class kind : std::uint8_t { begin, finish, release } what = kind::begin;
  std::string scope;       // hex SHA-256 of credential, route, path and key
  std::string fingerprint; // hex SHA-256 of method, path and body
  std::int64_t now_us = 0;
  std::int64_t expires_us = 0;      // begin: kept until then
  std::int64_t stale_before_us = 0; // begin: a running row started before this was abandoned
  std::int32_t status = 0;          // finish: the answer
  std::string headers;              // finish: JSON object of the headers that matter
  std::string body;                 // finish: sealed
};

struct webhook_op {
  enum class kind : std::uint8_t {
    create_endpoint, // endpoint
    list_endpoints,  // tenant_id
    get_endpoint,    // tenant_id, endpoint_id
    delete_endpoint, // tenant_id, endpoint_id (its pending deliveries die)
    read_cursor,     // cursor → position
    enqueue,         // deliveries + cursor/position, in one transaction
    due,             // now_us, limit → pending deliveries due, with url and secret
    record,          // deliveries (status, attempts, next_attempt_us, last_*)
    list_deliveries, // tenant_id, endpoint_id, after (delivery id), limit
  } what = kind::list_endpoints;
  webhook_endpoint endpoint;
  std::optional<idempotency_op> answer; // create_endpoint: the Idempotency-Key's answer (finish), same transaction
  std::string tenant_id;
  std::string endpoint_id;
  std::string cursor;
  std::int64_t position = 0;
  std::vector<webhook_delivery> deliveries;
  std::int64_t now_us = 0;
  int limit = 100;
  std::string after;
  std::vector<audit_record> audit; // create/delete_endpoint: written in the same transaction
};

struct webhook_result {
  store_status status = store_status::ok;
  std::vector<webhook_endpoint> endpoints;
  std::vector<webhook_delivery> deliveries;
  std::int64_t position = 0;
  std::string detail;
};

/// API keys: only the SHA-256 of a key is stored, never the key. A key
/// without a tenant is a platform key. One message type with an operation.
struct api_key_row {
  std::string id;
  std::string tenant_id; // empty: a platform key
  std::string name;
  std::vector<std::string> roles;
  std::string hash;       // hex SHA-256 of the whole key
  std::string created_by; // credential that made it ("bootstrap" for the first admin key)
  std::int64_t created_us = 0;
  std::int64_t expires_us = 0; // 0: never
  std::int64_t revoked_us = 0; // 0: not revoked
};

struct api_key_op {
  enum class kind : std::uint8_t {
    create,         // key
    list,           // tenant_id (newest first)
    get,            // id (any tenant: for authentication)
    revoke,         // tenant_id, id, now_us (not_found if no such live key)
    count_platform, // live platform keys → count
  } what = kind::list;
  api_key_row key;
  std::optional<idempotency_op> answer; // create: the Idempotency-Key's answer (finish), in the same transaction
  std::string tenant_id;
  std::string id;
  std::int64_t now_us = 0;
  std::vector<audit_record> audit; // create/revoke: written in the same transaction (revoke: only if it revoked)
};

struct api_key_result {
  store_status status = store_status::ok;
  std::vector<api_key_row> keys;
  std::int64_t count = 0;
  std::string detail;
};

/// API calls metered at the HTTP edge, per tenant and month ("2026-11").
/// add: increments by `calls` and answers the new totals; read: the totals.
struct api_usage_row {
  std::string tenant_id;
  std::string month;
  std::int64_t calls = 0;
};

struct api_usage_op {
  bool add = false;
  std::vector<api_usage_row> rows;
};

struct api_usage_result {
  store_status status = store_status::ok;
  std::vector<api_usage_row> rows; // in the order asked
  std::string detail;
};

/// Appends audit records (no change to go with), or reads a page of them,
/// newest first: tenant (empty with all_tenants for the platform's view),
/// filters, and `before` (a position; 0: from the newest).
struct audit_op {
  bool append = false;
  std::vector<audit_record> records;
  std::string tenant_id;
  bool all_tenants = false;
  std::string actor, action, target;
  std::int64_t from_us = 0, to_us = 0; // 0: open
  std::int64_t before = 0;
  int limit = 50;
};

struct audit_page {
  store_status status = store_status::ok;
  std::vector<audit_record> rows;
  std::string detail;
};

/// GDPR: everything stored about one user (export), or its erasure: the
/// user's events lose their personal data (email, name, attributes; ids,
/// roles, status and times stay), so do the webhook deliveries made of them
/// and the details of audit records about the user; a tombstone event and
/// the erasure's own audit record are written in the same transaction.
struct user_data_op {
  bool erase = false;
  std::string tenant_id;
  std::string user_id;
  std::vector<outbox_event> tombstone; // erase: the user.erased event
  std::vector<audit_record> audit;     // erase: the erasure's record
  std::int64_t now_us = 0;
};

struct user_data {
  store_status status = store_status::ok;
  std::vector<std::string> events;  // export: the user's colony.v1.Event payloads, in commit order
  std::vector<audit_record> audit;  // export: records about the user
  std::int64_t events_scrubbed = 0; // erase: how much was changed
  std::int64_t deliveries_scrubbed = 0;
  std::int64_t audit_scrubbed = 0;
  std::string detail;
};

struct idempotency_result {
  store_status status = store_status::ok;
  enum class outcome : std::uint8_t {
    started,   // the key is this request's now: run it
    replay,    // done before: answer status/headers/body
    committed, // the first request's change committed, its answer was lost: answer from ref_*
    running,   // the first request is still in progress (409)
    mismatch,  // the key was used with another request (422)
  } what = outcome::started;
  std::int32_t answer_status = 0;
  std::string headers;
  std::string body;
  std::int32_t ref_kind = 0; // entity_kind of the change
  std::string ref_tenant;
  std::string ref_id;
  std::string detail;
};

struct store_health {
  bool ready = false;
  std::string detail; // e.g. "sqlite:/var/colony.db ok" or why not
  std::int64_t since_us = 0;
};

using store_port = caf::typed_actor<
  caf::replies_to<load_atom, entity_key>::with<loaded>, caf::replies_to<commit_atom, change>::with<commit_outcome>,
  caf::replies_to<list_atom, list_query>::with<row_page>, caf::replies_to<resolve_atom, std::string>::with<std::string>,
  caf::replies_to<resolve_atom, std::string, std::string>::with<std::string>, // (system, external id) → tenant id
  caf::replies_to<events_atom, event_query>::with<event_page>,
  caf::replies_to<published_atom, std::vector<std::int64_t>, std::int64_t>::with<commit_outcome>,
  caf::replies_to<backlog_atom>::with<outbox_backlog>,
  caf::replies_to<processed_atom, std::string>::with<bool>, // was this message key applied?
  caf::replies_to<webhook_atom, webhook_op>::with<webhook_result>,
  caf::replies_to<api_key_atom, api_key_op>::with<api_key_result>,
  caf::replies_to<usage_atom, api_usage_op>::with<api_usage_result>,
  caf::replies_to<audit_atom, audit_op>::with<audit_page>,
  caf::replies_to<user_data_atom, user_data_op>::with<user_data>,
  caf::replies_to<idempotency_atom, idempotency_op>::with<idempotency_result>,
  caf::replies_to<timers_atom, std::int64_t, std::int32_t>::with<timer_page>,
  caf::replies_to<timer_done_atom, std::string, std::int64_t>::with<commit_outcome>,
  caf::replies_to<timer_retry_atom, std::string, std::int64_t, std::int32_t>::with<commit_outcome>,
  caf::replies_to<health_atom>::with<store_health>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::commit_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::loaded)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::list_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::row_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::store_health)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::event_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::event_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::outbox_backlog)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::timer_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::webhook_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::webhook_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_key_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_key_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_usage_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_usage_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::audit_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::audit_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::user_data_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::user_data)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::idempotency_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::idempotency_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::change>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::entity_key>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::loaded>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<colony::actors::commit_outcome>)
