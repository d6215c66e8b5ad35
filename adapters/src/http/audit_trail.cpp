#include "audit_trail.hpp"

#include <caf/all.hpp>
#include <mutex>

#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;

namespace {
/// To the flusher: the first record is queued, tick one interval from now.
using arm_atom = caf::atom_constant<caf::atom("arm")>;
} // namespace

struct audit_trail::queue {
  std::mutex mu;
  std::vector<audit_record> records;
  static constexpr std::size_t bound = 100'000; // beyond, the oldest unsent are dropped (and said so)
  std::size_t dropped = 0;
  // The flusher ticks only while records wait: the first record arms it,
  // and a tick that finds nothing disarms it (an idle node's scheduler is
  // not woken five times a second for nothing).
  bool armed = false;

  std::vector<audit_record> take() {
    std::lock_guard lock{mu};
    if (dropped > 0) {
      log::error("audit records dropped: the store could not keep up", {{"dropped", static_cast<int>(dropped)}});
      dropped = 0;
    }
    if (records.empty())
      armed = false;
    return std::exchange(records, {});
  }

  void put_back(std::vector<audit_record> rs) {
    std::lock_guard lock{mu};
    rs.insert(rs.end(), std::make_move_iterator(records.begin()), std::make_move_iterator(records.end()));
    records = std::move(rs);
    if (records.size() > bound) {
      dropped += records.size() - bound;
      records.erase(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(records.size() - bound));
    }
  }
};

namespace {

caf::behavior flusher(caf::event_based_actor* self, std::shared_ptr<audit_trail::queue> q, store_port store,
                      std::chrono::milliseconds interval) {
  return {
    // Armed by the first record queued: the batch goes out one interval later.
    [=](arm_atom) { self->delayed_send(self, interval, tick_atom::value); },
    [=](tick_atom) {
      auto rs = q->take();
      if (rs.empty())
        return; // disarmed: the next record arms it again
      self->delayed_send(self, interval, tick_atom::value);
      audit_op op;
      op.append = true;
      op.records = rs;
      self->request(store, std::chrono::seconds(10), audit_atom::value, std::move(op))
        .then(
          [q, rs](audit_page& r) mutable {
            if (r.status != store_status::ok)
              q->put_back(std::move(rs)); // retried next tick
          },
          [q, rs](caf::error&) mutable { q->put_back(std::move(rs)); });
    },
  };
}

} // namespace

audit_trail::audit_trail(caf::actor_system& sys, store_port store, std::chrono::milliseconds interval)
  : queue_(std::make_shared<queue>()), sys_(sys), store_(store) {
  flusher_ = sys.spawn(flusher, queue_, store, interval);
}

audit_trail::~audit_trail() { caf::anon_send_exit(flusher_, caf::exit_reason::user_shutdown); }

void audit_trail::record(audit_record r) {
  {
    std::lock_guard lock{queue_->mu};
    if (queue_->records.size() >= queue::bound) {
      ++queue_->dropped;
      return;
    }
    queue_->records.push_back(std::move(r));
    if (std::exchange(queue_->armed, true))
      return;
  }
  caf::anon_send(flusher_, arm_atom::value);
}

void audit_trail::flush_now(std::chrono::milliseconds timeout) {
  auto rs = queue_->take();
  if (rs.empty())
    return;
  caf::scoped_actor self{sys_};
  audit_op op;
  op.append = true;
  op.records = std::move(rs);
  auto n = static_cast<int>(op.records.size());
  self->request(store_, timeout, audit_atom::value, std::move(op))
    .receive(
      [&](audit_page& r) {
        if (r.status != store_status::ok)
          log::error("audit records could not be stored at shutdown", {{"records", n}});
      },
      [&](caf::error&) {
        log::error("audit records could not be stored at shutdown", {{"records", n}});
      });
}

} // namespace colony::adapters::http
