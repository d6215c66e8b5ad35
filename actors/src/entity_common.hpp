// Mechanics shared by the entity actors: outbox rows, commit, idle handling.
#pragma once

#include <algorithm>
#include <chrono>
#include <caf/all.hpp>
#include <google/protobuf/message.h>

#include "colony/actors/entities.hpp"
#include "colony/protocol/time.hpp"
#include "colony/v1/event.pb.h"

namespace colony::actors::detail {

/// The envelope of an event about `key` at `version`; the caller sets the payload.
/// The audit record of a change made for `meta.actor` (none if no actor:
/// internal work such as a timer is not a request to account for).
inline void audit_change(change& ch, const request_meta& meta, const entity_key& key, std::string action,
                         std::int64_t now) {
  if (meta.actor.empty())
    return;
  audit_record a;
  a.id = protocol::new_uuid_v7();
  a.tenant_id = key.tenant_id;
  a.at_us = now;
  a.actor = meta.actor;
  a.action = std::move(action);
  a.target = std::string{to_string(key.kind)} + ":" + key.id;
  a.request_id = meta.request_id;
  a.client = meta.client;
  a.outcome = "success";
  ch.audit.push_back(std::move(a));
}

inline v1::Event event_header(std::string type, const entity_key& key, std::uint32_t version, const request_meta& meta,
                              std::int64_t now) {
  v1::Event ev;
  ev.set_id(protocol::new_uuid_v7());
  ev.set_type(std::move(type));
  ev.set_tenant_id(key.tenant_id);
  ev.set_aggregate_kind(to_string(key.kind));
  ev.set_aggregate_id(key.id);
  ev.set_aggregate_version(version);
  protocol::set_timestamp(*ev.mutable_occurred_at(), now);
  ev.set_request_id(meta.request_id);
  ev.set_traceparent(meta.traceparent);
  return ev;
}

/// The outbox row of a finished envelope.
inline outbox_event seal(const v1::Event& ev) { return outbox_event{ev.id(), ev.type(), ev.SerializeAsString()}; }

/// The failure a client sees for a store outcome that is not ok.
inline failure failure_from(const commit_outcome& o, std::string_view what) {
  switch (o.status) {
    case store_status::duplicate:
      return [&] {
        failure f = fail(errc::conflict, std::string{what} + " with this " + o.field + " already exists");
        f.errors.push_back({o.field, "already taken"});
        return f;
      }();
    case store_status::stale:
      return fail(errc::conflict,
                  std::string{what} + " was changed concurrently by another writer; read it again and retry");
    case store_status::not_found: return fail(errc::not_found, std::string{what} + " not found");
    case store_status::unavailable: return fail(errc::unavailable, "the store is unavailable; retry later");
    case store_status::moved: return fail(errc::moved, std::string{what} + " is owned by another node now; retry");
    default: return fail(errc::internal, "the store failed to commit");
  }
}

/// A crash in a handler ends the actor with an error; the directory forgets
/// it and logs and counts the crash. A stray error message (a reply nobody
/// waits for) is logged and ignored: CAF's default would end the actor.
template <class Self>
void install_crash_handler(Self* self) {
  self->set_exception_handler([self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    if (auto router = self->state.env->router.lock())
      router->crashed(self->state.key, self->address(), what);
    return caf::make_error(caf::sec::runtime_error, std::move(what));
  });
  self->set_error_handler([self](caf::error& err) {
    if (auto router = self->state.env->router.lock())
      router->stray_error(self->state.key, caf::to_string(err));
  });
}

/// One more command handled, mirrored into the activation's cell: the
/// count (the directory's mailbox depth), the op (the actor page's last
/// handled, unless it is the console's own read), and, if it is the command
/// the directory sampled, how long it waited (one relaxed load when it is
/// not: only this actor handles it).
template <class State>
void count_handled(State& st, const command& cmd) {
  ++st.handled;
  auto* c = st.cell;
  if (c == nullptr)
    return;
  c->handled.store(st.handled, std::memory_order_relaxed);
  if (!cmd.inspect)
    c->last_ops.store((c->last_ops.load(std::memory_order_relaxed) << 8) | static_cast<std::uint8_t>(cmd.what),
                      std::memory_order_relaxed);
  if (c->sample_seq.load(std::memory_order_acquire) != st.handled)
    return;
  auto* waits = c->waits.load(std::memory_order_relaxed);
  auto at = c->sample_at_ns.load(std::memory_order_relaxed);
  if (waits == nullptr || c->sample_seq.load(std::memory_order_relaxed) != st.handled)
    return; // re-sampled meanwhile: `at` may be the next one's
  auto now =
    std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  waits->record(std::max<std::int64_t>(0, now - at) / 1000);
}

/// Offers to passivate: the directory agrees unless commands are on their
/// way to this activation; then the actor quits. Never while a commit is
/// awaited (its reply must reach the client first). True if it quit.
template <class Self>
bool offer_passivation(Self* self) {
  auto& st = self->state;
  if (st.committing)
    return false;
  auto router = st.env->router.lock();
  if (router && !router->release(st.key, self->address(), st.handled))
    return false;
  self->quit();
  return true;
}

inline std::optional<failure> check_if_match(const command& cmd, std::uint32_t version) {
  if (!cmd.if_match.empty() && std::find(cmd.if_match.begin(), cmd.if_match.end(), version) == cmd.if_match.end()) {
    std::string named;
    for (auto v : cmd.if_match)
      named += (named.empty() ? "" : ", ") + std::to_string(v);
    failure f =
      fail(errc::precondition_failed,
           named == "0" ? "If-Match names no version of this entity (weak tags never match If-Match)"
                        : "If-Match names version " + named + " but the current version is " + std::to_string(version));
    f.numbers.emplace_back("currentVersion", version);
    return f;
  }
  return std::nullopt;
}

} // namespace colony::actors::detail
