#include "metering.hpp"

#include <caf/all.hpp>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;

struct api_meter::state {
  struct entry {
    std::string month;
    std::int64_t stored = 0;   // the store's total for month, as last seen
    std::int64_t pending = 0;  // counted, not yet sent
    std::int64_t flushing = 0; // sent, not yet acknowledged
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, entry> tenants;

  /// Moves pending counts into `flushing` and returns them as a batch.
  api_usage_op take() {
    api_usage_op op;
    op.add = true;
    std::lock_guard lock{mu};
    for (auto& [tid, e] : tenants)
      if (e.pending > 0 && e.flushing == 0) {
        op.rows.push_back(api_usage_row{tid, e.month, e.pending});
        e.flushing = e.pending;
        e.pending = 0;
      }
    return op;
  }

  void acknowledged(const api_usage_result& r) {
    std::lock_guard lock{mu};
    for (const auto& row : r.rows)
      if (auto it = tenants.find(row.tenant_id); it != tenants.end() && it->second.month == row.month) {
        it->second.stored = row.calls;
        it->second.flushing = 0;
      }
  }

  void failed(const api_usage_op& op) {
    std::lock_guard lock{mu};
    for (const auto& row : op.rows)
      if (auto it = tenants.find(row.tenant_id); it != tenants.end() && it->second.month == row.month) {
        it->second.pending += it->second.flushing; // sent again next time
        it->second.flushing = 0;
      }
  }
};

namespace {

using tick_atom = actors::tick_atom;

caf::behavior flusher(caf::event_based_actor* self, std::shared_ptr<api_meter::state> st, store_port store,
                      std::chrono::milliseconds interval) {
  self->delayed_send(self, interval, tick_atom::value);
  return {
    [=](tick_atom) {
      auto op = st->take();
      self->delayed_send(self, interval, tick_atom::value);
      if (op.rows.empty())
        return;
      self->request(store, std::chrono::seconds(10), usage_atom::value, op)
        .then(
          [st, op](api_usage_result& r) {
            if (r.status == store_status::ok) {
              st->acknowledged(r);
            } else {
              log::warn("metered API calls not stored yet; retrying", {{"detail", r.detail}});
              st->failed(op);
            }
          },
          [st, op](caf::error&) { st->failed(op); });
    },
  };
}

} // namespace

api_meter::api_meter(caf::actor_system& sys, store_port store, std::chrono::milliseconds flush_interval)
  : state_(std::make_shared<state>()), sys_(sys), store_(store) {
  flusher_ = sys.spawn(flusher, state_, store, flush_interval);
}

api_meter::~api_meter() { caf::anon_send_exit(flusher_, caf::exit_reason::user_shutdown); }

api_meter::verdict api_meter::count(const std::string& tenant, const std::string& month,
                                    std::optional<std::int64_t> limit) {
  std::lock_guard lock{state_->mu};
  auto it = state_->tenants.find(tenant);
  if (it == state_->tenants.end())
    return verdict::unknown;
  auto& e = it->second;
  // A new month: its stored total is read first. While the previous month's
  // counts are still being written, calls at the turn of the month are
  // counted into it (one flush interval's worth at most).
  if (e.month != month && e.pending == 0 && e.flushing == 0)
    return verdict::unknown;
  if (limit && e.stored + e.pending + e.flushing >= *limit)
    return verdict::over_quota;
  ++e.pending;
  return verdict::counted;
}

void api_meter::loaded(const std::string& tenant, const std::string& month, std::int64_t stored) {
  std::lock_guard lock{state_->mu};
  auto& e = state_->tenants[tenant];
  if (e.month == month) {
    e.stored = std::max(e.stored, stored);
    return;
  }
  if (e.pending > 0 || e.flushing > 0)
    return; // still flushing the previous month
  if (state_->tenants.size() > 1'000'000) {
    // Bounded: forget tenants with nothing in flight.
    for (auto i = state_->tenants.begin(); i != state_->tenants.end();)
      i = i->second.pending == 0 && i->second.flushing == 0 && i->first != tenant ? state_->tenants.erase(i)
                                                                                  : std::next(i);
  }
  e = state::entry{month, stored, 0, 0};
}

std::optional<std::int64_t> api_meter::used(const std::string& tenant, const std::string& month) const {
  std::lock_guard lock{state_->mu};
  auto it = state_->tenants.find(tenant);
  if (it == state_->tenants.end() || it->second.month != month)
    return std::nullopt;
  return it->second.stored + it->second.pending + it->second.flushing;
}

void api_meter::flush_now(std::chrono::milliseconds timeout) {
  auto op = state_->take();
  if (op.rows.empty())
    return;
  caf::scoped_actor self{sys_};
  self->request(store_, timeout, usage_atom::value, op)
    .receive(
      [&](api_usage_result& r) {
        if (r.status == store_status::ok)
          state_->acknowledged(r);
        else
          log::warn("metered API calls could not be stored at shutdown",
                    {{"tenants", static_cast<int>(op.rows.size())}});
      },
      [&](caf::error&) {
        log::warn("metered API calls could not be stored at shutdown", {{"tenants", static_cast<int>(op.rows.size())}});
      });
}

} // namespace colony::adapters::http
