// The API's shared core, as the pipeline steps and the route groups see it:
// one `call` per request, and `api_core`, the state every request may touch
// (bridges, caches, limiter, meter, audit trail) with the steps that use it.
//
// Where each part is defined:
//   core.cpp              bodies, small answers, If-Match, fault injection
//   bridge.cpp            call_entity / ask_store: the one way to an actor
//   pipeline/authn.cpp    who calls (JWT, API keys with their cache)
//   pipeline/tenant_scope.cpp  {tenantId}: resolve, authorize
//   pipeline/limits.cpp   rate limits and the monthly quota (policy: actors/tenant/quota_policy.hpp)
//   pipeline/idempotency.cpp   Idempotency-Key
//   pipeline/audit_refusals.cpp  auditing refused requests
//   pipeline/cors.cpp     CORS preflights and headers
//   routes/*.cpp          one file per resource group (routes/groups.hpp)
// Threading: any io thread or bridge may call any member; the caches lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api.hpp"
#include "audit_trail.hpp"
#include "bridge.hpp"
#include "console.hpp"
#include "metering.hpp"
#include "colony/actors/tenant/rate_limiter.hpp"
#include "router.hpp"
#include "tenant_traffic.hpp"

#include "params.hpp"

#include <nlohmann/json.hpp>

#include "colony/actors/access/access_model.hpp"
#include "colony/actors/entities.hpp"
#include "colony/actors/user/user_model.hpp"

namespace google::protobuf {
class Message;
}

namespace colony::adapters::http {

// Answers may quote client text that is not UTF-8 (a path, a parameter):
// such bytes become U+FFFD instead of making the JSON encoder throw.
inline constexpr auto replace_invalid = nlohmann::json::error_handler_t::replace;

/// One request on its way through the pipeline to its handler.
struct call {
  api_request req;
  responder done;
  std::map<std::string, std::string> path;
  std::map<std::string, std::string> query;
  std::string route = "unmatched";
  actors::access::principal who; // set unless the route is open
  actors::access::permission perm = actors::access::permission::platform;
  std::vector<std::pair<std::string, std::string>> rate_headers; // RateLimit-Policy, RateLimit
  std::string tenant_id;        // the tenant the caller was allowed into (for the audit log)
  bool hidden = false;          // refused as another tenant's resource (404)
  std::string idem_scope;       // Idempotency-Key taken for this request: its changes mark it committed
  bool outcome_unknown = false; // a change got no answer in time: it may yet commit (the key stays taken)
  // An operator action (drain, passivate): its answer, success or not, is
  // audited as this action on this target (api_core::audit_answer).
  std::string audited_action;
  std::string audited_target;
  // Runs before the answer leaves (Idempotency-Key: store it first), then
  // calls `send` with it; set once, taken by the first answer.
  std::function<void(api_response, std::function<void(api_response)>)> before_answer;
  std::atomic<bool> answered{false}; // a request is answered once; a second answer is a bug, dropped

  void respond(api_response r);
  void send_answer(api_response r);
};

/// A JSON answer.
[[nodiscard]] api_response json(int status, std::string body);
/// 201 Created with the resource's JSON and its Location.
[[nodiscard]] api_response created(const nlohmann::json& doc, const std::string& location);
/// The store's continuation for a creation whose answer was stored in the
/// creating transaction itself (Idempotency-Key): the answer leaves as is.
template <class Result>
[[nodiscard]] std::function<void(Result&)> send_stored_answer(const std::shared_ptr<call>& c, api_response answer) {
  return [c, answer = std::move(answer)](Result&) {
    c->before_answer = nullptr; // committed with the creation: nothing left to store
    c->respond(answer);
  };
}
/// 204 No Content.
[[nodiscard]] api_response no_content();
/// The entity of a reply with its ETag.
[[nodiscard]] api_response entity_response(const actors::entity_reply& r, int status);
/// The answer to a read: the entity, or 304 when If-None-Match matches it.
[[nodiscard]] api_response read_response(const call& c, const actors::entity_reply& r);
/// If-Match as the versions any of which may match (params.hpp: if_match_versions).
[[nodiscard]] std::vector<std::uint32_t> if_match(const std::shared_ptr<call>& c);
/// An audit record of this request.
[[nodiscard]] actors::audit_record audit_of(const call& c, std::string tenant, std::string action, std::string target,
                                            std::string outcome, int status, std::string detail);
/// Does the caller hold an owner's powers in its tenant (an owner or a
/// platform credential)? An admin does not (user_model: owner_guard).
[[nodiscard]] bool owner_powers(const call& c);
/// A 500 problem for a request whose handler threw.
[[nodiscard]] api_response internal_error(const call& c);

struct api_core {
  api_core(caf::actor_system& s, const http_options& o, api_context c);
  ~api_core();

  caf::actor_system& sys;
  http_options opts;
  api_context ctx;
  bridge_pool bridges;
  const std::atomic<bool>* draining = nullptr;
  router routes;

  struct cached_key {
    actors::api_key_row row;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex keys_mu;
  std::unordered_map<std::string, cached_key> keys; // API key id → row, for api_key_cache_ttl
  std::atomic<std::uint64_t> revocations{0};        // a lookup that raced a revocation is not cached
  static constexpr const char* revoked_topic = "api-key-revoked";
  std::uint64_t revoked_sub = 0;
  static constexpr const char* limits_topic = "limits";
  std::uint64_t limits_sub = 0;
  std::atomic<int> serving{0};           // limit checks asked by other nodes still running here (the destructor waits)
  std::vector<std::uint64_t> admin_subs; // what this node answers other members' GET /v1/admin/* (routes/admin.cpp)
  std::int64_t started_us = 0;           // when the API started (uptime)
  actors::rate_limiter limiter;
  std::unique_ptr<api_meter> meter;
  tenant_traffic traffic; // each tenant's calls by outcome, for the console's tenant page
  std::unique_ptr<audit_trail> audit;
  struct cached_plan {
    std::string plan;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex plans_mu;
  std::unordered_map<std::string, cached_plan> tenant_plans; // tenant id → plan, for rate limits
  std::unique_ptr<console_sessions> sessions;                // the console's sign-ins (console.hpp)

  // -- answers (core.cpp) ------------------------------------------------------
  void fail(const std::shared_ptr<call>& c, int status, std::string_view type, std::string_view title,
            std::string detail);
  void invalid_param(const std::shared_ptr<call>& c, const std::string& name, const std::string& message);
  void forbidden(const std::shared_ptr<call>& c, std::string detail);
  /// The gate of every JSON body (docs/api.md, "Request bodies"); false if answered.
  bool check_json_body(const std::shared_ptr<call>& c, bool merge, bool optional_body);
  bool parse_body(const std::shared_ptr<call>& c, google::protobuf::Message& msg);
  /// Reads an integer query parameter from lo to hi; false if answered (400).
  template <class Int>
  bool int_param(const std::shared_ptr<call>& c, const char* name, Int lo, Int hi, Int& out);

  /// Reads limit, sort and cursor of a list; false if answered.
  bool page_params(const std::shared_ptr<call>& c, actors::list_query& q, const std::vector<std::string>& sortable);
  /// Runs a list query and answers {data, nextCursor}, each row as `render` makes it.
  void run_list(const std::shared_ptr<call>& c, actors::list_query q,
                std::function<std::string(const actors::list_row&)> render);

  // -- to actors (bridge.cpp) --------------------------------------------------
  /// Sends a command to an entity and runs `next` with its reply in a
  /// bridge (within http.request-timeout; later is a 503). A failed reply is
  /// answered unless `pass_errors`. `next` answers, or goes on to the next step.
  void call_entity(const std::shared_ptr<call>& c, actors::entity_key key, actors::command cmd,
                   std::function<void(actors::entity_reply&)> next, bool pass_errors = false);
  /// call_entity, answering with what `ok` makes of a successful reply.
  void send(const std::shared_ptr<call>& c, actors::entity_key key, actors::command cmd,
            std::function<api_response(actors::entity_reply&)> ok);
  /// Asks the store; `ok` gets ok, not_found and duplicate answers (an insert
  /// that found its key taken), anything else becomes
  /// 503 (unavailable) or 500 ("<what> could not be read").
  template <class Result, class Atom, class Op>
  void ask_store(const std::shared_ptr<call>& c, Atom atom, Op op, const char* what, std::function<void(Result&)> ok);
  /// Asks the store and runs `next` with whatever it answers (failures to reach it are answered).
  template <class Result, class Atom, class... Args>
  void ask_store_raw(const std::shared_ptr<call>& c, std::function<void(Result&)> next, Atom atom, Args... args);

  // -- authentication (pipeline/authn.cpp) -----------------------------------
  void unauthorized(const std::shared_ptr<call>& c, const std::string& error, const std::string& reason);
  /// Finds out who calls (c->who), then runs `next`; answers 401 otherwise.
  void authenticate(const std::shared_ptr<call>& c, std::function<void()> next);
  void with_api_key(const std::shared_ptr<call>& c, std::string token, std::function<void()> next);
  /// A revoked key stops working at once on this node.
  void forget_api_key(const std::string& key_id);
  /// ... and on every other member (a broadcast; their cache TTL is the fallback).
  void revoke_everywhere(const std::string& key_id);

  // -- tenant scope (pipeline/tenant_scope.cpp) --------------------------------
  /// Answers 404 or 403 unless the caller may use the route on tenant `id`.
  bool allowed(const std::shared_ptr<call>& c, const std::string& id, const std::string& shown_as);
  /// Resolves {tenantId} (a UUID as is, or a slug through the store), checks
  /// the caller may use the route on it and applies the limits, then `next(id)`.
  void with_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next);
  /// with_tenant, once the tenant is known to exist (404 otherwise).
  void with_existing_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next);
  /// {userId} as a UUID; nullopt if answered (400).
  std::optional<std::string> user_id(const std::shared_ptr<call>& c);

  // -- limits (pipeline/limits.cpp) -------------------------------------------
  void rate_limited(const std::shared_ptr<call>& c, const std::string& tid, std::function<void()> next);
  void limit_here(const std::shared_ptr<call>& c, std::function<void()> next);
  void limit_at_owner(const std::shared_ptr<call>& c, std::function<void()> next);
  void serve_limits(const std::string& payload, std::function<void(std::string)> reply);
  void metered(const std::shared_ptr<call>& c, const std::string& tid, const std::string& plan,
               std::function<void()> next, bool first_try);
  void load_usage(const std::shared_ptr<call>& c, const std::string& tid, const std::string& month,
                  std::function<void()> next);
  void with_plan(const std::shared_ptr<call>& c, const std::string& tid, std::function<void(const std::string&)> next);
  /// Runs `next(now, calls metered this month)` once the meter knows the tenant's stored count.
  void with_month_usage(const std::shared_ptr<call>& c, const std::string& id,
                        std::function<void(std::int64_t, std::int64_t)> next);

  // -- Idempotency-Key (pipeline/idempotency.cpp) -------------------------------
  void with_idempotency(const std::shared_ptr<call>& c, std::function<void()> next);
  actors::idempotency_op answer_record(const std::string& scope, const api_response& resp) const;
  std::optional<actors::idempotency_op> answer_in_transaction(const std::shared_ptr<call>& c, const api_response& resp);
  void store_answer(const std::shared_ptr<call>& c, const std::string& scope, api_response resp,
                    std::function<void(api_response)> send_on);
  api_response replayed(const actors::idempotency_result& r) const;
  void answer_committed(const std::shared_ptr<call>& c, const actors::idempotency_result& r);

  // -- refusals (pipeline/audit_refusals.cpp) -----------------------------------
  void audit_answer(const call& c, const api_response& r);

  // -- dispatch (api.cpp) ------------------------------------------------------
  void dispatch(std::shared_ptr<call> c);

  // Last, so it goes first: its sampler thread uses the members above.
  std::unique_ptr<console_hub> hub; // the console's live streams (console.hpp)
};

// -- templates -----------------------------------------------------------------

template <class Int>
bool api_core::int_param(const std::shared_ptr<call>& c, const char* name, Int lo, Int hi, Int& out) {
  auto it = c->query.find(name);
  if (it == c->query.end())
    return true;
  if (auto v = parse_int<Int>(it->second); v && *v >= lo && *v <= hi) {
    out = *v;
    return true;
  }
  invalid_param(c, name, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return false;
}

template <class Result, class Atom, class... Args>
void api_core::ask_store_raw(const std::shared_ptr<call>& c, std::function<void(Result&)> next, Atom atom,
                             Args... args) {
  bridges.post(c,
               [c, next = std::move(next), store = ctx.store, timeout = opts.request_timeout,
                msg = std::make_tuple(atom, std::move(args)...)](caf::event_based_actor* self) mutable {
                 std::apply(
                   [&](auto&... xs) {
                     bridge_pool::request<Result>(
                       self, c, store, timeout, next,
                       [c](const caf::error& err) {
                         c->respond(api::failure_response(actors::failure_from(err), c->req.request_id));
                       },
                       std::move(xs)...);
                   },
                   msg);
               });
}

template <class Result, class Atom, class Op>
void api_core::ask_store(const std::shared_ptr<call>& c, Atom atom, Op op, const char* what,
                         std::function<void(Result&)> ok) {
  ask_store_raw<Result>(
    c,
    [c, what, ok = std::move(ok)](Result& r) {
      if (r.status == actors::store_status::ok || r.status == actors::store_status::not_found ||
          r.status == actors::store_status::duplicate) {
        ok(r);
        return;
      }
      c->respond(
        api::failure_response(r.status == actors::store_status::unavailable
                                ? actors::fail(actors::errc::unavailable, "the store is unavailable; retry later")
                                : actors::fail(actors::errc::internal, std::string{what} + " could not be read"),
                              c->req.request_id));
    },
    atom, std::move(op));
}

} // namespace colony::adapters::http
