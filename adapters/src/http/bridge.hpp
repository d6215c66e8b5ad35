// Bridges: the one way from the Asio threads to actors. A bridge is an actor
// that runs jobs for the io threads, so they start actor requests without
// blocking and get the answer through a callback, and that keeps the deadline
// of every request it sent.
//
// One timeout scheme: requests go without a CAF request timeout (in CAF 0.17
// each one is an entry in the clock's maps, taken under the clock's mutex,
// that outlives the answer and comes back as a stale timeout message when it
// expires: a clock insertion and an extra message per request). The bridge
// instead keeps its waiting requests in a map and looks at them every quarter
// of the timeout (at most 250 ms); a request past its deadline gets
// `sec::request_timeout` and its late answer, if any, is dropped.
//
// A throw in a job or a continuation answers its call 500 (never a hung
// request) and the bridge carries on.
#pragma once

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::adapters::http {

struct call;

/// Runs `fn`; a throw answers `c` with a 500 problem (and is logged and counted).
void guarded(const std::shared_ptr<call>& c, const std::function<void()>& fn);

struct bridge_state {
  struct waiting {
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> on_timeout;
  };
  std::unordered_map<std::uint64_t, waiting> calls;
  std::uint64_t next_id = 0;
  bool ticking = false;
  std::chrono::milliseconds period{250};
  static inline const char* name = "colony.http.bridge";
};
using bridge_actor = caf::stateful_actor<bridge_state>;

/// Registers a request until its answer or its deadline; returns the id to forget it by.
std::uint64_t watch(bridge_actor* self, std::chrono::milliseconds timeout, std::function<void()> on_timeout);
/// True if the request was still waiting (its answer is due now), false if
/// its deadline already went by.
bool unwatch(bridge_actor* self, std::uint64_t id);

using job_fn = std::function<void(caf::event_based_actor*)>;

class bridge_pool {
public:
  /// `threads` cooperative bridges and two detached body workers.
  bridge_pool(caf::actor_system& sys, int threads);
  ~bridge_pool();
  bridge_pool(const bridge_pool&) = delete;
  bridge_pool& operator=(const bridge_pool&) = delete;

  /// Runs `job` in a bridge, for call `c`.
  void post(const std::shared_ptr<call>& c, job_fn job);
  /// Runs `job` on a body worker (its own thread): for work that may take
  /// milliseconds or block (large bodies, DNS), never on an io thread.
  void post_blocking(const std::shared_ptr<call>& c, job_fn job);
  /// Ends the bridges and waits (at most `timeout`) until they are gone.
  void stop(std::chrono::milliseconds timeout);

  /// From inside a job: sends `xs...` to `target`; exactly one of
  /// `on_reply` and `on_error` runs, `on_error(sec::request_timeout)` once
  /// `timeout` has passed.
  template <class Reply, class Handle, class... Ts>
  static void request(caf::event_based_actor* self, const std::shared_ptr<call>& c, const Handle& target,
                      std::chrono::milliseconds timeout, std::function<void(Reply&)> on_reply,
                      std::function<void(const caf::error&)> on_error, Ts&&... xs) {
    auto* b = static_cast<bridge_actor*>(self); // jobs run only in bridges
    auto id = watch(b, timeout, [c, on_error] { guarded(c, [&] { on_error(caf::sec::request_timeout); }); });
    self->request(target, caf::infinite, std::forward<Ts>(xs)...)
      .then(
        [b, id, c, on_reply](Reply& r) {
          if (unwatch(b, id))
            guarded(c, [&] { on_reply(r); });
        },
        [b, id, c, on_error](caf::error& err) {
          if (unwatch(b, id))
            guarded(c, [&] { on_error(err); });
        });
  }

private:
  caf::actor_system& sys_;
  std::vector<caf::actor> bridges_;
  std::vector<caf::actor> workers_;
  std::atomic<std::size_t> next_bridge_{0};
  std::atomic<std::size_t> next_worker_{0};
};

} // namespace colony::adapters::http
