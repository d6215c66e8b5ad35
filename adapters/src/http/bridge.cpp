#include "bridge.hpp"
#include "core.hpp"

#include <algorithm>
#include <caf/all.hpp>

#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

namespace {

/// A unit of work run inside a bridge, for the call it serves.
struct bridge_job {
  std::shared_ptr<call> c;
  job_fn run;
};

} // namespace
} // namespace colony::adapters::http

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::adapters::http::bridge_job)

namespace colony::adapters::http {

using namespace actors;

void guarded(const std::shared_ptr<call>& c, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    log::error("a request handler threw", {{"request_id", c->req.request_id}, {"route", c->route}, {"what", e.what()}});
    c->respond(internal_error(*c));
  } catch (...) {
    log::error("a request handler threw", {{"request_id", c->req.request_id}, {"route", c->route}});
    c->respond(internal_error(*c));
  }
}

std::uint64_t watch(bridge_actor* self, std::chrono::milliseconds timeout, std::function<void()> on_timeout) {
  auto& st = self->state;
  auto id = st.next_id++;
  st.calls.emplace(id, bridge_state::waiting{std::chrono::steady_clock::now() + timeout, std::move(on_timeout)});
  if (!st.ticking) {
    st.ticking = true;
    st.period = std::clamp(timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
    self->delayed_send(self, st.period, tick_atom::value);
  }
  return id;
}

bool unwatch(bridge_actor* self, std::uint64_t id) { return self->state.calls.erase(id) > 0; }

namespace {

// The index argument is not used; CAF 0.17 spawns a function actor without
// arguments by dereferencing a null std::shared_ptr<std::tuple<>> (harmless,
// but undefined behaviour that UBSan rightly reports), so every spawned
// function here takes at least one.
caf::behavior bridge(bridge_actor* self, int /*index*/) {
  self->set_default_handler(caf::drop);
  // Continuations are guarded (a throw answers its call 500); this is the
  // backstop for anything else: log and carry on, never end the bridge (its
  // waiting requests would hang).
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      log::error("an HTTP bridge caught an exception", {{"what", e.what()}});
    } catch (...) {
      log::error("an HTTP bridge caught an exception");
    }
    return caf::none;
  });
  return {
    [self](bridge_job& job) { guarded(job.c, [&] { job.run(self); }); },
    [self](tick_atom) {
      auto& st = self->state;
      auto now = std::chrono::steady_clock::now();
      std::vector<std::function<void()>> late;
      for (auto it = st.calls.begin(); it != st.calls.end();) {
        if (it->second.deadline <= now) {
          late.push_back(std::move(it->second.on_timeout));
          it = st.calls.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& f : late)
        f();
      st.ticking = !st.calls.empty();
      if (st.ticking)
        self->delayed_send(self, st.period, tick_atom::value);
    },
  };
}

} // namespace

bridge_pool::bridge_pool(caf::actor_system& sys, int threads) : sys_(sys) {
  for (int i = 0; i < std::max(1, threads); ++i)
    bridges_.push_back(sys.spawn(bridge, i));
  // Requests with bodies over the inline limit are routed, checked and
  // parsed here instead of on an io thread (each on its own thread: a
  // megabyte of JSON takes milliseconds, which no other connection waits for).
  for (int i = 0; i < 2; ++i)
    workers_.push_back(sys.spawn<caf::detached>(bridge, i));
}

bridge_pool::~bridge_pool() {
  for (auto& b : bridges_)
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  for (auto& b : workers_)
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}

void bridge_pool::post(const std::shared_ptr<call>& c, job_fn job) {
  auto& b = bridges_[next_bridge_.fetch_add(1, std::memory_order_relaxed) % bridges_.size()];
  caf::anon_send(b, bridge_job{c, std::move(job)});
}

void bridge_pool::post_blocking(const std::shared_ptr<call>& c, job_fn job) {
  auto& w = workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  caf::anon_send(w, bridge_job{c, std::move(job)});
}

void bridge_pool::stop(std::chrono::milliseconds timeout) {
  auto all = bridges_;
  all.insert(all.end(), workers_.begin(), workers_.end());
  if (all.empty())
    return;
  caf::scoped_actor waiter{sys_};
  for (auto& b : all) {
    waiter->monitor(b);
    waiter->send_exit(b, caf::exit_reason::user_shutdown);
  }
  std::size_t down = 0;
  bool late = false;
  waiter->receive_while([&] { return down < all.size() && !late; })([&](caf::down_msg&) { ++down; },
                                                                    caf::after(timeout) >> [&] { late = true; });
  if (late)
    log::warn("HTTP bridges did not stop in time",
              {{"stopped", static_cast<int>(down)}, {"bridges", static_cast<int>(all.size())}});
}

// -- api_core: the calls to actors ------------------------------------------------

void api_core::call_entity(const std::shared_ptr<call>& c, entity_key key, command cmd,
                           std::function<void(entity_reply&)> next, bool pass_errors) {
  bool change = cmd.what != op::get && cmd.what != op::usage;
  if (cmd.meta.request_id.empty())
    cmd.meta.request_id = c->req.request_id;
  if (cmd.meta.traceparent.empty())
    cmd.meta.traceparent = c->req.traceparent;
  if (change) { // changes are audited with their commit
    if (cmd.meta.actor.empty())
      cmd.meta.actor = c->who.credential.empty() ? std::string{"anonymous"} : c->who.credential;
    cmd.meta.client = c->req.client_addr;
    if (!c->idem_scope.empty()) {
      cmd.meta.idempotency_scope = c->idem_scope;
      if (cmd.meta.message_key.empty())
        cmd.meta.message_key = "idem:" + c->idem_scope; // a late first attempt and its retry cannot both apply
    }
  }
  cmd.inject_crash = opts.fault_injection && c->req.fault == "crash";
  if (opts.fault_injection && c->req.fault.starts_with("stall="))
    cmd.inject_stall_ms = std::atoi(c->req.fault.c_str() + 6);
  // The target is looked up here (the directory is thread-safe): a command
  // for a tenant owned by another node goes straight to its cluster link,
  // which answers through the callback, without a hop through a bridge.
  auto target = ctx.entities->target_of(key, false);
  if (!target.to) {
    c->respond(api::failure_response(actors::fail(errc::unavailable, "the node is shutting down"), c->req.request_id));
    return;
  }
  std::function<void(entity_reply&)> on_reply = [c, next = std::move(next), pass_errors, change](entity_reply& r) {
    if (r.error && r.error->outcome_unknown && change)
      c->outcome_unknown = true;
    if (r.error && !pass_errors)
      c->respond(api::failure_response(*r.error, c->req.request_id));
    else
      next(r);
  };
  if (target.keyed) {
    auto answer = std::make_shared<answer_once>(
      [c, on_reply = std::move(on_reply)](entity_reply& r) { guarded(c, [&] { on_reply(r); }); });
    caf::anon_send(target.to, keyed_call{std::move(key), std::move(cmd), std::move(answer)});
    return;
  }
  bridges.post(c,
               [c, to = std::move(target.to), cmd = std::move(cmd), on_reply = std::move(on_reply), change,
                timeout = opts.request_timeout](caf::event_based_actor* self) mutable {
                 std::function<void(const caf::error&)> on_error = [c, change](const caf::error& err) {
                   auto f = failure_from(err);
                   if (f.outcome_unknown && change)
                     c->outcome_unknown = true;
                   c->respond(api::failure_response(f, c->req.request_id));
                 };
                 bridge_pool::request<entity_reply>(self, c, to, timeout, std::move(on_reply), std::move(on_error),
                                                    std::move(cmd));
               });
}

void api_core::send(const std::shared_ptr<call>& c, entity_key key, command cmd,
                    std::function<api_response(entity_reply&)> ok) {
  call_entity(c, std::move(key), std::move(cmd), [c, ok = std::move(ok)](entity_reply& r) { c->respond(ok(r)); });
}

} // namespace colony::adapters::http
