#include "colony/runtime/timer_service.hpp"

#include <caf/all.hpp>
#include <set>

#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/actors/kinds.hpp"

namespace colony::runtime {
namespace {

using namespace actors;

struct timer_state {
  actors::store_port store;
  caf::actor registry;
  timer_options opts;
  std::set<std::string> firing; // timer ids whose entity has not answered yet
  bool polling = false;
  static inline const char* name = "colony.timers";
};

using self_ptr = caf::stateful_actor<timer_state>*;

std::int64_t backoff_us(std::int32_t attempts) {
  auto secs = std::min<std::int64_t>(std::int64_t{1} << std::min(attempts, 9), 300);
  return secs * 1'000'000;
}

/// Deletes (done) or moves (retry) the timer. It leaves `firing` only once the
/// store has recorded that, so the next poll cannot fire it twice.
void finish(self_ptr self, const timer_row& t, bool done) {
  auto& st = self->state;
  auto settled = [self, id = t.id](commit_outcome&) { self->state.firing.erase(id); };
  auto lost = [self, id = t.id](caf::error&) { self->state.firing.erase(id); };
  if (done) {
    self->request(st.store, std::chrono::seconds(10), timer_done_atom::value, t.id, t.due_us).then(settled, lost);
    return;
  }
  auto due = protocol::now_us() + backoff_us(t.attempts);
  log::warn("timer not handled; retrying later", {{"timer", t.id}, {"attempts", t.attempts + 1}});
  self->request(st.store, std::chrono::seconds(10), timer_retry_atom::value, t.id, due, t.attempts + 1)
    .then(settled, lost);
}

void fire(self_ptr self, const timer_row& t) {
  auto& st = self->state;
  auto cmd = builtin_kinds().timer_command(t); // the target kind knows what its timer means
  if (!cmd) {
    log::error("timer of unknown kind dropped", {{"timer", t.id}, {"kind", t.kind}});
    st.firing.insert(t.id);
    finish(self, t, true);
    return;
  }
  st.firing.insert(t.id);
  log::debug("timer fired", {{"timer", t.id}, {"kind", t.kind}});
  self->request(st.registry, std::chrono::seconds(30), std::move(cmd->first), std::move(cmd->second))
    .then(
      [self, t](entity_reply& r) {
        // A refusal (e.g. the tenant is gone) is final; only outages retry.
        bool transient = r.error && (r.error->code == errc::unavailable || r.error->code == errc::internal);
        if (auto& m = self->state.opts.metrics; m && !transient)
          m->count("colony_timers_fired_total", "Durable timers this node fired and its entity handled", {});
        finish(self, t, !transient);
      },
      [self, t](caf::error&) { finish(self, t, false); });
}

caf::behavior timer_service(self_ptr self, actors::store_port store, caf::actor registry, timer_options opts) {
  self->state.store = std::move(store);
  self->state.registry = std::move(registry);
  self->state.opts = opts;
  self->set_default_handler(caf::drop);
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) {
      auto& st = self->state;
      self->delayed_send(self, st.opts.poll_interval, tick_atom::value);
      if (st.polling)
        return;
      // Per owned shard on a cluster (each owner fires its tenants' timers,
      // so a dead node's fire on its shards' new owners); the holder of the
      // "timers" chore also fires the timers set before they had a shard.
      shard_scope scope;
      if (st.opts.owner) {
        if (auto mine = st.opts.owner->shards()) {
          scope.all = false;
          scope.shards = std::move(*mine);
        }
        scope.unsharded = !scope.all && st.opts.owner->granted("timers");
        if (!scope.all && scope.shards.empty() && !scope.unsharded)
          return;
      }
      st.polling = true;
      // Not before the store is ready (and migrated): no noise at start or during an outage.
      self->request(st.store, std::chrono::seconds(10), health_atom::value)
        .then(
          [self, scope = std::move(scope)](store_health& h) mutable {
            auto& s = self->state;
            if (!h.ready) {
              s.polling = false;
              return;
            }
            self
              ->request(s.store, std::chrono::seconds(10), timers_atom::value, protocol::now_us(),
                        static_cast<std::int32_t>(s.opts.batch), std::move(scope))
              .then(
                [self](timer_page& page) {
                  self->state.polling = false;
                  if (page.status != store_status::ok)
                    return;
                  for (const auto& t : page.rows)
                    if (!self->state.firing.contains(t.id))
                      fire(self, t);
                },
                [self](caf::error&) { self->state.polling = false; });
          },
          [self](caf::error&) { self->state.polling = false; });
    },
    [self](stop_atom) { self->quit(); },
  };
}

} // namespace

caf::actor spawn_timer_service(caf::actor_system& sys, actors::store_port store, caf::actor registry,
                               timer_options opts) {
  return sys.spawn(timer_service, std::move(store), std::move(registry), opts);
}

} // namespace colony::runtime
